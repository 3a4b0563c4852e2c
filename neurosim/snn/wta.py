"""The Diehl & Cook (2015) unsupervised network: Poisson input -> excitatory layer with STDP
and adaptive thresholds -> one-to-one inhibitory partners -> inhibition of every other
excitatory neuron (winner-take-all).

Diehl, P. U. & Cook, M. (2015). Unsupervised learning of digit recognition using
spike-timing-dependent plasticity. Front. Comput. Neurosci. 9:99.

The network is built once. A *pass* presents many samples inside one ``run()``: a TimedArray
of fixed shape (``chunk`` samples x blocks x inputs) holds the rates and is rewritten between
runs, so training, labelling and testing passes of any length reuse the same compiled code.

Two choices make it fast (docs/benchmarks.md measures them):

- STDP traces live in the neurons, not in every synapse
  (`neurosim.snn.models.STDP_DIEHL_COOK_NEURON_TRACES`: the same weights, no exponentials per
  synaptic event);
- the synapses keep each excitatory neuron's input-weight sum up to date, so the renormalisation
  before every sample is one ``run_regularly`` multiplication at the sample period, with no sum
  and no Python: the whole network also runs as a compiled C++ program (``cpp_standalone``),
  built once and re-run per chunk with new rates, weights and thresholds as ``run_args``;
- a silent input (a dark pixel, or any input during the rest after a sample) draws no random
  number in compiled code (`INPUT_THRESHOLD`);
- the compiled program flushes subnormal numbers to zero (`FLUSH_DENORMALS`): the same
  results, without the slow arithmetic on decayed conductances and traces.

Two options trade exactness for speed (default off, so every result stays as it was):
``rest="closed_form"`` skips the 150 ms of silent steps after each sample (30% of all steps)
and moves the state over them in one update per sample (`rest_updates`);
``inh_method="euler"`` integrates the inhibitory membranes with forward Euler, stable for them
(`inh_euler_factor`) though not for the excitatory ones (`MEMBRANE_METHOD`).

The standalone program can share each time step among OpenMP threads (``threads=``, set per
build by `neurosim.snn.backend.openmp_threads`). The default is one: the network's work per
step is a few microseconds, which a barrier per code object per step eats, and on a busy
machine a thread that waits for a descheduled partner stalls the whole step
(docs/benchmarks.md, ``bench_stdp``, measures 1 against 2).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import brian2 as b2
import numpy as np
from brian2.devices.cpp_standalone.device import CPPStandaloneDevice

from neurosim.snn.backend import (
    build_standalone,
    building,
    openmp_threads,
    resolve_threads,
    running,
)
from neurosim.snn.encoding import Schedule, check_intensities, counts_per_sample, poisson_rates
from neurosim.snn.models import (
    LIF_ADAPTIVE,
    LIF_CONDUCTANCE,
    POST_TRACES,
    POST_TRACES_DECAY,
    POST_TRACES_RESET,
    STDP_DIEHL_COOK_NEURON_TRACES,
)
from neurosim.snn.readout import assign_labels, predict
from neurosim.snn.units import brian_namespace
from neurosim.spikes import Spikes
from neurosim.validation import lookup, require

#: Integration of the membranes. D&C's code used forward Euler at dt = 0.5 ms, which is stable
#: only while dt * (1 + ge + gi) / tau_e < 2, i.e. a summed inhibitory conductance below 399:
#: 24 inhibitory spikes in one step at w_ie = 17. A synchronous volley in a 400-neuron layer
#: exceeds that, Euler overshoots, every neuron fires, and the network never recovers (measured
#: on 8x8 digits: 29,000 spikes per sample, then thresholds 145 mV above rest). Exponential
#: Euler solves v exactly for the conductances held over a step: the same model, always stable.
#: (The inhibitory neurons see only their partner's ge and may use forward Euler: INH_METHODS.)
MEMBRANE_METHOD = "exponential_euler"

#: Environment variable through which each standalone run gets its random seed.
SEED_ENV = "NEUROSIM_BRIAN_SEED"

#: C++ run first in the standalone program (`build_program`): flush subnormal numbers to zero
#: (the FTZ and DAZ bits of SSE's MXCSR, inherited by threads started later). Every variable
#: here decays exponentially between events, and one that passes below 2.2e-308 (an inhibitory
#: ge ~700 ms after its partner's last spike, a trace after ~14 s of silence) makes each
#: arithmetic operation on it ~100x slower: half the inhibitory state update's time (Brian2
#: compiles with -ffast-math but links without it, so the program never sets these bits).
#: No result changes: such a value only ever meets numbers > 1e-17 times larger, which absorb
#: it (a test and docs/benchmarks.md compare weights, thresholds and counts bit for bit).
FLUSH_DENORMALS = """
#if defined(__SSE__)
    __builtin_ia32_ldmxcsr(__builtin_ia32_stmxcsr() | 0x8040);
