"""Activations, their derivatives, losses and initialisers, as lookup tables of pure functions.

Every function works on float32 or float64 arrays and keeps the dtype and the memory layout of
its input (the MLP keeps hidden activations in Fortran order, see `neurosim.ann.mlp`).

Cross-entropy losses take the output layer's *logits* (pre-activations) and are computed in a
numerically stable form (softplus / log-sum-exp); their gradient with respect to the logits is
the familiar ``(p - y) / n``, so the sigmoid / softmax Jacobian is never formed. The other
losses take the activated output, and the chain rule runs through the output activation's
derivative (`neurosim.ann.mlp.loss_and_delta`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# --- activations -------------------------------------------------------------------------------


def sigmoid(z: np.ndarray) -> np.ndarray:
    r"""Logistic function, evaluated without ever exponentiating a positive number.

    .. math:: \sigma(z) = 1 / (1 + e^{-z}) = e^{z} / (1 + e^{z})

    Parameters
    ----------
    z : ndarray of any shape

    Returns
    -------
    ndarray of z's shape and dtype
    """
    e = np.exp(-np.abs(z))  # in (0, 1]: 1/(1+e^-z) overflows in float32 for z < -88
    out = np.divide(1, 1 + e, out=np.empty_like(z))
    np.multiply(out, e, out=out, where=z < 0)  # e^z / (1 + e^z) for negative z
    return out


def tanh(z: np.ndarray) -> np.ndarray:
    r""".. math:: \tanh(z)"""
    return np.tanh(z)


def relu(z: np.ndarray) -> np.ndarray:
    r"""Rectified linear unit (Nair & Hinton 2010). .. math:: \max(z, 0)"""
    return np.maximum(z, 0)


LEAKY_SLOPE = 0.01  # slope of leaky_relu for z < 0 (Maas, Hannun & Ng 2013)


def leaky_relu(z: np.ndarray) -> np.ndarray:
    r""".. math:: \max(z, \alpha z),\ \alpha = 0.01 (valid as a max because alpha < 1)"""
    return np.maximum(z, z * z.dtype.type(LEAKY_SLOPE))


def softmax(z: np.ndarray) -> np.ndarray:
    r"""Row-wise softmax, shifted by the row maximum so no exponential overflows.

    .. math:: \mathrm{softmax}(z)_k = e^{z_k - \max z} / \sum_j e^{z_j - \max z}

    Parameters
    ----------
    z : ndarray of shape (n_samples, n_classes)
    """
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    e /= e.sum(axis=-1, keepdims=True)
    return e


def identity(z: np.ndarray) -> np.ndarray:
    """The linear output of regression networks; returns `z` itself, not a copy."""
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
# a = f(z) and the upstream gradient g = dL/da, it returns dL/dz. Elementwise activations reduce
# to g * f'(z); softmax needs its full Jacobian, applied without building it. They may write
# the result into g (the backward pass owns g and never reads it again), which saves one
# allocation per layer and step.


def _sigmoid_vjp(z, a, g):
    g *= a * (1 - a)
    return g


def _tanh_vjp(z, a, g):
    g *= 1 - a * a
    return g


def _relu_vjp(z, a, g):
    np.multiply(g, z > 0, out=g)
    return g


def _leaky_relu_vjp(z, a, g):
    g *= np.where(z > 0, z.dtype.type(1), z.dtype.type(LEAKY_SLOPE))
    return g


def _softmax_vjp(z, a, g):
    # J = diag(a) - a a^T per row, so g J = a * (g - <g, a>)
    return a * (g - np.sum(g * a, axis=-1, keepdims=True))


def _identity_vjp(z, a, g):
    return g


DERIVATIVES: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "sigmoid": _sigmoid_vjp,
    "tanh": _tanh_vjp,
    "relu": _relu_vjp,
    "leaky_relu": _leaky_relu_vjp,
    "softmax": _softmax_vjp,
    "identity": _identity_vjp,
}


# --- losses ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Loss:
    """A loss: its value, its gradient, and what it consumes.

    Attributes
    ----------
    name : str
    value : callable (out, y) -> float
        Mean over samples (and, for regression losses, over outputs).
    grad : callable (out, y) -> ndarray of out's shape
        Gradient of `value` with respect to `out`.
    from_logits : bool
        True when `out` is the output layer's pre-activation (the cross-entropies), False
        when it is the activated output.
    output_activation : str or None
        The output activation a logits loss is paired with (sigmoid or softmax).
    fused : callable (out, y) -> (float, ndarray), optional
        Value and gradient from one pass (the training loop's path).
    """

    name: str
    value: Callable[[np.ndarray, np.ndarray], float]
    grad: Callable[[np.ndarray, np.ndarray], np.ndarray]
    from_logits: bool = False
    output_activation: str | None = None
    fused: Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]] | None = None

    def value_and_grad(self, out: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """Both at once (shares the softmax / the error between them where it can)."""
        if self.fused is not None:
            return self.fused(out, y)
        return self.value(out, y), self.grad(out, y)


def _as_target(y: np.ndarray, out: np.ndarray) -> np.ndarray:
    return np.asarray(y).reshape(out.shape).astype(out.dtype, copy=False)


def mse(out, y):
    r"""Mean squared error over samples and outputs.

    .. math:: L = \frac{1}{nk} \sum_{i,k} (\hat y_{ik} - y_{ik})^2

    Parameters
    ----------
    out : ndarray of shape (n_samples, n_outputs), the activated output
    y : ndarray of the same size
    """
    return float(np.mean((out - _as_target(y, out)) ** 2))


def mse_grad(out, y):
    return (2 / out.size) * (out - _as_target(y, out))


def _mse_fused(out, y):
    err = out - _as_target(y, out)
    flat = err.ravel(order="K")  # no copy for C- or Fortran-ordered errors
    value = float(np.dot(flat, flat)) / out.size
    err *= err.dtype.type(2 / out.size)
    return value, err


def mae(out, y):
    r"""Mean absolute error. .. math:: L = \frac{1}{nk} \sum |\hat y - y|"""
    return float(np.mean(np.abs(out - _as_target(y, out))))


def mae_grad(out, y):
    return np.sign(out - _as_target(y, out)) / out.dtype.type(out.size)


HUBER_DELTA = 1.0  # smooth L1: quadratic for |error| < delta, linear beyond (Huber 1964)


def smooth_l1(out, y, delta: float = HUBER_DELTA):
    r"""Huber loss (smooth L1), averaged over all elements.

    .. math:: L = \mathrm{mean}\, [\tfrac12 e^2 \text{ if } |e| < \delta
              \text{ else } \delta (|e| - \tfrac12 \delta)], \quad e = \hat y - y
    """
    e = np.abs(out - _as_target(y, out))
    return float(np.mean(np.where(e < delta, 0.5 * e * e, delta * (e - 0.5 * delta))))


def smooth_l1_grad(out, y, delta: float = HUBER_DELTA):
    e = out - _as_target(y, out)
    return np.clip(e, -delta, delta) / out.dtype.type(out.size)


def huber(delta: float = HUBER_DELTA) -> Loss:
    """The smooth L1 `Loss` with a given `delta`; ``LOSSES["smooth_l1"]`` is ``huber(1.0)``.

    Pass the result wherever a loss name is accepted: ``train(..., loss=huber(0.5))``.
    """
    if not delta > 0:
        raise ValueError(f"huber delta must be > 0, got {delta}")
    return Loss(
        "smooth_l1",
        lambda out, y: smooth_l1(out, y, delta),
        lambda out, y: smooth_l1_grad(out, y, delta),
    )


def binary_cross_entropy(z, y):
    r"""Sigmoid cross-entropy from logits, summed over outputs, averaged over samples.

    .. math:: L = \frac1n \sum_{i,k} [\mathrm{softplus}(z_{ik}) - y_{ik} z_{ik}],
              \quad \mathrm{softplus}(z) = \max(z, 0) + \log(1 + e^{-|z|})

    which equals :math:`-y \log \sigma(z) - (1-y) \log(1 - \sigma(z))` without taking the log
    of a probability that rounds to 0 or 1.

    Parameters
    ----------
    z : ndarray of shape (n_samples, n_outputs), logits of the sigmoid output layer
    y : ndarray of the same size, targets in [0, 1]
    """
    y = _as_target(y, z)
    return float(np.sum(np.maximum(z, 0) - y * z + np.log1p(np.exp(-np.abs(z)))) / len(z))


def binary_cross_entropy_grad(z, y):
    r""".. math:: \partial L / \partial z = (\sigma(z) - y) / n"""
    p = sigmoid(z)
    p -= _as_target(y, z)
    p /= p.dtype.type(len(z))
    return p


def _class_targets(y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Integer labels (n,) or one-hot rows (n, k) -> one-hot rows in z's dtype."""
    y = np.asarray(y)
    if y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1 and z.shape[1] > 1):
        onehot = np.zeros_like(z)
        onehot[np.arange(len(z)), y.ravel().astype(np.int64)] = 1
        return onehot
    return y.astype(z.dtype, copy=False)


