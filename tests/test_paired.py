"""Paired statistics across seeds: hand-computed tests, intervals, and the no-claim rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurosim.analysis.paired import bootstrap_ci, compare, fmt, fmt_p, paired_test, retention
from neurosim.validation import InvalidParameterError


def test_paired_t_test_by_hand():
    # d = a - b = [1, 2, 3, 4]: mean 2.5, sd sqrt(5/3), t = 2.5 / (sd / 2) = 3.8730 with 3 df;
    # two-sided p = 0.0305 (t tables: t_0.975,3 = 3.182, t_0.99,3 = 4.541).
    a = np.array([11.0, 12.0, 13.0, 14.0])
    b = np.array([10.0, 10.0, 10.0, 10.0])
    t, p = paired_test(a, b, "t")
    assert t == pytest.approx(2.5 / (math.sqrt(5 / 3) / 2))
    assert p == pytest.approx(0.0305, abs=5e-4)


def test_wilcoxon_by_hand():
    # every difference positive, n = 4: W = 0 and the exact two-sided p is 2 / 2^4 = 0.125
    stat, p = paired_test(np.array([1.0, 2.0, 3.0, 4.0]), np.zeros(4), "wilcoxon")
    assert stat == 0 and p == pytest.approx(0.125)


def test_equal_arms_have_no_evidence():
    stat, p = paired_test(np.ones(5), np.ones(5), "t")
    assert p == 1.0


def test_clear_difference_gives_a_sentence_with_n_test_p_and_ci():
    rng = np.random.default_rng(1)
    b = rng.uniform(0.80, 0.85, size=10)
    a = b + 0.05 + rng.normal(0, 0.005, size=10)
    c = compare(a, b, names=("MLP", "STDP"), metric="test accuracy")
    assert c.n == 10 and c.ci_low > 0 and c.ci_low < c.diff_mean < c.ci_high
    text = c.sentence()
    assert text.startswith("MLP beats STDP on test accuracy by 0.049")
    assert "95% CI" in text and "paired t-test" in text and "n = 10" in text
    assert "p < 1e-6" in text
    reverse = compare(b, a, names=("STDP", "MLP"), metric="test accuracy")
    assert reverse.sentence().startswith("MLP beats STDP")


def test_overlapping_arms_produce_no_beats_sentence():
    rng = np.random.default_rng(0)
    a = rng.normal(0.60, 0.03, size=10)
    b = a + rng.normal(0.0, 0.03, size=10) * np.array([1, -1] * 5)  # differences centred on 0
    c = compare(a, b, names=("STDP", "MLP"), metric="accuracy under noise")
    assert c.ci_low < 0 < c.ci_high
    assert c.sentence() is None and c.winner is None
    assert "beats" not in c.summary() and "includes 0" in c.summary()


def test_one_seed_says_so_and_claims_nothing():
    c = compare([0.9], [0.8], names=("A", "B"))
    assert c.n == 1 and c.sentence() is None
    assert "one seed" in c.summary()
    assert c.as_dict()["ci_low"] is None  # NaN is written as null


def test_lower_is_better_metrics_name_the_lower_arm():
    c = compare([1.0, 1.1, 0.9, 1.05], [2.0, 2.1, 2.2, 1.9], names=("spikes", "MACs"),
                metric="energy (uJ)", higher_is_better=False)
    assert c.winner == "spikes"


def test_constant_difference_interval_is_that_value():
    lo, hi = bootstrap_ci(np.full(6, 0.02), rng=np.random.default_rng(0))
    assert lo == hi == pytest.approx(0.02)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-1, 1, allow_nan=False), min_size=3, max_size=12))
def test_interval_holds_the_mean_and_widens_with_confidence(d):
    d = np.asarray(d)
    rng = np.random.default_rng(0)
    lo90, hi90 = bootstrap_ci(d, confidence=0.90, n_resamples=2000, rng=rng)
    lo99, hi99 = bootstrap_ci(d, confidence=0.99, n_resamples=2000, rng=np.random.default_rng(0))
    assert lo99 - 1e-9 <= lo90 <= hi90 <= hi99 + 1e-9
    assert d.min() - 1e-9 <= lo90 and hi90 <= d.max() + 1e-9


def test_bad_input_is_one_clear_error():
    with pytest.raises(InvalidParameterError, match="one value per seed"):
        compare([1, 2], [1, 2, 3])
    with pytest.raises(InvalidParameterError, match="finite"):
        compare([1, float("nan")], [1, 2])
    with pytest.raises(InvalidParameterError, match="paired test"):
        compare([1, 2], [1, 2], test="anova")


def test_retention_is_per_seed_ratio():
    np.testing.assert_allclose(retention([0.45, 0.8], [0.9, 0.8]), [0.5, 1.0])


def test_numbers_read_as_people_write_them():
    assert fmt(130.4) == "130" and fmt(0.112) == "0.112" and fmt(1.5) == "1.5"
    assert fmt_p(0.0304) == "0.03" and fmt_p(1e-9) == "< 1e-6"


def test_an_interval_without_a_significant_test_claims_nothing():
    # n = 3: the bootstrap interval of [0.02, 0.1, 0.06] excludes 0 (all positive), but the
    # paired t-test gives p = 0.07 (t = 2.6, 2 df): no sentence
    c = compare([0.52, 0.6, 0.56], [0.5, 0.5, 0.5], names=("A", "B"))
    assert c.excludes_zero and c.p_value > 0.05
    assert c.sentence() is None and "p is not below 0.05" in c.summary()


def test_lower_is_better_sentence_states_a_positive_advantage():
    c = compare([1.0, 1.1, 0.9, 1.05], [2.0, 2.1, 2.2, 1.9], names=("spikes", "MACs"),
                metric="energy (uJ)", higher_is_better=False)
    assert c.sentence().startswith("spikes beats MACs on energy (uJ) (lower is better) by 1.0")
