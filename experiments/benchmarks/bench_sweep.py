"""Sweep throughput: 8 jobs one after another vs. a sweep on local processes vs. a Dask
LocalCluster, and the parallel efficiency serial / (parallel x workers).

Workload: ``digits epochs=800`` (sklearn's 8x8 digits, the default 64-256-10 MLP, Adam) over
seeds 0..7: one job is ~4 ms of CPU per epoch plus ~0.6 s to load the data, write its files
and draw its figure, i.e. a few seconds. Why that long: measured by CPU time (2-core machine),
a sweep costs ~1.1 s of CPU more than the plain loop per local worker process (a fresh
interpreter importing numpy, scikit-learn, matplotlib and neurosim) and ~2 s per Dask worker
(nanny + worker), paid once and spread over four jobs each. With ``--quick`` jobs (~0.5 s)
that start-up dominates and the number measures Python's import time more than the sweep;
the issue's literal workload, 8 ``digits --quick`` jobs, is measured second and reported
beside it (``--no-quick`` skips it). The three ways run in alternation, ``--repeats``
rounds with the order rotated and ``--settle`` seconds of idle before each measurement, and
the median wall time of each is reported. Serial is the plain loop a user would write without the
sweep machinery: `neurosim.runner.single.run_one` per job in this process (BLAS on one thread, as in
a worker). The sweep times include everything the command line pays: the pool (or cluster)
start-up, summary.csv after every job, summary.png at the end.

    pip install -e ".[dask]"
    python experiments/benchmarks/bench_sweep.py     # writes its section of docs/benchmarks.md
    python experiments/benchmarks/bench_sweep.py --repeats 1 --epochs 20 --no-write   # smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import machine, table, write_section  # noqa: E402

from neurosim.runner.executors import Dask, LocalProcesses  # noqa: E402
from neurosim.runner.plan import build_specs  # noqa: E402
from neurosim.runner.single import run_one  # noqa: E402
from neurosim.runner.sweep import run_specs  # noqa: E402

EXECUTORS = {"process": LocalProcesses, "dask": Dask}


def specs_for(out: Path, jobs: int, epochs: int | None) -> list:
    """`digits epochs=EPOCHS` over seeds 0..jobs-1; `digits --quick` where epochs is None."""
    values = {} if epochs is None else {"epochs": epochs}
    return build_specs("digits", values=values, seeds=list(range(jobs)), out=out,
                       quick=epochs is None, argv=["bench_sweep"])


def serial(out: Path, jobs: int, epochs: int | None, workers: int) -> float:
    specs = specs_for(out, jobs, epochs)
    t0 = time.perf_counter()
    for i, spec in enumerate(specs):  # run_one holds BLAS to one thread, as in a worker
        run_one(replace(spec, parent=out / "serial" / str(i), exact_dir=True),
                say=lambda _msg: None)
    return time.perf_counter() - t0


def swept(executor: str) -> Callable[[Path, int, int | None, int], float]:
    def run(out: Path, jobs: int, epochs: int | None, workers: int) -> float:
        specs = specs_for(out, jobs, epochs)
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            code = run_specs(specs, EXECUTORS[executor](workers)).exit_code
        seconds = time.perf_counter() - t0
        if code != 0:
            raise RuntimeError(f"the {executor} sweep ended with exit status {code}")
        return seconds

    return run


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=8)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--epochs", type=int, default=800, help="digits epochs per job")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--settle", type=float, default=2.0,
                   help="seconds of idle before each measurement (the last one's processes exit)")
    p.add_argument("--no-dask", action="store_true", help="skip the Dask LocalCluster")
    p.add_argument("--no-quick", action="store_true",
                   help="skip the second workload, 8 `digits --quick` jobs")
    p.add_argument("--no-write", action="store_true", help="print, do not edit the docs")
    a = p.parse_args(argv)

    ways = {"serial (one process, a loop of run_one)": serial,
            "sweep, local processes": swept("process")}
    if not a.no_dask:
        try:
            import dask.distributed  # noqa: F401

            ways["sweep, Dask LocalCluster"] = swept("dask")
        except ImportError:
            print("dask[distributed] not installed: no Dask row", file=sys.stderr)
    workloads = [(f"digits epochs={a.epochs}", a.epochs)]
    if not a.no_quick:
        workloads.append(("digits --quick", None))
    parts = ["## Sweeps: local processes and Dask (bench_sweep)",
             f"{a.jobs} jobs (seeds 0..{a.jobs - 1}), {a.workers} workers. Parallel efficiency = "
             "serial time / (sweep time x workers); the sweep times include starting the pool or "
             "cluster, the per-job summary.csv and the final summary.png. Median of "
             f"{a.repeats} rounds, the ways run in alternation with {a.settle:g} s of idle before "
             "each."]
    for title, epochs in workloads:
        times = measure(ways, a, epochs)
        parts += [f"**{a.jobs} x `{title}`**", efficiency_table(times, a)]
    parts += [f"Machine: {machine()}.",
              "Reproduce: `pip install -e \".[dask]\" && python "
              "experiments/benchmarks/bench_sweep.py` on an otherwise idle machine."]
    body = "\n\n".join(parts)
    print(body)
    if not a.no_write:
        write_section("bench_sweep", body)


def measure(ways: dict, a: argparse.Namespace, epochs: int | None) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in ways}
    names = list(ways)
    for r in range(a.repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            out = Path(tempfile.mkdtemp(prefix="bench_sweep-"))
            time.sleep(a.settle)
            try:
                seconds = ways[name](out, a.jobs, epochs, a.workers)
            finally:
                shutil.rmtree(out, ignore_errors=True)
            times[name].append(seconds)
            print(f"round {r + 1}: {name}: {seconds:.2f} s", flush=True)
    return times


def efficiency_table(times: dict[str, list[float]], a: argparse.Namespace) -> str:
    names = list(times)
    t_serial = statistics.median(times[names[0]])
    rows = []
    for name in names:
        t = statistics.median(times[name])
        workers = 1 if name == names[0] else a.workers
        eff = "-" if workers == 1 else f"{t_serial / (t * workers):.2f}"
        rows.append([name, workers, f"{t:.2f}", f"{t / a.jobs:.2f}", eff,
                     ", ".join(f"{x:.1f}" for x in times[name])])
    return table(["way", "workers", "wall time (s)", "per job (s)", "parallel efficiency",
                  "rounds (s)"], rows)


if __name__ == "__main__":
    main()