def categorical_cross_entropy(z, y):
    r"""Softmax cross-entropy from logits, averaged over samples (log-sum-exp form).

    .. math:: L = \frac1n \sum_i [\log \sum_k e^{z_{ik}} - \sum_k y_{ik} z_{ik}]

    Parameters
    ----------
    z : ndarray of shape (n_samples, n_classes), logits of the softmax output layer
    y : ndarray of shape (n_samples,) of integer labels, or (n_samples, n_classes) of
        one-hot (or soft) target rows summing to 1
    """
    m = z.max(axis=1, keepdims=True)
    lse = np.log(np.sum(np.exp(z - m), axis=1)) + m[:, 0]
    t = _class_targets(y, z)
    return float((np.dot(lse, t.sum(axis=1)) - np.vdot(t, z)) / len(z))


def categorical_cross_entropy_grad(z, y):
    r""".. math:: \partial L / \partial z = (\mathrm{softmax}(z) - y) / n"""
    return categorical_cross_entropy_fused(z, y)[1]


def categorical_cross_entropy_fused(z, y):
    """Value and gradient of `categorical_cross_entropy` from one softmax.

    With integer labels this is the training loop's hot path: one exponential, the target
    logits picked by index rather than through one-hot rows, and 1/n folded into the row scale.
    """
    y = np.asarray(y)
    n = len(z)
    if y.ndim != 1:
        p = softmax(z)
        p -= _class_targets(y, z)
        p /= p.dtype.type(n)
        return categorical_cross_entropy(z, y), p
    rows, labels = np.arange(n), y.astype(np.intp, copy=False)
    p = z - z.max(axis=1, keepdims=True)
    target = p[rows, labels]  # z_y - max z: the log-sum-exp form needs no log of p
    np.exp(p, out=p)
    total = p.sum(axis=1)
    value = float(np.log(total).sum() - target.sum()) / n
    p *= (1 / (n * total))[:, None].astype(p.dtype, copy=False)
    p[rows, labels] -= p.dtype.type(1 / n)
    return value, p


