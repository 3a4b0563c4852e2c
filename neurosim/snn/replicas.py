"""Many frozen copies of a trained Diehl & Cook network, simulated side by side in one Brian2
network: lesion and noise sweeps, and snapshots taken during training, scored in one pass.

A sweep asks the same question of many variants of one trained network (20% of the synapses
removed, noisy pixels, the weights after 500 samples...). Showing the test digits to each
variant in turn costs one pass per variant, each with its own ``run()`` overhead; here every
variant is a *replica*: its own Poisson inputs, excitatory layer and inhibitory partners, with
no connection to any other replica, all in one network. One pass over the digits scores them
all, and the spikes of one replica do not depend on the others (each replica's input neurons
draw their own random numbers; membranes have no noise). The replicas are slots: the weights,
thresholds and digits of every slot are set per ``run()``, so a slot can run one variant's
digits in one run and another's in the next, and a pass shows each variant only the digits it
needs (`pieces`): a lesioned copy that keeps the trained network's labels skips the labelling
digits, and a repeat pass shows only the (variant, digit) pairs that were faint.

The replicas are frozen: no STDP, no threshold adaptation (``theta`` is a constant copied from
the trained network) and no weight renormalisation, so a synapse removed stays removed (the
training network renormalises each neuron's input weights before every sample, which would
quietly scale the surviving weights up after a lesion). The neuron and synapse equations,
``present_ms`` and ``dt_ms`` are those of `neurosim.snn.wta.WTANetwork`, and faint digits are
shown again at a higher rate as there (``min_spikes``), per variant. One difference saves
time: instead of ``rest_ms`` of silence after each digit, so that membranes and conductances
relax, every digit starts from rest (they are reset), which is what the silence approximates
(``reset_each_digit=False`` keeps the silence). The inhibitory membranes are integrated as the
trained network's (``inh_method``), and a silent input draws no random number in compiled
code (`neurosim.snn.wta.INPUT_THRESHOLD`).

Targets: the runtime targets (numpy, cython) run each chunk of digits with one ``run()``;
under ``cpp_standalone`` (`neurosim.snn.backend.select`) the network is compiled once and
re-run per chunk with the rates, weights and thresholds as ``run_args``, like `WTANetwork`.
"""

from __future__ import annotations

import brian2 as b2
import numpy as np
from brian2.devices.cpp_standalone.device import CPPStandaloneDevice

from neurosim.snn.backend import building, running
from neurosim.snn.encoding import Schedule, check_intensities, counts_per_sample, poisson_rates
from neurosim.snn.models import LIF_CONDUCTANCE
from neurosim.snn.wta import (
    INPUT_THRESHOLD,
    MEMBRANE_METHOD,
    WTAParams,
    build_program,
    namespace,
    network_clock,
)

#: Environment variable through which each standalone run gets its random seed.
SEED_ENV = "NEUROSIM_REPLICA_SEED"

#: Bytes the rate table of one chunk may take (it holds every replica's inputs).
TABLE_BYTES = 64 * 2**20


def schedule(params: WTAParams, reset_each_digit: bool = True) -> Schedule:
    """The replicas' schedule: ``present_ms`` per digit, with ``rest_ms`` of silence after
    it unless every digit starts from rest."""
    return Schedule(params.present_ms, 0.0 if reset_each_digit else params.rest_ms)


