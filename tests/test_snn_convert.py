"""MLP -> IF network conversion: normalisation by hand, the two engines agree, argmax carried."""

from __future__ import annotations

import numpy as np
import pytest

from neurosim.ann import MLP, train
from neurosim.runner.config import ConfigError
from neurosim.snn import convert

pytestmark = pytest.mark.usefixtures("numpy_target")  # conftest: no compiler needed


# Three layers whose scales are, by hand (X rows [1, 0] and [0, 0.5]):
#   a1 = [.5, 0], [1, .125]: max 1 < max W1 = 2               -> s1 = 2      (weight rules)
#   a2 = [.75], [1.5625]:    max 1.5625 > max W2 = 1.5        -> s2 = 1.5625 (activity rules)
#   a3 = [2.25], [4.6875]:   max 4.6875 > max W3 = 3          -> s3 = 4.6875
W_HAND = [np.array([[0.5, -1.0], [2.0, 0.25]]), np.array([[1.5], [0.5]]), np.array([[3.0]])]
X_HAND = np.array([[1.0, 0.0], [0.0, 0.5]])


def test_scales_by_hand():
    np.testing.assert_allclose(convert.scale_factors(W_HAND, X_HAND), [2.0, 1.5625, 4.6875])


def test_diehl_factors_by_hand():
    # lambda_l = s_{l-1} / s_l with s_0 = 1
    np.testing.assert_allclose(convert.normalisation_factors(W_HAND, X_HAND),
                               [1 / 2, 2 / 1.5625, 1.5625 / 4.6875])


def test_src_chain_by_hand():
    # the released SRC code: f_l = s_l / f_{l-1}; lambda_l = 1 / f_l -> f = 2, 0.78125, 6
    np.testing.assert_allclose(convert.normalisation_factors(W_HAND, X_HAND, chain="src"),
                               [1 / 2, 1 / 0.78125, 1 / 6])


def test_normalised_network_stays_within_one():
    rng = np.random.default_rng(0)
    Ws = [rng.normal(0, 1, (6, 5)), rng.normal(0, 1, (5, 4)), rng.normal(0, 1, (4, 3))]
    X = rng.random((50, 6))
    Wn, _ = convert.normalise(Ws, X)
    s = convert.scale_factors(Ws, X)
    # each layer's activity is the original divided by its scale: never above 1
    for a_n, a, s_l in zip(convert.layer_activations(Wn, X), convert.layer_activations(Ws, X), s,
                           strict=True):
        np.testing.assert_allclose(a_n, a / s_l, atol=1e-12)
        assert a_n.max() <= 1 + 1e-12
    # the normalisation is a positive rescaling per layer: the argmax is unchanged
    np.testing.assert_array_equal(convert.layer_activations(Wn, X)[-1].argmax(1),
                                  convert.layer_activations(Ws, X)[-1].argmax(1))


def test_percentile_uses_positive_activations():
    W = [np.array([[0.1]])]
    X = np.concatenate([np.zeros(50), np.arange(1, 101)])[:, None]  # activations 0.1 .. 10
    s = convert.scale_factors(W, X, percentile=50.0)
    assert s[0] == pytest.approx(0.1 * np.percentile(np.arange(1, 101), 50))


def test_dead_layer_scale_is_one():
    s = convert.scale_factors([np.array([[-1.0, -2.0]])], np.ones((3, 1)))
    np.testing.assert_array_equal(s, [1.0])


def test_params_validation():
    with pytest.raises(ConfigError, match="chain"):
        convert.ConversionParams(chain="nope")
    with pytest.raises(ConfigError, match="max_rate_hz"):
        convert.ConversionParams(max_rate_hz=2000.0)


def test_one_step_through_every_layer():
    """An input spike at step 0 reaches the output at step 0 in both engines (no lag)."""
    Ws = [np.ones((1, 1))] * 3
    spikes = np.zeros((4, 1, 1), dtype=bool)
    spikes[0] = True
    for engine in convert.ENGINES:
        run = convert.simulate(Ws, spikes, engine=engine)
        np.testing.assert_array_equal(run.output[:, 0, 0], [True, False, False, False])


def test_engines_agree():
    rng = np.random.default_rng(3)
    Ws = [rng.normal(0.1, 0.5, (8, 6)), rng.normal(0.1, 0.5, (6, 5)), rng.normal(0.1, 0.5, (5, 3))]
    X = rng.random((5, 8))
    Wn, _ = convert.normalise(Ws, X)
    spikes = convert.poisson_input(X, 40, 1.0, rng)
    a = convert.simulate(Wn, spikes, engine="numpy", batch=2)  # several batches
    b = convert.simulate(Wn, spikes, engine="brian2")
    assert a.output.sum() > 20  # the output layer is busy enough to be a test
    np.testing.assert_array_equal(a.output, b.output)
    for ca, cb in zip(a.counts, b.counts, strict=True):
        np.testing.assert_array_equal(ca, cb)
    # membranes restart at every sample: the last sample alone gives its own spikes
    alone = convert.simulate(Wn, spikes[:, -1:], engine="brian2")
    np.testing.assert_array_equal(alone.output[:, 0], b.output[:, -1])


def test_predict_and_accuracy_vs_time():
    counts = np.array([[0, 0, 0], [1, 3, 3], [0, 2, 1]])
    np.testing.assert_array_equal(convert.predict_from_counts(counts), [-1, 1, 1])
    out = np.zeros((3, 2, 2), dtype=bool)
    out[1, 0, 1] = out[2, 1, 0] = True  # sample 0 -> class 1 at step 1, sample 1 -> 0 at step 2
    np.testing.assert_allclose(convert.accuracy_vs_time(out, np.array([1, 0])), [0, 0.5, 1])


def test_conversion_keeps_the_mlp_argmax():
    """A small trained MLP and its spiking copy agree on clear-cut inputs."""
    rng = np.random.default_rng(0)
    protos = np.eye(3).repeat(3, axis=1)  # 3 classes, 9 inputs: three blocks of three pixels
    y = rng.integers(0, 3, 300)
    X = np.clip(protos[y] * 0.9 + rng.normal(0, 0.1, (300, 9)), 0, 1)
    net = MLP([9, 12, 3], "relu", "relu", bias=False, dtype="float64", rng=rng)
    train(net, X, np.eye(3)[y], loss="mse", optimizer="momentum", lr=0.5, epochs=30,
          batch_size=10, rng=rng)
    ann_pred = net.forward(X).argmax(1)
    assert (ann_pred == y).mean() > 0.95
    p = convert.ConversionParams(n_steps=200)
    run = convert.convert_and_simulate(convert.check_convertible(net), X, X[:60], p, rng)
    snn_pred = convert.predict_from_counts(run.output.sum(axis=0))
    np.testing.assert_array_equal(snn_pred, ann_pred[:60])


def test_check_convertible_refuses_biases():
    with pytest.raises(ValueError, match="bias-free"):
        convert.check_convertible(MLP([2, 2], rng=np.random.default_rng(0)))
