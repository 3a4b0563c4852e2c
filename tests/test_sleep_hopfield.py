"""Hopfield dream unlearning: storage and one unlearning step by hand, the dynamics' invariants,
the census, then the phenomena (capacity, improvement by dreams, breakdown by too many), and the
dream_unlearning experiment built on them."""

from __future__ import annotations

import numpy as np
import pytest

from neurosim.experiments import dream_unlearning as du
from neurosim.runner.config import ConfigError, build
from neurosim.runner.contract import quick_context
from neurosim.sleep.hopfield import (
    CURVES,
    NONCONVERGED,
    SPURIOUS,
    HopfieldParams,
    census,
    classify,
    dream,
    dreams_for,
    energy,
    flip_bits,
    hebb_weights,
    overlaps,
    random_patterns,
    random_states,
    recall,
    relax,
    sleep,
    stable_fraction,
    unlearn_step,
    unlearning_curves,
)

XI = np.array([[1.0, 1.0, -1.0], [1.0, -1.0, 1.0]])  # two patterns of three neurons


def test_hebb_weights_by_hand():
    # W_ij = (1/N) sum_mu xi_i xi_j: W_12 = (1 - 1)/3, W_13 = (-1 + 1)/3, W_23 = (-1 - 1)/3
    np.testing.assert_allclose(hebb_weights(XI), [[0, 0, 0], [0, 0, -2 / 3], [0, -2 / 3, 0]])


def test_one_unlearning_step_by_hand():
    W = hebb_weights(XI)
    s = np.array([1.0, -1.0, -1.0])
    # dW_ij = -(eps/N) s_i s_j off the diagonal; eps/N = 0.3/3 = 0.1
    expected = [[0, 0.1, 0.1], [0.1, 0, -2 / 3 - 0.1], [0.1, -2 / 3 - 0.1, 0]]
    np.testing.assert_allclose(unlearn_step(W, s, 0.3), expected)
    np.testing.assert_allclose(W, hebb_weights(XI))  # pure: the input is untouched


def test_unlearning_a_stored_pattern_with_epsilon_one_erases_it():
    # epsilon is in units of one stored pattern
    xi = random_patterns(3, 20, np.random.default_rng(0))
    np.testing.assert_allclose(unlearn_step(hebb_weights(xi), xi[2], 1.0), hebb_weights(xi[:2]),
                               atol=1e-15)


def test_energy_by_hand():
    W = hebb_weights(XI)
    # E = -1/2 sum_ij W_ij s_i s_j = -W_23 s_2 s_3
    assert energy(W, np.array([1.0, 1.0, -1.0])) == pytest.approx(-2 / 3)
    np.testing.assert_allclose(energy(W, np.array([[1.0, 1, 1], [1, 1, -1]])), [2 / 3, -2 / 3])


def test_asynchronous_updates_settle_where_synchronous_ones_would_oscillate():
    # two neurons that want to differ: updated together from (+,+) they would flip forever
    W = np.array([[0.0, -1.0], [-1.0, 0.0]])
    for seed in range(5):
        s, converged, sweeps = relax(W, np.array([1.0, 1.0]), np.random.default_rng(seed))
        assert converged and sweeps == 2  # one sweep flips one neuron, one more checks
        assert s.tolist() in ([1.0, -1.0], [-1.0, 1.0])


def test_zero_field_keeps_the_state():
    s, converged, sweeps = relax(np.zeros((4, 4)), np.array([1.0, -1, 1, -1]),
                                 np.random.default_rng(0))
    assert s.tolist() == [1, -1, 1, -1] and converged and sweeps == 1


def test_relax_ends_in_fixed_points_of_lower_energy():
    rng = np.random.default_rng(1)
    xi = random_patterns(15, 60, rng)
    W = hebb_weights(xi)
    S0 = random_states(200, 60, rng)
    S, converged, sweeps = relax(W, S0, rng)
    assert converged.all() and (sweeps >= 1).all()
    assert np.all(S * (S @ W.T) >= -1e-9)  # every neuron agrees with its field
    assert np.all(energy(W, S) <= energy(W, S0) + 1e-12)
    again, _, sweeps_again = relax(W, S, rng)
    np.testing.assert_array_equal(again, S)
    assert (sweeps_again == 1).all()


