"""Sweeps: many runs of one experiment, each an ordinary run directory, summarised beside them.

From Python (values are Python values; nothing goes through text)::

    from neurosim.runner.executors import LocalProcesses
    from neurosim.runner.sweep import sweep

    result = sweep("digits", {"lr": [1e-3, 1e-2]}, seeds=5, quick=True,
                   executor=LocalProcesses(workers=2))
    result.sweep_dir, [r.status for r in result.rows]

A sweep directory ``runs/NAME/<UTC time>-sweep-<hash>/`` holds ``sweep.json`` (the plan: every
job's resolved config), ``summary.csv``, ``summary.png`` (`neurosim.runner.summary`) and one run
directory per job, named ``<index>-<swept values>`` (`neurosim.runner.plan.job_name`).

Jobs run through an `Executor` (`neurosim.runner.executors`). At most one job per worker is
handed out at a time, so that stopping leaves nothing queued. A job that fails or diverges is
a FAILED / DIVERGED row and the others go on; summary.csv is rewritten (atomically) after every
job. Ctrl-C or SIGTERM: the running jobs end INTERRUPTED (each run keeps what it measured), no
new job starts, the summary is written and the exit status is 128 + the signal. `resume` runs
the jobs whose run directory is not COMPLETED; an earlier attempt is kept as
``<run>.attempt<k>``.

Brian2 jobs in parallel: Brian2 2.9 guards each module of its Cython cache
(``~/.cython/brian_extensions``) with a file lock, so workers share that cache; a
cpp_standalone project lives in its run's private scratch directory.
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from neurosim import experiments
from neurosim.runner import signals
from neurosim.runner.config import ConfigError, short
from neurosim.runner.contract import jsonable
from neurosim.runner.executors import Executor, choose_executor, drive
from neurosim.runner.plan import (
    LOGS,
    PLAN,
    SCRATCH,
    STOP,
    SUMMARY,
    Job,
    Row,
    build_specs,
    config_file_values,
    job_name,
    load_plan,
    locked,
    make_sweep_dir,
    mark_ended,
    new_plan,
    read_json,
    read_row,
    spec_from_payload,
)
from neurosim.runner.rundir import write_bytes, write_json
from neurosim.runner.single import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    RunSpec,
    check_writable,
    run_one,
    summary_lines,
)
from neurosim.runner.summary import (
    Progress,
    compare_metrics,
    exit_status,
    summary_table,
    write_figure,
    write_seeds_report,
    write_summary,
)


@dataclass(frozen=True)
class SweepResult:
    """A finished (or stopped) sweep, read back from its directory."""

    sweep_dir: Path
    rows: list[Row]  # one per job, in plan order
    exit_code: int
    error: str | None = None  # the user error that stopped the sweep (exit code 2)
    signal: int | None = None  # the signal that stopped it


# --- running a sweep ---------------------------------------------------------------------------


def run_specs(specs: Sequence[RunSpec], executor: Executor) -> SweepResult:
    """Run every spec (one job each) into a new sweep directory."""
    keys = list(dict.fromkeys(k for s in specs for k in s.label))
    width = len(str(len(specs) - 1))
    names = [job_name(i, s.label, width) for i, s in enumerate(specs)]
    swept = {k: list({json.dumps(jsonable(s.label[k])): s.label[k] for s in specs}.values())
             for k in keys}
    jobs_json = [{"run": n, "label": s.label, "run_config": s.payload()}
                 for n, s in zip(names, specs, strict=True)]
    check_writable(specs[0].parent)
    try:
        executor.start(len(specs))  # before the folder: it may refuse
        sweep_dir = make_sweep_dir(specs[0].parent, "sweep", jobs_json)
        plan = new_plan("sweep", specs[0].experiment, specs[0].argv, keys=keys, swept=swept,
                        jobs=jobs_json)
        write_json(sweep_dir / PLAN, plan)
        jobs = [Job(n, s.label, replace(s, parent=sweep_dir / n, exact_dir=True))
                for n, s in zip(names, specs, strict=True)]
        print(f"sweep directory: {sweep_dir} ({len(jobs)} jobs, {executor.capacity} at a "
              f"time, {executor.description})", flush=True)
        with locked(sweep_dir):
            rows = {j.run: Row(j.run, j.label) for j in jobs}
            return _execute(sweep_dir, plan, jobs, rows, executor)
    finally:
        executor.close()


def sweep(experiment: str, grid: Mapping[str, Sequence[Any]] | None = None, *,
          seeds: int | Sequence[int] = 1, values: Mapping[str, Any] | None = None,
          quick: bool = False, config: str | Path | None = None, out: str | Path = "runs",
          workers: int | None = None, executor: Executor | None = None) -> SweepResult:
    """Run every combination of `grid` x `seeds`, with fixed `values`, as one sweep.

    Parameters
    ----------
    experiment : str
        A name of `neurosim.experiments.EXPERIMENTS`.
    grid : mapping of dotted key to list of values
        ``{"lr": [1e-3, 1e-2], "hidden": [[32], [64, 32]]}``: one job per combination.
    seeds : int or sequence of int
        ``5`` means seeds 0..4.
    values : mapping of dotted key to value
        Fixed for every job (``{"epochs": 5}``).
    quick : bool
        The experiments' ``--quick`` values, under `values` and `grid`.
    config : path, optional
        A TOML config file, under everything else.
    out : path
        The sweep directory is made in ``out/<experiment>/``.
    workers : int, optional
        Local processes at once (default: the cores, at most the jobs).
    executor : Executor, optional
        Where jobs run: `LocalProcesses` (the default) or `Dask`.

    Returns
    -------
    SweepResult

    Raises
    ------
    InvalidParameterError
        For bad input, before anything is made.

    Examples
    --------
    ``sweep("digits", {"lr": [1e-3, 1e-2]}, seeds=5, quick=True)`` is the command line
    ``digits lr=0.001,0.01 --seeds 5 --quick``.
    """
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    file_values = config_file_values(experiment, config)
    specs = build_specs(experiment, values=values, grid=grid, seeds=seed_list, quick=quick,
                        file_values=file_values, out=out, label_seed=True,
                        argv=["neurosim.runner.sweep.sweep", experiment])
    with signals.handling():
        return run_specs(specs, choose_executor(executor, workers))


def resume(sweep_dir: str | Path, *, workers: int | None = None,
           executor: Executor | None = None, argv: Sequence[str] | None = None) -> SweepResult:
    """Run again the jobs of a sweep that did not complete (a search: `search.resume`)."""
    sweep_dir = Path(sweep_dir).expanduser()
    plan = load_plan(sweep_dir)
    if plan["kind"] != "sweep":
        raise ConfigError(f"{sweep_dir} is a search: resume it with neurosim.runner.search")
    argv = list(argv or ["neurosim.runner.sweep.resume", str(sweep_dir)])
    executor = choose_executor(executor, workers)
    jobs = [Job(j["run"], j["label"], spec_from_payload(j["run_config"], sweep_dir / j["run"],
                                                        argv, exact_dir=True))
            for j in plan["jobs"]]
    rows = {j.run: read_row(j.spec.parent, j.label) for j in jobs}
    todo = [j for j in jobs if rows[j.run].status != "COMPLETED"]
    with locked(sweep_dir):
        executor.start(len(todo))
        try:
            for job in todo:  # keep an earlier attempt beside, not in the way
                if job.spec.parent.exists():
                    k = 1
                    while job.spec.parent.with_name(f"{job.run}.attempt{k}").exists():
                        k += 1
                    job.spec.parent.rename(job.spec.parent.with_name(f"{job.run}.attempt{k}"))
                    rows[job.run] = Row(job.run, job.label)
            (sweep_dir / STOP).unlink(missing_ok=True)
            print(f"resuming sweep {sweep_dir}: {len(todo)} of {len(jobs)} jobs to run",
                  flush=True)
            return _execute(sweep_dir, plan, jobs, rows, executor)
        finally:
            executor.close()


def _execute(sweep_dir: Path, plan: dict[str, Any], jobs: Sequence[Job], rows: dict[str, Row],
             executor: Executor) -> SweepResult:
    """Run the jobs not COMPLETED in `rows`; summary.csv after each."""
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
        stop = drive(executor, lambda: None if user_errors else next(todo, None), finish,
                     stop_file)
    finally:
        progress.close()
    if stop is None and all(rows[j.run].status != "RUNNING" for j in jobs):
        executor.release()  # every job has ended: the workers exit while the figure is drawn
    else:
        executor.close()
    with signals.deferred():  # the last summary is written whole
        for job in jobs:
            if executor.owns_workers and rows[job.run].status == "RUNNING":
                # its process is gone: a run still RUNNING never ends
                mark_ended(job.spec.parent, "INTERRUPTED", "the sweep stopped its worker")
                rows[job.run] = read_row(job.spec.parent, job.label)
            _drop_empty_scratch(job.spec.parent)
        summary()
        figure = write_figure(sweep_dir, module, [rows[j.run] for j in jobs], keys,
                              plan["experiment"])
        report = write_seeds_report(sweep_dir, module, [rows[j.run] for j in jobs], keys)
        stop_file.unlink(missing_ok=True)
    executor.close()
    final = [rows[j.run] for j in jobs]
    counts = Counter(r.status for r in final)
    print(f"sweep {sweep_dir}: " + ", ".join(f"{n} {s}" for s, n in counts.most_common()))
    print("\n".join(summary_table(module, final, keys)))
    print(f"summary: {sweep_dir / SUMMARY}" + (f"\nfigure: {figure}" if figure else "")
          + (f"\nreport: {report}" if report else ""))
    if counts["COMPLETED"] < len(final):
        print(f"resume: python -m neurosim.run --resume {sweep_dir}")
    if stop is not None:
        print(f"neurosim: interrupted ({signal.Signals(stop).name}); {executor.stopped()}",
              file=sys.stderr)
        return SweepResult(sweep_dir, final, signals.exit_code(stop), signal=stop)
    if user_errors:
        why = f"{user_errors[0]}; the sweep stopped: fix it and --resume {sweep_dir}"
        return SweepResult(sweep_dir, final, EXIT_USAGE, error=why)
    return SweepResult(sweep_dir, final, exit_status(final))


def _drop_empty_scratch(run_dir: Path) -> None:
    """A job stopped from outside (a Dask worker closed) cannot remove its scratch folder."""
    scratch = run_dir / SCRATCH
    if scratch.is_dir():
        shutil.rmtree(scratch, ignore_errors=True)


# --- rerun -------------------------------------------------------------------------------------


def rerun(run_dir: str | Path, out: str | Path = "runs",
          argv: Sequence[str] | None = None) -> int:
    """Repeat the run in `run_dir` from its config.json into a new run directory under `out`
    and say whether the metrics match; returns the exit status (1 when they differ)."""
    path = Path(run_dir).expanduser()
    payload = read_json(path / "config.json")
    if not isinstance(payload, dict):
        raise ConfigError(f"--rerun {path}: no readable config.json (not a run directory)")
    try:
        spec = spec_from_payload(payload, Path(out).expanduser() / str(payload["experiment"]),
                                 list(argv or ["neurosim.runner.sweep.rerun", str(path)]),
                                 exact_dir=False)
    except ConfigError as exc:
        raise ConfigError(f"--rerun {path}: {exc}") from None
    check_writable(spec.parent)
    module = experiments.get(spec.experiment)
    outcome = run_one(spec)
    print("\n".join(summary_lines(outcome, module)))
    original = read_json(path / "metrics.json")
    old_meta, new_meta = (read_json(p / "meta.json") or {} for p in (path, Path(outcome.run_dir)))
    for note in _code_notes(old_meta, new_meta):
        print(f"  note: {note}")
    if original is None:
        print(f"rerun of {path}: the original has no metrics.json, nothing to compare")
        return outcome.exit_code
    cmp = compare_metrics(original, read_json(Path(outcome.run_dir) / "metrics.json"))
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
