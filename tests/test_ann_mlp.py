"""The MLP: backpropagation against finite differences, inference helpers, dtypes, persistence."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import numeric_grad

from neurosim.ann import ACTIVATIONS, MLP
from neurosim.ann.mlp import backward, forward, loss_and_delta


def check_gradients(net: MLP, X, y, loss: str, rng_seed: int | None = None) -> None:
    """Every parameter's backprop gradient against central differences of the loss.

    With `rng_seed`, each evaluation gets a fresh generator from that seed, so dropout draws
    the same mask every time and the loss is a deterministic function of the parameters.
    """

    def rng():
        return None if rng_seed is None else np.random.default_rng(rng_seed)

    _, grads = net.loss_and_gradients(X, y, loss, rng=rng())
    assert len(grads) == len(net.params)
    for p, g in zip(net.params, grads, strict=True):
        assert g.shape == p.shape

        def f(values, p=p):
            saved = p.copy()
            p[...] = values
            value = net.loss_and_gradients(X, y, loss, rng=rng())[0]
            p[...] = saved
            return value

        np.testing.assert_allclose(g, numeric_grad(f, p.copy()), rtol=1e-5, atol=1e-8)


def make_net(hidden: str, output: str, bias: bool, seed: int = 3, **kw) -> MLP:
    rng = np.random.default_rng(seed)
    net = MLP(
        [4, 5, 3, 3], hidden, output, bias=bias, dtype="float64", init="xavier", rng=rng, **kw
    )
    for b in net.biases or []:
        b[:] = rng.normal(size=b.shape) * 0.1  # non-zero biases, so their paths are exercised
    return net


def targets(loss: str, rng: np.random.Generator, n: int = 7) -> np.ndarray:
    if loss == "categorical_cross_entropy":
        return rng.integers(0, 3, size=n)
    if loss == "binary_cross_entropy":
        return rng.integers(0, 2, size=(n, 3)).astype(float)
    return rng.normal(size=(n, 3))


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("hidden", sorted(ACTIVATIONS))
@pytest.mark.parametrize(
    ("output", "loss"),
    [
        ("identity", "mse"),
        ("sigmoid", "binary_cross_entropy"),
        ("softmax", "categorical_cross_entropy"),
        ("tanh", "smooth_l1"),
        ("sigmoid", "mae"),
    ],
)
def test_mlp_backprop_matches_finite_differences(bias, hidden, output, loss):
    # 2 hidden layers (4-5-3-3), every hidden activation, with and without biases
    net = make_net(hidden, output, bias)
    rng = np.random.default_rng(4)
    X = rng.normal(size=(7, 4))
    check_gradients(net, X, targets(loss, rng), loss)


@pytest.mark.parametrize("loss", ["mse", "categorical_cross_entropy"])
def test_backprop_through_dropout_matches_finite_differences(loss):
    net = make_net("tanh", "softmax" if loss != "mse" else "identity", True, dropout=0.4)
    rng = np.random.default_rng(5)
    X = rng.normal(size=(7, 4))
    check_gradients(net, X, targets(loss, rng), loss, rng_seed=11)


def test_pure_functions_match_the_class():
    net = make_net("relu", "softmax", True)
    rng = np.random.default_rng(6)
    X, y = rng.normal(size=(7, 4)), rng.integers(0, 3, size=7)
    cache = forward(X, net.weights, net.biases, net.activations)
    value, delta = loss_and_delta(cache, y, net.check_loss("categorical_cross_entropy"), "softmax")
    gW, gb = backward(cache, delta, net.weights, net.activations, with_bias=True)
    value2, grads = net.loss_and_gradients(X, y, "categorical_cross_entropy")
    assert value == value2
    for a, b in zip(gW + gb, grads, strict=True):
        np.testing.assert_array_equal(a, b)
    # the cross-entropy delta is (softmax(z) - onehot(y)) / n straight from the logits
    np.testing.assert_allclose(delta, (cache.activations[-1] - np.eye(3)[y]) / 7)


def test_forward_layers_expose_every_hidden_layer():
    rng = np.random.default_rng(0)
    net = MLP([3, 8, 6, 2], "relu", "softmax", rng=rng)
    X = rng.random((5, 3))
    layers = net.forward_layers(X)
    assert [a.shape for a in layers] == [(5, 3), (5, 8), (5, 6), (5, 2)]
    assert all(np.all(a >= 0) for a in layers[1:3])  # ReLU hidden layers
    np.testing.assert_allclose(layers[-1].sum(axis=1), 1, rtol=1e-6)  # softmax rows
    np.testing.assert_array_equal(layers[-1], net.forward(X))
    h1 = np.maximum(X.astype(np.float32) @ net.weights[0] + net.biases[0], 0)
    np.testing.assert_allclose(layers[1], h1, rtol=1e-6)


def test_predict_and_logits():
    rng = np.random.default_rng(0)
    X = rng.random((6, 3))
    soft = MLP([3, 4, 5], "tanh", "softmax", rng=rng)
    assert soft.predict(X).shape == (6,)
    np.testing.assert_array_equal(soft.predict(X), soft.forward(X).argmax(axis=1))
    np.testing.assert_allclose(ACTIVATIONS["softmax"](soft.logits(X)), soft.forward(X), rtol=1e-6)
    sig = MLP([3, 4, 1], "tanh", "sigmoid", rng=rng)
    assert sig.predict(X).shape == (6,)
    np.testing.assert_array_equal(sig.predict(X), (sig.forward(X)[:, 0] > 0.5).astype(int))
    multi = MLP([3, 4, 2], "tanh", "sigmoid", rng=rng)
    assert multi.predict(X).shape == (6, 2)
    reg = MLP([3, 4, 2], "tanh", "identity", rng=rng)
    np.testing.assert_array_equal(reg.predict(X), reg.forward(X))


def test_float32_by_default_float64_on_request():
    X = np.random.default_rng(0).random((4, 3))  # float64 input
    net = MLP([3, 5, 2], rng=np.random.default_rng(0))
    assert all(p.dtype == np.float32 for p in net.params)
    assert net.forward(X).dtype == np.float32
    assert all(g.dtype == np.float32 for g in net.loss_and_gradients(X, X[:, :2], "mse")[1])
    net64 = MLP([3, 5, 2], dtype="float64", rng=np.random.default_rng(0))
    assert all(p.dtype == np.float64 for p in net64.params)
    assert net64.forward(X).dtype == np.float64
    # same draws, only rounded differently
    np.testing.assert_allclose(net.weights[0], net64.weights[0], rtol=1e-6)


def test_bias_free_network():
    net = MLP([3, 4, 2], "relu", "identity", bias=False, rng=np.random.default_rng(0))
    assert net.biases is None and len(net.params) == 2 and net.n_params == 3 * 4 + 4 * 2
    np.testing.assert_array_equal(net.forward(np.zeros((2, 3))), 0)  # no bias: 0 maps to 0


def test_n_params_and_repr():
    net = MLP([784, 256, 10], rng=np.random.default_rng(0))
    assert net.n_params == 784 * 256 + 256 + 256 * 10 + 10
    assert repr(net).startswith("MLP([784, 256, 10], hidden_activation='relu'")


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.random((5, 4))
    for kw in ({}, {"bias": False}, {"dtype": "float64", "dropout": 0.25}):
        net = MLP([4, 6, 3], "leaky_relu", "softmax", init="xavier", rng=rng, **kw)
        for b in net.biases or []:
            b[:] = rng.normal(size=b.shape)
        net.save(tmp_path / "net.npz")
        back = MLP.load(tmp_path / "net.npz")
        assert repr(back) == repr(net) and back.init == "xavier"
        assert (back.biases is None) == (net.biases is None)
        for a, b in zip(net.params, back.params, strict=True):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(net.forward(X), back.forward(X))
    # plain arrays only: readable without pickle
    with np.load(tmp_path / "net.npz", allow_pickle=False) as f:
        assert str(f["hidden_activation"]) == "leaky_relu"


def test_load_rejects_other_files(tmp_path):
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="not an MLP file"):
        MLP.load(tmp_path / "other.npz")


def test_dropout_only_while_training():
    rng = np.random.default_rng(0)
    net = MLP([8, 32, 2], "relu", "softmax", dropout=0.5, rng=rng)
    X = rng.random((4, 8))
    np.testing.assert_array_equal(net.forward(X), net.forward(X))  # inference: deterministic
    y = np.array([0, 1, 0, 1])
    l1, _ = net.loss_and_gradients(X, y, "categorical_cross_entropy", rng=rng)
    l2, _ = net.loss_and_gradients(X, y, "categorical_cross_entropy", rng=rng)
    assert l1 != l2  # fresh masks each call
    l3, _ = net.loss_and_gradients(X, y, "categorical_cross_entropy", rng=rng, training=False)
    l4, _ = net.loss_and_gradients(X, y, "categorical_cross_entropy")  # no rng: no dropout
    assert l3 == l4
    # inverted dropout keeps the expected activation: mean over many masks ~ no-dropout value
    cache = forward(X, net.weights, net.biases, net.activations, 0.5, rng)
    mask = cache.masks[0]
    assert set(np.unique(mask)) <= {0.0, 2.0} and cache.masks[1] is None


def test_cross_entropy_needs_its_output_activation():
    with pytest.raises(ValueError, match="output_activation='softmax'"):
        MLP([2, 3], output_activation="identity").check_loss("categorical_cross_entropy")
    with pytest.raises(ValueError, match="output_activation='sigmoid'"):
        MLP([2, 3], output_activation="softmax").check_loss("binary_cross_entropy")


def test_bad_shapes_and_values():
    net = MLP([3, 2], rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"X must have shape \(n_samples, 3\), got \(4, 2\)"):
        net.forward(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="layer_sizes"):
        MLP([3])
    with pytest.raises(ValueError, match="dropout"):
        MLP([3, 2], dropout=1.0)


def test_parameters_live_in_one_flat_buffer():
    net = MLP([5, 4, 3], rng=np.random.default_rng(0))
    before = net.copy_params()
    flat = net.flat_params()
    assert flat.size == net.n_params and flat.dtype == np.float32
    assert net.flat_params() is flat  # laid out once, at construction
    for a, b in zip(before, net.params, strict=True):
        np.testing.assert_array_equal(a, b)
        assert np.shares_memory(b, flat)
    assert all(W.flags.f_contiguous for W in net.weights)
    flat[:] = 0
    assert not net.weights[0].any()


# --- memory: refused up front, not a MemoryError half-way ---------------------------------------


def test_memory_estimate_counts_parameters_state_and_activations():
    from neurosim.ann.train import training_memory

    # [64, 100, 10]: 64*100 + 100 + 100*10 + 10 = 7,510 parameters of 4 bytes
    parts = training_memory([64, 100, 10], batch_size=32, optimizer="adam", eval_rows=40)
    assert parts == {"parameters": 7510 * 4 * 2,  # the parameters and their gradient
                     "optimiser state": 7510 * 4 * 2,  # Adam's two moments
                     "activations": 3 * 32 * 110 * 4}  # z, a, delta of 32 rows > z, a of 40
    assert training_memory([64, 100, 10], batch_size=32, optimizer="sgd", eval_rows=500,
                           keep_best=True) == {"parameters": 7510 * 4 * 3,
                                               "optimiser state": 0,
                                               "activations": 2 * 500 * 110 * 4}


def test_a_network_too_big_for_the_machine_is_refused_before_allocating(monkeypatch):
    """Before: MLP([64, 100000000, 10]) died in a 25-line MemoryError (or ate the machine's
    memory); now one InvalidParameterError line names the sizes and the bytes."""
    from neurosim.ann import mlp as mlp_module
    from neurosim.ann import train
    from neurosim.validation import InvalidParameterError

    monkeypatch.setattr(mlp_module, "physical_memory", lambda: 10**9)  # a 1 GB machine
    with pytest.raises(InvalidParameterError, match=r"layer_sizes \[64, 3000000, 10\] needs "
                       r"about 2\.7 GB .* more than 80% of this machine's 1\.0 GB"):
        MLP([64, 3_000_000, 10], rng=np.random.default_rng(0))
    net = MLP([64, 30_000, 10], "relu", "softmax", rng=np.random.default_rng(0))  # fits
    with pytest.raises(InvalidParameterError, match=r"training an MLP of sizes \[64, 30000, "
                       r"10\] in batches of 5000 needs .*a smaller batch"):
        train(net, np.zeros((5000, 64)), np.zeros(5000, int), loss="categorical_cross_entropy",
              batch_size=5000, rng=np.random.default_rng(0), epochs=1)


def test_digits_refuses_a_hidden_layer_the_machine_cannot_hold():
    from neurosim.experiments import digits
    from neurosim.runner.config import build
    from neurosim.validation import InvalidParameterError

    with pytest.raises(InvalidParameterError, match=r"^hidden=\[100000000\] needs about "):
        build(digits.Config, {"hidden": [100_000_000]})
    build(digits.Config, {"hidden": [1000]})  # an ordinary size passes
