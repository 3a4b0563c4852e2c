"""The mini-batch training loop: shuffle, forward, backprop, update; record a `History`.

Per-epoch training loss and metrics are averages over that epoch's mini-batches, computed from
the forward pass the gradient needs anyway (as Keras reports them), so they lag the weights by
up to one epoch; validation metrics come from one extra inference pass at the end of each
epoch. The loop never prints or writes files: progress goes through the `on_epoch` callback.

Speed: parameters and gradients live in one flat buffer each (`MLP.flat_params`), so an optimiser
step is a few in-place ufuncs over one array; cross-entropies skip the output activation and take
their gradient straight from the logits; training accuracy is read off the logits of the same
forward pass.

Threads: BLAS is held to `blas_threads` threads inside the loop (threadpoolctl). One thread is
exact and reproducible to the bit on any machine. With more (``blas_threads=n``), the products
of a 64-row batch are small enough that a second thread pays only when it finds a core free: on
an idle two-core machine a product takes ~40% less time (1.6-1.9x faster, issue 18), on a busy
one each product waits for the scheduler to wake the other thread (a whole training run measured
11-17x slower at load 15-18 on two cores). So `ThreadChoice` times the loop in
blocks of steps and runs BLAS at n threads only while n measures faster than one; a probe of n
threads that loses is retried only after `ThreadChoice.PATIENCE` times its own cost, so
probing costs at most ~1/PATIENCE of the run. More threads are thereby never (beyond that
bound and timing noise) slower than one; the price is that the rounding of the products, and so
the last bits of the weights, depend on which thread count the machine's load picked.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import ThreadpoolController

from neurosim.ann.functions import ACTIVATIONS, Loss
from neurosim.ann.mlp import (
    MLP,
    Cache,
    backward,
    forward,
    loss_and_delta,
    loss_value,
    n_parameters,
    require_memory,
)
from neurosim.ann.optim import (
    DEFAULT_LR,
    OPTIMIZERS,
    SCHEDULES,
    STATE_ARRAYS,
    Optimizer,
    make_optimizer,
)
from neurosim.validation import lookup

METRICS = ("accuracy", "mae")
STATUSES = ("COMPLETED", "DIVERGED", "INTERRUPTED")  # INTERRUPTED: set, then re-raised


@dataclass
class History:
    """What training measured.

    Attributes
    ----------
    epochs : dict of str -> list of float
        Per-epoch series, one entry per completed epoch: ``loss``, the requested metrics,
        ``lr``, and ``val_loss`` / ``val_<metric>`` when a validation set was given.
    steps : dict of str -> list of float
        Per-step ``loss`` when ``record_steps=True``, else empty.
    status : str
        ``COMPLETED``; ``DIVERGED`` (a NaN/inf loss or weight stopped training); or
        ``INTERRUPTED`` (Ctrl-C stopped it). The series keep every completed epoch.
    stopped_early : bool
        Early stopping ended training.
    best_epoch : int or None
        1-based epoch of the lowest validation loss (None without a validation set).
    diverged : str or None
        With ``status="DIVERGED"``: one line saying what ran away and when, e.g.
        ``"loss became nan at epoch 12 (layer 2 weights inf)"``.
    blas_threads : dict of int -> int
        With ``blas_threads=n > 1``: training steps run at each BLAS thread count (1 and n,
        `ThreadChoice`); empty otherwise.
    """

    epochs: dict[str, list[float]] = field(default_factory=lambda: {"loss": []})
    steps: dict[str, list[float]] = field(default_factory=dict)
    status: str = "COMPLETED"
    stopped_early: bool = False
    best_epoch: int | None = None
    diverged: str | None = None  # what ran away, e.g. "loss became nan at epoch 12 (...)"
    blas_threads: dict[int, int] = field(default_factory=dict)  # steps per BLAS thread count

    @property
    def n_epochs(self) -> int:
        """Completed epochs."""
        return len(self.epochs["loss"])

    def log(self, **values: float) -> None:
        """Append one value to each named per-epoch series."""
        for k, v in values.items():
            self.epochs.setdefault(k, []).append(float(v))


def free_cores() -> float:
    """CPUs this process may use minus the 1-minute load average (which counts this process):
    about 1 on an idle machine, below 0 on a busy one; inf where the load is unknown."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    try:
        return cpus - os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows: leave the choice to the timing alone
        return math.inf


