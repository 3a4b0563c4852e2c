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


def test_trial_shift_is_reproducible_from_the_generator():
    """Elephant's trial_shifting draws from Python's `random`, which no Generator seeds: the
    same rng gave different surrogates from run to run (fails on the Elephant-based code)."""
    spikes, windows = _population(np.random.default_rng(0), synchronous=True)
    a = synchrony_test(spikes, windows, np.random.default_rng(3), n_surrogates=7,
                       method="trial_shift")
    b = synchrony_test(spikes, windows, np.random.default_rng(3), n_surrogates=7,
                       method="trial_shift")
    assert a == b


def test_trial_shift_moves_a_response_as_a_whole_inside_its_window():
    """Hand-checked wrap: window [0, 0.2) joined with [0.5, 0.7) -> starts 0, 0.2, total 0.4."""
    from neurosim.analysis.synchrony import _laid_end_to_end, trial_shift

    spikes = Spikes([0, 0, 0, 1], [0.05, 0.19, 0.6, 0.3], 1.0, 2)  # 0.3 s: in the gap
    windows = np.array([[0.0, 0.2], [0.5, 0.7]])
    times, which, starts = _laid_end_to_end(spikes, windows, np.array([0, 1]))
    np.testing.assert_allclose(times[0], [0.05, 0.19, 0.3])
    assert times[1].size == 0 and list(which[0]) == [0, 0, 1]
    np.testing.assert_allclose(starts, [0.0, 0.2, 0.4])
    rng = np.random.default_rng(5)
    u = np.random.default_rng(5).uniform(-0.02, 0.02, size=2)
    moved = trial_shift(times, which, starts, 0.02, rng)[0]
    want = [np.mod(0.05 + u[0], 0.2), np.mod(0.19 + u[0], 0.2), 0.2 + np.mod(0.1 + u[1], 0.2)]
    np.testing.assert_allclose(moved, want)
    # the two spikes of window 0 keep their 140 ms interval unless one wraps
    assert all(0 <= t < 0.2 for t in moved[:2]) and 0.2 <= moved[2] < 0.4


def test_spike_contrast_may_get_a_smaller_null_than_the_correlation():
    spikes, windows = _population(np.random.default_rng(0), synchronous=True)
    res = synchrony_test(spikes, windows, np.random.default_rng(1), n_surrogates=9,
                         contrast_surrogates=3)
    assert res["correlation"]["n_surrogates"] == 9
    assert res["spike_contrast"]["n_surrogates"] == 3
    assert res["spike_contrast"]["p"] == pytest.approx(1 / 4)  # above all three
    assert res["correlation"]["p"] == pytest.approx(1 / 10)


def test_overlapping_windows_are_refused():
    with pytest.raises(InvalidParameterError, match="overlap"):
        synchrony_test(Spikes([0, 1], [0.1, 0.1], 1.0, 2), [[0, 0.5], [0.4, 0.9]],
                       np.random.default_rng(0))
