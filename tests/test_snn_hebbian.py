"""Rate-based Hebbian rules: one step by hand, then the behaviour each rule is known for."""

from __future__ import annotations

import numpy as np
import pytest

from neurosim.experiments import bcm_selectivity, hebbian_oja
from neurosim.runner.contract import quick_context
from neurosim.snn.hebbian import (
    BCMParams,
    bcm_step,
    correlated_gaussian,
    first_pc,
    hebb,
    hebb_normalised,
    oja,
    train_bcm,
    train_rule,
)


def test_one_step_of_each_rule_by_hand():
    w, x = np.array([0.5, 0.25]), np.array([2.0, 4.0])  # y = 1 + 1 = 2
    np.testing.assert_allclose(hebb(w, x, 0.1), [0.5 + 0.1 * 2 * 2, 0.25 + 0.1 * 2 * 4])
    np.testing.assert_allclose(oja(w, x, 0.1), [0.5 + 0.1 * 2 * (2 - 2 * 0.5),
                                                 0.25 + 0.1 * 2 * (4 - 2 * 0.25)])
    raw = np.array([0.9, 1.05])
    np.testing.assert_allclose(hebb_normalised(w, x, 0.1), raw / np.linalg.norm(raw))
    # BCM: dw = eta x y (y - theta), dtheta = (y^2 - theta) / tau
    w2, theta, y = bcm_step(w, 1.0, x, BCMParams(eta=0.1, tau_theta=4.0))
    assert y == 2.0
    np.testing.assert_allclose(w2, w + 0.1 * x * 2 * (2 - 1))
    assert theta == pytest.approx(1.0 + (4.0 - 1.0) / 4)


def test_oja_finds_the_first_principal_component():
    rng = np.random.default_rng(0)
    Xs = correlated_gaussian(4000, np.array([[3.0, 1.5], [1.5, 1.0]]), rng)
    w = train_rule("oja", Xs, rng.normal(size=2) * 0.1, 0.005)[-1]
    assert abs(w @ first_pc(Xs)) / np.linalg.norm(w) > 0.99
    assert np.linalg.norm(w) == pytest.approx(1.0, abs=0.05)


def test_plain_hebb_grows_without_bound():
    rng = np.random.default_rng(0)
    Xs = correlated_gaussian(3000, np.array([[3.0, 1.5], [1.5, 1.0]]), rng)
    norms = np.linalg.norm(train_rule("hebb", Xs, np.array([0.1, 0.1]), 0.005), axis=1)
    assert norms[1000] > 100 * norms[0]
    assert norms[-1] > 1e20  # still growing exponentially: no fixed point


def test_bcm_becomes_selective():
    patterns = np.array([[1, 1, 0.05, 0.05], [0.05, 0.05, 1, 1]])
    rec = train_bcm(patterns, 3000, np.full(4, 0.25) + [0.01, 0, 0, 0], BCMParams(0.01, 10.0))
    final = rec["responses"][-1]
    assert final.max() > 1.0 and final.min() / final.max() < 0.1


@pytest.mark.parametrize("module", [hebbian_oja, bcm_selectivity])
def test_quick_experiments_meet_their_targets_and_repeat(module):
    cfg = module.Config(**module.QUICK)
    a = module.run(cfg, quick_context(0)).metrics
    b = module.run(cfg, quick_context(0)).metrics
    a.pop("train_seconds"), b.pop("train_seconds")
    assert a == b
    if module is hebbian_oja:
        assert a["cos_pc1_2d"] > 0.99 and abs(a["norm_2d"] - 1) < 0.05
        assert a["cos_pc1_10d"] > 0.99 and abs(a["norm_10d"] - 1) < 0.05
        assert a["hebb_norm_step_100"] > 0 and a["hebb_normalised_cos_pc1_2d"] > 0.99
    else:
        assert a["selectivity"] > 0.9


def test_a_runaway_is_named_with_its_step():
    """Before: "oja 2-D ran away" without saying when; now the step where |w| left the
    numbers (or passed 1e6) is in the warning."""
    from neurosim.runner.config import build
    from neurosim.runner.contract import quick_context
    from neurosim.snn.hebbian import runaway_step

    traj = np.array([[0.1, 0.2], [3.0, 1.0], [2e6, 0.0], [np.nan, 1.0]])
    assert runaway_step(traj) == 2 and runaway_step(traj[:2]) is None
    assert runaway_step(np.array([1.0, np.inf])) == 1  # a 1-D series (a BCM threshold)
    result = hebbian_oja.run(build(hebbian_oja.Config, {**hebbian_oja.QUICK, "eta": 10.0}),
                             quick_context(0))
    assert result.status == "DIVERGED"
    (warning,) = result.warnings
    assert warning.startswith("weights ran away (|w| >= 1e6 or NaN/inf): oja 2-D at step ")
