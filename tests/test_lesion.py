"""Lesions and input noise: exact counts, nothing touched at 0, any memory layout."""

from __future__ import annotations

import numpy as np
import pytest

from neurosim import lesion


@pytest.mark.parametrize("order", ["C", "F"])
def test_zero_lesion_changes_nothing_and_draws_nothing(order):
    W = np.asarray(np.random.default_rng(0).normal(size=(7, 5)), order=order)
    rng, ref = np.random.default_rng(1), np.random.default_rng(1)
    out = lesion.remove_synapses(W, 0.0, rng)
    np.testing.assert_array_equal(out, W)
    assert out is not W
    assert rng.random() == ref.random()  # the stream is where it was


@pytest.mark.parametrize("order", ["C", "F"])  # MLP weights are Fortran-ordered
@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5, 0.9, 1.0])
def test_removes_exactly_the_fraction_and_nothing_else(order, fraction):
    W = np.asarray(np.random.default_rng(0).uniform(0.5, 1.0, size=(20, 30)), order=order)
    out = lesion.remove_synapses(W, fraction, np.random.default_rng(2))
    removed = out == 0
    assert removed.sum() == round(fraction * W.size)
    np.testing.assert_array_equal(out[~removed], W[~removed])  # survivors untouched
    np.testing.assert_array_equal(W > 0, True)  # the input is not modified


def test_lesion_hits_every_layer_alike():
    Ws = [np.ones((10, 10)), np.ones((10, 4))]
    out = lesion.lesion(Ws, 0.5, np.random.default_rng(0))
    assert [int((W == 0).sum()) for W in out] == [50, 20]


def test_noise_clipped_and_zero_is_a_copy():
    X = np.array([[0.0, 0.5, 1.0]] * 1000, dtype=np.float32)
    rng, ref = np.random.default_rng(0), np.random.default_rng(0)
    np.testing.assert_array_equal(lesion.noisy(X, 0.0, rng), X)
    assert rng.random() == ref.random()
    Xn = lesion.noisy(X, 0.3, np.random.default_rng(1))
    assert Xn.dtype == X.dtype and Xn.min() >= 0 and Xn.max() <= 1
    assert Xn[:, 0].mean() > 0.05 and Xn[:, 2].mean() < 0.95  # clipped at the edges
    small = lesion.noisy(X, 0.1, np.random.default_rng(1))  # never clipped mid-range
    assert abs(float(np.std(small[:, 1])) - 0.1) < 0.01


def test_mean_and_sample_sd():
    from neurosim.analysis.stats import summary  # mean_sd's one home

    m, sd = summary([0.5, 0.7, 0.9])["mean"], summary([0.5, 0.7, 0.9])["sd"]
    assert m == pytest.approx(0.7) and sd == pytest.approx(0.2)  # ddof=1, not 0.163
    assert (summary([0.4])["mean"], summary([0.4])["sd"]) == (0.4, None)
    assert lesion.percent_key(0.3) == "30pct" and lesion.percent_key(0.0) == "0pct"


def test_bad_values():
    with pytest.raises(ValueError, match="fraction"):
        lesion.remove_synapses(np.ones(3), 1.5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="sd"):
        lesion.noisy(np.ones((1, 3)), -0.1, np.random.default_rng(0))


def test_one_mean_sd_for_every_experiment():
    """Before: three copies of mean_sd (dream_unlearning, sleep_replay, lesion), one of them
    without the NaN handling. Now one, in neurosim.analysis.stats, used by all three."""
    import inspect

    from neurosim.analysis import stats
    from neurosim.experiments import dream_unlearning, sleep_replay
    from neurosim.experiments.brain_vs_ann import measures

    assert dream_unlearning.mean_sd is stats.mean_sd and sleep_replay.mean_sd is stats.mean_sd
    assert measures.summary is stats.summary and not hasattr(lesion, "mean_sd")
    for module in (dream_unlearning, sleep_replay, measures, lesion):
        source = inspect.getsource(module)  # nobody computes a spread by hand
        assert ".std(" not in source and "def mean_sd" not in source
    mean, sd = stats.mean_sd(np.array([[1.0, 2.0], [3.0, np.nan], [5.0, 4.0]]))
    np.testing.assert_array_equal(mean, [3.0, 3.0])
    np.testing.assert_array_equal(sd, [2.0, np.sqrt(2.0)])
