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

from neurosim.snn.models import LIF_SONG2000, STDP_ADDITIVE


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


def namespace(p: SongParams) -> dict[str, object]:
    ms, mV = b2.ms, b2.mV
    a_pre = p.a_pre * p.g_max
    return {"tau_m": p.tau_m_ms * ms, "v_rest": p.v_rest_mv * mV, "v_thresh": p.v_thresh_mv * mV,
            "v_reset": p.v_reset_mv * mV, "E_exc": p.e_exc_mv * mV, "tau_ge": p.tau_ge_ms * ms,
            "tau_pre": p.tau_pre_ms * ms, "tau_post": p.tau_post_ms * ms, "w_max": p.g_max,
            "A_pre": a_pre, "A_post": -a_pre * p.depression_ratio * p.tau_pre_ms / p.tau_post_ms}


class SongNetwork:
    """The built model; `run` advances it and records what the figures need."""

    def __init__(self, p: SongParams, rng: np.random.Generator):
        self.params = p
        b2.defaultclock.dt = p.dt_ms * b2.ms
        self.inp = b2.PoissonGroup(p.n_inputs, rates=p.input_rate_hz * b2.Hz, name="inputs")
        self.neuron = b2.NeuronGroup(1, LIF_SONG2000, threshold="v > v_thresh",
                                     reset="v = v_reset", method="euler", name="neuron")
        self.neuron.v = p.v_rest_mv * b2.mV
        self.syn = b2.Synapses(self.inp, self.neuron, STDP_ADDITIVE["model"],
                               on_pre=STDP_ADDITIVE["on_pre"], on_post=STDP_ADDITIVE["on_post"],
                               method="exact", name="stdp")
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
        self.net.run(seconds * b2.second, namespace=self.ns)
