"""One run: `run_one` turns a `RunSpec` into a run directory and an `Outcome`.

Every problem a user can cause (`USER_ERRORS`) ends in one line and exit status 2 with no run
directory left behind, nor a folder made for it. A diverged run exits 3; an interrupted one
(Ctrl-C, SIGTERM) 128 + the signal (130, 143); both keep what they measured. Whatever moment a
signal arrives, the status in meta.json and the exit status agree (`neurosim.runner.signals`).
"""

from __future__ import annotations

import os
import shutil
import signal
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from neurosim import experiments
from neurosim.data import DataError
from neurosim.runner import signals
from neurosim.runner.config import ConfigError, to_dict
from neurosim.runner.contract import Context, Result, ResultError
from neurosim.runner.rundir import OutputError, RunDirectory, make_run_dir, write_result

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_DIVERGED = 0, 1, 2, 3

#: Errors a user causes; they end in one line and exit 2.
USER_ERRORS = (ConfigError, DataError)


@dataclass(frozen=True)
class RunSpec:
    """One run to do: the experiment, its built config and where its folder goes."""

    experiment: str
    cfg: Any
    seed: int
    parent: Path  # the run directory is created inside it (or is it, with exact_dir)
    quick: bool
    argv: list[str]
    label: dict[str, Any] = field(default_factory=dict)  # the swept values, for summary.csv
    exact_dir: bool = False  # True: `parent` itself is the run directory (sweeps)
    preset: str | None = None  # the experiment's PRESETS entry under the values (plan.py)

    def payload(self) -> dict[str, Any]:
        out = {"experiment": self.experiment, "seed": self.seed, "quick": self.quick,
               "config": to_dict(self.cfg)}
        return out if self.preset is None else {**out, "preset": self.preset}


@dataclass(frozen=True)
class Outcome:
    """How a run ended, as the caller needs it (the run directory holds everything)."""

    run_dir: str
    status: str
    metrics: dict[str, Any]
    label: dict[str, Any] = field(default_factory=dict)
    signal: int | None = None  # the signal that interrupted it
    error: str | None = None  # FAILED: the exception
    figures: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int:
        return exit_code(self.status, self.signal)


def exit_code(status: str, signum: int | None = None) -> int:
    """The process exit status that goes with a run status."""
    if status == "INTERRUPTED":
        return signals.exit_code(signum or signal.SIGINT)
    return {"COMPLETED": EXIT_OK, "DIVERGED": EXIT_DIVERGED}.get(status, EXIT_FAILED)


def check_writable(path: Path) -> None:
    """Fail early, with one line, when runs could not be written under `path`; creates
    nothing (the run's folder is made when it starts, with its parents)."""
    if not str(path).strip():
        raise ConfigError("--out must name a directory, got an empty string")
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"--out {path}: {probe} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {path}: cannot write to {probe}")


def _missing_parents(path: Path) -> list[Path]:
    """The folders above `path` (and it) that do not exist yet, deepest first."""
    out = []
    for p in (path, *path.parents):
        if p.exists():
            break
        out.append(p)
    return out


def _create_dir(spec: RunSpec) -> Path:
    try:
        if spec.exact_dir:
            spec.parent.mkdir(parents=True)
            return spec.parent
        return make_run_dir(spec.parent, spec.payload())
    except OSError as exc:
        raise OutputError(f"cannot create a run folder in {spec.parent} "
                          f"({exc.strerror or exc})") from None


def _remove(path: Path, made: list[Path]) -> None:
    """Remove a run folder and the parents made for it that are empty now."""
    shutil.rmtree(path, ignore_errors=True)
    for p in made:
        try:
            p.rmdir()
        except OSError:  # not empty (another run), or gone
            break


def run_one(spec: RunSpec, say: Callable[[str], None] = print,
            on_work: Callable[[], None] | None = None) -> Outcome:
    """Run one experiment into a fresh run directory and return how it ended.

    A user error raised from inside the experiment (e.g. a missing MNIST file) removes the
    directory again, and the folders made for it, and is re-raised. Ctrl-C or SIGTERM
    (`signals.Stopped`) during the computation keeps what the experiment put into
    ``ctx.partial``: INTERRUPTED. Any other exception keeps the partial result too, marks the
    run FAILED and propagates. Once the computation has ended, signals are held
    (`signals.hold`) until the caller is done, so the status written is the status the
    process exits with. BLAS runs on one thread, alone or in a sweep: a matrix product's
    rounding depends on how many threads share it, and a run's metrics must not depend on how
    it was launched.

    Parameters
    ----------
    spec : RunSpec
    say : callable
        Receives one line, ``run directory: PATH``, once the folder exists.
    on_work : callable, optional
        Called when the experiment starts its work (`Context.on_work`).
    """
    module = experiments.get(spec.experiment)
    rd: RunDirectory | None = None
    stop: int | None = None
    result: Result | None = None
    failure: BaseException | None = None
    caught: list[warnings.WarningMessage] = []
    made = _missing_parents(spec.parent.parent if spec.exact_dir else spec.parent)
    try:  # from the folder's creation on: a signal between two steps is a stop too
        with signals.deferred() as early:  # a folder is made whole, with meta.json, or not
            path = _create_dir(spec)
            ctx = Context(seed=spec.seed, rng=np.random.default_rng(spec.seed),
                          quick=spec.quick, scratch_dir=path / ".scratch", on_work=on_work)
            rd = RunDirectory(path, spec.experiment, spec.argv)
            rd.write_config(spec.payload())
        stop = early[0] if early else None
        say(f"run directory: {path}")
        if stop is None:
            with warnings.catch_warnings(record=True) as caught, \
                    threadpool_limits(limits=1):
                _record_warnings()
                result = module.run(spec.cfg, ctx)
    except USER_ERRORS:
        if rd is not None:
            with signals.deferred():
                _remove(path, made)
        raise
    except KeyboardInterrupt as exc:
        if rd is None:  # before the folder existed: nothing to mark
            raise
        stop = signals.signal_of(exc)
    except Exception as exc:
        behind = signals.interrupt_behind(exc)  # e.g. Ctrl-C inside a C extension's import
        if behind is not None:
            if rd is None:
                raise behind from None
            stop = signals.signal_of(behind)
        elif rd is None:
            raise
        else:
            failure = exc
    finally:
        signals.hold()  # from here on the status written is the truth: signals wait
    return _finish(module, rd, ctx, result, stop, failure, caught, spec.label)