class ThreadChoice:
    """Run the loop's BLAS at one or at `n` threads, whichever measured faster lately.

    Call `step_done` after every training step. Steps are timed in blocks of `BLOCK`; each
    block's time per step is the measurement of the thread count it ran at. The loop starts at
    one thread; then

    - at 1: switch to `n` when `n` measured faster than this block, or to probe it again once
      `next_probe` has come and the machine is not overloaded (`free_cores` >= `MIN_SPARE`; the
      load average counts this loop's own 1 to n threads, so an idle machine reads 0 to n - 1
      there, whatever thread count ran last; on a machine whose load already exceeds its
      cores, a probe costs a block at ~4-20x the one-thread time and is not worth it);
    - at `n`: every block is compared with the last one-thread block; once slower, switch back
      to 1, and set the next probe `PATIENCE` times the losing block's wall time later, so
      probing costs at most ~1/`PATIENCE` of the run.

    Parameters
    ----------
    n : int
        The most threads, >= 2.
    libraries : sequence of objects with ``set_num_threads(k)``
        threadpoolctl's controllers of the BLAS libraries (or fakes in tests).
    clock : callable () -> float
        Seconds; `time.perf_counter` (a fake one in tests).
    spare : callable () -> float
        Cores to spare, `free_cores` (a fake in tests).

    Attributes
    ----------
    threads : int
        The count BLAS runs at now.
    steps : dict of int -> int
        Steps run at each thread count.
    seconds_per_step : dict of int -> float
        The last block's measurement at each thread count.
    """

    BLOCK = 4  # steps per timed block: a probe of n threads costs one block
    PATIENCE = 20.0  # wait this many times a losing probe's cost before the next (<= ~5% cost)
    MIN_SPARE = -0.5  # probe n threads only while cores - load average is at least this

    def __init__(self, n: int, libraries: Sequence, clock: Callable[[], float] = time.perf_counter,
                 spare: Callable[[], float] = free_cores):
        self.n, self.libraries, self.clock, self.spare = int(n), list(libraries), clock, spare
        self.steps = {1: 0, self.n: 0}
        self.seconds_per_step: dict[int, float] = {}
        self.next_probe = -math.inf  # when n threads may be tried (again)
        self._set(1)

    def _set(self, k: int) -> None:
        self.threads = k
        for lib in self.libraries:
            lib.set_num_threads(k)
        self._in_block, self._started = 0, self.clock()

    def step_done(self) -> None:
        """Count one step; at the end of a block, measure it and pick the next thread count."""
        self.steps[self.threads] += 1
        self._in_block += 1
        if self._in_block < self.BLOCK:
            return
        now = self.clock()
        block_s = now - self._started
        per_step = block_s / self._in_block
        self.seconds_per_step[self.threads] = per_step
        if self.threads == 1:
            at_n = self.seconds_per_step.get(self.n, math.inf)
            if at_n <= per_step or (now >= self.next_probe and self.spare() >= self.MIN_SPARE):
                self._set(self.n)
                return
        elif per_step > self.seconds_per_step[1]:  # n lost: back to one, probe again later
            self.next_probe = now + self.PATIENCE * block_s
            self._set(1)
            return
        self._in_block, self._started = 0, now


