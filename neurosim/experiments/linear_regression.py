"""One linear neuron learns y = w*x + b by gradient descent on the mean squared error.

The simplest learning machine: a neuron with an identity activation is linear regression, and
gradient descent on the MSE recovers the weight and bias that generated the data (up to the
noise). Expected: |w - w_true| and |b - b_true| of order noise / sqrt(n).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurosim import data, plots
from neurosim.ann import MLP
from neurosim.experiments.common import fit, history_curves, trained_result
from neurosim.runner.contract import Context, Result
from neurosim.validation import require, require_non_negative, require_positive


@dataclass(frozen=True)
class Config:
    n_samples: int = 200  # training points, x uniform in [-1, 1]
    true_weight: float = 2.0  # slope that generates the data
    true_bias: float = -0.5  # intercept that generates the data
    noise: float = 0.1  # std of the Gaussian noise added to y
    lr: float = 0.1  # full-batch GD step; the MSE's curvature is ~1 here, so lr < ~1 converges
    epochs: int = 500  # full-batch steps; lr=0.1 has converged to 1e-4 well before 500

    def __post_init__(self):
        require(self.n_samples >= 2, f"n_samples must be >= 2, got {self.n_samples}")
        require_non_negative("noise", self.noise)
        require_positive("lr", self.lr)
        require(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")


QUICK = {"epochs": 200}


def run(cfg: Config, ctx: Context) -> Result:
    ds = data.linear_regression(cfg.n_samples, ctx.rng, weight=cfg.true_weight,
                                bias=cfg.true_bias, noise=cfg.noise)
    net = MLP([1, 1], output_activation="identity", init="xavier", rng=ctx.rng)
    history, seconds = fit(net, ds.X_train, ds.y_train, ctx, epochs=cfg.epochs, loss="mse",
                           optimizer="gd", lr=cfg.lr, batch_size=None)
    w, b = float(net.weights[0][0, 0]), float(net.biases[0][0])
    pred = net.forward(ds.X_test)
    metrics = {
        "weight": w,
        "bias": b,
        "true_weight": cfg.true_weight,
        "true_bias": cfg.true_bias,
        "weight_error": abs(w - cfg.true_weight),
        "bias_error": abs(b - cfg.true_bias),
        "test_mse": float(np.mean((pred - ds.y_test) ** 2)),
        "test_mae": float(np.mean(np.abs(pred - ds.y_test))),
        "train_seconds": round(seconds, 4),
    }
    arrays = {"X": ds.X_train, "y": ds.y_train}
    return trained_result(net, history, metrics, curves={"epochs": history_curves(history)},
                          arrays=arrays, scored=("test_mse", "test_mae"))


def figures(result: Result) -> dict:
    m, a = result.metrics, result.arrays
    fig, ax = plots.one_neuron_figure(result, "MSE")
    xs = np.array([a["X"].min(), a["X"].max()])
    ax.plot(xs, m["true_weight"] * xs + m["true_bias"], "k--",
            label=f"true: {m['true_weight']:.3g}x{m['true_bias']:+.3g}")
    ax.plot(xs, m["weight"] * xs + m["bias"], color=plots.COLORS["mlp"],
            label=f"learned: {m['weight']:.3g}x{m['bias']:+.3g}")
    lo, hi = float(a["y"].min()), float(a["y"].max())
    ax.set_ylim(lo - 0.3 * (hi - lo), hi + 0.3 * (hi - lo))  # the data, not a runaway line
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend(frameon=False, loc="upper left")
    ax.xaxis.set_major_locator(plots.MaxNLocator(5))
    ax.set_title("one linear neuron" + (" (diverged)" if result.status == "DIVERGED" else ""))
    return {"linear_regression": fig}