#endif
"""

#: Poisson input: a spike in a step with probability ``rate * dt``. Most inputs are silent
#: (dark pixels, and every input during the rest after a sample: ~85% of the input-steps of
#: an MNIST pass), and in C++ ``&&`` stops before the random number, so a silent input costs
#: no draw. (The numpy target still draws one for every input: its stream, and so every
#: numpy-target result, is unchanged.)
INPUT_THRESHOLD = "rate > 0*Hz and rand() < rate * dt"

#: How the silence after each sample is simulated (`WTAParams.rest`):
#: ``stepped``: ``rest_ms`` of silent input, step by step (Diehl & Cook; 30% of the steps);
#: ``closed_form``: no rest steps (the schedule's rest is 0); instead, at the start of every
#: sample, one ``run_regularly`` per group moves the state ``rest_ms`` forward with the
#: solution of the input-free equations (`rest_updates`).
REST_MODES = ("stepped", "closed_form")

#: Integration of the inhibitory membranes (`WTAParams.inh_method`): MEMBRANE_METHOD, or
#: forward ``euler``, valid only while `inh_euler_factor` < 2 (checked).
INH_METHODS = ("exponential_euler", "euler")


def inh_euler_factor(p: WTAParams) -> float:
    """``dt (1 + ge_max) / tau_i``: forward Euler of an inhibitory membrane is stable while
    this stays below 2 (and never overshoots its equilibrium below 1).

    An inhibitory neuron's only input is its excitatory partner (``w_ei`` per spike; nothing
    drives its ``gi``). The partner fires at most once per ``max(refrac_e, dt)``, so ``ge``
    peaks at the geometric sum ``w_ei / (1 - exp(-max(refrac_e, dt) / tau_ge))``: with D&C's
    values 10.4 / (1 - e^-5) = 10.47, and the factor 0.5 * 11.47 / 10 = 0.57.
    """
    gap = max(p.refrac_e_ms, p.dt_ms)
    ge_max = p.w_ei / (-math.expm1(-gap / p.tau_ge_ms))
    return p.dt_ms * (1.0 + ge_max) / p.tau_i_ms


@dataclass(frozen=True)
class WTAParams:
    """Every constant of the network; plain floats with the unit in the name.

    Defaults are the original parameters of Diehl & Cook's code for 784 MNIST inputs.
    """

    n_input: int = 784  # input neurons (one per pixel)
    n_exc: int = 100  # excitatory neurons (= inhibitory neurons)
    dt_ms: float = 0.5  # integration step
    present_ms: float = 350.0  # each sample shown for this long
    rest_ms: float = 150.0  # then silence, so membranes and traces relax
    max_rate_hz: float = 63.75  # rate of a fully-on pixel (255 / 4)
    tau_e_ms: float = 100.0  # excitatory membrane time constant
    v_rest_e_mv: float = -65.0  # excitatory resting potential
    v_reset_e_mv: float = -65.0  # excitatory reset
    v_thresh_e_mv: float = -52.0  # excitatory threshold (before theta)
    refrac_e_ms: float = 5.0  # excitatory refractory period
    tau_i_ms: float = 10.0  # inhibitory membrane time constant
    v_rest_i_mv: float = -60.0  # inhibitory resting potential
    v_reset_i_mv: float = -45.0  # inhibitory reset
    v_thresh_i_mv: float = -40.0  # inhibitory threshold
    refrac_i_ms: float = 2.0  # inhibitory refractory period
    tau_ge_ms: float = 1.0  # excitatory conductance decay
    tau_gi_ms: float = 2.0  # inhibitory conductance decay
    e_exc_mv: float = 0.0  # excitatory reversal potential
    e_inh_e_mv: float = -100.0  # inhibitory reversal potential of excitatory neurons
    e_inh_i_mv: float = -85.0  # inhibitory reversal potential of inhibitory neurons
    w_ei: float = 10.4  # excitatory -> inhibitory (one-to-one) weight
    w_ie: float = 17.0  # inhibitory -> every other excitatory weight
    theta_plus_mv: float = 0.05  # threshold increase per spike (homeostasis)
    tau_theta_ms: float = 1e7  # threshold decay (practically none)
    tau_pre_ms: float = 20.0  # presynaptic STDP trace
    tau_post1_ms: float = 20.0  # postsynaptic trace for depression
    tau_post2_ms: float = 40.0  # postsynaptic trace for potentiation
    nu_pre: float = 1e-4  # depression rate (at a pre spike, times post1)
    nu_post: float = 1e-2  # potentiation rate (at a post spike, times pre * post2)
    w_max: float = 1.0  # input weights are clipped to [0, w_max]
    w_init_max: float = 0.3  # initial input weights uniform in [0, w_init_max]
    norm_total: float = 78.0  # each neuron's input weights sum to this before every sample
    min_spikes: int = 5  # show a sample again, faster, while it draws fewer spikes (0: never)
    max_repeats: int = 8  # at most this many repeats (rates up to x5)
    rest: str = "stepped"  # rest_ms simulated step by step, or "closed_form": one jump (faster)
    inh_method: str = "exponential_euler"  # inhibitory membranes; "euler" is faster, same spikes
    freeze_theta: bool = False  # D&C's test mode: theta constant (no decay) while plasticity is
    # off; False lets it decay by tau_theta in labelling and test passes too (the digits
    # results; at 28x28 a 17,000-digit labelling and scoring pass took theta to 0.43x)

    #: which fields must be > 0 and which >= 0 (`__post_init__`)
    _POSITIVE = ("dt_ms", "present_ms", "max_rate_hz", "tau_e_ms",
                 "tau_i_ms", "tau_ge_ms", "tau_gi_ms", "tau_theta_ms", "tau_pre_ms",
                 "tau_post1_ms", "tau_post2_ms", "w_max", "norm_total")
    _NON_NEGATIVE = ("rest_ms", "refrac_e_ms", "refrac_i_ms", "w_ei", "w_ie", "theta_plus_mv",
                     "nu_pre", "nu_post", "min_spikes", "max_repeats")
    #: the time constants a step must resolve (dt_ms at most the shortest of them)
    _TAUS = ("tau_e_ms", "tau_i_ms", "tau_ge_ms", "tau_gi_ms", "tau_pre_ms", "tau_post1_ms",
             "tau_post2_ms")

    def __post_init__(self):
        for name in ("n_input", "n_exc"):
            require(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        for name in self._POSITIVE:
            value = getattr(self, name)
            require(value > 0, f"{name} must be > 0, got {value}")
        for name in self._NON_NEGATIVE:
            value = getattr(self, name)
            require(value >= 0, f"{name} must be >= 0, got {value}")
        # w_init_max = 0 would scale all-zero initial weights to sum norm_total: 0 / 0
        require(self.w_init_max > 0, f"w_init_max must be > 0, got {self.w_init_max} (each "
                f"neuron's random initial weights are scaled to sum norm_total)")
        shortest = min(self._TAUS, key=lambda name: getattr(self, name))
        require(self.dt_ms <= getattr(self, shortest),
                f"dt_ms must be at most the shortest time constant ({shortest} = "
                f"{getattr(self, shortest)}), got {self.dt_ms}")
        for name in ("present_ms", "rest_ms"):
            # relative tolerance: 350 ms / 1e9 ms is 3.5e-7 steps, 'whole' to any absolute one
            steps = getattr(self, name) / self.dt_ms
            require(abs(steps - round(steps)) <= 1e-9 * max(1.0, steps),
                    f"{name} must be a whole number of time steps (dt_ms={self.dt_ms}), "
                    f"got {getattr(self, name)}")
        lookup(dict.fromkeys(REST_MODES), self.rest, "rest mode")
        lookup(dict.fromkeys(INH_METHODS), self.inh_method, "inh_method")
        if self.inh_method == "euler":
            factor = inh_euler_factor(self)
            require(factor < 2, f"inh_method 'euler' is unstable here: dt (1 + ge_max) / tau_i "
                    f"= {factor:.3g} >= 2 (use 'exponential_euler')")
        require(self.max_rate_hz * self.dt_ms / 1000 <= 1,
                f"max_rate_hz * dt must be <= 1 (one input spike per step at most), got "
                f"{self.max_rate_hz} Hz at dt {self.dt_ms} ms")
        require(self.v_reset_e_mv < self.v_thresh_e_mv,
                f"v_reset_e_mv ({self.v_reset_e_mv}) must be below v_thresh_e_mv "
                f"({self.v_thresh_e_mv})")
        require(self.v_reset_i_mv < self.v_thresh_i_mv,
                f"v_reset_i_mv ({self.v_reset_i_mv}) must be below v_thresh_i_mv "
                f"({self.v_thresh_i_mv})")

    @property
    def schedule(self) -> Schedule:
        """What is simulated per sample: with ``rest="closed_form"`` no rest steps."""
        return Schedule(self.present_ms, self.rest_ms if self.rest == "stepped" else 0.0)


@dataclass(frozen=True)
class DigitsWTAParams(WTAParams):
    """`WTAParams` adapted to sklearn's 64-pixel digits in ON/OFF coding (docs/experiments.md,
    ``stdp_digits``, says why each value differs from Diehl & Cook's)."""

    n_input: int = 128  # 64 pixels x ON/OFF (an experiment sets it from its data)
    n_exc: int = 100  # excitatory (and inhibitory) neurons
    present_ms: float = 350.0  # each digit shown for this long
    rest_ms: float = 150.0  # then silence
    max_rate_hz: float = 160.0  # D&C: 63.75 Hz for 784 pixels; 128 ON/OFF inputs need more
    norm_total: float = 12.73  # 78 * 128 / 784: same mean weight per synapse as D&C
    min_spikes: int = 0  # D&C repeat faint samples faster (5); no digit is faint here


