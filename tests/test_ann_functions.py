"""Activations, losses and the backward pass against finite differences and hand computations."""

from __future__ import annotations

import numpy as np
import pytest

from neurosim.ann import ACTIVATIONS, DERIVATIVES, LOSSES, MLP
from neurosim.ann.functions import lookup, sigmoid, softmax

EPS = 1e-6


def numeric_grad(f, x: np.ndarray) -> np.ndarray:
    """Central differences of the scalar f at x (float64)."""
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + EPS
        up = f(x)
        x[idx] = old - EPS
        down = f(x)
        x[idx] = old
        g[idx] = (up - down) / (2 * EPS)
    return g


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_derivative_matches_finite_differences(name):
    rng = np.random.default_rng(1)
    z = rng.normal(size=(4, 5))
    z[np.abs(z) < 1e-3] = 0.1  # keep away from the ReLU kink
    g = rng.normal(size=z.shape)  # upstream gradient dL/da
    f = ACTIVATIONS[name]
    analytic = DERIVATIVES[name](z, f(z), g)
    numeric = numeric_grad(lambda x: float(np.sum(g * f(x))), z.copy())
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_gradient_matches_finite_differences(name):
    rng = np.random.default_rng(2)
    loss = LOSSES[name]
    out = rng.normal(size=(6, 3))
    if name == "categorical_cross_entropy":
        y = rng.integers(0, 3, size=6)
    elif name == "binary_cross_entropy":
        y = rng.integers(0, 2, size=(6, 3)).astype(float)
    else:
        y = rng.normal(size=(6, 3)) * 2  # errors on both sides of the Huber delta
    numeric = numeric_grad(lambda x: loss.value(x, y), out.copy())
    np.testing.assert_allclose(loss.grad(out, y), numeric, rtol=1e-5, atol=1e-8)


def test_loss_values_by_hand():
    out, y = np.array([[0.5], [2.0]]), np.array([[0.0], [1.0]])
    assert LOSSES["mse"].value(out, y) == pytest.approx((0.25 + 1.0) / 2)
    assert LOSSES["mae"].value(out, y) == pytest.approx((0.5 + 1.0) / 2)
    assert LOSSES["smooth_l1"].value(np.array([[0.5], [3.0]]), y) == pytest.approx(
        (0.5 * 0.25 + (2.0 - 0.5)) / 2)
    # BCE from logits: -log(1 - sigmoid(0.5)) and -log(sigmoid(2))
    expected = (-np.log(1 - 1 / (1 + np.exp(-0.5))) - np.log(1 / (1 + np.exp(-2.0)))) / 2
    assert LOSSES["binary_cross_entropy"].value(out, y) == pytest.approx(expected)
    z = np.array([[1.0, 2.0, 3.0]])
    expected = -np.log(np.exp(1.0) / np.exp(z).sum())
    assert LOSSES["categorical_cross_entropy"].value(z, np.array([0])) == pytest.approx(expected)
    onehot = np.array([[1.0, 0.0, 0.0]])
    assert LOSSES["categorical_cross_entropy"].value(z, onehot) == pytest.approx(expected)


def test_cross_entropies_are_stable_for_huge_logits():
    z = np.array([[1000.0, -1000.0]], dtype=np.float32)
    assert np.isfinite(LOSSES["categorical_cross_entropy"].value(z, np.array([1])))
    assert np.isfinite(LOSSES["binary_cross_entropy"].value(z, np.array([[0.0, 1.0]])))
    assert np.all(np.isfinite(sigmoid(z))) and np.all(np.isfinite(softmax(z)))
    assert sigmoid(z).dtype == np.float32


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("hidden", ["sigmoid", "tanh", "relu", "leaky_relu", "identity"])
@pytest.mark.parametrize(
    ("output", "loss"),
    [("identity", "mse"), ("sigmoid", "binary_cross_entropy"),
     ("softmax", "categorical_cross_entropy"), ("tanh", "smooth_l1")],
)
def test_mlp_backprop_matches_finite_differences(bias, hidden, output, loss):
    rng = np.random.default_rng(3)
    net = MLP([4, 5, 3, 3], hidden, output, bias=bias, dtype="float64", init="xavier", rng=rng)
    for b in net.biases or []:
        b[:] = rng.normal(size=b.shape) * 0.1
    X = rng.normal(size=(7, 4))
    y = rng.integers(0, 3, size=7) if loss == "categorical_cross_entropy" else (
        rng.integers(0, 2, size=(7, 3)).astype(float))
    _, grads = net.loss_and_gradients(X, y, loss)
    for p, g in zip(net.params, grads, strict=True):
        def f(values, p=p):
            saved = p.copy()
            p[...] = values
            value = net.loss_and_gradients(X, y, loss)[0]
            p[...] = saved
            return value

        np.testing.assert_allclose(g, numeric_grad(f, p.copy()), rtol=1e-5, atol=1e-8)


def test_unknown_names_list_the_choices():
    with pytest.raises(ValueError, match=r"unknown activation 'relu6'; choose from identity, "):
        MLP([2, 2], "relu6")
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        MLP([2, 2]).loss_and_gradients(np.zeros((1, 2)), np.zeros((1, 2)), "hinge")
    with pytest.raises(ValueError, match="unknown initialiser 'zero'"):
        MLP([2, 2], init="zero")
    assert lookup({"a": 1}, "a", "thing") == 1


def test_cross_entropy_needs_its_output_activation():
    with pytest.raises(ValueError, match="output_activation='softmax'"):
        MLP([2, 3], output_activation="identity").check_loss("categorical_cross_entropy")
