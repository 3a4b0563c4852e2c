"""The multilayer perceptron: parameters, forward pass and backpropagation, for any depth.

Layer l computes ``z_l = a_{l-1} W_l + b_l`` and ``a_l = f_l(z_l)`` with ``W_l`` of shape
(n_in, n_out). Backpropagation (Rumelhart, Hinton & Williams 1986) runs the chain rule from the
loss back through every layer:

.. math:: \\delta_L = \\partial L / \\partial z_L,\\quad
          \\partial L/\\partial W_l = a_{l-1}^T \\delta_l,\\quad
          \\delta_{l-1} = f'_{l-1}(z_{l-1}) \\odot (\\delta_l W_l^T)

The maths lives in the pure functions `forward` and `backward`; `MLP` only holds the
parameters a user trains, saves and inspects.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurosim.ann.functions import ACTIVATIONS, DERIVATIVES, INITIALISERS, LOSSES, Loss, lookup


@dataclass
class Cache:
    """What the backward pass needs from the forward pass of one batch."""

    activations: list[np.ndarray]  # a_0 = X, a_1, ..., a_L (a_L activated output)
    pre: list[np.ndarray]  # z_1, ..., z_L
    masks: list[np.ndarray | None]  # inverted-dropout masks of hidden layers (None: no dropout)


def forward(X: np.ndarray, weights: list[np.ndarray], biases: list[np.ndarray] | None,
            activations: list[str], dropout: float = 0.0,
            rng: np.random.Generator | None = None) -> Cache:
    """Forward pass through every layer.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_inputs)
    weights : list of ndarray of shape (n_in, n_out)
    biases : list of ndarray of shape (n_out,), or None for a bias-free network
    activations : list of str, one per layer (keys of `ACTIVATIONS`)
    dropout : float
        Inverted dropout on hidden layers: units are zeroed with this probability and the rest
        scaled by 1/(1 - dropout); only applied when `rng` is given (training).
    rng : numpy.random.Generator, optional
    """
    a, acts, pre, masks = X, [X], [], []
    last = len(weights) - 1
    for l, W in enumerate(weights):
        z = a @ W
        if biases is not None:
            z += biases[l]
        a = ACTIVATIONS[activations[l]](z)
        mask = None
        if dropout > 0 and rng is not None and l < last:
            keep = 1.0 - dropout
            mask = (rng.random(a.shape) < keep).astype(a.dtype) / a.dtype.type(keep)
            a = a * mask
        pre.append(z)
        acts.append(a)
        masks.append(mask)
    return Cache(acts, pre, masks)


def backward(cache: Cache, delta: np.ndarray, weights: list[np.ndarray],
             activations: list[str], with_bias: bool,
             out: tuple[list, list | None] | None = None) -> tuple[list, list | None]:
    """Backpropagate `delta` = dL/dz of the output layer; return weight and bias gradients.

    Parameters
    ----------
    cache : Cache
        From `forward` on the same batch.
    delta : ndarray of shape (n_samples, n_outputs)
        Gradient of the loss with respect to the output layer's pre-activation.

    out : (grads_W, grads_b), optional
        Preallocated arrays to write the gradients into (the training loop's flat buffer).

    Returns
    -------
    grads_W : list of ndarray, shapes as `weights`
    grads_b : list of ndarray of shape (n_out,), or None without biases
    """
    n_layers = len(weights)
    if out is None:
        grads_W: list = [None] * n_layers
        grads_b: list | None = [None] * n_layers if with_bias else None
    else:
        grads_W, grads_b = out
    for l in range(n_layers - 1, -1, -1):
        if out is None:
            grads_W[l] = cache.activations[l].T @ delta
            if grads_b is not None:
                grads_b[l] = delta.sum(axis=0)
        else:
            np.matmul(cache.activations[l].T, delta, out=grads_W[l])
            if grads_b is not None:
                np.sum(delta, axis=0, out=grads_b[l])
        if l == 0:
            break  # dL/dX is not needed
        g = delta @ weights[l].T
        if cache.masks[l - 1] is not None:
            g *= cache.masks[l - 1]
        delta = DERIVATIVES[activations[l - 1]](cache.pre[l - 1], cache.activations[l], g)
    return grads_W, grads_b


def loss_and_delta(cache: Cache, y: np.ndarray, loss: Loss,
                   output_activation: str) -> tuple[float, np.ndarray]:
    """The batch loss and dL/dz of the output layer: directly from the logits for
    cross-entropies, else by the chain rule through the output activation."""
    if loss.from_logits:
        return loss.value_and_grad(cache.pre[-1], y)
    value, g = loss.value_and_grad(cache.activations[-1], y)
    return value, DERIVATIVES[output_activation](cache.pre[-1], cache.activations[-1], g)


def loss_value(cache: Cache, y: np.ndarray, loss: Loss) -> float:
    return loss.value(cache.pre[-1] if loss.from_logits else cache.activations[-1], y)


class MLP:
    """A multilayer perceptron of any depth.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``[n_inputs, hidden_1, ..., n_outputs]``; at least two entries.
    hidden_activation : str
        Activation of every hidden layer (a key of `ACTIVATIONS`).
    output_activation : str
        Activation of the output layer; softmax / sigmoid pair with the cross-entropy losses.
    bias : bool
        Learn biases (the sleep experiment needs bias-free networks).
    init : str
        Weight initialiser, ``xavier`` or ``he``; biases start at zero.
    dtype : str
        ``float32`` (default) or ``float64``.
    dropout : float
        Dropout probability of hidden units during training.
    rng : numpy.random.Generator
        Draws the initial weights.

    Attributes
    ----------
    weights : list of ndarray of shape (n_in, n_out)
    biases : list of ndarray of shape (n_out,), or None
    """

    def __init__(self, layer_sizes, hidden_activation: str = "relu",
                 output_activation: str = "identity", *, bias: bool = True, init: str = "he",
                 dtype: str = "float32", dropout: float = 0.0,
                 rng: np.random.Generator | None = None):
        sizes = [int(n) for n in layer_sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"layer_sizes needs >= 2 positive sizes, got {sizes}")
        lookup(ACTIVATIONS, hidden_activation, "activation")
        lookup(ACTIVATIONS, output_activation, "activation")
        initialise = lookup(INITIALISERS, init, "initialiser")
        if dtype not in ("float32", "float64"):
            raise ValueError(f"unknown dtype '{dtype}'; choose from float32, float64")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        rng = rng if rng is not None else np.random.default_rng()
        self.sizes = sizes
        self.hidden_activation, self.output_activation = hidden_activation, output_activation
        self.dtype = np.dtype(dtype)
        self.dropout = float(dropout)
        self.init = init
        self.weights = [initialise(n_in, n_out, rng).astype(self.dtype)
                        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)]
        self.biases = [np.zeros(n, self.dtype) for n in sizes[1:]] if bias else None

    # --- structure -----------------------------------------------------------------------------

    @property
    def activations(self) -> list[str]:
        """Activation name of each layer."""
        return [self.hidden_activation] * (len(self.weights) - 1) + [self.output_activation]

    @property
    def params(self) -> list[np.ndarray]:
        """Every trainable array, weights first then biases (the optimiser's view)."""
        return self.weights + (self.biases or [])

    @property
    def n_params(self) -> int:
        return int(sum(p.size for p in self.params))

    # --- forward -------------------------------------------------------------------------------

    def _cast(self, X) -> np.ndarray:
        return np.asarray(X, dtype=self.dtype)

    def forward_layers(self, X) -> list[np.ndarray]:
        """Activations of every layer, input included: ``[X, h_1, ..., output]`` (inference)."""
        return forward(self._cast(X), self.weights, self.biases, self.activations).activations

    def forward(self, X) -> np.ndarray:
        """Network output, ndarray of shape (n_samples, n_outputs)."""
        return self.forward_layers(X)[-1]

    def logits(self, X) -> np.ndarray:
        """Pre-activation of the output layer."""
        return forward(self._cast(X), self.weights, self.biases, self.activations).pre[-1]

    def predict(self, X) -> np.ndarray:
        """Class indices (softmax: argmax; sigmoid: output > 0.5), else the raw output."""
        out = self.forward(X)
        if self.output_activation == "softmax":
            return out.argmax(axis=1)
        if self.output_activation == "sigmoid":
            return (out > 0.5).astype(np.int64)
        return out

    # --- learning ------------------------------------------------------------------------------

    def check_loss(self, loss: str) -> Loss:
        """The `Loss` named `loss`, checked against this network's output activation."""
        spec = lookup(LOSSES, loss, "loss")
        if spec.from_logits and spec.output_activation != self.output_activation:
            raise ValueError(f"loss '{loss}' needs output_activation='{spec.output_activation}',"
                             f" this network has '{self.output_activation}'")
        return spec

    def loss_and_gradients(self, X, y, loss: str, rng: np.random.Generator | None = None,
                           training: bool = True) -> tuple[float, list[np.ndarray]]:
        """Loss of one batch and its gradient for every array of `params` (same order).

        Dropout is applied only when ``training`` and an `rng` is given.
        """
        spec = self.check_loss(loss)
        cache = forward(self._cast(X), self.weights, self.biases, self.activations,
                        self.dropout if training else 0.0, rng if training else None)
        value, delta = loss_and_delta(cache, np.asarray(y), spec, self.output_activation)
        gW, gb = backward(cache, delta, self.weights, self.activations, self.biases is not None)
        return value, gW + (gb or [])

    # --- persistence ---------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write the architecture and parameters to an ``.npz`` file (no pickle)."""
        arrays = {f"W{l}": W for l, W in enumerate(self.weights)}
        if self.biases is not None:
            arrays.update({f"b{l}": b for l, b in enumerate(self.biases)})
        np.savez(path, sizes=np.array(self.sizes), hidden_activation=self.hidden_activation,
                 output_activation=self.output_activation, bias=self.biases is not None,
                 init=self.init, dtype=str(self.dtype), dropout=self.dropout, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> MLP:
        """Read a network written by `save`."""
        with np.load(path, allow_pickle=False) as f:
            net = cls(f["sizes"].tolist(), str(f["hidden_activation"]),
                      str(f["output_activation"]), bias=bool(f["bias"]), init=str(f["init"]),
                      dtype=str(f["dtype"]), dropout=float(f["dropout"]),
                      rng=np.random.default_rng(0))
            net.weights = [f[f"W{l}"] for l in range(len(net.weights))]
            if net.biases is not None:
                net.biases = [f[f"b{l}"] for l in range(len(net.biases))]
        return net

    def pack(self) -> np.ndarray:
        """Move every parameter into one contiguous buffer (weights first, then biases) and
        make `weights` / `biases` views of it; returns the buffer.

        The training loop does this so an optimiser step is a few calls over one array rather
        than several calls per layer; values are unchanged.
        """
        flat = np.concatenate([p.ravel() for p in self.params])
        views, start = [], 0
        for p in self.params:
            views.append(flat[start: start + p.size].reshape(p.shape))
            start += p.size
        n = len(self.weights)
        self.weights = views[:n]
        if self.biases is not None:
            self.biases = views[n:]
        return flat

    def copy_params(self) -> list[np.ndarray]:
        return [p.copy() for p in self.params]

    def set_params(self, params: list[np.ndarray]) -> None:
        """Copy `params` (ordered as `params`) into this network's arrays in place."""
        for dst, src in zip(self.params, params, strict=True):
            dst[...] = src
