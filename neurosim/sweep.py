"""Sweeps: many runs of one experiment, each an ordinary run directory, summarised beside them.

    python -m neurosim.run digits lr=0.1,0.01 --seeds 5       # 2 settings x 5 seeds = 10 jobs
    python -m neurosim.run digits --seeds 5 --workers 2       # local processes (the default)
    python -m neurosim.run digits --seeds 5 --executor dask   # a Dask LocalCluster
    python -m neurosim.run digits --seeds 5 --scheduler tcp://host:8786   # a running cluster
    python -m neurosim.run --resume runs/digits/<UTC time>-sweep-<hash>
    python -m neurosim.run --rerun runs/digits/<UTC time>-sweep-<hash>/0-seed=0

A sweep directory ``runs/NAME/<UTC time>-sweep-<hash>/`` holds ``sweep.json`` (the plan: every
job's resolved config), ``summary.csv`` (one row per job: swept values, status, error, metrics;
then the mean and sample sd of each setting across seeds), ``summary.png`` (the experiment's
headline metrics against the swept values, error bars one sample sd) and one run directory per
job, named ``<index>-<swept values>`` (made safe and at most ~70 characters; the full values
live in sweep.json and summary.csv).

Jobs run through a `concurrent.futures.Executor`: local processes (spawned, one BLAS thread
each, in their own process group so that a terminal's Ctrl-C reaches only this process, which
passes it on) or Dask distributed (`Pool`). At most one job per worker is handed out at a time,
so that stopping leaves nothing queued. A job that fails or diverges is a FAILED / DIVERGED
row and the others go on; summary.csv is rewritten (atomically) after every job. Ctrl-C or
SIGTERM: the running jobs end INTERRUPTED (each run keeps what it measured), no new job
starts, the summary is written and the exit status is 128 + the signal. ``--resume`` runs the
jobs whose run directory is not COMPLETED; an earlier attempt is kept as ``<run>.attempt<k>``.

Brian2 jobs in parallel: Brian2 2.9 guards each module of its Cython cache
(``~/.cython/brian_extensions``) with a file lock (``codegen.runtime.cython.multiprocess_safe``,
on by default), so workers share that cache; a cpp_standalone project lives in its run's
private scratch directory.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import io
import json
import logging
import math
import multiprocessing
import os
import re
import signal
import sys
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, CancelledError, Future, as_completed, wait
from concurrent.futures.process import BrokenProcessPool, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from neurosim import experiments, interrupts
from neurosim.config import ConfigError, build, flatten, short, to_dict
from neurosim.results import (
    git_state,
    jsonable,
    make_run_dir,
    save_figure,
    utc_now,
    versions,
    write_bytes,
    write_json,
)
from neurosim.run import (
    EXIT_DIVERGED,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    USER_ERRORS,
    RunSpec,
    check_writable,
    error_line,
    headline,
    make_parser,
    resolve,
    run_one,
    summary_lines,
)

PLAN, SUMMARY, FIGURE, LOGS = "sweep.json", "summary.csv", "summary.png", "logs"
STOP, LOCK = ".stop", ".lock"

#: The status of a job that has not run (yet, or because the sweep was stopped first).
PENDING = "PENDING"

#: Metrics left out of a rerun's comparison and of the figures: wall-clock timings.
TIMING = re.compile(r"(^|_)(seconds|per_second)$")

#: Job folder names: these characters only, at most this many after the index.
UNSAFE = re.compile(r"[^A-Za-z0-9._,=+-]")
MAX_NAME = 64

#: Seconds to wait for a Dask scheduler named with --scheduler.
CONNECT_TIMEOUT = 20

#: The options that make the command line a sweep, a search, a resume or a rerun.
OPTIONS = ("seeds", "executor", "scheduler", "resume", "rerun", "objective", "direction",
           "trials", "sampler")
SEARCH_ONLY = ("objective", "direction", "trials", "sampler")


# --- what a job is and how it ended ------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One run of a sweep: its folder name, its swept values and the run itself."""

    run: str
    label: dict[str, Any]
    spec: RunSpec


@dataclass
class Row:
    """How a job ended, as summary.csv shows it (one row)."""

    run: str
    label: dict[str, Any]
    status: str = PENDING
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    user_error: bool = False  # a ConfigError / DataError: the user has something to fix
    output: str = ""  # what the job printed (written to logs/<run>.log)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def read_row(path: Path, label: dict[str, Any]) -> Row:
    """A job's row from its run directory (PENDING when there is none)."""
    meta = _read_json(path / "meta.json")
    if not isinstance(meta, dict):
        return Row(path.name, label)
    metrics = _read_json(path / "metrics.json")
    return Row(path.name, label, str(meta.get("status", "RUNNING")),
               metrics if isinstance(metrics, dict) else {}, meta.get("error"))


def _one_line(exc: BaseException) -> str:
    return error_line(exc).removeprefix("neurosim: error: ")


