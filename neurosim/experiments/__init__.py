"""The experiment registry: name -> (module, one-line description).

Modules are imported only when an experiment is run, so ``neurosim.run list`` stays fast and
never imports Brian2. Each module implements `neurosim.runner.contract.Experiment`
(``Config``, ``QUICK``, ``run``, ``figures``).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from neurosim.validation import InvalidParameterError as ConfigError
from neurosim.validation import closest

EXPERIMENTS: dict[str, tuple[str, str]] = {
    "brain_vs_ann": (
        "neurosim.experiments.brain_vs_ann",
        "brain vs. artificial network side by side: backprop MLP, STDP spiking network and "
        "the MLP converted to spikes",
    ),
    "xor": (
        "neurosim.experiments.xor",
        "2-4-1 sigmoid MLP learns XOR by full-batch gradient descent",
    ),
    "linear_regression": (
        "neurosim.experiments.linear_regression",
        "one linear neuron recovers a generating weight and bias by gradient descent",
    ),
    "logistic_regression": (
        "neurosim.experiments.logistic_regression",
        "one sigmoid neuron learns the 1-D threshold task",
    ),
    "mlp_regression": (
        "neurosim.experiments.mlp_regression",
        "2-10-10-1 ReLU MLP fits a noisy nonlinear function with Adam",
    ),
    "digits": (
        "neurosim.experiments.digits",
        "MLP classifies sklearn's 8x8 digits (Adam, cross-entropy)",
    ),
    "mnist": (
        "neurosim.experiments.mnist",
        "Keras-style 784-32-10 MLP on a 28x28 set (mnist, fashion_mnist, kmnist; fetched or "
        "data_dir=DIR)",
    ),
    "hebbian_oja": (
        "neurosim.experiments.hebbian_oja",
        "Oja's rule finds the first principal component; plain Hebb diverges",
    ),
    "bcm_selectivity": (
        "neurosim.experiments.bcm_selectivity",
        "a BCM neuron becomes selective to one of two alternating patterns",
    ),
    "stdp_song2000": (
        "neurosim.experiments.stdp_song2000",
        "Song, Miller & Abbott 2000: additive STDP drives input weights bimodal (Brian2)",
    ),
    "stdp_digits": (
        "neurosim.experiments.stdp_digits",
        "Diehl & Cook-style unsupervised STDP + winner-take-all network learns digits (Brian2)",
    ),
    "sleep_replay": (
        "neurosim.experiments.sleep_replay",
        "sleep replay consolidation (Tadros et al. 2022): a spiking sleep phase after each task "
        "keeps old digits alive",
    ),
    "dream_unlearning": (
        "neurosim.experiments.dream_unlearning",
        "Hopfield network: dreams unlearn spurious attractors (HFP 1983); too many erase memories",
    ),
}


def get(name: str) -> ModuleType:
    """Import the module of experiment `name`; an unknown name raises `ConfigError`."""
    if name not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment '{name}'; {closest(name, EXPERIMENTS)}")
    return importlib.import_module(EXPERIMENTS[name][0])
