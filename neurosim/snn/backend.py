"""Which Brian2 code-generation target runs a network, with a fallback that says why.

``numpy`` needs no compiler; ``cython`` compiles each model once (about 1.5 min on a 2-core
machine, cached in ``~/.cython/brian_extensions``, which Brian2 guards with file locks so parallel
runs can share it) and then runs several times faster. ``cpp_standalone`` turns the whole
network into a C++ program in a directory of its own (so parallel runs never share one); only
networks written for it can use it (`neurosim.snn.wta.WTANetwork`: no Python code inside a
run). ``auto`` picks cython when a tiny probe model compiles and runs, numpy otherwise; a
failed cpp_standalone probe falls back the same way. The chosen target and any fallback reason
go into the run's meta.json.

Importing this module changes no Brian2 preference. The preferences a run needs (Ctrl-C
reaching Python's handler, no INFO chatter) hold only inside `running`, which every network
of neurosim wraps around its ``run()`` and restores afterwards.

A C++ standalone project is compiled by `compile_standalone`, not by Brian2's
``device.build``: Brian2 runs ``make`` through ``os.system``, which ignores SIGINT in the
caller (``kill -INT`` is lost, the build finishes and the run carries on) and, when Ctrl-C
kills the compiler, reports a failure with the compiler's raw output. Here ``make`` is a child
process in a session of its own, its output goes to a log file, and a signal kills it and
propagates as ``KeyboardInterrupt``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import brian2 as b2
import numpy as np
from brian2.core.base import BrianObject
from brian2.devices.device import runtime_device

BACKENDS = ("auto", "numpy", "cython", "cpp_standalone")

#: Brian2 preferences that hold while a neurosim network runs (`running`) and why:
#: Ctrl-C (and SIGTERM) must stop the run, not just the current ``run()`` with the experiment
#: carrying on, so the signal reaches Python's handler (`neurosim.interrupts`); Brian2's INFO
#: chatter and its debug log file stay out of the way, warnings and errors still show.
RUN_PREFS = {
    "core.stop_on_keyboard_interrupt": False,
    "logging.file_log": False,
    "logging.delete_log_on_exit": True,
    "logging.console_log_level": "WARNING",
}

#: Name of the compiler's log file in a standalone project directory (`compile_standalone`).
BUILD_LOG = "build.log"

#: The Brian2 preference that fixes a cpp_standalone program's OpenMP threads (0: no OpenMP).
#: Brian2 reads it while it generates the code (inside ``run()``) and again when it writes the
#: project (``build``), so `openmp_threads` holds it over both.
OPENMP_PREF = "devices.cpp_standalone.openmp_threads"


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows: no affinity masks
        return max(1, os.cpu_count() or 1)


def resolve_threads(threads: int) -> int:
    """A thread count as asked for by a user: 0 means one per usable core (`usable_cores`)."""
    if threads < 0:
        raise ValueError(f"threads must be >= 0 (0: one per core), got {threads}")
    return usable_cores() if threads == 0 else int(threads)


@contextlib.contextmanager
def openmp_threads(threads: int) -> Iterator[None]:
    """Generate and build cpp_standalone code inside the block for `threads` OpenMP threads,
    then restore Brian2's preference (no global change outlives the block).

    ``threads=1`` builds a plain serial program (Brian2's ``openmp_threads = 0``: no OpenMP
    runtime, no barrier at every time step); 0 means one thread per usable core. The count is
    compiled into the program: every later run of it uses as many threads.
    """
    n = resolve_threads(threads)
    saved = b2.prefs[OPENMP_PREF]
    b2.prefs[OPENMP_PREF] = 0 if n == 1 else n
    try:
        yield
    finally:
        b2.prefs[OPENMP_PREF] = saved


@contextlib.contextmanager
def running(net: b2.Network | None = None) -> Iterator[None]:
    """Set `RUN_PREFS` (and Brian2's logger to WARNING) for the block, then restore them.

    When the block is left by an exception (Ctrl-C while Brian2 compiles `net`'s code, say),
    `net`'s objects count as used (`building`).
    """
    saved = {name: b2.prefs[name] for name in RUN_PREFS}
    logger = logging.getLogger("brian2")
    level = logger.level
    for name, value in RUN_PREFS.items():
        b2.prefs[name] = value
    logger.setLevel(logging.WARNING)
    try:
        yield
    except BaseException:
        if net is not None:
            _count_as_used(net.objects)
        raise
    finally:
        for name, value in saved.items():
            b2.prefs[name] = value
        logger.setLevel(level)


def _live_objects() -> list:
    return [obj for obj in (ref() for ref in BrianObject.__instances__()) if obj is not None]


def _count_as_used(objects) -> None:
    """Mark Brian2 objects as part of a network, so that deleting them warns of nothing."""
    for obj in objects:
        if getattr(obj, "_network", 0) is None:
            obj._network = 0  # any id: Brian2 only asks whether it is None


@contextlib.contextmanager
def building() -> Iterator[None]:
    """Build a network: when the block is left by an exception (Ctrl-C while Brian2 compiles
    a ``connect()`` on the Cython target, say), the objects made in it count as used, so that
    Brian2 does not warn, as each is garbage collected, that it "was never included in a
    network". Usable as a decorator (``@building()``)."""
    before = {id(obj) for obj in _live_objects()}
    try:
        yield
    except BaseException:
        _count_as_used(obj for obj in _live_objects() if id(obj) not in before)
        raise


def compile_standalone(directory: str, log_file: str | None = None) -> None:
    """Compile the C++ project that ``device.build(compile=False)`` wrote into `directory`.

    ``make`` runs as a child in its own session (a terminal's Ctrl-C reaches only Python) with
    its output appended to `log_file` (default ``directory/build.log``). A signal that stops
    Python (``KeyboardInterrupt``) kills the whole build and propagates; a failed build raises
    RuntimeError naming the log.
    """
    log_file = log_file or os.path.join(directory, BUILD_LOG)
    os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
    make = b2.prefs.devices.cpp_standalone.make_cmd_unix
    args = [*shlex.split(make), *b2.prefs.devices.cpp_standalone.extra_make_args_unix]
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(args, cwd=directory, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = proc.wait()
        except BaseException:  # Ctrl-C, SIGTERM: the compiler must not outlive the run
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    if code != 0:
        raise RuntimeError(f"C++ build failed ({make} exit code {code}); compiler output in "
                           f"{log_file}")


def build_standalone(directory: str | None = None, log_file: str | None = None) -> None:
    """Write the current cpp_standalone project (into `directory`, default the one given to
    ``set_device``) and compile it (`compile_standalone`) without running it."""
    device = b2.get_device()
    options = {**device.build_options, "run": False, "compile": False}
    if directory is not None:
        options["directory"] = directory
    if os.name == "nt":  # nmake and MSVC's environment: Brian2's own build
        device.build(**{**options, "compile": True})
        return
    device.build(**options)
    compile_standalone(device.project_dir, log_file)


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
    group = b2.NeuronGroup(1, "dv/dt = -v / (10*ms) : 1", dt=0.1 * b2.ms, name="neurosim_probe")
    net = b2.Network(group)
    with running(net):
        net.run(0.1 * b2.ms, namespace={})


#: Outcome of the cpp_standalone probe in this process: None (not probed yet), "" (it builds)
#: or the reason it does not. A sweep worker runs many experiments; the probe needs one build.
_standalone_failure: str | None = None


def _probe_standalone(directory: str, log_file: str | None = None) -> None:
    """Build and run a one-neuron C++ project in `directory` (raises if it cannot)."""
    b2.set_device("cpp_standalone", build_on_run=False, directory=directory)
    try:
        group = b2.NeuronGroup(1, "dv/dt = -v / (10*ms) : 1", dt=0.1 * b2.ms,
                               name="neurosim_probe")
        net = b2.Network(group)
        with running(net):
            net.run(0.1 * b2.ms, namespace={})
            build_standalone(directory, log_file)
            b2.get_device().run(directory=directory, with_output=False)
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
        directory per run: parallel runs must not share it. The compiler's output, the
        probe's included, goes to its ``build.log`` (`BUILD_LOG`).
    """
    if requested not in BACKENDS:
        raise ValueError(f"unknown backend '{requested}'; choose from {', '.join(BACKENDS)}")
    reset_device()
    if requested == "numpy":
        b2.prefs.codegen.target = "numpy"
        return Target("numpy", requested)
    global _standalone_failure
    reason = None
    if requested == "cpp_standalone":
        if _standalone_failure is None:
            probe_dir = tempfile.mkdtemp(prefix="neurosim-probe-")
            log = os.path.join(standalone_dir, BUILD_LOG) if standalone_dir else None
            try:
                _probe_standalone(probe_dir, log)
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


def seed(rng: np.random.Generator) -> int:
    """Seed Brian2's generators (numpy's and the compiled ones) from the run's generator."""
    value = int(rng.integers(0, 2**31 - 1))
    b2.seed(value)
    return value