def chunk_for(params: WTAParams, n_replicas: int, n_samples: int,
              reset_each_digit: bool = True, max_bytes: int = TABLE_BYTES) -> int:
    """The most digits per ``run()`` whose rate table fits in `max_bytes` (at least 1)."""
    blocks = schedule(params, reset_each_digit).blocks_per_sample
    per_sample = blocks * n_replicas * params.n_input * 8
    return int(max(1, min(n_samples, max_bytes // per_sample)))


class WTAReplicas:
    """`n_replicas` frozen copies of a `WTANetwork`'s layers in one Brian2 network: slots
    that `present` fills with any number of variants.

    Parameters
    ----------
    params : WTAParams
        The trained network's constants (the plasticity constants are unused).
    n_replicas : int
    rng : numpy.random.Generator
        In standalone mode, draws each chunk's seed (seed Brian2's runtime generator
        separately, `neurosim.snn.backend.seed`).
    chunk : int
        Digits per ``run()`` (`chunk_for` gives one that fits in memory).
    reset_each_digit : bool
        Start every digit from rest instead of after ``rest_ms`` of silence.
    """

    @building()  # Ctrl-C while connect() compiles: no warnings about unused objects
    def __init__(self, params: WTAParams, n_replicas: int, rng: np.random.Generator,
                 chunk: int = 100, reset_each_digit: bool = True):
        p = params
        if n_replicas < 1:
            raise ValueError(f"n_replicas must be >= 1, got {n_replicas}")
        self.params, self.n, self.chunk, self.rng = p, int(n_replicas), int(chunk), rng
        self.standalone = isinstance(b2.get_device(), CPPStandaloneDevice)
        self.schedule = sched = schedule(p, reset_each_digit)
        self.period_s = sched.period_ms / 1000.0
        clock = network_clock(p.dt_ms)  # its own: Brian2's defaultclock stays as it is
        n_in, n_exc, k = p.n_input, p.n_exc, self.n
        table = np.zeros((self.chunk * sched.blocks_per_sample, k * n_in))
        self.stim = b2.TimedArray(table * b2.Hz, dt=sched.block_ms * b2.ms, name="stim")
        self._values = self.stim.values  # rewritten in place between runtime runs

        # as the trained network's input: in compiled code a silent input (a dark pixel) draws
        # no random number, most of the work of k x 784 inputs per step at 28x28
        self.inp = b2.NeuronGroup(k * n_in, "rate = stim(t % chunk_T, i) : Hz",
                                  threshold=INPUT_THRESHOLD, clock=clock, name="input")
        exc_eqs = (b2.Equations(LIF_CONDUCTANCE, tau_m="tau_e", v_rest="v_rest_e",
                                E_inh="E_inh_e") + b2.Equations("theta : volt"))
        self.exc = b2.NeuronGroup(k * n_exc, exc_eqs, threshold="v > v_thresh_e + theta",
                                  reset="v = v_reset_e", refractory=p.refrac_e_ms * b2.ms,
                                  method=MEMBRANE_METHOD, clock=clock, name="exc")
        inh_eqs = b2.Equations(LIF_CONDUCTANCE, tau_m="tau_i", v_rest="v_rest_i",
                               E_inh="E_inh_i")
        self.inh = b2.NeuronGroup(k * n_exc, inh_eqs, threshold="v > v_thresh_i",
                                  reset="v = v_reset_i", refractory=p.refrac_i_ms * b2.ms,
                                  method=p.inh_method, clock=clock, name="inh")
        self.exc.v = p.v_rest_e_mv * b2.mV
        self.inh.v = p.v_rest_i_mv * b2.mV
        if reset_each_digit:
            every = {"dt": sched.period_ms * b2.ms, "when": "start"}
            self.exc.run_regularly("v = v_rest_e; ge = 0; gi = 0", name="exc_rest", **every)
            self.inh.run_regularly("v = v_rest_i; ge = 0; gi = 0", name="inh_rest", **every)

        # replica r's input a -> its excitatory neuron b, ordered (r, a, b): the weight vector
        # is the (n_replicas, n_input, n_exc) weight array raveled
        self.syn = b2.Synapses(self.inp, self.exc, "w : 1", on_pre="ge_post += w",
                               clock=clock, name="input_exc")
        syn_i, syn_j = block_pairs(k, n_in, n_exc)
        self.syn.connect(i=syn_i, j=syn_j)
        self.ei = b2.Synapses(self.exc, self.inh, on_pre="ge_post += w_ei", clock=clock,
                              name="exc_inh")
        self.ei.connect(j="i")
        ie_i, ie_j = block_pairs(k, n_exc, n_exc)
        off = ie_i != ie_j  # every other excitatory neuron of the same replica
        self.ie = b2.Synapses(self.inh, self.exc, on_pre="gi_post += w_ie", clock=clock,
                              name="inh_exc")
        self.ie.connect(i=ie_i[off], j=ie_j[off])
        self._w = np.zeros(k * n_in * n_exc)
        self._theta = np.zeros(k * n_exc)
        self.syn.w = self._w
        self.exc.theta = self._theta * b2.mV

        self.mon = b2.SpikeMonitor(self.exc, name="exc_spikes")
        self.inh_mon = b2.SpikeMonitor(self.inh, name="inh_spikes")
        self.net = b2.Network(self.inp, self.exc, self.inh, self.syn, self.ei, self.ie,
                              self.mon, self.inh_mon)
        #: inhibitory spikes of each variant for each digit of the last `present` (first
        #: showing; 0 where not shown), ndarray of shape (n_variants, n_samples)
        self.inh_counts = np.zeros((self.n, 0), dtype=np.int64)
        self.ns = {**namespace(p), "stim": self.stim,
                   "chunk_T": self.chunk * self.period_s * b2.second}
        if self.standalone:
            build_program(self.net, self.chunk * self.period_s, self.ns, seed_env=SEED_ENV)

    def present(self, X: np.ndarray, weights: np.ndarray, theta_mv: np.ndarray,
                on_chunk=None, on_repeat=None, shown: np.ndarray | None = None) -> np.ndarray:
        """Show every variant of the network its own digits; every variant's spike counts.

        A *variant* is one frozen network to score (a snapshot, a lesioned copy...); the
        network's ``n_replicas`` copies are slots that run variants side by side. The digits
        each variant is shown are cut into pieces of at most ``chunk`` digits, and every
        ``run()`` fills its slots with the next pieces (piece j of every variant, then piece
        j + 1): a variant shown fewer digits than another frees its slots for the other's
        pieces, and the repeat passes over faint digits pack only the (variant, digit) pairs
        that were faint. With as many variants as slots, every digit shown to all, the runs
        are those of slot r = variant r over consecutive chunks.

        Parameters
        ----------
        X : ndarray of shape (n_variants, n_samples, n_input)
            Intensities in [0, 1]: the same digits, each variant's version of them (noisy
            or not).
        weights : ndarray of shape (n_variants, n_input, n_exc)
            Each variant's input weights (zeros where synapses were removed).
        theta_mv : ndarray of shape (n_variants, n_exc)
            Each variant's adaptive thresholds, frozen.
        on_chunk : callable (n_done), optional
            Called after each run of the first showing with the (variant, digit) pairs shown
            so far (progress; ``shown.sum()`` in all).
        on_repeat : callable (repeat, n_pairs), optional
            Called before each repeat pass with the number of faint (variant, digit) pairs it
            shows again (progress).
        shown : ndarray of bool, shape (n_variants, n_samples), optional
            The digits each variant is shown (default: all); the others' counts are 0.

        Returns
        -------
        ndarray of shape (n_variants, n_samples, n_exc), int64
        """
        p = self.params
        X = np.asarray(X, dtype=float)
        if X.ndim != 3 or X.shape[2] != p.n_input or X.shape[0] < 1:
            raise ValueError(f"X must have shape (n_variants, n_samples, {p.n_input}), "
                             f"got {X.shape}")
        v, n = X.shape[:2]
        for r in range(v):
            check_intensities(X[r], p.n_input)
        weights = np.asarray(weights, dtype=float)
        theta_mv = np.asarray(theta_mv, dtype=float)
        if weights.shape != (v, p.n_input, p.n_exc):
            raise ValueError(f"weights must have shape ({v}, {p.n_input}, {p.n_exc}), "
                             f"got {weights.shape}")
        if theta_mv.shape != (v, p.n_exc):
            raise ValueError(f"theta_mv must have shape ({v}, {p.n_exc}), got {theta_mv.shape}")
        shown = np.ones((v, n), bool) if shown is None else np.asarray(shown, bool)
        if shown.shape != (v, n):
            raise ValueError(f"shown must have shape ({v}, {n}), got {shown.shape}")
        out = np.zeros((v, n, p.n_exc), dtype=np.int64)
        self.inh_counts = np.zeros((v, n), dtype=np.int64)
        self._show(X, weights, theta_mv, shown, p.max_rate_hz, out, self.inh_counts, on_chunk)
        if p.min_spikes > 0:  # Diehl & Cook: faint digits again, faster (as WTANetwork.present)
            for repeat in range(1, p.max_repeats + 1):
                faint = shown & (out.sum(axis=2) < p.min_spikes)  # (n_variants, n_samples)
                if not faint.any():
                    break
                if on_repeat is not None:
                    on_repeat(repeat, int(faint.sum()))
                self._show(X, weights, theta_mv, faint, p.max_rate_hz * (2 + repeat) / 2,
                           out, None, None)
        return out

    def _show(self, X, weights, theta_mv, shown, rate_hz, out, inh, on_chunk) -> None:
        """Show each variant its `shown` digits at `rate_hz` for a white pixel, slot by slot
        (`pieces`); write their excitatory counts into `out` (n_variants, n_samples, n_exc)
        and, given `inh`, their inhibitory totals into it (n_variants, n_samples)."""
        p, sched, k = self.params, self.schedule, self.n
        todo = pieces(shown, self.chunk)
        done = 0
        for start in range(0, len(todo), k):
            run = todo[start: start + k]
            rates = np.zeros((self.chunk, k, p.n_input))
            w = np.zeros((k, p.n_input, p.n_exc))
            theta = np.zeros((k, p.n_exc))
            for slot, (var, idx) in enumerate(run):
                rates[: len(idx), slot] = poisson_rates(X[var, idx], rate_hz)
                w[slot], theta[slot] = weights[var], theta_mv[var]
            self._w, self._theta = w.ravel(), theta.ravel()
            if not self.standalone:
                self.syn.w = self._w
                self.exc.theta = self._theta * b2.mV
            values = np.zeros_like(self._values)
            values[: self.chunk * sched.blocks_per_sample] = sched.table(
                rates.reshape(self.chunk, k * p.n_input))
            (i, t), (i_inh, t_inh) = self._run_chunk(values)
            counts = counts_per_sample(i, t, 0.0, self.period_s, self.chunk, k * p.n_exc)
            counts = counts.reshape(self.chunk, k, p.n_exc)
            totals = counts_per_sample(i_inh, t_inh, 0.0, self.period_s, self.chunk,
                                       k * p.n_exc).reshape(self.chunk, k, p.n_exc).sum(axis=2)
            for slot, (var, idx) in enumerate(run):
                out[var, idx] = counts[: len(idx), slot]
                if inh is not None:
                    inh[var, idx] = totals[: len(idx), slot]
                done += len(idx)
            if on_chunk is not None:
                on_chunk(done)

    def _run_chunk(self, values: np.ndarray):
        """Simulate one chunk; ((exc i, exc t), (inh i, inh t)), times in seconds from the
        chunk's start."""
        duration = self.chunk * self.period_s
        mons = (self.mon, self.inh_mon)
        if self.standalone:
            device = b2.get_device()
            device.run_environment_variables[SEED_ENV] = str(int(self.rng.integers(0, 2**31 - 1)))
            with running():
                device.run(run_args={self.stim: values * b2.Hz, self.syn.w: self._w,
                                     self.exc.theta: self._theta * b2.mV}, with_output=False)
            device.delete(code=False, data=False, run_args=True, directory=False)
            return tuple((np.asarray(m.i[:]), np.asarray(m.t[:] / b2.second)) for m in mons)
        self._values[...] = values
        before = [m.num_spikes for m in mons]
        t0 = float(self.net.t / b2.second)
        with running(self.net):
            self.net.run(duration * b2.second, namespace=self.ns)
        return tuple((np.asarray(m.i[b:]), np.asarray(m.t[b:] / b2.second) - t0)
                     for m, b in zip(mons, before, strict=True))


def pieces(shown: np.ndarray, chunk: int) -> list[tuple[int, np.ndarray]]:
    """The (variant, digit indices) pieces of at most `chunk` digits that show each variant
    its `shown` digits, in run order: piece 0 of every variant, then piece 1, ..."""
    per_variant = [np.flatnonzero(row) for row in np.asarray(shown, bool)]
    longest = max((len(idx) for idx in per_variant), default=0)
    return [(var, idx[j: j + chunk]) for j in range(0, longest, chunk)
            for var, idx in enumerate(per_variant) if j < len(idx)]


def block_pairs(n_blocks: int, n_pre: int, n_post: int) -> tuple[np.ndarray, np.ndarray]:
    """All-to-all connections inside each of `n_blocks` blocks, none between blocks.

    Returns
    -------
    i, j : ndarray of shape (n_blocks * n_pre * n_post,)
        Presynaptic and postsynaptic indices, ordered by (block, pre, post).
    """
    r, a, b = np.meshgrid(np.arange(n_blocks), np.arange(n_pre), np.arange(n_post),
                          indexing="ij")
    return (r * n_pre + a).ravel(), (r * n_post + b).ravel()
