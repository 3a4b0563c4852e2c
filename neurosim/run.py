"""The command line: ``python -m neurosim.run <experiment> [key=value ...]``.

Parse -> resolve config(s) -> run experiment(s) -> write run directory. Every problem a user can
cause (unknown experiment or key, wrong type, value out of range, missing or corrupt data,
unwritable output folder) ends in one line on stderr and exit status 2, with no run directory
left behind. A diverged run exits 3; an interrupted one (Ctrl-C, SIGTERM) 128 + the signal
(130, 143); both keep what they measured. Whatever moment a signal arrives, the status in
meta.json and the exit status agree (`neurosim.interrupts`).

Examples
--------
    python -m neurosim.run list
    python -m neurosim.run digits --help              # every key: type, default, meaning
    python -m neurosim.run digits --quick
    python -m neurosim.run xor lr=2.0 epochs=3000 --seed 1
    python -m neurosim.run digits seed=0,1,2          # a sweep: one run each + summary.csv
    python -m neurosim.run mnist --config experiments/mnist.toml data_dir=~/data/mnist
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import signal
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from neurosim import experiments, interrupts
from neurosim.config import (
    ConfigError,
    build,
    describe,
    field_hint,
    flatten,
    is_list_hint,
    load_toml,
    parse_overrides,
    short,
    to_dict,
)
from neurosim.data import DataError
from neurosim.results import (
    Context,
    Result,
    ResultError,
    RunDirectory,
    make_run_dir,
    write_result,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_DIVERGED = 0, 1, 2, 3

#: Errors a user causes; they end in one line and exit 2.
USER_ERRORS = (ConfigError, DataError)

#: The longest error line printed; a longer message is cut (a value may be 100 KB).
MAX_ERROR = 400


@dataclass(frozen=True)
class RunSpec:
    """One run to do: the experiment, its resolved config and where its folder goes."""

    experiment: str
    cfg: Any
    seed: int
    parent: Path  # the run directory is created inside it (or is it, with exact_dir)
    quick: bool
    argv: list[str]
    label: dict[str, Any] = field(default_factory=dict)  # the swept values, for summary.csv
    exact_dir: bool = False  # True: `parent` itself is the run directory (sweeps)

    def payload(self) -> dict[str, Any]:
        return {"experiment": self.experiment, "seed": self.seed, "quick": self.quick,
                "config": to_dict(self.cfg)}


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
        if self.status == "INTERRUPTED":
            return interrupts.exit_code(self.signal or 2)
        return {"COMPLETED": EXIT_OK, "DIVERGED": EXIT_DIVERGED}.get(self.status, EXIT_FAILED)


# --- argument parsing --------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as for every other user error
        raise ConfigError(message)


def make_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m neurosim.run",
        description="Run a neurosim experiment; each run gets its own directory.",
        epilog="'list' names every experiment; 'NAME --help' lists the keys of one.",
        add_help=False,
    )
    p.add_argument("experiment", nargs="?", help="experiment name, 'list', or 'show NAME'")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="config overrides parsed as TOML; a,b,c sweeps over values")
    p.add_argument("-h", "--help", action="store_true", help="this help, or an experiment's keys")
    p.add_argument("--config", metavar="FILE.toml", help="TOML file of config values")
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    p.add_argument("--out", default="runs", metavar="DIR", help="parent of run directories")
    p.add_argument("--quick", action="store_true", help="a fast smoke-test version of the run")
    p.add_argument("-m", "--multirun", action="store_true",
                   help="accepted for Hydra habits; a comma-separated value always sweeps")
    s = p.add_argument_group("sweeps and searches (docs/sweeps.md)")
    s.add_argument("--seeds", type=int, metavar="N", help="sweep over seeds 0..N-1")
    s.add_argument("--workers", type=int, default=None, metavar="N",
                   help="parallel jobs of a sweep (default: cores, at most the jobs)")
    s.add_argument("--executor", choices=("process", "dask"), default=None,
                   help="local processes (default) or a Dask LocalCluster (neurosim[dask])")
    s.add_argument("--scheduler", metavar="ADDRESS",
                   help="run a sweep on a running Dask cluster, e.g. tcp://host:8786")
    s.add_argument("--resume", metavar="SWEEP_DIR",
                   help="run the jobs of a sweep (or the trials of a search) not COMPLETED")
    s.add_argument("--rerun", metavar="RUN_DIR",
                   help="repeat a run from its config.json and compare the metrics")
    s.add_argument("--search", action="store_true",
                   help="Optuna search (neurosim[search]): key=LOW:HIGH[:log], key=a,b,c")
    s.add_argument("--objective", metavar="METRIC",
                   help="search: the validation metric to optimise (dotted path in metrics.json)")
    s.add_argument("--direction", choices=("maximize", "minimize"),
                   help="search: default minimize for loss/error/mse/mae names, else maximize")
    s.add_argument("--trials", type=int, metavar="N", help="search: trials in all (default 20)")
    s.add_argument("--sampler", choices=("tpe", "random"), help="search: Optuna sampler (tpe)")
    return p


def check_list_values(module: Any, overrides: dict[str, list[Any]]) -> None:
    """``hidden=64,32`` on a list field is ambiguous (two layers, or a sweep?): refuse it."""
    for key, values in overrides.items():
        if len(values) < 2 or any(isinstance(v, list) for v in values):
            continue
        try:
            hint = field_hint(module.Config, key)
        except KeyError:
            continue  # unknown keys are reported by `build`
        if is_list_hint(hint):
            joined = ",".join(map(str, values))
            raise ConfigError(
                f"{key}={joined} is ambiguous: write {key}=[{joined}] for one list, or "
                f"{key}=" + ",".join(f"[{v}]" for v in values) + " to sweep over lists"
            )


def resolve(args: argparse.Namespace, argv: list[str]) -> list[RunSpec]:
    """Turn parsed arguments into the list of runs; every config is checked before any runs."""
    file_values: dict[str, Any] = {}
    name = args.experiment
    if name is not None and "=" in name:  # `--config F.toml lr=0.1`: no name, only overrides
        args.overrides.insert(0, name)
        name = None
    if args.config:  # a [search] table is the search's (neurosim.search), not the config's
        file_values = flatten({k: v for k, v in load_toml(args.config).items() if k != "search"})
        file_name = file_values.pop("experiment", None)
        if name is None:
            name = file_name
        elif file_name is not None and file_name != name:
            raise ConfigError(f"{args.config} is a config for '{file_name}', not '{name}'")
    if name is None:
        raise ConfigError("name an experiment (see: python -m neurosim.run list)")
    module = experiments.get(name)

    overrides = parse_overrides(args.overrides)
    check_list_values(module, overrides)
    seeds = overrides.pop("seed", None)
    file_seed = file_values.pop("seed", None)
    if seeds is None:
        seeds = [args.seed if args.seed is not None else (file_seed or 0)]
    elif args.seed is not None:
        raise ConfigError("give the seed once: either --seed N or seed=...")
    for s in seeds:
        if not (isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**63):
            raise ConfigError(f"seed must be a non-negative integer, got {short(s)}")

    base_values = dict(file_values)
    if args.quick:
        base_values.update(getattr(module, "QUICK", {}))
    swept = {k: v for k, v in overrides.items() if len(v) > 1}
    if len(seeds) > 1:
        swept["seed"] = seeds
    fixed = {k: v[0] for k, v in overrides.items() if len(v) == 1}

    if not args.out.strip():
        raise ConfigError("--out must name a directory, got an empty string")
    out = Path(args.out).expanduser()
    combos = [dict(zip(swept, vals, strict=True)) for vals in itertools.product(*swept.values())]
    specs = []
    for combo in combos:
        values = {**base_values, **fixed, **{k: v for k, v in combo.items() if k != "seed"}}
        cfg = build(module.Config, values)
        seed = combo.get("seed", seeds[0])
        specs.append(RunSpec(name, cfg, seed, out / name, args.quick, argv, combo))
    return specs


def check_writable(path: Path) -> None:
    """Fail early, with one line, when runs could not be written under `path`."""
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"--out {path}: {probe} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {path}: cannot write to {probe}")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out {path}: cannot create it ({exc.strerror})") from None


# --- running -----------------------------------------------------------------------------------


def _create_dir(spec: RunSpec) -> Path:
    if spec.exact_dir:
        spec.parent.mkdir(parents=True)
        return spec.parent
    return make_run_dir(spec.parent, spec.payload())


def run_one(spec: RunSpec, say: Callable[[str], None] = print) -> Outcome:
    """Run one experiment into a fresh run directory and return how it ended.

    A user error raised from inside the experiment (e.g. a missing MNIST file) removes the
    directory again and is re-raised. Ctrl-C or SIGTERM (`neurosim.interrupts.Stopped`)
    during the computation keeps what the experiment put into ``ctx.partial``: INTERRUPTED.
    Any other exception keeps the partial result too, marks the run FAILED and propagates.
    Once the computation has ended, signals are held (`interrupts.hold`) until the caller is
    done, so the status written is the status the process exits with. BLAS runs on one
    thread, alone or in a sweep: a matrix product's rounding depends on how many threads
    share it, and a run's metrics must not depend on how it was launched.
    """
    module = experiments.get(spec.experiment)
    rd: RunDirectory | None = None
    stop: int | None = None
    result: Result | None = None
    failure: BaseException | None = None
    caught: list[warnings.WarningMessage] = []
    try:  # from the folder's creation on: a signal between two steps is a stop too
        with interrupts.deferred() as early:  # a folder is made whole, with meta.json, or not
            path = _create_dir(spec)
            ctx = Context(seed=spec.seed, rng=np.random.default_rng(spec.seed),
                          quick=spec.quick, scratch_dir=path / ".scratch")
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
            with interrupts.deferred():
                shutil.rmtree(path, ignore_errors=True)
        raise
    except KeyboardInterrupt as exc:
        if rd is None:  # before the folder existed: nothing to mark
            raise
        stop = interrupts.signal_of(exc)
    except Exception as exc:
        if rd is None:
            raise
        failure = exc
    finally:
        interrupts.hold()  # from here on the status written is the truth: signals wait
    return _finish(spec, module, rd, ctx, result, stop, failure, caught, say)


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


def _finish(spec, module, rd: RunDirectory, ctx: Context, result: Result | None,
            stop: int | None, failure: BaseException | None,
            caught: list[warnings.WarningMessage], say: Callable[[str], None]) -> Outcome:
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
        stop = interrupts.last_signal()
    extra: dict[str, Any] = dict(result.meta)
    problems = write_result(rd.path, result)
    figures: list[str] = []
    if status != "FAILED":
        try:
            with warnings.catch_warnings(record=True) as fig_warnings:
                _record_warnings()
                figures = [str(p) for p in rd.write_figures(module.figures(result))]
            caught = [*caught, *fig_warnings]
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
    rd.finish(status, **extra)
    if failure is not None:
        raise failure
    return Outcome(str(rd.path), status, result.metrics, spec.label,
                   stop if status == "INTERRUPTED" else None, extra.get("error"),
                   tuple(figures), tuple(notes))


# --- what the terminal shows -------------------------------------------------------------------


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


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def summary_lines(outcome: Outcome, module: Any) -> list[str]:
    rows = headline(module, outcome.metrics)
    lines = [f"{outcome.status}: {outcome.run_dir}"]
    width = max([len(k) for k, _ in rows] + [7])
    lines += [f"  {k:<{width}}  {_fmt(v)}" for k, v in rows]
    lines += [f"  {'figure':<{width}}  {f}" for f in outcome.figures]
    lines += [f"  note: {w}" for w in outcome.warnings[:5]]
    if outcome.status == "INTERRUPTED":
        lines.append("  interrupted: what was measured so far is kept (meta.json: partial)")
    elif outcome.status == "DIVERGED":
        lines.append("  diverged: values ran away; the curves up to that point are kept")
    return lines


def print_list() -> None:
    width = max(map(len, experiments.EXPERIMENTS))
    for name, (_, description) in experiments.EXPERIMENTS.items():
        print(f"{name:<{width}}  {description}")


def print_keys(name: str) -> None:
    """Every key of experiment `name`: type, default and the comment beside it."""
    module = experiments.get(name)
    docs = describe(module.Config)
    print(f"{name}: {experiments.EXPERIMENTS[name][1]}")
    print(f"usage: python -m neurosim.run {name} [key=value ...] [--quick] [--seed N]\n")
    kw = max(len(d.key) for d in docs)
    tw = max(len(d.type) for d in docs)
    for d in docs:
        default = short(d.default)
        print(f"  {d.key:<{kw}}  {d.type:<{tw}}  = {default:<10}  {d.comment}")
    quick = getattr(module, "QUICK", {})
    if quick:
        print("\n--quick sets: " + " ".join(f"{k}={_fmt(v)}" for k, v in quick.items()))


def error_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if len(text) > MAX_ERROR:
        text = text[:MAX_ERROR] + f"... ({len(text) - MAX_ERROR} more characters)"
    return f"neurosim: error: {text}"


def main(argv: Sequence[str] | None = None, restore_signals: bool = True) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    done: list[Outcome] = []
    with interrupts.handling(restore=restore_signals):
        try:
            return _main(argv, done)
        except USER_ERRORS as exc:
            print(error_line(exc), file=sys.stderr)
            return EXIT_USAGE
        except KeyboardInterrupt as exc:
            if done:  # the run had already ended and written its status
                return done[-1].exit_code
            print("neurosim: interrupted", file=sys.stderr)
            return interrupts.exit_code(interrupts.signal_of(exc))


def _main(argv: list[str], done: list[Outcome]) -> int:
    args = make_parser().parse_intermixed_args(argv)
    if args.experiment == "show" and args.overrides:
        args.experiment, args.help = args.overrides.pop(0), True
    if args.help:
        if args.experiment and "=" not in args.experiment:
            print_keys(args.experiment)
        else:
            make_parser().print_help()
        return EXIT_OK
    if args.experiment == "list":
        print_list()
        return EXIT_OK
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    from neurosim import sweep

    if sweep.requested(args):  # --seeds, --search, --resume, --rerun, --executor, ...
        return sweep.cli(args, argv)
    specs = resolve(args, ["python -m neurosim.run", *argv])
    check_writable(specs[0].parent)
    if len(specs) > 1:
        return sweep.run_sweep(specs, args.workers)
    module = experiments.get(specs[0].experiment)
    outcome = run_one(specs[0])
    done.append(outcome)
    print("\n".join(summary_lines(outcome, module)))
    return outcome.exit_code


def cli() -> None:
    """The console script ``neurosim``.

    The run's status is written and final: from here to the process's end a signal changes
    nothing (ignored, not left to the default action during interpreter shutdown, which would
    kill the process with another exit status than the one meta.json implies).
    """
    code = main(restore_signals=False)
    for s in interrupts.SIGNALS:
        signal.signal(s, signal.SIG_IGN)
    sys.exit(code)


if __name__ == "__main__":
    cli()