def batch_metric(name: str, cache: Cache, y: np.ndarray, output_activation: str) -> float:
    """Sum (not mean) over a batch of a metric, from a forward pass already made.

    ``accuracy`` is the fraction of correct classes: argmax for softmax outputs, else each
    output thresholded at 0.5 (at logit 0 for sigmoid), averaged over outputs per sample.
    ``mae`` is the mean absolute error per sample.
    """
    z = cache.pre[-1]
    if name == "accuracy":
        if output_activation == "softmax":
            target = y if y.ndim == 1 else y.argmax(axis=1)
            return float(np.count_nonzero(z.argmax(axis=1) == target))
        if output_activation == "sigmoid":
            pred = z > 0  # sigmoid(z) > 0.5, without the activation
        else:
            pred = _activated(cache, output_activation) > 0.5
        correct = np.count_nonzero(pred == (y.reshape(pred.shape) > 0.5))
        return correct / pred.shape[1]
    if name == "mae":
        a = _activated(cache, output_activation)
        return float(np.abs(a - y.reshape(a.shape)).mean(axis=1).sum())
    raise ValueError(f"unknown metric '{name}'; choose from {', '.join(METRICS)}")


def _activated(cache: Cache, output_activation: str) -> np.ndarray:
    if cache.activations[-1] is None:
        cache.activations[-1] = ACTIVATIONS[output_activation](cache.pre[-1])
    return cache.activations[-1]


def evaluate(
    model: MLP, X: np.ndarray, y: np.ndarray, loss: str | Loss, metrics: tuple[str, ...] = ()
) -> dict[str, float]:
    """Loss and metrics of `model` on a whole set, at inference (no dropout).

    Returns
    -------
    dict
        ``{"loss": ..., "<metric>": ...}``, metrics as means over samples.
    """
    spec = model.check_loss(loss)
    X = model.as_input(X)
    y = check_targets(model, y, spec, len(X))
    cache = forward(
        X,
        model.weights,
        model.biases,
        model.activations,
        activate_output=not spec.from_logits,
    )
    out = {"loss": loss_value(cache, y, spec, model.output_activation)}
    for m in metrics:
        out[m] = batch_metric(m, cache, y, model.output_activation) / len(y)
    return out


def _flat_buffers(model: MLP) -> tuple[np.ndarray, np.ndarray, tuple[list, list | None]]:
    """The model's flat parameter buffer (`MLP.flat_params`) and a gradient buffer laid out
    alike.

    Backward writes each layer's gradients into views of the gradient buffer, so the optimiser
    steps over one or two long arrays with a few BLAS calls instead of two arrays per layer.

    Returns
    -------
    flat : ndarray of shape (n_params,), the parameters
    grad_flat : ndarray of shape (n_params,)
    grad_out : (list of weight-gradient views, list of bias-gradient views or None)
    """
    flat = model.flat_params()
    grad_flat = np.zeros_like(flat)
    views, start = [], 0
    for p in model.params:
        view = grad_flat[start : start + p.size]
        views.append(view.reshape(p.shape[::-1]).T if p.ndim == 2 else view)  # as MLP._lay_out
        start += p.size
    n = len(model.weights)
    return flat, grad_flat, (views[:n], views[n:] or None)


def _nonfinite(name: str, a: np.ndarray) -> str | None:
    """``"<name> nan"`` / ``"<name> inf"`` when `a` holds such values, else None."""
    if np.isfinite(a).all():
        return None
    return f"{name} {'nan' if np.isnan(a).any() else 'inf'}"


def runaway_description(what: str, epoch: int, weights: list[np.ndarray],
                        biases: list[np.ndarray] | None) -> str:
    """One line naming what ran away: `what` (e.g. ``"loss became nan"``) at 1-based `epoch`,
    with the layers (1-based) whose weights or biases are no longer finite."""
    bad = [_nonfinite(f"layer {k} weights", W) for k, W in enumerate(weights, 1)]
    bad += [_nonfinite(f"layer {k} biases", b) for k, b in enumerate(biases or [], 1)]
    bad = [b for b in bad if b]
    state = ", ".join(bad) if bad else "weights still finite"
    return f"{what} at epoch {epoch} ({state})"


