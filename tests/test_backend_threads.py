"""OpenMP threads of the cpp_standalone programs: set per build, restored after, and a
two-thread WTA program that keeps its bookkeeping exact (issue 18, speed)."""

from __future__ import annotations

import brian2 as b2
import numpy as np
import pytest

from neurosim.snn import backend
from neurosim.snn.wta import INPUT_THRESHOLD, WTANetwork, WTAParams


def test_openmp_threads_holds_the_preference_only_inside_the_block():
    saved = b2.prefs[backend.OPENMP_PREF]
    with backend.openmp_threads(2):
        assert b2.prefs[backend.OPENMP_PREF] == 2
    assert b2.prefs[backend.OPENMP_PREF] == saved
    with backend.openmp_threads(1):  # one thread: a serial program, no OpenMP at all
        assert b2.prefs[backend.OPENMP_PREF] == 0
    with pytest.raises(KeyboardInterrupt), backend.openmp_threads(3):
        raise KeyboardInterrupt  # restored on the way out of an interrupted build too
    assert b2.prefs[backend.OPENMP_PREF] == saved


def test_zero_threads_means_one_per_usable_core():
    assert backend.resolve_threads(0) == backend.usable_cores() >= 1
    assert backend.resolve_threads(3) == 3
    with pytest.raises(ValueError, match="threads must be >= 0"):
        backend.resolve_threads(-1)


def test_silent_inputs_never_fire_and_saturated_ones_always_do(numpy_target):
    """The short-circuited Poisson threshold keeps its meaning: P(spike) = rate * dt."""
    clock = b2.Clock(dt=0.5 * b2.ms)
    group = b2.NeuronGroup(3, "rate : Hz", threshold=INPUT_THRESHOLD, clock=clock)
    group.rate = [0, 2000, 400] * b2.Hz  # p = 0, 1, 0.2 per step
    mon = b2.SpikeMonitor(group)
    b2.seed(1)
    b2.Network(group, mon).run(1 * b2.second, namespace={})
    counts = np.asarray(mon.count[:])
    assert counts[0] == 0 and counts[1] == 2000
    assert abs(counts[2] - 400) < 4 * np.sqrt(2000 * 0.2 * 0.8)  # binomial(2000, 0.2)


@pytest.mark.slow  # two C++ builds (~1 min each on 2 idle cores)
def test_two_thread_program_repeats_and_keeps_weight_totals_exact(tmp_path):
    """Two OpenMP threads share the synapses: the running totals the renormalisation divides
    by must still equal the weight sums (no update lost to a race), and the same seed must
    give the same weights."""
    if backend.select("cpp_standalone", str(tmp_path / "probe")).name != "cpp_standalone":
        pytest.skip("no C++ toolchain for Brian2's cpp_standalone device")
    p = WTAParams(n_input=20, n_exc=6, present_ms=50, rest_ms=25, max_rate_hz=400,
                  norm_total=4.0, min_spikes=0, nu_post=0.05, nu_pre=0.005)
    X = np.random.default_rng(1).random((8, 20))
    weights = []
    for k in range(2):
        backend.select("cpp_standalone", str(tmp_path / f"run{k}"))
        net = WTANetwork(p, np.random.default_rng(0), chunk=8, threads=2)
        counts = net.present(X, plastic=True)
        assert counts.sum() > 0
        totals = np.asarray(net.exc.total_in[:])  # read back from the program's results
        np.testing.assert_allclose(totals, net.weights.sum(axis=0), rtol=1e-9)
        weights.append(net.weights.copy())
        backend.reset_device()
    np.testing.assert_array_equal(weights[0], weights[1])
