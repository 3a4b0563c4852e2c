"""Spiking building blocks pinned by hand computations (Brian2's numpy target: no compiler)."""

from __future__ import annotations

import math

import brian2 as b2
import numpy as np
import pytest
from brian2.devices.device import runtime_device

from neurosim.runner.config import ConfigError
from neurosim.runner.contract import quick_context
from neurosim.snn import backend
from neurosim.snn.encoding import (
    Schedule,
    counts_per_sample,
    on_off,
    poisson_rates,
    poisson_spikes,
)
from neurosim.snn.models import (
    LIF_CURRENT,
    POST_TRACES,
    POST_TRACES_DECAY,
    POST_TRACES_RESET,
    STDP_ADDITIVE,
    STDP_DIEHL_COOK,
    STDP_DIEHL_COOK_NEURON_TRACES,
)
from neurosim.snn.units import brian_namespace
from neurosim.snn.wta import WTANetwork, WTAParams


@pytest.fixture(autouse=True)
def dt_01ms(numpy_target):
    """The numpy target (conftest) and a 0.1 ms default clock (conftest's brian2_state
    restores it after the test)."""
    b2.defaultclock.dt = 0.1 * b2.ms
    yield


@pytest.mark.parametrize(("method", "expected_mv"), [
    ("euler", -70 + 0.1 * (-65 + 70 + 20) / 10),  # v += dt * (v_rest - v + RI) / tau
    ("exact", -45 + (-70 + 45) * math.exp(-0.1 / 10)),  # v_inf + (v0 - v_inf) e^{-dt/tau}
])
def test_one_lif_step_by_hand(method, expected_mv):
    group = b2.NeuronGroup(1, LIF_CURRENT, threshold="v > v_thresh", reset="v = v_rest",
                           refractory=2 * b2.ms, method=method)
    group.v = -70 * b2.mV
    group.I = 2 * b2.nA  # R * I = 10 Mohm * 2 nA = 20 mV
    net = b2.Network(group)
    net.run(0.1 * b2.ms, namespace={"v_rest": -65 * b2.mV, "R": 10 * b2.Mohm,
                                     "tau_m": 10 * b2.ms, "v_thresh": -50 * b2.mV})
    assert float(group.v[0] / b2.mV) == pytest.approx(expected_mv, abs=1e-9)


def stdp_weight(rule: dict, pre_ms: list[float], post_ms: list[float], params: dict,
                w0: float = 0.5) -> float:
    """Weight after one pre neuron fires at `pre_ms` and one post neuron at `post_ms`."""
    pre = b2.SpikeGeneratorGroup(1, [0] * len(pre_ms), np.array(pre_ms) * b2.ms)
    post = b2.NeuronGroup(
        1, "ge : 1", method="euler",
        threshold=" or ".join(f"abs(t - {t}*ms) < 0.5*dt" for t in post_ms) or "False")
    syn = b2.Synapses(pre, post, rule["model"], on_pre=rule["on_pre"], on_post=rule["on_post"],
                      method="exact")
    syn.connect()
    syn.w = w0
    syn.stdp_on = 1.0
    net = b2.Network(pre, post, syn)
    net.run((max(pre_ms + post_ms) + 1) * b2.ms, namespace=params)
    return float(syn.w[0])


SONG = {"tau_pre": 20 * b2.ms, "tau_post": 20 * b2.ms, "A_pre": 0.01, "A_post": -0.0105,
        "w_max": 1.0}


def test_additive_stdp_potentiation_at_plus_10ms():
    w = stdp_weight(STDP_ADDITIVE, [10.0], [20.0], SONG)
    assert w - 0.5 == pytest.approx(0.01 * math.exp(-10 / 20), rel=1e-6)


def test_additive_stdp_depression_at_minus_10ms():
    w = stdp_weight(STDP_ADDITIVE, [20.0], [10.0], SONG)
    assert w - 0.5 == pytest.approx(-0.0105 * math.exp(-10 / 20), rel=1e-6)


def test_diehl_cook_stdp_by_hand():
    params = {"tau_pre": 20 * b2.ms, "tau_post1": 20 * b2.ms, "tau_post2": 40 * b2.ms,
              "nu_pre": 1e-4, "nu_post": 1e-2, "w_max": 1.0}
    w = stdp_weight(STDP_DIEHL_COOK, [10.0], [0.0, 20.0], params)
    # pre at 10 ms: w -= nu_pre * post1 = 1e-4 e^{-10/20}
    # post at 20 ms: w += nu_post * pre * post2(before reset) = 1e-2 e^{-10/20} e^{-20/40}
    expected = 0.5 - 1e-4 * math.exp(-0.5) + 1e-2 * math.exp(-0.5) * math.exp(-0.5)
    assert w == pytest.approx(expected, rel=1e-6)


