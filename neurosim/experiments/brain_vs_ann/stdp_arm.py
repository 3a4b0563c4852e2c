"""Arm 2: the Diehl & Cook STDP network, trained without labels, labelled afterwards, and its
snapshots and damaged copies scored as frozen replicas side by side."""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import replace

import numpy as np

from neurosim import data, lesion
from neurosim.experiments.brain_vs_ann.config import (
    N_CLASSES,
    N_RASTER,
    Config,
)
from neurosim.experiments.brain_vs_ann.measures import (
    accuracy,
    curve_metrics,
    energy,
    order_by_class,
    population_activity,
    retention,
    stdp_coding,
    sweep_digits,
    sweep_summary,
    synchrony,
)
from neurosim.experiments.common import Diverged, keep_build_log, progress_to
from neurosim.runner.contract import Context
from neurosim.snn import activity
from neurosim.snn.readout import assign_labels, predict


def stdp_arm(cfg: Config, ctx: Context, ds: data.Dataset, plan: dict, eval_idx: np.ndarray):
    """Train the Diehl & Cook network without labels, label it, score it; then score its
    checkpoint snapshots, lesions and noise in one pass of frozen replicas."""
    from neurosim.snn import backend

    rng = ctx.rng_for("stdp")
    ctx.scratch_dir.mkdir(parents=True, exist_ok=True)
    dirs = [tempfile.mkdtemp(prefix="brian2-standalone-", dir=ctx.scratch_dir)
            for _ in range(2)]
    try:
        trained = _stdp_train(cfg, ctx, ds, plan, rng, dirs[0])
        if trained is None:
            return None, "DIVERGED"
        replicas = _stdp_replicas(cfg, ctx, ds, eval_idx, rng, trained, dirs[1])
        return (trained, replicas), "COMPLETED"
    except BaseException:  # Ctrl-C or a failure, maybe in a C++ build: keep its output
        for d in dirs:
            keep_build_log(d, ctx)
        raise
    finally:
        backend.reset_device()
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)


def _select(cfg: Config, ctx: Context, directory: str):
    from neurosim.snn import backend

    requested = "cpp_standalone" if cfg.backend == "auto" else cfg.backend
    target = backend.select(requested, standalone_dir=directory)
    if cfg.backend == "auto":
        target = replace(target, requested="auto")
    ctx.partial.meta.update(target.meta())
    return target


def _stdp_train(cfg, ctx, ds, plan, rng, directory) -> dict | None:
    from neurosim.snn import backend, wta

    X_train = stdp_coding(cfg, ds.X_train)
    target = _select(cfg, ctx, directory)
    backend.seed(rng)
    params = replace(cfg.snn, n_input=X_train.shape[1])
    t_build = time.perf_counter()
    net = wta.WTANetwork(params, rng, chunk=cfg.chunk)
    build_seconds = time.perf_counter() - t_build
    n = len(X_train)
    total = cfg.stdp_epochs * n
    bar = ctx.progress(range(total), total=total, desc="stdp training samples")
    snapshots: dict[int, tuple] = {}
    done = [0]

    def on_chunk(counts: np.ndarray, labels: np.ndarray) -> None:
        for _ in range(len(counts) - done[0]):
            next(bar, None)
        done[0] = len(counts)
        seen = len(counts)
        if seen in plan["stdp"]:
            snapshots[seen] = (normalised(net.weights, params), net.theta_mv.copy())

    def after_epoch(epoch: int, record) -> None:
        if not wta.check_finite(net):
            raise Diverged(epoch)

    t0 = time.perf_counter()
    try:
        wta.fit(net, X_train, ds.y_train, epochs=cfg.stdp_epochs, rng=rng,
                lr_decay=cfg.lr_decay, on_chunk=on_chunk, after_epoch=after_epoch)
    except Diverged as exc:
        ctx.partial.warnings.append(f"stdp: weights or thresholds became NaN/inf in epoch "
                                    f"{exc.epoch}")
        return None
    train_seconds = time.perf_counter() - t0

    # labelling and scoring: three passes with plasticity off, one progress phase (at 28x28
    # they are 17,000 digits, two silent minutes without it)
    n_val = 0 if ds.X_val is None else len(ds.X_val)
    advance = progress_to(ctx, n + n_val + len(ds.X_test),
                          "stdp labelling (training digits), then validation and test")
    assignments, label_counts = wta.label_neurons(net, X_train, ds.y_train, N_CLASSES,
                                                  on_chunk=lambda k, _: advance(k))
    scores = {"train_accuracy": accuracy(predict(label_counts, assignments, N_CLASSES),
                                         ds.y_train)}
    if ds.X_val is not None:
        pred_val, _ = wta.classify(net, stdp_coding(cfg, ds.X_val), assignments, N_CLASSES,
                                   on_chunk=lambda k, _: advance(n + k))
        scores["val_accuracy"] = accuracy(pred_val, ds.y_val)
    pred_test, test_counts = wta.classify(net, stdp_coding(cfg, ds.X_test), assignments,
                                          N_CLASSES, record_input=True,
                                          on_chunk=lambda k, _: advance(n + n_val + k))
    return {"params": params, "weights": normalised(net.weights, params),
            "theta": net.theta_mv.copy(),
            "assignments": assignments, "label_counts": label_counts,
            "pred_test": pred_test, "test_counts": test_counts, "scores": scores,
            "recorded": net.recorded,
            "recorded_digits": min(cfg.chunk, len(ds.X_test)), "period_s": net.period_s,
            "snapshots": snapshots, "target": target, "build_seconds": build_seconds,
            "train_seconds": train_seconds}


