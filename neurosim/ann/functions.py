"""Activations, their derivatives, losses and initialisers, as lookup tables of pure functions.

Every function works on float32 or float64 arrays and keeps the dtype. Cross-entropy losses
take the output layer's *logits* (pre-activations) and are computed in a numerically stable
form (softplus / log-sum-exp); their gradient with respect to the logits is the familiar
``(p - y) / n``. The other losses take the activated output.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

V = TypeVar("V")


def lookup(table: Mapping[str, V], name: str, what: str) -> V:
    """``table[name]``, or ``ValueError("unknown <what> 'name'; choose from a, b, ...")``."""
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"unknown {what} '{name}'; choose from {', '.join(sorted(table))}"
                         ) from None


# --- activations -------------------------------------------------------------------------------


def sigmoid(z: np.ndarray) -> np.ndarray:
    r""".. math:: \sigma(z) = 1 / (1 + e^{-z}), computed without overflow for large |z|."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e)).astype(z.dtype, copy=False)


def tanh(z: np.ndarray) -> np.ndarray:
    return np.tanh(z)


def relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0)


LEAKY_SLOPE = 0.01  # slope of leaky_relu for z < 0 (Maas et al. 2013)


def leaky_relu(z: np.ndarray) -> np.ndarray:
    return np.where(z > 0, z, z * z.dtype.type(LEAKY_SLOPE))


def softmax(z: np.ndarray) -> np.ndarray:
    r""".. math:: \mathrm{softmax}(z)_k = e^{z_k - \max z} / \sum_j e^{z_j - \max z} (row-wise)."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    e /= e.sum(axis=-1, keepdims=True)
    return e


def identity(z: np.ndarray) -> np.ndarray:
    return z


ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sigmoid": sigmoid,
    "tanh": tanh,
    "relu": relu,
    "leaky_relu": leaky_relu,
    "softmax": softmax,
    "identity": identity,
}

# Each derivative is a vector-Jacobian product: given the pre-activation z, the activation
# a = f(z) and the gradient g = dL/da, return dL/dz. Elementwise activations reduce to
# g * f'(z); softmax needs its full Jacobian, applied without building it.


def _softmax_vjp(z, a, g):
    return a * (g - np.sum(g * a, axis=-1, keepdims=True))


DERIVATIVES: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "sigmoid": lambda z, a, g: g * a * (1 - a),
    "tanh": lambda z, a, g: g * (1 - a * a),
    "relu": lambda z, a, g: g * (z > 0),
    "leaky_relu": lambda z, a, g: g * np.where(z > 0, 1, z.dtype.type(LEAKY_SLOPE)),
    "softmax": _softmax_vjp,
    "identity": lambda z, a, g: g,
}


# --- losses ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Loss:
    """A loss: its value, its gradient, and what it consumes.

    Attributes
    ----------
    value : callable (out, y) -> float
    grad : callable (out, y) -> ndarray of out's shape
    from_logits : bool
        True when `out` is the output layer's pre-activation (cross-entropies), False when it
        is the activated output.
    output_activation : str or None
        The output activation a logits loss implies (sigmoid or softmax).
    """

    value: Callable[[np.ndarray, np.ndarray], float]
    grad: Callable[[np.ndarray, np.ndarray], np.ndarray]
    from_logits: bool = False
    output_activation: str | None = None
    fused: Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]] | None = None

    def value_and_grad(self, out: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """Both at once; cross-entropy shares one softmax between them (the training loop)."""
        if self.fused is not None:
            return self.fused(out, y)
        return self.value(out, y), self.grad(out, y)


def _as_target(y: np.ndarray, out: np.ndarray) -> np.ndarray:
    return y.reshape(out.shape).astype(out.dtype, copy=False)


def mse(out, y):
    r""".. math:: L = \frac{1}{nk} \sum (\hat y - y)^2 (mean over samples and outputs)."""
    return float(np.mean((out - _as_target(y, out)) ** 2))


def mse_grad(out, y):
    return (2 / out.size) * (out - _as_target(y, out))


def mae(out, y):
    r""".. math:: L = \frac{1}{nk} \sum |\hat y - y|."""
    return float(np.mean(np.abs(out - _as_target(y, out))))


def mae_grad(out, y):
    return np.sign(out - _as_target(y, out)) / out.size


HUBER_DELTA = 1.0  # smooth L1: quadratic within |error| < delta, linear beyond


def smooth_l1(out, y, delta: float = HUBER_DELTA):
    r"""Huber loss, averaged over all elements:

    .. math:: L = \mathrm{mean}\,[\tfrac12 e^2 \,(|e|<\delta);\; \delta(|e| - \tfrac12\delta)]
    """
    e = np.abs(out - _as_target(y, out))
    return float(np.mean(np.where(e < delta, 0.5 * e * e, delta * (e - 0.5 * delta))))


def smooth_l1_grad(out, y, delta: float = HUBER_DELTA):
    e = out - _as_target(y, out)
    return np.clip(e, -delta, delta) / out.size


def binary_cross_entropy(z, y):
    r""".. math:: L = \frac1n \sum [\mathrm{softplus}(z) - y z], z the logits (sigmoid output).

    Summed over outputs, averaged over samples; softplus(z) = max(z, 0) + log1p(e^{-|z|}).
    """
    y = _as_target(y, z)
    return float(np.sum(np.maximum(z, 0) - y * z + np.log1p(np.exp(-np.abs(z)))) / len(z))


def binary_cross_entropy_grad(z, y):
    return (sigmoid(z) - _as_target(y, z)) / len(z)


def _class_targets(y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Integer labels (n,) or one-hot rows (n, k) -> one-hot rows in z's dtype."""
    if y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1 and z.shape[1] > 1):
        onehot = np.zeros_like(z)
        onehot[np.arange(len(z)), y.ravel().astype(np.int64)] = 1
        return onehot
    return y.astype(z.dtype, copy=False)


