"""One sigmoid neuron learns the 1-D threshold task by gradient descent.

The task of the sleep article's first example: inputs on a line, class 1 above a threshold.
One neuron with a sigmoid output is logistic regression; gradient descent on the binary
cross-entropy moves its boundary -b/w onto the threshold. Expected: 100% correct.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurosim import data, plots
from neurosim.ann import MLP
from neurosim.experiments.common import fit, history_curves, trained_result
from neurosim.runner.contract import Context, Result
from neurosim.validation import require, require_positive


@dataclass(frozen=True)
class Config:
    n_samples: int = 200  # points of the threshold task (x uniform in [0, 1])
    threshold: float = 0.5  # class 1 above it
    lr: float = 5.0  # full-batch GD step on the cross-entropy; its curvature is <= 1/4 here
    epochs: int = 3000  # full-batch steps; the boundary sharpens slowly once all are right

    def __post_init__(self):
        require(self.n_samples >= 2, f"n_samples must be >= 2, got {self.n_samples}")
        require(0 < self.threshold < 1, f"threshold must be in (0, 1), got {self.threshold}")
        require_positive("lr", self.lr)
        require(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")


QUICK = {"epochs": 500}


def run(cfg: Config, ctx: Context) -> Result:
    ds = data.threshold_task(cfg.n_samples, ctx.rng, threshold=cfg.threshold)
    net = MLP([1, 1], output_activation="sigmoid", init="xavier", rng=ctx.rng)
    history, seconds = fit(net, ds.X_train, ds.y_train, ctx, epochs=cfg.epochs,
                           loss="binary_cross_entropy", optimizer="gd", lr=cfg.lr,
                           batch_size=None, metrics=("accuracy",))
    w, b = float(net.weights[0][0, 0]), float(net.biases[0][0])
    metrics = {
        "test_accuracy": float(np.mean(net.predict(ds.X_test).ravel() == ds.y_test.ravel())),
        "train_accuracy": float(np.mean(net.predict(ds.X_train).ravel() == ds.y_train.ravel())),
        "weight": w,
        "bias": b,
        "learned_threshold": -b / w if w else None,
        "true_threshold": cfg.threshold,
        "final_loss": history.epochs["loss"][-1],
        "train_seconds": round(seconds, 4),
    }
    xs = np.linspace(0, 1, 201, dtype=net.dtype)[:, None]
    arrays = {"X": ds.X_train, "y": ds.y_train, "xs": xs.ravel(), "p": net.forward(xs).ravel()}
    return trained_result(net, history, metrics, curves={"epochs": history_curves(history)},
                          arrays=arrays, scored=("test_accuracy", "train_accuracy"))


def figures(result: Result) -> dict:
    m, a = result.metrics, result.arrays
    fig, ax = plots.one_neuron_figure(result, "binary cross-entropy", markersize=10)
    ax.plot(a["xs"], a["p"], color=plots.COLORS["mlp"], label="P(class 1)")
    ax.axvline(m["true_threshold"], color="k", ls="--", lw=1, label="true threshold")
    ax.set_xlabel("input x")
    ax.set_ylabel("class / probability")
    ax.legend(frameon=False, loc="center right")
    ax.set_title(f"one sigmoid neuron: {plots.score(m['test_accuracy'], '.0%')} test accuracy")
    return {"logistic_regression": fig}
