"""The learning rules' one home (neurosim.plasticity): each rule pinned by hand-computed
numbers, the table and its interface, and the numpy STDP step against Brian2's equations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neurosim import plasticity as P
from neurosim.validation import InvalidParameterError


def test_every_rule_shares_one_interface_and_changes_nothing_in_place():
    w = np.array([[0.5, -0.2], [0.1, 0.3]])
    pre, post = np.array([1.0, -1.0]), np.array([1.0, 1.0])
    constants = {"hebb": {"eta": 0.1}, "oja": {"eta": 0.1}, "bcm": {"eta": 0.1, "theta": 0.5},
                 "hopfield": {"eta": 1.0}, "src": {"inc": 0.1, "dec": 0.2, "width": 1.0},
                 "stdp": {"pre_trace": np.zeros(2), "post_trace": np.zeros(2), "w_max": 1.0}}
    assert set(P.RULES) == set(constants)
    for name in P.RULES:
        before = w.copy()
        a, b = (pre > 0, post > 0) if name in ("src", "stdp") else (pre, post)
        if name in ("hebb", "oja", "bcm"):  # one neuron: a row of weights, a scalar output
            dw = P.rule(name)(w[0], a, 0.7, **constants[name])
            assert dw.shape == (2,)
        else:
            dw = P.rule(name)(w, a, b, **constants[name])
            assert dw.shape == (2, 2)
        np.testing.assert_array_equal(w, before)
    with pytest.raises(InvalidParameterError, match="unknown learning rule 'ojaa'; choose "
                                                    "from bcm, hebb, hopfield, oja, src, stdp"):
        P.rule("ojaa")


def test_rate_rules_by_hand():
    w, x = np.array([0.6, 0.8]), np.array([1.0, 0.5])
    y = w @ x  # 1.0
    np.testing.assert_allclose(P.hebb(w, x, y, eta=0.1), [0.1, 0.05])
    # oja: 0.1 * 1 * (x - 1 * w) = 0.1 * [0.4, -0.3]
    np.testing.assert_allclose(P.oja(w, x, y, eta=0.1), [0.04, -0.03])
    # bcm: 0.1 * x * 1 * (1 - 0.25) below/above theta: potentiation; above y: depression
    np.testing.assert_allclose(P.bcm(w, x, y, eta=0.1, theta=0.25), [0.075, 0.0375])
    np.testing.assert_allclose(P.bcm(w, x, y, eta=0.1, theta=2.0), [-0.1, -0.05])
    assert P.bcm_threshold(0.25, 1.0, tau=4.0) == 0.25 + (1.0 - 0.25) / 4


def test_hopfield_stores_and_unlearns_by_hand():
    s = np.array([1.0, -1.0, 1.0, 1.0])
    dw = P.hopfield(None, s, s)
    expected = np.outer(s, s) / 4
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_array_equal(dw, expected)
    # two patterns at once = the sum of the two; a dream's -epsilon is a fraction of one
    t = np.array([1.0, 1.0, -1.0, 1.0])
    np.testing.assert_array_equal(P.hopfield(None, np.stack([s, t]), np.stack([s, t])),
                                  dw + P.hopfield(None, t, t))
    np.testing.assert_array_equal(P.hopfield(None, s, s, eta=-0.01), -0.01 * dw)


def test_src_rule_by_hand():
    """w += 2 inc / (1 + e^{w/w0}) where pre fired, w -= 2 dec / (1 + e^{w/w0}) where not;
    only rows of neurons that fired change."""
    w = np.array([[0.0, 0.0], [0.001, -0.001]])
    pre = np.array([True, False])
    dw = P.src(w, pre, np.array([False, True]), inc=0.1, dec=0.2, width=0.001)
    g = 2 / (1 + math.e)  # g(+w0); g(-w0) = 2 - g(+w0)
    np.testing.assert_allclose(dw, [[0.0, 0.0], [0.1 * g, -0.2 * (2 - g)]], rtol=1e-15)
    # post=None: every row given fired (the sleep engine's rows of the neurons that fired)
    np.testing.assert_allclose(P.src(w[:1], pre, None, inc=0.1, dec=0.2, width=0.001),
                               [[0.1, -0.2]], rtol=1e-15)
    assert P.src_gain(np.array([-1.0, 0.0, 1.0]), 0.001).tolist() == [2.0, 1.0, 0.0]


SONG = P.STDPParams(tau_pre_s=0.020, tau_post_s=0.020, a_pre=0.01, a_post=-0.0105, w_max=1.0)


def run_pairs(pre_steps, post_steps, n_steps, w0=0.5, dt_s=1e-3, p=SONG):
    w = np.array([[w0]])
    a_pre, a_post = np.zeros(1), np.zeros(1)
    for k in range(n_steps):
        w, a_pre, a_post = P.stdp_step(w, np.array([k in pre_steps]),
                                       np.array([k in post_steps]), a_pre, a_post, p, dt_s)
    return float(w[0, 0])


def test_stdp_step_by_hand():
    """Pre at 10 ms, post at 20 ms: +A_pre e^{-10/20}; the reverse order: A_post e^{-10/20}."""
    assert run_pairs({10}, {20}, 30) - 0.5 == pytest.approx(0.01 * math.exp(-0.5), rel=1e-12)
    assert run_pairs({20}, {10}, 30) - 0.5 == pytest.approx(-0.0105 * math.exp(-0.5),
                                                            rel=1e-12)
    # one step by hand: pre and post together in a step, traces before it 0.2 and -0.1
    w, a_pre, a_post = P.stdp_step(np.array([[0.5]]), np.array([True]), np.array([True]),
                                   np.array([0.2]), np.array([-0.1]), SONG, 0.0)
    # pre pathway first: w = 0.5 - 0.1 (post trace); a_pre = 0.2 + 0.01; then post pathway:
    # w += 0.21 (pre trace, this step's spike included); a_post = -0.1 - 0.0105
    assert w[0, 0] == pytest.approx(0.61, rel=1e-15)
    assert a_pre[0] == pytest.approx(0.21) and a_post[0] == pytest.approx(-0.1105)
    # bounds: potentiation past w_max stops at w_max, depression below 0 at 0
    assert run_pairs({10}, {11}, 20, w0=0.999) == 1.0
    assert run_pairs({11}, {10}, 20, w0=0.001) == 0.0


def test_numpy_stdp_step_matches_brian2_equations():
    """The reference step against `neurosim.snn.models.STDP_ADDITIVE` on Brian2's numpy
    target: random spike trains of 3 pre and 2 post neurons, dense enough to hit both bounds."""
    b2 = pytest.importorskip("brian2")
    from neurosim.snn.models import STDP_ADDITIVE

    rng = np.random.default_rng(4)
    n_steps, dt_s = 400, 1e-3
    pre_spikes = rng.random((n_steps, 3)) < 0.08
    post_spikes = rng.random((n_steps, 2)) < 0.08
    p = P.STDPParams(a_pre=0.05, a_post=-0.055)
    w0 = rng.random((2, 3))

    w, a_pre, a_post = w0.copy(), np.zeros(3), np.zeros(2)
    for k in range(n_steps):
        w, a_pre, a_post = P.stdp_step(w, pre_spikes[k], post_spikes[k], a_pre, a_post, p, dt_s)

    target = b2.prefs.codegen.target
    b2.prefs.codegen.target = "numpy"
    try:
        clock = b2.Clock(dt=dt_s * b2.second)

        def generator(spikes):
            k, i = np.nonzero(spikes)
            return b2.SpikeGeneratorGroup(spikes.shape[1], i, k * dt_s * b2.second,
                                          clock=clock)

        pre, post = generator(pre_spikes), generator(post_spikes)
        # the plasticity of STDP_ADDITIVE as it is; only the conductance line, which needs a
        # neuron model behind the synapse, is left out
        on_pre = STDP_ADDITIVE["on_pre"].replace("ge_post += w", "")
        syn = b2.Synapses(pre, post, STDP_ADDITIVE["model"], on_pre=on_pre,
                          on_post=STDP_ADDITIVE["on_post"], method="exact", clock=clock)
        syn.connect()
        syn.w = w0.T.ravel()  # connect() orders synapses by (pre, post)
        syn.stdp_on = 1.0
        net = b2.Network(pre, post, syn)
        net.run(n_steps * dt_s * b2.second,
                namespace={"tau_pre": p.tau_pre_s * b2.second,
                           "tau_post": p.tau_post_s * b2.second, "A_pre": p.a_pre,
                           "A_post": p.a_post, "w_max": p.w_max})
        ref = np.asarray(syn.w[:]).reshape(3, 2).T
    finally:
        b2.prefs.codegen.target = target
    assert np.any(ref == 0.0) or np.any(ref == 1.0) or np.abs(ref - w0).max() > 0.1
    np.testing.assert_allclose(w, ref, rtol=0, atol=1e-12)
