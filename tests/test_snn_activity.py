"""Activity statistics: rates and sparseness by hand; synchrony through Elephant on known
spike trains."""

from __future__ import annotations

import numpy as np
import pytest

from neurosim.snn import activity


def test_rate_active_fraction_and_treves_rolls_by_hand():
    counts = np.array([[2, 0, 0, 0], [1, 1, 1, 1]])
    assert activity.mean_rate_hz(counts, 0.5) == pytest.approx(6 / 8 / 0.5)
    assert activity.active_fraction(counts) == pytest.approx(5 / 8)
    # sample 1: (2/4)^2 / (4/4) = 1/4 (one unit of four); sample 2: 1 (all equal)
    assert activity.treves_rolls(counts) == pytest.approx((0.25 + 1.0) / 2)
    # a silent sample is left out, not counted as 0 or NaN
    assert activity.treves_rolls(np.vstack([counts, np.zeros(4)])) == pytest.approx(0.625)


@pytest.mark.skipif(not activity.available(), reason="needs elephant and neo")
def test_synchrony_of_copies_is_high_and_shuffling_removes_it():
    rng = np.random.default_rng(0)
    base = np.sort(rng.uniform(0, 20.0, 80))
    n = 12
    i = np.repeat(np.arange(n), base.size)
    t = np.tile(base, n)
    i = np.concatenate([i, [n + 2]])  # one neuron with a single spike: dropped (min_spikes 2)
    t = np.concatenate([t, [1.0]])
    out = activity.synchrony(i, t, n + 4, 20.0, np.random.default_rng(1), n_surrogates=2)
    assert out["n_active"] == n and out["n_analysed"] == n
    assert out["sttc"] == pytest.approx(1.0)
    assert out["sttc_surrogate"] < 0.5
    assert out["spike_contrast"] > 0.9 > out["spike_contrast_surrogate"]


@pytest.mark.skipif(not activity.available(), reason="needs elephant and neo")
def test_synchrony_is_reproducible_and_leaves_numpy_global_state_alone():
    rng = np.random.default_rng(0)
    i, t = rng.integers(0, 30, 600), rng.uniform(0, 10.0, 600)
    np.random.seed(123)  # noqa: NPY002 (the legacy global generator Elephant uses)
    before = np.random.get_state()[1].copy()  # noqa: NPY002
    a = activity.synchrony(i, t, 30, 10.0, np.random.default_rng(5), max_neurons=10)
    np.testing.assert_array_equal(np.random.get_state()[1], before)  # noqa: NPY002
    b = activity.synchrony(i, t, 30, 10.0, np.random.default_rng(5), max_neurons=10)
    assert a == b and a["n_analysed"] == 10 and a["n_active"] == 30


def test_too_few_active_neurons_give_no_values():
    out = activity.synchrony(np.array([0, 0, 1]), np.array([0.1, 0.2, 0.3]), 5, 1.0,
                             np.random.default_rng(0))
    assert out["n_active"] == 1 and out["sttc"] is None and out["spike_contrast"] is None
