"""Neuron and synapse models as Brian2 equation strings, written as in the papers.

Parameters are referenced by name (``tau_m``, ``v_rest``, ...) and supplied through an explicit
namespace when the network runs, so one string serves every parameter set. Conductances are
dimensionless (in units of the leak conductance), as in Diehl & Cook (2015).
"""

from __future__ import annotations

# --- neurons -----------------------------------------------------------------------------------

#: Leaky integrate-and-fire neuron driven by a current (Lapicque 1907; Gerstner et al. 2014,
#: ch. 1): ``tau_m dv/dt = v_rest - v + R I``. Threshold ``v > v_thresh``, reset to ``v_reset``.
LIF_CURRENT = """
dv/dt = (v_rest - v + R * I) / tau_m : volt (unless refractory)
I : amp
"""

#: Leaky integrate-and-fire neuron with excitatory and inhibitory conductances that decay
#: exponentially (Diehl & Cook 2015, eqs. 1-2):
#: ``tau_m dv/dt = (v_rest - v) + g_e (E_exc - v) + g_i (E_inh - v)``.
LIF_CONDUCTANCE = """
dv/dt = ((v_rest - v) + ge * (E_exc - v) + gi * (E_inh - v)) / tau_m : volt (unless refractory)
dge/dt = -ge / tau_ge : 1
dgi/dt = -gi / tau_gi : 1
"""

#: Adaptive threshold (homeostasis) of Diehl & Cook 2015: every spike raises ``theta`` by
#: ``theta_plus``, which decays with ``tau_theta`` (1e7 ms: practically never); the neuron
#: fires when ``v > v_thresh + theta``. A neuron that wins too often becomes harder to fire.
ADAPTIVE_THRESHOLD = """
dtheta/dt = -theta / tau_theta : volt
"""

#: The conductance LIF with adaptive threshold: the excitatory neuron of Diehl & Cook 2015.
LIF_ADAPTIVE = LIF_CONDUCTANCE + ADAPTIVE_THRESHOLD

#: Conductance-based LIF with one excitatory conductance and a constant leak (Song, Miller &
#: Abbott 2000, Methods): ``tau_m dv/dt = V_rest - v + g_ex (E_ex - v)``.
LIF_SONG2000 = """
dv/dt = (v_rest - v + ge * (E_exc - v)) / tau_m : volt
dge/dt = -ge / tau_ge : 1
"""

# --- synapses ----------------------------------------------------------------------------------

#: Pair-based STDP with exponential traces, additive: every pre spike adds ``A_pre`` to the
#: presynaptic trace and depresses by the postsynaptic trace; every post spike adds ``A_post``
#: (negative) to the postsynaptic trace and potentiates by the presynaptic trace (Song, Miller
#: & Abbott 2000; Morrison, Diesmann & Gerstner 2008). For a pre spike at t_pre and a post spike
#: at t_post = t_pre + dt: ``dw = A_pre exp(-dt/tau_pre)`` for dt > 0,
#: ``dw = A_post exp(dt/tau_post)`` for dt < 0. Weights are clipped to [0, w_max].
STDP_ADDITIVE = {
    "model": """
        w : 1
        dapre/dt = -apre / tau_pre : 1 (event-driven)
        dapost/dt = -apost / tau_post : 1 (event-driven)
        stdp_on : 1 (shared)
    """,
    "on_pre": """
        ge_post += w
        apre += A_pre
        w = clip(w + stdp_on * apost, 0, w_max)
    """,
    "on_post": """
        apost += A_post
        w = clip(w + stdp_on * apre, 0, w_max)
    """,
}

#: The same rule with soft bounds (multiplicative; van Rossum, Bi & Turrigiano 2000):
#: potentiation scales with ``(w_max - w)``, depression with ``w``, so weights settle inside
#: the range instead of piling up at its edges.
STDP_SOFT_BOUND = {
    "model": STDP_ADDITIVE["model"],
    "on_pre": """
        ge_post += w
        apre += A_pre
        w = clip(w + stdp_on * apost * w / w_max, 0, w_max)
    """,
    "on_post": """
        apost += A_post
        w = clip(w + stdp_on * apre * (w_max - w) / w_max, 0, w_max)
    """,
}

