"""Input coding: arrays -> Poisson rates, and schedules that present many samples in one run().

A `Schedule` lays samples out in time: each is shown for ``present_ms`` at its rates, then the
inputs fall silent for ``rest_ms`` so membranes and traces relax. The whole pass becomes one
table of rates (one row per time block) that a Brian2 ``TimedArray`` plays back, so a single
``run()`` presents every sample; spike counts per sample are recovered afterwards from the
monitor's spike times with one ``np.bincount``. (A ``run()`` per sample costs ~0.15-0.2 s of
overhead each in runtime mode; docs/concepts.md, "Brian2: what makes it fast here".)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def check_intensities(X: np.ndarray, n_inputs: int | None = None) -> np.ndarray:
    """`X` as a float array of intensities, or a ValueError saying what is wrong with it.

    Parameters
    ----------
    X : array_like of shape (n_samples, n_inputs)
        Intensities in [0, 1] (pixels scaled to [0, 1]).
    n_inputs : int, optional
        The width the network expects.
    """
    X = np.asarray(X, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"inputs must have shape (n_samples, n_inputs), got shape {X.shape}")
    if n_inputs is not None and X.shape[1] != n_inputs:
        raise ValueError(f"inputs have {X.shape[1]} columns but the network has {n_inputs} "
                         "input neurons")
    if X.size and not (np.isfinite(X).all() and X.min() >= 0 and X.max() <= 1):
        raise ValueError("input intensities must be finite numbers in [0, 1] (scale pixels "
                         f"to [0, 1]); got values in [{np.nanmin(X):.3g}, {np.nanmax(X):.3g}]")
    return X


def on_off(X: np.ndarray) -> np.ndarray:
    """ON/OFF coding: every intensity drives an ON cell (x) and an OFF cell (1 - x), like the
    retina's ON- and OFF-centre ganglion cells.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_pixels), intensities in [0, 1]

    Returns
    -------
    ndarray of shape (n_samples, 2 * n_pixels): the ON cells, then the OFF cells
    """
    X = check_intensities(X)
    return np.hstack([X, 1.0 - X])


def poisson_rates(X: np.ndarray, max_rate_hz: float) -> np.ndarray:
    """Intensities in [0, 1] -> firing rates in Hz (rate coding).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_inputs)
        Pixel intensities scaled to [0, 1].
    max_rate_hz : float
        Rate of a fully-on input (Diehl & Cook 2015: 255/4 = 63.75 Hz).

    Returns
    -------
    ndarray of shape (n_samples, n_inputs), float64, Hz
    """
    return np.clip(np.asarray(X, dtype=float), 0.0, None) * float(max_rate_hz)


def poisson_spikes(rates_hz: np.ndarray, duration_s: float, dt_s: float,
                   rng: np.random.Generator) -> np.ndarray:
    """Bernoulli approximation of Poisson spike trains, for numpy-only code and tests.

    Returns a boolean array of shape (n_steps, n_inputs): spike in step k with probability
    ``rate * dt``.
    """
    n_steps = int(round(duration_s / dt_s))
    p = np.clip(np.asarray(rates_hz, float) * dt_s, 0.0, 1.0)
    return rng.random((n_steps, p.size)) < p.ravel()


@dataclass(frozen=True)
class Schedule:
    """Presentation + rest of each sample, in blocks of a common length.

    Attributes
    ----------
    present_ms : float
        How long each sample is shown (Diehl & Cook: 350 ms).
    rest_ms : float
        Silence after each sample (Diehl & Cook: 150 ms).
    """

    present_ms: float
    rest_ms: float

    @property
    def period_ms(self) -> float:
        return self.present_ms + self.rest_ms

    @property
    def block_ms(self) -> float:
        """Largest block length that tiles both phases (the TimedArray's dt)."""
        scale = 1000  # microsecond resolution
        a, b = round(self.present_ms * scale), round(self.rest_ms * scale)
        return math.gcd(a, b) / scale if b else self.present_ms

    @property
    def blocks_per_sample(self) -> int:
        return int(round(self.period_ms / self.block_ms))

    def table(self, rates: np.ndarray) -> np.ndarray:
        """Rates of each sample, shape (n_samples, n_inputs) -> one row per block of the pass,
        shape (n_samples * blocks_per_sample, n_inputs); rest blocks are zero."""
        n_on = int(round(self.present_ms / self.block_ms))
        out = np.zeros((len(rates), self.blocks_per_sample, rates.shape[1]))
        out[:, :n_on, :] = rates[:, None, :]
        return out.reshape(-1, rates.shape[1])


def counts_per_sample(i: np.ndarray, t_s: np.ndarray, t_start_s: float, period_s: float,
                      n_samples: int, n_neurons: int) -> np.ndarray:
    """Spike counts of each neuron in each sample window of a pass.

    Parameters
    ----------
    i, t_s : ndarray of shape (n_spikes,)
        Neuron indices and spike times (seconds) from a SpikeMonitor.
    t_start_s : float
        Time the pass started; sample k occupies ``[t_start + k*period, t_start + (k+1)*period)``.

    Returns
    -------
    ndarray of shape (n_samples, n_neurons), int64
    """
    sample = np.floor((np.asarray(t_s) - t_start_s) / period_s + 1e-9).astype(np.int64)
    keep = (sample >= 0) & (sample < n_samples)
    flat = sample[keep] * n_neurons + np.asarray(i, dtype=np.int64)[keep]
    return np.bincount(flat, minlength=n_samples * n_neurons).reshape(n_samples, n_neurons)
