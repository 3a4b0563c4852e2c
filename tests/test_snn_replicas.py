"""Frozen replicas of a WTA network: one Brian2 network, replicas that do not touch each
other (numpy target: no compiler needed)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from neurosim.snn import backend
from neurosim.snn.replicas import WTAReplicas, block_pairs, chunk_for, pieces
from neurosim.snn.wta import WTAParams

P = WTAParams(n_input=6, n_exc=3, present_ms=60.0, rest_ms=20.0, max_rate_hz=300.0,
              min_spikes=0)


pytestmark = pytest.mark.usefixtures("numpy_target")  # conftest: no compiler needed


def test_block_pairs_connect_inside_blocks_only():
    i, j = block_pairs(2, 3, 2)
    assert len(i) == 2 * 3 * 2
    np.testing.assert_array_equal(i // 3, j // 2)  # same block
    # ordered (block, pre, post): the weights of block r are W[r].ravel()
    np.testing.assert_array_equal(i[:6], [0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(j[:6], [0, 1, 0, 1, 0, 1])


def test_chunk_fits_the_table_budget():
    assert chunk_for(P, 4, 50) == 50
    p = replace(P, n_input=1000)
    assert chunk_for(p, 40, 500, max_bytes=8 * 1000 * 40 * 10) == 10
    assert chunk_for(p, 40, 500, max_bytes=1) == 1


def present(weights, theta=None, seed=0, n=4, params=P):
    rng = np.random.default_rng(seed)
    backend.seed(np.random.default_rng(seed))
    k = len(weights)
    reps = WTAReplicas(params, k, rng, chunk=2)
    X = np.tile(np.linspace(0.2, 1.0, params.n_input), (k, n, 1))
    theta = np.zeros((k, params.n_exc)) if theta is None else theta
    return reps.present(X, np.asarray(weights), theta), reps


def test_replicas_are_independent_and_removed_synapses_stay_removed():
    W = np.full((P.n_input, P.n_exc), 0.8)
    a, reps = present([W, W])
    assert a.shape == (2, 4, P.n_exc) and a[0].sum() > 0
    assert reps.inh_counts.shape == (2, 4)
    # replica 1 without synapses is silent (no renormalisation scales anything back up) ...
    b, _ = present([W, np.zeros_like(W)])
    assert b[1].sum() == 0
    # ... and replica 0's spikes are exactly what they were: nothing leaks across replicas
    np.testing.assert_array_equal(a[0], b[0])


def test_same_seed_same_spikes_and_thresholds_are_frozen_inputs():
    W = np.full((P.n_input, P.n_exc), 0.8)
    a, _ = present([W], seed=3)
    b, _ = present([W], seed=3)
    np.testing.assert_array_equal(a, b)
    high, _ = present([W], theta=np.full((1, P.n_exc), 100.0), seed=3)  # +100 mV: unreachable
    assert high.sum() == 0


def test_bad_shapes_are_refused():
    rng = np.random.default_rng(0)
    reps = WTAReplicas(P, 2, rng, chunk=2)
    with pytest.raises(ValueError, match="weights"):
        reps.present(np.zeros((2, 1, P.n_input)), np.zeros((2, 3, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="weights"):  # one variant's digits, two weights
        reps.present(np.zeros((1, 1, P.n_input)), np.zeros((2, 6, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="X must"):
        reps.present(np.zeros((2, 1, P.n_input + 1)), np.zeros((2, 6, 3)), np.zeros((2, 3)))
    # a valid call still works (and runs the network, so Brian2 does not warn about it)
    out = reps.present(np.zeros((2, 1, P.n_input)), np.zeros((2, 6, 3)), np.zeros((2, 3)))
    assert out.shape == (2, 1, 3) and out.sum() == 0


@pytest.mark.slow
def test_faint_digits_are_shown_again_only_to_the_replicas_that_need_it():
    W = np.full((P.n_input, P.n_exc), 0.8)
    weak = np.full((P.n_input, P.n_exc), 0.05)
    once, _ = present([W, weak], seed=4)
    again, _ = present([W, weak], seed=4, params=replace(P, min_spikes=3))
    # the first showing is the same; only digits with fewer than 3 spikes were replaced
    kept = once.sum(axis=2) >= 3
    np.testing.assert_array_equal(again[kept], once[kept])
    assert (~kept).any()
    assert again[~kept].sum() >= once[~kept].sum()


def test_replicas_draw_and_integrate_as_the_trained_network():
    """The input rule that skips silent inputs' random numbers in compiled code, and the
    trained network's integrator for the inhibitory membranes (Euler in the 28x28 presets)."""
    from neurosim.snn.wta import INPUT_THRESHOLD, MEMBRANE_METHOD

    for method in ("euler", MEMBRANE_METHOD):
        reps = WTAReplicas(WTAParams(n_input=4, n_exc=2, inh_method=method), 2,
                           np.random.default_rng(0))
        assert reps.inp.events["spike"] == INPUT_THRESHOLD
        assert reps.inh.state_updater.method_choice == method
        assert reps.exc.state_updater.method_choice == MEMBRANE_METHOD


