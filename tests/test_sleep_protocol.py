"""The class-incremental protocol on tiny configs: well-formed matrices, forgetting, rehearsal."""

from __future__ import annotations

import numpy as np
import pytest

from neurosim.data import digits
from neurosim.runner.config import ConfigError
from neurosim.sleep import protocol as P
from neurosim.sleep.src import SleepParams

TINY = P.ProtocolConfig(hidden=(32,), epochs=5, init="uniform", sleep_steps=30,
                        sleep_steps_per_task=10,
                        sleep=SleepParams(beta=(1.0, 1.0), alpha_scale=5.0))


def digits_splits(seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The experiment's splits: 30% test, 20% of the rest validation, both stratified."""
    ds = digits(seed, test_fraction=0.3, val_fraction=0.2, dtype="float64")
    return {"train": (ds.X_train, ds.y_train), "validation": (ds.X_val, ds.y_val),
            "test": (ds.X_test, ds.y_test)}


@pytest.fixture(scope="module")
def splits():
    sp = digits_splits(0)
    X, y = sp["train"]
    keep = np.random.default_rng(0).permutation(len(y))[:400]  # a small training set
    return {"train": (X[keep], y[keep]), "validation": sp["validation"], "test": sp["test"]}


def test_splits_are_stratified_and_disjoint():
    sp = digits_splits(1)
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
    assert [s.rasters[0].shape[0] for s in a.sleeps] == [30, 40, 50, 60, 70]
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


def test_one_optimiser_carries_momentum_across_tasks_and_sleep(splits):
    """keep_optimizer: one optimiser steps through all five tasks (its step count is the sum
    of every task's batches) and its velocity enters the next task; a fresh one per task
    gives other weights from the second task on."""
    from dataclasses import replace

    X, y = splits["train"]
    kept = P.run_condition("sleep", X, y, {}, TINY, np.random.default_rng(3))
    steps = sum(int(np.ceil(np.isin(y, g).sum() / TINY.batch_size)) * TINY.epochs
                for g in [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)])
    assert kept.optimizer is not None and kept.optimizer.t == steps
    assert np.abs(kept.optimizer.state["v"][0]).max() > 0
    assert [h.n_epochs for h in kept.histories] == [TINY.epochs] * 5
    fresh = P.run_condition("sleep", X, y, {}, replace(TINY, keep_optimizer=False),
                            np.random.default_rng(3))
    assert fresh.optimizer is None
    assert not np.array_equal(kept.net.weights[0], fresh.net.weights[0])


def test_record_weights_keeps_each_sleep_phase_change(splits):
    X, y = splits["train"]
    r = P.run_condition("sleep", X, y, {}, TINY, np.random.default_rng(4), record_weights=True)
    assert len(r.weight_changes) == len(r.weights_before) == len(r.sleeps) == 5
    last = r.sleeps[-1].weights
    for before, change, after in zip(r.weights_before[-1], r.weight_changes[-1], last,
                                     strict=True):
        assert before.dtype == change.dtype == np.float32
        np.testing.assert_allclose(before.astype(float) + change, after, atol=1e-6)
    assert any(np.abs(c).max() > 0 for c in r.weight_changes[-1])
    seq = P.run_condition("sequential", X, y, {}, TINY, np.random.default_rng(4),
                          record_weights=True)
    assert seq.weight_changes is None


def test_uniform_init_is_rescaled_uniform_draws():
    a = P.make_network(TINY, 64, 10, np.random.default_rng(0))  # init_scale 0.02
    from dataclasses import replace

    b = P.make_network(replace(TINY, init_scale=0.01), 64, 10, np.random.default_rng(0))
    for W, V in zip(a.weights, b.weights, strict=True):
        assert np.abs(W).max() <= 0.02 and np.abs(W).max() > 0.019
        np.testing.assert_allclose(W, 2 * V, rtol=1e-12)


def test_brian2_engine_through_the_protocol_matches_numpy(splits):
    """sleep.engine=brian2 runs a whole condition (on Brian2's numpy target) and gives the same
    accuracies as the numpy engine: the engines are bit-identical on the numpy target."""
    from dataclasses import replace

    from neurosim.snn import backend

    backend.select("numpy")
    X, y = splits["train"]
    keep = np.random.default_rng(0).permutation(len(y))[:150]
    cfg = replace(TINY, epochs=2, sleep_steps=15, sleep_steps_per_task=5)
    sets = {"v": splits["validation"]}
    a = P.run_condition("sleep", X[keep], y[keep], sets, cfg, np.random.default_rng(1))
    b = P.run_condition("sleep", X[keep], y[keep], sets,
                        replace(cfg, sleep=replace(cfg.sleep, engine="brian2")),
                        np.random.default_rng(1))
    np.testing.assert_array_equal(a.accuracy["v"], b.accuracy["v"])
    for W, V in zip(a.net.weights, b.net.weights, strict=True):
        np.testing.assert_array_equal(W, V)


# --- SleepParams on any depth ---------------------------------------------------------------------


