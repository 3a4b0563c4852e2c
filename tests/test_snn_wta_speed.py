"""What makes `neurosim.snn.wta.WTANetwork` faster: the rest after each sample in closed form
(``WTAParams.rest="closed_form"``), forward Euler for the inhibitory membranes
(``inh_method="euler"``), and the standalone program flushing subnormal numbers."""

from __future__ import annotations

import math
from dataclasses import replace

import brian2 as b2
import numpy as np
import pytest
from brian2 import ms, mV

from neurosim.snn import backend
from neurosim.snn.wta import WTANetwork, WTAParams, inh_euler_factor, rest_updates
from neurosim.validation import InvalidParameterError


def _state_after_silence(rest: str) -> dict[str, np.ndarray]:
    """Set every variable of a 4-input, 3-neuron network by hand, show one silent sample of one
    step (0.5 ms) and D&C's 150 ms rest, and read the state back. Times since the last spike
    (``t - lastspike``) stand for ``lastspike``: closed form simulates 150 ms less."""
    p = WTAParams(n_input=4, n_exc=3, present_ms=0.5, min_spikes=0, rest=rest)
    net = WTANetwork(p, np.random.default_rng(0), chunk=1)
    e, i = net.exc, net.inh
    # below threshold, with residual conductances (gi = 10: just after an inhibitory spike)
    e.v = [-60, -70, -55] * mV
    e.ge, e.gi = [0.5, 0.0, 2.0], [0.0, 3.0, 10.0]
    e.theta = [1, 2, 3] * mV
    e.trace_dep, e.trace_pot = [1.0, 0.5, 0.2], [0.3, 1.0, 0.6]
    e.lastspike = [-10, -30, -100] * ms
    i.v, i.ge, i.lastspike = [-50, -45, -58] * mV, [0.5, 0.0, 1.0], [-3, -20, -50] * ms
    net.inp.lastspike = [-1, -5, -20, -40] * ms
    counts = net.present(np.zeros((1, 4)), plastic=False)
    t = net.net.t
    return {"counts": counts, "t_ms": np.array(t / ms),
            "exc_v": e.v[:] / mV, "exc_ge": e.ge[:], "exc_gi": e.gi[:], "theta": e.theta[:] / mV,
            "trace_dep": e.trace_dep[:], "trace_pot": e.trace_pot[:],
            "exc_since": (t - e.lastspike[:]) / ms, "inh_v": i.v[:] / mV, "inh_ge": i.ge[:],
            "inh_since": (t - i.lastspike[:]) / ms, "input_since": (t - net.inp.lastspike[:]) / ms}


def test_closed_form_rest_moves_the_state_as_150_ms_of_stepped_rest(numpy_target):
    stepped = _state_after_silence("stepped")
    b2.start_scope()
    closed = _state_after_silence("closed_form")
    assert stepped["t_ms"] == 150.5 and closed["t_ms"] == 0.5  # no rest steps simulated
    assert stepped["counts"].sum() == closed["counts"].sum() == 0
    # 10 ms before + 150.5 ms: the time since a spike grows by the rest (STDP's pre trace and
    # refractoriness read it)
    np.testing.assert_allclose(closed["exc_since"], [160.5, 180.5, 250.5])
    np.testing.assert_allclose(closed["input_since"], stepped["input_since"])
    np.testing.assert_allclose(closed["inh_since"], stepped["inh_since"])
    # pure exponential decays: the same numbers up to rounding
    for key in ("exc_ge", "exc_gi", "inh_ge", "theta", "trace_dep", "trace_pot"):
        np.testing.assert_allclose(closed[key], stepped[key], rtol=1e-9, atol=0, err_msg=key)
    np.testing.assert_allclose(closed["trace_pot"], np.array([0.3, 1.0, 0.6]) * np.exp(-150.5 / 40))
    # membranes: 22% of the excitatory deviation from rest remains (exp(-150/100)); the
    # conductance kicks, applied at once with the leak neglected while they act (~1-2 ms of
    # tau_e = 100 ms), leave 0.011 mV measured here; without the kicks the error is 0.44 mV
    assert np.abs(stepped["exc_v"] + 65).min() > 0.4  # far from rest still
    np.testing.assert_allclose(closed["exc_v"], stepped["exc_v"], rtol=0, atol=0.02)
    np.testing.assert_allclose(closed["inh_v"], stepped["inh_v"], rtol=0, atol=1e-5)


