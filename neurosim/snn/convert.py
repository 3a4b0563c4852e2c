r"""Trained bias-free ReLU MLP -> spiking network of integrate-and-fire neurons.

Diehl, P. U., Neil, D., Binas, J., Cook, M., Liu, S.-C. & Pfeiffer, M. (2015). Fast-classifying,
high-accuracy spiking deep networks through weight and threshold balancing. IJCNN 2015.
Rueckauer, B., Lungu, I.-A., Hu, Y., Pfeiffer, M. & Liu, S.-C. (2017). Conversion of
continuous-valued deep networks to efficient event-driven networks for image classification.
Front. Neurosci. 11:682.

*Data-based normalisation* (Diehl et al. 2015, Algorithm 2): run the ReLU network on data, take
for every layer the scale

.. math:: s_l = \max\big(\max_{ij} W^{(l)}_{ij},\ \max a_l\big)

(the largest positive weight or the largest activation; with ``percentile < 100`` the
activation term is that percentile of the layer's positive activations, Rueckauer et al. 2017),
and rescale the weights layer by layer so that no neuron needs to fire more than once per step:

.. math:: \tilde W^{(l)} = \lambda_l W^{(l)},\qquad \lambda_l = s_{l-1} / s_l,\quad s_0 = 1

`CHAINS` also holds the chaining of the Sleep Replay Consolidation code (Tadros et al. 2022,
``normalize_nn_data.m``), whose running factor is the previous *applied* factor instead of the
previous scale, :math:`\lambda_l = 1/f_l,\ f_l = s_l / f_{l-1},\ f_0 = 1` (equal to Diehl's for
the first two layers, different from the third on).

The spiking network: non-leaky integrate-and-fire neurons, threshold 1 (on the normalised
weights), reset to zero, Bernoulli-Poisson input with P(spike per step) = pixel * rate * dt;
every layer is updated inside one time step (layer l sees layer l-1's spikes of the same step,
as in Diehl et al.'s code). The class is the output neuron with the most spikes.

Two engines run the same simulation, and fed the same input spikes they give the same spikes:

- ``numpy``: vectorised over samples and time steps. Without plasticity a layer's whole spike
  train depends only on the layer below, so the network is simulated layer by layer: one
  matrix product gives a layer's input current for every step and sample, then one loop over
  the steps integrates, thresholds and resets all samples at once.
- ``brian2``: one ``NeuronGroup`` per layer, one ``run()`` for all samples (a ``TimedArray``
  plays the input spikes back; a ``run_regularly`` zeroes the membranes at every sample's
  start). Brian2's default schedule (groups, thresholds, synapses, resets) would give one dt of
  lag per layer; `build_chain` instead moves every layer's threshold and reset into the
  ``synapses`` slot, ordered input pathway -> threshold -> (plasticity) -> reset, layer after
  layer, so all layers update inside one step like the numpy engine. `neurosim.sleep.src`
  builds its Brian2 engine on the same chain.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from neurosim.spikes import Spikes
from neurosim.validation import require, require_positive

__all__ = [
    "CHAINS",
    "ENGINES",
    "ConversionParams",
    "SpikeRun",
    "accuracy_vs_time",
    "build_chain",
    "check_convertible",
    "convert_and_simulate",
    "layer_activations",
    "normalisation_factors",
    "normalise",
    "poisson_input",
    "predict_from_counts",
    "scale_factors",
    "simulate",
    "spike_trains",
]


@dataclass(frozen=True)
class ConversionParams:
    """Constants of the converted network; plain floats with the unit in the name."""

    dt_ms: float = 1.0  # simulation step (Diehl et al. 2015 used 1 ms)
    max_rate_hz: float = 1000.0  # Poisson rate of a pixel at 1: P(spike per step) = pixel here
    n_steps: int = 100  # presentation time per sample, in steps
    threshold: float = 1.0  # IF threshold on the normalised weights
    percentile: float = 100.0  # of the positive activations: 100 = max (Diehl), 99.9 Rueckauer
    chain: str = "diehl"  # how per-layer scales chain into weight factors (CHAINS)

    def __post_init__(self):
        require_positive("dt_ms", self.dt_ms)
        require_positive("max_rate_hz", self.max_rate_hz)
        require(self.max_rate_hz * self.dt_ms / 1000.0 <= 1.0,
                f"max_rate_hz * dt must be <= 1 (one spike per step), got "
                f"{self.max_rate_hz} Hz * {self.dt_ms} ms")
        require(int(self.n_steps) == self.n_steps and self.n_steps >= 1,
                f"n_steps must be an integer >= 1, got {self.n_steps}")
        require_positive("threshold", self.threshold)
        require(0 < self.percentile <= 100,
                f"percentile must be in (0, 100], got {self.percentile}")
        require(self.chain in CHAINS,
                f"unknown chain '{self.chain}'; choose from {', '.join(CHAINS)}")

    @property
    def p_max(self) -> float:
        """Spike probability per step of an input at 1."""
        return self.max_rate_hz * self.dt_ms / 1000.0


# --- normalisation -----------------------------------------------------------------------------


def check_convertible(net) -> list[np.ndarray]:
    """The weights of an `neurosim.ann.MLP` that an IF network can carry, as float64 copies.

    Raises
    ------
    ValueError
        When the network has biases or a hidden activation other than ReLU (an IF neuron's
        rate is a rectified sum of its inputs, with no offset).
    """
    if getattr(net, "biases", None) is not None:
        raise ValueError("conversion needs a bias-free network: build the MLP with bias=False")
    if net.hidden_activation != "relu":
        raise ValueError(f"conversion needs ReLU hidden layers, not '{net.hidden_activation}'")
    return [np.array(W, dtype=np.float64) for W in net.weights]


def layer_activations(weights: Sequence[np.ndarray], X: np.ndarray) -> list[np.ndarray]:
    """ReLU activations of every layer, output included, ``[a_1, ..., a_L]``.

    Parameters
    ----------
    weights : sequence of ndarray of shape (n_in, n_out)
    X : ndarray of shape (n_samples, n_inputs)

    Returns
    -------
    list of ndarray of shape (n_samples, n_units), float64
    """
    a, out = np.asarray(X, dtype=np.float64), []
    for W in weights:
        a = np.maximum(a @ np.asarray(W, dtype=np.float64), 0.0)
        out.append(a)
    return out


def scale_factors(
    weights: Sequence[np.ndarray], X: np.ndarray, percentile: float = 100.0
) -> np.ndarray:
    r"""Per-layer scales :math:`s_l = \max(\max(0, \max W^{(l)}), \mathrm{act}_l)`.

    Parameters
    ----------
    weights : sequence of ndarray of shape (n_in, n_out)
    X : ndarray of shape (n_samples, n_inputs)
        The data the activations are measured on.
    percentile : float
        ``act_l`` is this percentile of the layer's positive activations (100: their max).
        Zeros are left out: they say nothing about how far a layer's activity reaches.

    Returns
    -------
    ndarray of shape (n_layers,)
        A layer with neither a positive weight nor a positive activation gets 1 (it never fires
        whatever its scale), so the factors stay finite.
    """
    scales = []
    for W, a in zip(weights, layer_activations(weights, X), strict=True):
        w_max = max(0.0, float(np.max(W)))
        pos = a[a > 0]
        a_max = 0.0 if pos.size == 0 else float(
            pos.max() if percentile >= 100 else np.percentile(pos, percentile))
        s = max(w_max, a_max)
        scales.append(s if s > 0 else 1.0)
    return np.array(scales)


def _chain_diehl(scales: np.ndarray) -> np.ndarray:
    prev = np.concatenate([[1.0], scales[:-1]])
    return prev / scales


def _chain_src(scales: np.ndarray) -> np.ndarray:
    factors, applied = [], 1.0
    for s in scales:
        applied = s / applied
        factors.append(1.0 / applied)
    return np.array(factors)


#: How per-layer scales become weight factors: ``diehl`` (Diehl et al. 2015) or ``src`` (the
#: released SRC code's running factor, see the module docstring).
CHAINS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "diehl": _chain_diehl,
    "src": _chain_src,
}


def normalisation_factors(
    weights: Sequence[np.ndarray], X: np.ndarray, percentile: float = 100.0, chain: str = "diehl"
) -> np.ndarray:
    r"""Per-layer weight factors :math:`\lambda_l` of data-based normalisation.

    Returns
    -------
    ndarray of shape (n_layers,)
        Multiply ``weights[l]`` by ``factors[l]`` (`normalise`).
    """
    if chain not in CHAINS:
        raise ValueError(f"unknown chain '{chain}'; choose from {', '.join(CHAINS)}")
    return CHAINS[chain](scale_factors(weights, X, percentile))


def normalise(
    weights: Sequence[np.ndarray], X: np.ndarray, percentile: float = 100.0, chain: str = "diehl"
) -> tuple[list[np.ndarray], np.ndarray]:
    """The normalised weights (float64 copies) and the factors that made them."""
    factors = normalisation_factors(weights, X, percentile, chain)
    return [np.asarray(W, np.float64) * f for W, f in zip(weights, factors, strict=True)], factors


# --- input -------------------------------------------------------------------------------------


def poisson_input(
    X: np.ndarray, n_steps: int, p_max: float, rng: np.random.Generator
) -> np.ndarray:
    """Bernoulli-Poisson spikes: input i of sample n fires in a step with P = X[n, i] * p_max.

    Returns
    -------
    ndarray of shape (n_steps, n_samples, n_inputs), bool
    """
    p = np.clip(np.asarray(X, dtype=np.float64), 0.0, None) * float(p_max)
    return rng.random((int(n_steps), *p.shape)) < np.minimum(p, 1.0)


# --- the two engines ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SpikeRun:
    """What a simulation of the converted network recorded.

    Attributes
    ----------
    spikes : Spikes
        Output-layer spikes (`neurosim.spikes.Spikes`), the samples back to back: sample k
        occupies ``[k n_steps dt, (k + 1) n_steps dt)``.
    counts : list of ndarray of shape (n_samples, n_units), int64
        Spikes per neuron and sample, input layer first: synaptic events = counts x fan-out.
    n_steps : int
        Steps per sample.
    dt_ms : float
    """

    spikes: Spikes
    counts: list[np.ndarray]
    n_steps: int
    dt_ms: float

    @classmethod
    def from_dense(cls, output: np.ndarray, counts: list[np.ndarray],
                   dt_ms: float) -> SpikeRun:
        """From output spikes of shape (n_steps, n_samples, n_outputs), bool."""
        T, n, k = output.shape
        raster = np.transpose(output, (1, 0, 2)).reshape(n * T, k)
        return cls(Spikes.from_dense(raster, dt_ms / 1000.0), counts, T, dt_ms)

    @property
    def n_samples(self) -> int:
        return int(self.counts[0].shape[0])

    @property
    def output(self) -> np.ndarray:
        """Output spikes in every step, ndarray of shape (n_steps, n_samples, n_outputs), bool:
        ``output.cumsum(0)`` gives the counts after each step (`accuracy_vs_time`)."""
        T, n, k = self.n_steps, self.n_samples, self.spikes.n_neurons
        raster = spike_trains(self.spikes, n * T, k, self.dt_ms)
        return np.transpose(raster.reshape(n, T, k), (1, 0, 2))


def _integrate(current: np.ndarray, threshold: float) -> np.ndarray:
    """IF neurons, reset to zero, driven by `current` of shape (n_steps, ...); -> spikes."""
    v = np.zeros(current.shape[1:])
    spikes = np.empty(current.shape, dtype=bool)
    for t in range(current.shape[0]):
        v += current[t]
        s = np.greater_equal(v, threshold, out=spikes[t])
        v[s] = 0.0
    return spikes


def simulate_numpy(
    weights: Sequence[np.ndarray], input_spikes: np.ndarray, threshold: float = 1.0,
    batch: int = 256, dt_ms: float = 1.0,
) -> SpikeRun:
    """The converted network on numpy, `batch` samples at a time (see the module docstring).

    Parameters
    ----------
    weights : sequence of ndarray of shape (n_in, n_out)
        Normalised weights (`normalise`).
    input_spikes : ndarray of shape (n_steps, n_samples, n_inputs), bool
    threshold : float
    batch : int
        Samples per pass (bounds the memory: n_steps x batch x widest layer floats).
    dt_ms : float
        The step, for the spike times of the result (the dynamics do not depend on it).
    """
    Ws = [np.asarray(W, np.float64) for W in weights]
    T, n, _ = input_spikes.shape
    out = np.empty((T, n, Ws[-1].shape[1]), dtype=bool)
    counts = [np.empty((n, input_spikes.shape[2]), np.int64)]
    counts += [np.empty((n, W.shape[1]), np.int64) for W in Ws]
    for start in range(0, n, batch):
        part = slice(start, min(n, start + batch))
        s = input_spikes[:, part]
        counts[0][part] = s.sum(axis=0)
        for l, W in enumerate(Ws):
            current = (s.reshape(-1, s.shape[2]) @ W).reshape(T, s.shape[1], W.shape[1])
            s = _integrate(current, threshold)
            counts[l + 1][part] = s.sum(axis=0)
        out[:, part] = s
    return SpikeRun.from_dense(out, counts, dt_ms)


def build_chain(*args, **kwargs):
    """`_build_chain` inside `neurosim.snn.backend.building` (Ctrl-C while ``connect()``
    compiles leaves no warnings about unused objects); its arguments and result."""
    from neurosim.snn.backend import building

    with building():
        return _build_chain(*args, **kwargs)


def _build_chain(
    weights: Sequence[np.ndarray],
    input_table: np.ndarray,
    dt_ms: float,
    *,
    thresholds: Sequence[float],
    scales: Sequence[float] | None = None,
    decay: float = 1.0,
    reset_every: int | None = None,
    on_post: str | None = None,
    post_namespace: dict | None = None,
    prefix: str = "",
):
    r"""A feed-forward chain of IF layers on Brian2, every layer updated inside one step.

    Each layer's membrane ``v`` takes :math:`v \leftarrow \text{decay}\, v` (at the ``groups``
    slot), then, in the ``synapses`` slot, in this order for layer 1, 2, ...: the spikes of the
    layer below arrive (``v_post += scale * w``), the threshold ``v >= threshold`` is checked,
    `on_post` runs on the incoming synapses of the neurons that fired (plasticity), and the
    reset sets ``v = 0`` and ``spiked = 1``. ``spiked`` (zeroed every step) tells a synapse
    whether its presynaptic neuron fired in the current step (``spiked_pre``).

    Parameters
    ----------
    weights : sequence of ndarray of shape (n_in, n_out)
    input_table : ndarray of shape (n_steps_total, n_inputs)
        1 where an input neuron fires in a step, else 0 (played back by a ``TimedArray``).
    dt_ms : float
    thresholds : sequence of float, one per layer
    scales : sequence of float, optional
        Multiplier of each layer's synaptic weights in ``v_post += scale * w`` (default 1).
    decay : float
        Membrane factor per step (1: no leak).
    reset_every : int, optional
        Zero every membrane each `reset_every` steps (one sample's presentation).
    on_post : str, optional
        Brian2 statements run on a synapse when its postsynaptic neuron fires.
    post_namespace : dict, optional
        Constants `on_post` uses.
    prefix : str
        Prefix of the Brian2 object names.

    Returns
    -------
    net : brian2.Network
    objects : dict
        ``input``, ``layers`` (list of NeuronGroup), ``synapses`` (list of Synapses),
        ``monitors`` (SpikeMonitors, input first).
    """
    import brian2 as b2

    dt = dt_ms * b2.ms
    scales = [1.0] * len(weights) if scales is None else list(scales)
    table = np.ascontiguousarray(input_table, dtype=np.float64)
    stim = b2.TimedArray(table, dt=dt, name=prefix + "input_table")
    inp = b2.NeuronGroup(table.shape[1], "spiked : 1", threshold="stim(t, i) > 0.5",
                         reset="spiked = 1", namespace={"stim": stim}, dt=dt,
                         name=prefix + "input")
    inp.run_regularly("spiked = 0", when="groups", name=prefix + "input_clear")
    # the input's reset must run before any layer's plasticity reads spiked_pre
    inp.resetter["spike"].when, inp.resetter["spike"].order = "thresholds", 1
    layers, synapses, monitors = [], [], [b2.SpikeMonitor(inp, name=prefix + "input_spikes")]
    pre = inp
    for l, W in enumerate(weights):
        W = np.asarray(W, dtype=np.float64)
        n_in, n_out = W.shape
        grp = b2.NeuronGroup(n_out, "v : 1\nspiked : 1", threshold="v >= v_th",
                             reset="v = 0\nspiked = 1", dt=dt,
                             namespace={"v_th": float(thresholds[l]), "decay": float(decay)},
                             name=f"{prefix}layer{l + 1}")
        step = "spiked = 0" if decay == 1.0 else "v = decay * v\nspiked = 0"
        grp.run_regularly(step, when="groups", name=f"{prefix}layer{l + 1}_step")
        if reset_every is not None:
            grp.run_regularly("v = 0", dt=reset_every * dt, when="start",
                              name=f"{prefix}layer{l + 1}_sample_reset")
        namespace = {"scale": float(scales[l]), **(post_namespace or {})}
        syn = b2.Synapses(pre, grp, "w : 1", on_pre="v_post += scale * w", on_post=on_post,
                          namespace=namespace, dt=dt, name=f"{prefix}syn{l + 1}")
        syn.connect(i=np.repeat(np.arange(n_in), n_out), j=np.tile(np.arange(n_out), n_in))
        syn.w = W[np.asarray(syn.i[:]), np.asarray(syn.j[:])]
        base = 10 * (l + 1)
        syn.pre.when, syn.pre.order = "synapses", base
        grp.thresholder["spike"].when, grp.thresholder["spike"].order = "synapses", base + 1
        if on_post is not None:
            syn.post.when, syn.post.order = "synapses", base + 2
        grp.resetter["spike"].when, grp.resetter["spike"].order = "synapses", base + 3
        layers.append(grp)
        synapses.append(syn)
        monitors.append(b2.SpikeMonitor(grp, name=f"{prefix}layer{l + 1}_spikes"))
        pre = grp
    net = b2.Network(inp, *layers, *synapses, *monitors)
    return net, {"input": inp, "layers": layers, "synapses": synapses, "monitors": monitors}


def synapse_matrix(syn, shape: tuple[int, int]) -> np.ndarray:
    """A Brian2 ``Synapses``' ``w`` as an (n_in, n_out) matrix."""
    W = np.zeros(shape)
    W[np.asarray(syn.i[:]), np.asarray(syn.j[:])] = np.asarray(syn.w[:])
    return W


def spike_trains(monitor, n_steps: int, n_neurons: int, dt_ms: float) -> np.ndarray:
    """A SpikeMonitor's (or a `neurosim.spikes.Spikes`') spikes as a boolean
    (n_steps, n_neurons) array: a spike at time t falls in step ``round(t / dt)``."""
    out = np.zeros((n_steps, n_neurons), dtype=bool)
    steps = np.rint(np.asarray(monitor.t[:]) / (dt_ms * 1e-3)).astype(np.int64)
    out[steps, np.asarray(monitor.i[:])] = True
    return out


def simulate_brian2(
    weights: Sequence[np.ndarray], input_spikes: np.ndarray, threshold: float = 1.0,
    dt_ms: float = 1.0,
) -> SpikeRun:
    """The converted network on Brian2 (the current code-generation target), all samples in
    one ``run()``; arguments and result as `simulate_numpy`.

    Select the target first (`neurosim.snn.backend.select`).
    """
    import brian2 as b2

    from neurosim.snn.backend import running

    T, n, n_in = input_spikes.shape
    table = np.transpose(input_spikes, (1, 0, 2)).reshape(n * T, n_in)
    net, obj = build_chain(weights, table, dt_ms, thresholds=[threshold] * len(weights),
                           reset_every=T)
    with running(net):
        net.run(n * T * dt_ms * b2.ms, namespace={})
    trains = [spike_trains(m, n * T, g.N, dt_ms).reshape(n, T, g.N)
              for m, g in zip(obj["monitors"], [obj["input"], *obj["layers"]], strict=True)]
    return SpikeRun.from_dense(np.transpose(trains[-1], (1, 0, 2)),
                               [tr.sum(axis=1, dtype=np.int64) for tr in trains], dt_ms)


#: The simulation engines; both take (weights, input_spikes, threshold).
ENGINES: dict[str, Callable[..., SpikeRun]] = {
    "numpy": simulate_numpy,
    "brian2": simulate_brian2,
}


def simulate(
    weights: Sequence[np.ndarray], input_spikes: np.ndarray, threshold: float = 1.0,
    engine: str = "numpy", **kwargs,
) -> SpikeRun:
    """Run the converted network on `engine` (a key of `ENGINES`)."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine '{engine}'; choose from {', '.join(ENGINES)}")
    return ENGINES[engine](weights, input_spikes, threshold, **kwargs)


def convert_and_simulate(
    weights: Sequence[np.ndarray], X_norm: np.ndarray, X: np.ndarray, params: ConversionParams,
    rng: np.random.Generator, *, engine: str = "numpy",
) -> SpikeRun:
    """Normalise `weights` on `X_norm` (e.g. the training set), then show every row of `X` to
    the spiking network for ``params.n_steps`` steps of Poisson input drawn from `rng`.

    Parameters
    ----------
    weights : sequence of ndarray of shape (n_in, n_out)
        A bias-free ReLU network's weights (`check_convertible` gives them from an MLP).
    X_norm : ndarray of shape (n_samples, n_inputs)
        Data the normalisation scales are measured on.
    X : ndarray of shape (n_test, n_inputs), values in [0, 1]
    params : ConversionParams
    rng : numpy.random.Generator
    engine : str
        A key of `ENGINES` (select the Brian2 target first for ``brian2``).

    Returns
    -------
    SpikeRun
        ``accuracy_vs_time(run.output, y)`` gives the accuracy after every step.
    """
    normalised, _ = normalise(weights, X_norm, params.percentile, params.chain)
    spikes = poisson_input(X, params.n_steps, params.p_max, rng)
    return simulate(normalised, spikes, params.threshold, engine=engine, dt_ms=params.dt_ms)


# --- reading the output ------------------------------------------------------------------------


def predict_from_counts(counts: np.ndarray) -> np.ndarray:
    """The output neuron with the most spikes (the lowest index among ties); -1 for a sample
    whose output neurons never fired.

    Parameters
    ----------
    counts : ndarray of shape (..., n_outputs)
    """
    pred = np.argmax(counts, axis=-1)
    return np.where(counts.max(axis=-1) > 0, pred, -1)


def accuracy_vs_time(output: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Accuracy after each step from the output spike counts so far.

    Parameters
    ----------
    output : ndarray of shape (n_steps, n_samples, n_outputs), bool
    y : ndarray of shape (n_samples,) of int classes

    Returns
    -------
    ndarray of shape (n_steps,); a sample without output spikes yet counts as wrong
    """
    counts = np.cumsum(output, axis=0, dtype=np.int32)
    return (predict_from_counts(counts) == np.asarray(y)[None, :]).mean(axis=1)
