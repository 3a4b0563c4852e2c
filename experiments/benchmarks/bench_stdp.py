"""STDP training throughput: neurosim's one-run-per-chunk network vs. one run() per sample.

Workload (issue 3): the stdp_digits network on MNIST-shaped input (784 Poisson inputs with
random pixel intensities, the original Diehl & Cook parameters: 350 ms + 150 ms per sample,
dt 0.5 ms) training with STDP. Two implementations of the same equations, on the same Brian2
target, timed side by side in one process:

- **per-sample** (the straightforward Brian2 script): for every sample, set the PoissonGroup's
  rates from Python, ``run(350 ms)``, set rates to zero, ``run(150 ms)``, renormalise the
  weights in numpy, read the spike count from the monitor;
- **neurosim** (`neurosim.snn.wta.WTANetwork`): many samples per ``run()`` through a TimedArray,
  STDP traces kept per neuron instead of per synapse, running weight totals so normalisation is
  one ``run_regularly`` multiplication per sample; on the cython target, and as a
  ``cpp_standalone`` C++ program built once and re-run per chunk with ``run_args``.

Compile time (first build and run of each network) is reported separately; throughput is
measured after it. The Cython code is compiled first in a child process (or found in Brian2's
cache), never in the timing process: after a Cython compile in the same process the
per-sample peer (two ``run()`` calls per sample) measured 0.75 s/sample against 0.29 with the
code compiled elsewhere, most likely through the ``gc.collect()`` Brian2 makes at every
``run()`` (40% of the peer's time in a profile) over a heap grown by the compiler. Then
neurosim's scaling with 100 / 400 / 1600 excitatory neurons on both targets.

    python experiments/benchmarks/bench_stdp.py       # writes its section of docs/benchmarks.md
    python experiments/benchmarks/bench_stdp.py --samples 10 --no-write   # smoke run
    python experiments/benchmarks/bench_stdp.py --variants   # issue 18 item 4: closed-form rest,
        # Euler inhibition, flushed subnormals (its own block inside the section)
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import time
from pathlib import Path

import brian2 as b2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import machine, table, write_section  # noqa: E402

from neurosim.snn import backend  # noqa: E402
from neurosim.snn.models import STDP_DIEHL_COOK  # noqa: E402
from neurosim.snn.wta import WTANetwork, WTAParams, build_layers, namespace  # noqa: E402


class PerSampleWTA:
    """The same network driven the straightforward way: one run() per sample phase."""

    def __init__(self, p: WTAParams, rng: np.random.Generator):
        self.p = p
        b2.defaultclock.dt = p.dt_ms * b2.ms
        self.inp = b2.PoissonGroup(p.n_input, rates=np.zeros(p.n_input) * b2.Hz, name="ps_input")
        self.exc, self.inh, ei, ie = build_layers(p, prefix="ps_")
        self.exc.plastic = 1.0
        self.syn = b2.Synapses(self.inp, self.exc, STDP_DIEHL_COOK["model"],
                               on_pre=STDP_DIEHL_COOK["on_pre"],
                               on_post=STDP_DIEHL_COOK["on_post"], method="exact", name="ps_syn")
        self.syn.connect()
        self.syn.w = rng.uniform(0, p.w_init_max, p.n_input * p.n_exc)
        self.syn.stdp_on = 1.0
        self.mon = b2.SpikeMonitor(self.exc, record=False, name="ps_counts")
        self.net = b2.Network(self.inp, self.exc, self.inh, self.syn, ei, ie, self.mon)
        self.ns = namespace(p)

    def present(self, X: np.ndarray) -> np.ndarray:
        p, counts = self.p, []
        for x in X:
            W = np.asarray(self.syn.w[:]).reshape(p.n_input, p.n_exc)
            self.syn.w = (W * p.norm_total / W.sum(axis=0)).ravel()
            before = np.asarray(self.mon.count[:]).copy()
            self.inp.rates = x * p.max_rate_hz * b2.Hz
            self.net.run(p.present_ms * b2.ms, namespace=self.ns)
            self.inp.rates = 0 * b2.Hz
            self.net.run(p.rest_ms * b2.ms, namespace=self.ns)
            counts.append(np.asarray(self.mon.count[:]) - before)
        return np.array(counts)


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def load() -> float:
    """The 1-minute load average (what else the machine was running)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def child_cpu_s() -> float:
    """CPU seconds (user + system) of finished child processes: the standalone program."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def measure(kind: str, target: str, n_exc: int, n_samples: int, X: np.ndarray,
            chunk: int, threads: int = 1, dt_ms: float = 0.5, keep_weights: bool = False,
            **variant) -> dict:
    """Build, compile (first tiny run), then time `n_samples` of training; `variant`: more
    `WTAParams` fields (``rest``, ``inh_method``) and ``flush_denormals`` (`WTANetwork`)."""
    flush = variant.pop("flush_denormals", True)
    used = backend.select(target).name
    if used != target:
        raise SystemExit(f"the {target} target does not build on this machine")
    b2.start_scope()
    rng = np.random.default_rng(0)
    backend.seed(rng)
    # no repeats: same work as the peer
    p = WTAParams(n_input=784, n_exc=n_exc, min_spikes=0, dt_ms=dt_ms, **variant)
    t0 = time.perf_counter()  # compile = build the network (standalone: the C++ program) + 1 sample
    if kind == "per-sample":
        net = PerSampleWTA(p, rng)
        net.present(X[:1])
        compile_s = time.perf_counter() - t0
    else:
        net = WTANetwork(p, rng, chunk=chunk, threads=threads, flush_denormals=flush)
        net.present(X[:1], plastic=True)
        compile_s = time.perf_counter() - t0
    load_before, cpu0 = load(), child_cpu_s()
    if kind == "per-sample":
        run_s = timed(lambda: net.present(X[1: 1 + n_samples]))
    else:
        run_s = timed(lambda: net.present(X[1: 1 + n_samples], plastic=True))
    cpu = child_cpu_s() - cpu0
    backend.reset_device()
    return {"kind": kind, "target": target, "n_exc": n_exc, "samples": n_samples,
            "threads": threads, "compile_s": compile_s, "s_per_sample": run_s / n_samples,
            "program_cpu_s_per_sample": cpu / n_samples, "load": (load_before, load()),
            "flush_denormals": flush, **variant,
            **({"weights": net.weights.copy()} if keep_weights else {})}


def compile_cython(sizes: list[int], X: np.ndarray) -> None:
    """Compile (or load from the cache) every Cython network the timings use, in this process."""
    measure("per-sample", "cython", 400, 1, X, 1)
    for n in sizes:
        measure("neurosim", "cython", n, 1, X, 1)


def compare_threads(args, X: np.ndarray) -> str:
    """The cpp_standalone program at 400 neurons with each OpenMP thread count, alternating
    (``--repeats`` rounds); a markdown section with the median s / sample and the ratio."""
    runs: dict[int, list[dict]] = {n: [] for n in args.threads}
    for _ in range(args.repeats):
        for n in args.threads:
            r = measure("neurosim", "cpp_standalone", 400, args.samples, X, args.chunk,
                        threads=n, dt_ms=args.dt_ms)
            print(r, flush=True)
            runs[n].append(r)
    med = {n: float(np.median([r["s_per_sample"] for r in rs])) for n, rs in runs.items()}
    base = med[args.threads[0]]
    rows = [[n, f"{med[n]:.4f}", f"{1 / med[n]:.0f}", f"{base / med[n]:.2f}x",
             f"{np.median([r['program_cpu_s_per_sample'] for r in rs]):.4f}",
             ", ".join(f"{r['load'][0]:.1f}-{r['load'][1]:.1f}" for r in rs)]
            for n, rs in runs.items()]
    return "\n".join([
        "OpenMP threads of the standalone program (`stdp_digits threads=N`, "
        f"`WTANetwork(threads=N)`), 400 neurons, dt {args.dt_ms} ms, "
        f"{args.samples} samples per timing, median of {args.repeats} alternating rounds; "
        f"ratio = {args.threads[0]} thread(s)' s / sample over this row's; program CPU = "
        "user + system seconds of the C++ program per sample (all threads); load = the "
        "1-minute load average before-after each timing (the machine's other work):",
        "",
        table(["threads", "s / sample", "samples / s", "ratio", "program CPU s / sample",
               "load"], rows),
    ])


#: the variants of issue 18 item 4 (`WTAParams` fields, and `WTANetwork`'s flush_denormals);
#: the first is the code before them, the second today's default
VARIANTS = {
    "before: subnormals not flushed": {"rest": "stepped", "inh_method": "exponential_euler",
                                       "flush_denormals": False},
    "default (subnormals flushed)": {"rest": "stepped", "inh_method": "exponential_euler"},
    "closed-form rest": {"rest": "closed_form", "inh_method": "exponential_euler"},
    "Euler inhibition": {"rest": "stepped", "inh_method": "euler"},
    "closed-form rest + Euler inhibition": {"rest": "closed_form", "inh_method": "euler"},
}


def compare_variants(args, X: np.ndarray) -> str:
    """The cpp_standalone program at 400 neurons, one thread, in each of `VARIANTS`,
    alternating (``--repeats`` rounds); a markdown section with the median wall and program
    CPU s / sample and their ratios to the default."""
    runs: dict[str, list[dict]] = {name: [] for name in VARIANTS}
    for _ in range(args.repeats):
        for name, variant in VARIANTS.items():
            r = measure("neurosim", "cpp_standalone", 400, args.samples, X, args.chunk,
                        dt_ms=args.dt_ms, keep_weights=True, **variant)
            print(name, {k: v for k, v in r.items() if k != "weights"}, flush=True)
            runs[name].append(r)
    # flushing subnormals must not change a single weight (same seed, same input)
    first, second = (runs[name][0]["weights"] for name in list(VARIANTS)[:2])
    same = "identical" if np.array_equal(first, second) else "DIFFERENT"
    wall = {n: float(np.median([r["s_per_sample"] for r in rs])) for n, rs in runs.items()}
    cpu = {n: float(np.median([r["program_cpu_s_per_sample"] for r in rs]))
           for n, rs in runs.items()}
    base = next(iter(VARIANTS))
    rows = [[name, f"`{VARIANTS[name]['rest']}`", f"`{VARIANTS[name]['inh_method']}`",
             "no" if VARIANTS[name].get("flush_denormals") is False else "yes",
             f"{wall[name]:.4f}", f"{wall[base] / wall[name]:.2f}x", f"{cpu[name]:.4f}",
             f"{cpu[base] / cpu[name]:.2f}x",
             ", ".join(f"{r['load'][0]:.1f}-{r['load'][1]:.1f}" for r in rs)]
            for name, rs in runs.items()]
    return "\n".join([
        f"400 neurons, dt {args.dt_ms} ms, one thread, chunk {args.chunk}, {args.samples} "
        f"samples timed after a first chunk, median of {args.repeats} alternating rounds "
        "(each round builds every variant's program afresh); speed-up = the first row's "
        "s / sample over this row's; program CPU = user + system seconds of the C++ program "
        "per sample; load = 1-minute load average before-after each timing:",
        "",
        table(["variant", "`snn.rest`", "`snn.inh_method`", "subnormals flushed",
               "wall s / sample", "speed-up", "program CPU s / sample", "CPU speed-up",
               "load"], rows),
        "",
        f"Weights after training without and with flushing subnormals: {same} "
        f"({first.size} weights compared bit for bit).",
        "",
        f"Machine: {machine()}.",
        "",
        f"Reproduce: `python experiments/benchmarks/bench_stdp.py --variants --samples "
        f"{args.samples} --repeats {args.repeats}`",
    ])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=200, help="samples timed at 400 neurons")
    ap.add_argument("--chunk", type=int, default=100,
                    help="samples per run() for neurosim (as in the stdp_digits experiment)")
    ap.add_argument("--baseline-samples", type=int, default=10,
                    help="samples timed for the per-sample approach (it is slow)")
    ap.add_argument("--scaling", type=int, nargs="*", default=[100, 400, 1600])
    ap.add_argument("--threads", type=int, nargs="*", default=[1, 2],
                    help="OpenMP thread counts compared on cpp_standalone at 400 neurons")
    ap.add_argument("--repeats", type=int, default=2,
                    help="alternating repeats of the thread comparison (median reported)")
    ap.add_argument("--dt-ms", type=float, default=0.5,
                    help="time step of the thread comparison (D&C: 0.5 ms)")
    ap.add_argument("--threads-only", action="store_true",
                    help="only the thread comparison (prints it; writes nothing)")
    ap.add_argument("--variants", action="store_true",
                    help="only the closed-form rest / Euler inhibition variants (VARIANTS); "
                         "writes their table inside this script's section")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    X = np.random.default_rng(1).random((max(args.samples, 200) + 1, 784)) * 0.5
    X[X < 0.35] = 0.0  # MNIST-like sparsity: ~70% of pixels off

    if args.variants:
        body = compare_variants(args, X)
        print(body)
        if not args.no_write:  # its own block inside the bench_stdp section
            write_section("bench_stdp_variants", body)
        return

    threads_body = compare_threads(args, X)
    if args.threads_only:
        print(threads_body)
        return

    with multiprocessing.get_context("spawn").Pool(1) as child:  # the compiler stays there
        child.apply(compile_cython, (sorted({400, *args.scaling}), X[:2]))
    head = [measure("per-sample", "cython", 400, args.baseline_samples, X, 1),
            measure("neurosim", "cython", 400, args.samples, X, args.chunk),
            measure("neurosim", "cpp_standalone", 400, args.samples, X, args.chunk)]
    for r in head:
        print(r, flush=True)
    base = head[0]["s_per_sample"]
    rows = [[r["kind"], r["target"], r["n_exc"], r["samples"], f"{r['s_per_sample']:.3f}",
             f"{1 / r['s_per_sample']:.1f}", f"{base / r['s_per_sample']:.1f}x",
             f"{r['compile_s']:.1f}"] for r in head]
    scaling = []
    for n in args.scaling:
        n_s = max(5, args.samples * 400 // (n * 2)) if n > 400 else args.samples
        row = [n, n_s]
        for target in ("cython", "cpp_standalone"):
            r = measure("neurosim", target, n, n_s, X, min(n_s, args.chunk))
            print(r, flush=True)
            row += [f"{r['s_per_sample']:.3f}", f"{r['compile_s']:.1f}"]
        scaling.append(row)
    body = "\n".join([
        "## STDP training throughput: one run() per chunk vs one run() per sample",
        "",
        "Diehl & Cook network with its original parameters on MNIST-shaped input (784 Poisson "
        "inputs, 350 ms + 150 ms per sample, dt 0.5 ms, STDP on), each approach timed after "
        "its first sample, in one process. Compile = building the network and running that "
        "first sample (the Cython code was compiled beforehand in a child process, so for "
        "Cython this is building the network and loading its modules; the standalone C++ "
        "program is compiled afresh every time). "
        "Speed-up = per-sample s/sample / this row's.",
        "",
        table(["approach", "Brian2 target", "exc neurons", "samples timed", "s / sample",
               "samples / s", "speed-up", "compile s"], rows),
        "",
        f"**neurosim is {base / head[2]['s_per_sample']:.1f}x faster than the per-sample "
        f"approach at 400 neurons with cpp_standalone, {base / head[1]['s_per_sample']:.1f}x "
        "on the same cython target** (target: 10x).",
        "",
        "Scaling of neurosim's network (s / sample, and compile s):",
        "",
        table(["exc neurons", "samples timed", "cython s / sample", "cython compile s",
               "standalone s / sample", "standalone compile s"], scaling),
        "",
        threads_body,
        "",
        f"Machine: {machine()}.",
        "",
        "Reproduce: `python experiments/benchmarks/bench_stdp.py` (the thread comparison "
        "alone: `--threads-only`)",
    ])
    print(body)
    if not args.no_write:
        write_section("bench_stdp", body)


if __name__ == "__main__":
    main()
