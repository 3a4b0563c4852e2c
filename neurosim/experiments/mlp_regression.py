"""A 2-10-10-1 ReLU MLP fits a noisy nonlinear function of two inputs with Adam.

Regression with a hidden representation: MSE is the training loss, the mean absolute error is
reported beside it because it reads in the units of the target. Expected: test MSE close to the
noise variance (the floor no model can beat).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurosim import data, plots
from neurosim.ann import MLP
from neurosim.experiments.common import fit, history_curves, trained_result
from neurosim.runner.contract import Context, Result
from neurosim.validation import require, require_fraction, require_non_negative, require_positive

TEST_FRACTION = 0.25  # share of n_samples held out for testing (fixed, not a key)


@dataclass(frozen=True)
class Config:
    hidden: tuple[int, ...] = (10, 10)  # hidden ReLU layers: the 2-10-10-1 network
    n_samples: int = 1000  # points of the noisy function (train + test)
    noise: float = 0.1  # std of the Gaussian noise; test MSE cannot go below noise**2
    lr: float = 0.01  # Adam step size
    epochs: int = 300  # passes over the training set
    batch_size: int = 32  # mini-batch size
    val_fraction: float = 0.2  # share of the training set held out to watch overfitting

    def __post_init__(self):
        require(len(self.hidden) >= 1 and min(self.hidden) >= 1,
                f"hidden must list layer sizes >= 1, got {list(self.hidden)}")
        require(self.n_samples >= 10, f"n_samples must be >= 10, got {self.n_samples}")
        require_non_negative("noise", self.noise)
        require_positive("lr", self.lr)
        require(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        require(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        require_fraction("val_fraction", self.val_fraction)
        # every part big enough before anything is allocated (a sweep refuses up front)
        data.check_split(self.n_samples, TEST_FRACTION, self.val_fraction,
                         keys={"n": "n_samples", "val_fraction": "val_fraction"})


QUICK = {"epochs": 20}


def run(cfg: Config, ctx: Context) -> Result:
    ds = data.nonlinear_regression(cfg.n_samples, ctx.rng, noise=cfg.noise,
                                   test_fraction=TEST_FRACTION)
    ds = data.carve_validation(ds, cfg.val_fraction)
    net = MLP([2, *cfg.hidden, 1], hidden_activation="relu", output_activation="identity",
              init="he", rng=ctx.rng)
    X_tr, y_tr = ds.X_train, ds.y_train
    history, seconds = fit(net, X_tr, y_tr, ctx, epochs=cfg.epochs, loss="mse",
                           optimizer="adam", lr=cfg.lr, batch_size=cfg.batch_size,
                           metrics=("mae",), X_val=ds.X_val, y_val=ds.y_val)
    pred = net.forward(ds.X_test)
    with np.errstate(all="ignore"):
        metrics = {
            "test_mse": float(np.mean((pred - ds.y_test) ** 2)),
            "test_mae": float(np.mean(np.abs(pred - ds.y_test))),
            "train_mse": float(np.mean((net.forward(X_tr) - y_tr) ** 2)),
            "noise_floor_mse": cfg.noise**2,
            "epochs_run": len(history.epochs["loss"]),
            "train_seconds": round(seconds, 4),
        }
    arrays = {"y_test": ds.y_test.ravel(), "pred_test": pred.ravel()}
    return trained_result(net, history, metrics, curves={"epochs": history_curves(history)},
                          arrays=arrays, scored=("test_mse", "test_mae", "train_mse"))


def figures(result: Result) -> dict:
    a = result.arrays
    fig, axes = plots.figure(2)
    plots.loss_curve(axes[0, 0], result.curves["epochs"], ylabel="MSE")
    axes[0, 0].axhline(result.metrics["noise_floor_mse"], color="gray", ls=":", lw=1,
                       label="noise floor")
    axes[0, 0].legend(frameon=False)
    axes[0, 0].set_title("loss")
    ax = axes[0, 1]
    ax.scatter(a["y_test"], a["pred_test"], s=8, alpha=0.5, color=plots.COLORS["mlp"])
    lo, hi = float(np.nanmin(a["y_test"])), float(np.nanmax(a["y_test"]))
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set_xlabel("target (test set)")
    ax.set_ylabel("network output")
    ax.set_title(f"test MAE {plots.score(result.metrics['test_mae'])}")
    return {"mlp_regression": fig}
