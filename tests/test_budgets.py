"""The label-budget protocol: nested, balanced labelled subsets; baselines and readouts."""

from __future__ import annotations

import numpy as np
import pytest

from neurosim.analysis.budgets import nested_budgets, pixel_baselines, readouts
from neurosim.validation import InvalidParameterError


def test_budgets_are_balanced_nested_and_reproducible():
    y = np.repeat(np.arange(3), [5, 7, 6])
    b = nested_budgets(y, [1, 2, 5, 0], np.random.default_rng(0))
    for k in (1, 2, 5):
        assert np.array_equal(np.bincount(y[b[k]], minlength=3), [k, k, k])
    assert set(b[1]) <= set(b[2]) <= set(b[5]) <= set(b[0])
    assert len(b[0]) == len(y)
    again = nested_budgets(y, [1, 2, 5, 0], np.random.default_rng(0))
    assert all(np.array_equal(b[k], again[k]) for k in b)


def test_budget_above_the_smallest_class_is_refused():
    with pytest.raises(InvalidParameterError, match="smallest class"):
        nested_budgets(np.array([0, 0, 1]), [2], np.random.default_rng(0))


def test_pixel_baselines_on_separable_blobs():
    rng = np.random.default_rng(0)
    centres = np.eye(4) * 5
    y = np.repeat(np.arange(4), 20)
    X = centres[y] + rng.normal(0, 0.3, size=(80, 4))
    scores = pixel_baselines(X[::4], y[::4], X, y)
    assert set(scores) == {"nearest_class_mean", "knn1", "logistic"}
    assert all(v == 1.0 for v in scores.values())


def test_nearest_class_mean_by_hand():
    # class means 0 and 10 on one pixel: 4 goes to class 0, 6 to class 1
    X_lab = np.array([[0.0], [0.0], [10.0], [10.0]])
    y_lab = np.array([0, 0, 1, 1])
    scores = pixel_baselines(X_lab, y_lab, np.array([[4.0], [6.0]]), np.array([0, 1]))
    assert scores["nearest_class_mean"] == 1.0


def test_vote_and_linear_readouts_of_spike_counts():
    # neurons 0-1 answer class 0, neurons 2-3 class 1: both readouts are perfect
    F = np.array([[5, 4, 0, 0], [6, 3, 0, 1], [0, 1, 5, 6], [0, 0, 4, 5]], dtype=float)
    y = np.array([0, 0, 1, 1])
    assert readouts(F, y, F, y, n_classes=2) == {"vote": 1.0, "logistic": 1.0}