def test_batch_and_single_state_relaxation_agree():
    # a batch shares one order per sweep, so each row is what that state alone would do
    rng = np.random.default_rng(2)
    xi = random_patterns(20, 80, rng)
    W = unlearn_step(hebb_weights(xi), random_states(1, 80, rng)[0], 0.3)  # generic couplings
    S0 = random_states(25, 80, rng)
    S, converged, sweeps = relax(W, S0, np.random.default_rng(7))
    for b in range(len(S0)):
        s, c, n = relax(W, S0[b], np.random.default_rng(7))
        np.testing.assert_array_equal(s, S[b])
        assert c == converged[b] and n == sweeps[b]


def test_sweep_cap_reports_nonconvergence():
    rng = np.random.default_rng(3)
    W = hebb_weights(random_patterns(30, 100, rng))
    S0 = random_states(50, 100, rng)
    S, converged, sweeps = relax(W, S0, rng, max_sweeps=1)
    assert not converged.all()  # from random starts one sweep is never enough for all
    assert (sweeps[~converged] == 1).all()
    labels = classify(random_patterns(30, 100, rng), S, converged)
    assert (labels[~converged] == NONCONVERGED).all()


def test_flip_bits_flips_exactly_the_fraction():
    xi = random_patterns(4, 50, np.random.default_rng(4))
    cues = flip_bits(xi, 0.1, 6, np.random.default_rng(5))
    assert cues.shape == (4, 6, 50)
    np.testing.assert_array_equal((cues != xi[:, None, :]).sum(axis=-1), 5)


def test_classify_memories_negations_mixtures():
    rng = np.random.default_rng(6)
    xi = random_patterns(5, 200, rng)
    mixture = np.sign(xi[0] + xi[1] + xi[2])  # overlap ~0.5 with each of the three
    near = xi[3].copy()
    near[:10] *= -1  # m = 0.9
    S = np.stack([xi[1], -xi[4], mixture, near, xi[0]])
    labels = classify(xi, S, np.array([True, True, True, True, False]), memory_overlap=0.9)
    assert labels.tolist() == [1, 4, SPURIOUS, 3, NONCONVERGED]
    assert classify(xi, S[3:4], np.array([True]), memory_overlap=1.0).tolist() == [SPURIOUS]
    np.testing.assert_allclose(overlaps(xi, near)[3], 0.9)


def test_low_load_memories_are_stable_and_recalled():
    rng = np.random.default_rng(8)
    xi = random_patterns(5, 100, rng)
    W = hebb_weights(xi)
    assert stable_fraction(W, xi) == 1.0
    rec = recall(W, xi, rng, cue_flip=0.15, n_cues=10)
    assert rec["overlap"].shape == (5, 10) and rec["converged"].all()
    assert rec["overlap"].min() == 1.0


def test_stable_fraction_by_hand():
    # with N=3 and the two patterns XI: field on xi^1 = W xi^1 = (0, 2/3, -2/3): aligned
    assert stable_fraction(hebb_weights(XI), XI) == 1.0
    W = -hebb_weights(XI)  # anti-Hebbian couplings destabilise both
    assert stable_fraction(W, XI) == 0.0


def test_census_counts_memories_and_mixture_states():
    rng = np.random.default_rng(9)
    xi = random_patterns(5, 100, rng)
    cen = census(hebb_weights(xi), xi, rng, n_starts=1000)
    shares = cen["memory_share"] + cen["spurious_share"] + cen["nonconverged_share"]
    assert shares == pytest.approx(1.0)
    assert cen["n_memories_reached"] == 5
    assert cen["memory_basins"].sum() == pytest.approx(cen["memory_share"])
    assert cen["memory_share"] > 0.5  # well below capacity memories dominate ...
    assert cen["n_spurious"] > 5  # ... but 3-mixtures and others exist (Amit et al. 1985)
    assert cen["nonconverged_share"] == 0.0


def test_census_counts_a_spurious_state_and_its_negation_once():
    # couplings storing only the mixture: every start ends at +-mixture, which is no memory
    xi = random_patterns(3, 40, np.random.default_rng(10))
    mixture = np.sign(xi.sum(axis=0))
    cen = census(hebb_weights(mixture[None]), xi, np.random.default_rng(11), n_starts=200)
    assert cen["spurious_share"] == 1.0 and cen["n_spurious"] == 1