def test_closed_form_counts_spikes_in_the_sample_windows(numpy_target):
    """Samples are 350 ms apart once the rest is not simulated: a silent middle sample counts
    no spike, the loud ones all of theirs (a 500 ms window would give the middle one the third
    sample's spikes)."""
    b2.seed(3)
    p = WTAParams(n_input=6, n_exc=3, present_ms=50, rest_ms=25, max_rate_hz=400,
                  norm_total=3.0, min_spikes=0, rest="closed_form")
    net = WTANetwork(p, np.random.default_rng(0), chunk=3)
    assert net.period_s == pytest.approx(0.05)
    X = np.ones((3, 6))
    X[1] = 0.0
    counts = net.present(X, plastic=True)
    assert counts[1].sum() == 0 and counts[0].sum() > 0 and counts[2].sum() > 0
    assert counts.sum() == net.exc_mon.num_spikes
    assert net.t_s == pytest.approx(0.15)


@pytest.mark.slow  # compiles a C++ program (~1 min)
def test_closed_form_rest_runs_as_a_standalone_program_with_repeats(tmp_path):
    """cpp_standalone: the rest updates compile (they write ``lastspike``), chunks and faint
    sample repeats still count per 350 ms window, and weights stay normalised."""
    if backend.select("cpp_standalone", str(tmp_path / "probe")).name != "cpp_standalone":
        pytest.skip("no C++ toolchain for Brian2's cpp_standalone device")
    try:
        rng = np.random.default_rng(0)
        p = WTAParams(n_input=6, n_exc=3, present_ms=50, rest_ms=25, max_rate_hz=400,
                      norm_total=3.0, min_spikes=3, max_repeats=2, rest="closed_form")
        net = WTANetwork(p, rng, chunk=2)
        X = np.random.default_rng(1).random((5, 6))
        X[1] = 0.0  # silent: shown twice more, still silent
        counts = net.present(X, plastic=True)
        assert counts[1].sum() == 0 and counts.sum() > 0
        assert net.t_s >= 3 * 2 * 0.05 + 2 * 2 * 0.05 - 1e-9  # 3 chunks, >= 2 repeats of 1
        np.testing.assert_allclose(net.weights.sum(axis=0), 3.0, rtol=0.1)
    finally:
        backend.reset_device()


def test_rest_updates_know_their_groups():
    assert "theta" in rest_updates("exc") and "theta" not in rest_updates("inh")
    assert rest_updates("input") == "lastspike = lastspike - rest"
    with pytest.raises(InvalidParameterError, match="unknown group"):
        rest_updates("inhibitory")
    with pytest.raises(InvalidParameterError, match="unknown rest mode 'skipped'"):
        WTAParams(rest="skipped")


def test_schedule_drops_the_rest_only_in_closed_form():
    assert WTAParams().schedule.period_ms == 500.0
    assert WTAParams(rest="closed_form").schedule.period_ms == 350.0


def test_forward_euler_of_the_inhibitory_neurons_is_stable_only_below_the_bound():
    # partner fires at most every 5 ms: ge <= 10.4 / (1 - e^-5) = 10.470; 0.5 * 11.47 / 10
    assert inh_euler_factor(WTAParams()) == pytest.approx(0.5 * (1 + 10.4 / (1 - math.exp(-5)))
                                                         / 10)
    assert inh_euler_factor(WTAParams()) == pytest.approx(0.5735, abs=1e-4)
    WTAParams(inh_method="euler")
    with pytest.raises(InvalidParameterError, match="unstable"):
        WTAParams(inh_method="euler", w_ei=50.0)  # 0.5 * 51.3 / 10 = 2.6
    with pytest.raises(InvalidParameterError, match="unknown inh_method"):
        WTAParams(inh_method="rk4")