def network_clock(dt_ms: float, prefix: str = "") -> b2.Clock:
    """A clock of step `dt_ms` for one network's objects (instead of setting Brian2's global
    ``defaultclock.dt``, which would retime every network built before)."""
    return b2.Clock(dt=dt_ms * b2.ms, name=prefix + "clock*")


def namespace(p: WTAParams) -> dict[str, object]:
    """The Brian2 names the equations use, with units (`neurosim.snn.units`), and the two
    conductance integrals of `rest_updates`."""
    # ge decays by exp(-dt/tau) per step and each step's update holds it constant, so over
    # a silence the steps add up ge * dt / (1 - exp(-dt/tau)) (1.27 ge tau at dt = tau / 2)
    area = {f"rest_{g}_area": p.dt_ms / -math.expm1(-p.dt_ms / tau) * b2.ms
            for g, tau in (("ge", p.tau_ge_ms), ("gi", p.tau_gi_ms))}
    return brian_namespace(p, rename={"e_exc": "E_exc", "e_inh_e": "E_inh_e",
                                      "e_inh_i": "E_inh_i"}, extra=area)


#: The threshold's decay in `LIF_ADAPTIVE` (``freeze_theta`` gates it with ``plastic``).
THETA_DECAY = "dtheta/dt = -theta / tau_theta"


