"""How a population is active: firing rates, sparseness, and synchrony measured with Elephant.

Rates and sparseness are a line of numpy each. Synchrony is left to the field's analysis
library, Elephant (Denker et al. 2018), on Neo spike trains:

- *spike contrast* (Ciba et al. 2018, `elephant.spike_train_synchrony.spike_contrast`): one
  population value in [0, 1], from how much more the spike counts of all neurons vary across
  bins than within them, maximised over bin sizes;
- *spike time tiling coefficient* (Cutts & Eglen 2014,
  `elephant.spike_train_correlation.spike_time_tiling_coefficient`): for a pair of neurons, in
  [-1, 1], how many spikes of each fall within ``dt`` of the other's beyond what their rates
  alone give; averaged over pairs.

Silent neurons are dropped first (a pair with a silent neuron has no STTC). Each value is set
beside the same measure on *surrogates*, spike trains with each neuron's inter-spike intervals
shuffled (`elephant.spike_train_surrogates.shuffle_isis`): same rates and interval statistics,
no relation between neurons. Synchrony is what the data show beyond their surrogates.

Elephant and Neo are an optional extra (``pip install neurosim[analysis]``); without them
`synchrony` says so and returns no values.
"""

from __future__ import annotations

import warnings

import numpy as np

from neurosim.analysis.synchrony import seeded_global_numpy

#: Synchrony values reported by `synchrony` (each also as ``<name>_surrogate``).
SYNCHRONY_KEYS = ("spike_contrast", "sttc")


def available() -> bool:
    """Whether Elephant and Neo can be imported."""
    try:
        import elephant  # noqa: F401
        import neo  # noqa: F401
    except ImportError:
        return False
    return True


def mean_rate_hz(counts: np.ndarray, window_s: float) -> float:
    """Mean firing rate over neurons and samples.

    Parameters
    ----------
    counts : ndarray of shape (n_samples, n_neurons)
        Spikes of each neuron in each sample's window.
    window_s : float
        Length of one sample's window (seconds).
    """
    return float(np.mean(counts) / window_s) if np.size(counts) else float("nan")


def active_fraction(activity: np.ndarray) -> float:
    """Mean over samples of the fraction of units with any activity (a spike, or a ReLU
    output above zero): population sparsity, in [0, 1], lower is sparser.

    Parameters
    ----------
    activity : ndarray of shape (n_samples, n_units), non-negative
    """
    return float(np.mean(np.asarray(activity) > 0)) if np.size(activity) else float("nan")


def treves_rolls(activity: np.ndarray) -> float:
    r"""Population sparseness of Treves & Rolls (1991), averaged over samples.

    .. math:: a = \frac{(\frac{1}{N}\sum_i r_i)^2}{\frac{1}{N}\sum_i r_i^2}

    1 when every unit is equally active, 1/N when one unit carries all the activity (lower is
    sparser). Samples with no activity at all are left out.

    Parameters
    ----------
    activity : ndarray of shape (n_samples, n_units), non-negative (spike counts or rates)
    """
    r = np.asarray(activity, dtype=float)
    power = np.mean(r ** 2, axis=1)
    keep = power > 0
    if not keep.any():
        return float("nan")
    return float(np.mean(np.mean(r[keep], axis=1) ** 2 / power[keep]))


def spike_trains(i: np.ndarray, t_s: np.ndarray, n_neurons: int, t_stop_s: float) -> list:
    """Spikes as one `neo.SpikeTrain` per neuron (seconds, from 0 to `t_stop_s`)."""
    import neo
    import quantities as pq

    i, t_s = np.asarray(i, dtype=np.int64), np.asarray(t_s, dtype=float)
    order = np.argsort(i, kind="stable")
    bounds = np.searchsorted(i[order], np.arange(n_neurons + 1))
    return [neo.SpikeTrain(np.sort(t_s[order[bounds[k]: bounds[k + 1]]]) * pq.s,
                           t_start=0 * pq.s, t_stop=float(t_stop_s) * pq.s)
            for k in range(n_neurons)]


