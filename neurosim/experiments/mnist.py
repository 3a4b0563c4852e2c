"""The Keras-style 784-32-10 MLP on MNIST (Adam, cross-entropy, 5 epochs).

The last seed article's model: one hidden layer of 32 ReLU units, softmax output, Adam with
lr 1e-3 and batch 32 for 5 epochs. Expected ~0.96-0.97 test accuracy (docs/experiments.md). MNIST is
read from the four IDX files (``.gz`` or not) in ``data_dir``; nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass

from neurosim import data, plots
from neurosim.ann import MLP
from neurosim.experiments.common import OPTIMIZER_CHOICES, classifier_result, fit
from neurosim.runner.contract import Context, Result
from neurosim.validation import require, require_choice, require_positive


@dataclass(frozen=True)
class Config:
    data_dir: str = "data/mnist"  # folder holding train-/t10k- images and labels IDX files
    hidden: tuple[int, ...] = (32,)  # the Keras example's single hidden layer of 32
    optimizer: str = "adam"  # Keras example: Adam
    lr: float = 0.001  # Keras' Adam default
    batch_size: int = 32  # Keras' default batch size
    epochs: int = 5  # the article trains 5 epochs
    n_train: int = 0  # use only the first n training images (0: all 60,000)
    n_test: int = 0  # use only the first n test images (0: all 10,000)

    def __post_init__(self):
        require(len(self.hidden) >= 1 and min(self.hidden) >= 1,
                f"hidden must list layer sizes >= 1, got {list(self.hidden)}")
        require_choice("optimizer", self.optimizer, OPTIMIZER_CHOICES)
        require_positive("lr", self.lr)
        require(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        require(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        require(self.n_train >= 0 and self.n_test >= 0, "n_train and n_test must be >= 0")


QUICK = {"epochs": 1, "n_train": 2000, "n_test": 500}


HEADLINE = ("test_accuracy", "train_accuracy", "train_seconds")


def run(cfg: Config, ctx: Context) -> Result:
    ds = data.mnist(cfg.data_dir, n_train=cfg.n_train or None, n_test=cfg.n_test or None)
    net = MLP([ds.X_train.shape[1], *cfg.hidden, 10], hidden_activation="relu",
              output_activation="softmax", init="he", rng=ctx.rng)
    history, seconds = fit(net, ds.X_train, ds.y_train, ctx, epochs=cfg.epochs,
                           loss="categorical_cross_entropy", optimizer=cfg.optimizer,
                           lr=cfg.lr, batch_size=cfg.batch_size, metrics=("accuracy",),
                           monitor={"test": (ds.X_test, ds.y_test)})
    return classifier_result(net, history, seconds, ds)


def figures(result: Result) -> dict:
    return {"mnist": plots.classifier_figure(result, image_shape=(28, 28),
                                             title="MNIST 784-32-10 MLP")}
