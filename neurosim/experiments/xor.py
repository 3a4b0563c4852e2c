"""XOR with the textbook 2-4-1 sigmoid MLP, full-batch gradient descent on the MSE.

XOR is the classic problem one neuron cannot solve (Minsky & Papert 1969) and one hidden layer
can (Rumelhart, Hinton & Williams 1986). Expected: all 4 patterns correct, the decision surface
carving the plane into two diagonal bands.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurosim import data, plots
from neurosim.ann import MLP
from neurosim.experiments.common import fit, history_curves, trained_result
from neurosim.runner.contract import Context, Result
from neurosim.validation import require, require_choice, require_positive


@dataclass(frozen=True)
class Config:
    hidden: int = 4  # hidden sigmoid units: the 2-4-1 network of the textbooks
    lr: float = 2.0  # full-batch GD step on the MSE; sigmoid saturation makes small steps crawl
    epochs: int = 5000  # full-batch steps; with lr=2 the 4 patterns are right after ~1,000
    init: str = "xavier"  # weight initialiser (xavier suits sigmoid units)

    def __post_init__(self):
        require(self.hidden >= 1, f"hidden must be >= 1, got {self.hidden}")
        require_positive("lr", self.lr)
        require(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        require_choice("init", self.init, ("xavier", "he"))


QUICK = {"epochs": 300}


def run(cfg: Config, ctx: Context) -> Result:
    ds = data.xor()
    net = MLP([2, cfg.hidden, 1], hidden_activation="sigmoid", output_activation="sigmoid",
              init=cfg.init, rng=ctx.rng)
    history, seconds = fit(net, ds.X_train, ds.y_train, ctx, epochs=cfg.epochs, loss="mse",
                           optimizer="gd", lr=cfg.lr, batch_size=None, metrics=("accuracy",))
    out = net.forward(ds.X_train).ravel()
    correct = int(np.sum((out > 0.5) == (ds.y_train.ravel() > 0.5)))
    xx, yy = np.meshgrid(np.linspace(-0.25, 1.25, 121), np.linspace(-0.25, 1.25, 121))
    zz = net.forward(np.c_[xx.ravel(), yy.ravel()].astype(net.dtype)).reshape(xx.shape)
    metrics = {
        "correct": correct,
        "train_accuracy": correct / 4,
        "test_accuracy": correct / 4,  # XOR has no held-out set: the 4 patterns are the task
        "outputs": out,
        "final_loss": history.epochs["loss"][-1],
        "train_seconds": round(seconds, 4),
    }
    arrays = {"xx": xx, "yy": yy, "zz": zz, "X": ds.X_train, "y": ds.y_train,
              "hidden": net.forward_layers(ds.X_train)[1]}
    return trained_result(net, history, metrics, curves={"epochs": history_curves(history)},
                          arrays=arrays,
                          scored=("correct", "train_accuracy", "test_accuracy", "outputs"))


def figures(result: Result) -> dict:
    a = result.arrays
    fig, axes = plots.figure(3, size=(4.2, 3.4))
    plots.loss_curve(axes[0, 0], result.curves["epochs"], ylabel="MSE")
    axes[0, 0].set_title("training loss")
    plots.decision_surface(axes[0, 1], a["xx"], a["yy"], a["zz"], a["X"], a["y"])
    axes[0, 1].set_title(f"decision surface ({plots.score(result.metrics['correct'], 'd')}/4 "
                         "correct)")
    img = axes[0, 2].imshow(a["hidden"], cmap="viridis", vmin=0, vmax=1)
    axes[0, 2].set_xticks(range(a["hidden"].shape[1]))
    axes[0, 2].set_yticks(range(4), [f"({int(x1)},{int(x2)})" for x1, x2 in a["X"]])
    axes[0, 2].set_xlabel("hidden unit")
    axes[0, 2].set_ylabel("input pattern")
    axes[0, 2].set_title("hidden activations")
    fig.colorbar(img, ax=axes[0, 2])
    return {"xor": fig}
