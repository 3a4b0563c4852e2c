"""One SRC sleep phase vs. training the task it follows; the numpy and Brian2 engines side by side.

Workload (issue 10): the `sleep_replay` protocol with its defaults (sklearn digits, 5 tasks of 2
classes, a [64, 256, 256, 10] bias-free ReLU MLP, 10 epochs per task, sleep after task k lasts
600 + 200 (k - 1) steps). For every task k, in one process, from the same state:

- **train**: `train_on` task k (10 epochs, batch 10, SGD with momentum, dropout), what the
  experiment times as a task's training;
- **sleep, numpy**: `sleep_network` after it with the default engine, what the experiment does
  (data-based scales on all data seen, the input spikes drawn, the phase run);
- **sleep, Brian2**: the same phase (same scales, same input spikes) on Brian2's runtime
  ``numpy`` target and its ``cython`` target, each a network built and run once per phase as
  the experiment's ``sleep.engine=brian2`` does. The engines' weights after the phase are checked
  to be equal (the numpy target bit for bit; the cython target to rounding).

The same run then times the **28x28 preset** (issue 18): ``dataset=kmnist`` resolved by the
runner (the released MNIST code's 784-1200-1200-10 network, 2 epochs of batch 100 per task,
sleep of 15,000 + 5,000 (k - 1) steps, input window 11x11), on the KMNIST training images
(``--data-dir``, default the shared copy; its validation split carved as the experiment does):
per task, training and the numpy engine's sleep phase side by side, alternating, from the same
state. Brian2 is left out there (a 35,000-step phase of 2,400 neurons per repeat).

Every measurement is repeated ``--repeats`` times in rotating order, each from a copy of the
state before it; the table gives medians. The Cython target is compiled (or loaded from
Brian2's cache) in an untimed warm-up phase first (with the numpy target's first code
generation), and once more, untimed, for every new phase length (the input TimedArray's shape
is in the generated code); those first runs are reported on their own.

    python experiments/benchmarks/bench_sleep.py      # writes its section of docs/benchmarks.md
    python experiments/benchmarks/bench_sleep.py --repeats 1 --tasks 1 --no-write   # smoke run
    python experiments/benchmarks/bench_sleep.py --no-28 ...   # the digits table only
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import machine, table, write_section  # noqa: E402

from neurosim import data  # noqa: E402
from neurosim.experiments.sleep_replay import Config  # noqa: E402
from neurosim.sleep import protocol  # noqa: E402
from neurosim.sleep.src import run_brian2, run_numpy, sleep, sleep_input, sleep_scales  # noqa: E402

ENGINES = ("numpy", "brian2-numpy", "brian2-cython")
SHARED_KMNIST = Path(__file__).resolve().parents[3] / "shared" / "data" / "kmnist"


def time_call(fn, *args, **kwargs) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def brian2_phase(target: str, weights, alphas, spikes, params):
    """One phase on Brian2's `target`: set the target, build the chain, run it."""
    from neurosim.snn import backend

    chosen = backend.select(target)
    if chosen.name != target:
        raise RuntimeError(f"Brian2 target {target} unavailable: {chosen.fallback_reason}")
    return run_brian2(weights, alphas, spikes, params)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--tasks", type=int, default=5, help="time the first N tasks")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-cython", action="store_true", help="skip the cython target")
    p.add_argument("--no-write", action="store_true", help="print the table only")
    p.add_argument("--no-28", action="store_true", help="skip the 28x28 preset's table")
    p.add_argument("--dataset", default="kmnist", help="the 28x28 set of the second table")
    p.add_argument("--data-dir", default=str(SHARED_KMNIST) if SHARED_KMNIST.is_dir() else "",
                   help="its four IDX files ('': fetched into the cache)")
    p.add_argument("--repeats-28", type=int, default=3, help="repeats of the 28x28 table")
    p.add_argument("--cases-28", nargs="*", default=None, metavar="PRESET[:IMAGES]",
                   help="28x28 tables: a preset, and optionally the training images cycled to "
                        "this many (default: the data set's own preset, then 'mnist:60000', "
                        "MNIST's preset at MNIST's size on the same images)")
    args = p.parse_args(argv)

    load_start = os.getloadavg()[0]
    cfg = Config()
    proto = cfg.protocol()
    ds = data.digits(args.seed, test_fraction=cfg.test_fraction, dtype="float64",
                     val_fraction=cfg.val_fraction)
    X, y = ds.X_train, ds.y_train
    groups = data.task_classes(y, cfg.classes_per_task)[: args.tasks]
    rng = np.random.default_rng(args.seed)
    net = protocol.make_network(proto, X.shape[1], 10, rng)
    opt = protocol.make_optimizer_for(proto)
    engines = [e for e in ENGINES if not (args.no_cython and e == "brian2-cython")]

    # untimed warm-up of both Brian2 targets: imports, first code generation, and the Cython
    # code compiled (or loaded from Brian2's cache) once
    W0 = [W.copy() for W in net.weights]
    spikes0 = sleep_input(X.mean(axis=0), 20, proto.sleep, np.random.default_rng(0))
    alphas0 = sleep_scales(W0, X, proto.sleep)
    brian2_phase("numpy", W0, alphas0, spikes0, proto.sleep)
    compile_s = None
    if "brian2-cython" in engines:
        compile_s, _ = time_call(brian2_phase, "cython", W0, alphas0, spikes0, proto.sleep)

    rows, ratios = [], []
    seen = np.zeros(len(y), dtype=bool)
    for k, group in enumerate(groups, start=1):
        task = np.isin(y, group)
        seen |= task
        steps = protocol.sleep_steps(proto, k)
        times: dict[str, list[float]] = {name: [] for name in ("train", *engines)}
        state = (copy.deepcopy(net), copy.deepcopy(opt))
        for r in range(args.repeats):
            net_r, opt_r = copy.deepcopy(state[0]), copy.deepcopy(state[1])
            dt, _ = time_call(protocol.train_on, net_r, X[task], y[task], proto,
                              np.random.default_rng(1000 * k + r), opt_r)
            times["train"].append(dt)
        # the state the sleep phase starts from: the task trained once more, kept
        protocol.train_on(net, X[task], y[task], proto, np.random.default_rng(1000 * k), opt)
        weights = [W.copy() for W in net.weights]
        alphas = sleep_scales(weights, X[seen], proto.sleep)
        spikes = sleep_input(X[seen].mean(axis=0), steps, proto.sleep,
                             np.random.default_rng(k))
        first = None
        if "brian2-cython" in engines:  # a new phase length compiles once (Brian2 caches it)
            first, _ = time_call(brian2_phase, "cython", weights, alphas, spikes, proto.sleep)
        results = {}
        for r in range(args.repeats):
            order = engines[r % len(engines):] + engines[: r % len(engines)]
            for name in order:
                if name == "numpy":  # as the experiment: scales, input, phase
                    dt, out = time_call(sleep, weights, X[seen], steps, proto.sleep,
                                        np.random.default_rng(k), engine="numpy")
                    results[name] = out.weights
                else:
                    dt, out = time_call(brian2_phase, name.split("-")[1], weights, alphas,
                                        spikes, proto.sleep)
                    results[name] = out[0]
                times[name].append(dt)
        reference, _ = run_numpy(weights, alphas, spikes, proto.sleep)
        for name, Ws in results.items():
            for a, b in zip(reference, Ws, strict=True):
                if name == "brian2-cython":
                    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
                else:
                    np.testing.assert_array_equal(a, b)
        med = {name: statistics.median(v) for name, v in times.items()}
        best = {name: min(v) for name, v in times.items()}
        ratios.append(med["numpy"] / med["train"])
        row = [k, "{" + ",".join(map(str, group)) + "}", int(task.sum()), steps,
               f"{med['train']:.3f} ({best['train']:.3f})",
               f"{med['numpy']:.3f} ({best['numpy']:.3f})", f"{ratios[-1]:.2f}"]
        row += [f"{med[e]:.2f}" for e in engines if e != "numpy"]
        if first is not None:
            row.append(f"{first:.1f}")
        rows.append(row)
        print(" | ".join(map(str, row)), flush=True)
        # go on from the numpy engine's phase, as the experiment does
        protocol.sleep_network(net, X[seen], steps, proto.sleep, np.random.default_rng(k))

    header = ["task", "classes", "samples", "sleep steps", "train s (best)",
              "sleep numpy s (best)", "sleep / train"]
    header += [f"sleep {e.replace('-', ' ')} s" for e in engines if e != "numpy"]
    if "brian2-cython" in engines:
        header.append("cython first run s")
    worst = max(ratios)
    body = "\n".join([
        "## Sleep replay: one sleep phase vs. training the task it follows",
        "",
        f"The `sleep_replay` defaults on sklearn digits: a [64, 256, 256, 10] bias-free ReLU "
        f"MLP, {cfg.epochs} epochs per task (batch {cfg.batch_size}), then a sleep phase of "
        "600 + 200 (k - 1) steps with the numpy engine (scales on all data seen, input drawn, "
        "phase run: what the experiment times). The same phase (same scales and input spikes) "
        "on Brian2 beside it, a network built and run per phase as `sleep.engine=brian2` does; "
        "its weights equal the numpy engine's (numpy target: bit for bit, cython: to 1e-12). "
        f"Median (and best) of {args.repeats} rounds per task, engines in rotating order, one "
        "process; sleep / train is the ratio of the medians."
        + (f" Cython: the code was compiled or loaded from Brian2's cache before timing "
           f"({compile_s:.1f} s), and each new phase length is compiled once more on its "
           "first run (the input TimedArray's shape is part of the generated code), shown in "
           "the last column and not timed." if compile_s is not None else ""),
        "",
        table(header, rows),
        "",
        f"**Default engine: a sleep phase costs at most {worst:.2f}x the training of the task it "
        f"follows** (target: <= 1x; {'met' if worst <= 1 else 'not met'}).",
        "",
        f"Machine: {machine()}; load average {load_start:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end (other processes share the cores: on a busy "
        "machine both columns grow).",
        "",
        "Reproduce: `python experiments/benchmarks/bench_sleep.py` (`--no-cython` without a "
        "C compiler).",
    ])
    if not args.no_28:
        cases = args.cases_28 if args.cases_28 is not None else [args.dataset, "mnist:60000"]
        for case in cases:
            preset, _, images = case.partition(":")
            body += "\n\n" + bench_28(args, preset, int(images) if images else 0)
    print(body)
    if not args.no_write:
        write_section("bench_sleep", body)