def rest_updates(group: str, freeze_theta: bool = False) -> str:
    """Brian2 code that moves one group's state over ``rest`` (= ``rest_ms``) of silent input
    in one go: `group` is ``"exc"``, ``"inh"`` or ``"input"``.

    Without input, every variable decays exponentially towards its resting value, exactly,
    except the membrane in the few ms while the residual conductances still act. Those
    (tau_ge = 1 ms, tau_gi = 2 ms, against tau_e = 100 ms) act first, as kicks towards their
    reversal potentials with the leak neglected, each with its stepped integral
    (`namespace`); then the membrane relaxes towards rest: ``v_rest + (v - v_rest)
    exp(-rest/tau)``. (22% of an excitatory deviation remains after 150 ms; the inhibitory
    one, tau_i = 10 ms, is gone.) The conductances and D&C's postsynaptic traces decay by
    exp(-rest/tau), theta by exp(-rest/tau_theta) (not while plasticity is off, with
    `freeze_theta`), and every ``lastspike`` moves ``rest``
    back: the time since a neuron's last spike grows by the rest, which is what the
    presynaptic STDP trace (``exp(-(t - lastspike_pre)/tau_pre)``) and refractoriness read.

    Not reproduced: a spike in the first steps of a stepped rest (a membrane just below
    threshold and still driven), and the kicks of a neuron still refractory when the rest
    starts (its membrane is clamped while they act in stepped time). tests/test_snn_wta_speed.py
    measures the difference against stepped rest.
    """
    kick = """
        v = E_exc + (v - E_exc) * exp(-ge * rest_ge_area / {tau})
        v = {E_inh} + (v - {E_inh}) * exp(-gi * rest_gi_area / {tau})
        v = {v_rest} + (v - {v_rest}) * exp(-rest / {tau})
        ge = ge * exp(-rest / tau_ge)
        gi = gi * exp(-rest / tau_gi)
        lastspike = lastspike - rest
    """
    if group == "exc":
        gate = "plastic * " if freeze_theta else ""
        return kick.format(tau="tau_e", E_inh="E_inh_e", v_rest="v_rest_e") + f"""
        theta = theta * exp(-{gate}rest / tau_theta)
        trace_dep = trace_dep * exp(-rest / tau_post1)
        trace_pot = trace_pot * exp(-rest / tau_post2)
        """
    if group == "inh":
        return kick.format(tau="tau_i", E_inh="E_inh_i", v_rest="v_rest_i")
    return lookup({"input": "lastspike = lastspike - rest"}, group, "group")


