"""Synchrony against a stimulus-preserving null: is a population more synchronous than its
stimulus alone makes it?

Two Elephant measures on Neo spike trains: *spike contrast* (Ciba et al. 2018; one population
value in [0, 1], maximised over bin sizes: the bin size of the peak is its time scale) and the
mean pairwise *correlation coefficient* of the trains binned at ``bin_ms``
(`elephant.spike_train_correlation.correlation_coefficient` on a `BinnedSpikeTrain`: all pairs
in one call; Elephant's spike time tiling coefficient costs ~5 ms per pair, too slow for a
hundred surrogates of a few hundred pairs). A value means little on its
own: neurons driven by the same digit fire together because of the digit. The null keeps that
and breaks the rest. Only spikes inside the presentation windows are analysed (the silent gaps
between digits are cut out, so no surrogate can move a spike into them), and each surrogate
moves spikes within their own window:

- ``dither`` (`elephant.spike_train_surrogates.dither_spikes`, edges kept): every spike moves by
  up to ± ``dither_ms``, which keeps each neuron's response to each digit and its timing at
  coarser scales, and destroys exact coincidences (windows are laid end to end first, so a
  spike near a window's end may move into the next presentation, never into a gap);
- ``trial_shift`` (`elephant.spike_train_surrogates.trial_shifting`): each neuron's response to
  each digit moves as a whole by up to ± ``dither_ms`` (wrapping within the window), which keeps
  its spike pattern and destroys its alignment with the other neurons.

Reported: the measured value, the surrogates' mean and sample sd, and the empirical one-sided
p-value ``(1 + #{surrogate >= measured}) / (1 + n_surrogates)``. Elephant draws from numpy's
global generator; it is seeded from the caller's Generator for the duration and restored.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import numpy as np

from neurosim.spikes import Spikes
from neurosim.validation import require, require_choice

#: The surrogate methods (name -> what moves).
METHODS = {"dither": "every spike within ± dither_ms",
           "trial_shift": "each neuron's response to each presentation as a whole"}
MEASURES = ("spike_contrast", "correlation")


@contextlib.contextmanager
def seeded_global_numpy(rng: np.random.Generator) -> Iterator[None]:
    """Elephant's surrogates draw from numpy's global generator: seed it from `rng` for the
    duration and put its state back afterwards."""
    state = np.random.get_state()  # noqa: NPY002 (Elephant reads the legacy global generator)
    np.random.seed(int(rng.integers(0, 2**32 - 1)))  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


def _laid_end_to_end(spikes: Spikes, windows: np.ndarray, neurons: np.ndarray
                     ) -> tuple[list, float]:
    """One Neo train per neuron: its spikes inside the windows, the gaps between windows cut
    out (window k starts where window k-1 ends)."""
    import neo
    import quantities as pq

    lengths = windows[:, 1] - windows[:, 0]
    offsets = np.concatenate([[0.0], np.cumsum(lengths)[:-1]]) - windows[:, 0]
    total = float(lengths.sum())
    trains = []
    for n in neurons:
        t = spikes.t[spikes.i == n]
        parts = [t[(t >= a) & (t < b)] + off
                 for (a, b), off in zip(windows, offsets, strict=True)]
        trains.append(neo.SpikeTrain(np.sort(np.concatenate(parts)) * pq.s, t_start=0 * pq.s,
                                     t_stop=total * pq.s))
    return trains, total


def _trials(spikes: Spikes, windows: np.ndarray, neurons: np.ndarray) -> list[list]:
    """Per neuron, one Neo train per presentation window (its own t_start/t_stop)."""
    import neo
    import quantities as pq

    out = []
    for n in neurons:
        t = np.sort(spikes.t[spikes.i == n])
        out.append([neo.SpikeTrain(t[(t >= a) & (t < b)] * pq.s, t_start=a * pq.s,
                                   t_stop=b * pq.s) for a, b in windows])
    return out


def _join_trials(trials: list, windows: np.ndarray) -> list:
    """Per-window trains (per neuron) laid end to end, as `_laid_end_to_end` does."""
    import neo
    import quantities as pq

    lengths = windows[:, 1] - windows[:, 0]
    offsets = np.concatenate([[0.0], np.cumsum(lengths)[:-1]]) - windows[:, 0]
    return [neo.SpikeTrain(np.concatenate([tr.rescale(pq.s).magnitude + off
                                           for tr, off in zip(neuron, offsets, strict=True)])
                           * pq.s, t_start=0 * pq.s, t_stop=float(lengths.sum()) * pq.s)
            for neuron in trials]


def measure(trains: list, t_stop_s: float, *, bin_ms: float = 5.0,
            min_bin_ms: float = 1.0) -> dict[str, float]:
    """Spike contrast (with the bin size of its peak, ms) and the mean pairwise correlation
    coefficient of the trains binned at `bin_ms`."""
    import quantities as pq
    from elephant.conversion import BinnedSpikeTrain
    from elephant.spike_train_correlation import correlation_coefficient
    from elephant.spike_train_synchrony import spike_contrast

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Elephant's notes on units, binning, silent trains
        value, trace = spike_contrast(trains, t_start=0 * pq.s, t_stop=t_stop_s * pq.s,
                                      min_bin=min_bin_ms * pq.ms, return_trace=True)
        binned = BinnedSpikeTrain(trains, bin_size=bin_ms * pq.ms, t_start=0 * pq.s,
                                  t_stop=t_stop_s * pq.s)
        cc = np.asarray(correlation_coefficient(binned), dtype=float)
    pairs = cc[np.triu_indices(len(trains), k=1)]
    peak = int(np.argmax(trace.synchrony))
    bin_peak = float(np.asarray(trace.bin_size.rescale(pq.ms))[peak])
    return {"spike_contrast": float(value), "spike_contrast_bin_ms": bin_peak,
            "correlation": float(np.nanmean(pairs)) if np.isfinite(pairs).any()
            else float("nan")}


def synchrony_test(spikes: Spikes, windows: np.ndarray, rng: np.random.Generator, *,
                   method: str = "dither", n_surrogates: int = 100, dither_ms: float = 10.0,
                   bin_ms: float = 5.0, min_bin_ms: float = 1.0, min_spikes: int = 2,
                   max_neurons: int = 20) -> dict:
    """Synchrony of `spikes` inside `windows`, against stimulus-preserving surrogates.

    Parameters
    ----------
    spikes : Spikes
        The population's spikes.
    windows : ndarray of shape (n_windows, 2)
        Start and end (seconds) of every presentation; only spikes inside are analysed.
    rng : numpy.random.Generator
        Picks the neurons (when more than `max_neurons` are active) and seeds the surrogates.
    method : {"dither", "trial_shift"}
        The surrogate (`METHODS`).
    n_surrogates : int
        Surrogate data sets (>= 100 for a p-value down to ~0.01).
    dither_ms : float
        How far a spike (dither) or a response (trial_shift) may move.
    bin_ms, min_bin_ms : float
        The correlation's bin; the smallest bin spike contrast tries.
    min_spikes : int
        Neurons with fewer spikes inside the windows are left out (silent ones correlate with
        nothing).
    max_neurons : int
        At most this many active neurons, drawn at random (pairs grow as its square).

    Returns
    -------
    dict
        For each of ``spike_contrast`` and ``correlation``: ``{"value", "surrogate_mean",
        "surrogate_sd", "p"}``; ``spike_contrast_bin_ms`` (time scale of the peak);
        ``method``, ``n_surrogates``, ``n_active``, ``n_analysed``. Values are None when fewer
        than two neurons are active.
    """
    require_choice("surrogate method", method, METHODS)
    require(n_surrogates >= 1, f"n_surrogates must be >= 1, got {n_surrogates}")
    require(dither_ms > 0, f"dither_ms must be > 0, got {dither_ms}")
    windows = np.asarray(windows, dtype=float).reshape(-1, 2)
    require(bool(np.all(windows[:, 1] > windows[:, 0])), "every window must end after it starts")
    inside = np.zeros(spikes.n_spikes, dtype=bool)
    for a, b in windows:
        inside |= (spikes.t >= a) & (spikes.t < b)
    counts = np.bincount(spikes.i[inside], minlength=spikes.n_neurons)
    active = np.flatnonzero(counts >= min_spikes)
    out: dict = {"method": method, "n_surrogates": int(n_surrogates),
                 "n_active": int(active.size), "spike_contrast_bin_ms": None}
    if active.size > max_neurons:
        active = np.sort(rng.choice(active, size=max_neurons, replace=False))
    out["n_analysed"] = int(active.size)
    empty = {"value": None, "surrogate_mean": None, "surrogate_sd": None, "p": None}
    if active.size < 2:
        return {**out, **{k: dict(empty) for k in MEASURES}}
    import quantities as pq
    from elephant.spike_train_surrogates import dither_spikes, trial_shifting

    trains, total = _laid_end_to_end(spikes, windows, active)
    observed = measure(trains, total, bin_ms=bin_ms, min_bin_ms=min_bin_ms)
    with seeded_global_numpy(rng), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method == "dither":  # per neuron: [surrogate]
            moved = [dither_spikes(tr, dither_ms * pq.ms, n_surrogates=n_surrogates, edges=True)
                     for tr in trains]
            per_surrogate = [[neuron[s] for neuron in moved] for s in range(n_surrogates)]
        else:  # trial_shifting, per neuron: [surrogate][trial]
            moved = [trial_shifting(neuron, dither_ms * pq.ms, n_surrogates=n_surrogates)
                     for neuron in _trials(spikes, windows, active)]
            per_surrogate = [_join_trials([neuron[s] for neuron in moved], windows)
                             for s in range(n_surrogates)]
    null = {k: [] for k in MEASURES}
    for surrogate in per_surrogate:
        values = measure(surrogate, total, bin_ms=bin_ms, min_bin_ms=min_bin_ms)
        for k in MEASURES:
            null[k].append(values[k])
    out["spike_contrast_bin_ms"] = observed["spike_contrast_bin_ms"]
    for k in MEASURES:
        values = np.asarray(null[k], dtype=float)
        values = values[np.isfinite(values)]
        v = observed[k]
        if not np.isfinite(v) or values.size == 0:
            out[k] = dict(empty)
            continue
        out[k] = {"value": float(v), "surrogate_mean": float(values.mean()),
                  "surrogate_sd": float(values.std(ddof=1)) if values.size > 1 else None,
                  "p": float((1 + np.sum(values >= v)) / (1 + values.size))}
    return out