def test_dream_unlearns_the_attractor_it_reached():
    rng = np.random.default_rng(12)
    xi = random_patterns(8, 50, rng)
    W = hebb_weights(xi)
    W2, s, converged = dream(W, np.random.default_rng(13), 0.05)
    assert converged
    np.testing.assert_allclose(W2, unlearn_step(W, s, 0.05))
    replay = np.random.default_rng(13)  # the dream's own start, relaxed with the same draws
    s_again, _, _ = relax(W, random_states(1, 50, replay)[0], replay)
    np.testing.assert_array_equal(s_again, s)


def test_sleep_is_dreams_in_sequence():
    rng = np.random.default_rng(14)
    W = hebb_weights(random_patterns(10, 40, rng))
    W_sleep, stuck = sleep(W, 5, np.random.default_rng(15), 0.01)
    dreamer = np.random.default_rng(15)
    W_seq = W
    for _ in range(5):
        W_seq, _, _ = dream(W_seq, dreamer, 0.01)
    np.testing.assert_array_equal(W_sleep, W_seq)
    assert stuck == 0
    np.testing.assert_allclose(np.diag(W_sleep), 0.0)
    np.testing.assert_allclose(W_sleep, W_sleep.T)


def test_params_reject_bad_values():
    with pytest.raises(ConfigError, match="epsilon"):
        HopfieldParams(epsilon=-0.1)
    with pytest.raises(ConfigError, match="cue_flip"):
        HopfieldParams(cue_flip=1.5)
    with pytest.raises(ConfigError, match="memory_overlap"):
        HopfieldParams(memory_overlap=0.0)
    with pytest.raises(ConfigError, match="non-decreasing"):
        unlearning_curves([0.1], [100, 50], 1, HopfieldParams(n_neurons=20),
                          np.random.default_rng(0))


SMALL = HopfieldParams(n_neurons=40, n_starts=200, n_cues=4)


def test_curves_shapes_and_reproducibility():
    out = unlearning_curves([0.05, 0.2], [0, 30], 2, SMALL, np.random.default_rng(16))
    for name in CURVES:
        assert out[name].shape == (2, 2, 2)
    np.testing.assert_allclose(out["loads"], [0.05, 0.2])
    assert out["n_patterns"].tolist() == [2, 8]
    again = unlearning_curves([0.05, 0.2], [0, 30], 2, SMALL, np.random.default_rng(16))
    for name in CURVES:
        np.testing.assert_array_equal(again[name], out[name])


def test_curves_after_d_dreams_do_not_depend_on_the_counts_measured():
    a = unlearning_curves([0.2], [0, 10, 40], 1, SMALL, np.random.default_rng(17))
    b = unlearning_curves([0.2], [40], 1, SMALL, np.random.default_rng(17))
    for name in CURVES:
        np.testing.assert_array_equal(a[name][..., 2], b[name][..., 0])


def test_unlearning_rescues_an_overloaded_network_then_destroys_it():
    # N=100, P=20 (load 0.2, above the ~0.138 capacity): epsilon = 0.01 unlearns one pattern's
    # weight per 100 dreams; ~1000 dreams restore recall, ~4000 (2x the stored weight) wipe it out
    p = HopfieldParams(n_neurons=100, n_starts=300, n_cues=5)
    out = unlearning_curves([0.2], [0, 1000, 4000], 1, p, np.random.default_rng(0))
    before, rescued, broken = out["recall_overlap"][0, 0]
    # thresholds hold for each of seeds 0-9 (before: 0.58-0.93, stable before: 0.2-0.65)
    assert before < 0.95 and rescued > 0.99 and broken < 0.4
    stable = out["stable_fraction"][0, 0]
    assert stable[0] < 0.7 and stable[1] == 1.0 and stable[2] == 0.0
    share = out["memory_share"][0, 0]
    assert share[1] > share[0] + 0.1 and share[2] == 0.0


def test_hfp_1983_setting_memories_gain_spurious_states_lose_then_all_is_lost():
    # Hopfield, Feinstein & Palmer: N=32, P=5, epsilon=0.01, ~300 dreams. Means over 4 networks;
    # for seeds 0-9 the memories' share rises by 0.11-0.42; 1000 dreams leave no memory
    p = HopfieldParams(n_neurons=32, n_starts=500, n_cues=5)
    out = unlearning_curves([5 / 32], [0, 300, 1000], 4, p, np.random.default_rng(0))
    memory = out["memory_share"].mean(axis=0)[0]
    spurious = out["spurious_share"].mean(axis=0)[0]
    assert memory[1] > memory[0] + 0.08 and spurious[1] < spurious[0] - 0.08
    assert memory[2] == 0.0 and spurious[2] == 1.0