def _record_warnings() -> None:
    """Inside ``catch_warnings(record=True)``: keep each warning about the run once (they go
    to meta.json and one line each at the end, never raw to the terminal); libraries'
    deprecation notices are not about the run and are dropped."""
    warnings.simplefilter("default")
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.simplefilter("ignore", PendingDeprecationWarning)


def _deprecation(category: type[Warning]) -> bool:
    """A library's deprecation notice, even one that is a UserWarning too (pyparsing's) and
    got past the filters because a library imported mid-run put a filter of its own in front
    (elephant.spade: 'once' for every UserWarning)."""
    return issubclass(category, DeprecationWarning | PendingDeprecationWarning)


def _finish(module: Any, rd: RunDirectory, ctx: Context, result: Result | None,
            stop: int | None, failure: BaseException | None,
            caught: list[warnings.WarningMessage], label: dict[str, Any]) -> Outcome:
    shutil.rmtree(ctx.scratch_dir, ignore_errors=True)
    if result is None or not isinstance(result, Result):
        if result is not None and failure is None:
            failure = ResultError(f"run() returned {type(result).__name__}, not a Result")
        result = ctx.partial
    if failure is not None:
        status = "FAILED"
    elif stop is not None:
        status = "INTERRUPTED"
    else:
        status = result.status
    if status == "INTERRUPTED" and stop is None:  # the experiment caught the signal itself
        stop = signals.last_signal()
    extra: dict[str, Any] = dict(result.meta)
    problems = write_result(rd.path, result)
    figures: list[str] = []
    if status != "FAILED":
        try:
            with warnings.catch_warnings(record=True) as fig_warnings:
                _record_warnings()
                figures = [str(p) for p in rd.write_figures(module.figures(result))]
            caught = [*caught, *fig_warnings]
        except OSError as exc:  # the folder cannot be written: an output problem
            problems.append(f"figures: {type(exc).__name__}: {exc}")
        except Exception as exc:  # a partial result may lack what a figure needs
            if status == "COMPLETED":
                problems.append(f"figures: {type(exc).__name__}: {exc}")
    notes = list(dict.fromkeys(
        [*result.warnings, *(f"{w.category.__name__}: {w.message}" for w in caught
                             if not _deprecation(w.category))]))
    if notes:
        extra["warnings"] = notes
    if problems:
        extra["write_problems"] = problems
        if status == "COMPLETED":
            status = "FAILED"
    if status != "COMPLETED":
        extra["partial"] = True
    if stop is not None and status == "INTERRUPTED":
        extra["signal"] = signal.Signals(stop).name
    if failure is not None:
        extra["error"] = f"{type(failure).__name__}: {failure}"
        extra["traceback"] = "".join(traceback.format_exception(failure))
    elif problems:
        extra["error"] = "; ".join(problems)
    rd.finish(status, **extra)  # raises OutputError when even meta.json cannot be written
    if failure is not None:
        raise failure
    return Outcome(str(rd.path), status, result.metrics, label,
                   stop if status == "INTERRUPTED" else None, extra.get("error"),
                   tuple(figures), tuple(notes))


# --- what the terminal shows about one run -----------------------------------------------------


def headline(module: Any, metrics: dict[str, Any]) -> list[tuple[str, Any]]:
    """The metrics shown at the end of a run: the experiment's ``HEADLINE`` keys (dotted for
    arms) where it declares them, else every top-level number."""
    keys = getattr(module, "HEADLINE", None)
    if keys is None:
        return [(k, v) for k, v in metrics.items()
                if isinstance(v, int | float) and not isinstance(v, bool)][:10]
    rows = []
    for key in keys:
        value: Any = metrics
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None:
            rows.append((key, value))
    return rows


def fmt(value: Any) -> str:
    """A metric as the terminal shows it: four significant digits for floats."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def summary_lines(outcome: Outcome, module: Any) -> list[str]:
    """The end-of-run lines: status and folder, headline metrics, figures, notes."""
    rows = headline(module, outcome.metrics)
    lines = [f"{outcome.status}: {outcome.run_dir}"]
    width = max([len(k) for k, _ in rows] + [7])
    lines += [f"  {k:<{width}}  {fmt(v)}" for k, v in rows]
    lines += [f"  {'figure':<{width}}  {f}" for f in outcome.figures]
    lines += [f"  note: {w}" for w in outcome.warnings[:5]]
    if outcome.status == "INTERRUPTED":
        lines.append("  interrupted: what was measured so far is kept (meta.json: partial)")
    elif outcome.status == "DIVERGED":
        lines.append("  diverged: values ran away; the curves up to that point are kept")
    elif outcome.status == "FAILED" and outcome.error:
        lines.append(f"  error: {outcome.error[:300]}")
    return lines
