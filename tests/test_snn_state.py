"""Brian2 without global state: networks bring their own clocks, importing the backend changes
no preference, run preferences hold only during a run; parameters Brian2 cannot simulate are
refused in one line; quick runs never compile; every network's spikes are one `Spikes` type."""

from __future__ import annotations

import dataclasses
import importlib

import brian2 as b2
import numpy as np
import pytest

from neurosim import experiments
from neurosim.snn import backend, convert
from neurosim.snn.wta import WTANetwork, WTAParams
from neurosim.spikes import Spikes
from neurosim.validation import InvalidParameterError

pytestmark = pytest.mark.usefixtures("numpy_target")

P = WTAParams(n_input=6, n_exc=3, dt_ms=0.5, present_ms=20.0, rest_ms=10.0, max_rate_hz=300.0,
              min_spikes=0)
SENTINEL = 0.3 * b2.ms  # a default clock no network of neurosim uses


def _prefs() -> dict:
    return {name: b2.prefs[name] for name in b2.prefs}


def test_importing_the_backend_changes_no_preference():
    b2.prefs.core.stop_on_keyboard_interrupt = True
    before = _prefs()
    importlib.reload(backend)  # what `import neurosim.snn.backend` runs
    assert _prefs() == before


def test_run_preferences_hold_during_a_run_only():
    b2.prefs.core.stop_on_keyboard_interrupt = True
    b2.prefs.logging.console_log_level = "INFO"
    seen = []
    net = WTANetwork(P, np.random.default_rng(0), chunk=2)

    @b2.network_operation(when="end")
    def look():
        seen.append(b2.prefs.core.stop_on_keyboard_interrupt)

    net.net.add(look)
    net.present(np.full((1, 6), 0.5), plastic=False)
    assert seen and not any(seen)  # Ctrl-C reaches Python's handler inside the run
    assert b2.prefs.core.stop_on_keyboard_interrupt is True  # and the user's setting is back
    assert b2.prefs.logging.console_log_level == "INFO"


def test_running_restores_the_preferences_after_an_interrupt():
    b2.prefs.core.stop_on_keyboard_interrupt = True
    with pytest.raises(KeyboardInterrupt), backend.running():
        assert b2.prefs.core.stop_on_keyboard_interrupt is False
        raise KeyboardInterrupt
    assert b2.prefs.core.stop_on_keyboard_interrupt is True


def _build_every_network() -> None:
    from neurosim.experiments.brain_vs_ann.converted_arm import run_converted_on_brian2
    from neurosim.sleep import src
    from neurosim.snn.replicas import WTAReplicas
    from neurosim.snn.song2000 import SongNetwork, SongParams

    rng = np.random.default_rng(0)
    WTANetwork(P, rng, chunk=2).present(rng.random((2, 6)), plastic=True)
    WTAReplicas(P, 2, rng, chunk=2).present(rng.random((2, 2, 6)), rng.random((2, 6, 3)),
                                             np.zeros((2, 3)))
    SongNetwork(SongParams(n_inputs=5, dt_ms=0.1), rng).run(0.01, record_inputs=True)
    W = [rng.normal(size=(6, 4)), rng.normal(size=(4, 2))]
    inp = convert.poisson_input(rng.random((2, 6)), 5, 0.5, rng)
    convert.simulate(W, inp, engine="brian2", dt_ms=1.0)
    run_converted_on_brian2(W, inp, convert.ConversionParams(dt_ms=1.0, n_steps=5), keep=1)
    sp = src.SleepParams(beta=(1.0, 1.0), mask=-1, engine="brian2", dt_s=0.002)
    src.sleep(W, rng.random((3, 6)), 5, sp, rng, image_shape=(2, 3))


def test_building_any_network_leaves_the_default_clock_alone():
    b2.defaultclock.dt = SENTINEL  # conftest's brian2_state puts it back
    _build_every_network()
    assert b2.defaultclock.dt == SENTINEL


def test_a_new_network_does_not_retime_an_older_one():
    first = WTANetwork(P, np.random.default_rng(0), chunk=2)
    WTANetwork(dataclasses.replace(P, dt_ms=0.25), np.random.default_rng(0), chunk=2)
    for obj in (first.inp, first.exc, first.inh, first.syn, first.ei, first.ie):
        assert obj.clock.dt == 0.5 * b2.ms
    first.present(np.full((1, 6), 0.5), plastic=False)
    assert first.net.t == 30 * b2.ms  # 20 ms + 10 ms at 0.5 ms steps: 60 steps


