"""Damage, measured rather than asserted: remove synapses at random, add noise to inputs, and
summarise repeated draws.

Numpy only, for every kind of network: an MLP's weight matrices, a spiking network's input
weights, a converted network's normalised weights are all arrays of synaptic strengths. A
removed synapse is a zero weight; nothing rescales the survivors (no retraining, no
renormalisation), so what is measured is the damage itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def remove_synapses(weights: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """A copy of `weights` with ``round(fraction * weights.size)`` entries, drawn at random
    without replacement, set to zero.

    Parameters
    ----------
    weights : ndarray of any shape
    fraction : float
        Share of the synapses removed, in [0, 1]. 0 returns an exact copy (and draws nothing
        from `rng`).
    rng : numpy.random.Generator
    """
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    out = np.array(weights, copy=True)
    n = int(round(fraction * out.size))
    if n:
        out.flat[rng.choice(out.size, size=n, replace=False)] = 0  # any memory layout
    return out


def lesion(weights: Sequence[np.ndarray], fraction: float,
           rng: np.random.Generator) -> list[np.ndarray]:
    """`remove_synapses` applied to every weight matrix of a network: each loses `fraction`
    of its synapses."""
    return [remove_synapses(W, fraction, rng) for W in weights]


def noisy(X: np.ndarray, sd: float, rng: np.random.Generator) -> np.ndarray:
    """Pixels plus Gaussian noise of standard deviation `sd`, clipped back to [0, 1].

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), intensities in [0, 1]
    sd : float
        In units of the pixel range; 0 returns an exact copy (and draws nothing).
    """
    if not sd >= 0:
        raise ValueError(f"noise sd must be >= 0, got {sd}")
    X = np.asarray(X)
    if sd == 0:
        return X.copy()
    return np.clip(X + sd * rng.standard_normal(X.shape), 0.0, 1.0).astype(X.dtype)


def percent_key(value: float) -> str:
    """0.3 -> ``"30pct"``: a metric name for a fraction (dots would split dotted names)."""
    return f"{int(round(value * 100))}pct"
