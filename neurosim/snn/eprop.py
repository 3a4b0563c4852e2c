r"""e-prop (Bellec et al. 2020, Nat. Commun. 11:3625): the surrogate-gradient SNN of
`neurosim.snn.surrogate` trained online, with eligibility traces and a broadcast learning signal
instead of backpropagation through time.

For LIF neurons without adaptation, reset by subtraction, the paper's eligibility trace is the
surrogate derivative of the postsynaptic neuron times a presynaptic trace filtered by the
membrane's leak (the reset's derivative is left out, as in the paper), and the learning signal
is the output error sent back through feedback weights B:

.. math:: \bar x_{i,t} = \beta \bar x_{i,t-1} + x_{i,t},\qquad
          e_{ji,t} = \sigma'(v_{j,t})\, \bar x_{i,t},\qquad
          L_{j,t} = \sum_k B_{kj}\, (\pi_{k,t} - y^*_{k})

.. math:: \Delta W^{in}_{ij} \propto -\sum_t L_{j,t}\, \bar e_{ji,t},\qquad
          \bar e_{ji,t} = \kappa \bar e_{ji,t-1} + e_{ji,t}

(:math:`\bar e` is the eligibility trace filtered by the readout's leak κ, Bellec et al.'s
:math:`\mathcal F_\kappa`; :math:`\pi_t = \mathrm{softmax}(y_t + b)`, so ``readout="per_step"``
gives an error at every step). B is :math:`W_{out}` itself (``symmetric``: weight transport) or a
fixed random matrix (``random``, as in feedback alignment). The readout's own weights learn from
their local gradient, :math:`\sum_t \bar z_t^T (\pi_t - y^*)`.

Where it is exact: the learning signal should be the *total* derivative
:math:`dE/dz_{j,t}`; e-prop uses its partial derivative through the readout. Without recurrent
weights the two are equal, so with symmetric feedback e-prop's gradient is BPTT's with the
reset's derivative detached (``SurrogateParams.detach_reset=True``); against BPTT through the
reset it is an approximation (tests/test_eprop.py measures both).

`eprop_online` runs the rule as the paper states it, forward in time with an (n_in x n_hidden)
trace per sample. `eprop_gradients` returns the same sum computed by parts: since
:math:`\sum_t L_t \mathcal F_\kappa(e)_t = \sum_t e_t \hat L_t` with
:math:`\hat L_t = \sum_{s \ge t} \kappa^{s-t} L_s` (the learning signal filtered by the readout's
leak, not a backward pass through the network), the weight change is one matrix product instead
of a per-sample trace per step: this is what training uses (equal to the online form to rounding,
tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurosim.ann.functions import categorical_cross_entropy_fused
from neurosim.snn.surrogate import (
    Gradient,
    SpikingNet,
    SurrogateParams,
    Trace,
    fast_sigmoid_grad,
    leaky_filter,
    loss_and_output_grad,
)
from neurosim.validation import require, require_choice

FEEDBACKS = ("symmetric", "random")


@dataclass(frozen=True)
class EpropParams(SurrogateParams):
    """`SurrogateParams` for e-prop; defaults marked *validation* were chosen on the digits'
    validation split (experiments/spectrum_digits.py)."""

    readout: str = "per_step"  # an error at every step: the online learning signal
    feedback: str = "random"  # random B (no weight transport; symmetric B = W_out: val 0.963)
    w_in_gain: float = 2.0  # validation (1: 0.934, 2: 0.950 / 0.959 on seeds 100 / 101)
    lr: float = 2e-3  # validation (2e-3: 0.934, 5e-3: 0.905, 1e-2: 0.838 at w_in_gain 1)
    # epochs and schedule as SurrogateParams: cosine over 30 epochs 0.971 vs constant over 20
    # 0.945 on validation seeds 100-102

    def __post_init__(self):
        super().__post_init__()
        require_choice("feedback", self.feedback, FEEDBACKS)
        require(self.reset == "subtract", "e-prop's eligibility trace here needs "
                                          "reset='subtract' (with reset to zero it depends on "
                                          "the postsynaptic spike, per synapse)")


def draw_feedback(net: SpikingNet, rng: np.random.Generator) -> np.ndarray:
    """A fixed random feedback matrix of ``W_out``'s shape, with its initial scale."""
    return (rng.standard_normal(net.W_out.shape) * net.W_out.std()).astype(net.W_out.dtype)