def test_forward_euler_inhibitory_membrane_by_hand(numpy_target):
    """One step of the inhibitory membrane with ``inh_method="euler"``:
    v += dt (v_rest - v + ge (E_exc - v)) / tau_i."""
    p = WTAParams(n_input=4, n_exc=2, present_ms=0.5, rest_ms=0.0, min_spikes=0,
                  inh_method="euler")
    net = WTANetwork(p, np.random.default_rng(0), chunk=1)
    net.inh.v, net.inh.ge = [-50, -58] * mV, [1.0, 0.0]
    net.present(np.zeros((1, 4)), plastic=False)
    expected = [-50 + 0.5 * (-60 + 50 + 1.0 * (0 + 50)) / 10, -58 + 0.5 * (-60 + 58) / 10]
    np.testing.assert_allclose(net.inh.v[:] / mV, expected, atol=1e-9)


@pytest.mark.slow  # compiles two C++ programs (~1 min each)
def test_flushing_subnormals_changes_no_weight(tmp_path):
    """20 s of simulated training (an inhibitory ge goes subnormal ~0.7 s after its partner's
    last spike, a postsynaptic trace after ~14 s of silence): the same weights, thresholds and
    counts bit for bit with and without `FLUSH_DENORMALS`, which only the flushing program
    runs."""
    results = []
    for flush in (False, True):
        directory = tmp_path / str(flush)
        if backend.select("cpp_standalone", str(directory)).name != "cpp_standalone":
            pytest.skip("no C++ toolchain for Brian2's cpp_standalone device")
        try:
            p = WTAParams(n_input=20, n_exc=8, norm_total=4.0, max_rate_hz=100, min_spikes=0)
            net = WTANetwork(p, np.random.default_rng(0), chunk=20, flush_denormals=flush)
            X = np.random.default_rng(1).random((40, 20))
            counts = net.present(X, plastic=True)
            results.append((counts, net.weights, net.theta_mv))
            assert ("ldmxcsr" in (directory / "main.cpp").read_text()) == flush
        finally:
            backend.reset_device()
    assert results[0][0].sum() > 0
    for off, on in zip(*results, strict=True):
        np.testing.assert_array_equal(on, off)


@pytest.mark.parametrize("rest", ["stepped", "closed_form"])
def test_frozen_theta_does_not_decay_while_plasticity_is_off(numpy_target, rest):
    """D&C's test mode (`freeze_theta`): a labelling or test pass leaves theta as training
    left it; without it theta decays by tau_theta there too (the digits default)."""
    from neurosim.snn.wta import WTANetwork

    p = WTAParams(n_input=4, n_exc=3, present_ms=20.0, rest_ms=10.0, tau_theta_ms=50.0,
                  max_rate_hz=0.001, min_spikes=0, rest=rest)
    X = np.zeros((4, 4))
    for freeze, kept in ((True, 1.0), (False, np.exp(-4 * 30.0 / 50.0))):
        net = WTANetwork(replace(p, freeze_theta=freeze), np.random.default_rng(0), chunk=4)
        net.exc.theta = np.array([1.0, 2.0, 3.0]) * b2.mV
        net.present(X, plastic=False)
        np.testing.assert_allclose(net.theta_mv, np.array([1.0, 2.0, 3.0]) * kept, rtol=1e-3)
        net.present(X, plastic=True)  # training: it decays either way
        assert (net.theta_mv < np.array([1.0, 2.0, 3.0]) * kept * 0.2).all()