def test_each_repeat_pass_is_announced():
    """on_repeat(repeat, n_samples) before each pass over the faint digits (progress lines:
    at 28x28 the repeats ran for 10+ silent minutes)."""
    p = replace(P, min_spikes=1000, max_repeats=2)  # every digit is faint: both passes run
    reps = WTAReplicas(p, 2, np.random.default_rng(0), chunk=4)
    X = np.random.default_rng(1).random((2, 3, p.n_input))
    W = np.full((2, p.n_input, p.n_exc), 0.5)
    calls = []
    reps.present(X, W, np.zeros((2, p.n_exc)), on_repeat=lambda r, n: calls.append((r, n)))
    assert calls == [(1, 6), (2, 6)]  # (variant, digit) pairs: 2 variants x 3 digits


def test_pieces_cover_each_variants_digits_in_run_order():
    shown = np.array([[1, 1, 1, 1, 1], [0, 1, 0, 1, 0], [1, 1, 1, 1, 1]], bool)
    got = [(v, idx.tolist()) for v, idx in pieces(shown, 2)]
    # piece 0 of every variant, then piece 1, ...; a variant's digits in order
    assert got == [(0, [0, 1]), (1, [1, 3]), (2, [0, 1]), (0, [2, 3]), (2, [2, 3]),
                   (0, [4]), (2, [4])]
    # every digit shown exactly once
    for v in range(3):
        np.testing.assert_array_equal(
            np.sort(np.concatenate([i for w, i in pieces(shown, 2) if w == v])),
            np.flatnonzero(shown[v]))
    # as many variants as slots, every digit: run j is slot r = variant r over chunk j
    assert [v for v, _ in pieces(np.ones((3, 4), bool), 2)] == [0, 1, 2, 0, 1, 2]
    assert pieces(np.zeros((2, 3), bool), 2) == []


def test_more_variants_than_slots_and_digits_not_shown():
    """Variants share the slots run by run; a digit a variant is not shown counts 0, and a
    variant without synapses is silent wherever it runs."""
    W = np.full((P.n_input, P.n_exc), 0.8)
    weights = np.stack([W, np.zeros_like(W), W, W, W])
    backend.seed(np.random.default_rng(5))
    reps = WTAReplicas(P, 2, np.random.default_rng(5), chunk=2)
    X = np.tile(np.linspace(0.2, 1.0, P.n_input), (5, 3, 1))
    shown = np.ones((5, 3), bool)
    shown[3, 1] = shown[4] = False
    out = reps.present(X, weights, np.zeros((5, P.n_exc)), shown=shown)
    assert out.shape == (5, 3, P.n_exc) and reps.inh_counts.shape == (5, 3)
    assert out[1].sum() == 0 and out[4].sum() == 0 and out[3, 1].sum() == 0
    assert reps.inh_counts[4].sum() == 0
    assert (out[[0, 2]].sum(axis=2) > 0).all() and (out[3, [0, 2]].sum(axis=1) > 0).all()
    with pytest.raises(ValueError, match="shown"):
        reps.present(X, weights, np.zeros((5, P.n_exc)), shown=shown[:, :2])


def test_repeats_show_only_the_faint_pairs():
    """A repeat pass packs the faint (variant, digit) pairs: with one variant always silent
    and one that always fires, each pass shows only the silent one's digits."""
    p = replace(P, min_spikes=1, max_repeats=3)
    W = np.full((p.n_input, p.n_exc), 0.8)
    reps = WTAReplicas(p, 2, np.random.default_rng(0), chunk=4)
    X = np.tile(np.linspace(0.2, 1.0, p.n_input), (2, 3, 1))
    calls = []
    out = reps.present(X, np.stack([W, np.zeros_like(W)]), np.zeros((2, p.n_exc)),
                       on_repeat=lambda r, n: calls.append((r, n)))
    assert (out[0].sum(axis=1) >= 1).all() and out[1].sum() == 0
    assert calls == [(1, 3), (2, 3), (3, 3)]
