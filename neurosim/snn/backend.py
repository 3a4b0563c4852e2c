"""Which Brian2 code-generation target runs a network, with a fallback that says why.

``numpy`` needs no compiler; ``cython`` compiles each model once (about 1.5 min on a 2-core
machine, cached in ``~/.cython/brian_extensions``, which Brian2 guards with file locks so parallel
runs can share it) and then runs several times faster. ``auto`` picks cython when a tiny probe
model compiles and runs, numpy otherwise. The chosen target and any fallback reason go into the
run's meta.json.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import brian2 as b2
import numpy as np

BACKENDS = ("auto", "numpy", "cython")


@dataclass(frozen=True)
class Target:
    """The target in use and, when it is not the one asked for, why."""

    name: str
    requested: str
    fallback_reason: str | None = None

    def meta(self) -> dict[str, str | None]:
        return {"brian2_target": self.name, "brian2_requested": self.requested,
                "brian2_fallback": self.fallback_reason}


def _probe(target: str) -> None:
    """Compile and run a one-neuron model on `target` (raises if that target cannot build)."""
    b2.prefs.codegen.target = target
    group = b2.NeuronGroup(1, "dv/dt = -v / (10*ms) : 1", name="neurosim_probe")
    net = b2.Network(group)
    net.run(0.1 * b2.ms, namespace={})


def select(requested: str = "auto") -> Target:
    """Set Brian2's runtime target, falling back to numpy when compilation fails.

    Parameters
    ----------
    requested : {"auto", "numpy", "cython"}
    """
    if requested not in BACKENDS:
        raise ValueError(f"unknown backend '{requested}'; choose from {', '.join(BACKENDS)}")
    b2.set_device("runtime")
    quiet()
    if requested == "numpy":
        b2.prefs.codegen.target = "numpy"
        return Target("numpy", requested)
    try:
        _probe("cython")
    except Exception as exc:  # any build failure: missing compiler, headers, Cython...
        b2.prefs.codegen.target = "numpy"
        reason = f"cython target failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
        return Target("numpy", requested, reason)
    return Target("cython", requested)


def quiet() -> None:
    """Silence Brian2's INFO chatter and its log file; keep warnings and errors."""
    b2.prefs.logging.file_log = False
    b2.prefs.logging.delete_log_on_exit = True
    b2.prefs.logging.console_log_level = "WARNING"
    logging.getLogger("brian2").setLevel(logging.WARNING)


def seed(rng: np.random.Generator) -> int:
    """Seed Brian2's generators (numpy's and the compiled ones) from the run's generator."""
    value = int(rng.integers(0, 2**31 - 1))
    b2.seed(value)
    return value
