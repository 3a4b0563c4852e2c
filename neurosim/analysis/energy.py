"""Energy per inference from operation counts, under several published energy models.

An artificial network pays one multiply-accumulate (MAC) per weight it applies; a spiking one
pays one accumulate per synaptic event (a spike times its fan-out) plus the upkeep of its
neurons' state. Which of the two costs less depends on the figures assumed per operation, so
every estimate here is given under each model of `ENERGY_MODELS` and read as a band, never as
one number:

=================  ======================================================================
``fp32_45nm``      Horowitz (ISSCC 2014), 45 nm: fp32 multiply 3.7 pJ + add 0.9 pJ = MAC 4.6
                   pJ; a synaptic event is one fp32 add (0.9 pJ); 8 kB SRAM read ~10 pJ
                   (64 bit).
``int8_45nm``      Horowitz (ISSCC 2014), 45 nm: int8 multiply 0.2 pJ + add 0.03 pJ = MAC
                   0.23 pJ; a synaptic event is one int8 add (0.03 pJ); the same SRAM read
                   (an 8-bit weight costs a fraction of a 64-bit read: kept at 10 pJ, which
                   errs against the arithmetic-light arm).
``truenorth``      IBM TrueNorth (Merolla et al., Science 2014): 46 billion synaptic operations
                   per second per watt -> 21.7 pJ per synaptic event, memory included (no
                   separate memory term); MACs are not what the chip does: the MLP's MACs and
                   their memory are charged as on ``fp32_45nm``.
``loihi``          Intel Loihi (Davies et al., IEEE Micro 2018, Table 1): 23.6 pJ per synaptic
                   spike operation, 52 pJ per active neuron update, memory included; the MLP
                   as on ``fp32_45nm``.
=================  ======================================================================

The figures for TrueNorth and Loihi are the papers' chip-level numbers, quoted from them and not
re-measured; they fold memory into the per-event cost, which is why ``mem_pj`` is 0 there.
"""

from __future__ import annotations

from dataclasses import dataclass

from neurosim.validation import lookup, require


@dataclass(frozen=True)
class EnergyModel:
    """Energy per operation (pJ).

    Attributes
    ----------
    mac_pj : float
        One multiply-accumulate of the artificial network.
    event_pj : float
        One synaptic event (a spike delivered to one target).
    mem_pj : float
        One memory access of the spiking side (a weight read per event, a neuron state read
        or written); 0 where a chip's figure already includes memory.
    update_pj : float
        One neuron state update per time step (a leak); ``None``: a MAC plus two accesses.
    source : str
        Where the figures come from.
    mac_mem_pj : float or None
        One memory access of the artificial side (a weight read per MAC, an activation
        written or read); None: `mem_pj`. A chip model sets it to the digital figure, so the
        MLP it is compared with pays for its memory.
    """

    mac_pj: float
    event_pj: float
    mem_pj: float
    update_pj: float | None
    source: str
    mac_mem_pj: float | None = None


FP32 = EnergyModel(4.6, 0.9, 10.0, None, "Horowitz 2014, 45 nm, fp32")
ENERGY_MODELS: dict[str, EnergyModel] = {
    "fp32_45nm": FP32,
    "int8_45nm": EnergyModel(0.23, 0.03, 10.0, None, "Horowitz 2014, 45 nm, int8"),
    "truenorth": EnergyModel(FP32.mac_pj, 1e12 / 46e9, 0.0, 0.0,
                             "Merolla et al. 2014 (TrueNorth): 46 GSOPS/W", FP32.mem_pj),
    "loihi": EnergyModel(FP32.mac_pj, 23.6, 0.0, 52.0,
                         "Davies et al. 2018 (Loihi), Table 1", FP32.mem_pj),
}


def energy_nj(model: str | EnergyModel, *, macs: float = 0.0, events: float = 0.0,
              units: float = 0.0, updates: float = 0.0, leaky: bool = False
              ) -> dict[str, float]:
    """Energy of one inference (nJ) under `model`.

    Parameters
    ----------
    model : str or EnergyModel
        A name of `ENERGY_MODELS` or a model of one's own.
    macs : float
        Multiply-accumulates (an MLP: dense, or only those with a non-zero input).
    events : float
        Synaptic events (spikes x fan-out).
    units : float
        Artificial units whose activation is written and read once (an MLP's layer outputs).
    updates : float
        Neuron state updates (neurons x time steps) of a time-stepped spiking network.
    leaky : bool
        Whether each update also pays a leak (a MAC) — integrate-and-fire without leak doesn't.

    Returns
    -------
    dict
        ``energy_ops_nj`` (arithmetic only: MACs and events, the figure most comparisons quote),
        ``energy_memory_nj`` (one access per weight read, a read and a write of the target's
        state per event, of every neuron's state per update, of every unit's activation) and
        ``energy_total_nj`` (all of it, updates included).
    """
    m = lookup(ENERGY_MODELS, model, "energy model") if isinstance(model, str) else model
    for name, value in (("macs", macs), ("events", events), ("units", units),
                        ("updates", updates)):
        require(value >= 0, f"{name} must be >= 0, got {value}")
    ops = macs * m.mac_pj + events * m.event_pj
    mac_mem = m.mem_pj if m.mac_mem_pj is None else m.mac_mem_pj
    memory = (macs + 2 * units) * mac_mem + (3 * events + 2 * updates) * m.mem_pj
    if m.update_pj is None:
        upkeep = updates * m.mac_pj if leaky else 0.0
    else:
        upkeep = updates * m.update_pj
    return {"energy_ops_nj": ops / 1000.0, "energy_memory_nj": memory / 1000.0,
            "energy_total_nj": (ops + memory + upkeep) / 1000.0}


def energy_band(**counts: float) -> dict[str, dict[str, float]]:
    """`energy_nj` under every model of `ENERGY_MODELS` (same keyword counts)."""
    return {name: energy_nj(name, **counts) for name in ENERGY_MODELS}
