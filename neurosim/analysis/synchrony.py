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
- ``trial_shift`` (`elephant.spike_train_surrogates.trial_shifting`'s procedure, on arrays:
  `trial_shift`): each neuron's response to each digit moves as a whole by up to
  ± ``dither_ms`` (wrapping within the window), which keeps its spike pattern and destroys its
  alignment with the other neurons.

Reported: the measured value, the surrogates' mean and sample sd, and the empirical one-sided
p-value ``(1 + #{surrogate >= measured}) / (1 + n_surrogates)``. Elephant's dithering draws from
numpy's global generator; it is seeded from the caller's Generator for the duration and
restored. Spike contrast costs ~50x the binned correlation, so it may be given a smaller null
(``contrast_surrogates``); the correlation always gets all ``n_surrogates``.
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


def _check_windows(windows) -> np.ndarray:
    windows = np.asarray(windows, dtype=float).reshape(-1, 2)
    require(bool(np.all(windows[:, 1] > windows[:, 0])), "every window must end after it starts")
    require(bool(np.all(windows[1:, 0] >= windows[:-1, 1])),
            "windows must be in time order and must not overlap")
    return windows


def _laid_end_to_end(spikes: Spikes, windows: np.ndarray, neurons: np.ndarray
                     ) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Per neuron, its spikes inside the windows with the gaps between windows cut out (window
    k starts where window k-1 ends), and the window each spike lies in.

    Returns (times per neuron, window index per neuron, start of every window on the joined
    axis with the total length appended: shape (n_windows + 1,)).
    """
    lengths = windows[:, 1] - windows[:, 0]
    starts = np.concatenate([[0.0], np.cumsum(lengths)])
    times, which = [], []
    for n in neurons:
        t = np.sort(spikes.t[spikes.i == n])
        k = np.searchsorted(windows[:, 0], t, side="right") - 1
        keep = (k >= 0) & (t < windows[np.maximum(k, 0), 1])
        t, k = t[keep], k[keep]
        times.append(t - windows[k, 0] + starts[k])
        which.append(k)
    return times, which, starts


def _neo(times: list[np.ndarray], total: float) -> list:
    import neo
    import quantities as pq

    return [neo.SpikeTrain(np.sort(t) * pq.s, t_start=0 * pq.s, t_stop=total * pq.s)
            for t in times]


def trial_shift(times: list[np.ndarray], which: list[np.ndarray], starts: np.ndarray,
                shift_s: float, rng: np.random.Generator) -> list[np.ndarray]:
    """One trial-shifting surrogate: each neuron's spikes in each window move together by one
    uniform draw in [-shift_s, shift_s), wrapping around inside the window.

    This is `elephant.spike_train_surrogates.trial_shifting` on arrays: Elephant's version
    builds one Neo object per neuron, trial and surrogate (190 s for 100 surrogates of 30
    neurons x 100 windows here) and draws from Python's `random` module, which no numpy
    Generator seeds (its surrogates differ from run to run).

    Parameters
    ----------
    times, which : list of ndarray, one per neuron
        Spike times on the joined axis and the window of each (`_laid_end_to_end`).
    starts : ndarray of shape (n_windows + 1,)
        Start of every window on the joined axis, total length last.
    """
    n_windows = len(starts) - 1
    lengths = np.diff(starts)
    out = []
    for t, k in zip(times, which, strict=True):
        u = rng.uniform(-shift_s, shift_s, size=n_windows)[k]
        out.append(starts[k] + np.mod(t - starts[k] + u, lengths[k]))
    return out


def measure(trains: list, t_stop_s: float, *, bin_ms: float = 5.0,
            min_bin_ms: float = 1.0, contrast: bool = True) -> dict[str, float]:
    """Spike contrast (with the bin size of its peak, ms; left out when `contrast` is False)
    and the mean pairwise correlation coefficient of the trains binned at `bin_ms`."""
    import quantities as pq
    from elephant.conversion import BinnedSpikeTrain
    from elephant.spike_train_correlation import correlation_coefficient
    from elephant.spike_train_synchrony import spike_contrast

    out: dict[str, float] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Elephant's notes on units, binning, silent trains
        if contrast:
            value, trace = spike_contrast(trains, t_start=0 * pq.s, t_stop=t_stop_s * pq.s,
                                          min_bin=min_bin_ms * pq.ms, return_trace=True)
            peak = int(np.argmax(trace.synchrony))
            out["spike_contrast"] = float(value)
            out["spike_contrast_bin_ms"] = float(np.asarray(trace.bin_size.rescale(pq.ms))[peak])
        # tolerance=None: a spike a rounding error below a bin edge stays in its bin
        # (Elephant would move it and log a warning for every data set)
        binned = BinnedSpikeTrain(trains, bin_size=bin_ms * pq.ms, t_start=0 * pq.s,
                                  t_stop=t_stop_s * pq.s, tolerance=None)
        cc = np.asarray(correlation_coefficient(binned), dtype=float)
    pairs = cc[np.triu_indices(len(trains), k=1)]
    out["correlation"] = (float(np.nanmean(pairs)) if np.isfinite(pairs).any()
                          else float("nan"))
    return out


def synchrony_test(spikes: Spikes, windows: np.ndarray, rng: np.random.Generator, *,
                   method: str = "dither", n_surrogates: int = 100, dither_ms: float = 10.0,
                   bin_ms: float = 5.0, min_bin_ms: float = 1.0, min_spikes: int = 2,
                   max_neurons: int = 20, contrast_surrogates: int | None = None) -> dict:
    """Synchrony of `spikes` inside `windows`, against stimulus-preserving surrogates.

    Parameters
    ----------
    spikes : Spikes
        The population's spikes.
    windows : ndarray of shape (n_windows, 2)
        Start and end (seconds) of every presentation, in time order, not overlapping; only
        spikes inside are analysed.
    rng : numpy.random.Generator
        Picks the neurons (when more than `max_neurons` are active) and draws the surrogates.
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
    contrast_surrogates : int or None
        Spike contrast is computed on the first this many surrogates only (None: all). It
        costs ~0.3-0.7 s per data set of 30 neurons x 35 s (Elephant tries ~90 bin sizes),
        the binned correlation ~10 ms: the correlation is the statistic that gets every
        surrogate, spike contrast a smaller null (its p-value cannot go below
        1 / (1 + contrast_surrogates)).

    Returns
    -------
    dict
        For each of ``spike_contrast`` and ``correlation``: ``{"value", "surrogate_mean",
        "surrogate_sd", "p", "n_surrogates"}``; ``spike_contrast_bin_ms`` (time scale of the
        peak); ``method``, ``n_surrogates``, ``dither_ms``, ``bin_ms``, ``n_active``,
        ``n_analysed``. Values are None when fewer than two neurons are active.
    """
    require_choice("surrogate method", method, METHODS)
    require(n_surrogates >= 1, f"n_surrogates must be >= 1, got {n_surrogates}")
    require(dither_ms > 0, f"dither_ms must be > 0, got {dither_ms}")
    require(contrast_surrogates is None or contrast_surrogates >= 0,
            f"contrast_surrogates must be >= 0, got {contrast_surrogates}")
    windows = _check_windows(windows)
    inside = np.zeros(spikes.n_spikes, dtype=bool)
    for a, b in windows:
        inside |= (spikes.t >= a) & (spikes.t < b)
    counts = np.bincount(spikes.i[inside], minlength=spikes.n_neurons)
    active = np.flatnonzero(counts >= min_spikes)
    n_contrast = n_surrogates if contrast_surrogates is None else min(contrast_surrogates,
                                                                      n_surrogates)
    out: dict = {"method": method, "n_surrogates": int(n_surrogates),
                 "dither_ms": float(dither_ms), "bin_ms": float(bin_ms),
                 "n_active": int(active.size), "spike_contrast_bin_ms": None}
    if active.size > max_neurons:
        active = np.sort(rng.choice(active, size=max_neurons, replace=False))
    out["n_analysed"] = int(active.size)
    sizes = {"spike_contrast": n_contrast, "correlation": n_surrogates}
    if active.size < 2:
        return {**out, **{k: _empty(sizes[k]) for k in MEASURES}}
    import quantities as pq
    from elephant.spike_train_surrogates import dither_spikes

    times, which, starts = _laid_end_to_end(spikes, windows, active)
    total = float(starts[-1])
    trains = _neo(times, total)
    observed = measure(trains, total, bin_ms=bin_ms, min_bin_ms=min_bin_ms)
    if method == "dither":  # per neuron: [surrogate]
        with seeded_global_numpy(rng), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            moved = [dither_spikes(tr, dither_ms * pq.ms, n_surrogates=n_surrogates, edges=True)
                     for tr in trains]
        per_surrogate = [[neuron[s] for neuron in moved] for s in range(n_surrogates)]
    else:
        per_surrogate = [_neo(trial_shift(times, which, starts, dither_ms / 1000.0, rng), total)
                         for _ in range(n_surrogates)]
    null: dict[str, list[float]] = {k: [] for k in MEASURES}
    for s, surrogate in enumerate(per_surrogate):
        values = measure(surrogate, total, bin_ms=bin_ms, min_bin_ms=min_bin_ms,
                         contrast=s < n_contrast)
        for k in MEASURES:
            if k in values:
                null[k].append(values[k])
    out["spike_contrast_bin_ms"] = observed["spike_contrast_bin_ms"]
    for k in MEASURES:
        out[k] = _versus(observed[k], np.asarray(null[k], dtype=float), sizes[k])
    return out


def _empty(n: int) -> dict:
    return {"value": None, "surrogate_mean": None, "surrogate_sd": None, "p": None,
            "n_surrogates": int(n)}


def _versus(v: float, values: np.ndarray, n: int) -> dict:
    """The measured value beside its null: mean, sample sd, one-sided empirical p."""
    values = values[np.isfinite(values)]
    if not np.isfinite(v) or values.size == 0:
        return _empty(n)
    return {"value": float(v), "surrogate_mean": float(values.mean()),
            "surrogate_sd": float(values.std(ddof=1)) if values.size > 1 else None,
            "p": float((1 + np.sum(values >= v)) / (1 + values.size)),
            "n_surrogates": int(values.size)}
