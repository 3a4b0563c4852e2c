r"""One Sleep Replay Consolidation (SRC) phase: the trained ReLU network runs as a spiking
network on noisy input and changes its weights by a local Hebbian rule.

Tadros, T., Krishnan, G. P., Ramyaa, R. & Bazhenov, M. (2022). Sleep-like unsupervised replay
reduces catastrophic forgetting in artificial neural networks. Nat. Commun. 13:7742.
The algorithm follows the authors' released code (``sleepnn_old.m``, ``normalize_nn_data.m``,
``create_masked_input.m`` of github.com/tmtadros/SleepReplayConsolidation):

- *scales*: data-based normalisation (`neurosim.snn.convert`, chain ``src``) on all data seen
  so far gives a factor per layer; the spiking network uses the **unnormalised** weights times
  :math:`\alpha_l = \text{alpha\_scale} \cdot \lambda_l`.
- *input*: the mean image of the seen data, cut each step to a random square window of
  (mask + 1) x (mask + 1) pixels (zero outside), drives Bernoulli spikes with
  P(spike) = 2 dt max_rate pixel.
- *dynamics*, every layer l = 1..L inside one step, input layer first:

  .. math:: v_l \leftarrow \text{decay}\; v_l + \alpha_l\, W_l^\top s_{l-1},\qquad
            s_l = [v_l \ge \text{threshold}\cdot\beta_l]

- *plasticity* on the weights into every neuron that fired, with the pre spikes of the step:

  .. math:: w \leftarrow w + \text{inc}\; g(w)\ \text{(pre fired)},\quad
            w \leftarrow w - \text{dec}\; g(w)\ \text{(pre silent)},\quad
            g(w) = 2\,(1 - \sigma(w / w_0)) = 2 / (1 + e^{w / w_0})

  and only then the reset :math:`v_l \leftarrow 0` of the neurons that fired; the output layer
  is plastic like the hidden ones. The update comes after this step's input current, so it
  acts from the next step on.

Two engines, selected by ``engine=``: ``numpy`` (default; a loop over steps whose work is only
on the synapses of neurons that fired, float64) and ``brian2`` (`neurosim.snn.convert.build_chain`
with the rule as ``on_post``; one ``run()``). Given the same input spikes they give the same
spikes in every layer, and weights equal to rounding (the membrane sums are added in a
different order).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from neurosim.config import (
    require,
    require_choice,
    require_fraction,
    require_non_negative,
    require_positive,
)
from neurosim.snn.convert import CHAINS, check_convertible, normalisation_factors

__all__ = [
    "ENGINES",
    "SleepParams",
    "SleepResult",
    "gain",
    "sleep",
    "sleep_input",
    "sleep_network",
    "sleep_scales",
    "window_masks",
]


@dataclass(frozen=True)
class SleepParams:
    """Constants of one sleep phase.

    Defaults: tuned for the [64, 256, 256, 10] digits network of `neurosim.sleep.protocol`
    (uniform +-0.02 initialisation) by a 200-trial TPE search scoring the validation split of
    seeds 0-2, rounded to 3 digits; the authors tune these per data set too. Final accuracy on
    the validation split, seeds 0-9: 0.467 +- 0.034 (sequential 0.191); DESIGN.md's values
    (`neurosim.sleep.protocol.REFERENCE_SLEEP`) give 0.327 +- 0.055 on the same network. With
    these values the depression term does the work: inc = 0 gives 0.458, dec = 0 nothing.
    """

    max_rate_hz: float = 103.0  # input rate of a pixel at 1: P(spike) = 2 dt max_rate pixel
    dt_s: float = 0.001  # step of the released code; only max_rate_hz * dt_s matters
    inc: float = 5.8e-5  # potentiation when pre and post fired in one step (search: ~0 best)
    dec: float = 0.00902  # depression when post fired and pre did not
    beta: tuple[float, ...] = (2.41, 0.0925, 1.50)  # threshold multiplier per layer
    alpha_scale: float = 2.58  # weight scale alpha_l = alpha_scale * normalisation factor_l
    mask: int = 6  # input window of (mask + 1)^2 pixels per step (7x7 of 8x8); -1: no window
    decay: float = 0.999  # membrane factor per step (1: perfect integrator)
    threshold: float = 1.0  # base threshold, times beta_l
    gain_width: float = 0.001  # w_0 of g(w) = 2 (1 - sigmoid(w / w_0)); weights beyond ~5 w_0
    # hardly change
    percentile: float = 100.0  # activation percentile of the normalisation (100: the max)
    chain: str = "src"  # chaining of the normalisation factors: src (released code) or diehl

    def __post_init__(self):
        require_positive("max_rate_hz", self.max_rate_hz)
        require_positive("dt_s", self.dt_s)
        require_non_negative("inc", self.inc)
        require_non_negative("dec", self.dec)
        require(len(self.beta) >= 1 and all(b > 0 for b in self.beta),
                f"beta must hold one positive value per layer, got {self.beta}")
        require_positive("alpha_scale", self.alpha_scale)
        require(int(self.mask) == self.mask and self.mask >= -1,
                f"mask must be an integer >= 0 (or -1 for no window), got {self.mask}")
        require_fraction("decay", self.decay, open_right=False)
        require_positive("decay", self.decay)
        require_positive("threshold", self.threshold)
        require_positive("gain_width", self.gain_width)
        require(0 < self.percentile <= 100,
                f"percentile must be in (0, 100], got {self.percentile}")
        require_choice("chain", self.chain, CHAINS)
        object.__setattr__(self, "beta", tuple(float(b) for b in self.beta))

    @property
    def p_max(self) -> float:
        """Spike probability per step of an input pixel at 1 (``2 dt max_rate``)."""
        return 2.0 * self.dt_s * self.max_rate_hz


@dataclass
class SleepResult:
    """What one sleep phase did.

    Attributes
    ----------
    weights : list of ndarray of shape (n_in, n_out), float64
        The weights after sleep (new arrays; the inputs are untouched).
    spikes : list of ndarray of shape (n_steps, n_units), bool
        Spikes of every layer in every step, input layer first.
    alphas : ndarray of shape (n_layers,)
        The weight scales used.
    finite : bool
        False when a weight became NaN or inf: the caller must stop (a DIVERGED run).
    """

    weights: list[np.ndarray]
    spikes: list[np.ndarray]
    alphas: np.ndarray
    finite: bool

    @property
    def counts(self) -> list[np.ndarray]:
        """Spikes per neuron over the phase, input layer first."""
        return [s.sum(axis=0, dtype=np.int64) for s in self.spikes]

    @property
    def layer_counts(self) -> list[int]:
        """Spikes per layer over the phase, input layer first."""
        return [int(s.sum()) for s in self.spikes]

    @property
    def silent_layers(self) -> list[int]:
        """Layers (1 = first hidden) that never fired: their incoming weights cannot change."""
        return [l for l, s in enumerate(self.spikes) if l > 0 and not s.any()]


# --- the maths ---------------------------------------------------------------------------------


def gain(w: np.ndarray, width: float) -> np.ndarray:
    r"""The weight-dependent step :math:`g(w) = 2(1 - \sigma(w / w_0)) = 2 / (1 + e^{w/w_0})`.

    2 for strongly negative weights, 1 at zero, ~0 beyond a few ``width`` above zero.
    """
    with np.errstate(over="ignore"):
        return 2.0 / (1.0 + np.exp(w / width))


def sleep_scales(
    weights: Sequence[np.ndarray], X_seen: np.ndarray, params: SleepParams
) -> np.ndarray:
    r""":math:`\alpha_l` = alpha_scale times the data-based normalisation factor of layer l,
    measured on `X_seen` (all data seen so far) with the unnormalised weights."""
    factors = normalisation_factors(weights, X_seen, params.percentile, params.chain)
    return params.alpha_scale * factors


def window_masks(
    n_steps: int, image_shape: tuple[int, int], mask: int, rng: np.random.Generator
) -> np.ndarray:
    """One random square window per step: (mask + 1) x (mask + 1) pixels, fully inside.

    Like ``create_masked_input.m``: the window's corner is uniform over the
    ``(rows - mask) x (cols - mask)`` positions that keep it inside the image.

    Returns
    -------
    ndarray of shape (n_steps, rows * cols), bool
    """
    rows, cols = image_shape
    if mask < 0:
        return np.ones((n_steps, rows * cols), dtype=bool)
    if mask >= min(rows, cols):
        raise ValueError(f"mask {mask} does not fit a {rows}x{cols} image: window is mask + 1")
    r0 = rng.integers(0, rows - mask, size=n_steps)[:, None]
    c0 = rng.integers(0, cols - mask, size=n_steps)[:, None]
    r, c = np.arange(rows)[None, :], np.arange(cols)[None, :]
    in_r = (r >= r0) & (r <= r0 + mask)
    in_c = (c >= c0) & (c <= c0 + mask)
    return (in_r[:, :, None] & in_c[:, None, :]).reshape(n_steps, rows * cols)


def sleep_input(
    image: np.ndarray,
    n_steps: int,
    params: SleepParams,
    rng: np.random.Generator,
    image_shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """Input spikes of a sleep phase: the (mean) image in a random window per step.

    Parameters
    ----------
    image : ndarray of shape (n_inputs,)
        Values in [0, 1], usually the mean of the data seen so far.
    n_steps : int
    params : SleepParams
    rng : numpy.random.Generator
    image_shape : (rows, cols), optional
        How the inputs tile an image (needed for the window); default: a square image.

    Returns
    -------
    ndarray of shape (n_steps, n_inputs), bool
    """
    image = np.asarray(image, dtype=np.float64).ravel()
    if image_shape is None:
        side = int(round(np.sqrt(image.size)))
        if side * side != image.size and params.mask >= 0:
            raise ValueError(f"{image.size} inputs are not a square image: pass image_shape")
        image_shape = (side, side)
    if image_shape[0] * image_shape[1] != image.size:
        raise ValueError(f"image_shape {image_shape} does not hold {image.size} inputs")
    masks = window_masks(int(n_steps), image_shape, int(params.mask), rng)
    p = np.clip(image * params.p_max, 0.0, 1.0)
    # strict '<': a pixel outside the window (p = 0) never fires
    return (rng.random((int(n_steps), image.size)) < p) & masks


# --- the two engines ---------------------------------------------------------------------------


def run_numpy(
    weights: Sequence[np.ndarray], alphas: Sequence[float], input_spikes: np.ndarray,
    params: SleepParams,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The sleep dynamics and plasticity on numpy; -> (weights after, spikes per layer).

    The weights are held transposed, (n_out, n_in) in C order, so the synapses into the
    neurons that fired (the only ones the rule touches) are contiguous rows: 3x faster than
    gathering columns when many neurons fire.

    A membrane adds its inputs one presynaptic spike at a time, in presynaptic order
    (``cumsum``), exactly as Brian2 applies ``v_post += scale * w`` synapse by synapse, so the
    two engines agree to the last bit (summing in another order changes only rounding: on the
    digits protocol, seeds 0-4, not a single spike).
    """
    WTs = [np.array(np.asarray(W).T, dtype=np.float64, order="C") for W in weights]
    T = input_spikes.shape[0]
    thresholds = [params.threshold * b for b in params.beta]
    v = [np.zeros(WT.shape[0]) for WT in WTs]
    spikes = [np.asarray(input_spikes, dtype=bool)]
    spikes += [np.zeros((T, WT.shape[0]), dtype=bool) for WT in WTs]
    inc, dec, decay = params.inc, params.dec, params.decay
    inv_width = 1.0 / params.gain_width
    plastic = inc != 0 or dec != 0
    with np.errstate(over="ignore"):  # exp(w / w0) -> inf for large w: g = 0, as it should
        for t in range(T):
            pre = spikes[0][t]
            for l, WT in enumerate(WTs):
                idx = pre.nonzero()[0]  # the method skips numpy's function dispatch
                v[l] *= decay
                if idx.size:
                    terms = np.empty((WT.shape[0], idx.size + 1))
                    terms[:, 0] = v[l]
                    np.multiply(alphas[l], WT[:, idx], out=terms[:, 1:])
                    v[l] = terms.cumsum(axis=1)[:, -1]
                post = spikes[l + 1][t]
                np.greater_equal(v[l], thresholds[l], out=post)
                fired = post.nonzero()[0]
                if fired.size:
                    if plastic:
                        # w + 2 step / (1 + exp(w / w0)) evaluated as Brian2 evaluates SRC_ON_POST
                        two_step = 2.0 * np.where(pre, inc, -dec)
                        rows = WT[fired]
                        rows += two_step / (1.0 + np.exp(inv_width * rows))
                        WT[fired] = rows
                    v[l][fired] = 0.0
                pre = post
    return [np.ascontiguousarray(WT.T) for WT in WTs], spikes