#: The STDP rule of Diehl & Cook 2015 (from their code): traces are *set* to 1 at spikes (not
#: incremented); a pre spike depresses by ``nu_pre * post1``; a post spike potentiates by
#: ``nu_post * pre * post2`` with ``post2`` read before it is reset (a triplet-like term).
STDP_DIEHL_COOK = {
    "model": """
        w : 1
        dpre/dt = -pre / tau_pre : 1 (event-driven)
        dpost1/dt = -post1 / tau_post1 : 1 (event-driven)
        dpost2/dt = -post2 / tau_post2 : 1 (event-driven)
        stdp_on : 1 (shared)
    """,
    "on_pre": """
        ge_post += w
        pre = 1.0
        w = clip(w - stdp_on * nu_pre * post1, 0, w_max)
    """,
    "on_post": """
        w = clip(w + stdp_on * nu_post * pre * post2, 0, w_max)
        post1 = 1.0
        post2 = 1.0
    """,
}

#: The Diehl & Cook rule with its traces kept by the *neurons* instead of by every synapse.
#: Because the traces are set to 1 at a spike (not incremented), every synapse of input neuron
#: j carries the same presynaptic trace, ``exp(-(t - lastspike_j) / tau_pre)``, and every
#: synapse onto excitatory neuron k the same ``post1``/``post2``. Storing them once per neuron
#: (see `POST_TRACES`) gives the same weights as `STDP_DIEHL_COOK` (a test checks it) without
#: three exponentials per synaptic event, the bulk of the work in a 784 x 400 network.
#: The rule also keeps each postsynaptic neuron's input-weight sum ``total_in`` up to date, so
#: the network can renormalise weights without summing them (`neurosim.snn.wta`).
#: Needs: a presynaptic ``lastspike`` (any group with a refractory period, 0 ms will do) and the
#: postsynaptic variables of `POST_TRACES`.
STDP_DIEHL_COOK_NEURON_TRACES = {
    "model": """
        w : 1
        stdp_on : 1 (shared)
    """,
    "on_pre": """
        ge_post += w
        dw = clip(w - stdp_on * nu_pre * trace_dep_post, 0, w_max) - w
        w += dw
        total_in_post += dw
    """,
    "on_post": """
        pre_trace = exp(-(t - lastspike_pre) / tau_pre)
        dw = clip(w + stdp_on * nu_post * pre_trace * trace_pot_post, 0, w_max) - w
        w += dw
        total_in_post += dw
    """,
}

#: Postsynaptic variables for `STDP_DIEHL_COOK_NEURON_TRACES` (D&C's ``post1`` and ``post2``,
#: renamed: Brian2 forbids a postsynaptic variable named like a synaptic one). The traces are
#: set to 1 by the neuron's reset, which Brian2 runs after the synapses: so the synapses read
#: them *before* a coincident post spike sets them, exactly as D&C's ``post2before``.
#: `POST_TRACES_DECAY` (a ``run_regularly`` every step) decays them exactly.
POST_TRACES = """
trace_dep : 1  # D&C's post1: depression at a pre spike, tau_post1
trace_pot : 1  # D&C's post2: potentiation at a post spike, tau_post2
total_in : 1  # sum of the neuron's input weights
"""
POST_TRACES_RESET = "trace_dep = 1.0; trace_pot = 1.0"
POST_TRACES_DECAY = """
trace_dep = trace_dep * exp(-dt / tau_post1)
trace_pot = trace_pot * exp(-dt / tau_post2)
"""

STDP_RULES = {"additive": STDP_ADDITIVE, "soft_bound": STDP_SOFT_BOUND,
              "diehl_cook": STDP_DIEHL_COOK}
