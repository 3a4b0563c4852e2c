"""Rate-based networks in numpy: the textbook MLP trained by backpropagation.

`functions` holds the activation / loss / initialiser tables, `mlp` the forward and backward
passes, `optim` the update rules and schedules, `train` the mini-batch loop.
"""

from neurosim.ann.functions import ACTIVATIONS, DERIVATIVES, INITIALISERS, LOSSES
from neurosim.ann.mlp import MLP
from neurosim.ann.optim import OPTIMIZERS, SCHEDULES, make_optimizer
from neurosim.ann.train import History, evaluate, train

__all__ = ["ACTIVATIONS", "DERIVATIVES", "INITIALISERS", "LOSSES", "MLP", "OPTIMIZERS",
           "SCHEDULES", "History", "evaluate", "make_optimizer", "train"]