#: Plasticity of the Brian2 engine: w += step g(w), step = inc where pre fired, -dec where not.
#: Brian2 (2.9) compiles it as ``w += 2 (-dec (1 - s) + inc s) / (1 + exp((1/w0) w))``, which
#: `run_numpy` copies operation for operation: the numpy target gives the same bits.
SRC_ON_POST = "w += 2 * (inc * spiked_pre - dec * (1 - spiked_pre)) / (1 + exp(w / w0))"


def run_brian2(
    weights: Sequence[np.ndarray], alphas: Sequence[float], input_spikes: np.ndarray,
    params: SleepParams,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The same phase on Brian2 (the current code-generation target), one ``run()``.

    The chain (`neurosim.snn.convert.build_chain`) puts every layer's threshold, plasticity
    and reset into the ``synapses`` slot in layer order, so all layers update inside one step.
    """
    import brian2 as b2

    from neurosim.snn.convert import build_chain, spike_trains, synapse_matrix

    T = input_spikes.shape[0]
    dt_ms = params.dt_s * 1000.0
    b2.defaultclock.dt = dt_ms * b2.ms
    net, obj = build_chain(
        weights, np.asarray(input_spikes, dtype=np.float64), dt_ms,
        thresholds=[params.threshold * b for b in params.beta], scales=alphas,
        decay=params.decay, on_post=SRC_ON_POST,
        post_namespace={"inc": params.inc, "dec": params.dec, "w0": params.gain_width},
        prefix="sleep_",
    )
    with np.errstate(over="ignore"):
        net.run(T * dt_ms * b2.ms, namespace={})
    Ws = [synapse_matrix(s, np.shape(W)) for s, W in zip(obj["synapses"], weights, strict=True)]
    groups = [obj["input"], *obj["layers"]]
    spikes = [spike_trains(m, T, g.N, dt_ms) for m, g in zip(obj["monitors"], groups, strict=True)]
    return Ws, spikes


#: Sleep engines: (weights, alphas, input_spikes, params) -> (weights, spikes).
ENGINES: dict[str, Callable[..., tuple[list[np.ndarray], list[np.ndarray]]]] = {
    "numpy": run_numpy,
    "brian2": run_brian2,
}


def sleep(
    weights: Sequence[np.ndarray],
    X_seen: np.ndarray,
    n_steps: int,
    params: SleepParams,
    rng: np.random.Generator,
    *,
    image_shape: tuple[int, int] | None = None,
    input_spikes: np.ndarray | None = None,
    alphas: Sequence[float] | None = None,
    engine: str = "numpy",
) -> SleepResult:
    """One sleep phase on the weights of a bias-free ReLU network.

    Parameters
    ----------
    weights : sequence of ndarray of shape (n_in, n_out)
        Not modified; the result holds new arrays.
    X_seen : ndarray of shape (n_samples, n_inputs)
        All data seen so far: its mean image is the input, its activations set the scales.
    n_steps : int
        Length of the phase (ignored when `input_spikes` is given).
    params : SleepParams
        ``beta`` needs one value per layer.
    rng : numpy.random.Generator
        Draws the windows and input spikes.
    image_shape : (rows, cols), optional
        For the input window (default: square).
    input_spikes : ndarray of shape (n_steps, n_inputs), bool, optional
        Use these input spikes instead of drawing them (to feed two engines the same input).
    alphas : sequence of float, optional
        Use these scales instead of measuring them on `X_seen`.
    engine : str
        A key of `ENGINES`.

    Returns
    -------
    SleepResult
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine '{engine}'; choose from {', '.join(ENGINES)}")
    if len(params.beta) != len(weights):
        raise ValueError(f"params.beta has {len(params.beta)} values for {len(weights)} layers")
    X_seen = np.asarray(X_seen, dtype=np.float64)
    if alphas is None:
        alphas = sleep_scales(weights, X_seen, params)
    alphas = np.asarray(alphas, dtype=np.float64)
    if input_spikes is None:
        input_spikes = sleep_input(X_seen.mean(axis=0), n_steps, params, rng, image_shape)
    input_spikes = np.asarray(input_spikes, dtype=bool)
    if input_spikes.ndim != 2 or input_spikes.shape[1] != np.shape(weights[0])[0]:
        raise ValueError(f"input_spikes must have shape (n_steps, {np.shape(weights[0])[0]}), "
                         f"got {input_spikes.shape}")
    Ws, spikes = ENGINES[engine](weights, alphas, input_spikes, params)
    finite = all(bool(np.isfinite(W).all()) for W in Ws)
    return SleepResult(Ws, spikes, alphas, finite)


def sleep_network(net, X_seen: np.ndarray, n_steps: int, params: SleepParams,
                  rng: np.random.Generator, **kwargs) -> SleepResult:
    """`sleep` on an `neurosim.ann.MLP` (bias-free, ReLU), writing the new weights into its
    arrays in place (so views of them, e.g. an optimiser's, stay valid).

    Weights that came out NaN/inf are not written: check ``result.finite``.
    """
    result = sleep(check_convertible(net), X_seen, n_steps, params, rng, **kwargs)
    if result.finite:
        for W, new in zip(net.weights, result.weights, strict=True):
            W[...] = new
    return result