def build_layers(p: WTAParams, extra_exc: str = "", extra_reset: str = "", prefix: str = "",
                 clock: b2.Clock | None = None):
    """The excitatory layer (adaptive threshold), its inhibitory partners and the lateral
    inhibition between them: returns (exc, inh, exc_inh, inh_exc).

    Each excitatory neuron excites its own inhibitory partner (one-to-one, ``w_ei``), which
    inhibits every *other* excitatory neuron (``w_ie``): winner-take-all. Every object runs on
    `clock` (default: a new clock of step ``p.dt_ms``; Brian2's ``defaultclock`` is never
    touched).
    """
    clock = network_clock(p.dt_ms, prefix) if clock is None else clock
    model = LIF_ADAPTIVE
    if p.freeze_theta:  # D&C's test mode: no decay while plasticity is off
        assert THETA_DECAY in model
        model = model.replace(THETA_DECAY, "dtheta/dt = -plastic * theta / tau_theta")
    exc_eqs = (b2.Equations(model, tau_m="tau_e", v_rest="v_rest_e", E_inh="E_inh_e")
               + b2.Equations("plastic : 1 (shared)\n" + extra_exc))
    exc = b2.NeuronGroup(p.n_exc, exc_eqs, threshold="v > v_thresh_e + theta",
                         reset="v = v_reset_e; theta += plastic * theta_plus" + extra_reset,
                         refractory=p.refrac_e_ms * b2.ms, method=MEMBRANE_METHOD,
                         clock=clock, name=prefix + "exc")
    inh_eqs = b2.Equations(LIF_CONDUCTANCE, tau_m="tau_i", v_rest="v_rest_i", E_inh="E_inh_i")
    inh = b2.NeuronGroup(p.n_exc, inh_eqs, threshold="v > v_thresh_i", reset="v = v_reset_i",
                         refractory=p.refrac_i_ms * b2.ms, method=p.inh_method,
                         clock=clock, name=prefix + "inh")
    exc.v = p.v_rest_e_mv * b2.mV
    inh.v = p.v_rest_i_mv * b2.mV
    ei = b2.Synapses(exc, inh, on_pre="ge_post += w_ei", clock=clock, name=prefix + "exc_inh")
    ei.connect(j="i")
    ie = b2.Synapses(inh, exc, on_pre="gi_post += w_ie", clock=clock, name=prefix + "inh_exc")
    ie.connect(condition="i != j")
    return exc, inh, ei, ie


def build_program(net: b2.Network, duration_s: float, namespace: dict,
                  seed_env: str = SEED_ENV, threads: int = 1,
                  flush_denormals: bool = True) -> None:
    """Compile `net` under the cpp_standalone device as a program that simulates
    `duration_s` and can be re-run (``device.run(run_args=...)``) without recompiling.

    The compiler runs as a child process that a signal kills (`neurosim.snn.backend.
    compile_standalone`), its output in the project directory's ``build.log``.

    Each run of the program seeds Brian2's generators from the environment variable
    `seed_env` (set per run through the device's ``run_environment_variables``), so runs
    repeat exactly for the same seeds (and the same `threads`: each OpenMP thread draws from a
    generator of its own, so another thread count draws other numbers).

    `threads` OpenMP threads share each time step (`neurosim.snn.backend.openmp_threads`; 1: a
    serial program, 0: one per core). `flush_denormals`: `FLUSH_DENORMALS` first (x86).
    """
    device = b2.get_device()
    if flush_denormals:
        device.insert_code("main", FLUSH_DENORMALS)
    device.insert_code("main", f"""
        {{ const char* _seed = getenv("{seed_env}");
          if (_seed) for (size_t _k = 0; _k < brian::_random_generators.size(); _k++)
              brian::_random_generators[_k].seed(strtoul(_seed, NULL, 10) + _k); }}
    """)
    with running(net), openmp_threads(threads):
        net.run(duration_s * b2.second, namespace=namespace)
        build_standalone()  # the compiler's output goes to the project's build.log


