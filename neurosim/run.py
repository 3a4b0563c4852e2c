"""The command line: ``python -m neurosim.run <experiment> [key=value ...]``.

Parse -> resolve config(s) -> run experiment(s) -> write run directory. Every problem a user can
cause (unknown experiment or key, wrong type, value out of range, missing or corrupt data,
unwritable output folder) ends in one line on stderr and exit status 2, with no run directory
left half-written. A diverged run exits 3, an interrupted one 130; both keep what they measured.

Examples
--------
    python -m neurosim.run list
    python -m neurosim.run digits --quick
    python -m neurosim.run xor lr=2.0 epochs=3000 --seed 1
    python -m neurosim.run digits seed=0,1,2          # a sweep: one run each + summary.csv
    python -m neurosim.run mnist --config experiments/mnist.toml data_dir=~/data/mnist
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from neurosim import experiments
from neurosim.config import ConfigError, build, flatten, load_toml, parse_overrides, to_dict
from neurosim.data import DataError
from neurosim.experiments.base import Context, Result
from neurosim.results import RunDirectory, config_hash, make_run_dir, utc_now, write_bytes

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_DIVERGED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_CODES = {"COMPLETED": EXIT_OK, "DIVERGED": EXIT_DIVERGED, "INTERRUPTED": EXIT_INTERRUPTED}

#: Errors a user causes; they end in one line and exit 2.
USER_ERRORS = (ConfigError, DataError)


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
    run_dir: str
    status: str
    metrics: dict[str, Any]
    label: dict[str, Any]


# --- argument parsing --------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as for every other user error
        raise ConfigError(message)


def make_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m neurosim.run",
        description="Run a neurosim experiment; each run gets its own directory.",
        epilog="Use 'list' as the experiment to see every experiment.",
    )
    p.add_argument("experiment", nargs="?", help="experiment name, or 'list'")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="config overrides parsed as TOML; a,b,c sweeps over values")
    p.add_argument("--config", metavar="FILE.toml", help="TOML file of config values")
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    p.add_argument("--out", default="runs", metavar="DIR", help="parent of run directories")
    p.add_argument("--quick", action="store_true", help="a fast smoke-test version of the run")
    p.add_argument("-m", "--multirun", action="store_true",
                   help="accepted for Hydra habits; a comma-separated value always sweeps")
    p.add_argument("--workers", type=int, default=None,
                   help="parallel processes for a sweep (default: cores, at most the runs)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run a sweep on a Dask distributed cluster, e.g. tcp://host:8786")
    return p


def resolve(args: argparse.Namespace, argv: list[str]) -> list[RunSpec]:
    """Turn parsed arguments into the list of runs; every config is checked before any runs."""
    file_values: dict[str, Any] = {}
    name = args.experiment
    if name is not None and "=" in name:  # `--config F.toml lr=0.1`: no name, only overrides
        args.overrides.insert(0, name)
        name = None
    if args.config:
        file_values = flatten(load_toml(args.config))
        file_name = file_values.pop("experiment", None)
        if name is None:
            name = file_name
        elif file_name is not None and file_name != name:
            raise ConfigError(f"{args.config} is a config for '{file_name}', not '{name}'")
    if name is None:
        raise ConfigError("name an experiment (see: python -m neurosim.run list)")
    module = experiments.get(name)

    overrides = parse_overrides(args.overrides)
    seeds = overrides.pop("seed", None)
    file_seed = file_values.pop("seed", None)
    if seeds is None:
        seeds = [args.seed if args.seed is not None else (file_seed or 0)]
    elif args.seed is not None:
        raise ConfigError("give the seed once: either --seed N or seed=...")
    for s in seeds:
        if not (isinstance(s, int) and not isinstance(s, bool) and s >= 0):
            raise ConfigError(f"seed must be a non-negative integer, got {s!r}")

    base_values = dict(file_values)
    if args.quick:
        base_values.update(getattr(module, "QUICK", {}))
    swept = {k: v for k, v in overrides.items() if len(v) > 1}
    if len(seeds) > 1:
        swept["seed"] = seeds
    fixed = {k: v[0] for k, v in overrides.items() if len(v) == 1}

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


def run_one(spec: RunSpec, say: Callable[[str], None] = print) -> Outcome:
    """Run one experiment into a fresh run directory and return what it measured.

    A user error raised from inside the experiment (e.g. a missing MNIST file) removes the
    directory again and is re-raised; any other exception marks the run FAILED and propagates.
    """
    module = experiments.get(spec.experiment)
    if spec.exact_dir:
        path = spec.parent
        path.mkdir(parents=True)
    else:
        path = make_run_dir(spec.parent, spec.payload())
    rd = RunDirectory(path, spec.experiment, spec.argv)
    rd.write_config(spec.payload())
    say(f"run directory: {path}")
    ctx = Context(seed=spec.seed, rng=np.random.default_rng(spec.seed), quick=spec.quick,
                  scratch_dir=path / ".scratch")
    result: Result | None = None
    try:
        result = module.run(spec.cfg, ctx)
    except USER_ERRORS:
        shutil.rmtree(path, ignore_errors=True)
        raise
    except KeyboardInterrupt:
        result = ctx.partial
        result.status = "INTERRUPTED"
    except BaseException as exc:
        _write_partial(rd, ctx.partial)
        rd.finish("FAILED", error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        shutil.rmtree(ctx.scratch_dir, ignore_errors=True)

    try:
        rd.write_result(result)
        rd.write_figures(module.figures(result))
    except Exception as exc:
        if result.status == "COMPLETED":
            rd.finish("FAILED", error=f"{type(exc).__name__}: {exc}")
            raise
        # a partial result may lack what a figure needs; its data is already written
    rd.finish(result.status, **result.meta)
    say(f"{result.status.lower()}: {path}")
    return Outcome(str(path), result.status, result.metrics, spec.label)


def _write_partial(rd: RunDirectory, partial: Result) -> None:
    try:
        rd.write_result(partial)
    except Exception:  # the original failure matters more than a partial write
        pass


def _run_in_worker(spec: RunSpec) -> Outcome:
    return run_one(spec, say=lambda msg: print(msg, flush=True))


def make_executor(workers: int, scheduler: str | None) -> Executor:
    """Local processes by default; a Dask distributed cluster where one machine is not enough."""
    if scheduler:
        try:
            from dask.distributed import Client
        except ImportError:
            raise ConfigError("--scheduler needs dask[distributed]: pip install 'dask[distributed]'"
                              ) from None
        return Client(scheduler).get_executor()
    return ProcessPoolExecutor(max_workers=workers)


def run_sweep(specs: list[RunSpec], workers: int | None, scheduler: str | None) -> int:
    """Run every spec in parallel, one directory each, then write summary.csv beside them."""
    stamp = utc_now()
    digest = config_hash([s.payload() for s in specs])
    sweep_dir = specs[0].parent / f"{stamp:%Y%m%dT%H%M%SZ}-sweep-{digest}"
    sweep_dir.mkdir(parents=True, exist_ok=False)
    specs = [
        replace(s, parent=sweep_dir / ",".join(f"{k}={v}" for k, v in s.label.items()),
                exact_dir=True)
        for s in specs
    ]
    print(f"sweep directory: {sweep_dir} ({len(specs)} runs)")
    workers = workers or min(len(specs), os.cpu_count() or 1)
    outcomes: list[Outcome] = []
    executor = make_executor(workers, scheduler)
    try:
        futures = [executor.submit(_run_in_worker, s) for s in specs]
        for fut in futures:
            outcomes.append(fut.result())
    except KeyboardInterrupt:
        executor.shutdown(wait=True, cancel_futures=True)
        write_summary(sweep_dir / "summary.csv", outcomes)
        print(f"interrupted: {sweep_dir}", file=sys.stderr)
        return EXIT_INTERRUPTED
    executor.shutdown()
    write_summary(sweep_dir / "summary.csv", outcomes)
    print(f"summary: {sweep_dir / 'summary.csv'}")
    return max(EXIT_CODES.get(o.status, EXIT_FAILED) for o in outcomes)


def numeric_metrics(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Flatten nested metrics to dotted names, keeping numbers only."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            flat.update(numeric_metrics(value, f"{prefix}{key}."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[f"{prefix}{key}"] = float(value)
    return flat


def write_summary(path: Path, outcomes: Sequence[Outcome]) -> None:
    """One row per run (swept values, status, numeric metrics), then mean and std rows."""
    if not outcomes:
        return
    labels = list(outcomes[0].label)
    flats = [numeric_metrics(o.metrics) for o in outcomes]
    names = sorted(set().union(*flats))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["run", *labels, "status", *names])
    for o, flat in zip(outcomes, flats, strict=True):
        w.writerow([Path(o.run_dir).name, *(o.label[k] for k in labels), o.status,
                    *(flat.get(n, "") for n in names)])
    table = np.array([[flat.get(n, np.nan) for n in names] for flat in flats], dtype=float)
    for stat, fn in (("mean", np.nanmean), ("std", np.nanstd)):
        with np.errstate(all="ignore"):
            row = fn(table, axis=0) if len(table) else []
        w.writerow([stat, *([""] * len(labels)), "", *(f"{v:.6g}" for v in row)])
    write_bytes(path, buf.getvalue().encode())


def print_list() -> None:
    width = max(map(len, experiments.EXPERIMENTS))
    for name, (_, description) in experiments.EXPERIMENTS.items():
        print(f"{name:<{width}}  {description}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = make_parser().parse_intermixed_args(argv)
        if args.experiment == "list":
            print_list()
            return EXIT_OK
        if args.workers is not None and args.workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {args.workers}")
        specs = resolve(args, ["python -m neurosim.run", *argv])
        check_writable(specs[0].parent)
        if len(specs) > 1:
            return run_sweep(specs, args.workers, args.scheduler)
        return EXIT_CODES[run_one(specs[0]).status]
    except USER_ERRORS as exc:
        print(f"neurosim: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("neurosim: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
