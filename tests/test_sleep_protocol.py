"""The class-incremental protocol on tiny configs: well-formed matrices, forgetting, rehearsal."""

from __future__ import annotations

import numpy as np
import pytest

from neurosim.config import ConfigError
from neurosim.sleep import protocol as P
from neurosim.sleep.src import SleepParams

TINY = P.ProtocolConfig(hidden=(32,), epochs=5, init="uniform", sleep_steps=30,
                        sleep_steps_per_task=10,
                        sleep=SleepParams(beta=(1.0, 1.0), alpha_scale=5.0))


@pytest.fixture(scope="module")
def splits():
    sp = P.digits_splits(0)
    X, y = sp["train"]
    keep = np.random.default_rng(0).permutation(len(y))[:400]  # a small training set
    return {"train": (X[keep], y[keep]), "validation": sp["validation"], "test": sp["test"]}


def test_splits_are_stratified_and_disjoint():
    sp = P.digits_splits(1)
    sizes = {k: len(v[1]) for k, v in sp.items()}
    assert sum(sizes.values()) == 1797 and sizes["test"] == 540  # sklearn rounds up
    for _, y in sp.values():
        counts = np.bincount(y, minlength=10)
        assert counts.min() >= 0.8 * counts.mean()
    rows = {name: {x.tobytes() for x in X} for name, (X, _) in sp.items()}
    assert not rows["train"] & rows["test"]


def test_sleep_steps_schedule():
    cfg = P.ProtocolConfig()
    assert [P.sleep_steps(cfg, k) for k in range(1, 6)] == [600, 800, 1000, 1200, 1400]


def test_sequential_forgets(splits):
    r = P.run_condition("sequential", *splits["train"], {"validation": splits["validation"]},
                        TINY, np.random.default_rng(0))
    acc = r.accuracy["validation"]
    assert acc.shape == (5, 5) and r.status == "COMPLETED" and r.pre_sleep is None
    assert np.all((acc >= 0) & (acc <= 1))
    assert np.diag(acc).min() > 0.8  # each task is learnt ...
    assert acc[-1, :-1].max() < 0.2  # ... and the earlier ones are forgotten
    # the final accuracy is the last row weighted by the tasks' sizes in the set
    y = splits["validation"][1]
    sizes = np.array([np.isin(y, g).sum() for g in [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]])
    assert r.final["validation"] == pytest.approx((acc[-1] * sizes).sum() / sizes.sum())
    assert len(r.train_seconds) == 5 and r.sleep_seconds == []


def test_sleep_condition_records_phases_and_is_reproducible(splits):
    sets = {"validation": splits["validation"], "test": splits["test"]}
    a = P.run_condition("sleep", *splits["train"], sets, TINY, np.random.default_rng(7))
    b = P.run_condition("sleep", *splits["train"], sets, TINY, np.random.default_rng(7))
    assert set(a.accuracy) == {"validation", "test"} and a.pre_sleep["test"].shape == (5, 5)
    assert [s.spikes[0].shape[0] for s in a.sleeps] == [30, 40, 50, 60, 70]
    assert len(a.sleep_seconds) == 5
    for name in sets:
        np.testing.assert_array_equal(a.accuracy[name], b.accuracy[name])
    for W, V in zip(a.net.weights, b.net.weights, strict=True):
        np.testing.assert_array_equal(W, V)


def test_rehearsal_buffer_keeps_a_fraction_of_each_class():
    y = np.repeat(np.arange(4), [100, 50, 7, 1])
    idx = P.rehearsal_buffer(y, (0, 1, 2, 3), 0.05, np.random.default_rng(0))
    np.testing.assert_array_equal(np.bincount(y[idx], minlength=4), [5, 2, 1, 1])
    assert len(np.unique(idx)) == len(idx)


def test_rehearsal_remembers_more_than_sequential(splits):
    cfg = P.ProtocolConfig(**{**TINY.__dict__, "rehearsal_fraction": 0.2})
    seq = P.run_condition("sequential", *splits["train"], {"v": splits["validation"]}, cfg,
                          np.random.default_rng(0))
    reh = P.run_condition("rehearsal", *splits["train"], {"v": splits["validation"]}, cfg,
                          np.random.default_rng(0))
    assert reh.accuracy["v"][-1, :-1].mean() > seq.accuracy["v"][-1, :-1].mean() + 0.2


def test_joint_is_one_row(splits):
    r = P.run_condition("joint", *splits["train"], {"validation": splits["validation"]}, TINY,
                        np.random.default_rng(0))
    assert r.accuracy["validation"].shape == (1, 5)
    assert r.final["validation"] > 0.8


def test_config_validation():
    with pytest.raises(ConfigError, match="beta"):
        P.ProtocolConfig(hidden=(8,))  # default beta has 3 values for 2 layers
    with pytest.raises(ConfigError, match="loss"):
        P.ProtocolConfig(loss="hinge")
    with pytest.raises(ConfigError, match="rehearsal_fraction"):
        P.ProtocolConfig(rehearsal_fraction=0.0)
    with pytest.raises(ValueError, match="condition"):
        P.run_condition("dream", np.zeros((2, 64)), np.array([0, 1]), {}, P.ProtocolConfig(),
                        np.random.default_rng(0))


def test_dlt_loss_gradient_is_not_gated():
    z = np.array([[-1.0, 0.5]])
    y = np.array([[1.0, 0.0]])
    assert P.DLT_MSE.value(z, y) == pytest.approx(0.5 * (1 + 0.25))
    np.testing.assert_allclose(P.DLT_MSE.grad(z, y), [[-1.0, 0.5]])  # relu(z) - y, no gate


def test_undecided_samples():
    """A network whose outputs are all zero: 'first' credits class 0, 'wrong' credits nothing."""
    net = P.make_network(TINY, 64, 10, np.random.default_rng(0))
    for W in net.weights:
        W[...] = 0.0
    X = np.random.default_rng(1).random((20, 64))
    y = np.repeat(np.arange(10), 2)
    groups = [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
    per_task, overall, silent = P.evaluate_tasks(net, X, y, groups, "first")
    np.testing.assert_allclose(per_task, [0.5, 0, 0, 0, 0])
    assert overall == pytest.approx(0.1) and silent == 1.0
    per_task, overall, _ = P.evaluate_tasks(net, X, y, groups, "wrong")
    assert per_task.max() == 0 and overall == 0
