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

Two engines, selected by ``engine=`` or ``SleepParams.engine``: ``numpy`` (default; a loop over
steps whose work is only on the spikes of the step and the synapses of neurons that fired,
float64) and ``brian2`` (`neurosim.snn.convert.build_chain` with the rule as ``on_post``; one
``run()``). Given the same input spikes they give the same spikes in every layer, and the same
weights: bit for bit on Brian2's numpy target (the numpy engine adds a membrane's inputs in
Brian2's order), to rounding on Cython.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from neurosim.plasticity import src as src_rule
from neurosim.plasticity import src_gain
from neurosim.snn.convert import (
    CHAINS,
    check_convertible,
    layer_activations,
    normalisation_factors,
)
from neurosim.spikes import Spikes
from neurosim.validation import (
    require,
    require_choice,
    require_fraction,
    require_non_negative,
    require_positive,
)

__all__ = [
    "ENGINES",
    "TUNED_BETA",
    "SleepParams",
    "SleepResult",
    "default_beta",
    "dropout_units",
    "gain",
    "max_activations",
    "sleep",
    "run_events",
    "sleep_input",
    "sleep_input_events",
    "sleep_network",
    "sleep_scales",
    "window_masks",
]


#: beta of the tuned digits network [64, 256, 256, 10], by layer (see `SleepParams`): a high
#: threshold into the first hidden layer and into the output, a low one between hidden layers.
TUNED_BETA = (1.5159550040520944, 0.0818339300250498, 2.549412927784909)


def default_beta(n_layers: int) -> tuple[float, ...]:
    """`TUNED_BETA` by role for a network of `n_layers` weight layers: the first layer's value,
    the middle value for every layer between, the last layer's value (three layers: exactly
    `TUNED_BETA`). One layer is both first and last, whose tuned values disagree: it needs
    its beta given."""
    require(n_layers >= 2, "a one-layer network needs its sleep beta given (beta=(b,)): the "
                           "tuned first- and last-layer values differ")
    first, middle, last = TUNED_BETA
    return (first, *(middle,) * (n_layers - 2), last)