def run_job(spec: RunSpec, label: dict[str, Any], stop_file: str) -> Row:
    """Run one job; called in a worker (a process of the pool, or a Dask worker's thread).

    Signals are handled as in a single run (`neurosim.interrupts`; only in a main thread). A
    job that finds the sweep's stop file does not start: PENDING. BLAS is held to one thread
    (by `run_one`, as in a single run).
    What the job prints is captured (it would tear the parent's progress bar) and returned.
    """
    row = Row(spec.parent.name, label)
    out = io.StringIO()
    with interrupts.handling(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            if not os.path.exists(stop_file):
                outcome = run_one(spec, say=lambda _msg: None)
                row = read_row(spec.parent, label)
                row.status, row.error = outcome.status, outcome.error
        except USER_ERRORS as exc:  # e.g. a missing data file; run_one removed the folder
            row = Row(spec.parent.name, label, "FAILED", error=_one_line(exc), user_error=True)
        except KeyboardInterrupt:  # before the run had its folder: it never started
            row = read_row(spec.parent, label)
        except Exception as exc:  # the run wrote FAILED, its partial result and the traceback
            row = read_row(spec.parent, label)
            row.status, row.error = "FAILED", f"{type(exc).__name__}: {exc}"
    row.output = out.getvalue()
    return row


def _init_worker() -> None:
    """A pool process ignores SIGINT/SIGTERM between jobs (a run installs its own handlers)
    and leaves the terminal's process group: Ctrl-C reaches the sweep, which passes it on."""
    for s in interrupts.SIGNALS:
        signal.signal(s, signal.SIG_IGN)
    if hasattr(os, "setpgrp"):
        os.setpgrp()


def cores() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


# --- where jobs run ----------------------------------------------------------------------------


class Pool:
    """An Executor for the jobs: local processes, a Dask LocalCluster, or a running cluster.

    Created before the sweep directory, so a missing Dask or an unreachable scheduler leaves
    nothing behind. ``capacity`` is how many jobs run at once. Use it as a context manager:
    the executor, the client and the cluster are closed on the way out.
    """

    def __init__(self, executor: str | None = None, workers: int | None = None,
                 scheduler: str | None = None, n_jobs: int = 1):
        if scheduler and executor == "process":
            raise ConfigError("--scheduler sends the jobs to Dask: drop --executor process")
        self.kind = "dask" if scheduler or executor == "dask" else "process"
        self.scheduler = scheduler
        self.cluster: Any = None
        self.client: Any = None
        self.broken = self.closed = False
        n_jobs = max(1, n_jobs)
        if self.kind == "process":
            self.capacity = min(workers or cores(), n_jobs)
            self.executor = self._process_pool()
            return
        what = f"--scheduler {scheduler}" if scheduler else "--executor dask"
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise ConfigError(f"{what} needs Dask distributed: pip install 'neurosim[dask]'"
                              ) from None
        if scheduler:
            try:
                self.client = Client(scheduler, timeout=CONNECT_TIMEOUT)
            except (OSError, TimeoutError, ValueError) as exc:
                raise ConfigError(f"{what}: cannot connect ({exc})") from None
            self.capacity = workers or max(1, sum(self.client.nthreads().values()))
        else:
            self.capacity = min(workers or cores(), n_jobs)
            self.cluster = LocalCluster(n_workers=self.capacity, threads_per_worker=1,
                                        processes=True, dashboard_address=None,
                                        silence_logs=logging.ERROR)
            self.client = Client(self.cluster)
        self.executor = self.client.get_executor(pure=False)  # two equal jobs are two jobs

    def _process_pool(self) -> ProcessPoolExecutor:
        # spawn, not fork: a fresh interpreter per worker, as a Dask worker has
        return ProcessPoolExecutor(self.capacity, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_worker)

    @property
    def owns_workers(self) -> bool:
        """True when closing the pool ends every worker (not so for a running cluster)."""
        return self.scheduler is None

    def submit(self, job: Job, stop_file: Path) -> Future:
        if self.broken:  # a worker process died: the pool is gone, start a new one
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor, self.broken = self._process_pool(), False
        return self.executor.submit(run_job, job.spec, job.label, str(stop_file))

    def result(self, fut: Future, job: Job) -> Row:
        """The row of a finished future; a dead worker or a cancelled task is a row too."""
        try:
            return fut.result()
        except BrokenProcessPool:
            self.broken = True
            row = read_row(job.spec.parent, job.label)
            row.status = "FAILED"
            row.error = ("its worker process died (killed, or out of memory?); the pool was "
                         "restarted and the other jobs it held are FAILED too")
            _mark(job.spec.parent, "FAILED", row.error)
            return row
        except CancelledError:
            return read_row(job.spec.parent, job.label)
        except Exception as exc:  # e.g. Dask's KilledWorker
            row = read_row(job.spec.parent, job.label)
            row.status, row.error = "FAILED", f"{type(exc).__name__}: {exc}"
            return row

    def interrupt(self, signum: int, futures: Sequence[Future]) -> None:
        """Stop the running jobs: local processes get the signal (their runs end INTERRUPTED);
        Dask tasks cannot be signalled and are cancelled."""
        if self.kind == "process":
            # ProcessPoolExecutor has no public list of its processes before Python 3.14
            for proc in list(getattr(self.executor, "_processes", {}).values()):
                with contextlib.suppress(OSError):
                    os.kill(proc.pid, signum)
        else:
            for fut in futures:
                fut.cancel()

    def kill(self) -> None:
        """Stop now (a second Ctrl-C): end the worker processes."""
        if self.kind == "process":
            for proc in list(getattr(self.executor, "_processes", {}).values()):
                with contextlib.suppress(OSError):
                    proc.kill()

    def release(self) -> None:
        """Every job has ended: let local workers exit while the caller draws the summary
        (`close` then waits for them)."""
        if self.kind == "process":
            self.executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.kind == "process":
            self.executor.shutdown(wait=True, cancel_futures=True)
            return
        with contextlib.suppress(Exception):
            self.executor.shutdown(wait=False)
        with contextlib.suppress(Exception):
            self.client.close()
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close()

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _mark(path: Path, status: str, why: str) -> None:
    """Give a run whose process is gone (meta.json still RUNNING) its final status."""
    meta = _read_json(path / "meta.json")
    if isinstance(meta, dict) and meta.get("status") == "RUNNING":
        meta.update(status=status, error=why, partial=True,
                    finished_utc=utc_now().isoformat(timespec="seconds"))
        write_json(path / "meta.json", meta)


def drive(pool: Pool, next_job: Callable[[], Job | None],
          finish: Callable[[Job, Row], bool], stop_file: Path) -> int | None:
    """Run jobs until `next_job` returns None, at most ``pool.capacity`` at a time.

    `finish` receives each job's row as it ends and returns False to start no further job.
    Returns the signal that stopped the sweep (SIGINT, SIGTERM), or None: the running jobs are
    stopped (`Pool.interrupt`) and waited for; a second signal stops the waiting.
    """
    in_flight: dict[Future, Job] = {}
    more = True
    try:
        while True:
            while more and len(in_flight) < pool.capacity and not (pool.broken and in_flight):
                job = next_job()
                if job is None:
                    more = False
                    break
                in_flight[pool.submit(job, stop_file)] = job
            if not in_flight:
                return None
            done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
            for fut in done:
                job = in_flight.pop(fut)
                if not finish(job, pool.result(fut, job)):
                    more = False
    except KeyboardInterrupt as exc:
        signum = interrupts.signal_of(exc)
        stop_file.touch()  # a job handed out but not started yet will not start
        pool.interrupt(signum, list(in_flight))
        try:
            for fut in as_completed(list(in_flight)):
                job = in_flight.pop(fut)
                finish(job, pool.result(fut, job))
        except KeyboardInterrupt:
            pool.kill()
        for job in in_flight.values():
            finish(job, read_row(job.spec.parent, job.label))
        return signum


# --- progress on the terminal ------------------------------------------------------------------


class Progress:
    """A tqdm bar of jobs (done / total, failed, diverged) when stderr is a terminal, and one
    line per finished job on stdout in any case (with the experiment's headline metrics, or
    none when `module` is None)."""

    def __init__(self, total: int, done: int, desc: str, module: Any):
        self.total, self.n, self.module = total, done, module
        self.counts: Counter[str] = Counter()
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, desc=desc, unit="job", file=sys.stderr,
                            dynamic_ncols=True)

    def say(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)

    def update(self, row: Row, extra: str = "") -> None:
        ended = row.status not in (PENDING, "RUNNING")  # not: never started, or abandoned
        if ended:
            self.n += 1
            self.counts[row.status] += 1
        if self.bar is not None:
            self.bar.update(int(ended))
            self.bar.set_postfix(failed=self.counts["FAILED"],
                                 diverged=self.counts["DIVERGED"], refresh=True)
        if not ended:
            return
        if row.error:
            detail = row.error
        elif self.module is None:  # a search shows its objective only
            detail = ""
        else:
            detail = ", ".join(f"{k} {_fmt(v)}" for k, v in headline(self.module, row.metrics)
                               if not TIMING.search(k))
        line = f"[{self.n}/{self.total}] {row.status:<11} {row.run}{extra}"
        self.say(f"{line}  {short_text(detail, 160)}" if detail else line)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def short_text(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- names -------------------------------------------------------------------------------------


def value_text(value: Any) -> str:
    """A swept value as text: TOML-like for numbers and lists, raw for strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple | dict):
        return json.dumps(jsonable(value), separators=(",", ":"))
    return repr(value) if isinstance(value, float) else str(value)


def job_name(index: int, label: Mapping[str, Any], width: int = 1) -> str:
    """``<index>-<key=value,...>``: only letters, digits and ``._,=+-`` (anything else, a
    path separator included, becomes ``_``), cut to `MAX_NAME` characters with a hash of the
    full text when longer. The index makes it unique within its sweep."""
    text = ",".join(f"{k}={value_text(v)}" for k, v in label.items())
    slug = UNSAFE.sub("_", re.sub(r"[\[\]{}\"' ]", "", text))  # hidden=[32,16]: hidden=32,16
    if len(slug) > MAX_NAME:
        digest = hashlib.sha1(text.encode()).hexdigest()[:6]
        slug = f"{slug[: MAX_NAME - 7]}~{digest}"
    return f"{index:0{width}d}-{slug}" if slug else f"{index:0{width}d}"


def make_sweep_dir(parent: Path, kind: str, payload: Any, stamp: Any = None) -> Path:
    """Create ``parent/<UTC time>-<kind>-<hash>`` (`neurosim.results.make_run_dir`)."""
    try:
        return make_run_dir(parent, payload, stamp=stamp, kind=kind)
    except FileExistsError as exc:
        raise ConfigError(str(exc)) from None


@contextlib.contextmanager
def locked(sweep_dir: Path) -> Iterator[None]:
    """Hold the sweep's lock file while it runs: a second process (a --resume while the
    sweep still runs) is refused with one line."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock
        yield
        return
    with open(sweep_dir / LOCK, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ConfigError(f"{sweep_dir} is in use by another running sweep") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --- the summary -------------------------------------------------------------------------------


def numeric_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, int | float]:
    """Flatten nested metrics to dotted names, keeping numbers only (not booleans)."""
    flat: dict[str, int | float] = {}
    for key, value in metrics.items():
        if isinstance(value, Mapping):
            flat.update(numeric_metrics(value, f"{prefix}{key}."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[f"{prefix}{key}"] = value
    return flat


@dataclass
class Setting:
    """One setting of the swept values (all but the seed) across its seeds."""

    label: dict[str, Any]
    n: int  # COMPLETED jobs: the statistics are over these
    mean: dict[str, float]
    sd: dict[str, float]  # sample standard deviation (ddof=1); NaN with fewer than 2 values
    values: dict[str, list[float]]


def aggregate(rows: Sequence[Row], keys: Sequence[str]) -> list[Setting]:
    """Mean and sample sd of every numeric metric per setting, over its COMPLETED jobs."""
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(json.dumps([row.label.get(k) for k in keys if k != "seed"],
                                     default=str), []).append(row)
    out = []
    for members in groups.values():
        flats = [numeric_metrics(r.metrics) for r in members if r.status == "COMPLETED"]
        names = list(dict.fromkeys(n for f in flats for n in f))
        values = {n: [float(f[n]) for f in flats if n in f and math.isfinite(f[n])]
                  for n in names}
        mean = {n: float(np.mean(v)) if v else math.nan for n, v in values.items()}
        sd = {n: float(np.std(v, ddof=1)) if len(v) >= 2 else math.nan
              for n, v in values.items()}
        label = {k: members[0].label.get(k) for k in keys if k != "seed"}
        out.append(Setting(label, len(flats), mean, sd, values))
    return out


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, float):
        return repr(value)
    return value_text(value)


def summary_csv(rows: Sequence[Row], keys: Sequence[str],
                extra: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """summary.csv: ``run, <keys>, status, n, error, [<extra>], <metrics>``, one row per job;
    when seeds are swept, then a ``mean`` and an ``sd`` row per setting (``n``: the COMPLETED
    jobs they are over). `extra` maps a run to more columns (a search's objective value)."""
    extra = extra or {}
    extra_cols = list(dict.fromkeys(c for cols in extra.values() for c in cols))
    flats = [numeric_metrics(r.metrics) for r in rows]
    names = sorted(set().union(*flats)) if flats else []
    fixed = ["run", *keys, "status", "n", "error", *extra_cols]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")  # a metric named like a column: metrics.<name>
    w.writerow([*fixed, *(f"metrics.{n}" if n in fixed else n for n in names)])
    for row, flat in zip(rows, flats, strict=True):
        more = extra.get(row.run, {})
        w.writerow([row.run, *(_cell(row.label.get(k)) for k in keys), row.status, "",
                    short_text(row.error, 300) if row.error else "",
                    *(_cell(more.get(c)) for c in extra_cols),
                    *(_cell(flat.get(n)) for n in names)])
    if "seed" in keys:
        for s in aggregate(rows, keys):
            for stat, table in (("mean", s.mean), ("sd", s.sd)):
                w.writerow([stat, *(_cell(s.label.get(k)) for k in keys), "", s.n, "",
                            *([""] * len(extra_cols)), *(_cell(table.get(n)) for n in names)])
    return buf.getvalue()


def write_summary(sweep_dir: Path, rows: Sequence[Row], keys: Sequence[str],
                  extra: Mapping[str, Mapping[str, Any]] | None = None) -> Path:
    path = sweep_dir / SUMMARY
    write_bytes(path, summary_csv(rows, keys, extra).encode())
    return path


def figure_metrics(module: Any, settings: Sequence[Setting], limit: int = 6,
                   varying_only: bool = True) -> list[str]:
    """The metrics a summary figure shows: the experiment's HEADLINE (else its first numeric
    ones), without timings and, unless nothing changes, without those that never change
    (epochs_run of a fixed schedule)."""
    present = list(dict.fromkeys(n for s in settings for n, v in s.mean.items()
                                 if math.isfinite(v)))
    varying = {n for n in present if len({v for s in settings for v in s.values.get(n, [])}) > 1}
    wanted = list(getattr(module, "HEADLINE", None) or present)
    keep = varying if varying_only and varying else set(present)
    return [n for n in wanted if n in keep and not TIMING.search(n)][:limit]


def errorbar_panel(ax: Any, x: Sequence[float], mean: Sequence[float], sd: Sequence[float],
                   points: Sequence[Sequence[float]], ylabel: str, line: bool = True) -> Any:
    """Mean +- sample sd at each x (joined by a line when x is a number), with the single
    jobs as grey dots; returns the errorbar."""
    for xi, ys in zip(x, points, strict=True):
        ax.plot([xi] * len(ys), ys, "o", color="0.6", markersize=3, zorder=1)
    bars = ax.errorbar(x, mean, yerr=np.nan_to_num(sd), fmt="o-" if line else "o", capsize=4,
                       zorder=2)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return bars


def summary_figure(settings: Sequence[Setting], keys: Sequence[str], names: Sequence[str],
                   title: str) -> Any:
    """One panel per metric against the swept values: a numeric x axis when one key besides
    the seed is swept, else one tick per setting."""
    from matplotlib.figure import Figure

    xkeys = [k for k in keys if k != "seed"]
    xs_raw = [s.label.get(xkeys[0]) for s in settings] if len(xkeys) == 1 else []
    numeric = bool(xs_raw) and all(isinstance(v, int | float) and not isinstance(v, bool)
                                   for v in xs_raw)
    x = [float(v) for v in xs_raw] if numeric else list(range(len(settings)))
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig = Figure(figsize=(4.2 * cols, 3.4 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, name in zip(axes, names, strict=False):
        errorbar_panel(ax, x, [s.mean.get(name, math.nan) for s in settings],
                       [s.sd.get(name, math.nan) for s in settings],
                       [s.values.get(name, []) for s in settings], name, line=numeric)
        if numeric:
            ax.set_xlabel(xkeys[0])
            if min(x) > 0 and max(x) / min(x) >= 100:
                ax.set_xscale("log")
        else:
            ticks = [",".join(f"{k}={value_text(v)}" for k, v in s.label.items()) or "all seeds"
                     for s in settings]
            ax.set_xticks(x, [short_text(t, 30) for t in ticks], rotation=30 if len(x) > 1
                          else 0, ha="right" if len(x) > 1 else "center", fontsize=8)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    n = sorted({s.n for s in settings})
    seeds = f"n = {n[0]}" if len(n) == 1 else f"n = {n[0]}-{n[-1]}"
    fig.suptitle(f"{title}: mean ± sample sd over seeds ({seeds})" if "seed" in keys
                 else f"{title}: one run per setting", fontsize=10)
    return fig


def write_figure(sweep_dir: Path, module: Any, rows: Sequence[Row], keys: Sequence[str],
                 title: str) -> Path | None:
    """summary.png, when some job completed; None otherwise (or when drawing failed)."""
    settings = [s for s in aggregate(rows, keys) if s.n]
    names = figure_metrics(module, settings)
    if not names:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            save_figure(sweep_dir / FIGURE, summary_figure(settings, keys, names, title))
    except Exception as exc:  # the figure is a convenience: the csv holds the numbers
        print(f"neurosim: note: no {FIGURE} ({type(exc).__name__}: {exc})", file=sys.stderr)
        return None
    return sweep_dir / FIGURE


def summary_table(module: Any, rows: Sequence[Row], keys: Sequence[str]) -> list[str]:
    """The end-of-sweep table on the terminal: mean +- sd of the headline metrics."""
    settings = [s for s in aggregate(rows, keys) if s.n]
    names = figure_metrics(module, settings, limit=4, varying_only=False)
    if not names or "seed" not in keys:
        return []
    first = [",".join(f"{k}={value_text(v)}" for k, v in s.label.items()) or "all seeds"
             for s in settings]
    cells = [[f"{s.mean[n]:.4g} +- {s.sd[n]:.2g}" if math.isfinite(s.sd.get(n, math.nan))
              else _fmt(s.mean.get(n, math.nan)) for n in names] for s in settings]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(names)]
    w0 = max(len("setting"), *(len(f) for f in first))
    out = [f"  {'setting':<{w0}}  {'n':>3}  " + "  ".join(
        f"{h:<{w}}" for h, w in zip(names, widths, strict=True))]
    for f, s, c in zip(first, settings, cells, strict=True):
        out.append(f"  {f:<{w0}}  {s.n:>3}  " + "  ".join(
            f"{v:<{w}}" for v, w in zip(c, widths, strict=True)))
    return out


def stopped(pool: Pool) -> str:
    """What became of the jobs that were running when the sweep was stopped."""
    if pool.kind == "process":
        return "the running jobs ended INTERRUPTED, keeping what they measured"
    if pool.owns_workers:
        return "the running jobs were stopped with their Dask workers (INTERRUPTED)"
    return "jobs already running on the cluster go on; --resume later collects them"


def exit_status(rows: Sequence[Row]) -> int:
    """0 when every job COMPLETED; 1 when one FAILED (or did not finish); else 3 (DIVERGED)."""
    statuses = {r.status for r in rows}
    if statuses <= {"COMPLETED"}:
        return EXIT_OK
    if statuses <= {"COMPLETED", "DIVERGED"}:
        return EXIT_DIVERGED
    return EXIT_FAILED


# --- plans -------------------------------------------------------------------------------------


def spec_from_payload(payload: Mapping[str, Any], parent: Path, argv: list[str],
                      exact_dir: bool) -> RunSpec:
    """The run a config.json (or a job of sweep.json) describes, rebuilt exactly."""
    try:
        name, seed, quick = payload["experiment"], payload["seed"], payload["quick"]
        values = flatten(payload["config"])
    except (KeyError, TypeError, AttributeError):
        raise ConfigError("not a neurosim run config (needs experiment, seed, quick, config)"
                          ) from None
    module = experiments.get(name)
    derived = getattr(module.Config, "DERIVED", {})
    cfg = build(module.Config, {k: v for k, v in values.items() if k not in derived})
    if jsonable(to_dict(cfg)) != payload["config"]:
        raise ConfigError(f"the {name} config cannot be rebuilt exactly from its JSON "
                          "(the experiment's Config has changed since?)")
    return RunSpec(name, cfg, int(seed), parent, bool(quick), argv, exact_dir=exact_dir)


def load_plan(sweep_dir: Path) -> dict[str, Any]:
    plan = _read_json(sweep_dir / PLAN)
    if not isinstance(plan, dict) or plan.get("kind") not in ("sweep", "search"):
        raise ConfigError(f"{sweep_dir} is not a sweep or search directory (no valid {PLAN})")
    return plan


def new_plan(kind: str, experiment: str, argv: list[str], **more: Any) -> dict[str, Any]:
    return {"kind": kind, "experiment": experiment,
            "created_utc": utc_now().isoformat(timespec="seconds"), "argv": argv,
            **more, "versions": versions(), **git_state()}


# --- running a sweep ---------------------------------------------------------------------------


def run_sweep(specs: Sequence[RunSpec], workers: int | None = None,
              executor: str | None = None, scheduler: str | None = None) -> int:
    """Run every spec (one job each) into a new sweep directory; returns the exit status."""
    return start_sweep(specs, workers, executor, scheduler)[1]


def start_sweep(specs: Sequence[RunSpec], workers: int | None = None,
                executor: str | None = None, scheduler: str | None = None) -> tuple[Path, int]:
    """`run_sweep`, returning the sweep directory too."""
    keys = list(dict.fromkeys(k for s in specs for k in s.label))
    width = len(str(len(specs) - 1))
    names = [job_name(i, s.label, width) for i, s in enumerate(specs)]
    swept = {k: list({json.dumps(jsonable(s.label[k])): s.label[k] for s in specs}.values())
             for k in keys}
    jobs_json = [{"run": n, "label": s.label, "run_config": s.payload()}
                 for n, s in zip(names, specs, strict=True)]
    with Pool(executor, workers, scheduler, len(specs)) as pool:  # first: it may refuse
        check_writable(specs[0].parent)
        sweep_dir = make_sweep_dir(specs[0].parent, "sweep", jobs_json)
        plan = new_plan("sweep", specs[0].experiment, specs[0].argv, keys=keys, swept=swept,
                        jobs=jobs_json)
        write_json(sweep_dir / PLAN, plan)
        jobs = [Job(n, s.label, replace(s, parent=sweep_dir / n, exact_dir=True))
                for n, s in zip(names, specs, strict=True)]
        print(f"sweep directory: {sweep_dir} ({len(jobs)} jobs, {pool.capacity} at a time, "
              f"{'dask' if pool.kind == 'dask' else 'local processes'})", flush=True)
        with locked(sweep_dir):
            rows = {j.run: Row(j.run, j.label) for j in jobs}
            return sweep_dir, _execute(sweep_dir, plan, jobs, rows, pool)


def resume(sweep_dir: str | Path, workers: int | None = None, executor: str | None = None,
           scheduler: str | None = None, trials: int | None = None,
           argv: list[str] | None = None) -> int:
    """Run again the jobs of a sweep (the trials of a search) that did not complete."""
    sweep_dir = Path(sweep_dir).expanduser()
    plan = load_plan(sweep_dir)
    argv = argv or ["python -m neurosim.run", "--resume", str(sweep_dir)]
    if plan["kind"] == "search":
        from neurosim.search import resume_search

        return resume_search(sweep_dir, plan, workers, executor, scheduler, trials, argv)
    if trials is not None:
        raise ConfigError("--trials is for searches; this is a sweep")
    jobs = [Job(j["run"], j["label"], spec_from_payload(j["run_config"], sweep_dir / j["run"],
                                                        argv, exact_dir=True))
            for j in plan["jobs"]]
    rows = {j.run: read_row(j.spec.parent, j.label) for j in jobs}
    todo = [j for j in jobs if rows[j.run].status != "COMPLETED"]
    with locked(sweep_dir), Pool(executor, workers, scheduler, len(todo)) as pool:
        for job in todo:  # keep an earlier attempt beside, not in the way
            if job.spec.parent.exists():
                k = 1
                while job.spec.parent.with_name(f"{job.run}.attempt{k}").exists():
                    k += 1
                job.spec.parent.rename(job.spec.parent.with_name(f"{job.run}.attempt{k}"))
                rows[job.run] = Row(job.run, job.label)
        (sweep_dir / STOP).unlink(missing_ok=True)
        print(f"resuming sweep {sweep_dir}: {len(todo)} of {len(jobs)} jobs to run", flush=True)
        return _execute(sweep_dir, plan, jobs, rows, pool)


def _execute(sweep_dir: Path, plan: dict[str, Any], jobs: Sequence[Job], rows: dict[str, Row],
             pool: Pool) -> int:
    """Run the jobs not COMPLETED in `rows`; summary.csv after each; returns the exit status."""
    module = experiments.get(plan["experiment"])
    keys = plan["keys"]
    todo = iter([j for j in jobs if rows[j.run].status != "COMPLETED"])
    stop_file = sweep_dir / STOP
    user_errors: list[str] = []
    progress = Progress(len(jobs), sum(r.status == "COMPLETED" for r in rows.values()),
                        "sweep", module)

    def summary() -> None:
        write_summary(sweep_dir, [rows[j.run] for j in jobs], keys)

    def finish(job: Job, row: Row) -> bool:
        rows[job.run] = row
        if row.output.strip():
            (sweep_dir / LOGS).mkdir(exist_ok=True)
            write_bytes(sweep_dir / LOGS / f"{job.run}.log", row.output.encode())
        progress.update(row)
        summary()
        if row.user_error:
            user_errors.append(f"{row.error} (job {job.run})")
            return False
        return True

    summary()
    try:
        stop = drive(pool, lambda: None if user_errors else next(todo, None), finish, stop_file)
    finally:
        progress.close()
    if stop is None and all(rows[j.run].status != "RUNNING" for j in jobs):
        pool.release()  # every job has ended: the workers exit while the figure is drawn
    else:
        pool.close()
    with interrupts.deferred():  # the last summary is written whole
        if pool.owns_workers:  # their processes are gone: a run still RUNNING never ends
            for job in jobs:
                if rows[job.run].status == "RUNNING":
                    _mark(job.spec.parent, "INTERRUPTED", "the sweep stopped its worker")
                    rows[job.run] = read_row(job.spec.parent, job.label)
        summary()
        figure = write_figure(sweep_dir, module, [rows[j.run] for j in jobs], keys,
                              plan["experiment"])
        stop_file.unlink(missing_ok=True)
    pool.close()
    final = [rows[j.run] for j in jobs]
    counts = Counter(r.status for r in final)
    print(f"sweep {sweep_dir}: " + ", ".join(f"{n} {s}" for s, n in counts.most_common()))
    print("\n".join(summary_table(module, final, keys)))
    print(f"summary: {sweep_dir / SUMMARY}" + (f"\nfigure: {figure}" if figure else ""))
    if counts["COMPLETED"] < len(final):
        print(f"resume: python -m neurosim.run --resume {sweep_dir}")
    if stop is not None:
        print(f"neurosim: interrupted ({signal.Signals(stop).name}); {stopped(pool)}",
              file=sys.stderr)
        return interrupts.exit_code(stop)
    if user_errors:
        print(error_line(ConfigError(f"{user_errors[0]}; the sweep stopped: fix it and "
                                     f"--resume {sweep_dir}")), file=sys.stderr)
        return EXIT_USAGE
    return exit_status(final)


# --- rerun -------------------------------------------------------------------------------------


def leaves(metrics: Any) -> dict[str, Any]:
    """Every value of nested metrics by dotted name (lists kept whole)."""
    return flatten(metrics) if isinstance(metrics, Mapping) else {}


@dataclass
class Comparison:
    compared: list[str]
    timing: list[str]  # left out: wall-clock timings
    differences: list[tuple[str, Any, Any]]  # name, original, rerun (None: absent)

    @property
    def match(self) -> bool:
        return not self.differences


def compare_metrics(original: Any, rerun: Any) -> Comparison:
    """Compare two metrics.json exactly, leaving out timings (``*_seconds``,
    ``*_per_second``); a metric present in one only is a difference."""
    a, b = leaves(original), leaves(rerun)
    out = Comparison([], [], [])
    for name in sorted(set(a) | set(b)):
        if TIMING.search(name.rsplit(".", 1)[-1]):
            out.timing.append(name)
            continue
        out.compared.append(name)
        if name not in a or name not in b or a[name] != b[name]:
            out.differences.append((name, a.get(name), b.get(name)))
    return out


def rerun(run_dir: str | Path, out: str = "runs", argv: list[str] | None = None) -> int:
    """Repeat the run in `run_dir` from its config.json into a new run directory under `out`
    and say whether the metrics match; returns the exit status (1 when they differ)."""
    path = Path(run_dir).expanduser()
    payload = _read_json(path / "config.json")
    if not isinstance(payload, dict):
        raise ConfigError(f"--rerun {path}: no readable config.json (not a run directory)")
    try:
        spec = spec_from_payload(payload, Path(out).expanduser() / str(payload["experiment"]),
                                 argv or ["python -m neurosim.run", "--rerun", str(path)],
                                 exact_dir=False)
    except ConfigError as exc:
        raise ConfigError(f"--rerun {path}: {exc}") from None
    check_writable(spec.parent)
    module = experiments.get(spec.experiment)
    outcome = run_one(spec)
    print("\n".join(summary_lines(outcome, module)))
    original = _read_json(path / "metrics.json")
    old_meta, new_meta = (_read_json(p / "meta.json") or {} for p in (path, Path(outcome.run_dir)))
    for note in _code_notes(old_meta, new_meta):
        print(f"  note: {note}")
    if original is None:
        print(f"rerun of {path}: the original has no metrics.json, nothing to compare")
        return outcome.exit_code
    cmp = compare_metrics(original, _read_json(Path(outcome.run_dir) / "metrics.json"))
    timing = f"; not compared (timing): {', '.join(cmp.timing)}" if cmp.timing else ""
    if cmp.match:
        print(f"rerun of {path}: metrics match ({len(cmp.compared)} compared: "
              f"{', '.join(cmp.compared)}{timing})")
        return outcome.exit_code
    print(f"rerun of {path}: metrics DIFFER in {len(cmp.differences)} of {len(cmp.compared)} "
          f"compared{timing}")
    for name, a, b in cmp.differences[:20]:
        print(f"  {name}: {short(a)} (original) vs {short(b)} (rerun)")
    return outcome.exit_code if outcome.exit_code != EXIT_OK else EXIT_FAILED


def _code_notes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What differs between the two runs' code and machines (a reason metrics may differ)."""
    notes = []
    if old.get("status") not in (None, "COMPLETED"):
        notes.append(f"the original run ended {old.get('status')}")
    for key in ("git_commit", "git_dirty", "brian2_target"):
        if old.get(key) != new.get(key):
            notes.append(f"{key}: {old.get(key)} (original) vs {new.get(key)} (rerun)")
    old_v, new_v = old.get("versions") or {}, new.get("versions") or {}
    for pkg in sorted(set(old_v) | set(new_v)):
        if old_v.get(pkg) != new_v.get(pkg):
            notes.append(f"{pkg} {old_v.get(pkg)} (original) vs {new_v.get(pkg)} (rerun)")
    return notes


# --- the command line --------------------------------------------------------------------------


def requested(args: argparse.Namespace) -> bool:
    """Whether the command line asks for a sweep, a search, a resume or a rerun by option
    (``key=a,b`` sweeps are recognised once the values are resolved)."""
    return bool(args.search) or any(getattr(args, k, None) is not None for k in OPTIONS)


def _alone(args: argparse.Namespace, flag: str, keep: Sequence[str]) -> None:
    defaults = vars(make_parser().parse_args([]))
    extra = [k for k, v in vars(args).items() if k not in keep and v != defaults.get(k)]
    if extra:
        shown = ["an experiment" if k == "experiment" else "key=value" if k == "overrides"
                 else "--" + k.replace("_", "-") for k in extra]
        allowed = ", ".join("--" + k for k in keep if k != flag.lstrip("-"))
        raise ConfigError(f"{flag} takes a directory and only {allowed}; drop {', '.join(shown)}")


def add_seeds(args: argparse.Namespace) -> None:
    """``--seeds N``: the override ``seed=0,1,...,N-1``."""
    if args.seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {args.seeds}")
    items = [*args.overrides, *([args.experiment] if args.experiment else [])]
    if args.seed is not None or any(i.partition("=")[0].strip() == "seed" for i in items):
        raise ConfigError("give the seeds once: --seeds N, --seed N or seed=...")
    args.overrides.append("seed=" + ",".join(map(str, range(args.seeds))))


def cli(args: argparse.Namespace, argv: list[str]) -> int:
    """`neurosim.run`'s dispatch for --seeds / --executor / --scheduler / --search /
    --resume / --rerun (a plain ``key=a,b`` sweep comes to `run_sweep` directly)."""
    full_argv = ["python -m neurosim.run", *argv]
    if args.rerun is not None:
        _alone(args, "--rerun", ("rerun", "out"))
        return rerun(args.rerun, args.out, full_argv)
    if args.resume is not None:
        _alone(args, "--resume", ("resume", "workers", "executor", "scheduler", "trials"))
        return resume(args.resume, args.workers, args.executor, args.scheduler, args.trials,
                      full_argv)
    if not args.search:
        given = [f"--{k}" for k in SEARCH_ONLY if getattr(args, k) is not None]
        if given:
            raise ConfigError(f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for "
                              "searches: add --search")
    if args.seeds is not None:
        add_seeds(args)
    if args.search:
        from neurosim.search import search_cli

        return search_cli(args, full_argv)
    specs = resolve(args, full_argv)
    if args.seeds is not None:  # --seeds 1 is a sweep over one seed: keep the column
        specs = [replace(s, label={**s.label, "seed": s.seed}) for s in specs]
    return run_sweep(specs, args.workers, args.executor, args.scheduler)


# --- from Python -------------------------------------------------------------------------------


def toml_value(value: Any) -> str:
    """A value as TOML text, as a ``key=value`` override takes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(float(value)) if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}"
                               for k, v in value.items()) + "}"
    if value is None:
        return '"none"'
    raise ConfigError(f"cannot write {short(value)} as a config value")


def namespace(experiment: str, values: Mapping[str, Any] | None = None, *,
              grid: Mapping[str, Sequence[Any]] | None = None, quick: bool = False,
              seed: int | None = None, out: str | Path = "runs",
              config: str | Path | None = None) -> argparse.Namespace:
    """The parsed command line a Python call stands for (so both go through one path)."""
    args = make_parser().parse_args([])
    items = [f"{k}={toml_value(v)}" for k, v in (values or {}).items()]
    items += [f"{k}=" + ",".join(toml_value(v) for v in vs) for k, vs in (grid or {}).items()]
    args.experiment, args.overrides, args.quick, args.seed = experiment, items, quick, seed
    args.out, args.config = str(out), (str(config) if config else None)
    return args


@dataclass(frozen=True)
class SweepResult:
    sweep_dir: Path
    rows: list[Row]  # one per job, in plan order
    exit_code: int


def sweep(experiment: str, grid: Mapping[str, Sequence[Any]] | None = None, *,
          seeds: int | Sequence[int] = 1, values: Mapping[str, Any] | None = None,
          quick: bool = False, out: str | Path = "runs", workers: int | None = None,
          executor: str | None = None, scheduler: str | None = None) -> SweepResult:
    """Run a sweep from Python: every combination of `grid` x `seeds`, fixed `values`.

    ``sweep("digits", {"lr": [1e-3, 1e-2]}, seeds=5, quick=True)`` is the command line
    ``digits lr=0.001,0.01 --seeds 5 --quick``. Raises `ConfigError` for bad input.
    """
    grid = dict(grid or {})
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    args = namespace(experiment, values, grid={**grid, "seed": seed_list}, quick=quick, out=out)
    specs = resolve(args, ["neurosim.sweep.sweep", experiment])
    specs = [replace(s, label={**s.label, "seed": s.seed}) for s in specs]
    sweep_dir, code = start_sweep(specs, workers, executor, scheduler)
    plan = load_plan(sweep_dir)
    return SweepResult(sweep_dir, [read_row(sweep_dir / j["run"], j["label"])
                                   for j in plan["jobs"]], code)
