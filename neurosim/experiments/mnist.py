"""The Keras-style 784-32-10 MLP on MNIST (Adam, cross-entropy, 5 epochs).

The last seed article's model: one hidden layer of 32 ReLU units, softmax output, Adam with
lr 1e-3 and batch 32 for 5 epochs. Expected ~0.96-0.97 test accuracy (docs/experiments.md).
``dataset`` picks one of the 28x28 sets (mnist, fashion_mnist, kmnist): read from the four IDX
files in ``data_dir`` when given, else fetched once into the cache (`neurosim.data.fetch`).
"""

from __future__ import annotations

from dataclasses import dataclass

from neurosim import data, plots
from neurosim.ann import MLP
from neurosim.experiments.common import OPTIMIZER_CHOICES, classifier_result, fit
from neurosim.runner.contract import Context, Result
from neurosim.validation import require, require_choice, require_positive

# the 28x28 sets this 784-input network reads; sklearn's 8x8 digits has its own experiment
DATASETS = tuple(name for name in data.IMAGE_SETS if name != "digits")
IMAGE_SHAPE = (28, 28)


@dataclass(frozen=True)
class Config:
    dataset: str = "mnist"  # mnist, fashion_mnist or kmnist (28x28, 10 classes)
    data_dir: str = ""  # folder of the four IDX files; "": fetched into ~/.cache/neurosim
    hidden: tuple[int, ...] = (32,)  # the Keras example's single hidden layer of 32
    optimizer: str = "adam"  # Keras example: Adam
    lr: float = 0.001  # Keras' Adam default
    batch_size: int = 32  # Keras' default batch size
    epochs: int = 5  # the article trains 5 epochs
    n_train: int = 0  # use only the first n training images (0: all 60,000)
    n_test: int = 0  # use only the first n test images (0: all 10,000)
    val_fraction: float = 0.0  # stratified share of the training images held out (0: none)

    def __post_init__(self):
        require_choice("dataset", self.dataset, DATASETS)
        require(len(self.hidden) >= 1 and min(self.hidden) >= 1,
                f"hidden must list layer sizes >= 1, got {list(self.hidden)}")
        require_choice("optimizer", self.optimizer, OPTIMIZER_CHOICES)
        require_positive("lr", self.lr)
        require(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        require(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        require(self.n_train >= 0 and self.n_test >= 0, "n_train and n_test must be >= 0")
        require(0 <= self.val_fraction < 1, f"val_fraction must be in [0, 1), got "
                f"{self.val_fraction}")
        if self.n_train:  # the files' size is known only at load, where it is checked again
            data.check_split(self.n_train, None, self.val_fraction, n_classes=10,
                             keys={"n": "n_train", "val_fraction": "val_fraction"})


QUICK = {"epochs": 1, "n_train": 2000, "n_test": 500}


HEADLINE = ("test_accuracy", "train_accuracy", "train_seconds")


def run(cfg: Config, ctx: Context) -> Result:
    ds = data.load_dataset(cfg.dataset, cfg.data_dir or None, seed=ctx.seed,
                           n_train=cfg.n_train, n_test=cfg.n_test,
                           val_fraction=cfg.val_fraction, image_shape=IMAGE_SHAPE,
                           progressbar=ctx.show_progress)
    net = MLP([ds.X_train.shape[1], *cfg.hidden, 10], hidden_activation="relu",
              output_activation="softmax", init="he", rng=ctx.rng)
    history, seconds = fit(net, ds.X_train, ds.y_train, ctx, epochs=cfg.epochs,
                           loss="categorical_cross_entropy", optimizer=cfg.optimizer,
                           lr=cfg.lr, batch_size=cfg.batch_size, metrics=("accuracy",),
                           X_val=ds.X_val, y_val=ds.y_val,
                           monitor={"test": (ds.X_test, ds.y_test)})
    result = classifier_result(net, history, seconds, ds)
    result.metrics["dataset"] = cfg.dataset
    return result


def figures(result: Result) -> dict:
    name = result.metrics.get("dataset", "mnist")
    return {"mnist": plots.classifier_figure(result, image_shape=IMAGE_SHAPE,
                                             title=f"{name} 784-32-10 MLP")}