def eprop_gradients(x: np.ndarray, trace: Trace, g: np.ndarray, B: np.ndarray,
                    p: SurrogateParams) -> tuple[np.ndarray, np.ndarray]:
    """e-prop's weight changes for a batch, by parts (module docstring).

    Parameters
    ----------
    x : ndarray of shape (T, n_samples, n_in)
    trace : Trace
        From `neurosim.snn.surrogate.forward`.
    g : ndarray of shape (T, n_samples, n_out)
        Output error of every step, :math:`\\partial E/\\partial y_t`.
    B : ndarray of shape (n_hidden, n_out)
        Feedback weights (``W_out`` for symmetric feedback).
    p : SurrogateParams

    Returns
    -------
    grad_W_in : ndarray of shape (n_in, n_hidden)
    grad_W_out : ndarray of shape (n_hidden, n_out)
    """
    T, n, n_in = x.shape
    H = trace.v.shape[2]
    g_hat = leaky_filter(np.ascontiguousarray(g), p.kappa, reverse=True)
    grad_W_out = trace.z.reshape(T * n, H).T @ g_hat.reshape(T * n, -1)
    signal = (g_hat.reshape(T * n, -1) @ B.T).reshape(T, n, H)  # L-hat
    signal *= fast_sigmoid_grad(trace.v, p.threshold, p.slope)
    x_bar = leaky_filter(x, p.beta)  # presynaptic eligibility vectors
    grad_W_in = x_bar.reshape(T * n, n_in).T @ signal.reshape(T * n, H)
    return grad_W_in, grad_W_out


def eprop_online(net: SpikingNet, x: np.ndarray, y: np.ndarray, B: np.ndarray
                 ) -> tuple[float, np.ndarray]:
    """e-prop as the paper runs it: one pass forward in time, no stored history.

    Each step updates the membranes, the eligibility traces (one (n_in, n_hidden) array per
    sample) and the readout, reads the error of that step's output and adds the learning
    signal times the trace to the weight change. Needs ``readout="per_step"`` (an error at
    every step). Memory grows with n_in x n_hidden x batch, not with time; slow in numpy (a
    reference for tests and for reading, `eprop_gradients` is the fast equivalent).

    Parameters
    ----------
    net : SpikingNet
    x : ndarray of shape (T, n_samples, n_in)
    y : ndarray of shape (n_samples,), integer labels
    B : ndarray of shape (n_hidden, n_out)

    Returns
    -------
    loss : float
    grad : ndarray laid out as ``net.flat``
    """
    p = net.params
    require(p.readout == "per_step", "online e-prop needs readout='per_step'")
    T, n, n_in = x.shape
    H, n_out = net.W_out.shape
    beta, kappa, theta = p.beta, p.kappa, p.threshold
    v, z = np.zeros((n, H)), np.zeros((n, H))
    out = np.zeros((n, n_out))
    x_bar = np.zeros((n, n_in))  # eligibility vectors (presynaptic, filtered by beta)
    e_bar = np.zeros((n, n_in, H))  # eligibility traces filtered by the readout's kappa
    z_bar = np.zeros((n, H))  # hidden spikes filtered by kappa: the readout's eligibility
    gW_in, gW_out, g_b = np.zeros(net.W_in.shape), np.zeros(net.W_out.shape), np.zeros(n_out)
    loss = 0.0
    for t in range(T):
        v = beta * v + x[t] @ net.W_in - theta * z
        z = (v > theta).astype(float)
        out = kappa * out + z @ net.W_out
        x_bar = beta * x_bar + x[t]
        e_bar = kappa * e_bar + x_bar[:, :, None] * fast_sigmoid_grad(v, theta, p.slope)[:, None]
        z_bar = kappa * z_bar + z
        value, err = categorical_cross_entropy_fused(out + net.b_out, y)  # (pi_t - y*) / n
        err /= T
        loss += value / T
        gW_in += np.einsum("bij,bj->ij", e_bar, err @ B.T)  # learning signal x trace
        gW_out += z_bar.T @ err
        g_b += err.sum(axis=0)
    return loss, np.concatenate([gW_in.ravel(), gW_out.ravel(), g_b])


def eprop_gradient(feedback: np.ndarray | None = None) -> Gradient:
    """The `Gradient` of e-prop for `neurosim.snn.surrogate.train`.

    Parameters
    ----------
    feedback : ndarray of shape (n_hidden, n_out), optional
        Fixed feedback weights (`draw_feedback`); None: symmetric, the readout's current
        weights.
    """

    def gradient(net: SpikingNet, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        trace = net.run(x)
        value, g, g_b = loss_and_output_grad(trace, net.b_out, y, net.params.readout)
        B = net.W_out if feedback is None else feedback
        gW_in, gW_out = eprop_gradients(x, trace, g, B, net.params)
        return value, np.concatenate([gW_in.ravel(), gW_out.ravel(), g_b.ravel()])

    return gradient


def make_gradient(net: SpikingNet, rng: np.random.Generator) -> Gradient:
    """e-prop's `Gradient` for `net` as its `EpropParams` say (symmetric or random feedback,
    the random matrix drawn from `rng` once, here)."""
    feedback = getattr(net.params, "feedback", "symmetric")
    return eprop_gradient(draw_feedback(net, rng) if feedback == "random" else None)