def test_weights_stay_in_bounds():
    many_post = [float(t) for t in range(11, 200, 5)]
    assert stdp_weight(STDP_ADDITIVE, [10.0, 60.0, 110.0], many_post, SONG, w0=0.995) <= 1.0
    assert stdp_weight(STDP_ADDITIVE, many_post, [10.0], SONG, w0=0.001) >= 0.0


def test_poisson_rates_and_spikes():
    rates = poisson_rates(np.array([[0.0, 0.5, 1.0]]), 40.0)
    assert rates.tolist() == [[0.0, 20.0, 40.0]]
    spikes = poisson_spikes(np.array([0.0, 100.0]), 50.0, 1e-3, np.random.default_rng(0))
    assert spikes[:, 0].sum() == 0
    assert spikes[:, 1].mean() / 1e-3 == pytest.approx(100.0, rel=0.05)


def test_schedule_table_and_counts():
    sched = Schedule(present_ms=350, rest_ms=150)
    assert sched.block_ms == 50 and sched.blocks_per_sample == 10
    table = sched.table(np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert table.shape == (20, 2)
    assert table[:7].tolist() == [[1.0, 2.0]] * 7 and not table[7:10].any()
    assert table[10].tolist() == [3.0, 4.0]
    i = np.array([0, 1, 1, 0, 1])
    t = np.array([0.10, 0.20, 0.45, 0.60, 0.99])  # samples of 0.5 s starting at t=0
    counts = counts_per_sample(i, t, 0.0, 0.5, 2, 2)
    assert counts.tolist() == [[1, 2], [1, 1]]


def test_neuron_traces_give_the_same_weights_as_synapse_traces():
    """The fast rule (traces per neuron, running weight totals) against D&C's own form (traces
    per synapse), on the same random spike trains: dense enough for same-step pre/post
    coincidences, learning rates large enough to hit the clipping bounds."""
    b2.defaultclock.dt = 0.5 * b2.ms
    pre = b2.NeuronGroup(6, "rate : Hz", threshold="rand() < rate * dt", refractory=0 * b2.ms)
    post = b2.NeuronGroup(4, "rate : Hz\nge : 1\n" + POST_TRACES,
                          threshold="rand() < rate * dt", reset=POST_TRACES_RESET)
    post.run_regularly(POST_TRACES_DECAY, when="groups")
    pre.rate, post.rate = 90 * b2.Hz, 60 * b2.Hz
    w0 = np.random.default_rng(0).random(24)
    pair = []
    for rule in (STDP_DIEHL_COOK, STDP_DIEHL_COOK_NEURON_TRACES):
        syn = b2.Synapses(pre, post, rule["model"], on_pre=rule["on_pre"],
                          on_post=rule["on_post"], method="exact")
        syn.connect()
        syn.w, syn.stdp_on = w0, 1.0
        pair.append(syn)
    post.total_in = w0.reshape(6, 4).sum(axis=0)
    b2.seed(5)
    net = b2.Network(pre, post, *pair)
    net.run(2 * b2.second, namespace={"tau_pre": 20 * b2.ms, "tau_post1": 20 * b2.ms,
                                      "tau_post2": 40 * b2.ms, "nu_pre": 0.2, "nu_post": 0.2,
                                      "w_max": 1.0})
    ref, fast = (np.asarray(s.w[:]) for s in pair)
    assert np.abs(ref - w0).max() > 0.3 and np.any((ref == 0) | (ref == 1))
    np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(post.total_in[:], fast.reshape(6, 4).sum(axis=0), atol=1e-12)


@pytest.mark.slow  # a Brian2 network built and run on the numpy target (~7 s)
def test_wta_pass_normalises_and_counts():
    p = WTAParams(n_input=6, n_exc=3, present_ms=50, rest_ms=25, max_rate_hz=400,
                  norm_total=1.5)
    net = WTANetwork(p, np.random.default_rng(0), chunk=2)
    X = np.random.default_rng(1).random((3, 6))
    counts = net.present(X, plastic=True)
    assert counts.shape == (3, 3) and counts.dtype == np.int64
    # renormalised before the last sample, then changed only by that sample's STDP
    np.testing.assert_allclose(net.weights.sum(axis=0), 1.5, rtol=0.05)
    assert np.all((net.weights >= 0) & (net.weights <= p.w_max))
    frozen = net.weights.copy()
    net.present(X[:1], plastic=False)
    np.testing.assert_allclose(net.weights, frozen * 1.5 / frozen.sum(axis=0), rtol=1e-6)


def test_learning_rate_scale_zero_freezes_weights_but_not_thresholds():
    b2.seed(2)  # a tiny network fires a few spikes: seed Brian2 so it always fires some
    p = WTAParams(n_input=6, n_exc=3, present_ms=50, rest_ms=25, max_rate_hz=400,
                  norm_total=3.0, min_spikes=0)
    net = WTANetwork(p, np.random.default_rng(0), chunk=2)
    w0 = net.weights.copy()
    counts = net.present(np.random.default_rng(1).random((3, 6)), plastic=True,
                         learning_rate_scale=0.0)
    assert counts.sum() > 0
    np.testing.assert_allclose(net.weights, w0, rtol=0, atol=1e-12)
    # every spike still raised the threshold by theta_plus (decay over 0.2 s: ~2e-5 relative)
    np.testing.assert_allclose(net.theta_mv, p.theta_plus_mv * counts.sum(axis=0), rtol=1e-4)


@pytest.mark.slow
def test_stdp_digits_same_seed_same_metrics():
    from neurosim.experiments import stdp_digits
    from neurosim.runner.config import build

    cfg = build(stdp_digits.Config, {**stdp_digits.QUICK, "n_train": 20, "n_test": 10,
                                     "snn.n_exc": 8, "val_fraction": 0.0})
    runs = [stdp_digits.run(cfg, quick_context(seed)) for seed in (3, 3, 4)]
    drop = ("train_seconds", "train_samples_per_second", "build_seconds", "total_seconds")
    a, b, c = ({k: v for k, v in r.metrics.items() if k not in drop} for r in runs)
    assert a == b
    np.testing.assert_array_equal(runs[0].arrays["weights"], runs[1].arrays["weights"])
    assert not np.array_equal(runs[0].arrays["weights"], runs[2].arrays["weights"])


def test_on_off_coding_gives_each_pixel_an_on_and_an_off_cell():
    from neurosim.snn.encoding import on_off

    X = np.array([[0.0, 0.25, 1.0]])
    assert on_off(X).tolist() == [[0.0, 0.25, 1.0, 1.0, 0.75, 0.0]]


@pytest.mark.slow
def test_cpp_standalone_repeats_exactly_and_matches_the_runtime_network(tmp_path):
    """The compiled C++ program, built once and re-run per chunk: same seed, same weights;
    another seed, other weights; normalisation and plasticity switches as on the runtime
    targets. Skipped where no C++ toolchain builds (the backend then falls back)."""
    from neurosim.experiments import stdp_digits
    from neurosim.runner.config import build

    if backend.select("cpp_standalone", str(tmp_path / "probe")).name != "cpp_standalone":
        pytest.skip("no C++ toolchain for Brian2's cpp_standalone device")
    cfg = build(stdp_digits.Config, {**stdp_digits.QUICK, "n_train": 20, "n_test": 10,
                                     "snn.n_exc": 8, "chunk": 10, "val_fraction": 0.0,
                                     "backend": "cpp_standalone"})
    runs = [stdp_digits.run(cfg, quick_context(seed, scratch_dir=tmp_path / str(k)))
            for k, seed in enumerate((3, 3, 4))]
    assert b2.get_device() is runtime_device  # handed back
    assert runs[0].meta["brian2_target"] == "cpp_standalone"
    drop = ("train_seconds", "train_samples_per_second", "build_seconds", "total_seconds")
    a, b, _ = ({k: v for k, v in r.metrics.items() if k not in drop} for r in runs)
    assert a == b and a["spikes_per_test_sample"] > 0
    w = runs[0].arrays["weights"]
    np.testing.assert_array_equal(w, runs[1].arrays["weights"])
    assert not np.array_equal(w, runs[2].arrays["weights"])
    # labelling and testing left the weights as training's last renormalisation + STDP made them
    np.testing.assert_allclose(w.sum(axis=0), cfg.snn.norm_total, rtol=0.1)


def test_faint_samples_are_shown_again_faster():
    p = WTAParams(n_input=6, n_exc=3, present_ms=50, rest_ms=25, max_rate_hz=1e-3,
                  norm_total=1.5, min_spikes=1, max_repeats=2)
    net = WTANetwork(p, np.random.default_rng(0), chunk=2)
    X = np.random.default_rng(1).random((2, 6))
    counts = net.present(X, plastic=False)
    assert counts.sum() == 0  # far too faint: shown 1 + 2 times, still silent
    assert net.t_s == pytest.approx(3 * 2 * 0.075)  # three showings of one chunk of 2 samples


def test_network_entry_points_check_their_inputs():
    p = WTAParams(n_input=6, n_exc=3, present_ms=50, rest_ms=25)
    net = WTANetwork(p, np.random.default_rng(0), chunk=2)
    with pytest.raises(ValueError, match="inputs have 5 columns but the network has 6"):
        net.present(np.zeros((2, 5)), plastic=False)
    with pytest.raises(ValueError, match=r"intensities must be finite numbers in \[0, 1\]"):
        net.present(np.full((2, 6), 255.0), plastic=False)
    with pytest.raises(ConfigError, match="n_exc must be >= 1, got 0"):
        WTAParams(n_exc=0)
    with pytest.raises(ConfigError, match="present_ms must be a whole number of time steps"):
        WTAParams(dt_ms=1.0, present_ms=2.5)
    with pytest.raises(ValueError, match="intensities"):
        on_off(np.array([[1.5]]))


def test_unit_suffixes_make_the_namespace():
    ns = brian_namespace(WTAParams(), rename={"e_exc": "E_exc", "e_inh_e": "E_inh_e",
                                              "e_inh_i": "E_inh_i"})
    assert ns["tau_e"] == 100 * b2.ms and ns["v_thresh_e"] == -52 * b2.mV
    assert ns["E_exc"] == 0 * b2.mV and ns["w_ie"] == 17.0
    assert "dt" not in ns  # Brian2's own name: never shadowed
    with pytest.raises(ValueError, match="rename names no field"):
        brian_namespace(WTAParams(), rename={"nothing": "x"})


def test_weights_that_leave_the_numbers_end_the_run_diverged(monkeypatch):
    from neurosim.experiments import stdp_digits
    from neurosim.runner.config import build
    from neurosim.snn import wta

    monkeypatch.setattr(wta, "check_finite", lambda net: False)
    cfg = build(stdp_digits.Config, {**stdp_digits.QUICK, "n_train": 30, "n_test": 10,
                                     "snn.n_exc": 5, "val_fraction": 0.0})
    result = stdp_digits.run(cfg, quick_context(0))
    assert result.status == "DIVERGED"
    assert "NaN/inf in epoch 1" in result.warnings[0]
    assert "training" in result.curves  # what was measured before is kept


def test_faint_samples_open_the_next_run_and_chunks_end_where_they_did():
    """Diehl & Cook show a faint sample again at once; here it opens the next run (before,
    the repeats of a pass followed the pass: a burst of boosted presentations with STDP on at
    the end of training). `on_chunk` still comes after every `chunk` new samples."""
    from neurosim.snn.wta import interleaved_runs

    runs, reported = [], []
    faint = {(0, 0), (0, 1), (3, 0)}  # sample 0 is faint twice, sample 3 once

    def show(items):
        runs.append(list(items))
        return np.array([[0] if (i, r) in faint else [9] for i, r in items])

    out = interleaved_runs(5, 2, 1, show, min_spikes=5, max_repeats=8,
                           on_chunk=lambda k, c: reported.append((k, c[:, 0].tolist())))
    assert runs == [[(0, 0), (1, 0)],
                    [(0, 1), (2, 0)],          # the repeat first, then new samples ...
                    [(0, 2), (3, 0)],          # ... up to the chunk end at 4
                    [(3, 1), (4, 0)]]
    assert reported[0] == (2, [0, 9])  # after every 2 new samples, counts so far
    assert [k for k, _ in reported] == [2, 4, 5]
    assert out[:, 0].tolist() == [9, 9, 9, 9, 9]  # each sample's last showing
    # without the rule the runs are the plain chunks
    runs.clear()
    interleaved_runs(5, 2, 1, show, min_spikes=0, max_repeats=8)
    assert runs == [[(0, 0), (1, 0)], [(2, 0), (3, 0)], [(4, 0)]]
    # a sample still faint after max_repeats keeps its last counts
    runs.clear()
    out = interleaved_runs(1, 2, 1, lambda items: (runs.append(items), np.zeros((len(items), 1),
                                                                                 int))[1],
                           min_spikes=5, max_repeats=2)
    assert runs == [[(0, 0)], [(0, 1)], [(0, 2)]] and out[0, 0] == 0
