"""Synchrony against stimulus-preserving surrogates (Elephant)."""

from __future__ import annotations

import numpy as np
import pytest

from neurosim.analysis.synchrony import synchrony_test
from neurosim.spikes import Spikes
from neurosim.validation import InvalidParameterError

pytest.importorskip("elephant")


def _population(rng, synchronous: bool, n_neurons=8, n_windows=10, present=0.2, rest=0.1):
    """Every neuron answers each presentation with spikes; synchronous: at the same instants
    (shared event times), else at independent times spread over the whole window (so moving
    them within it changes nothing). Nothing fires in the rests."""
    i, t, windows = [], [], []
    for w in range(n_windows):
        start = w * (present + rest)
        windows.append((start, start + present))
        shared = np.sort(rng.uniform(start + 0.02, start + present - 0.02, size=4))
        for n in range(n_neurons):
            times = shared if synchronous else np.sort(
                rng.uniform(start, start + present, size=4))
            i += [n] * len(times)
            t += list(times)
    return Spikes(i, t, n_windows * (present + rest), n_neurons), np.array(windows)


def test_exact_coincidences_beat_dithered_surrogates():
    rng = np.random.default_rng(0)
    spikes, windows = _population(rng, synchronous=True)
    res = synchrony_test(spikes, windows, np.random.default_rng(1), n_surrogates=19,
                         dither_ms=10)
    assert res["n_analysed"] == 8
    for key in ("spike_contrast", "correlation"):
        assert res[key]["value"] > res[key]["surrogate_mean"]
        assert res[key]["p"] == pytest.approx(1 / 20)  # above every surrogate
    assert res["spike_contrast_bin_ms"] > 0


def test_independent_neurons_are_not_called_synchronous():
    spikes, windows = _population(np.random.default_rng(0), synchronous=False)
    res = synchrony_test(spikes, windows, np.random.default_rng(1), n_surrogates=19,
                         method="trial_shift", dither_ms=50)
    assert res["correlation"]["p"] > 0.05


def test_spikes_outside_the_windows_are_ignored_and_draws_are_reproducible():
    spikes, windows = _population(np.random.default_rng(0), synchronous=True)
    rest_spikes = Spikes(np.r_[spikes.i, np.arange(8)], np.r_[spikes.t, np.full(8, 0.25)],
                         spikes.t_stop, 8)  # 0.25 s lies in the first rest
    a = synchrony_test(spikes, windows, np.random.default_rng(3), n_surrogates=5)
    b = synchrony_test(rest_spikes, windows, np.random.default_rng(3), n_surrogates=5)
    assert a == b


def test_too_few_active_neurons_give_no_values():
    res = synchrony_test(Spikes([0, 0, 0], [0.01, 0.02, 0.03], 1.0, 5), [[0, 1]],
                         np.random.default_rng(0), n_surrogates=3)
    assert res["n_active"] == 1 and res["correlation"]["value"] is None


def test_bad_method_is_refused():
    with pytest.raises(InvalidParameterError, match="surrogate method"):
        synchrony_test(Spikes([], [], 1.0, 2), [[0, 1]], np.random.default_rng(0),
                       method="shuffle")