def training_memory(sizes, *, batch_size: int, optimizer: str = "sgd",
                    dtype: str = "float32", bias: bool = True, eval_rows: int = 0,
                    keep_best: bool = False) -> dict[str, int]:
    """Bytes that training an MLP of layer sizes `sizes` needs, by part, before allocating.

    Parameters and their gradient buffer, the optimiser's state (`STATE_ARRAYS`), a copy of
    the best epoch's parameters (`keep_best`, early stopping), and the activations: ``z``,
    ``a`` and ``delta`` of every layer for one batch, or ``z`` and ``a`` for a whole set
    scored at once (`eval_rows`: validation, monitor and prediction sets), whichever is more.

    Returns
    -------
    dict of str -> int
        ``parameters``, ``optimiser state``, ``activations``.
    """
    item = np.dtype(dtype).itemsize
    n = n_parameters(sizes, bias)
    units = sum(int(k) for k in sizes[1:])
    rows = max(3 * int(batch_size), 2 * int(eval_rows))
    return {"parameters": n * item * (2 + int(keep_best)),
            "optimiser state": n * item * lookup(STATE_ARRAYS, optimizer, "optimizer"),
            "activations": rows * units * item}


def require_training_memory(what: str, sizes, **kwargs) -> None:
    """`training_memory` checked against this machine (`neurosim.ann.mlp.require_memory`): an
    `InvalidParameterError` naming `what` (e.g. ``hidden=[3000000]``) when it cannot fit."""
    parts = training_memory(sizes, **kwargs)
    require_memory(sum(parts.values()), what, parts)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def check_targets(model: MLP, y: np.ndarray, loss: Loss, n: int, what: str = "y") -> np.ndarray:
    """`y` as targets of `loss` for `model`, or a ValueError naming both shapes.

    Categorical cross-entropy takes integer classes in [0, n_outputs) or one-hot rows; every
    other loss takes an array of shape (n_samples, n_outputs) (or (n_samples,) for one output).
    """
    y = np.asarray(y)
    n_out = model.sizes[-1]
    _check(len(y) == n, f"X and {what} need the same number of rows, got {n} and {len(y)}")
    if loss.name == "categorical_cross_entropy" and y.ndim == 1:
        _check(y.dtype.kind in "iub" or bool(np.all(y == np.round(y))),
               f"{what} must hold integer class labels for {loss.name}")
        if y.size and (y.min() < 0 or y.max() >= n_out):
            raise ValueError(
                f"{what} holds class labels {int(y.min())}..{int(y.max())}, but the network "
                f"has {n_out} outputs (classes 0..{n_out - 1})"
            )
        return y.astype(np.int64, copy=False)
    shape = y.shape if y.ndim > 1 else (len(y), 1)
    if shape != (n, n_out):
        raise ValueError(
            f"loss '{loss.name}' needs {what} of shape ({n}, {n_out}) for a network with "
            f"{n_out} output(s), got {what} of shape {y.shape}"
        )
    if y.dtype.kind != "f":
        y = y.astype(model.dtype)
    _check(bool(np.isfinite(y).all()), f"{what} holds NaN or infinite values")
    return y.reshape(shape).astype(model.dtype, copy=False)


#: A loss this many times its first batch's value (or 1, if larger) means training ran away.
RUNAWAY_FACTOR = 1e6

_HYPER = ("lr", "momentum", "beta1", "beta2", "rho", "eps", "l1", "l2")