class WTANetwork:
    """The built network; `present` runs passes of samples through it.

    On Brian2's runtime targets (numpy, cython) each chunk is one ``net.run()``. Under the
    ``cpp_standalone`` device (`neurosim.snn.backend.select`), the constructor compiles the
    network once as a C++ program that simulates one chunk; every chunk then re-runs that
    program with the chunk's rates and the current weights and thresholds as ``run_args``, and
    a fresh random seed drawn from `rng`. Standalone chunks start from rest (membranes at their
    resting potential, conductances and traces zero), which the 150 ms pause after each sample
    approximates on the runtime targets anyway.

    Parameters
    ----------
    params : WTAParams
    rng : numpy.random.Generator
        Draws the initial weights and, in standalone mode, each chunk's seed (Brian2's runtime
        generator must be seeded separately, `neurosim.snn.backend.seed`).
    chunk : int
        Samples per ``run()``; the rate table has this many samples' rows.
    threads : int
        OpenMP threads of the standalone program (1: serial; 0: one per core); ignored on the
        runtime targets. docs/benchmarks.md (``bench_stdp``) measures 1 against 2.
    flush_denormals : bool
        The standalone program flushes subnormal numbers to zero (`FLUSH_DENORMALS`: faster,
        same results); False only to measure that.
    """

    @building()  # Ctrl-C while connect() compiles: no warnings about unused objects
    def __init__(self, params: WTAParams, rng: np.random.Generator, chunk: int = 100,
                 threads: int = 1, flush_denormals: bool = True):
        p = params
        self.params, self.chunk, self.rng = p, int(chunk), rng
        self.flush_denormals = bool(flush_denormals)
        self.threads = resolve_threads(threads)
        self.standalone = isinstance(b2.get_device(), CPPStandaloneDevice)
        sched = p.schedule
        self.period_s = sched.period_ms / 1000.0
        self._t_s = 0.0  # simulated time over all chunks
        # the network's own clock: building it must not retime networks built before it
        self.clock = network_clock(p.dt_ms)
        self.table = np.zeros((self.chunk * sched.blocks_per_sample, p.n_input))
        self.stim = b2.TimedArray(self.table * b2.Hz, dt=sched.block_ms * b2.ms, name="stim")
        # TimedArray keeps its own copy: rewrite *that* array in place between runtime runs
        self._values = self.stim.values

        # Poisson input; the table is indexed by the time since the chunk started (t_start: 0
        # in standalone mode, where every run of the program starts at 0; on the runtime
        # targets, set before each run, which lasts only as many periods as the chunk has
        # samples). refractory=0 ms gives the group `lastspike`, read by the STDP rule.
        # The compiled targets skip the random number of a silent input (`INPUT_THRESHOLD`).
        self.inp = b2.NeuronGroup(p.n_input, "rate = stim(t - t_start, i) : Hz\n"
                                  "t_start : second (shared)",
                                  threshold=INPUT_THRESHOLD, refractory=0 * b2.ms,
                                  clock=self.clock, name="input")
        self.exc, self.inh, self.ei, self.ie = build_layers(
            p, extra_exc=POST_TRACES, extra_reset="; " + POST_TRACES_RESET, clock=self.clock)
        self.exc.run_regularly(POST_TRACES_DECAY, when="groups", name="exc_trace_decay")

        rule = STDP_DIEHL_COOK_NEURON_TRACES
        self.syn = b2.Synapses(self.inp, self.exc, rule["model"], on_pre=rule["on_pre"],
                               on_post=rule["on_post"], clock=self.clock, name="input_exc")
        self.syn.connect()
        # connect() orders synapses by (pre, post): reshape to (n_input, n_exc)
        w0 = rng.uniform(0, p.w_init_max, size=(p.n_input, p.n_exc))
        self._w = (w0 * p.norm_total / w0.sum(axis=0)).ravel()
        self._theta = np.zeros(p.n_exc)
        self.syn.w = self._w
        self.exc.total_in = p.norm_total

        # Renormalise before every sample, inside the run: the synapses keep `total_in` equal
        # to the sum of each neuron's input weights, so this is one multiplication per synapse
        # per sample; then every total is the normalisation total again.
        normalise = {"dt": sched.period_ms * b2.ms, "when": "start"}
        self.syn.run_regularly("w = w * norm_total / (total_in_post + 1e-30)", order=0,
                               name="normalise_weights", **normalise)
        self.exc.run_regularly("total_in = norm_total * int(total_in > 0)", order=1,
                               name="normalise_totals", **normalise)
        if p.rest == "closed_form" and p.rest_ms > 0:
            # the previous sample's rest, before this one starts (the schedule has none)
            for group in (self.inp, self.exc, self.inh):
                group.run_regularly(rest_updates(group.name, p.freeze_theta), order=-1,
                                    name=f"{group.name}_rest", **normalise)

        self.exc_mon = b2.SpikeMonitor(self.exc, name="exc_spikes")
        self.inp_mon = b2.SpikeMonitor(self.inp, name="input_spikes")
        self.inp_mon.active = self.standalone  # runtime: switched on only when asked for
        self.net = b2.Network(self.inp, self.exc, self.inh, self.syn, self.ei, self.ie,
                              self.exc_mon, self.inp_mon)
        self.ns = {**namespace(p), "stim": self.stim}
        #: spikes of the first chunk of the last pass with ``record_input=True``, as
        #: {"exc": Spikes, "input": Spikes}, times from the start of that chunk in seconds
        self.recorded: dict[str, Spikes] | None = None
        if self.standalone:
            self._build_standalone()

    def _build_standalone(self) -> None:
        build_program(self.net, self.chunk * self.period_s, self.ns, threads=self.threads,
                      flush_denormals=self.flush_denormals)

    @property
    def weights(self) -> np.ndarray:
        """Input weights, ndarray of shape (n_input, n_exc)."""
        w = self._w if self.standalone else self.syn.w[:]
        return np.asarray(w).reshape(self.params.n_input, self.params.n_exc)

    @property
    def t_s(self) -> float:
        """Simulated time so far, in seconds."""
        return self._t_s

    @property
    def theta_mv(self) -> np.ndarray:
        theta = self._theta if self.standalone else self.exc.theta[:] / b2.mV
        return np.asarray(theta, dtype=float)

    def present(self, X: np.ndarray, plastic: bool, record_input: bool = False,
                on_chunk=None, learning_rate_scale: float = 1.0) -> np.ndarray:
        """Show every row of `X` (intensities in [0, 1]) and return spike counts.

        With ``min_spikes > 0``, samples that drew fewer excitatory spikes are shown again at a
        higher rate, as in Diehl & Cook's code (input intensity 2, then 3, 4, ...: rates x1.5,
        x2, ...), up to ``max_repeats`` times; their counts come from the last showing. The
        original repeats a sample at once; here a chunk's faint samples open the next
        ``run()`` (`interleaved_runs`), at most ``chunk`` samples later. (Until issue 18 they
        followed the whole pass: a burst of up to thousands of boosted presentations at the
        end of training, with STDP on, that cost KMNIST validation 0.722 -> 0.684.)

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_input)
        plastic : bool
            STDP and threshold adaptation on (training) or off (labelling, testing).
        record_input : bool
            Keep the spikes of the first chunk in `recorded` (for a raster figure).
        on_chunk : callable (n_done, counts_so_far), optional
            Called after each chunk of the first showing.
        learning_rate_scale : float
            Multiplies both STDP learning rates while ``plastic`` (for annealing).

        Returns
        -------
        ndarray of shape (n_samples, n_exc), int64
        """
        p = self.params
        X = check_intensities(X, p.n_input)
        self._plastic = 1.0 if plastic else 0.0
        self._stdp_on = float(learning_rate_scale) if plastic else 0.0
        if not self.standalone:
            self.syn.stdp_on = self._stdp_on
            self.exc.plastic = self._plastic
        first = [True]

        def show(items: list[tuple[int, int]]) -> np.ndarray:
            """One run: sample i at repeat level r (rates x (2 + r) / 2 for r >= 1)."""
            rates = np.stack([poisson_rates(X[i], p.max_rate_hz * (1.0 if r == 0
                                                                   else (2 + r) / 2))
                              for i, r in items])
            counts = self._show(rates, record_input and first[0])
            first[0] = False
            return counts

        return interleaved_runs(len(X), self.chunk, p.n_exc, show,
                                p.min_spikes, p.max_repeats, on_chunk)

    def _show(self, rates: np.ndarray, record_input: bool) -> np.ndarray:
        """Present the rows of `rates` (Hz; at most ``chunk``) in one run; spike counts per
        sample."""
        p, sched = self.params, self.params.schedule
        values = np.zeros_like(self._values)
        values[: len(rates) * sched.blocks_per_sample] = sched.table(rates)
        i, t = self._run_chunk(values, record_input, len(rates))
        return counts_per_sample(i, t, 0.0, self.period_s, len(rates), p.n_exc)

    def _run_chunk(self, values: np.ndarray, record_input: bool,
                   n_samples: int) -> tuple[np.ndarray, np.ndarray]:
        """Simulate one chunk of `n_samples` samples with the rate table `values`; excitatory
        spikes (i, t in seconds from the chunk's start). The compiled standalone program always
        simulates a whole chunk (its length is compiled in); the runtime targets stop after
        the last sample."""
        duration = self.chunk * self.period_s
        if self.standalone:
            device = b2.get_device()
            device.run_environment_variables[SEED_ENV] = str(int(self.rng.integers(0, 2**31 - 1)))
            with running():
                device.run(run_args={self.stim: values * b2.Hz, self.syn.w: self._w,
                                     self.exc.theta: self._theta * b2.mV,
                                     self.exc.total_in: self._w.reshape(
                                         self.params.n_input, -1).sum(axis=0),
                                     self.syn.stdp_on: self._stdp_on,
                                     self.exc.plastic: self._plastic},
                           with_output=False)
            # every run writes its arguments to new files: remove this run's
            device.delete(code=False, data=False, run_args=True, directory=False)
            self._w = np.asarray(self.syn.w[:]).copy()
            self._theta = np.asarray(self.exc.theta[:] / b2.mV).copy()
            i, t = np.asarray(self.exc_mon.i[:]), np.asarray(self.exc_mon.t[:] / b2.second)
            if record_input:  # (always recorded by the program; read back only when asked)
                inp = (np.asarray(self.inp_mon.i[:]), np.asarray(self.inp_mon.t[:] / b2.second))
        else:
            duration = n_samples * self.period_s
            self._values[...] = values
            self.inp_mon.active = record_input
            n_exc, n_inp = self.exc_mon.num_spikes, self.inp_mon.num_spikes
            t0 = float(self.net.t / b2.second)
            self.inp.t_start = self.net.t
            with running(self.net):
                self.net.run(duration * b2.second, namespace=self.ns)
            i = np.asarray(self.exc_mon.i[n_exc:])
            t = np.asarray(self.exc_mon.t[n_exc:] / b2.second) - t0
            inp = (np.asarray(self.inp_mon.i[n_inp:]),
                   np.asarray(self.inp_mon.t[n_inp:] / b2.second) - t0)
            self.inp_mon.active = False
        if record_input:
            self.recorded = {"exc": Spikes(i, t, duration, self.params.n_exc),
                             "input": Spikes(*inp, duration, self.params.n_input)}
        self._t_s += duration
        return i, t


