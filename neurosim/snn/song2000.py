"""Song, Miller & Abbott (2000): one conductance-based LIF neuron driven by many Poisson inputs
through additive STDP synapses.

Song, S., Miller, K. D. & Abbott, L. F. (2000). Competitive Hebbian learning through
spike-timing-dependent synaptic plasticity. Nat. Neurosci. 3, 919-926.

With depression slightly stronger than potentiation (A_post = -1.05 A_pre), the synapses
compete: inputs whose spikes tend to precede output spikes are strengthened, the rest weakened,
and the weight distribution splits towards the two bounds (bimodal), while the output rate
stays regulated.
"""

from __future__ import annotations

from dataclasses import dataclass

import brian2 as b2
import numpy as np

from neurosim.snn.backend import building, running
from neurosim.snn.models import LIF_SONG2000, STDP_ADDITIVE
from neurosim.snn.units import brian_namespace
from neurosim.validation import require


@dataclass(frozen=True)
class SongParams:
    """Constants of the model (values of the paper's Fig. 1 set-up)."""

    n_inputs: int = 1000  # excitatory Poisson inputs
    input_rate_hz: float = 15.0  # rate of every input
    tau_m_ms: float = 10.0  # membrane time constant
    v_rest_mv: float = -74.0  # leak reversal potential
    v_thresh_mv: float = -54.0  # threshold
    v_reset_mv: float = -60.0  # reset
    e_exc_mv: float = 0.0  # excitatory reversal potential
    tau_ge_ms: float = 5.0  # excitatory conductance decay
    g_max: float = 0.01  # upper bound of a synaptic weight (units of the leak conductance)
    tau_pre_ms: float = 20.0  # presynaptic STDP trace
    tau_post_ms: float = 20.0  # postsynaptic STDP trace
    a_pre: float = 0.01  # potentiation per pairing, as a fraction of g_max
    depression_ratio: float = 1.05  # |A_post| / A_pre: depression slightly dominates
    dt_ms: float = 0.1  # integration step

    def __post_init__(self):
        require(self.n_inputs >= 1, f"n_inputs must be >= 1, got {self.n_inputs}")
        for name in ("input_rate_hz", "tau_m_ms", "tau_ge_ms", "g_max", "tau_pre_ms",
                     "tau_post_ms", "a_pre", "depression_ratio", "dt_ms"):
            require(getattr(self, name) > 0, f"{name} must be > 0, got {getattr(self, name)}")
        require(self.v_reset_mv < self.v_thresh_mv,
                f"v_reset_mv ({self.v_reset_mv}) must be below v_thresh_mv ({self.v_thresh_mv})")
        require(self.input_rate_hz * self.dt_ms / 1000 <= 1,
                f"input_rate_hz * dt must be <= 1 (one spike per step at most), got "
                f"{self.input_rate_hz} Hz at dt {self.dt_ms} ms")


def namespace(p: SongParams) -> dict[str, object]:
    """The Brian2 names the equations use (`neurosim.snn.units`), with the STDP amplitudes
    derived: A_pre = a_pre * g_max, A_post = -A_pre * depression_ratio * tau_pre / tau_post."""
    a_pre = p.a_pre * p.g_max
    return brian_namespace(p, rename={"e_exc": "E_exc"}, extra={
        "w_max": p.g_max, "A_pre": a_pre,
        "A_post": -a_pre * p.depression_ratio * p.tau_pre_ms / p.tau_post_ms})


class SongNetwork:
    """The built model; `run` advances it and records what the figures need."""

    @building()  # Ctrl-C while connect() compiles: no warnings about unused objects
    def __init__(self, p: SongParams, rng: np.random.Generator):
        self.params = p
        # the network's own clock: Brian2's defaultclock (shared by every network) stays as is
        self.clock = b2.Clock(dt=p.dt_ms * b2.ms, name="clock*")
        self.inp = b2.PoissonGroup(p.n_inputs, rates=p.input_rate_hz * b2.Hz,
                                   clock=self.clock, name="inputs")
        self.neuron = b2.NeuronGroup(1, LIF_SONG2000, threshold="v > v_thresh",
                                     reset="v = v_reset", method="euler", clock=self.clock,
                                     name="neuron")
        self.neuron.v = p.v_rest_mv * b2.mV
        self.syn = b2.Synapses(self.inp, self.neuron, STDP_ADDITIVE["model"],
                               on_pre=STDP_ADDITIVE["on_pre"], on_post=STDP_ADDITIVE["on_post"],
                               method="exact", clock=self.clock, name="stdp")
        self.syn.connect()
        self.syn.w = rng.uniform(0, p.g_max, p.n_inputs)
        self.syn.stdp_on = 1.0
        self.out_mon = b2.SpikeMonitor(self.neuron, name="output_spikes")
        self.in_mon = b2.SpikeMonitor(self.inp, name="input_spikes")
        self.net = b2.Network(self.inp, self.neuron, self.syn, self.out_mon, self.in_mon)
        self.ns = namespace(p)

    @property
    def weights(self) -> np.ndarray:
        """Synaptic weights in units of g_max, shape (n_inputs,)."""
        return np.asarray(self.syn.w[:]) / self.params.g_max

    def run(self, seconds: float, record_inputs: bool) -> None:
        self.in_mon.active = record_inputs
        with running(self.net):
            self.net.run(seconds * b2.second, namespace=self.ns)