def bench_28(args, preset: str, n_images: int = 0) -> str:
    """Training vs. the numpy engine's sleep phase at a 28x28 preset, per task, on
    ``args.dataset``'s images; with `n_images`, the training images (after the validation
    carve) are cycled to that many, the size of another data set (MNIST: 60,000 - its
    validation split), which costs as that set would (the work depends on the counts and the
    network, hardly on the pixels)."""
    from neurosim.runner.plan import build_specs

    load_start = os.getloadavg()[0]
    (spec,) = build_specs("sleep_replay", values={"dataset": preset})
    cfg = spec.cfg
    proto = cfg.protocol()
    base = data.load_dataset(args.dataset, args.data_dir or None, dtype="float64")
    ds = data.with_validation(base, cfg.val_fraction, args.seed)
    X, y = ds.X_train, ds.y_train
    if n_images:
        keep = np.resize(np.arange(len(y)), int(round(n_images * (1 - cfg.val_fraction))))
        X, y = X[keep], y[keep]
    shape = tuple(ds.feature_shape)
    groups = data.task_classes(y, cfg.classes_per_task)[: args.tasks]
    rng = np.random.default_rng(args.seed)
    net = protocol.make_network(proto, X.shape[1], 10, rng)
    opt = protocol.make_optimizer_for(proto)
    rows, ratios = [], []
    seen = np.zeros(len(y), dtype=bool)
    for k, group in enumerate(groups, start=1):
        task = np.isin(y, group)
        seen |= task
        steps = protocol.sleep_steps(proto, k)
        state = (copy.deepcopy(net), copy.deepcopy(opt))
        # the state the sleep phase starts from: the task trained once, kept
        protocol.train_on(net, X[task], y[task], proto, np.random.default_rng(1000 * k), opt)
        trained = [W.copy() for W in net.weights]
        times: dict[str, list[float]] = {"train": [], "sleep": []}
        for r in range(args.repeats_28):
            for name in ("train", "sleep") if r % 2 == 0 else ("sleep", "train"):
                if name == "train":
                    net_r, opt_r = copy.deepcopy(state[0]), copy.deepcopy(state[1])
                    dt, _ = time_call(protocol.train_on, net_r, X[task], y[task], proto,
                                      np.random.default_rng(1000 * k + r), opt_r)
                else:
                    dt, _ = time_call(sleep, trained, X[seen], steps, proto.sleep,
                                      np.random.default_rng(k), image_shape=shape)
                times[name].append(dt)
        med = {name: statistics.median(v) for name, v in times.items()}
        best = {name: min(v) for name, v in times.items()}
        ratios.append(med["sleep"] / med["train"])
        rows.append([k, "{" + ",".join(map(str, group)) + "}", int(task.sum()),
                     int(seen.sum()), steps, f"{med['train']:.2f} ({best['train']:.2f})",
                     f"{med['sleep']:.2f} ({best['sleep']:.2f})", f"{ratios[-1]:.2f}"])
        print(" | ".join(map(str, rows[-1])), flush=True)
        protocol.sleep_network(net, X[seen], steps, proto.sleep, np.random.default_rng(k),
                               image_shape=shape)
    header = ["task", "classes", "samples", "seen", "sleep steps", "train s (best)",
              "sleep s (best)", "sleep / train"]
    worst, mean = max(ratios), statistics.mean(ratios)
    verdict = ("met" if worst <= 1 else "met on average, not in every phase" if mean <= 1
               else "not met")
    return "\n".join([
        f"### The 28x28 preset '{preset}' on {args.dataset}"
        + (f", its images cycled to {n_images:,}" if n_images else ""),
        "",
        f"`sleep_replay dataset={preset}` as the runner resolves it (preset "
        f"'{spec.preset}'): [784, {', '.join(map(str, cfg.hidden))}, 10], {cfg.epochs} epochs "
        f"per task of batch {cfg.batch_size}, sleep of {cfg.sleep_steps} + "
        f"{cfg.sleep_steps_per_task} (k - 1) steps, {len(y)} training images "
        + (f"({args.dataset}'s {len(ds.y_train)} after the validation carve, repeated in "
           f"order to the size of a {n_images:,}-image set less its validation split: "
           "the cost of that set, not its accuracy). " if n_images else
           f"(the rest of the {len(base.y_train)} are the validation split). ")
        + "Per task, training and the numpy "
        "engine's sleep phase (scales on all data seen, input drawn, phase run) alternate, "
        f"median (and best) of {args.repeats_28} rounds; `seen` is the images the phase reads.",
        "",
        table(header, rows),
        "",
        f"**Preset '{preset}'{' at ' + format(n_images, ',') + ' images' if n_images else ''}"
        f": a sleep phase costs {mean:.2f}x the training of the task it follows "
        f"on average, at most {worst:.2f}x** (target: <= 1x; "
        f"{verdict}). The phase's cost grows with the data seen (the scales' pass) and its length; "
        "training's with the task's images: with more images per task (MNIST: ~12,000) the "
        "ratio falls.",
        "",
        f"Load average {load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end.",
        "",
        f"Reproduce: `python experiments/benchmarks/bench_sleep.py --data-dir DIR "
        f"--cases-28 {preset}{':' + str(n_images) if n_images else ''}` (the {args.dataset} "
        "IDX files; '' fetches them).",
    ])


if __name__ == "__main__":
    main()
