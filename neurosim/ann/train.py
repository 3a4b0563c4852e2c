"""The mini-batch training loop: shuffle, forward, backprop, update; record a `History`.

Per-epoch training loss and metrics are averages over that epoch's mini-batches, computed from
the forward pass the gradient needs anyway (as Keras reports them), so they lag the weights by
up to one epoch; validation metrics come from one extra inference pass at the end of each
epoch. The loop never prints or writes files: progress goes through the `on_epoch` callback.

Speed: parameters and gradients live in one flat buffer each (`MLP.pack`), so an optimiser
step is a few BLAS calls; cross-entropies skip the output activation and take their gradient
straight from the logits; training accuracy is read off the logits of the same forward pass.
BLAS is held to `blas_threads` threads inside the loop (threadpoolctl): on 64-row batches two
OpenBLAS threads were measured ~10x slower than one on a loaded 2-core machine, and a fixed
count keeps the bits of the result independent of the machine's core count.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from neurosim.ann.functions import ACTIVATIONS, Loss, lookup
from neurosim.ann.mlp import MLP, Cache, backward, forward, loss_and_delta, loss_value
from neurosim.ann.optim import SCHEDULES, make_optimizer

METRICS = ("accuracy", "mae")
STATUSES = ("COMPLETED", "DIVERGED", "INTERRUPTED")


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
    """

    epochs: dict[str, list[float]] = field(default_factory=lambda: {"loss": []})
    steps: dict[str, list[float]] = field(default_factory=dict)
    status: str = "COMPLETED"
    stopped_early: bool = False
    best_epoch: int | None = None

    @property
    def n_epochs(self) -> int:
        """Completed epochs."""
        return len(self.epochs["loss"])

    def log(self, **values: float) -> None:
        """Append one value to each named per-epoch series."""
        for k, v in values.items():
            self.epochs.setdefault(k, []).append(float(v))


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
    y = np.asarray(y)
    cache = forward(
        model._cast(X),
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
    """One flat parameter buffer (`MLP.pack`) and a flat gradient buffer laid out alike.

    Backward writes each layer's gradients into views of the gradient buffer, so the optimiser
    steps over one or two long arrays with a few BLAS calls instead of two arrays per layer.

    Returns
    -------
    flat : ndarray of shape (n_params,), the parameters
    grad_flat : ndarray of shape (n_params,)
    grad_out : (list of weight-gradient views, list of bias-gradient views or None)
    """
    flat = model.pack()
    grad_flat = np.zeros_like(flat)
    views, start = [], 0
    for p in model.params:
        view = grad_flat[start : start + p.size]
        views.append(view.reshape(p.shape[::-1]).T if p.ndim == 2 else view)  # as MLP.pack
        start += p.size
    n = len(model.weights)
    return flat, grad_flat, (views[:n], views[n:] or None)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def train(
    model: MLP,
    X: np.ndarray,
    y: np.ndarray,
    *,
    loss: str | Loss,
    optimizer: str = "sgd",
    lr: float = 0.01,
    epochs: int = 10,
    batch_size: int | None = 32,
    rng: np.random.Generator,
    momentum: float = 0.9,
    beta1: float = 0.9,
    beta2: float = 0.999,
    rho: float = 0.9,
    eps: float = 1e-8,
    l1: float = 0.0,
    l2: float = 0.0,
    schedule: str = "constant",
    schedule_kwargs: dict | None = None,
    X_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    patience: int | None = None,
    metrics: tuple[str, ...] = (),
    record_steps: bool = False,
    shuffle: bool = True,
    on_epoch: Callable[[int, History], None] | None = None,
    blas_threads: int | None = 1,
) -> History:
    """Train `model` in place by mini-batch gradient descent and return its `History`.

    Parameters
    ----------
    model : MLP
    X : ndarray of shape (n_samples, n_inputs)
    y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        Integer class labels (or one-hot rows) for categorical cross-entropy, 0/1 targets for
        binary cross-entropy, real targets otherwise.
    loss : str or Loss
        A key of `LOSSES`; the cross-entropies need the matching output activation.
    optimizer : str
        A key of `OPTIMIZERS`: gd, sgd, momentum, nesterov, rmsprop, adam.
    lr : float
        Base learning rate (the schedule scales it per epoch).
    epochs : int
    batch_size : int or None
        None trains on the whole set at every step (full-batch gradient descent).
    rng : numpy.random.Generator
        Shuffles the batches and draws dropout masks: the same seed gives the same weights,
        bit for bit (with the same BLAS and thread count).
    momentum, beta1, beta2, rho, eps : float
        Constants of the update rules (`neurosim.ann.optim`).
    l1, l2 : float
        Coupled weight decay of the weights, never the biases.
    schedule : str
        Learning-rate schedule per epoch (a key of `SCHEDULES`), with `schedule_kwargs`.
    X_val, y_val : ndarray, optional
        Validation set: ``val_`` series every epoch and `History.best_epoch`.
    patience : int, optional
        Early stopping (needs a validation set): stop after `patience` epochs without a lower
        validation loss. Whenever `patience` is set, training ends by restoring the weights of
        the best epoch, whether it stopped early, ran all epochs, diverged or was interrupted.
    metrics : tuple of str
        ``accuracy`` and/or ``mae``.
    record_steps : bool
        Also keep every step's batch loss in ``History.steps["loss"]``.
    shuffle : bool
        Reshuffle the samples every epoch.
    on_epoch : callable (epoch, history), optional
        Called after every completed epoch (1-based), e.g. to draw a progress bar.
    blas_threads : int or None
        BLAS threads inside the loop (None leaves BLAS alone).

    Returns
    -------
    History
        ``status="DIVERGED"`` when a batch loss or, checked after each epoch, a weight is NaN
        or inf (the epoch in progress is dropped, the series so far are finite);
        ``status="INTERRUPTED"`` on Ctrl-C (KeyboardInterrupt, also from `on_epoch`).
    """
    spec = model.check_loss(loss)
    for m in metrics:
        lookup(dict.fromkeys(METRICS), m, "metric")
    sched = lookup(SCHEDULES, schedule, "schedule")
    schedule_kwargs = schedule_kwargs or {}
    try:  # bad schedule arguments fail here, not after an epoch of training
        sched(0, lr, max(int(epochs), 1), **schedule_kwargs)
    except TypeError as e:
        raise ValueError(f"schedule '{schedule}': {e}") from None
    opt = make_optimizer(
        optimizer, lr, momentum=momentum, beta1=beta1, beta2=beta2, rho=rho, eps=eps, l1=l1, l2=l2
    )
    X = model._cast(X)
    y = np.asarray(y)
    if y.dtype.kind == "f":
        y = y.astype(model.dtype, copy=False)
    n = len(X)
    _check(n > 0 and len(y) == n, f"X and y need the same number > 0 of rows, got {n}, {len(y)}")
    _check(int(epochs) >= 0, f"epochs must be >= 0, got {epochs}")
    _check(batch_size is None or int(batch_size) >= 1, f"batch_size must be >= 1, got {batch_size}")
    validate = X_val is not None and y_val is not None
    _check(patience is None or validate, "patience (early stopping) needs X_val and y_val")
    _check(patience is None or int(patience) >= 1, f"patience must be >= 1, got {patience}")
    batch = n if batch_size is None else min(int(batch_size), n)

    history = History()
    if record_steps:
        history.steps["loss"] = []
    best_loss, best_params, waited = math.inf, None, 0
    acts, out_act = model.activations, model.output_activation
    with_bias, dropout = model.biases is not None, model.dropout
    activate_output = not spec.from_logits

    flat, grad_flat, grad_out = _flat_buffers(model)
    weights, biases = model.weights, model.biases
    n_weights = sum(W.size for W in weights)
    if with_bias and (l1 or l2):  # weights and biases apart: only the weights are decayed
        params = [flat[:n_weights], flat[n_weights:]]
        grads = [grad_flat[:n_weights], grad_flat[n_weights:]]
    else:  # one array: half the calls per optimiser step
        params, grads = [flat], [grad_flat]
    opt.n_decayed = 1
    if validate:  # cast once, not every epoch
        X_val, y_val = model._cast(X_val), np.asarray(y_val)

    threads = (
        threadpool_limits(limits=blas_threads)
        if blas_threads is not None
        else contextlib.nullcontext()
    )
    # NaN/inf are caught explicitly (DIVERGED), so numpy need not warn about them on the way
    with threads, np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        try:
            for epoch in range(int(epochs)):
                opt.lr = sched(epoch, lr, epochs, **schedule_kwargs)
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
                    if not math.isfinite(value):
                        history.status = "DIVERGED"
                        break
                    loss_sum += value * len(xb)
                    for m in metrics:
                        metric_sums[m] += batch_metric(m, cache, yb, out_act)
                    if record_steps:
                        history.steps["loss"].append(value)
                    backward(cache, delta, weights, acts, with_bias, out=grad_out)
                    opt.step(params, grads)
                if history.status == "DIVERGED" or not np.isfinite(flat).all():
                    history.status = "DIVERGED"
                    break
                history.log(loss=loss_sum / n, **{m: s / n for m, s in metric_sums.items()})
                history.log(lr=opt.lr)
                if validate:
                    val = evaluate(model, X_val, y_val, spec, metrics)
                    history.log(**{f"val_{k}": v for k, v in val.items()})
                    if val["loss"] < best_loss:
                        best_loss, waited = val["loss"], 0
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
        except KeyboardInterrupt:
            history.status = "INTERRUPTED"
    if best_params is not None:
        model.set_params(best_params)
    return history