def test_dreams_for_by_hand():
    # D = round(x P / epsilon): x = 0.5 with P = 20, epsilon = 0.01 is 1000 dreams
    np.testing.assert_array_equal(dreams_for([0, 0.5, 1.1], [5, 20], 0.01),
                                  [[0, 250, 550], [0, 1000, 2200]])
    np.testing.assert_array_equal(dreams_for([0, 0.6], 5, 0.01), [0, 300])  # HFP's ~300
    with pytest.raises(ConfigError, match="epsilon"):
        dreams_for([1.0], [5], 0.0)


def test_curves_take_one_row_of_dream_counts_per_load():
    loads = [0.05, 0.2]
    same = unlearning_curves(loads, [[0, 30], [0, 30]], 1, SMALL, np.random.default_rng(18))
    shared = unlearning_curves(loads, [0, 30], 1, SMALL, np.random.default_rng(18))
    for name in CURVES:
        np.testing.assert_array_equal(same[name], shared[name])
    rows = dreams_for([0, 0.5], [2, 8], SMALL.epsilon)  # 0, 100 and 0, 400 dreams
    per_load = unlearning_curves(loads, rows, 1, SMALL, np.random.default_rng(18))
    np.testing.assert_array_equal(per_load["dream_counts"], [[0, 100], [0, 400]])
    # the first load's curve is the one a shared list [0, 100] gives
    alone = unlearning_curves(loads, [0, 100], 1, SMALL, np.random.default_rng(18))
    for name in CURVES:
        np.testing.assert_array_equal(per_load[name][:, 0], alone[name][:, 0])
    with pytest.raises(ConfigError, match="rows"):
        unlearning_curves(loads, [[0, 30]] * 3, 1, SMALL, np.random.default_rng(0))


def test_curves_count_relaxations_cut_off_by_the_sweep_cap():
    capped = HopfieldParams(n_neurons=40, n_starts=50, n_cues=4, max_sweeps=1)
    out = unlearning_curves([0.1], [0, 5], 1, capped, np.random.default_rng(19))
    # one sweep corrects a cue's flipped bits but cannot also confirm the fixed point
    assert out["recall_nonconverged"].min() > 0.5
    assert out["nonconverged_share"].min() > 0.5 and out["dreams_nonconverged"][0, 0, 1] > 0
    ok = unlearning_curves([0.1], [0, 5], 1, SMALL, np.random.default_rng(19))
    for name in ("recall_nonconverged", "nonconverged_share", "dreams_nonconverged"):
        assert (ok[name] == 0).all()


# --- the dream_unlearning experiment ------------------------------------------------------------


@pytest.fixture(scope="module")
def quick_result():
    return du.run(build(du.Config, du.QUICK), quick_context(0))


def test_quick_run_recall_before_dreams_fails_at_the_highest_load(quick_result):
    by_load = list(quick_result.metrics["by_load"].values())
    low, high = by_load[0], by_load[-1]
    assert high["load"] > low["load"]
    before_low = low["before"]["recall_overlap"]["mean"]
    before_high = high["before"]["recall_overlap"]["mean"]
    assert before_high < before_low - 0.1
    # ... and the best amount of sleep recalls it again, then more sleep erases it
    assert high["best"]["recall_overlap"]["mean"] > before_high + 0.1
    assert high["breakdown"]["unlearned"]["n"] == quick_result.metrics["n_networks"]


def test_quick_run_metrics_tables_and_report(quick_result):
    m = quick_result.metrics
    for key in du.HEADLINE:  # every headline path exists (a value may be None)
        node = m
        for part in key.split("."):
            assert part in node, key
            node = node[part]
    s = m["by_load"]["P5"]["before"]["recall_overlap"]
    assert set(s) == {"mean", "sd", "n"} and s["n"] == 2
    assert m["nonconverged"]["total"] == 0 and not quick_result.warnings
    assert m["hfp1983"]["dreams_300"]["unlearned"] == pytest.approx(0.6)
    u = quick_result.curves["unlearning"]
    assert len(u["load"]) == 2 * 4  # loads x points of the dream axis
    np.testing.assert_array_equal(u["dreams"], [0, 250, 500, 750, 0, 750, 1500, 2250])
    assert "| 0.3 | 15 |" in quick_result.report and "HFP 1983" in quick_result.report


