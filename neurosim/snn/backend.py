"""Which Brian2 code-generation target runs a network, with a fallback that says why.

``numpy`` needs no compiler; ``cython`` compiles each model once (about 1.5 min on a 2-core
machine, cached in ``~/.cython/brian_extensions``, which Brian2 guards with file locks so parallel
runs can share it) and then runs several times faster. ``cpp_standalone`` turns the whole
network into a C++ program in a directory of its own (so parallel runs never share one); only
networks written for it can use it (`neurosim.snn.wta.WTANetwork`: no Python code inside a
run). ``auto`` picks cython when a tiny probe model compiles and runs, numpy otherwise; a
failed cpp_standalone probe falls back the same way. The chosen target and any fallback reason
go into the run's meta.json.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass

import brian2 as b2
import numpy as np
from brian2.devices.device import runtime_device

BACKENDS = ("auto", "numpy", "cython", "cpp_standalone")

# Ctrl-C (and SIGTERM) must stop the run, not just the current run() with the experiment
# carrying on: let the signal reach Python's handler (neurosim.interrupts), as outside Brian2.
b2.prefs.core.stop_on_keyboard_interrupt = False


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


#: Outcome of the cpp_standalone probe in this process: None (not probed yet), "" (it builds)
#: or the reason it does not. A sweep worker runs many experiments; the probe needs one build.
_standalone_failure: str | None = None


def _probe_standalone(directory: str) -> None:
    """Build and run a one-neuron C++ project in `directory` (raises if it cannot)."""
    b2.set_device("cpp_standalone", build_on_run=False, directory=directory)
    try:
        group = b2.NeuronGroup(1, "dv/dt = -v / (10*ms) : 1", name="neurosim_probe")
        b2.Network(group).run(0.1 * b2.ms, namespace={})
        b2.get_device().build(directory=directory, run=True, with_output=False)
    finally:
        reset_device()


def _why(target: str, exc: Exception) -> str:
    return f"{target} target failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"


def select(requested: str = "auto", standalone_dir: str | None = None) -> Target:
    """Set Brian2's target, falling back to cython, then numpy, when compilation fails.

    Parameters
    ----------
    requested : {"auto", "numpy", "cython", "cpp_standalone"}
    standalone_dir : str, optional
        Project directory for cpp_standalone (default: a new temporary directory). Use one
        directory per run: parallel runs must not share it.
    """
    if requested not in BACKENDS:
        raise ValueError(f"unknown backend '{requested}'; choose from {', '.join(BACKENDS)}")
    reset_device()
    quiet()
    if requested == "numpy":
        b2.prefs.codegen.target = "numpy"
        return Target("numpy", requested)
    global _standalone_failure
    reason = None
    if requested == "cpp_standalone":
        if _standalone_failure is None:
            probe_dir = tempfile.mkdtemp(prefix="neurosim-probe-")
            try:
                _probe_standalone(probe_dir)
                _standalone_failure = ""
            except Exception as exc:  # no compiler, make, headers...
                _standalone_failure = _why("cpp_standalone", exc)
            finally:
                shutil.rmtree(probe_dir, ignore_errors=True)
        if not _standalone_failure:
            directory = standalone_dir or tempfile.mkdtemp(prefix="neurosim-standalone-")
            b2.set_device("cpp_standalone", build_on_run=False, directory=directory)
            return Target("cpp_standalone", requested)
        reason = _standalone_failure
    try:
        _probe("cython")
    except Exception as exc:  # any build failure: missing compiler, headers, Cython...
        b2.prefs.codegen.target = "numpy"
        return Target("numpy", requested, "; ".join(filter(None, [reason, _why("cython", exc)])))
    return Target("cython", requested, reason)


def reset_device() -> None:
    """Back to Brian2's runtime device, forgetting any standalone project built so far."""
    device = b2.get_device()
    if device is not runtime_device:
        device.reinit()
    b2.set_device("runtime")


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