def categorical_cross_entropy(z, y):
    r"""Softmax cross-entropy from logits z:

    .. math:: L = \frac1n \sum_i [\log \sum_k e^{z_{ik}} - \sum_k y_{ik} z_{ik}]


    `y` holds integer labels of shape (n,) or one-hot rows of shape (n, k).
    """
    m = z.max(axis=1, keepdims=True)
    lse = np.log(np.sum(np.exp(z - m), axis=1, keepdims=True)) + m
    t = _class_targets(y, z)
    return float((np.sum(lse.ravel() * t.sum(axis=1)) - np.sum(t * z)) / len(z))


def categorical_cross_entropy_grad(z, y):
    p = softmax(z)
    if y.ndim == 1:  # the common case, without building one-hot rows
        p[np.arange(len(z)), y.astype(np.int64, copy=False)] -= 1
        p /= len(z)
        return p
    return (p - _class_targets(y, z)) / len(z)


def categorical_cross_entropy_fused(z, y):
    """Value and gradient of `categorical_cross_entropy` from one softmax."""
    if y.ndim != 1:
        return categorical_cross_entropy(z, y), categorical_cross_entropy_grad(z, y)
    rows, labels = np.arange(len(z)), y.astype(np.int64, copy=False)
    p = z - z.max(axis=1, keepdims=True)
    shifted_target = p[rows, labels]  # z_y - max z, before exponentiation: log-sum-exp form
    np.exp(p, out=p)
    total = p.sum(axis=1)
    value = float(np.mean(np.log(total) - shifted_target))
    p /= total[:, None]
    p[rows, labels] -= 1
    p /= len(z)
    return value, p


LOSSES: dict[str, Loss] = {
    "mse": Loss(mse, mse_grad),
    "mae": Loss(mae, mae_grad),
    "smooth_l1": Loss(smooth_l1, smooth_l1_grad),
    "binary_cross_entropy": Loss(binary_cross_entropy, binary_cross_entropy_grad,
                                 from_logits=True, output_activation="sigmoid"),
    "categorical_cross_entropy": Loss(categorical_cross_entropy, categorical_cross_entropy_grad,
                                      from_logits=True, output_activation="softmax",
                                      fused=categorical_cross_entropy_fused),
}


# --- initialisers ------------------------------------------------------------------------------


def xavier(n_in: int, n_out: int, rng: np.random.Generator) -> np.ndarray:
    r"""Glorot & Bengio 2010, uniform: .. math:: W \sim U(\pm\sqrt{6 / (n_{in} + n_{out})})."""
    limit = np.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-limit, limit, size=(n_in, n_out))


def he(n_in: int, n_out: int, rng: np.random.Generator) -> np.ndarray:
    r"""He et al. 2015, for ReLU layers: .. math:: W \sim N(0, 2 / n_{in})."""
    return rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)


INITIALISERS: dict[str, Callable[[int, int, np.random.Generator], np.ndarray]] = {
    "xavier": xavier,
    "he": he,
}