@dataclass(frozen=True)
class SleepParams:
    """Constants of one sleep phase.

    Defaults: tuned for the [64, 256, 256, 10] digits network of `neurosim.sleep.protocol`
    (uniform +-0.02 initialisation, one optimiser across tasks) by the `sleep_replay`
    experiment's 200-trial TPE search (`neurosim.search`) on the validation split of its
    replicates 0-2, the top five re-scored on replicates 0-4 (validation again); the values of
    the best, trial 75, unrounded (rounding them to 3 digits moved the validation score by
    -0.027, within the replicates' spread). docs/sleep.md has the table and the command. The
    authors tune these per data set too: MNIST needs its own search. Only beta_l / alpha_scale
    matters in a phase, so alpha_scale was left out of the search.
    """

    max_rate_hz: float = 418.0247850288484  # a pixel at 1 fires w.p. 2 dt max_rate (0.84) a step
    dt_s: float = 0.001  # step of the released code; only max_rate_hz * dt_s matters
    inc: float = 0.00043656557682822606  # potentiation when pre and post fired in one step
    dec: float = 0.001311960854288962  # depression when post fired and pre did not
    beta: tuple[float, ...] = ()  # threshold x per layer (1 value: all); (): tuned, default_beta
    alpha_scale: float = 2.58  # weight scale alpha_l = alpha_scale * normalisation factor_l
    mask: int = 7  # input window of (mask + 1)^2 pixels per step (7: all of 8x8); -1: none
    decay: float = 0.999  # membrane factor per step (1: perfect integrator)
    threshold: float = 1.0  # base threshold, times beta_l
    gain_width: float = 0.001  # w_0 of g(w) = 2 (1 - sigmoid(w / w_0)); weights beyond ~5 w_0
    # hardly change
    percentile: float = 100.0  # activation percentile of the normalisation (100: the max)
    chain: str = "src"  # chaining of the normalisation factors: src (released code) or diehl
    engine: str = "numpy"  # numpy (fast) or brian2 (the same phase on Brian2, proven equal)

    def __post_init__(self):
        for name in ("max_rate_hz", "dt_s", "inc", "dec", "alpha_scale", "decay", "threshold",
                     "gain_width", "percentile"):
            value = getattr(self, name)
            require(bool(np.isfinite(value)), f"{name} must be a finite number, got {value}")
        require(all(np.isfinite(b) for b in self.beta),
                f"beta must hold finite values, got {list(self.beta)}")
        require_positive("max_rate_hz", self.max_rate_hz)
        require_positive("dt_s", self.dt_s)
        require_non_negative("inc", self.inc)
        require_non_negative("dec", self.dec)
        require(all(b > 0 for b in self.beta),
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
        require_choice("engine", self.engine, ENGINES)
        object.__setattr__(self, "beta", tuple(float(b) for b in self.beta))

    def betas(self, n_layers: int) -> tuple[float, ...]:
        """One threshold multiplier per layer of a network of `n_layers` weight layers:
        `beta` itself, its one value broadcast, or `default_beta` when it is empty.

        Raises
        ------
        InvalidParameterError
            When `beta` holds another number of values than the network has layers.
        """
        if not self.beta:
            return default_beta(n_layers)
        if len(self.beta) == 1:
            return self.beta * n_layers
        require(len(self.beta) == n_layers,
                f"beta has {len(self.beta)} values for a network of {n_layers} layers: give "
                "one per layer, one for all, or none (the tuned defaults)")
        return self.beta

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
    spikes : list of Spikes
        Spikes of every layer, input layer first (`neurosim.spikes.Spikes`): a spike in step
        k at ``k * dt_s`` seconds, the window ``n_steps * dt_s`` long. `raster` (`rasters`)
        gives a layer's boolean (n_steps, n_units) array.
    alphas : ndarray of shape (n_layers,)
        The weight scales used.
    finite : bool
        False when a weight became NaN or inf: the caller must stop (a DIVERGED run).
    n_steps : int
        Length of the phase.
    dt_s : float
        The step.
    counts : list of ndarray of shape (n_units,), int64
        Spikes per neuron over the phase, input layer first (kept by `compact`).
    """

    weights: list[np.ndarray]
    spikes: list[Spikes]
    alphas: np.ndarray
    finite: bool
    n_steps: int
    dt_s: float
    counts: list[np.ndarray] = field(init=False)

    def __post_init__(self):
        self.counts = [s.counts() for s in self.spikes]

    @classmethod
    def from_dense(cls, weights: list[np.ndarray], rasters: Sequence[np.ndarray],
                   alphas: np.ndarray, finite: bool, dt_s: float) -> SleepResult:
        """The result of an engine's boolean rasters, shape (n_steps, n_units) each."""
        n_steps = int(rasters[0].shape[0]) if len(rasters) else 0
        return cls(weights, [Spikes.from_dense(r, dt_s) for r in rasters], alphas, finite,
                   n_steps, dt_s)

    @classmethod
    def from_events(cls, weights: list[np.ndarray],
                    events: Sequence[tuple[np.ndarray, np.ndarray]], n_units: Sequence[int],
                    n_steps: int, alphas: np.ndarray, finite: bool, dt_s: float) -> SleepResult:
        """The result of (steps, idx) events per layer, input layer first (`run_events`):
        the same `Spikes` as `from_dense` gives for the rasters of those events."""
        spikes = [Spikes(idx, steps * float(dt_s), n_steps * float(dt_s), int(n))
                  for (steps, idx), n in zip(events, n_units, strict=True)]
        return cls(weights, spikes, alphas, finite, int(n_steps), dt_s)

    def raster(self, layer: int) -> np.ndarray:
        """Spikes of `layer` (0: input) as a boolean array of shape (n_steps, n_units)."""
        from neurosim.snn.convert import spike_trains

        s = self.spikes[layer]
        return spike_trains(s, self.n_steps, s.n_neurons, self.dt_s * 1000.0)

    @property
    def rasters(self) -> list[np.ndarray]:
        """Every layer's `raster`, input layer first."""
        return [self.raster(l) for l in range(len(self.spikes))]

    @property
    def layer_counts(self) -> list[int]:
        """Spikes per layer over the phase, input layer first."""
        return [int(c.sum()) for c in self.counts]

    @property
    def silent_layers(self) -> list[int]:
        """Layers (1 = first hidden) that never fired: their incoming weights cannot change."""
        return [l for l, c in enumerate(self.counts) if l > 0 and not c.any()]

    def compact(self) -> SleepResult:
        """Drop the spike trains and weight arrays (the bulk of the memory), keeping the
        counts, scales and step count; returns self."""
        self.spikes, self.weights = [], []
        return self


# --- the maths ---------------------------------------------------------------------------------


#: The weight-dependent step g(w) of the rule (`neurosim.plasticity.src_gain`).
gain = src_gain


def sleep_scales(
    weights: Sequence[np.ndarray], X_seen: np.ndarray, params: SleepParams
) -> np.ndarray:
    r""":math:`\alpha_l` = alpha_scale times the data-based normalisation factor of layer l,
    measured on `X_seen` (all data seen so far) with the unnormalised weights.

    With ``percentile`` 100 (the released code's maximum) the maxima come from
    `max_activations` (a float32 pass picks the samples, float64 measures them), as
    `neurosim.snn.convert.normalisation_factors` would give them to rounding (~1e-15).
    """
    if params.percentile < 100:
        factors = normalisation_factors(weights, X_seen, params.percentile, params.chain)
        return params.alpha_scale * factors
    scales = []
    for W, a_max in zip(weights, max_activations(weights, X_seen), strict=True):
        s = max(0.0, float(np.max(W)), a_max)  # as convert.scale_factors
        scales.append(s if s > 0 else 1.0)
    return params.alpha_scale * CHAINS[params.chain](np.array(scales))


#: `max_activations`: samples whose float32 maximum is within this fraction of the layer's
#: largest are measured again in float64 (float32's error on these sums is ~1e-6 relative).
SCREEN_MARGIN = 0.02
#: Below this many multiply-adds (samples x weights) the float64 pass is cheap (the digits
#: network over all its data: ~1e8, ~10 ms) and runs as it is: no screening, exact maxima.
SCREEN_MIN = 10**9


def max_activations(weights: Sequence[np.ndarray], X: np.ndarray) -> list[float]:
    """The largest ReLU activation of every layer over the samples `X` (0 for a silent
    layer), in float64.

    The data-based scales need only one sample per layer, the one with the largest
    activation, but finding it takes a forward pass over all data seen so far: at the 28x28
    preset after the fifth task, 5,600 KMNIST images through 784-1200-1200, as costly as the
    task's training. The pass runs in float32 (twice BLAS's speed); the samples within
    `SCREEN_MARGIN` of a layer's float32 maximum (a handful) then go through the float64
    network, whose maximum is returned. Against one float64 pass over all samples the result
    differs only by the rounding of a product over another number of rows (BLAS blocks
    differently, ~1e-15 relative).

    Parameters
    ----------
    weights : sequence of ndarray of shape (n_in, n_out)
    X : ndarray of shape (n_samples, n_inputs)

    Returns
    -------
    list of float, one per layer
    """
    X = np.asarray(X, dtype=np.float64)
    if len(X) * sum(np.size(W) for W in weights) <= SCREEN_MIN:
        return [float(a.max(initial=0.0)) for a in layer_activations(weights, X)]
    a32 = X.astype(np.float32)
    out = []
    for l, W in enumerate(weights):
        a32 = np.maximum(a32 @ np.asarray(W, dtype=np.float32), np.float32(0.0))
        row_max = a32.max(axis=1)
        top = float(row_max.max(initial=0.0))
        # a layer float32 calls silent may hold tiny float64 activations: measure them all
        picked = (np.flatnonzero(row_max >= top * (1.0 - SCREEN_MARGIN)) if top > 0
                  else np.arange(len(X)))
        exact = layer_activations(weights[: l + 1], X[picked])[-1]
        out.append(float(exact.max(initial=0.0)))
    return out


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
        The spikes of `sleep_input_events` (the same draws) as a raster.
    """
    steps, idx, n_inputs = sleep_input_events(image, n_steps, params, rng, image_shape)
    raster = np.zeros((int(n_steps), n_inputs), dtype=bool)
    raster[steps, idx] = True
    return raster


#: Steps of input drawn at once by `sleep_input_events`: (chunk, n_inputs) doubles stay in
#: cache (the whole phase at once, 35,000 x 784, is 220 MB of draws).
INPUT_CHUNK = 1024


def sleep_input_events(
    image: np.ndarray,
    n_steps: int,
    params: SleepParams,
    rng: np.random.Generator,
    image_shape: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """`sleep_input`'s spikes as events, drawn without the (n_steps, n_inputs) raster.

    The windows' corners are drawn first (rows, then columns, one per step, as
    `window_masks`), then one uniform number per step and input, a chunk of steps at a time:
    the generator yields the same numbers in chunks as in one draw, so the spikes and the
    generator's state afterwards are those of drawing the whole raster at once.

    Returns
    -------
    steps, idx : ndarray of shape (n_spikes,), int64
        Step and input of every spike, ordered by step, then input.
    n_inputs : int
    """
    image = np.asarray(image, dtype=np.float64).ravel()
    if image_shape is None:
        side = int(round(np.sqrt(image.size)))
        if side * side != image.size and params.mask >= 0:
            raise ValueError(f"{image.size} inputs are not a square image: pass image_shape")
        image_shape = (side, side)
    if image_shape[0] * image_shape[1] != image.size:
        raise ValueError(f"image_shape {image_shape} does not hold {image.size} inputs")
    T, mask = int(n_steps), int(params.mask)
    rows, cols = image_shape
    if mask >= min(rows, cols):
        raise ValueError(f"mask {mask} does not fit a {rows}x{cols} image: window is mask + 1")
    if mask >= 0:  # the corners, as window_masks draws them
        r0 = rng.integers(0, rows - mask, size=T)[:, None]
        c0 = rng.integers(0, cols - mask, size=T)[:, None]
        r, c = np.arange(rows)[None, :], np.arange(cols)[None, :]
    p = np.clip(image * params.p_max, 0.0, 1.0)
    steps, idx = [], []
    for start in range(0, T, INPUT_CHUNK):
        stop = min(T, start + INPUT_CHUNK)
        # strict '<': a pixel outside the window (p = 0) never fires
        fire = rng.random((stop - start, image.size)) < p
        if mask >= 0:
            in_r = (r >= r0[start:stop]) & (r <= r0[start:stop] + mask)
            in_c = (c >= c0[start:stop]) & (c <= c0[start:stop] + mask)
            fire &= (in_r[:, :, None] & in_c[:, None, :]).reshape(stop - start, image.size)
        s, i = np.nonzero(fire)
        steps.append(s.astype(np.int64) + start)
        idx.append(i.astype(np.int64))
    empty = np.zeros(0, dtype=np.int64)
    return (np.concatenate(steps) if steps else empty, np.concatenate(idx) if idx else empty,
            image.size)


# --- the two engines ---------------------------------------------------------------------------


def run_numpy(
    weights: Sequence[np.ndarray], alphas: Sequence[float], input_spikes: np.ndarray,
    params: SleepParams,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The sleep dynamics and plasticity on numpy; -> (weights after, spikes per layer as
    boolean rasters of shape (n_steps, n_units)). `run_events` on the raster's spikes."""
    input_spikes = np.asarray(input_spikes, dtype=bool)
    T = input_spikes.shape[0]
    steps, idx = np.nonzero(input_spikes)
    Ws, events = run_events(weights, alphas, steps, idx, T, params)
    rasters = [input_spikes]
    for (s, i), W in zip(events[1:], Ws, strict=True):
        raster = np.zeros((T, W.shape[1]), dtype=bool)
        raster[s, i] = True
        rasters.append(raster)
    return Ws, rasters


