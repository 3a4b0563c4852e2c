"""Rate-based networks in numpy: the textbook MLP trained by backpropagation.

`functions` holds the activation / loss / initialiser tables, `mlp` the forward and backward
passes and the `MLP` class, `optim` the update rules and learning-rate schedules, `train` the
mini-batch loop (a KeyboardInterrupt passes through it, the `History` keeping what was
recorded; a network or batch too big for the machine is refused before allocating). Numpy (and
scipy's BLAS wrappers) only: importing this never imports Brian2.
"""

from neurosim.ann.functions import ACTIVATIONS, DERIVATIVES, INITIALISERS, LOSSES, Loss, huber
from neurosim.ann.mlp import MLP
from neurosim.ann.optim import DEFAULT_LR, OPTIMIZERS, SCHEDULES, Optimizer, make_optimizer
from neurosim.ann.train import History, evaluate, train, training_memory

__all__ = [
    "ACTIVATIONS",
    "DEFAULT_LR",
    "DERIVATIVES",
    "INITIALISERS",
    "LOSSES",
    "MLP",
    "OPTIMIZERS",
    "SCHEDULES",
    "History",
    "Loss",
    "Optimizer",
    "evaluate",
    "huber",
    "make_optimizer",
    "train",
    "training_memory",
]
