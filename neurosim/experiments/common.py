"""Glue shared by the rate-based (MLP) experiments: train with progress, turn a History into a
curve table, and score a classifier."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from neurosim.ann import MLP, History, train
from neurosim.runner.contract import Context, Result

#: Optimiser names a config may use (the keys of neurosim.ann.optim.OPTIMIZERS).
OPTIMIZER_CHOICES = ("gd", "sgd", "momentum", "nesterov", "rmsprop", "adam")


def fit(model: MLP, X: np.ndarray, y: np.ndarray, ctx: Context, *, epochs: int,
        table: str = "epochs", rng: np.random.Generator | None = None,
        **train_kwargs: Any) -> tuple[History, float]:
    """Train `model` with a progress bar on a terminal; returns the history and wall seconds.

    The curves go into ``ctx.partial`` as curve table `table` (one per arm) when training
    ends, however it ends: a KeyboardInterrupt (Ctrl-C, SIGTERM) passes on to the runner once
    they are there, which marks the run INTERRUPTED keeping every arm's curves. A diverged
    run's `History.diverged` becomes a warning of ``ctx.partial``. `rng` defaults to the
    run's generator.
    """
    bar = ctx.progress(range(epochs), total=epochs, desc=f"{table}")
    t0 = time.perf_counter()
    history = History()
    try:
        train(model, X, y, epochs=epochs, rng=ctx.rng if rng is None else rng,
              on_epoch=lambda epoch, history: next(bar, None), history=history,
              **train_kwargs)
    finally:
        ctx.partial.add_curves(table, history_curves(history))
    if history.status != "COMPLETED":
        ctx.partial.status = history.status
        ctx.partial.warnings += diverged_warnings(history)
    return history, time.perf_counter() - t0


def diverged_warnings(history: History) -> list[str]:
    """The Result warning naming what ran away, e.g. ``["loss became nan at epoch 12 (layer 2
    weights inf)"]``; empty when training did not diverge."""
    return [history.diverged] if history.diverged else []


def trained_result(model: MLP, history: History, metrics: dict[str, Any], *,
                   scored: tuple[str, ...], **result: Any) -> Result:
    """The Result of an experiment that trained `model`: status and warnings from `history`.

    The metrics named in `scored` (computed from the model) become None when training
    diverged: the weights are those of the moment values ran away (NaN/inf, or finite but
    runaway), and an argmax of such logits is a class by accident, not a score.
    """
    if history.status == "DIVERGED":
        metrics = {**metrics, **dict.fromkeys((k for k in scored if k in metrics), None)}
    return Result(metrics=metrics, status=history.status,
                  warnings=diverged_warnings(history), **result)


def progress_to(ctx: Context, total: int, desc: str):
    """A callback ``advance(n_done)`` that moves a progress phase of `total` items on to
    `n_done` (for loops that report running totals: chunks of a Brian2 pass, several passes
    one after another with an offset each)."""
    bar = ctx.progress(range(total), total=total, desc=desc)
    done = 0

    def advance(n_done: int) -> None:
        nonlocal done
        for _ in range(int(n_done) - done):
            next(bar, None)
        done = max(done, int(n_done))

    return advance


class Diverged(Exception):
    """Control flow of an experiment whose training left the numbers in `epoch` (1-based):
    raised from a callback inside a library loop, caught by the experiment, which marks its
    Result DIVERGED and keeps the curves so far."""

    def __init__(self, epoch: int):
        super().__init__(f"diverged in epoch {epoch}")
        self.epoch = epoch


def history_curves(history: History) -> dict[str, np.ndarray]:
    """Per-epoch series of a `History` as equal-length arrays, with an ``epoch`` column."""
    curves = {k: np.asarray(v, dtype=float) for k, v in history.epochs.items() if len(v)}
    n = min((len(v) for v in curves.values()), default=0)
    out = {"epoch": np.arange(1, n + 1)}
    out.update({k: v[:n] for k, v in curves.items() if k != "epoch"})
    return out


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """``cm[t, p]`` counts of true class t predicted as p."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, int), np.asarray(y_pred, int)), 1)
    return cm


def classifier_result(model: MLP, history: History, seconds: float, data: Any) -> Result:
    """The standard Result of a classifier: accuracies, confusion matrix, the epoch table."""
    pred_test = model.predict(data.X_test)
    pred_train = model.predict(data.X_train)
    metrics = {
        "test_accuracy": float(np.mean(pred_test == data.y_test)),
        "train_accuracy": float(np.mean(pred_train == data.y_train)),
        "final_loss": float(history.epochs["loss"][-1]) if history.epochs["loss"] else None,
        "epochs_run": len(history.epochs["loss"]),
        "stopped_early": bool(history.stopped_early),
        "n_params": int(model.n_params),
        "train_seconds": round(seconds, 4),
    }
    if data.X_val is not None:
        metrics["val_accuracy"] = float(np.mean(model.predict(data.X_val) == data.y_val))
    arrays = {
        "confusion": confusion(data.y_test, pred_test, data.n_classes),
        "W1": model.weights[0],
    }
    return trained_result(model, history, metrics, curves={"epochs": history_curves(history)},
                          arrays=arrays,
                          scored=("test_accuracy", "train_accuracy", "val_accuracy"))


#: Where a run keeps the C++ compiler's output of a Brian2 standalone build.
BUILD_LOG = "brian2_build.log"


def keep_build_log(standalone_dir: str, ctx: Context) -> None:
    """Copy a standalone project's compiler log (`neurosim.snn.backend.BUILD_LOG`) next to
    the scratch directory, i.e. into the run directory, before the project is deleted, and
    say so in the run's warnings."""
    from neurosim.snn import backend

    log = Path(standalone_dir) / backend.BUILD_LOG
    if not log.is_file():
        return
    target = ctx.scratch_dir.parent / BUILD_LOG
    with open(target, "ab") as out:
        out.write(log.read_bytes())
    ctx.partial.warnings.append(f"the C++ compiler's output is kept in {BUILD_LOG}")
