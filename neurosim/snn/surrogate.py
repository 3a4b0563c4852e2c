r"""A spiking network trained by gradient descent through surrogate gradients (numpy only).

Neftci, Mostafa & Zenke 2019 (IEEE Signal Process. Mag. 36:51) and Zenke & Vogels 2021 (Neural
Comput. 33:899): leaky integrate-and-fire neurons in discrete time, unrolled over the
presentation, trained by backpropagation through time (BPTT) in which the Heaviside's derivative
(zero almost everywhere) is replaced by the fast sigmoid's, SuperSpike's surrogate.

The network, per sample, steps t = 0 .. T-1 (``T = present_ms / dt_ms``):

.. math:: I_t = x_t W_{in},\qquad
          v_t = \beta v_{t-1} + I_t - \vartheta z_{t-1}\ \text{(reset by subtraction)}
          \ \text{or}\ \beta v_{t-1}(1 - z_{t-1}) + I_t\ \text{(reset to zero)},
.. math:: z_t = H(v_t - \vartheta),\qquad y_t = \kappa y_{t-1} + z_t W_{out},\qquad
          \sigma'(v) = 1 / (1 + k |v - \vartheta|)^2

with :math:`v_{-1} = z_{-1} = y_{-1} = 0`, :math:`\beta = e^{-dt/\tau_{mem}}`,
:math:`\kappa = e^{-dt/\tau_{out}}`. (This is ``v[t+1] = beta v[t] + I[t] - reset`` with the
input indexed one step later: the input of step t reaches the spike of step t.) The readout is a
layer of *non-spiking* leaky integrators; the default (``readout="mean"``) classifies by the
time-averaged readout membrane, :math:`\text{logits} = \frac1T \sum_t y_t + b`, and trains on
its softmax cross-entropy; ``readout="per_step"`` applies the cross-entropy to every step's
:math:`y_t + b` and averages over steps (the form e-prop's online learning signal needs).

Input coding is the STDP arm's (`neurosim.snn.wta.DigitsWTAParams`): ON/OFF cells per pixel,
Bernoulli-approximated Poisson spikes with probability ``intensity * max_rate_hz * dt`` per
step, drawn from an explicit Generator, 350 ms at dt = 0.5 ms (700 steps).

BPTT, with :math:`G_t = \hat g_t W_{out}^T` the error reaching the spikes of step t through the
readout (:math:`\hat g_t = \sum_{s \ge t} \kappa^{s-t}\, \partial E/\partial y_s`):

.. math:: \delta_t = \frac{\partial E}{\partial v_t}
          = \sigma'(v_t)\,\bigl(G_t + \delta_{t+1}\,\partial v_{t+1}/\partial z_t\bigr)
            + \delta_{t+1}\,\partial v_{t+1}/\partial v_t,\qquad
          \frac{\partial E}{\partial W_{in}} = \sum_t x_t^T \delta_t

``detach_reset=True`` (Zenke & Vogels 2021's recommendation) drops the reset's derivative
(:math:`\partial v_{t+1}/\partial z_t = 0`); with subtraction the recursion is then a linear
filter, computed with one pass per step and no per-step matrix product.

Vectorised over the batch; the time loop is numpy. `SpikingNet` holds the parameters, `train`
is the mini-batch loop (Adam from `neurosim.ann.optim` on one flat buffer).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from neurosim.ann.functions import categorical_cross_entropy_fused
from neurosim.ann.optim import SCHEDULES, make_optimizer
from neurosim.snn.encoding import check_intensities, on_off
from neurosim.validation import lookup, require, require_choice, require_positive

RESETS = ("subtract", "zero")
READOUTS = ("mean", "per_step")
CODINGS = ("on_off", "intensity")


@dataclass(frozen=True)
class SurrogateParams:
    """Network, coding and training of the surrogate-gradient SNN.

    Defaults marked *validation* were chosen on the stratified validation split of sklearn's
    digits (experiments/spectrum_digits.py), never on test; the coding is the STDP arm's.
    """

    n_hidden: int = 100  # as the STDP arm's excitatory layer (DigitsWTAParams.n_exc)
    input_coding: str = "on_off"  # as the STDP arm: an ON and an OFF cell per pixel
    dt_ms: float = 0.5  # as the STDP arm (WTAParams.dt_ms)
    present_ms: float = 350.0  # as the STDP arm: 700 steps of 0.5 ms
    max_rate_hz: float = 160.0  # as the STDP arm (DigitsWTAParams.max_rate_hz)
    tau_mem_ms: float = 20.0  # membrane time constant (beta = exp(-dt/tau)); not tuned
    tau_out_ms: float = 20.0  # readout integrator's time constant (kappa); not tuned
    threshold: float = 1.0  # dimensionless; only the weights' scale relative to it matters
    reset: str = "subtract"  # subtract (keeps the excess) or zero; e-prop needs subtract
    detach_reset: bool = True  # no gradient through the reset (Zenke & Vogels 2021)
    slope: float = 5.0  # validation (5 vs 2: 0.950 both at w_in_gain 2); k of 1/(1+k|v-theta|)^2
    readout: str = "mean"  # cross-entropy of the time-averaged readout membrane
    w_in_gain: float = 1.0  # validation (1: 0.967/0.967, 2: 0.942/0.950 at lr 5e-3); input sd
    w_out_gain: float = 1.0  # readout weights' sd x (1 - kappa) / sqrt(n_hidden)
    epochs: int = 30  # validation with cosine: 30 -> 0.974, 20 -> 0.968 (seeds 100-102); ~45 s
    batch_size: int = 64  # validation (128: 0.959 vs 64: 0.967 at lr 5e-3, seed 100)
    lr: float = 5e-3  # validation (2e-3: 0.938, 5e-3: 0.967, 1e-2: 0.867; seed 100); Adam
    schedule: str = "cosine"  # validation (constant, 20 epochs: 0.965); ann.optim.SCHEDULES
    dtype: str = "float32"  # float64 for gradient checks

    def __post_init__(self):
        for name in ("n_hidden", "dt_ms", "present_ms", "max_rate_hz", "tau_mem_ms",
                     "tau_out_ms", "threshold", "slope", "w_in_gain", "w_out_gain", "epochs",
                     "batch_size", "lr"):
            require_positive(name, getattr(self, name))
        require_choice("reset", self.reset, RESETS)
        require_choice("readout", self.readout, READOUTS)
        require_choice("input_coding", self.input_coding, CODINGS)
        require_choice("dtype", self.dtype, ("float32", "float64"))
        lookup(SCHEDULES, self.schedule, "schedule")
        require(self.n_steps >= 1, f"present_ms={self.present_ms} is shorter than one step "
                                   f"(dt_ms={self.dt_ms})")

    @property
    def n_steps(self) -> int:
        return int(round(self.present_ms / self.dt_ms))

    @property
    def beta(self) -> float:
        return math.exp(-self.dt_ms / self.tau_mem_ms)

    @property
    def kappa(self) -> float:
        return math.exp(-self.dt_ms / self.tau_out_ms)


# --- input coding --------------------------------------------------------------------------------


def input_width(n_pixels: int, p: SurrogateParams) -> int:
    return 2 * n_pixels if p.input_coding == "on_off" else n_pixels


def encode(X: np.ndarray, p: SurrogateParams, rng: np.random.Generator) -> np.ndarray:
    """Poisson rate coding of intensities, as the STDP arm (Bernoulli per step).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_pixels), intensities in [0, 1]
    p : SurrogateParams
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of shape (n_steps, n_samples, n_inputs), 0/1 in ``p.dtype``: a spike of input i in
    step t with probability ``rate_i * dt``.
    """
    X = check_intensities(X)
    cells = on_off(X) if p.input_coding == "on_off" else X
    prob = np.clip(cells * (p.max_rate_hz * p.dt_ms * 1e-3), 0.0, 1.0).astype(p.dtype)
    u = rng.random((p.n_steps, *prob.shape), dtype=np.dtype(p.dtype))
    return np.less(u, prob, out=u)  # writes 0/1 into the uniform draws' buffer (no copy)


# --- the pure maths --------------------------------------------------------------------------


@dataclass
class Trace:
    """What one forward pass leaves for the backward pass, for a batch of B samples.

    Attributes
    ----------
    v : ndarray of shape (T, B, n_hidden)
        Membrane potential of each step before its spike's reset (what crosses threshold).
    z : ndarray of shape (T, B, n_hidden)
        Spikes (0/1; the smooth stand-in's values with ``smooth=True``).
    y : ndarray of shape (T, B, n_out)
        Readout membrane, without the bias.
    """

    v: np.ndarray
    z: np.ndarray
    y: np.ndarray


def fast_sigmoid_grad(v: np.ndarray, threshold: float, slope: float) -> np.ndarray:
    r"""SuperSpike's surrogate derivative :math:`\sigma'(v) = 1/(1 + k|v - \vartheta|)^2`."""
    s = np.abs(v - v.dtype.type(threshold))
    s *= v.dtype.type(slope)
    s += 1
    np.square(s, out=s)
    return np.reciprocal(s, out=s)


def smooth_spike(u: np.ndarray, slope: float) -> np.ndarray:
    r"""The antiderivative of the surrogate, :math:`u / (1 + k|u|)`: a smooth stand-in for the
    Heaviside whose exact derivative is the surrogate (for gradient checks)."""
    return u / (1 + slope * np.abs(u))


def leaky_filter(a: np.ndarray, decay: float, reverse: bool = False) -> np.ndarray:
    r""":math:`f_t = a_t + \text{decay}\, f_{t-1}` along axis 0 (``reverse``: from the end,
    :math:`f_t = a_t + \text{decay}\, f_{t+1}`), into a new array.

    A numpy loop over the time steps, each a pass over one contiguous (B, n) block: ~3x faster
    than scipy.signal.lfilter along axis 0 of a (T, B, n) array, which walks it column by column.
    """
    out = np.array(a, copy=True, order="C")
    tmp = np.empty_like(out[0])
    d = out.dtype.type(decay)
    steps = range(len(out) - 2, -1, -1) if reverse else range(1, len(out))
    for t in steps:
        np.multiply(out[t + 1] if reverse else out[t - 1], d, out=tmp)
        out[t] += tmp
    return out


def forward(x: np.ndarray, W_in: np.ndarray, W_out: np.ndarray, p: SurrogateParams,
            smooth: bool = False) -> Trace:
    """Run the hidden LIF layer and the leaky readout over every step (module docstring).

    Parameters
    ----------
    x : ndarray of shape (T, B, n_in)
        Input spikes (`encode`).
    W_in : ndarray of shape (n_in, n_hidden)
    W_out : ndarray of shape (n_hidden, n_out)
    p : SurrogateParams
    smooth : bool
        Replace the Heaviside by `smooth_spike` (gradient checks only).

    Returns
    -------
    Trace
    """
    T, B, n_in = x.shape
    H = W_in.shape[1]
    dtype = W_in.dtype
    # every step's input current, in one product; the loop then adds the leak and reset to it
    # in place, so the buffer ends up holding v
    v = (x.reshape(T * B, n_in) @ W_in).reshape(T, B, H)
    z = np.empty((T, B, H), dtype)
    beta, theta = dtype.type(p.beta), dtype.type(p.threshold)
    subtract = p.reset == "subtract"
    tmp = np.empty((B, H), dtype)
    for t in range(T):
        if t:
            np.multiply(v[t - 1], beta, out=tmp)
            if subtract:
                tmp -= z[t - 1] if theta == 1 else theta * z[t - 1]
            else:
                tmp *= 1 - z[t - 1]
            v[t] += tmp
        if smooth:
            z[t] = smooth_spike(v[t] - theta, p.slope)
        else:
            np.greater(v[t], theta, out=z[t])
    y = leaky_filter((z.reshape(T * B, H) @ W_out).reshape(T, B, -1), p.kappa)
    return Trace(v, z, y)


def logits(trace: Trace, b_out: np.ndarray, readout: str) -> np.ndarray:
    """Class scores: ``mean_t y_t + b`` of shape (B, n_out) for ``mean``; ``y_t + b`` of shape
    (T, B, n_out) for ``per_step``."""
    if readout == "mean":
        return trace.y.mean(axis=0) + b_out
    return trace.y + b_out


def predict_scores(trace: Trace, b_out: np.ndarray) -> np.ndarray:
    """Scores the class is read from, whatever the training loss: the time-averaged readout
    membrane plus bias, shape (B, n_out)."""
    return trace.y.mean(axis=0) + b_out


def loss_and_output_grad(trace: Trace, b_out: np.ndarray, y: np.ndarray,
                         readout: str) -> tuple[float, np.ndarray, np.ndarray]:
    """Softmax cross-entropy of the batch and its gradient with respect to every step's readout.

    Parameters
    ----------
    trace : Trace
    b_out : ndarray of shape (n_out,)
    y : ndarray of shape (B,), integer labels
    readout : str
        ``mean`` or ``per_step`` (module docstring).

    Returns
    -------
    value : float
        Mean over samples (and, for ``per_step``, steps).
    g : ndarray of shape (T, B, n_out)
        :math:`\\partial E / \\partial y_t`.
    g_bias : ndarray of shape (n_out,)
    """
    T, B, n_out = trace.y.shape
    if readout == "mean":
        value, d = categorical_cross_entropy_fused(logits(trace, b_out, "mean"), y)
        g = np.broadcast_to(d / d.dtype.type(T), (T, B, n_out))
        return value, g, d.sum(axis=0)
    z = logits(trace, b_out, "per_step").reshape(T * B, n_out)
    value, d = categorical_cross_entropy_fused(z, np.tile(y, T))
    return value, d.reshape(T, B, n_out), d.sum(axis=0)


def bptt(x: np.ndarray, trace: Trace, g: np.ndarray, W_in: np.ndarray, W_out: np.ndarray,
         p: SurrogateParams) -> tuple[np.ndarray, np.ndarray]:
    """Backpropagation through time with the fast-sigmoid surrogate (module docstring).

    Parameters
    ----------
    x : ndarray of shape (T, B, n_in)
    trace : Trace
        From `forward` on `x`.
    g : ndarray of shape (T, B, n_out)
        :math:`\\partial E/\\partial y_t` (`loss_and_output_grad`).
    W_in : ndarray of shape (n_in, n_hidden)
    W_out : ndarray of shape (n_hidden, n_out)
    p : SurrogateParams

    Returns
    -------
    grad_W_in : ndarray of shape (n_in, n_hidden)
    grad_W_out : ndarray of shape (n_hidden, n_out)
    """
    T, B, n_in = x.shape
    H = W_in.shape[1]
    dtype = W_in.dtype
    g_hat = leaky_filter(np.ascontiguousarray(g), p.kappa, reverse=True)
    grad_W_out = trace.z.reshape(T * B, H).T @ g_hat.reshape(T * B, -1)
    G = (g_hat.reshape(T * B, -1) @ W_out.T).reshape(T, B, H)
    psi = fast_sigmoid_grad(trace.v, p.threshold, p.slope)
    beta, theta = dtype.type(p.beta), dtype.type(p.threshold)
    if p.reset == "subtract" and p.detach_reset:
        # delta_t = psi_t G_t + beta delta_{t+1}: a linear filter backwards in time
        delta = leaky_filter(psi * G, p.beta, reverse=True)
    else:
        delta = np.empty_like(G)
        nxt = np.zeros((B, H), dtype)
        for t in range(T - 1, -1, -1):
            dz = G[t]
            if not p.detach_reset:
                # dv_{t+1}/dz_t: -theta (subtract) or -beta v_t (to zero)
                dz = dz - nxt * (theta if p.reset == "subtract" else beta * trace.v[t])
            d = psi[t] * dz
            if p.reset == "subtract":
                d += beta * nxt
            else:
                d += beta * (1 - trace.z[t]) * nxt
            delta[t] = nxt = d
    grad_W_in = x.reshape(T * B, n_in).T @ delta.reshape(T * B, H)
    return grad_W_in, grad_W_out


# --- the network a user trains -----------------------------------------------------------------


class SpikingNet:
    """One hidden layer of LIF neurons and a leaky non-spiking readout, trained by gradients.

    Parameters
    ----------
    n_inputs : int
        Input cells (2 x pixels for ON/OFF coding: `input_width`).
    n_outputs : int
        Classes.
    params : SurrogateParams
    rng : numpy.random.Generator
        Draws the initial weights.

    Attributes
    ----------
    W_in : ndarray of shape (n_inputs, n_hidden)
    W_out : ndarray of shape (n_hidden, n_outputs)
    b_out : ndarray of shape (n_outputs,)
        Views of one flat buffer (`flat`), so an optimiser step is one call.
    """

    def __init__(self, n_inputs: int, n_outputs: int, params: SurrogateParams,
                 rng: np.random.Generator):
        require_positive("n_inputs", n_inputs)
        require_positive("n_outputs", n_outputs)
        p = self.params = params
        H, dtype = p.n_hidden, np.dtype(p.dtype)
        shapes = [(n_inputs, H), (H, n_outputs), (n_outputs,)]
        self.flat = np.zeros(sum(math.prod(s) for s in shapes), dtype)
        views, start = [], 0
        for s in shapes:
            views.append(self.flat[start:start + math.prod(s)].reshape(s))
            start += math.prod(s)
        self.W_in, self.W_out, self.b_out = views
        # Input drive: about max_rate * dt / 2 of the inputs spike per step (mean pixel ~ 1/2
        # with ON/OFF cells); weights of sd sigma give a membrane of sd ~ sigma sqrt(active /
        # (1 - beta^2)). w_in_gain = 1 puts that at one threshold.
        active = max(n_inputs * p.max_rate_hz * p.dt_ms * 1e-3 / 2, 1.0)
        sd_in = p.w_in_gain * p.threshold * math.sqrt((1 - p.beta**2) / active)
        self.W_in[...] = rng.normal(0.0, sd_in, (n_inputs, H))
        self.W_out[...] = rng.normal(0.0, p.w_out_gain * (1 - p.kappa) / math.sqrt(H),
                                     (H, n_outputs))

    @property
    def params_list(self) -> list[np.ndarray]:
        return [self.W_in, self.W_out, self.b_out]

    def run(self, x: np.ndarray, smooth: bool = False) -> Trace:
        """`forward` on input spikes `x` of shape (T, B, n_inputs)."""
        return forward(x, self.W_in, self.W_out, self.params, smooth)

    def loss_and_gradients(self, x: np.ndarray, y: np.ndarray, smooth: bool = False
                           ) -> tuple[float, np.ndarray]:
        """BPTT: the loss of a batch of input spikes and its gradient, laid out as `flat`.

        Parameters
        ----------
        x : ndarray of shape (T, B, n_inputs)
        y : ndarray of shape (B,), integer labels
        smooth : bool
            Smooth stand-in for the Heaviside (the gradient is then exact: gradient checks).
        """
        trace = self.run(x, smooth)
        value, g, g_b = loss_and_output_grad(trace, self.b_out, y, self.params.readout)
        gW_in, gW_out = bptt(x, trace, g, self.W_in, self.W_out, self.params)
        return value, np.concatenate([gW_in.ravel(), gW_out.ravel(), g_b.ravel()])

    def scores(self, X: np.ndarray, rng: np.random.Generator, batch: int = 256) -> np.ndarray:
        """Time-averaged readout (+ bias) for intensities `X` (n_samples, n_pixels), Poisson
        spikes drawn from `rng`: ndarray of shape (n_samples, n_outputs)."""
        out = []
        for start in range(0, len(X), batch):
            trace = self.run(encode(X[start:start + batch], self.params, rng))
            out.append(predict_scores(trace, self.b_out))
        return np.concatenate(out) if out else np.zeros((0, len(self.b_out)))

    def predict(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Predicted classes, shape (n_samples,)."""
        return self.scores(X, rng).argmax(axis=1)

    def spike_count(self, X: np.ndarray, rng: np.random.Generator) -> float:
        """Mean hidden spikes per sample (for energy estimates)."""
        total = 0.0
        for start in range(0, len(X), 256):
            total += float(self.run(encode(X[start:start + 256], self.params, rng)).z.sum())
        return total / max(len(X), 1)


#: (net, input spikes (T, B, n_in), labels (B,)) -> (loss, gradient laid out as net.flat)
Gradient = Callable[[SpikingNet, np.ndarray, np.ndarray], tuple[float, np.ndarray]]


def bptt_gradient(net: SpikingNet, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """The `Gradient` of BPTT with surrogate derivatives."""
    return net.loss_and_gradients(x, y)


@dataclass
class History:
    """Per-epoch training loss (and validation accuracy when a validation set is given);
    ``status`` is COMPLETED, or DIVERGED when a batch's loss or the weights stopped being
    finite (training then stops, keeping the epochs before)."""

    loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    status: str = "COMPLETED"


def train(net: SpikingNet, X: np.ndarray, y: np.ndarray, rng: np.random.Generator, *,
          gradient: Gradient = bptt_gradient, X_val: np.ndarray | None = None,
          y_val: np.ndarray | None = None, on_epoch: Callable | None = None) -> History:
    """Mini-batch training with Adam; fresh Poisson spikes every epoch.

    Parameters
    ----------
    net : SpikingNet
        Trained in place, for ``net.params.epochs`` epochs.
    X : ndarray of shape (n_samples, n_pixels), intensities in [0, 1]
    y : ndarray of shape (n_samples,), integer labels
    rng : numpy.random.Generator
        Shuffles and draws the spikes.
    gradient : Gradient
        BPTT (default) or e-prop (`neurosim.snn.eprop.eprop_gradient`).
    X_val, y_val : ndarray, optional
        Scored after every epoch (validation accuracy in the history).
    on_epoch : callable, optional
        ``on_epoch(epoch, history)`` after every epoch.
    """
    p = net.params
    X = check_intensities(X)
    y = np.asarray(y, dtype=np.int64)
    opt = make_optimizer("adam", p.lr)
    history = History()
    n = len(X)
    with np.errstate(over="ignore", invalid="ignore"):
        for epoch in range(p.epochs):
            opt.lr = SCHEDULES[p.schedule](epoch, p.lr, p.epochs)
            order = rng.permutation(n)
            total = 0.0
            for start in range(0, n, p.batch_size):
                idx = order[start:start + p.batch_size]
                value, grad = gradient(net, encode(X[idx], p, rng), y[idx])
                if not np.isfinite(value):
                    history.status = "DIVERGED"
                    break
                total += value * len(idx)
                opt.step([net.flat], [grad])
            if history.status == "DIVERGED" or not np.isfinite(net.flat).all():
                history.status = "DIVERGED"
                break
            history.loss.append(total / n)
            if X_val is not None and y_val is not None:
                history.val_accuracy.append(float((net.predict(X_val, rng) == y_val).mean()))
            if on_epoch is not None:
                on_epoch(epoch + 1, history)
    return history