def _bce_fused(z, y):
    return binary_cross_entropy(z, y), binary_cross_entropy_grad(z, y)


def dlt_mse(z, y):
    r"""Squared error of a ReLU output as DeepLearnToolbox computes it (``nnff.m``), from logits.

    .. math:: L = \frac{1}{2n} \sum_{i,k} (\mathrm{relu}(z_{ik}) - y_{ik})^2

    Parameters
    ----------
    z : ndarray of shape (n_samples, n_outputs), logits of the ReLU output layer
    y : ndarray of the same size, targets (one-hot rows)
    """
    err = np.maximum(z, 0) - _as_target(y, z)
    return float(0.5 * np.vdot(err, err) / len(z))


def dlt_mse_grad(z, y):
    r"""The toolbox's output delta (``nnbp.m``), which treats the ReLU output as linear:

    .. math:: \delta = (\mathrm{relu}(z) - y) / n

    with *no* ReLU derivative, so an output driven below zero (a class of an earlier task,
    silenced by the current one) still learns. This is not the derivative of `dlt_mse` where
    :math:`z < 0` and :math:`y \ne 0`; it is the exact gradient of the C1 loss that equals
    `dlt_mse` where :math:`z \ge 0` and continues it linearly, :math:`\frac1n(\frac12 y^2 - y z)`,
    where :math:`z < 0` (tests/test_ann_functions.py checks both by finite differences).
    """
    err = np.maximum(z, 0) - _as_target(y, z)
    err /= err.dtype.type(len(z))
    return err


