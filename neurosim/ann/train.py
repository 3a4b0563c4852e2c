"""The mini-batch training loop: shuffle, forward, backprop, update; record a `History`.

Per-epoch training loss and accuracy are averages over that epoch's mini-batches (computed from
the forward pass the gradient needs anyway, as Keras reports them); validation metrics come from
one extra pass at the end of each epoch. BLAS is held to `blas_threads` threads inside the loop:
on 64-row batches two BLAS threads were measured ~10x slower than one on a 2-core machine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from neurosim.ann.functions import lookup
from neurosim.ann.mlp import MLP, backward, forward, loss_and_delta, loss_value
from neurosim.ann.optim import SCHEDULES, make_optimizer

METRICS = ("accuracy", "mae")


@dataclass
class History:
    """What training measured.

    Attributes
    ----------
    epochs : dict of str -> list of float
        Per-epoch series: ``loss`` and the requested metrics, ``val_``-prefixed ones when a
        validation set was given, and ``lr``.
    steps : dict of str -> list of float
        Per-step ``loss`` when ``record_steps=True``.
    status : str
        ``COMPLETED``, ``DIVERGED`` (NaN/inf loss or weights) or ``INTERRUPTED`` (Ctrl-C).
    stopped_early : bool
        Early stopping ended training; the best weights were restored.
    best_epoch : int or None
        1-based epoch of the best validation loss.
    """

    epochs: dict[str, list[float]] = field(default_factory=lambda: {"loss": []})
    steps: dict[str, list[float]] = field(default_factory=dict)
    status: str = "COMPLETED"
    stopped_early: bool = False
    best_epoch: int | None = None

    def log(self, **values: float) -> None:
        for k, v in values.items():
            self.epochs.setdefault(k, []).append(float(v))


def _batch_metric(name: str, out: np.ndarray, y: np.ndarray, output_activation: str) -> float:
    """Sum (not mean) of a metric over a batch, from outputs already computed."""
    if name == "accuracy":
        if output_activation == "softmax":
            pred = out.argmax(axis=1)
            target = y if y.ndim == 1 else y.argmax(axis=1)
        else:
            pred = (out > 0.5).ravel()
            target = y.ravel() > 0.5
        return float(np.count_nonzero(pred == target))
    if name == "mae":
        return float(np.abs(out - y.reshape(out.shape)).mean(axis=tuple(range(1, out.ndim))).sum())
    raise AssertionError(name)


def evaluate(model: MLP, X: np.ndarray, y: np.ndarray, loss: str,
             metrics: tuple[str, ...] = ()) -> dict[str, float]:
    """Loss and metrics of `model` on a whole set (inference mode)."""
    spec = model.check_loss(loss)
    cache = forward(model._cast(X), model.weights, model.biases, model.activations)
    out = {"loss": loss_value(cache, y, spec)}
    for m in metrics:
        out[m] = _batch_metric(m, cache.activations[-1], y, model.output_activation) / len(X)
    return out


def _finite(params: list[np.ndarray]) -> bool:
    return all(np.isfinite(p.sum()) for p in params)


def train(model: MLP, X: np.ndarray, y: np.ndarray, *, loss: str, optimizer: str = "sgd",
          lr: float = 0.01, epochs: int = 10, batch_size: int | None = 32,
          rng: np.random.Generator, momentum: float = 0.9, beta1: float = 0.9,
          beta2: float = 0.999, rho: float = 0.9, eps: float = 1e-8, l1: float = 0.0,
          l2: float = 0.0, schedule: str = "constant", schedule_kwargs: dict | None = None,
          X_val: np.ndarray | None = None, y_val: np.ndarray | None = None,
          patience: int | None = None, metrics: tuple[str, ...] = (),
          record_steps: bool = False, shuffle: bool = True,
          on_epoch: Callable[[int, History], None] | None = None,
          blas_threads: int | None = 1) -> History:
    """Train `model` in place by mini-batch gradient descent and return its `History`.

    Parameters
    ----------
    model : MLP
    X : ndarray of shape (n_samples, n_inputs)
    y : ndarray of shape (n_samples,) (class labels) or (n_samples, n_outputs)
    loss : str
        A key of `LOSSES`; cross-entropies need the matching output activation.
    optimizer : str
        A key of `OPTIMIZERS` (gd, sgd, momentum, nesterov, rmsprop, adam).
    batch_size : int or None
        None trains on the whole set at every step (full-batch gradient descent).
    rng : numpy.random.Generator
        Shuffles the batches and draws dropout masks.
    schedule : str
        Learning-rate schedule per epoch (a key of `SCHEDULES`), with `schedule_kwargs`.
    X_val, y_val : ndarray, optional
        Validation set: ``val_`` metrics every epoch, and early stopping when `patience` is set
        (training stops after `patience` epochs without a lower validation loss, and the best
        weights are restored).
    metrics : tuple of str
        ``accuracy`` and/or ``mae``.
    on_epoch : callable (epoch, history), optional
        Called after every epoch (1-based), e.g. to draw a progress bar.
    blas_threads : int or None
        BLAS threads inside the loop (None leaves BLAS alone).

    Returns
    -------
    History
        Stops early with ``status="DIVERGED"`` on a NaN/inf loss or weight, and with
        ``status="INTERRUPTED"`` on Ctrl-C, keeping every completed epoch.
    """
    spec = model.check_loss(loss)
    for m in metrics:
        lookup(dict.fromkeys(METRICS), m, "metric")
    sched = lookup(SCHEDULES, schedule, "schedule")
    opt = make_optimizer(optimizer, lr, momentum=momentum, beta1=beta1, beta2=beta2, rho=rho,
                         eps=eps, l1=l1, l2=l2)
    X = model._cast(X)
    y = np.asarray(y)
    if y.dtype.kind == "f":
        y = y.astype(model.dtype, copy=False)
    n = len(X)
    batch = n if batch_size is None else min(int(batch_size), n)
    validate = X_val is not None and y_val is not None
    history = History()
    if record_steps:
        history.steps["loss"] = []
    best_loss, best_params, waited = np.inf, None, 0
    acts, with_bias, dropout = model.activations, model.biases is not None, model.dropout
    # One flat parameter buffer and one flat gradient buffer: backward writes into views of
    # the latter, and the optimiser updates two arrays (weights, biases) instead of 2 per layer.
    flat = model.pack()
    n_weights = sum(W.size for W in model.weights)
    grad_flat = np.empty_like(flat)
    grad_views, start = [], 0
    for p in model.params:
        grad_views.append(grad_flat[start: start + p.size].reshape(p.shape))
        start += p.size
    grad_out = (grad_views[: len(model.weights)], grad_views[len(model.weights):] or None)
    params = [flat[:n_weights], flat[n_weights:]] if with_bias else [flat]
    grads = [grad_flat[:n_weights], grad_flat[n_weights:]] if with_bias else [grad_flat]
    opt.n_decayed = 1

    # NaN/inf are caught explicitly below (DIVERGED), so numpy need not warn about them
    with threadpool_limits(limits=blas_threads), np.errstate(over="ignore", invalid="ignore"):
        try:
            for epoch in range(epochs):
                opt.lr = sched(epoch, lr, epochs, **(schedule_kwargs or {}))
                order = rng.permutation(n) if shuffle and batch < n else np.arange(n)
                loss_sum, metric_sums = 0.0, dict.fromkeys(metrics, 0.0)
                for start in range(0, n, batch):
                    idx = order[start: start + batch]
                    xb, yb = (X, y) if batch == n else (X[idx], y[idx])
                    cache = forward(xb, model.weights, model.biases, acts, dropout,
                                    rng if dropout else None)
                    value, delta = loss_and_delta(cache, yb, spec, model.output_activation)
                    if not np.isfinite(value):
                        history.status = "DIVERGED"
                        break
                    loss_sum += value * len(xb)
                    for m in metrics:
                        metric_sums[m] += _batch_metric(m, cache.activations[-1], yb,
                                                        model.output_activation)
                    if record_steps:
                        history.steps["loss"].append(value)
                    backward(cache, delta, model.weights, acts, with_bias, out=grad_out)
                    opt.step(params, grads)
                if history.status == "DIVERGED" or not _finite(params):
                    history.status = "DIVERGED"
                    break
                history.log(loss=loss_sum / n, **{m: s / n for m, s in metric_sums.items()},
                            lr=opt.lr)
                if validate:
                    val = evaluate(model, X_val, y_val, loss, metrics)
                    history.log(**{f"val_{k}": v for k, v in val.items()})
                    if patience is not None:
                        if val["loss"] < best_loss:
                            best_loss, best_params, waited = val["loss"], model.copy_params(), 0
                            history.best_epoch = epoch + 1
                        else:
                            waited += 1
                            if waited >= patience:
                                history.stopped_early = True
                if on_epoch is not None:
                    on_epoch(epoch + 1, history)
                if history.stopped_early:
                    break
        except KeyboardInterrupt:
            history.status = "INTERRUPTED"
    if history.stopped_early and best_params is not None:
        model.set_params(best_params)
    return history
