r"""The multilayer perceptron: parameters, forward pass and backpropagation, for any depth.

Layer l computes ``z_l = a_{l-1} W_l + b_l`` and ``a_l = f_l(z_l)`` with ``W_l`` of shape
(n_in, n_out). Backpropagation (Rumelhart, Hinton & Williams 1986) runs the chain rule from the
loss back through every layer:

.. math:: \delta_L = \partial L / \partial z_L,\quad
          \partial L/\partial W_l = a_{l-1}^T \delta_l,\quad
          \partial L/\partial b_l = \textstyle\sum_i \delta_{l,i},\quad
          \delta_{l-1} = f'_{l-1}(z_{l-1}) \odot (\delta_l W_l^T)

The backward pass can send the error back through other matrices than the transposed weights
(`Feedback`): feedback alignment (Lillicrap et al. 2016) uses a fixed random ``B_l`` of
``W_l^T``'s shape, direct feedback alignment (Nøkland 2016) sends the output error straight to
every hidden layer through a fixed random ``B_l`` of shape (n_out, n_l):

.. math:: \text{FA: } \delta_{l-1} = f'_{l-1}(z_{l-1}) \odot (\delta_l B_l),\qquad
          \text{DFA: } \delta_{l} = f'_{l}(z_{l}) \odot (\delta_L B_l)

For the cross-entropy losses :math:`\delta_L = (p - y)/n` comes straight from the logits
(`neurosim.ann.functions`); for every other loss it is the loss gradient times the output
activation's derivative (`loss_and_delta`).

The maths lives in the pure functions `forward`, `loss_and_delta` and `backward`; `MLP` only
holds the parameters a user trains, saves and inspects.

Memory layout: weights are kept in Fortran order (``W.T`` is C-contiguous) and every layer's
``z`` and ``a`` are written in Fortran order. OpenBLAS runs the batch-64 784x256 product ~17%
faster that way than with C-ordered operands (measured 320 vs 386 us on one core), and the
matrix product is most of a training step. Shapes and values are unaffected.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurosim.ann.functions import ACTIVATIONS, DERIVATIVES, INITIALISERS, LOSSES, Loss
from neurosim.validation import InvalidParameterError, lookup

FORMAT_VERSION = 1  # of the .npz files written by MLP.save

#: Share of the machine's physical memory a network may plan to fill: above it the run would
#: swap for hours or be killed by the out-of-memory killer, so it is refused before allocating.
MEMORY_SHARE = 0.8


def physical_memory() -> int:
    """Bytes of physical memory on this machine (POSIX ``sysconf``; 0 where unknown)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows) or no such name
        return 0


def n_parameters(sizes, bias: bool = True) -> int:
    """Trainable scalars of an MLP with layer sizes `sizes` (weights, and biases if `bias`)."""
    sizes = [int(n) for n in sizes]
    return sum(a * b + (b if bias else 0) for a, b in zip(sizes[:-1], sizes[1:], strict=False))


def _gb(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:,.1f} GB"


def require_memory(need: int, what: str, parts: dict[str, int] | None = None) -> None:
    """Raise `InvalidParameterError` (one line, naming `what`) when `need` bytes are more than
    `MEMORY_SHARE` of this machine's physical memory; a no-op where that is unknown.

    Parameters
    ----------
    need : int
        Estimated bytes.
    what : str
        The parameter to change, as the user wrote it (``hidden=[3000000]``).
    parts : dict of str -> int, optional
        Where the bytes go (parameters, optimiser state, activations), for the message.
    """
    total = physical_memory()
    if total and need > MEMORY_SHARE * total:
        detail = ", ".join(f"{k} {_gb(v)}" for k, v in (parts or {}).items() if v)
        raise InvalidParameterError(
            f"{what} needs about {_gb(need)} of memory ({detail}), more than "
            f"{MEMORY_SHARE:.0%} of this machine's {_gb(total)}: use fewer or smaller layers"
            + (" or a smaller batch" if "activations" in (parts or {}) else ""))


#: How the error travels back: the transposed weights (exact gradient), fixed random matrices
#: layer by layer (feedback alignment), or from the output straight to each hidden layer (DFA).
FEEDBACK_MODES = ("backprop", "fa", "dfa")