def run_events(
    weights: Sequence[np.ndarray], alphas: Sequence[float], in_steps: np.ndarray,
    in_idx: np.ndarray, n_steps: int, params: SleepParams,
) -> tuple[list[np.ndarray], list[tuple[np.ndarray, np.ndarray]]]:
    """The numpy engine: a loop over steps whose work is only on the spikes of the step and
    the synapses of neurons that fired.

    Parameters
    ----------
    weights : sequence of ndarray of shape (n_in, n_out)
    alphas : sequence of float
    in_steps, in_idx : ndarray of shape (n_spikes,), int
        The input spikes as (step, input) events, ordered by step (`sleep_input_events`).
    n_steps : int
    params : SleepParams

    Returns
    -------
    weights : list of ndarray of shape (n_in, n_out), float64
    events : list of (steps, idx)
        Every layer's spikes, input layer first, ordered by step, then neuron.

    Notes
    -----
    The weights are held transposed, (n_out, n_in) in C order, so the synapses into the
    neurons that fired (the only ones the rule touches) are contiguous rows: 3x faster than
    gathering columns when many neurons fire.

    A membrane adds its inputs one presynaptic spike at a time, in presynaptic order, exactly
    as Brian2 applies ``v_post += scale * w`` synapse by synapse, so the two engines agree to
    the last bit (summing in another order changes only rounding: on the digits protocol,
    seeds 0-4, not a single spike). The terms are stacked one presynaptic spike per row, in
    a buffer allocated once, and summed with ``np.add.reduce(axis=0)``, which numpy adds row
    after row (pairwise summation is only used along the contiguous axis): half the time of a
    ``cumsum`` along the rows.

    A layer that receives no spike in a step only decays: its membranes are below threshold
    after the previous step and decay cannot raise them, so neither it nor any layer above
    it can fire, and the step ends there (most steps for the deeper layers; at the 28x28
    preset ~10 of 784 inputs fire in a step and a hidden neuron fires in ~1 step of 20).
    Beside the transposed weights the engine keeps the scaled weights ``alpha_l W_l`` with
    one row per presynaptic neuron, the terms a membrane adds, updated where plasticity
    changed a weight (the same products Brian2 forms, so still bit for bit). The input's
    per-step spikes are slices of one index array, and the spikes of the layers are kept as
    events, never as (n_steps, n_units) rasters: at the 28x28 preset (784-1200-1200-10,
    35,000 steps) that halves the phase against the raster version (tests/test_sleep_src.py
    holds that version and checks the two agree).
    """
    WTs = [np.array(np.asarray(W).T, dtype=np.float64, order="C") for W in weights]
    scaled = [np.ascontiguousarray(alpha * WT.T) for alpha, WT in zip(alphas, WTs, strict=True)]
    T = int(n_steps)
    thresholds = [params.threshold * b for b in params.betas(len(WTs))]
    sizes = [WT.shape[0] for WT in WTs]
    n_pres = [WT.shape[1] for WT in WTs]
    v_all = np.zeros(sum(sizes))  # one array, so one multiplication decays every layer
    v = np.split(v_all, np.cumsum(sizes)[:-1])  # views of v_all, written in place
    # row 0: the membrane, rows 1..k: the k terms of a step (at most one per presynaptic unit)
    buffers = [np.empty((n_pre + 1, n)) for n_pre, n in zip(n_pres, sizes, strict=True)]
    in_steps = np.asarray(in_steps, dtype=np.int64)
    in_idx = np.asarray(in_idx, dtype=np.int64)
    starts = np.searchsorted(in_steps, np.arange(T + 1)).tolist()
    active = np.unique(in_steps).tolist()  # steps with input: the others only decay
    fired_at: list[list[int]] = [[] for _ in WTs]
    fired_idx: list[list[np.ndarray]] = [[] for _ in WTs]
    decay = params.decay
    rule = {"inc": params.inc, "dec": params.dec, "width": params.gain_width}
    plastic = params.inc != 0 or params.dec != 0
    n_layers = len(WTs)
    done = 0  # steps decayed so far
    # exp(w / w0) -> inf for large w: g = 0, as it should; a weight that ran away (inf, then
    # NaN) is caught after the phase (SleepResult.finite -> DIVERGED), not warned about here
    with np.errstate(over="ignore", invalid="ignore"):
        for t in active:
            while done <= t:  # the decay of every step, those without input included
                v_all *= decay
                done += 1
            idx = in_idx[starts[t]:starts[t + 1]]
            for l in range(n_layers):
                terms = buffers[l][: idx.size + 1]
                terms[0] = v[l]
                scaled[l].take(idx, axis=0, out=terms[1:], mode="clip")
                np.add.reduce(terms, axis=0, out=v[l])
                fired = (v[l] >= thresholds[l]).nonzero()[0]  # the method: no dispatch
                if not fired.size:
                    break  # nothing reaches the layers above in this step
                fired_at[l].append(t)
                fired_idx[l].append(fired)
                if plastic:
                    pre = np.zeros(n_pres[l], dtype=bool)
                    pre[idx] = True
                    # the rows of the neurons that fired, with this step's pre spikes;
                    # the rule is evaluated as Brian2 evaluates SRC_ON_POST
                    WT = WTs[l]
                    rows = WT[fired]
                    rows += src_rule(rows, pre, None, **rule)
                    WT[fired] = rows
                    scaled[l][:, fired] = alphas[l] * rows.T
                v[l][fired] = 0.0
                idx = fired
    events = [(in_steps, in_idx)]
    for at, idxs in zip(fired_at, fired_idx, strict=True):
        if at:
            steps = np.repeat(np.array(at, dtype=np.int64), [i.size for i in idxs])
            events.append((steps, np.concatenate(idxs).astype(np.int64)))
        else:
            events.append((np.zeros(0, np.int64), np.zeros(0, np.int64)))
    return [np.ascontiguousarray(WT.T) for WT in WTs], events


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

    from neurosim.snn.backend import running
    from neurosim.snn.convert import build_chain, spike_trains, synapse_matrix

    T = input_spikes.shape[0]
    dt_ms = params.dt_s * 1000.0
    net, obj = build_chain(
        weights, np.asarray(input_spikes, dtype=np.float64), dt_ms,
        thresholds=[params.threshold * b for b in params.betas(len(weights))], scales=alphas,
        decay=params.decay, on_post=SRC_ON_POST,
        post_namespace={"inc": params.inc, "dec": params.dec, "w0": params.gain_width},
        prefix="sleep_",
    )
    with np.errstate(over="ignore", invalid="ignore"), running(net):
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
    engine: str | None = None,
    blas_threads: int | None = 1,
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
        ``beta`` holds one value per layer, one for all, or none (`default_beta`).
    rng : numpy.random.Generator
        Draws the windows and input spikes.
    image_shape : (rows, cols), optional
        For the input window (default: square).
    input_spikes : ndarray of shape (n_steps, n_inputs), bool, optional
        Use these input spikes instead of drawing them (to feed two engines the same input).
    alphas : sequence of float, optional
        Use these scales instead of measuring them on `X_seen`.
    engine : str, optional
        A key of `ENGINES` (default: ``params.engine``).
    blas_threads : int or None
        BLAS threads while the phase runs (None leaves BLAS alone), as in `neurosim.ann.train`:
        the scales' forward pass over all data seen took 46 ms with two OpenBLAS threads on a
        loaded 2-core machine against ~1 ms with one (the same scales either way).

    Returns
    -------
    SleepResult
    """
    threads = (threadpool_limits(limits=blas_threads) if blas_threads is not None
               else contextlib.nullcontext())
    with threads:
        return _sleep(weights, X_seen, n_steps, params, rng, image_shape, input_spikes, alphas,
                      engine)


def _sleep(weights, X_seen, n_steps, params, rng, image_shape, input_spikes, alphas,
           engine) -> SleepResult:
    engine = params.engine if engine is None else engine
    if engine not in ENGINES:
        raise ValueError(f"unknown engine '{engine}'; choose from {', '.join(ENGINES)}")
    params.betas(len(weights))  # one per layer: refused here, before any input is drawn
    X_seen = np.asarray(X_seen, dtype=np.float64)
    if alphas is None:
        alphas = sleep_scales(weights, X_seen, params)
    alphas = np.asarray(alphas, dtype=np.float64)
    n_inputs = np.shape(weights[0])[0]
    if engine == "numpy":  # events all the way: no (n_steps, n_units) raster is made
        if input_spikes is None:
            steps, idx, n = sleep_input_events(X_seen.mean(axis=0), n_steps, params, rng,
                                               image_shape)
            if n != n_inputs:
                raise ValueError(f"the images have {n} pixels for {n_inputs} inputs")
        else:
            input_spikes = _check_input(input_spikes, n_inputs)
            n_steps = input_spikes.shape[0]
            steps, idx = np.nonzero(input_spikes)
        Ws, events = run_events(weights, alphas, steps, idx, n_steps, params)
        finite = all(bool(np.isfinite(W).all()) for W in Ws)
        return SleepResult.from_events(Ws, events, [n_inputs, *(W.shape[1] for W in Ws)],
                                       int(n_steps), alphas, finite, params.dt_s)
    if input_spikes is None:
        input_spikes = sleep_input(X_seen.mean(axis=0), n_steps, params, rng, image_shape)
    input_spikes = _check_input(input_spikes, n_inputs)
    Ws, spikes = ENGINES[engine](weights, alphas, input_spikes, params)
    finite = all(bool(np.isfinite(W).all()) for W in Ws)
    return SleepResult.from_dense(Ws, spikes, alphas, finite, params.dt_s)


def _check_input(input_spikes: np.ndarray, n_inputs: int) -> np.ndarray:
    input_spikes = np.asarray(input_spikes, dtype=bool)
    if input_spikes.ndim != 2 or input_spikes.shape[1] != n_inputs:
        raise ValueError(f"input_spikes must have shape (n_steps, {n_inputs}), "
                         f"got {input_spikes.shape}")
    return input_spikes


def sleep_network(net, X_seen: np.ndarray, n_steps: int, params: SleepParams,
                  rng: np.random.Generator, *, units: Sequence[float] | None = None,
                  **kwargs) -> SleepResult:
    """`sleep` on an `neurosim.ann.MLP` (bias-free, ReLU), writing the new weights into its
    arrays in place (so views of them, e.g. an optimiser's, stay valid).

    Parameters
    ----------
    units : sequence of float, optional
        One factor per layer that converts the network's weights into the units `params` was
        tuned in: the phase runs on ``W_l * units[l]`` with the scales measured on the network
        as it is, and the weights come back divided by the factors. The released SRC code
        (DeepLearnToolbox) uses non-inverted dropout: it trains weights 1 / (1 - p) larger
        than this MLP's inverted dropout after a dropout layer and scales activations by
        (1 - p) when it measures them, so its values act on ``W / (1 - p)`` there
        (`dropout_units`). None: the weights as they are.

    Weights that came out NaN/inf are not written: check ``result.finite``.
    """
    weights = check_convertible(net)
    if units is not None:
        require(len(units) == len(weights),
                f"units has {len(units)} factors for a network of {len(weights)} layers")
        if kwargs.get("alphas") is None:
            # the scales of the network as it computes (= the released code's test-mode pass)
            kwargs["alphas"] = sleep_scales(weights, X_seen, params)
        weights = [W * u for W, u in zip(weights, units, strict=True)]
    result = sleep(weights, X_seen, n_steps, params, rng, **kwargs)
    if units is not None:
        result.weights = [W / u for W, u in zip(result.weights, units, strict=True)]
    if result.finite:
        for W, new in zip(net.weights, result.weights, strict=True):
            W[...] = new
    return result


def dropout_units(n_layers: int, dropout: float) -> list[float]:
    """`sleep_network`'s ``units`` for the released code's non-inverted dropout of rate
    `dropout` on every hidden layer: 1 for the first layer, 1 / (1 - dropout) for the layers
    fed by a hidden layer."""
    return [1.0] + [1.0 / (1.0 - dropout)] * (n_layers - 1)