def normalised(W: np.ndarray, p) -> np.ndarray:
    """Input weights as the network uses them: `WTANetwork` scales each neuron's input weights
    to sum ``norm_total`` before every sample, and the weights read after a chunk are not yet
    scaled (the last winner's sum can be 40% above the total, enough to make it answer every
    digit in a frozen copy)."""
    total = W.sum(axis=0, keepdims=True)
    return np.where(total > 0, W * p.norm_total / np.where(total > 0, total, 1.0), W)


def stratified_first(y: np.ndarray, n: int) -> np.ndarray:
    """Indices of the first ``n // 10`` samples of every class (at least one each)."""
    per_class = max(1, n // N_CLASSES)
    return np.sort(np.concatenate([np.flatnonzero(y == c)[:per_class]
                                   for c in range(N_CLASSES)]))


def _stdp_replicas(cfg, ctx, ds, eval_idx, rng, tr: dict, directory: str):
    """Snapshots, lesions and noise as replicas of the trained network, scored in one pass.

    Every replica is shown a few labelled training digits, then the evaluation digits. The
    snapshots (and the undamaged trained network, for the last point of the learning curve)
    are labelled from their responses to the training digits; the damaged replicas keep the
    trained network's labels (a lesion does not get a new readout).

    Lesions are scored twice with the same removed synapses (`cfg.lesion_renormalise`):
    as they are, and after the homeostatic weight renormalisation the network applies during
    training (Diehl & Cook 2015: each neuron's input weights scaled to sum ``norm_total``),
    which scales the surviving synapses up. The pair differs only in that scaling (and the
    replicas' Poisson input).
    """
    from neurosim.snn import backend
    from neurosim.snn.replicas import WTAReplicas, chunk_for

    p, W, theta = tr["params"], tr["weights"], tr["theta"]
    lab = stratified_first(ds.y_train, cfg.snapshot_label_digits)
    X_lab, y_lab = ds.X_train[lab], ds.y_train[lab]
    X_eval, y_eval = ds.X_test[eval_idx], ds.y_test[eval_idx]
    n_lab, n_digits = len(lab), len(lab) + len(X_eval)
    # the lesion and noise sweeps score the first n_sweep evaluation digits; with
    # n_eval_sweeps = 0 every replica is shown every digit (the labelling digits too), as
    # before issue 18, so that runs with the defaults reproduce
    n_sweep = sweep_digits(cfg, len(X_eval))
    everything = np.ones(n_digits, bool)
    digit = np.arange(n_digits)
    sweep_only = (everything if not cfg.n_eval_sweeps
                  else (digit >= n_lab) & (digit < n_lab + n_sweep))
    final = max(tr["snapshots"])
    specs = []  # (kind, level, weights, theta, pixels of the evaluation digits, digits shown)
    for seen in sorted(tr["snapshots"]):
        if seen != final:
            Ws, ths = tr["snapshots"][seen]
            specs.append(("snapshot", seen, Ws, ths, X_eval, everything))
    for f in cfg.lesion_fractions:
        for _ in range(cfg.repeats):
            cut = lesion.remove_synapses(W, f, rng)
            # the undamaged copies are also the learning curve's last point: every digit
            specs.append(("lesion", f, cut, theta, X_eval, everything if f == 0 else sweep_only))
            if cfg.lesion_renormalise and f > 0:  # at 0 the weights are already normalised
                specs.append(("lesion_renorm", f, normalised(cut, p), theta, X_eval,
                              sweep_only))
    for sd in cfg.noise_sds:
        if sd == 0:
            continue  # the undamaged draws of the lesion sweep
        for _ in range(cfg.repeats):
            specs.append(("noise", sd, W, theta, lesion.noisy(X_eval, sd, rng), sweep_only))
    k = len(specs)
    shown = np.stack([s[5] for s in specs])
    t0 = time.perf_counter()
    _select(cfg, ctx, directory)
    backend.seed(rng)
    reps = WTAReplicas(p, k, rng, chunk=chunk_for(p, k, n_digits))
    pairs = int(shown.sum())
    on_chunk = progress_to(ctx, pairs, f"stdp replicas ({k} networks, digits shown)")

    # faint digits are shown again (min_spikes), up to max_repeats passes after the first:
    # a phase of its own, begun at the first repeat
    again = iter(())

    def on_repeat(repeat: int, n_pairs: int) -> None:
        nonlocal again
        if repeat == 1:
            again = ctx.progress(range(p.max_repeats), total=p.max_repeats,
                                 desc=f"stdp replicas: faint digits shown again ({k} networks)")
        next(again, None)

    X = np.stack([stdp_coding(cfg, np.concatenate([X_lab, s[4]])) for s in specs])
    counts = reps.present(X, np.stack([s[2] for s in specs]), np.stack([s[3] for s in specs]),
                          on_chunk=on_chunk, on_repeat=on_repeat, shown=shown)
    for _ in again:  # no more repeats: the phase is over (its heartbeat stops)
        pass
    inh = reps.inh_counts[:, n_lab:]
    label_counts, counts = counts[:, :n_lab], counts[:, n_lab:]
    seconds = time.perf_counter() - t0
    backend.reset_device()

    def acc(r: int, assignments=None, n: int | None = None) -> float:
        if assignments is None:  # labelled from its own responses to the training digits
            assignments = assign_labels(label_counts[r], y_lab, N_CLASSES)
        return accuracy(predict(counts[r, :n], assignments, N_CLASSES), y_eval[:n])

    rows: dict[str, dict[float, list[int]]] = {"snapshot": {}, "lesion": {}, "noise": {},
                                               "lesion_renorm": {}}
    for r, s in enumerate(specs):
        rows[s[0]].setdefault(s[1], []).append(r)
    rows["noise"][0.0] = undamaged = rows["lesion"][0.0]
    if cfg.lesion_renormalise:
        rows["lesion_renorm"][0.0] = undamaged
    learning = {"samples_seen": [*sorted(rows["snapshot"]), final],
                "test_accuracy": [*(acc(rs[0]) for _, rs in sorted(rows["snapshot"].items())),
                                  float(np.mean([acc(r) for r in undamaged]))]}
    kinds = [("lesion", cfg.lesion_fractions), ("noise", cfg.noise_sds)]
    if cfg.lesion_renormalise:
        kinds.append(("lesion_renorm", cfg.lesion_fractions))
    sweeps = {kind: np.array([[acc(r, tr["assignments"], n_sweep)
                               for r in rows[kind][level]] for level in levels])
              for kind, levels in kinds}

    def spikes_per_digit(kind: str) -> dict[str, np.ndarray]:
        return {"spikes_per_digit": np.array([
            counts[rows[kind][f], :n_sweep].sum(axis=2).mean() for f in cfg.lesion_fractions])}

    lesion_table, lesion_metrics = sweep_summary(
        cfg.lesion_fractions, sweeps["lesion"], "fraction_removed", spikes_per_digit("lesion"))
    noise_table, noise_metrics = sweep_summary(cfg.noise_sds, sweeps["noise"], "noise_sd")
    renorm = {}
    if cfg.lesion_renormalise:
        table, metrics = sweep_summary(cfg.lesion_fractions, sweeps["lesion_renorm"],
                                       "fraction_removed", spikes_per_digit("lesion_renorm"))
        renorm = {"lesion_renorm_table": table, "lesion_renorm_metrics": metrics}
    return {"learning": learning, "lesion_table": lesion_table, "lesion_metrics": lesion_metrics,
            "noise_table": noise_table, "noise_metrics": noise_metrics, **renorm,
            "replicas": k, "replica_digits": n_digits, "snapshot_label_digits": n_lab,
            "replica_seconds": seconds,
            "inh_per_exc_spike": float(inh[undamaged].sum() / max(1, counts[undamaged].sum()))}


def stdp_metrics(cfg: Config, ctx: Context, ds: data.Dataset, tr: dict, rep: dict):
    """Metrics, curves, arrays and spikes of the STDP arm from its training and replicas."""
    p = tr["params"]
    rng = ctx.rng_for("stdp_activity")
    test_counts = tr["test_counts"]
    exc, inp = tr["recorded"]["exc"], tr["recorded"]["input"]
    period = tr["period_s"]
    digits = tr["recorded_digits"]
    in_per_digit = np.bincount(np.floor(inp.t / period).astype(int), minlength=digits)[:digits]
    exc_per_digit = test_counts.sum(axis=1)
    inh_per_digit = exc_per_digit * rep["inh_per_exc_spike"]
    events = (in_per_digit.mean() * p.n_exc + exc_per_digit.mean()
              + inh_per_digit.mean() * (p.n_exc - 1))
    updates = 2 * p.n_exc * p.present_ms / p.dt_ms
    present_s = p.present_ms / 1000.0
    starts = np.arange(digits) * period
    # with the rest in closed form the presentations follow each other (period = present):
    # end each window where the next starts, or rounding makes neighbours overlap by 1e-16
    ends = np.minimum(starts + present_s, np.append(starts[1:], np.inf))
    windows = np.column_stack([starts, ends])
    sync = synchrony(cfg, exc, windows, rng)
    n_train = len(ds.X_train)
    metrics = {
        "test_accuracy": accuracy(tr["pred_test"], ds.y_test),
        **tr["scores"],
        "n_exc": p.n_exc,
        "epochs": cfg.stdp_epochs,
        "samples_seen": cfg.stdp_epochs * n_train,
        "labels_used": n_train,
        "labels_drive_learning": False,
        "train_seconds": round(tr["train_seconds"], 3),
        "build_seconds": round(tr["build_seconds"], 3),
        "replica_seconds": round(rep["replica_seconds"], 3),
        "replicas": rep["replicas"],
        "snapshot_label_digits": rep["snapshot_label_digits"],
        "trainable_parameters": int(p.n_input * p.n_exc + p.n_exc),
        "learning_rule": "STDP (Diehl & Cook 2015) + adaptive thresholds, no labels; "
                         "neurons labelled afterwards",
        "locality": "local: each weight changes with the spike times of its own two neurons",
        "neurons_assigned": int(np.sum(tr["assignments"] >= 0)),
        "silent_test_fraction": float(np.mean(exc_per_digit == 0)),
        "spikes_per_test_digit": float(exc_per_digit.mean()),
        "presentation_ms": p.present_ms,
        "synaptic_ops_per_inference": float(events),
        "neuron_updates_per_inference": float(updates),
        **energy(cfg, events=float(events), updates=float(updates), leaky=True),
        "mean_rate_hz": activity.mean_rate_hz(test_counts, p.present_ms / 1000.0),
        **population_activity(test_counts),
        **sync,
        "learning_curve": curve_metrics(rep["learning"]),
        "lesion_accuracy": rep["lesion_metrics"],
        "lesion_retention": retention(rep["lesion_table"], "fraction_removed"),
        **({"lesion_accuracy_renorm": rep["lesion_renorm_metrics"],
            "lesion_retention_renorm": retention(rep["lesion_renorm_table"],
                                                 "fraction_removed")}
           if "lesion_renorm_metrics" in rep else {}),
        "noise_accuracy": rep["noise_metrics"],
        "noise_retention": retention(rep["noise_table"], "noise_sd"),
    }
    W = tr["weights"]
    rf = W[: W.shape[0] // 2] - W[W.shape[0] // 2:] if cfg.input_coding == "on_off" else W
    order, starts = order_by_class(tr["label_counts"], ds.y_train, tr["assignments"])
    raster_end = N_RASTER * period
    arrays = {"stdp_receptive_fields": rf, "stdp_on_off": np.array(cfg.input_coding == "on_off"),
              "stdp_theta_mv": tr["theta"],
              "stdp_assignments": tr["assignments"],
              "stdp_counts_raster": test_counts[:N_RASTER][:, order].T,
              "stdp_class_starts": starts, "stdp_class_rank": np.argsort(order),
              "stdp_period_s": np.array(period),
              "stdp_present_s": np.array(p.present_ms / 1000.0),
              "raster_labels": ds.y_test[:N_RASTER]}
    spikes = {"stdp_exc": exc.window(0.0, raster_end),
              "stdp_input": inp.window(0.0, raster_end)}
    curves = {"stdp_learning": rep["learning"], "stdp_lesion": rep["lesion_table"],
              "stdp_noise": rep["noise_table"]}
    if "lesion_renorm_table" in rep:
        curves["stdp_lesion_renorm"] = rep["lesion_renorm_table"]
    return metrics, curves, arrays, spikes
