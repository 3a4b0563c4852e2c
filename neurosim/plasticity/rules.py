r"""The learning rules themselves: pure functions ``dw = rule(w, pre, post, **constants)``.

Every rule is local: the change of a synapse depends on its weight, the activity on its two
sides and a few constants, never on an error sent back from elsewhere. Conventions:

- ``w[j, i]`` is the synapse from presynaptic unit i onto postsynaptic unit j (one row per
  postsynaptic unit); a single neuron's weights are one row, shape (n_pre,), with a scalar
  `post`.
- The functions return the change and never modify their arguments; the caller adds it (and
  clips, normalises or zeroes a diagonal where its model says so).
- Each rule keeps the operation order of the code it came from, so callers that moved here
  give the same numbers bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurosim.validation import require, require_non_negative, require_positive

# --- rate-based rules --------------------------------------------------------------------------


def hebb(w: np.ndarray, pre: np.ndarray, post: float | np.ndarray, *, eta: float) -> np.ndarray:
    r"""Plain Hebb (1949): what fires together wires together; unstable, |w| grows without
    bound.

    .. math:: \Delta w = \eta\, y\, x

    Parameters
    ----------
    w : ndarray of shape (n_pre,)
        Unused (the change does not depend on it); kept for the common signature.
    pre : ndarray of shape (n_pre,), the input rates x
    post : float, the output rate y (``w @ x`` for a linear neuron)
    eta : float, learning rate
    """
    return eta * post * pre


def oja(w: np.ndarray, pre: np.ndarray, post: float, *, eta: float) -> np.ndarray:
    r"""Oja (1982): Hebb plus a decay proportional to y^2, which keeps |w| near 1 and turns w
    toward the first principal component of the inputs.

    .. math:: \Delta w = \eta\, y\, (x - y\, w)
    """
    return eta * post * (pre - post * w)


def bcm(w: np.ndarray, pre: np.ndarray, post: float, *, eta: float,
        theta: float) -> np.ndarray:
    r"""BCM (Bienenstock, Cooper & Munro 1982): potentiation when the output is above the
    sliding threshold theta, depression below (`bcm_threshold` moves theta toward <y^2>).

    .. math:: \Delta w = \eta\, x\, y\, (y - \theta)
    """
    return eta * pre * post * (post - theta)


def bcm_threshold(theta: float, post: float, *, tau: float) -> float:
    r"""The BCM threshold after one step: :math:`\Delta\theta = (y^2 - \theta)/\tau`."""
    return theta + (post * post - theta) / tau


# --- Hopfield storage and unlearning -----------------------------------------------------------


def hopfield(w: np.ndarray, pre: np.ndarray, post: np.ndarray, *,
             eta: float = 1.0) -> np.ndarray:
    r"""Hebbian couplings of +-1 states, summed over the rows of `pre` / `post`, no
    self-coupling (Hopfield 1982); ``eta=1`` stores patterns, ``eta=-epsilon`` unlearns a
    dream's state (Hopfield, Feinstein & Palmer 1983, in units of one stored pattern).

    .. math:: \Delta W_{ji} = \frac{\eta}{N} \sum_\mu s^\mu_j\, s^\mu_i \quad (j \ne i),
              \qquad \Delta W_{jj} = 0

    Parameters
    ----------
    w : ndarray of shape (n_neurons, n_neurons)
        Unused (the change does not depend on it); kept for the common signature.
    pre, post : ndarray of shape (n_neurons,) or (n_states, n_neurons)
        The states (usually the same: a recurrent network's state on both sides).
    eta : float

    Returns
    -------
    ndarray of shape (n_neurons, n_neurons), zero diagonal
    """
    pre, post = np.atleast_2d(np.asarray(pre, float)), np.atleast_2d(np.asarray(post, float))
    # for +-1 states (s s' eta) / N rounds exactly as s s' (eta / N): storage and unlearning
    # keep the numbers of their former homes
    dw = post.T @ pre * eta / pre.shape[1]
    np.fill_diagonal(dw, 0.0)
    return dw


# --- the sleep (SRC) rule ----------------------------------------------------------------------


def src_gain(w: np.ndarray, width: float) -> np.ndarray:
    r"""The weight-dependent step of the SRC rule, 2 for strongly negative weights, 1 at zero,
    ~0 beyond a few `width` above zero.

    .. math:: g(w) = 2(1 - \sigma(w / w_0)) = 2 / (1 + e^{w/w_0})
    """
    with np.errstate(over="ignore"):
        return 2.0 / (1.0 + np.exp(w / width))


def src(w: np.ndarray, pre: np.ndarray, post: np.ndarray | None, *, inc: float, dec: float,
        width: float) -> np.ndarray:
    r"""Sleep Replay Consolidation (Tadros et al. 2022): when a neuron fires, its synapses
    from inputs that fired in the same step grow, those from silent inputs shrink, each by a
    step that fades as the weight grows.

    .. math:: \Delta w = \text{inc}\; g(w)\ \text{(pre fired)},\quad
              \Delta w = -\text{dec}\; g(w)\ \text{(pre silent)},\qquad
              g(w) = 2 / (1 + e^{w/w_0})

    Evaluated as Brian2 evaluates the engine's ``on_post`` string,
    ``2 (inc s - dec (1 - s)) / (1 + exp(w / w0))``, operation for operation, so the numpy
    and Brian2 sleep engines stay equal bit for bit.

    Parameters
    ----------
    w : ndarray of shape (n_post, n_pre)
    pre : ndarray of shape (n_pre,), bool
        Which inputs fired in the step.
    post : ndarray of shape (n_post,), bool, or None
        Which neurons fired; None: every row of `w` fired (the caller passes only the rows
        of the neurons that fired, the fast path of the sleep engine).
    inc, dec, width : float
        Potentiation, depression and :math:`w_0`.

    Returns
    -------
    ndarray of shape (n_post, n_pre)

    Notes
    -----
    A weight far above :math:`w_0` overflows ``exp`` to inf and gets g = 0, as it should;
    numpy warns about the overflow unless the caller holds ``np.errstate(over="ignore")``
    (the sleep engine does, once around its loop: the rule runs in its innermost loop, where
    an ``errstate`` per call cost ~10% of a phase).
    """
    g = np.multiply(w, 1.0 / width)
    np.exp(g, out=g)
    g += 1.0
    np.divide(np.where(pre, 2.0 * inc, -2.0 * dec), g, out=g)
    if post is not None:
        g[~np.asarray(post, bool)] = 0.0
    return g


# --- pair-based STDP ---------------------------------------------------------------------------


@dataclass(frozen=True)
class STDPParams:
    """Pair-based additive STDP with exponential traces (`neurosim.snn.models.STDP_ADDITIVE`;
    Song, Miller & Abbott 2000). Times in seconds."""

    tau_pre_s: float = 0.020  # presynaptic trace decay
    tau_post_s: float = 0.020  # postsynaptic trace decay
    a_pre: float = 0.01  # added to the presynaptic trace at a pre spike (potentiation)
    a_post: float = -0.0105  # added to the postsynaptic trace at a post spike (depression)
    w_max: float = 1.0  # weights are clipped to [0, w_max]

    def __post_init__(self):
        require_positive("tau_pre_s", self.tau_pre_s)
        require_positive("tau_post_s", self.tau_post_s)
        require_positive("w_max", self.w_max)
        require(bool(np.isfinite(self.a_pre) and np.isfinite(self.a_post)),
                f"a_pre and a_post must be finite, got {self.a_pre}, {self.a_post}")


def _stdp_weights(w, pre, post, pre_trace, post_trace, w_max) -> np.ndarray:
    new = np.array(w, dtype=float)
    new[:, pre] = np.clip(new[:, pre] + post_trace[:, None], 0.0, w_max)  # on_pre
    new[post] = np.clip(new[post] + pre_trace[None, :], 0.0, w_max)  # on_post, after it
    return new


def stdp(w: np.ndarray, pre: np.ndarray, post: np.ndarray, *, pre_trace: np.ndarray,
         post_trace: np.ndarray, w_max: float) -> np.ndarray:
    r"""The STDP change of one time step, given its spikes and the traces as the synapses read
    them: a pre spike adds the postsynaptic trace (negative: depression), then a post spike
    adds the presynaptic trace (potentiation), each clipped to [0, w_max].

    .. math:: w \leftarrow \text{clip}(w + a_{post}) \text{ at a pre spike},\quad
              w \leftarrow \text{clip}(w + a_{pre}) \text{ at a post spike}

    For a single pair, t_post = t_pre + dt: :math:`\Delta w = A_{pre} e^{-dt/\tau_{pre}}`
    (dt > 0), :math:`A_{post} e^{dt/\tau_{post}}` (dt < 0).

    Parameters
    ----------
    w : ndarray of shape (n_post, n_pre)
    pre : ndarray of shape (n_pre,), bool
    post : ndarray of shape (n_post,), bool
    pre_trace : ndarray of shape (n_pre,)
        After this step's pre spikes were added (read by the post pathway, which runs
        second).
    post_trace : ndarray of shape (n_post,)
        Before this step's post spikes are added (read by the pre pathway, which runs first).
    w_max : float
    """
    pre, post = np.asarray(pre, bool), np.asarray(post, bool)
    return _stdp_weights(w, pre, post, pre_trace, post_trace, w_max) - w


def stdp_step(w: np.ndarray, pre: np.ndarray, post: np.ndarray, pre_trace: np.ndarray,
              post_trace: np.ndarray, p: STDPParams,
              dt_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One time step of pair-based STDP in numpy: the reference the Brian2 equation strings
    (`neurosim.snn.models.STDP_ADDITIVE`) are held against.

    Both traces decay over the step; a pre spike adds ``a_pre`` to its trace and depresses its
    synapses by the postsynaptic trace; then a post spike adds ``a_post`` to its trace and
    potentiates by the presynaptic trace (Brian2's order: the pre pathway, then the post
    pathway; `stdp`). The traces are per neuron: with additive increments every synapse of a
    neuron carries the same trace.

    Parameters
    ----------
    w : ndarray of shape (n_post, n_pre)
    pre, post : ndarray of shape (n_pre,) / (n_post,), bool, the spikes of the step
    pre_trace, post_trace : ndarray of shape (n_pre,) / (n_post,), the traces before it
    p : STDPParams
    dt_s : float, the step

    Returns
    -------
    w, pre_trace, post_trace after the step (new arrays)
    """
    require_non_negative("dt_s", dt_s)
    pre, post = np.asarray(pre, bool), np.asarray(post, bool)
    pre_trace = pre_trace * np.exp(-dt_s / p.tau_pre_s) + p.a_pre * pre
    post_trace = post_trace * np.exp(-dt_s / p.tau_post_s)
    w = _stdp_weights(w, pre, post, pre_trace, post_trace, p.w_max)
    return w, pre_trace, post_trace + p.a_post * post