@dataclass
class Feedback:
    """The feedback pathway of a network trained without weight transport.

    Attributes
    ----------
    mode : str
        ``fa`` or ``dfa`` (`FEEDBACK_MODES`; backprop needs no `Feedback`).
    matrices : list of ndarray
        One per hidden layer k = 1..L-1 (entry k-1), fixed during training. ``fa``: shape
        (n_{k+1}, n_k), the shape of ``W_{k+1}^T``; ``dfa``: shape (n_out, n_k).
    """

    mode: str
    matrices: list[np.ndarray]


class Weights(list):
    """The list of a network's weight matrices, carrying its feedback pathway.

    A plain list to every caller; `backward` reads ``feedback`` from it when none is passed, so
    the training loop (which hands ``model.weights`` to `backward`) trains FA and DFA networks
    without knowing about them.
    """

    feedback: Feedback | None = None


def draw_feedback(mode: str, sizes: list[int], init: str, rng: np.random.Generator,
                  dtype: np.dtype) -> Feedback | None:
    """Fixed random feedback matrices for `mode`, drawn once with the weights' initialiser.

    Each B is drawn as if it were a forward weight matrix from the layer the error comes from
    to the layer it goes to (fan-in = that source layer), so the backward signal has the same
    scale as backprop's at initialisation.

    Returns
    -------
    Feedback, or None for ``backprop``
    """
    lookup({m: m for m in FEEDBACK_MODES}, mode, "feedback")
    if mode == "backprop":
        return None
    initialise = lookup(INITIALISERS, init, "initialiser")
    hidden = sizes[1:-1]
    sources = sizes[2:] if mode == "fa" else [sizes[-1]] * len(hidden)
    return Feedback(mode, [np.asfortranarray(initialise(n_src, n_k, rng), dtype=dtype)
                           for n_src, n_k in zip(sources, hidden, strict=True)])


@dataclass
class Cache:
    """What the backward pass needs from the forward pass of one batch.

    Attributes
    ----------
    activations : list of ndarray
        ``[a_0 = X, a_1, ..., a_L]``, each of shape (n_samples, n_units), before dropout (the
        next layer sees ``a_l * masks[l-1]``); ``a_L`` is None when the output activation was
        skipped (``forward(..., activate_output=False)``).
    pre : list of ndarray
        ``[z_1, ..., z_L]``, the pre-activations (``z_L`` are the logits).
    masks : list of ndarray or None
        Inverted-dropout masks of the hidden layers (already scaled by 1/(1 - p)); None where
        no dropout was applied. The output layer's entry is always None.
    """

    activations: list[np.ndarray | None]
    pre: list[np.ndarray]
    masks: list[np.ndarray | None]


