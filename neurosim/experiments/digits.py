"""An MLP classifies scikit-learn's 8x8 handwritten digits (Adam, softmax cross-entropy).

1,797 digits of 64 pixels, a stratified train/test split fixed by the seed. One hidden ReLU
layer is enough: expected test accuracy ~0.97-0.98 (docs/experiments.md). The first layer's weights,
drawn as 8x8 images, show the stroke detectors it learned; compare them with the spiking
network's receptive fields in `stdp_digits`.
"""

from __future__ import annotations

from dataclasses import dataclass

from neurosim import data, plots
from neurosim.ann import DEFAULT_LR, MLP
from neurosim.ann.train import require_training_memory
from neurosim.experiments.common import OPTIMIZER_CHOICES, classifier_result, fit
from neurosim.runner.contract import Context, Result
from neurosim.validation import (
    require,
    require_choice,
    require_fraction,
    require_non_negative,
    require_positive,
)

N_DIGITS = 1797  # scikit-learn's 8x8 digits


@dataclass(frozen=True)
class Config:
    hidden: tuple[int, ...] = (256,)  # one hidden layer; 256 units: 0.975-0.985 over 5 seeds
    activation: str = "relu"  # hidden activation
    optimizer: str = "adam"  # update rule (Kingma & Ba 2015)
    lr: float | None = None  # step size; None: the optimiser's usual one (adam 1e-3, sgd 1e-2)
    momentum: float = 0.9  # for optimizer=momentum/nesterov
    batch_size: int = 32  # mini-batch size
    epochs: int = 40  # passes over the training set; test accuracy plateaus after ~30
    l2: float = 0.0  # L2 weight decay
    dropout: float = 0.0  # dropout on hidden layers (training only)
    test_fraction: float = 0.33  # share of the 1,797 digits held out for testing
    val_fraction: float = 0.0  # stratified share of the training set for early stopping (0: none)
    patience: int = 10  # epochs without validation improvement before stopping

    def __post_init__(self):
        require(len(self.hidden) >= 1 and min(self.hidden) >= 1,
                f"hidden must list layer sizes >= 1, got {list(self.hidden)}")
        require_choice("activation", self.activation, ("relu", "sigmoid", "tanh", "leaky_relu"))
        require_choice("optimizer", self.optimizer, OPTIMIZER_CHOICES)
        if self.lr is None:  # resolved here, so config.json records the rate used
            object.__setattr__(self, "lr", DEFAULT_LR[self.optimizer])
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
        # before any allocation: 64 pixels in, 10 classes out, every digit scored at once
        require_training_memory(f"hidden={list(self.hidden)}", [64, *self.hidden, 10],
                                batch_size=self.batch_size, optimizer=self.optimizer,
                                eval_rows=N_DIGITS, keep_best=self.val_fraction > 0)


QUICK = {"epochs": 5}


HEADLINE = ("test_accuracy", "train_accuracy", "val_accuracy", "epochs_run", "train_seconds")


def run(cfg: Config, ctx: Context) -> Result:
    ds = data.digits(seed=ctx.seed, test_fraction=cfg.test_fraction,
                     val_fraction=cfg.val_fraction)
    net = MLP([ds.X_train.shape[1], *cfg.hidden, ds.n_classes],
              hidden_activation=cfg.activation, output_activation="softmax",
              init="he" if "relu" in cfg.activation else "xavier", dropout=cfg.dropout,
              rng=ctx.rng)
    val = {}
    if ds.X_val is not None:
        val = {"X_val": ds.X_val, "y_val": ds.y_val, "patience": cfg.patience}
    history, seconds = fit(net, ds.X_train, ds.y_train, ctx, epochs=cfg.epochs,
                           loss="categorical_cross_entropy", optimizer=cfg.optimizer,
                           lr=cfg.lr, momentum=cfg.momentum, l2=cfg.l2,
                           batch_size=cfg.batch_size, metrics=("accuracy",),
                           monitor={"test": (ds.X_test, ds.y_test)}, **val)
    return classifier_result(net, history, seconds, ds)


def figures(result: Result) -> dict:
    return {"digits": plots.classifier_figure(result, image_shape=(8, 8), title="digits MLP")}