@pytest.mark.parametrize(("values", "message"), [
    ({"dt_ms": 1e9}, "dt_ms must be at most the shortest time constant (tau_ge_ms = 1.0), "
                     "got 1000000000.0"),
    ({"dt_ms": 0.3, "present_ms": 100.0}, "present_ms must be a whole number of time steps"),
    ({"w_init_max": 0.0}, "w_init_max must be > 0, got 0.0"),
    ({"max_rate_hz": 5000.0}, "max_rate_hz * dt must be <= 1"),
])
def test_parameters_brian2_cannot_simulate_are_refused_in_one_line(values, message):
    with pytest.raises(InvalidParameterError) as info:
        WTAParams(**values)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_whole_steps_are_checked_to_a_relative_tolerance():
    # 350 / 1e9 = 3.5e-7 steps passed the old absolute tolerance (1e-6) as 'whole'
    with pytest.raises(InvalidParameterError, match="whole number of time steps"):
        WTAParams(dt_ms=1e9, tau_e_ms=1e10, tau_i_ms=1e10, tau_ge_ms=1e10, tau_gi_ms=1e10,
                  tau_pre_ms=1e10, tau_post1_ms=1e10, tau_post2_ms=1e10, max_rate_hz=1e-9)
    assert WTAParams(dt_ms=0.1, present_ms=350.0).present_ms == 350.0  # 3500.0000000000005


def test_quick_runs_use_the_numpy_target_everywhere():
    """No --quick run compiles: every Brian2 target field is numpy under QUICK (sleep_replay
    with sleep.engine=brian2 compiled Cython for over 2 minutes)."""
    checked = 0
    for name in experiments.EXPERIMENTS:
        module = experiments.get(name)
        quick = getattr(module, "QUICK", {})
        for f in dataclasses.fields(module.Config):
            if f.name.endswith("backend"):
                value = quick.get(f.name, f.default)
                assert value == "numpy", f"{name}: --quick runs {f.name}={value}"
                checked += 1
    assert checked >= 5  # stdp_song2000, stdp_digits, sleep_replay, brain_vs_ann (two)


def test_every_network_records_spikes_as_one_type():
    from neurosim.sleep import src

    rng = np.random.default_rng(0)
    net = WTANetwork(P, rng, chunk=2)
    net.present(rng.random((2, 6)), plastic=False, record_input=True)
    assert set(net.recorded) == {"exc", "input"}
    assert all(isinstance(s, Spikes) for s in net.recorded.values())
    assert net.recorded["input"].n_neurons == 6 and net.recorded["exc"].t_stop == 0.06

    out = np.zeros((3, 2, 2), dtype=bool)  # (steps, samples, outputs)
    out[1, 0, 1] = out[2, 1, 0] = True
    run = convert.SpikeRun.from_dense(out, [np.zeros((2, 2), np.int64)], dt_ms=0.5)
    assert isinstance(run.spikes, Spikes)
    np.testing.assert_array_equal(run.spikes.i, [1, 0])
    np.testing.assert_allclose(run.spikes.t, [0.0005, 0.0025])  # sample 1 starts at 1.5 ms
    np.testing.assert_array_equal(run.output, out)

    W = [np.full((4, 2), 0.6)]
    spikes = np.array([[1, 1, 0, 0], [0, 0, 0, 0], [1, 0, 1, 0]], dtype=bool)
    r = src.sleep(W, np.ones((1, 4)), 0, src.SleepParams(beta=(1.0,), mask=-1, inc=0, dec=0,
                                                          alpha_scale=1.0),
                  rng, input_spikes=spikes, alphas=[1.0])
    assert all(isinstance(s, Spikes) for s in r.spikes)
    np.testing.assert_array_equal(r.spikes[0].i, [0, 1, 0, 2])
    np.testing.assert_allclose(r.spikes[0].t, [0.0, 0.0, 0.002, 0.002])
    assert r.spikes[0].t_stop == pytest.approx(0.003) and r.n_steps == 3
    np.testing.assert_array_equal(r.rasters[0], spikes)
    np.testing.assert_array_equal(r.counts[0], [2, 1, 1, 0])


def test_sleep_replay_keeps_the_phase_spikes_as_they_are():
    from neurosim.experiments import sleep_replay

    r = type("Phase", (), {})()
    r.spikes = [Spikes.from_dense(np.eye(3, dtype=bool), 0.001)] * 4
    kept = {"sleep": type("C", (), {"sleeps": [r]})()}
    out = sleep_replay.sleep_spikes(None, kept)
    assert list(out) == ["sleep_input", "sleep_hidden1", "sleep_hidden2", "sleep_output"]
    s = out["sleep_output"]
    np.testing.assert_array_equal(s.i, [0, 1, 2])
    np.testing.assert_array_equal(s.t, [0.0, 0.001, 0.002])
    assert s.t_stop == 0.003 and s.n_neurons == 3