def train(
    model: MLP,
    X: np.ndarray,
    y: np.ndarray,
    *,
    loss: str | Loss,
    optimizer: str | Optimizer = "sgd",
    lr: float | None = None,
    epochs: int = 10,
    batch_size: int | None = 32,
    rng: np.random.Generator,
    momentum: float | None = None,
    beta1: float | None = None,
    beta2: float | None = None,
    rho: float | None = None,
    eps: float | None = None,
    l1: float | None = None,
    l2: float | None = None,
    schedule: str = "constant",
    schedule_kwargs: dict | None = None,
    X_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    patience: int | None = None,
    monitor: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    metrics: tuple[str, ...] = (),
    record_steps: bool = False,
    shuffle: bool = True,
    on_epoch: Callable[[int, History], None] | None = None,
    blas_threads: int | None = 1,
    history: History | None = None,
) -> History:
    """Train `model` in place by mini-batch gradient descent and return its `History`.

    The model's arrays are updated in place: references to ``model.weights[l]`` taken before
    training stay valid. Pass an `Optimizer` (`make_optimizer`) instead of a name to keep its
    state (step count, momentum, Adam's moments) across calls: train on task A, then on task
    B, with one optimiser.

    Parameters
    ----------
    model : MLP
    X : ndarray of shape (n_samples, n_inputs)
    y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        Integer class labels in [0, n_outputs) (or one-hot rows) for categorical
        cross-entropy, 0/1 targets for binary cross-entropy, real targets otherwise.
    loss : str or Loss
        A key of `LOSSES`; the cross-entropies need the matching output activation.
    optimizer : str or Optimizer
        A key of `OPTIMIZERS` (gd, sgd, momentum, nesterov, rmsprop, adam): a new optimiser
        for this call, configured by the hyper-parameters below. Or an `Optimizer`, used as it
        is and left holding its state; the hyper-parameters below must then be left unset.
    lr : float, optional
        Base learning rate (the schedule scales it per epoch). Default: the rule's usual one
        (`DEFAULT_LR`: 1e-3 for adam and rmsprop, 1e-2 otherwise). With an `Optimizer`, its
        ``initial_lr``.
    epochs : int
    batch_size : int or None
        None trains on the whole set at every step (full-batch gradient descent).
    rng : numpy.random.Generator
        Shuffles the batches and draws dropout masks: the same seed gives the same weights,
        bit for bit (with the same BLAS and thread count).
    momentum, beta1, beta2, rho, eps : float, optional
        Constants of the update rules (`neurosim.ann.optim`; defaults as there).
    l1, l2 : float, optional
        Coupled weight decay of the weights, never the biases (default 0).
    schedule : str
        Learning-rate schedule per epoch (a key of `SCHEDULES`), with `schedule_kwargs`.
    X_val, y_val : ndarray, optional
        Validation set: ``val_`` series every epoch and `History.best_epoch`.
    patience : int, optional
        Early stopping (needs a validation set): stop after `patience` epochs without a lower
        validation loss. Whenever `patience` is set, training ends by restoring the weights of
        the best epoch, whether it stopped early, ran all epochs, diverged or was interrupted.
    monitor : dict of str -> (X, y), optional
        Sets scored after every epoch for the record only (``<name>_loss``,
        ``<name>_<metric>`` series), e.g. ``{"test": (X_test, y_test)}`` for a test curve
        beside the training curve; they never influence training.
    metrics : tuple of str
        ``accuracy`` and/or ``mae``.
    record_steps : bool
        Also keep every step's batch loss in ``History.steps["loss"]``.
    shuffle : bool
        Reshuffle the samples every epoch.
    on_epoch : callable (epoch, history), optional
        Called after every completed epoch (1-based), e.g. to draw a progress bar.
    blas_threads : int or None
        BLAS threads inside the loop. 1 (default): one, exact and reproducible to the bit.
        n > 1: at most n, and only while n measure faster than one (`ThreadChoice`), so
        more threads never make training slower; the last bits of the weights then depend
        on the thread count the machine's load picked (`History.blas_threads` counts the
        steps at each). None leaves BLAS alone.
    history : History, optional
        An empty `History` to fill in place (and return): what training recorded stays in
        the caller's hands when a KeyboardInterrupt ends it. None: a new one.

    Returns
    -------
    History
        ``status="DIVERGED"`` when a batch loss or, checked after each epoch, a weight is NaN
        or inf, or a batch loss exceeds `RUNAWAY_FACTOR` times the first one (the epoch in
        progress is dropped, the series so far are finite; `History.diverged` says what ran
        away).

    Raises
    ------
    KeyboardInterrupt
        Ctrl-C (or any KeyboardInterrupt, also from `on_epoch`) is never swallowed: training
        stops, the `History` passed as `history` keeps every completed epoch with
        ``status="INTERRUPTED"`` (it is also the exception's ``history`` attribute), and the
        interrupt propagates to the caller.
    ValueError
        For arguments that cannot work: labels outside the network's classes, targets whose
        shape does not fit the loss, a non-integer number of epochs, ...
    """
    spec = model.check_loss(loss)
    for m in metrics:
        lookup(dict.fromkeys(METRICS), m, "metric")
    sched = lookup(SCHEDULES, schedule, "schedule")
    _check(isinstance(epochs, int | np.integer) and not isinstance(epochs, bool),
           f"epochs must be an integer, got {epochs!r}")
    _check(epochs >= 0, f"epochs must be >= 0, got {epochs}")
    _check(blas_threads is None or (isinstance(blas_threads, int | np.integer)
                                    and not isinstance(blas_threads, bool) and blas_threads >= 1),
           f"blas_threads must be an integer >= 1 or None, got {blas_threads!r}")
    _check(batch_size is None or (isinstance(batch_size, int | np.integer) and batch_size >= 1),
           f"batch_size must be >= 1 (an integer; None: full batch), got {batch_size!r}")
    hyper = {k: v for k, v in zip(_HYPER, (lr, momentum, beta1, beta2, rho, eps, l1, l2),
                                  strict=True) if v is not None}
    if isinstance(optimizer, Optimizer):
        _check(not hyper, f"{', '.join(hyper)} belong to the Optimizer passed to train(); set "
                          "them in make_optimizer(), not here")
        opt = optimizer
    else:
        lookup(OPTIMIZERS, optimizer, "optimizer")
        opt = make_optimizer(optimizer, hyper.pop("lr", DEFAULT_LR[optimizer]), **hyper)
    schedule_kwargs = schedule_kwargs or {}
    try:  # bad schedule arguments fail here, not after an epoch of training
        sched(0, opt.initial_lr, max(int(epochs), 1), **schedule_kwargs)
    except TypeError as e:
        raise ValueError(f"schedule '{schedule}': {e}") from None
    X = model.as_input(X)
    n = len(X)
    _check(n > 0, "X has no rows")
    y = check_targets(model, y, spec, n)
    validate = X_val is not None and y_val is not None
    _check(patience is None or validate, "patience (early stopping) needs X_val and y_val")
    _check(patience is None or int(patience) >= 1, f"patience must be >= 1, got {patience}")
    sets = {}
    if validate:  # cast once, not every epoch
        X_val = model.as_input(X_val)
        sets["val"] = (X_val, check_targets(model, y_val, spec, len(X_val), "y_val"))
    for name, (Xm, ym) in (monitor or {}).items():
        _check(name != "val", "monitor set 'val' would clash with the validation set")
        Xm = model.as_input(Xm)
        sets[name] = (Xm, check_targets(model, ym, spec, len(Xm), f"y of monitor '{name}'"))
    batch = n if batch_size is None else min(int(batch_size), n)
    require_training_memory(
        f"training an MLP of sizes {model.sizes} in batches of {batch}", model.sizes,
        batch_size=batch, optimizer=opt.rule,
        dtype=str(model.dtype), bias=model.biases is not None,
        eval_rows=max((len(Xs) for Xs, _ in sets.values()), default=0),
        keep_best=patience is not None)

    if history is None:
        history = History()
    _check(history.n_epochs == 0 and not history.steps,
           "history must be a new, empty History (train() fills it in place)")
    if record_steps:
        history.steps["loss"] = []
    best_loss, best_params, waited = math.inf, None, 0
    acts, out_act = model.activations, model.output_activation
    with_bias, dropout = model.biases is not None, model.dropout
    activate_output = not spec.from_logits

    flat, grad_flat, grad_out = _flat_buffers(model)
    weights, biases = model.weights, model.biases
    n_weights = sum(W.size for W in weights)
    if with_bias and (opt.l1 or opt.l2):  # weights and biases apart: only the weights decay
        params = [flat[:n_weights], flat[n_weights:]]
        grads = [grad_flat[:n_weights], grad_flat[n_weights:]]
    else:  # one array: half the calls per optimiser step
        params, grads = [flat], [grad_flat]
    opt.n_decayed = 1
    opt.check_state(params)
    runaway = math.inf  # set from the first batch's loss

    controller = ThreadpoolController() if blas_threads is not None else None
    threads = (controller.limit(limits=blas_threads) if controller is not None
               else contextlib.nullcontext())
    # NaN/inf are caught explicitly (DIVERGED), so numpy need not warn about them on the way
    with threads, np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        choice = (ThreadChoice(blas_threads, controller.select(user_api="blas").lib_controllers)
                  if blas_threads is not None and blas_threads > 1 else None)
        history.blas_threads = choice.steps if choice is not None else {}
        try:
            for epoch in range(int(epochs)):
                opt.lr = sched(epoch, opt.initial_lr, epochs, **schedule_kwargs)
                order = rng.permutation(n) if shuffle and batch < n else None
                loss_sum, metric_sums = 0.0, dict.fromkeys(metrics, 0.0)
                for start in range(0, n, batch):
                    if batch == n:
                        xb, yb = X, y
                    elif order is None:
                        xb, yb = X[start : start + batch], y[start : start + batch]
                    else:
                        idx = order[start : start + batch]
                        xb, yb = X[idx], y[idx]
                    cache = forward(
                        xb,
                        weights,
                        biases,
                        acts,
                        dropout,
                        rng if dropout else None,
                        activate_output,
                    )
                    value, delta = loss_and_delta(cache, yb, spec, out_act)
                    if runaway == math.inf:
                        runaway = RUNAWAY_FACTOR * max(abs(value), 1.0)
                    if not math.isfinite(value) or value > runaway:
                        what = (f"loss became {value}" if not math.isfinite(value) else
                                f"loss {value:.3g} exceeded {RUNAWAY_FACTOR:g} times its "
                                "first value")
                        history.diverged = runaway_description(what, epoch + 1, weights,
                                                               biases)
                        history.status = "DIVERGED"
                        break
                    loss_sum += value * len(xb)
                    for m in metrics:
                        metric_sums[m] += batch_metric(m, cache, yb, out_act)
                    if record_steps:
                        history.steps["loss"].append(value)
                    backward(cache, delta, weights, acts, with_bias, out=grad_out)
                    opt.step(params, grads)
                    if choice is not None:
                        choice.step_done()
                if history.status == "DIVERGED":
                    break
                if not np.isfinite(flat).all():
                    history.diverged = runaway_description(
                        "parameters left the numbers", epoch + 1, weights, biases)
                    history.status = "DIVERGED"
                    break
                history.log(loss=loss_sum / n, **{m: s / n for m, s in metric_sums.items()})
                history.log(lr=opt.lr)
                for name, (Xs, ys) in sets.items():
                    scores = evaluate(model, Xs, ys, spec, metrics)
                    history.log(**{f"{name}_{k}": v for k, v in scores.items()})
                if validate:
                    val_loss = history.epochs["val_loss"][-1]
                    if val_loss < best_loss:
                        best_loss, waited = val_loss, 0
                        history.best_epoch = epoch + 1
                        if patience is not None:
                            best_params = model.copy_params()
                    elif patience is not None:
                        waited += 1
                        history.stopped_early = waited >= patience
                if on_epoch is not None:
                    on_epoch(epoch + 1, history)
                if history.stopped_early:
                    break
        except KeyboardInterrupt as exc:
            # recorded, then passed on: only the caller (the runner, a script) decides what
            # an interrupt means
            history.status = "INTERRUPTED"
            exc.history = history
            raise
        finally:
            if best_params is not None:
                model.set_params(best_params)
    return history
