"""Activations, derivatives, losses and initialisers against finite differences and by hand."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import numeric_grad

from neurosim.ann import ACTIVATIONS, DERIVATIVES, INITIALISERS, LOSSES, MLP
from neurosim.ann.functions import huber, sigmoid, softmax, uniform
from neurosim.validation import lookup


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_derivative_matches_finite_differences(name):
    rng = np.random.default_rng(1)
    z = rng.normal(size=(4, 5)) * 2
    z[np.abs(z) < 1e-3] = 0.1  # keep away from the (leaky) ReLU kink
    g = rng.normal(size=z.shape)  # upstream gradient dL/da
    f = ACTIVATIONS[name]
    # the derivative may overwrite its g argument (the backward pass owns it): pass a copy
    analytic = DERIVATIVES[name](z.copy(), f(z), g.copy())
    numeric = numeric_grad(lambda x: float(np.sum(g * f(x))), z.copy())
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_activation_values_by_hand():
    z = np.array([[-2.0, 0.0, 3.0]])
    np.testing.assert_allclose(sigmoid(z), [[1 / (1 + np.exp(2.0)), 0.5, 1 / (1 + np.exp(-3.0))]])
    np.testing.assert_allclose(ACTIVATIONS["tanh"](z), np.tanh(z))
    np.testing.assert_array_equal(ACTIVATIONS["relu"](z), [[0.0, 0.0, 3.0]])
    np.testing.assert_allclose(ACTIVATIONS["leaky_relu"](z), [[-0.02, 0.0, 3.0]])
    e = np.exp([-2.0, 0.0, 3.0])
    np.testing.assert_allclose(softmax(z), [e / e.sum()])
    assert ACTIVATIONS["identity"](z) is z


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activations_keep_dtype_and_layout(name):
    z = np.asfortranarray(np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32))
    a = ACTIVATIONS[name](z)
    assert a.dtype == np.float32 and a.shape == z.shape and a.flags.f_contiguous
    d = DERIVATIVES[name](z, a, np.ones_like(z))
    assert d.dtype == np.float32


def _targets(name: str, rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    if name == "categorical_cross_entropy":
        return rng.integers(0, shape[1], size=shape[0])
    if name == "binary_cross_entropy":
        return rng.integers(0, 2, size=shape).astype(float)
    return rng.normal(size=shape) * 2  # errors on both sides of the Huber delta


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_gradient_matches_finite_differences(name):
    rng = np.random.default_rng(2)
    loss = LOSSES[name]
    out = rng.normal(size=(6, 3)) * 2
    if name == "dlt_mse":  # its ReLU's active side; below zero: test_dlt_mse_below_zero
        out = np.abs(out) + 0.1
    y = _targets(name, rng, out.shape)
    numeric = numeric_grad(lambda x: loss.value(x, y), out.copy())
    np.testing.assert_allclose(loss.grad(out, y), numeric, rtol=1e-5, atol=1e-8)
    value, grad = loss.value_and_grad(out.copy(), y)  # the training loop's fused path
    assert value == pytest.approx(loss.value(out, y), rel=1e-12)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


def test_dlt_mse_below_zero_is_the_linear_continuation():
    """The toolbox's delta (relu(z) - y)/n is the exact gradient of the C1 loss equal to
    dlt_mse for z >= 0 and (y^2/2 - y z)/n below: finite differences of that loss agree
    everywhere, and the reported value is the ReLU output's squared error."""
    rng = np.random.default_rng(4)
    loss = LOSSES["dlt_mse"]
    z = rng.normal(size=(6, 3)) * 2
    z[np.abs(z) < 1e-3] = 0.1  # away from the kink
    y = np.eye(3)[rng.integers(0, 3, size=6)]

    def continued(x):
        return float(np.sum(np.where(x >= 0, 0.5 * (x - y) ** 2, 0.5 * y**2 - y * x)) / len(x))

    assert continued(z) != pytest.approx(loss.value(z, y))  # some z < 0 with y = 1
    numeric = numeric_grad(continued, z.copy())
    np.testing.assert_allclose(loss.grad(z, y), numeric, rtol=1e-6, atol=1e-8)
    value, grad = loss.value_and_grad(z.copy(), y)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)
    assert value == pytest.approx(0.5 * np.sum((np.maximum(z, 0) - y) ** 2) / 6, rel=1e-12)
    # by hand: a silenced output with target 1 still gets -1/n; one at 0.5 with target 0, +0.5/n
    z1, y1 = np.array([[-1.0, 0.5]]), np.array([[1.0, 0.0]])
    assert loss.value(z1, y1) == pytest.approx(0.5 * (1 + 0.25))
    np.testing.assert_allclose(loss.grad(z1, y1), [[-1.0, 0.5]])
    assert loss.from_logits and loss.output_activation == "relu"


def test_dlt_mse_trains_a_relu_network_and_float32_keeps_its_dtype():
    rng = np.random.default_rng(5)
    z = rng.normal(size=(4, 3)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]
    value, grad = LOSSES["dlt_mse"].value_and_grad(z, y)
    assert grad.dtype == np.float32 and np.isfinite(value)
    net = MLP([3, 5, 3], "relu", "relu", bias=False, rng=rng)
    with pytest.raises(ValueError, match="needs output_activation='relu'"):
        MLP([3, 3], "relu", "softmax").loss_and_gradients(z, y, "dlt_mse")
    loss, grads = net.loss_and_gradients(z, y, "dlt_mse")
    assert np.isfinite(loss) and [g.shape for g in grads] == [(3, 5), (5, 3)]