def test_stat_uses_the_sample_sd():
    from neurosim.analysis.stats import mean_sd, summary  # the one home of these statistics

    assert summary([1.0, 2.0, 3.0, np.nan]) == {"mean": 2.0, "sd": 1.0, "n": 3}
    assert summary([0.5]) == {"mean": 0.5, "sd": None, "n": 1}
    mean, sd = mean_sd(np.array([[1.0, np.nan], [3.0, np.nan]]))
    np.testing.assert_allclose(mean, [2.0, np.nan])
    np.testing.assert_allclose(sd, [np.sqrt(2.0), np.nan])


def test_falls_below_interpolates_after_the_start():
    x = np.array([0.0, 0.5, 1.0, 1.5])
    y = np.array([0.6, 1.0, 0.8, 0.2])
    # from the peak (index 1): 0.8 -> 0.2 crosses 0.5 halfway between 1.0 and 1.5
    assert du.falls_below(x, y, 0.5, start=1) == pytest.approx(1.25)
    assert np.isnan(du.falls_below(x, y, 0.1, start=1))  # never below
    assert np.isnan(du.falls_below(x, y, 0.7, start=0))  # already below at the start


def test_networks_and_parts_have_their_own_random_streams():
    small = {"n_neurons": 30, "loads": [0.1, 0.2], "unlearned": [0.0, 1.0], "n_cues": 2,
             "n_starts": 30, "hfp.n_networks": 1, "hfp.dreams": [0], "hfp.n_starts": 20}
    one = du.run(build(du.Config, {**small, "n_networks": 1}), quick_context(3))
    two = du.run(build(du.Config, {**small, "n_networks": 2, "hfp.n_networks": 2}),
                 quick_context(3))
    for name in CURVES:  # a second network and another HFP part leave network 0 as it was
        np.testing.assert_array_equal(two.arrays[f"grid_{name}"][0],
                                      one.arrays[f"grid_{name}"][0])
        np.testing.assert_array_equal(two.arrays[f"hfp_{name}"][0],
                                      one.arrays[f"hfp_{name}"][0])


def test_config_rejects_bad_axes():
    with pytest.raises(ConfigError, match="loads"):
        build(du.Config, {"loads": [0.2, 0.1]})
    with pytest.raises(ConfigError, match="different number of patterns"):
        build(du.Config, {"n_neurons": 10, "loads": [0.1, 0.12]})
    with pytest.raises(ConfigError, match="unlearned must start at 0"):
        build(du.Config, {"unlearned": [0.5, 1.0]})
    with pytest.raises(ConfigError, match="cue_flip"):
        build(du.Config, {"cue_flip": 2.0})
    with pytest.raises(ConfigError, match="hfp.n_patterns"):
        build(du.Config, {"hfp.n_patterns": 40})


def test_too_little_sleep_to_break_down_is_a_warning_and_still_draws():
    cfg = build(du.Config, {**du.QUICK, "unlearned": [0.0, 0.5], "n_networks": 1,
                            "hfp.n_networks": 1})
    result = du.run(cfg, quick_context(0))
    assert all(v["breakdown"]["unlearned"]["n"] == 0 for v in result.metrics["by_load"].values())
    assert result.metrics["breakdown"]["unlearned_range"] is None
    assert any("did not break down" in w for w in result.warnings)
    assert set(du.figures(result)) == {"dream_unlearning", "dream_unlearning_capacity",
                                       "dream_unlearning_spurious"}


def test_relaxations_cut_off_by_the_sweep_cap_are_counted_and_warned():
    cfg = build(du.Config, {**du.QUICK, "max_sweeps": 1, "n_networks": 1, "hfp.n_networks": 1})
    result = du.run(cfg, quick_context(0))
    stuck = result.metrics["nonconverged"]
    assert stuck["dreams"] > 0 and stuck["census_starts"] > 0 and stuck["recall_cues"] > 0
    assert stuck["total"] == stuck["dreams"] + stuck["census_starts"] + stuck["recall_cues"]
    assert any("hit the cap of 1 sweeps" in w for w in result.warnings)
