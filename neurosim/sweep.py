"""Sweeps: many runs of one experiment, one run directory each, and a summary beside them.

``python -m neurosim.run digits seed=0,1,2 lr=0.1,0.01`` runs every combination in parallel
processes (a `concurrent.futures.Executor`: local processes, or a Dask distributed cluster with
``--scheduler``) and writes ``summary.csv``.
"""

from __future__ import annotations

import csv
import io
import os
import sys
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from neurosim import interrupts
from neurosim.config import ConfigError
from neurosim.results import config_hash, utc_now, write_bytes
from neurosim.run import EXIT_FAILED, Outcome, RunSpec, _run_in_worker


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
    except KeyboardInterrupt as exc:
        executor.shutdown(wait=True, cancel_futures=True)
        write_summary(sweep_dir / "summary.csv", outcomes)
        print(f"interrupted: {sweep_dir}", file=sys.stderr)
        return interrupts.exit_code(interrupts.signal_of(exc))
    executor.shutdown()
    write_summary(sweep_dir / "summary.csv", outcomes)
    print(f"summary: {sweep_dir / 'summary.csv'}")
    return max(o.exit_code if o.status != "FAILED" else EXIT_FAILED for o in outcomes)


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
    """One row per run (swept values, status, numeric metrics), then mean and sample sd rows."""
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
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(table, axis=0)
            sd = np.nanstd(table, axis=0, ddof=1) if len(table) > 1 else np.full(len(names), np.nan)
    for stat, row in (("mean", mean), ("std", sd)):  # std: the sample standard deviation
        w.writerow([stat, *([""] * len(labels)), "", *(f"{v:.6g}" for v in row)])
    write_bytes(path, buf.getvalue().encode())