def test_categorical_cross_entropy_one_hot_rows_match_labels():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(5, 4))
    labels = rng.integers(0, 4, size=5)
    onehot = np.eye(4)[labels]
    loss = LOSSES["categorical_cross_entropy"]
    assert loss.value(z, onehot) == pytest.approx(loss.value(z, labels))
    np.testing.assert_allclose(loss.value_and_grad(z, onehot)[1], loss.grad(z, labels))
    # and the gradient is the textbook (softmax(z) - y) / n
    np.testing.assert_allclose(loss.grad(z, labels), (softmax(z) - onehot) / 5)


def test_huber_delta_by_hand_and_gradient():
    out, y = np.array([[0.2], [2.0]]), np.array([[0.0], [0.0]])
    # |e| = 0.2 < 0.5: 0.5 * 0.04; |e| = 2 >= 0.5: 0.5 * (2 - 0.25)
    assert huber(0.5).value(out, y) == pytest.approx((0.02 + 0.875) / 2)
    numeric = numeric_grad(lambda x: huber(0.5).value(x, y), out.copy())
    np.testing.assert_allclose(huber(0.5).grad(out, y), numeric, rtol=1e-6)
    np.testing.assert_allclose(huber(0.5).grad(out, y), [[0.1], [0.25]])
    with pytest.raises(ValueError, match="delta must be > 0"):
        huber(0.0)


def test_loss_values_by_hand():
    out, y = np.array([[0.5], [2.0]]), np.array([[0.0], [1.0]])
    assert LOSSES["mse"].value(out, y) == pytest.approx((0.25 + 1.0) / 2)
    assert LOSSES["mae"].value(out, y) == pytest.approx((0.5 + 1.0) / 2)
    assert LOSSES["smooth_l1"].value(np.array([[0.5], [3.0]]), y) == pytest.approx(
        (0.5 * 0.25 + (2.0 - 0.5)) / 2
    )
    # binary cross-entropy from logits 0.5 (target 0) and 2 (target 1):
    # -log(1 - sigmoid(0.5)) = 0.974076984, -log(sigmoid(2)) = 0.126928011
    assert LOSSES["binary_cross_entropy"].value(out, y) == pytest.approx(
        (0.974076984 + 0.126928011) / 2, rel=1e-8
    )
    # categorical: -log(e^1 / (e^1 + e^2 + e^3)) = 2.407605964
    z = np.array([[1.0, 2.0, 3.0]])
    assert LOSSES["categorical_cross_entropy"].value(z, np.array([0])) == pytest.approx(
        2.407605964, rel=1e-8
    )


def test_cross_entropies_are_stable_for_huge_logits():
    z = np.array([[1000.0, -1000.0]], dtype=np.float32)
    value, grad = LOSSES["categorical_cross_entropy"].value_and_grad(z, np.array([1]))
    assert value == pytest.approx(2000.0)
    np.testing.assert_allclose(grad, [[1.0, -1.0]])
    bce = LOSSES["binary_cross_entropy"]
    assert bce.value(z, np.array([[0.0, 1.0]])) == pytest.approx(2000.0)
    assert bce.value(z, np.array([[1.0, 0.0]])) == 0.0
    assert np.all(np.isfinite(sigmoid(z))) and np.all(np.isfinite(softmax(z)))
    assert sigmoid(z).dtype == np.float32
    np.testing.assert_array_equal(sigmoid(z), [[1.0, 0.0]])


def test_initialisers():
    rng = np.random.default_rng(0)
    W = INITIALISERS["xavier"](300, 100, rng)
    limit = np.sqrt(6 / 400)
    assert W.shape == (300, 100) and np.abs(W).max() <= limit
    assert np.abs(W).max() > 0.99 * limit  # uniform, reaches the bound
    W = INITIALISERS["he"](400, 300, rng)
    assert W.std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    W = INITIALISERS["uniform"](400, 300, rng)  # +-0.01 whatever the layer's size
    assert W.shape == (400, 300) and np.abs(W).max() <= 0.01
    assert np.abs(W).max() > 0.99 * 0.01 and W.std() == pytest.approx(0.01 / np.sqrt(3), rel=0.02)
    W = uniform(64, 10, np.random.default_rng(1), scale=0.5)
    np.testing.assert_array_equal(W, np.random.default_rng(1).uniform(-1, 1, (64, 10)) * 0.5)
    net = MLP([4, 3], init="uniform", rng=np.random.default_rng(2))
    assert np.abs(net.weights[0]).max() <= 0.01
    for bad in (0.0, -1.0, np.inf):
        with pytest.raises(ValueError, match="scale"):
            uniform(2, 2, rng, scale=bad)


def test_unknown_names_list_the_choices():
    message = (
        "unknown activation 'relu6'; choose from identity, leaky_relu, relu, sigmoid, softmax, tanh"
    )
    with pytest.raises(ValueError) as info:
        MLP([2, 2], "relu6")
    assert str(info.value) == message
    with pytest.raises(ValueError, match="unknown loss 'hinge'; choose from binary_cross_entropy"):
        MLP([2, 2]).loss_and_gradients(np.zeros((1, 2)), np.zeros((1, 2)), "hinge")
    with pytest.raises(ValueError,
                       match="unknown initialiser 'zero'; choose from he, uniform, xavier"):
        MLP([2, 2], init="zero")
    with pytest.raises(ValueError, match="unknown dtype 'float16'; choose from float32, float64"):
        MLP([2, 2], dtype="float16")
    assert lookup({"a": 1}, "a", "thing") == 1
    with pytest.raises(ValueError, match=r"^unknown thing 'b'; choose from a$"):
        lookup({"a": 1}, "b", "thing")
