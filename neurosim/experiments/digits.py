"""An MLP classifies scikit-learn's 8x8 handwritten digits (Adam, softmax cross-entropy).

1,797 digits of 64 pixels, a stratified train/test split fixed by the seed. One hidden ReLU
layer is enough: expected test accuracy ~0.97-0.98 (DESIGN.md §6). The first layer's weights,
drawn as 8x8 images, show the stroke detectors it learned; compare them with the spiking
network's receptive fields in `stdp_digits`.
"""

from __future__ import annotations

from dataclasses import dataclass

from neurosim import data, plots
from neurosim.ann import MLP
from neurosim.config import (
    require,
    require_choice,
    require_fraction,
    require_non_negative,
    require_positive,
)
from neurosim.experiments.base import Context, Result
from neurosim.experiments.common import OPTIMIZER_CHOICES, classifier_result, fit


@dataclass(frozen=True)
class Config:
    hidden: tuple[int, ...] = (256,)  # one hidden layer; 256 units: 0.975-0.985 over 5 seeds
    activation: str = "relu"  # hidden activation
    optimizer: str = "adam"  # update rule (Kingma & Ba 2015)
    lr: float = 0.001  # step size; Adam's usual default
    momentum: float = 0.9  # for optimizer=momentum/nesterov
    batch_size: int = 32  # mini-batch size
    epochs: int = 40  # passes over the training set; test accuracy plateaus after ~30
    l2: float = 0.0  # L2 weight decay
    dropout: float = 0.0  # dropout on hidden layers (training only)
    test_fraction: float = 0.33  # share of the 1,797 digits held out for testing
    val_fraction: float = 0.0  # share of the training set for early stopping (0: none)
    patience: int = 10  # epochs without validation improvement before stopping

    def __post_init__(self):
        require(len(self.hidden) >= 1 and min(self.hidden) >= 1,
                f"hidden must list layer sizes >= 1, got {list(self.hidden)}")
        require_choice("activation", self.activation, ("relu", "sigmoid", "tanh", "leaky_relu"))
        require_choice("optimizer", self.optimizer, OPTIMIZER_CHOICES)
        require_positive("lr", self.lr)
        require_fraction("momentum", self.momentum)
        require(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        require(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        require_non_negative("l2", self.l2)
        require_fraction("dropout", self.dropout)
        require(0 < self.test_fraction < 1,
                f"test_fraction must be in (0, 1), got {self.test_fraction}")
        require_fraction("val_fraction", self.val_fraction)
        require(self.patience >= 1, f"patience must be >= 1, got {self.patience}")


QUICK = {"epochs": 5}


def run(cfg: Config, ctx: Context) -> Result:
    ds = data.digits(seed=ctx.seed, test_fraction=cfg.test_fraction)
    net = MLP([ds.X_train.shape[1], *cfg.hidden, ds.n_classes],
              hidden_activation=cfg.activation, output_activation="softmax",
              init="he" if "relu" in cfg.activation else "xavier", dropout=cfg.dropout,
              rng=ctx.rng)
    X_tr, y_tr, val = ds.X_train, ds.y_train, {}
    if cfg.val_fraction > 0:
        n_val = int(round(cfg.val_fraction * len(X_tr)))
        val = {"X_val": X_tr[:n_val], "y_val": y_tr[:n_val], "patience": cfg.patience}
        X_tr, y_tr = X_tr[n_val:], y_tr[n_val:]
    history, seconds = fit(net, X_tr, y_tr, ctx, epochs=cfg.epochs,
                           loss="categorical_cross_entropy", optimizer=cfg.optimizer,
                           lr=cfg.lr, momentum=cfg.momentum, l2=cfg.l2,
                           batch_size=cfg.batch_size, metrics=("accuracy",), **val)
    return classifier_result(net, history, seconds, ds)


def figures(result: Result) -> dict:
    return {"digits": classifier_figure(result, image_shape=(8, 8), title="digits MLP")}


def classifier_figure(result: Result, image_shape: tuple[int, int], title: str):
    """Loss, accuracy, confusion matrix and first-layer weights of an MLP classifier run."""
    fig, axes = plots.figure(4, size=(4.0, 3.6))
    plots.loss_curve(axes[0, 0], result.curves, ylabel="cross-entropy")
    axes[0, 0].set_title("loss")
    plots.loss_curve(axes[0, 1], result.curves, key="accuracy", ylabel="accuracy", logy=False)
    axes[0, 1].set_title("accuracy")
    plots.confusion_matrix(axes[0, 2], result.arrays["confusion"],
                           title=f"test accuracy {result.metrics['test_accuracy']:.3f}")
    W1 = result.arrays["W1"]
    plots.receptive_fields(axes[0, 3], W1[:, : min(64, W1.shape[1])], image_shape,
                           cmap="RdBu_r", signed=True,
                           title="first-layer weights (red +, blue -)")
    fig.suptitle(title)
    return fig