def interleaved_runs(n: int, chunk: int, n_exc: int, show, min_spikes: int, max_repeats: int,
                     on_chunk=None) -> np.ndarray:
    """Show samples 0..n-1 in runs of at most `chunk`, each faint sample again in the next run.

    Every run opens with the repeats still pending (a sample that drew fewer than
    `min_spikes` spikes, at the next repeat level, up to `max_repeats`), then takes new
    samples up to the next multiple of `chunk`, so that `on_chunk(n_done, counts_so_far)` is
    called where it always was: after every `chunk` new samples (a run may then be short).
    With ``min_spikes = 0`` the runs are the plain chunks.

    Parameters
    ----------
    show : callable (list of (sample, repeat level)) -> ndarray (len, n_exc)
        Runs one chunk and returns its spike counts.

    Returns
    -------
    ndarray of shape (n, n_exc), int64: each sample's counts from its last showing.
    """
    out = np.zeros((n, n_exc), dtype=np.int64)
    pending: list[tuple[int, int]] = []
    pos, boundary = 0, min(chunk, n)
    while pos < n or pending:
        items, pending = pending[:chunk], pending[chunk:]
        take = max(0, min(chunk - len(items), boundary - pos))
        items += [(i, 0) for i in range(pos, pos + take)]
        pos += take
        counts = show(items)
        for (i, level), c in zip(items, counts, strict=True):
            out[i] = c
            if min_spikes > 0 and c.sum() < min_spikes and level < max_repeats:
                pending.append((i, level + 1))
        if take and pos == boundary:
            if on_chunk is not None:
                on_chunk(pos, out[:pos])
            boundary = min(boundary + chunk, n)
    return out