def _dlt_mse_fused(z, y):
    err = np.maximum(z, 0) - _as_target(y, z)
    value = float(0.5 * np.vdot(err, err) / len(z))
    err /= err.dtype.type(len(z))
    return value, err


LOSSES: dict[str, Loss] = {
    "mse": Loss("mse", mse, mse_grad, fused=_mse_fused),
    "mae": Loss("mae", mae, mae_grad),
    "smooth_l1": huber(HUBER_DELTA),
    "binary_cross_entropy": Loss(
        "binary_cross_entropy",
        binary_cross_entropy,
        binary_cross_entropy_grad,
        from_logits=True,
        output_activation="sigmoid",
        fused=_bce_fused,
    ),
    "categorical_cross_entropy": Loss(
        "categorical_cross_entropy",
        categorical_cross_entropy,
        categorical_cross_entropy_grad,
        from_logits=True,
        output_activation="softmax",
        fused=categorical_cross_entropy_fused,
    ),
    # Tadros et al. 2022's released code (DeepLearnToolbox): ReLU output, ungated gradient
    "dlt_mse": Loss(
        "dlt_mse",
        dlt_mse,
        dlt_mse_grad,
        from_logits=True,
        output_activation="relu",
        fused=_dlt_mse_fused,
    ),
}


# --- initialisers ------------------------------------------------------------------------------


def xavier(n_in: int, n_out: int, rng: np.random.Generator) -> np.ndarray:
    r"""Glorot & Bengio 2010, uniform; for sigmoid / tanh layers.

    .. math:: W \sim U(-\sqrt{6 / (n_{in} + n_{out})},\ \sqrt{6 / (n_{in} + n_{out})})

    Returns
    -------
    ndarray of shape (n_in, n_out), float64
    """
    limit = np.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-limit, limit, size=(n_in, n_out))


def he(n_in: int, n_out: int, rng: np.random.Generator) -> np.ndarray:
    r"""He et al. 2015, normal; for ReLU layers.

    .. math:: W \sim \mathcal N(0,\ 2 / n_{in})

    Returns
    -------
    ndarray of shape (n_in, n_out), float64
    """
    return rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)


UNIFORM_SCALE = 0.01  # half-width of `uniform`: the released SRC code's MNIST initialisation


def uniform(n_in: int, n_out: int, rng: np.random.Generator,
            scale: float = UNIFORM_SCALE) -> np.ndarray:
    r"""Uniform in a fixed interval, whatever the layer's size (Tadros et al. 2022's code).

    .. math:: W \sim U(-s,\ s),\quad s = \text{scale}

    Returns
    -------
    ndarray of shape (n_in, n_out), float64
    """
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"uniform scale must be a finite number > 0, got {scale}")
    return rng.uniform(-1.0, 1.0, size=(n_in, n_out)) * scale


INITIALISERS: dict[str, Callable[[int, int, np.random.Generator], np.ndarray]] = {
    "xavier": xavier,
    "he": he,
    "uniform": uniform,  # +-UNIFORM_SCALE; another scale: uniform(..., scale=s)
}