def _measures(trains: list, t_stop_s: float, dt_s: float, min_bin_s: float) -> dict[str, float]:
    import quantities as pq
    from elephant.spike_train_correlation import spike_time_tiling_coefficient
    from elephant.spike_train_synchrony import spike_contrast

    contrast = spike_contrast(trains, t_start=0 * pq.s, t_stop=t_stop_s * pq.s,
                              min_bin=min_bin_s * pq.s)
    n = len(trains)
    sttc = [spike_time_tiling_coefficient(trains[a], trains[b], dt=dt_s * pq.s)
            for a in range(n) for b in range(a + 1, n)]
    sttc = np.asarray(sttc, dtype=float)
    return {"spike_contrast": float(contrast),
            "sttc": float(np.nanmean(sttc)) if np.isfinite(sttc).any() else float("nan")}


def synchrony(i: np.ndarray, t_s: np.ndarray, n_neurons: int, t_stop_s: float,
              rng: np.random.Generator, *, sttc_dt_ms: float = 5.0, min_bin_ms: float = 1.0,
              min_spikes: int = 2, max_neurons: int = 40,
              n_surrogates: int = 3) -> dict[str, float | int | None]:
    """Population synchrony of a spike recording and of its ISI-shuffled surrogates.

    Parameters
    ----------
    i, t_s : ndarray of shape (n_spikes,)
        Neuron index and time (seconds) of every spike.
    n_neurons : int
        Size of the population (silent neurons included).
    t_stop_s : float
        End of the recording (seconds).
    rng : numpy.random.Generator
        Picks the neurons (when more than `max_neurons` are active) and seeds the surrogates.
    sttc_dt_ms : float
        The STTC's coincidence window.
    min_bin_ms : float
        Smallest bin spike contrast tries.
    min_spikes : int
        Neurons with fewer spikes are left out (silent ones give no STTC).
    max_neurons : int
        At most this many active neurons, drawn at random (pairs grow as its square).
    n_surrogates : int
        Surrogate data sets; their values are averaged.

    Returns
    -------
    dict
        ``spike_contrast``, ``sttc`` and the same with ``_surrogate`` (None when fewer than
        two neurons are active or Elephant is missing), ``n_active`` (neurons with at least
        `min_spikes` spikes), ``n_analysed``.
    """
    i = np.asarray(i, dtype=np.int64)
    counts = np.bincount(i, minlength=n_neurons)
    active = np.flatnonzero(counts >= min_spikes)
    out: dict[str, float | int | None] = {k: None for k in SYNCHRONY_KEYS}
    out.update({f"{k}_surrogate": None for k in SYNCHRONY_KEYS})
    out["n_active"] = int(active.size)
    if active.size > max_neurons:
        active = np.sort(rng.choice(active, size=max_neurons, replace=False))
    out["n_analysed"] = int(active.size)
    if active.size < 2 or not available():
        return out
    from elephant.spike_train_surrogates import shuffle_isis

    keep = np.isin(i, active)
    remap = np.full(n_neurons, -1)
    remap[active] = np.arange(active.size)
    trains = spike_trains(remap[i[keep]], np.asarray(t_s)[keep], active.size, t_stop_s)
    dt_s, min_bin_s = sttc_dt_ms / 1000.0, min_bin_ms / 1000.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Elephant's notes on units and binning
        out.update(_measures(trains, t_stop_s, dt_s, min_bin_s))
        values: dict[str, list[float]] = {k: [] for k in SYNCHRONY_KEYS}
        with seeded_global_numpy(rng):
            shuffled = [shuffle_isis(tr, n_surrogates=n_surrogates) for tr in trains]
        for s in range(n_surrogates):
            for k, v in _measures([sh[s] for sh in shuffled], t_stop_s, dt_s,
                                  min_bin_s).items():
                values[k].append(v)
    for k, vs in values.items():
        out[f"{k}_surrogate"] = float(np.nanmean(vs)) if np.isfinite(vs).any() else None
    return out