def affine(a: np.ndarray, W: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """``a @ W + b`` written into a new Fortran-ordered array (the fast layout, see above).

    Parameters
    ----------
    a : ndarray of shape (n_samples, n_in)
    W : ndarray of shape (n_in, n_out)
    b : ndarray of shape (n_out,) or None

    Returns
    -------
    ndarray of shape (n_samples, n_out)
    """
    dtype = W.dtype if a.dtype == W.dtype else np.result_type(a, W)
    z = np.empty((a.shape[0], W.shape[1]), dtype=dtype, order="F")
    np.matmul(a, W, out=z)
    if b is not None:
        z += b
    return z


def dropout_mask(
    shape: tuple[int, ...], p: float, rng: np.random.Generator, dtype: np.dtype
) -> np.ndarray:
    r"""Inverted dropout (Srivastava et al. 2014): keep each unit with probability 1 - p and
    scale the kept ones by 1/(1 - p), so inference needs no rescaling.

    .. math:: m_i = \mathbb 1[u_i \ge p] / (1 - p),\quad u_i \sim U(0, 1)
    """
    keep = 1.0 - p
    mask = (rng.random(shape, dtype=np.dtype(dtype)) < keep).astype(dtype)
    mask *= mask.dtype.type(1.0 / keep)
    return mask


def forward(
    X: np.ndarray,
    weights: list[np.ndarray],
    biases: list[np.ndarray] | None,
    activations: list[str],
    dropout: float = 0.0,
    rng: np.random.Generator | None = None,
    activate_output: bool = True,
) -> Cache:
    """Forward pass through every layer.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_inputs)
    weights : list of ndarray of shape (n_in, n_out)
    biases : list of ndarray of shape (n_out,), or None for a bias-free network
    activations : list of str
        One per layer, keys of `ACTIVATIONS` (checked by `MLP`, not here: this is the hot loop).
    dropout : float
        Probability of silencing a hidden unit (inverted dropout, `dropout_mask`); applied only
        when `rng` is given, i.e. while training.
    rng : numpy.random.Generator, optional
        Draws the dropout masks.
    activate_output : bool
        False skips the output activation (``activations[-1]`` is None): the training loop
        does this for the cross-entropy losses, which read the logits only.

    Returns
    -------
    Cache
    """
    a, acts, pre, masks = X, [X], [], []
    last = len(weights) - 1
    for l, W in enumerate(weights):
        z = affine(a, W, None if biases is None else biases[l])
        pre.append(z)
        mask = None
        if l < last:
            a = ACTIVATIONS[activations[l]](z)
            acts.append(a)
            if dropout > 0 and rng is not None:
                mask = dropout_mask(a.shape, dropout, rng, a.dtype)
                a = a * mask  # the cache keeps the unmasked a: f'(z) is read off it
        else:
            acts.append(ACTIVATIONS[activations[l]](z) if activate_output else None)
        masks.append(mask)
    return Cache(acts, pre, masks)


def loss_and_delta(
    cache: Cache, y: np.ndarray, loss: Loss, output_activation: str
) -> tuple[float, np.ndarray]:
    r"""The batch loss and :math:`\delta_L = \partial L / \partial z_L` of the output layer.

    Cross-entropies (``loss.from_logits``) give :math:`\delta_L = (p - y)/n` directly from the
    logits; every other loss takes the activated output, and its gradient is carried through
    the output activation's derivative.

    Parameters
    ----------
    cache : Cache
        From `forward` on the batch.
    y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        Targets: integer labels or one-hot rows for categorical cross-entropy, values in
        [0, 1] for binary cross-entropy, any reals otherwise.
    loss : Loss
    output_activation : str

    Returns
    -------
    value : float
    delta : ndarray of shape (n_samples, n_outputs)
    """
    z = cache.pre[-1]
    if loss.from_logits:
        return loss.value_and_grad(z, y)
    a = cache.activations[-1]
    if a is None:
        a = cache.activations[-1] = ACTIVATIONS[output_activation](z)
    value, g = loss.value_and_grad(a, y)
    return value, DERIVATIVES[output_activation](z, a, g)


def loss_value(cache: Cache, y: np.ndarray, loss: Loss, output_activation: str) -> float:
    """The loss of a batch whose `forward` pass is in `cache` (no gradient)."""
    if loss.from_logits:
        return loss.value(cache.pre[-1], y)
    a = cache.activations[-1]
    return loss.value(ACTIVATIONS[output_activation](cache.pre[-1]) if a is None else a, y)


def backward(
    cache: Cache,
    delta: np.ndarray,
    weights: list[np.ndarray],
    activations: list[str],
    with_bias: bool,
    out: tuple[list[np.ndarray], list[np.ndarray] | None] | None = None,
    feedback: Feedback | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
    """Backpropagate `delta` = dL/dz of the output layer; return weight and bias gradients.

    With a `feedback` pathway (FA or DFA) the hidden layers' deltas come through its fixed
    matrices instead of the transposed weights (module docstring); the returned arrays are then
    the rule's updates, not the loss gradient (the output layer's stays exact).

    Parameters
    ----------
    cache : Cache
        From `forward` on the same batch.
    delta : ndarray of shape (n_samples, n_outputs)
        Gradient of the loss with respect to the output layer's pre-activation.
    weights : list of ndarray of shape (n_in, n_out)
    activations : list of str
    with_bias : bool
        Also return the bias gradients.
    out : (grads_W, grads_b), optional
        Arrays to write the gradients into (the training loop's flat gradient buffer); bias
        gradients must then be C-contiguous.
    feedback : Feedback, optional
        Defaults to ``weights.feedback`` when `weights` is a network's `Weights` list; None:
        exact backpropagation.

    Returns
    -------
    grads_W : list of ndarray, shapes as `weights`
    grads_b : list of ndarray of shape (n_out,), or None without biases
    """
    if feedback is None:
        feedback = getattr(weights, "feedback", None)
    error = delta  # the output error, which DFA broadcasts to every hidden layer
    n_layers = len(weights)
    if out is None:
        grads_W: list = [None] * n_layers
        grads_b: list | None = [None] * n_layers if with_bias else None
    else:
        grads_W, grads_b = out
    # sum over samples as a matrix-vector product: one BLAS call, ~6x faster than
    # delta.sum(axis=0) on a Fortran-ordered batch
    ones = np.ones(len(delta), delta.dtype) if with_bias else None
    for l in range(n_layers - 1, -1, -1):
        a_prev = cache.activations[l]
        if l > 0 and cache.masks[l - 1] is not None:
            a_prev = a_prev * cache.masks[l - 1]  # what layer l saw
        if out is None:
            grads_W[l] = np.matmul(
                a_prev.T, delta, out=np.empty(weights[l].shape, delta.dtype, order="F")
            )
            if grads_b is not None:
                grads_b[l] = np.dot(ones, delta)
        else:
            np.matmul(a_prev.T, delta, out=grads_W[l])
            if grads_b is not None:
                np.dot(ones, delta, out=grads_b[l])
        if l == 0:
            break  # dL/dX is not needed
        g = np.empty((len(delta), weights[l].shape[0]), delta.dtype, order="F")
        if feedback is None:
            np.matmul(delta, weights[l].T, out=g)
        elif feedback.mode == "fa":
            np.matmul(delta, feedback.matrices[l - 1], out=g)
        else:
            np.matmul(error, feedback.matrices[l - 1], out=g)
        if cache.masks[l - 1] is not None:
            g *= cache.masks[l - 1]
        delta = DERIVATIVES[activations[l - 1]](cache.pre[l - 1], cache.activations[l], g)
    return grads_W, grads_b


class MLP:
    """A multilayer perceptron of any depth.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``[n_inputs, hidden_1, ..., n_outputs]``; at least two entries.
    hidden_activation : str
        Activation of every hidden layer (a key of `ACTIVATIONS`).
    output_activation : str
        Activation of the output layer. ``sigmoid`` pairs with ``binary_cross_entropy`` and
        ``softmax`` with ``categorical_cross_entropy``; those losses read the logits.
    bias : bool
        Learn biases. The sleep experiment needs bias-free ReLU networks (a bias has no
        counterpart in the spiking network they are converted to).
    init : str
        Weight initialiser, ``xavier``, ``he`` or ``uniform`` (`INITIALISERS`); biases start at
        zero.
    dtype : str
        ``float32`` (default: half the memory traffic of float64) or ``float64``.
    dropout : float
        Probability of silencing a hidden unit while training (never at inference).
    rng : numpy.random.Generator
        Draws the initial weights (then the feedback matrices, so a backprop network's weights
        do not depend on `feedback`). None uses a fresh unseeded generator (not reproducible).
    feedback : str
        How training sends the error back (`FEEDBACK_MODES`): ``backprop`` (the transposed
        weights), ``fa`` (feedback alignment, Lillicrap et al. 2016) or ``dfa`` (direct
        feedback alignment, Nøkland 2016), with fixed random matrices drawn here.

    Attributes
    ----------
    weights : list of ndarray of shape (n_in, n_out)
        Fortran-ordered (see the module docstring).
    biases : list of ndarray of shape (n_out,), or None
    sizes : list of int
    feedback : str
    feedback_matrices : list of ndarray
        The fixed random B of each hidden layer (`Feedback`); empty for backprop.
    """

    def __init__(
        self,
        layer_sizes,
        hidden_activation: str = "relu",
        output_activation: str = "identity",
        *,
        bias: bool = True,
        init: str = "he",
        dtype: str = "float32",
        dropout: float = 0.0,
        rng: np.random.Generator | None = None,
        feedback: str = "backprop",
    ):
        sizes = [int(n) for n in layer_sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"layer_sizes needs >= 2 positive sizes, got {sizes}")
        lookup(ACTIVATIONS, hidden_activation, "activation")
        lookup(ACTIVATIONS, output_activation, "activation")
        initialise = lookup(INITIALISERS, init, "initialiser")
        lookup({"float32": 0, "float64": 0}, str(dtype), "dtype")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        # refused before allocating: each layer is drawn in float64, then laid out in the
        # network's dtype (a numpy MemoryError half-way would be the alternative)
        n = n_parameters(sizes, bias)
        item = np.dtype(dtype).itemsize
        require_memory(n * (item + 8), f"layer_sizes {sizes}",
                       {"parameters": n * item, "their initial float64 draw": n * 8})
        rng = rng if rng is not None else np.random.default_rng()
        self.sizes = sizes
        self.hidden_activation, self.output_activation = hidden_activation, output_activation
        self.dtype = np.dtype(dtype)
        self.dropout = float(dropout)
        self.init = init
        initial = [
            np.asfortranarray(initialise(n_in, n_out, rng), dtype=self.dtype)
            for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)
        ]
        self._lay_out(initial, [np.zeros(n, self.dtype) for n in sizes[1:]] if bias else None)
        self.weights = Weights(self.weights)
        self.weights.feedback = draw_feedback(feedback, sizes, init, rng, self.dtype)

    def _lay_out(self, weights: list[np.ndarray], biases: list[np.ndarray] | None) -> None:
        """Give every parameter its place in one contiguous buffer, for good.

        `weights` and `biases` become views of ``self._flat`` (weights first, then biases), so
        an optimiser step is a few calls over one array, and the arrays a user holds stay the
        network's arrays across any number of `train` calls. Weights are (n_in, n_out) views
        in Fortran order (the fast layout, see the module docstring).
        """
        params = weights + (biases or [])
        self._flat = np.empty(sum(p.size for p in params), self.dtype)
        views, start = [], 0
        for p in params:
            # (n_out, n_in) C-order, transposed: an (n_in, n_out) Fortran-ordered view
            view = self._flat[start : start + p.size]
            view = view.reshape(p.shape[::-1]).T if p.ndim == 2 else view.reshape(p.shape)
            view[...] = p
            views.append(view)
            start += p.size
        n = len(weights)
        self.weights = views[:n]
        self.biases = views[n:] if biases is not None else None

    def __repr__(self) -> str:
        fb = "" if self.feedback == "backprop" else f", feedback='{self.feedback}'"
        return (
            f"MLP({self.sizes}, hidden_activation='{self.hidden_activation}', "
            f"output_activation='{self.output_activation}', bias={self.biases is not None}, "
            f"dtype='{self.dtype}', dropout={self.dropout}{fb})"
        )

    @property
    def feedback(self) -> str:
        """How training sends the error back: backprop, fa or dfa."""
        fb = getattr(self.weights, "feedback", None)
        return "backprop" if fb is None else fb.mode

    @property
    def feedback_matrices(self) -> list[np.ndarray]:
        """The fixed random feedback matrix of each hidden layer (empty for backprop)."""
        fb = getattr(self.weights, "feedback", None)
        return [] if fb is None else fb.matrices

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
        """Number of trainable scalars."""
        return int(sum(p.size for p in self.params))

    # --- forward -------------------------------------------------------------------------------

    def as_input(self, X) -> np.ndarray:
        """`X` as this network's input: an array of its dtype and shape (n_samples, n_inputs).

        Raises
        ------
        ValueError
            When `X` has another shape or holds NaN or infinite values.
        """
        X = np.asarray(X, dtype=self.dtype)
        if X.ndim != 2 or X.shape[1] != self.sizes[0]:
            raise ValueError(f"X must have shape (n_samples, {self.sizes[0]}), got {X.shape}")
        if not np.isfinite(X).all():
            raise ValueError("X holds NaN or infinite values")
        return X

    def _forward(self, X, **kw) -> Cache:
        return forward(self.as_input(X), self.weights, self.biases, self.activations, **kw)

    def forward_layers(self, X) -> list[np.ndarray]:
        """Every layer's activations at inference, ``[X, h_1, ..., output]``.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_inputs)

        Returns
        -------
        list of ndarray of shape (n_samples, n_units), one per layer, input first
        """
        return self._forward(X).activations

    def forward(self, X) -> np.ndarray:
        """Network output at inference, ndarray of shape (n_samples, n_outputs)."""
        return self.forward_layers(X)[-1]

    def logits(self, X) -> np.ndarray:
        """Pre-activation of the output layer, ndarray of shape (n_samples, n_outputs)."""
        return self._forward(X, activate_output=False).pre[-1]

    def predict(self, X) -> np.ndarray:
        """Predicted classes, or the output itself for a regression network.

        Returns
        -------
        ndarray
            softmax: class index, shape (n_samples,); sigmoid: 0/1, shape (n_samples,) for one
            output and (n_samples, n_outputs) for several; any other output activation: the
            output, shape (n_samples, n_outputs).
        """
        if self.output_activation == "softmax":
            return self.logits(X).argmax(axis=1)  # softmax is monotonic
        if self.output_activation == "sigmoid":
            pred = (self.logits(X) > 0).astype(np.int64)  # sigmoid(z) > 0.5 <=> z > 0
            return pred[:, 0] if pred.shape[1] == 1 else pred
        return self.forward(X)

    # --- learning ------------------------------------------------------------------------------

    def check_loss(self, loss: str | Loss) -> Loss:
        """The `Loss` named `loss` (or `loss` itself), checked against the output activation."""
        spec = loss if isinstance(loss, Loss) else lookup(LOSSES, loss, "loss")
        if spec.from_logits and spec.output_activation != self.output_activation:
            raise ValueError(
                f"loss '{spec.name}' needs output_activation='{spec.output_activation}',"
                f" this network has '{self.output_activation}'"
            )
        return spec

    def loss_and_gradients(
        self,
        X,
        y,
        loss: str | Loss,
        rng: np.random.Generator | None = None,
        training: bool = True,
    ) -> tuple[float, list[np.ndarray]]:
        """Loss of one batch and its gradient for every array of `params` (same order).

        Parameters
        ----------
        X : array_like of shape (n_samples, n_inputs)
        y : array_like of shape (n_samples,) or (n_samples, n_outputs)
        loss : str or Loss
            A key of `LOSSES` (or a `Loss`, e.g. ``huber(0.5)``).
        rng : numpy.random.Generator, optional
            Draws dropout masks; without it no dropout is applied.
        training : bool
            False: inference mode, no dropout even with an `rng`.

        Returns
        -------
        value : float
        grads : list of ndarray, shapes as `params`
        """
        spec = self.check_loss(loss)
        cache = self._forward(
            X,
            dropout=self.dropout if training else 0.0,
            rng=rng if training else None,
            activate_output=not spec.from_logits,
        )
        value, delta = loss_and_delta(cache, np.asarray(y), spec, self.output_activation)
        gW, gb = backward(cache, delta, self.weights, self.activations, self.biases is not None)
        return value, gW + (gb or [])

    # --- persistence ---------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write the architecture and parameters to an ``.npz`` file.

        Everything is a plain array or string, so `load` needs no pickle. Like `numpy.savez`,
        ``.npz`` is appended to a path without it.
        """
        arrays = {f"W{l}": W for l, W in enumerate(self.weights)}
        if self.biases is not None:
            arrays.update({f"b{l}": b for l, b in enumerate(self.biases)})
        arrays.update({f"B{k}": B for k, B in enumerate(self.feedback_matrices)})
        np.savez(
            path,
            format_version=FORMAT_VERSION,
            sizes=np.array(self.sizes, dtype=np.int64),
            hidden_activation=self.hidden_activation,
            output_activation=self.output_activation,
            bias=self.biases is not None,
            init=self.init,
            dtype=str(self.dtype),
            dropout=self.dropout,
            feedback=self.feedback,
            **arrays,
        )

    @classmethod
    def load(cls, path: str | Path) -> MLP:
        """Read a network written by `save` (``allow_pickle=False``)."""
        with np.load(path, allow_pickle=False) as f:
            missing = {"sizes", "hidden_activation", "output_activation", "bias"} - set(f.files)
            if missing:
                raise ValueError(f"{path}: not an MLP file (missing {', '.join(sorted(missing))})")
            net = cls(
                f["sizes"].tolist(),
                str(f["hidden_activation"]),
                str(f["output_activation"]),
                bias=bool(f["bias"]),
                init=str(f["init"]),
                dtype=str(f["dtype"]),
                dropout=float(f["dropout"]),
                rng=np.random.default_rng(0),  # overwritten below
                # files written before feedback alignment existed are backprop networks
                feedback=str(f["feedback"]) if "feedback" in f.files else "backprop",
            )
            for l, W in enumerate(net.weights):
                stored = f[f"W{l}"]
                if stored.shape != W.shape:
                    raise ValueError(f"{path}: W{l} has shape {stored.shape}, not {W.shape}")
                W[...] = stored
            for l, b in enumerate(net.biases or []):
                b[...] = f[f"b{l}"]
            for k, B in enumerate(net.feedback_matrices):
                B[...] = f[f"B{k}"]
        return net

    # --- the training loop's helpers ----------------------------------------------------------

    def flat_params(self) -> np.ndarray:
        """The one contiguous buffer every parameter is a view of (weights first, then biases,
        each weight matrix as its transpose in C order); writing it changes the network."""
        return self._flat

    def copy_params(self) -> list[np.ndarray]:
        """Copies of `params` (e.g. the best weights seen during early stopping)."""
        return [p.copy(order="K") for p in self.params]

    def set_params(self, params: list[np.ndarray]) -> None:
        """Copy `params` (ordered as `params`) into this network's arrays in place."""
        for dst, src in zip(self.params, params, strict=True):
            dst[...] = src