def _relu_net(sizes, seed=0):
    from neurosim.ann import MLP

    return MLP(sizes, "relu", "relu", bias=False, init="he", dtype="float64",
               rng=np.random.default_rng(seed))


@pytest.mark.parametrize("sizes", [[64, 8, 4], [64, 8, 8, 4], [64, 8, 8, 8, 4]])
def test_default_sleep_params_sleep_a_network_of_any_depth(sizes):
    """Before: SleepParams() held three betas and refused every network but a three-layer
    one. Now its default takes the tuned values by role (first, middle..., last)."""
    from neurosim.sleep import sleep_network
    from neurosim.sleep.src import TUNED_BETA

    net = _relu_net(sizes)
    X = np.random.default_rng(1).random((20, 64))
    result = sleep_network(net, X, 50, SleepParams(), np.random.default_rng(2))
    assert result.finite and len(result.spikes) == len(sizes)
    n = len(sizes) - 1
    assert SleepParams().betas(n) == (TUNED_BETA[0], *(TUNED_BETA[1],) * (n - 2), TUNED_BETA[2])


def test_default_beta_on_three_layers_is_the_tuned_phase_bit_for_bit():
    from neurosim.sleep import sleep
    from neurosim.sleep.src import TUNED_BETA

    Ws = _relu_net([64, 8, 8, 4]).weights
    X = np.random.default_rng(1).random((20, 64))
    a = sleep(Ws, X, 80, SleepParams(), np.random.default_rng(3))
    b = sleep(Ws, X, 80, SleepParams(beta=TUNED_BETA), np.random.default_rng(3))
    for x, y in zip(a.weights + a.rasters, b.weights + b.rasters, strict=True):
        np.testing.assert_array_equal(x, y)


def test_one_beta_broadcasts_and_a_wrong_count_is_named_when_sleeping():
    from neurosim.sleep import sleep

    assert SleepParams(beta=(0.5,)).betas(3) == (0.5, 0.5, 0.5)
    Ws = _relu_net([64, 8, 4]).weights
    with pytest.raises(ConfigError, match="beta has 3 values for a network of 2 layers"):
        sleep(Ws, np.ones((2, 64)), 5, SleepParams(beta=(1.0, 1.0, 1.0)),
              np.random.default_rng(0))
    with pytest.raises(ConfigError, match="one-layer network needs its sleep beta"):
        SleepParams().betas(1)


def test_the_protocol_writes_the_tuned_beta_into_its_config():
    from neurosim.sleep.src import TUNED_BETA

    assert P.ProtocolConfig().sleep.beta == TUNED_BETA  # config.json records the values


def test_released_units_sleep_on_the_released_codes_weights(splits):
    """sleep_units=released: the phase acts on W / (1 - dropout) after a hidden layer (the
    released code's non-inverted dropout) with the scales of the network as it is; the
    weights come back in this MLP's units. With no dropout the two units are one."""
    from neurosim.sleep import src

    cfg = P.ProtocolConfig(hidden=(32, 16), epochs=2, sleep_steps=40, sleep_steps_per_task=0,
                           dropout=0.25, sleep=SleepParams(beta=(1.0, 0.5, 1.0),
                                                           alpha_scale=5.0))
    X, y = splits["train"]
    net = P.make_network(cfg, 64, 10, np.random.default_rng(0))
    P.train_on(net, X, y, cfg, np.random.default_rng(1))
    W0 = [W.copy() for W in net.weights]
    assert src.dropout_units(3, 0.25) == [1.0, 1 / 0.75, 1 / 0.75]
    r = src.sleep_network(net, X, 40, cfg.sleep, np.random.default_rng(2),
                          units=src.dropout_units(3, 0.25), image_shape=(8, 8))
    by_hand = src.sleep([W0[0], W0[1] / 0.75, W0[2] / 0.75], X, 40, cfg.sleep,
                        np.random.default_rng(2), image_shape=(8, 8),
                        alphas=src.sleep_scales(W0, X, cfg.sleep))
    assert sum(by_hand.layer_counts[1:]) > 0
    for a, b in zip(r.rasters, by_hand.rasters, strict=True):
        np.testing.assert_array_equal(a, b)
    for W, expected in zip(net.weights, [by_hand.weights[0], by_hand.weights[1] * 0.75,
                                         by_hand.weights[2] * 0.75], strict=True):
        np.testing.assert_allclose(W, expected, rtol=1e-14, atol=0)  # / (1/0.75) vs * 0.75
    # no dropout: the released units are the network's, bit for bit
    plain = P.ProtocolConfig(**{**cfg.__dict__, "dropout": 0.0})
    runs = [P.run_condition("sleep", X, y, {"validation": splits["validation"]},
                            P.ProtocolConfig(**{**plain.__dict__, "sleep_units": u}),
                            np.random.default_rng(3)) for u in P.SLEEP_UNITS]
    np.testing.assert_array_equal(runs[0].accuracy["validation"], runs[1].accuracy["validation"])
    for a, b in zip(runs[0].net.weights, runs[1].net.weights, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ConfigError, match="sleep_units"):
        P.ProtocolConfig(sleep_units="dlt")