# --- the procedure: unsupervised training, labelling, classification ---------------------------


@dataclass
class TrainingRecord:
    """What `fit` measured.

    Attributes
    ----------
    counts : ndarray of shape (n_presented, n_exc), int64
        Spike counts of every training presentation, in the order shown.
    labels : ndarray of shape (n_presented,)
        The label of each presentation (never used for learning; for the running accuracy).
    epochs_done : int
        Completed passes.
    """

    counts: np.ndarray
    labels: np.ndarray
    epochs_done: int


def fit(net: WTANetwork, X: np.ndarray, y: np.ndarray, *, epochs: int,
        rng: np.random.Generator, lr_decay: float = 1.0,
        on_chunk: Callable[[np.ndarray, np.ndarray], None] | None = None,
        after_epoch: Callable[[int, TrainingRecord], None] | None = None) -> TrainingRecord:
    """Unsupervised STDP training: `epochs` passes over `X` in a new random order each.

    Parameters
    ----------
    net : WTANetwork
    X : ndarray of shape (n_samples, n_input), intensities in [0, 1]
    y : ndarray of shape (n_samples,)
        Labels, carried along for the record only: learning never sees them.
    epochs : int
    rng : numpy.random.Generator
        Draws the presentation order.
    lr_decay : float
        Learning rates x ``lr_decay ** epoch`` (annealing; 1: constant).
    on_chunk : callable (counts_so_far, labels_so_far), optional
        Called after every chunk of samples (progress, partial curves).
    after_epoch : callable (epoch, record), optional
        Called after every epoch (1-based), e.g. to label and score the network so far.
    """
    finished: list[np.ndarray] = []
    order: list[np.ndarray] = []
    for e in range(epochs):
        perm = rng.permutation(len(X))
        order.append(perm)
        seen = np.concatenate(order)

        def chunk_done(n_done: int, counts: np.ndarray, seen=seen) -> None:
            if on_chunk is not None:
                so_far = np.concatenate([*finished, counts])
                on_chunk(so_far, y[seen[: len(so_far)]])

        finished.append(net.present(X[perm], plastic=True, learning_rate_scale=lr_decay ** e,
                                    on_chunk=chunk_done))
        if after_epoch is not None:
            after_epoch(e + 1, TrainingRecord(np.concatenate(finished), y[seen], e + 1))
    seen = np.concatenate(order) if order else np.zeros(0, np.int64)
    counts = np.concatenate(finished) if finished else np.zeros((0, net.params.n_exc), np.int64)
    return TrainingRecord(counts, y[seen], epochs)


def label_neurons(net: WTANetwork, X: np.ndarray, y: np.ndarray, n_classes: int,
                  on_chunk=None) -> tuple[np.ndarray, np.ndarray]:
    """Present labelled samples with plasticity off and give every excitatory neuron the class
    it answers most (`neurosim.snn.readout.assign_labels`); returns (assignments, counts).
    `on_chunk` as `WTANetwork.present` (progress)."""
    counts = net.present(X, plastic=False, on_chunk=on_chunk)
    return assign_labels(counts, y, n_classes), counts


def classify(net: WTANetwork, X: np.ndarray, assignments: np.ndarray, n_classes: int,
             record_input: bool = False, on_chunk=None) -> tuple[np.ndarray, np.ndarray]:
    """Present `X` with plasticity off; returns (predicted classes, -1 where no assigned
    neuron fired; spike counts). `on_chunk` as `WTANetwork.present` (progress)."""
    counts = net.present(X, plastic=False, record_input=record_input, on_chunk=on_chunk)
    return predict(counts, assignments, n_classes), counts


def check_finite(net: WTANetwork) -> bool:
    """True while the weights and thresholds are finite numbers (else the run diverged)."""
    return bool(np.isfinite(net.weights).all() and np.isfinite(net.theta_mv).all())
