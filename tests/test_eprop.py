"""e-prop (Bellec 2020): online form = by-parts form = BPTT where the paper says it is exact."""

from __future__ import annotations

import numpy as np
import pytest

from neurosim.snn.eprop import (
    EpropParams,
    draw_feedback,
    eprop_gradient,
    eprop_online,
    make_gradient,
)
from neurosim.snn.surrogate import SpikingNet, SurrogateParams, train
from neurosim.validation import InvalidParameterError


def setup(readout="per_step", detach_reset=True, seed=0, T_ms=15.0):
    p = SurrogateParams(n_hidden=6, present_ms=T_ms, readout=readout, detach_reset=detach_reset,
                        dtype="float64", slope=2.0, tau_mem_ms=5.0, tau_out_ms=4.0)
    rng = np.random.default_rng(seed)
    net = SpikingNet(5, 3, p, rng)
    net.W_in[...] = rng.normal(0, 0.8, net.W_in.shape)
    net.W_out[...] = rng.normal(0, 0.5, net.W_out.shape)
    net.b_out[...] = rng.normal(0, 0.1, 3)
    x = (rng.random((p.n_steps, 4, 5)) < 0.4).astype(float)
    return net, x, np.array([0, 1, 2, 1]), rng


def cosine(a, b):
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.mark.parametrize("feedback", ["symmetric", "random"])
def test_online_traces_equal_the_by_parts_computation(feedback):
    net, x, y, rng = setup()
    B = net.W_out.copy() if feedback == "symmetric" else draw_feedback(net, rng)
    loss_online, online = eprop_online(net, x, y, B)
    loss_fast, fast = eprop_gradient(B)(net, x, y)
    assert loss_online == pytest.approx(loss_fast, rel=1e-12)
    np.testing.assert_allclose(online, fast, rtol=1e-9, atol=1e-13)
    assert np.abs(fast[: net.W_in.size]).max() > 0  # something did spike and learn


@pytest.mark.parametrize("readout", ["per_step", "mean"])
def test_symmetric_eprop_is_bptt_without_recurrence(readout):
    """No recurrent weights and the reset's derivative left out of both: e-prop's learning
    signal (partial dE/dz through the readout) is the total derivative, so it is exact."""
    net, x, y, _ = setup(readout=readout)
    assert net.run(x).z.sum() > 5
    _, bptt = net.loss_and_gradients(x, y)
    _, eprop = eprop_gradient(None)(net, x, y)
    np.testing.assert_allclose(eprop, bptt, rtol=1e-9, atol=1e-13)


def test_eprop_approximates_bptt_through_the_reset():
    """BPTT that differentiates the reset sees each spike lower the next membranes; e-prop's
    eligibility trace ignores it (as the paper does): close in direction, not equal."""
    net, x, y, _ = setup(detach_reset=False, T_ms=25.0)
    _, bptt = net.loss_and_gradients(x, y)
    _, eprop = eprop_gradient(None)(net, x, y)
    n = net.W_in.size
    c = cosine(eprop[:n], bptt[:n])
    assert 0.95 < c < 0.9999, c  # 0.993 here
    np.testing.assert_allclose(eprop[n:], bptt[n:])  # the readout's gradient is exact


def test_random_feedback_differs_and_params_check():
    net, x, y, rng = setup()
    _, sym = eprop_gradient(None)(net, x, y)
    _, rnd = eprop_gradient(draw_feedback(net, rng))(net, x, y)
    n = net.W_in.size
    assert abs(cosine(sym[:n], rnd[:n])) < 0.9
    np.testing.assert_allclose(sym[n:], rnd[n:])
    with pytest.raises(InvalidParameterError, match="subtract"):
        EpropParams(reset="zero")
    with pytest.raises(InvalidParameterError, match="feedback"):
        EpropParams(feedback="mirror")


def test_eprop_learns_a_two_class_toy_problem():
    rng = np.random.default_rng(0)
    X = np.repeat(np.eye(2), 40, axis=0) * 0.9 + 0.05
    y = np.repeat([0, 1], 40)
    p = EpropParams(n_hidden=10, present_ms=25.0, epochs=25, batch_size=16, lr=5e-3)
    net = SpikingNet(4, 2, p, rng)
    history = train(net, X, y, rng, gradient=make_gradient(net, rng))
    assert history.loss[-1] < history.loss[0]
    assert (net.predict(X, rng) == y).mean() > 0.95
