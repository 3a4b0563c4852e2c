"""Learning rules in one home, with one small interface: ``dw = rule(w, pre, post, **constants)``.

A rule is a pure function of a synapse's weight, the activity on its two sides (rates, +-1
states or spikes of one step) and its constants; it returns the change and modifies nothing.
The caller owns what is not local to a synapse: clipping to a range, normalising a weight
vector, the sliding BCM threshold (`bcm_threshold`), STDP's traces (`stdp_step` runs a whole
step). Numpy only: the Brian2 equation strings of the spiking rules stay in
`neurosim.snn.models`, and `stdp_step` is the numpy reference they are pinned against.

==========  ===================================================  ==============================
name        change                                               used by
==========  ===================================================  ==============================
hebb        eta y x                                              snn.hebbian (hebbian_oja)
oja         eta y (x - y w)                                      snn.hebbian (hebbian_oja)
bcm         eta x y (y - theta)                                  snn.hebbian (bcm_selectivity)
hopfield    eta / N s s^T, zero diagonal (eta -epsilon: dream)   sleep.hopfield
src         +inc g(w) pre fired, -dec g(w) silent, post fired    sleep.src (numpy engine)
stdp        clip(w + post trace) at pre, + pre trace at post     the STDP_ADDITIVE reference
==========  ===================================================  ==============================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from neurosim.plasticity.rules import (
    STDPParams,
    bcm,
    bcm_threshold,
    hebb,
    hopfield,
    oja,
    src,
    src_gain,
    stdp,
    stdp_step,
)
from neurosim.validation import lookup


class Rule(Protocol):
    """A learning rule: the weight change given the activity before and after the synapses."""

    def __call__(self, w: np.ndarray, pre: np.ndarray, post: np.ndarray,
                 **constants: float) -> np.ndarray: ...


#: Every rule by name (`rule` looks one up with a clear error for an unknown name).
RULES: dict[str, Callable[..., np.ndarray]] = {
    "hebb": hebb,
    "oja": oja,
    "bcm": bcm,
    "hopfield": hopfield,
    "src": src,
    "stdp": stdp,
}


def rule(name: str) -> Rule:
    """The rule called `name` (a key of `RULES`); an unknown name raises
    `neurosim.validation.InvalidParameterError` listing the choices."""
    return lookup(RULES, name, "learning rule")


__all__ = [
    "RULES",
    "Rule",
    "STDPParams",
    "bcm",
    "bcm_threshold",
    "hebb",
    "hopfield",
    "oja",
    "rule",
    "src",
    "src_gain",
    "stdp",
    "stdp_step",
]
