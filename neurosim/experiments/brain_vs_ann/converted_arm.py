"""Arm 3: the trained MLP converted to integrate-and-fire neurons and run on Brian2 (and on
`neurosim.snn.convert`'s numpy engine, which must give the same spikes)."""

from __future__ import annotations

import time

import numpy as np

from neurosim import data, lesion
from neurosim.experiments.brain_vs_ann.config import (
    N_RASTER,
    Config,
)
from neurosim.experiments.brain_vs_ann.measures import (
    accuracy,
    curve_metrics,
    energy,
    population_activity,
    retention,
    robustness,
    sweep_digits,
    sweep_summary,
    synchrony,
)
from neurosim.runner.contract import Context
from neurosim.snn import activity, convert
from neurosim.spikes import Spikes


def run_converted_on_brian2(weights, spikes: np.ndarray, p: convert.ConversionParams,
                            keep: int) -> tuple[convert.SpikeRun, Spikes]:
    """The converted network on Brian2 (`convert.build_chain`, as `convert.simulate_brian2`),
    keeping the hidden layer's spikes of the first `keep` samples.

    Returns (`convert.SpikeRun`, hidden-layer `Spikes` of the first `keep` samples).
    """
    import brian2 as b2

    from neurosim.snn import backend

    T, n, n_in = spikes.shape
    table = np.transpose(spikes, (1, 0, 2)).reshape(n * T, n_in)
    net, obj = convert.build_chain(weights, table, p.dt_ms,
                                   thresholds=[p.threshold] * len(weights), reset_every=T)
    with backend.running(net):
        net.run(n * T * p.dt_ms * b2.ms, namespace={})
    groups = [obj["input"], *obj["layers"]]
    trains = [convert.spike_trains(m, n * T, g.N, p.dt_ms).reshape(n, T, g.N)
              for m, g in zip(obj["monitors"], groups, strict=True)]
    run = convert.SpikeRun.from_dense(np.transpose(trains[-1], (1, 0, 2)),
                                      [tr.sum(axis=1, dtype=np.int64) for tr in trains],
                                      p.dt_ms)
    mon = obj["monitors"][1]
    t = np.asarray(mon.t[:] / b2.second)
    i = np.asarray(mon.i[:])
    window = keep * T * p.dt_ms / 1000.0
    return run, Spikes(i[t < window], t[t < window], window, groups[1].N)


def spiking_events(run: convert.SpikeRun, sizes: list[int]) -> np.ndarray:
    """Synaptic events of each sample: every spike of a layer reaches every unit above."""
    return sum(run.counts[layer].sum(axis=1) * sizes[layer + 1] for layer in range(len(sizes) - 1))


def energy_vs_time(cfg: Config, Wn: list, spikes: np.ndarray, acc_t: np.ndarray,
                   sizes: list[int], n_points: int = 12) -> dict[str, np.ndarray]:
    """Accuracy against the energy one inference costs when it is cut after k time steps.

    At `n_points` presentation lengths k (log-spaced from one step to all), the same input is
    simulated for k steps only (membranes start at zero, as in the full run) and its mean
    synaptic events and neuron updates are costed with `energy`: the curve of what a shorter
    presentation saves against what it loses, issue 16's accuracy-vs-energy curve.

    Returns
    -------
    dict of ndarray
        Columns ``step``, ``time_ms``, ``accuracy`` (at step k, from `acc_t`),
        ``synaptic_ops``, ``energy_ops_nj``, ``energy_total_nj``, one row per length.
    """
    p = cfg.conversion
    n_steps = len(acc_t)
    ks = np.unique(np.round(np.geomspace(1, n_steps, min(n_points, n_steps))).astype(int))
    n_neurons = sum(sizes[1:])
    cols: dict[str, list[float]] = {"synaptic_ops": [], "energy_ops_nj": [],
                                    "energy_total_nj": []}
    for k in ks:
        run = convert.simulate(Wn, spikes[:k], p.threshold, engine="numpy", dt_ms=p.dt_ms)
        ops = float(spiking_events(run, sizes).mean())
        e = energy(cfg, events=ops, updates=n_neurons * int(k))
        cols["synaptic_ops"].append(ops)
        cols["energy_ops_nj"].append(e["energy_ops_nj"])
        cols["energy_total_nj"].append(e["energy_total_nj"])
    return {"step": ks, "time_ms": ks * p.dt_ms, "accuracy": acc_t[ks - 1],
            **{k: np.asarray(v) for k, v in cols.items()}}


def mlp_spiking_arm(cfg: Config, ctx: Context, ds: data.Dataset, plan: dict,
                    eval_idx: np.ndarray, mlp: dict, mlp_metrics: dict):
    """Convert the trained MLP (and its checkpoint snapshots), run it on Brian2 and on numpy
    (they must give the same spikes), measure accuracy against presentation time, cost,
    activity and robustness."""
    from neurosim.snn import backend

    rng = ctx.rng_for("mlp_spiking")
    p = cfg.conversion
    weights = mlp["weights"]
    sizes = [weights[0].shape[0], *[W.shape[1] for W in weights]]
    Wn, factors = convert.normalise(weights, ds.X_train, p.percentile, p.chain)
    X_eval, y_eval = ds.X_test[eval_idx], ds.y_test[eval_idx]

    phases = ctx.progress(range(3), total=3,
                          desc="mlp_spiking (Brian2 run, snapshots, lesions and noise)")
    t0 = time.perf_counter()
    spikes = convert.poisson_input(ds.X_test, p.n_steps, p.p_max, rng)
    n_brian2 = min(cfg.spiking_brian2_samples or len(ds.X_test), len(ds.X_test))
    target = backend.select(cfg.spiking_backend)
    ctx.partial.meta["mlp_spiking_brian2_target"] = target.name
    try:
        b2_run, hidden = run_converted_on_brian2(Wn, spikes[:, :n_brian2], p, keep=100)
    finally:
        backend.reset_device()
    brian2_seconds = time.perf_counter() - t0
    np_run = convert.simulate(Wn, spikes, p.threshold, engine="numpy", dt_ms=p.dt_ms)
    # Brian2 ran the first n_brian2 test digits: the numpy engine's spikes there must be its
    # spikes, bit for bit; the arm's numbers come from the numpy engine's run over them all
    identical = bool(np.array_equal(np_run.output[:, :n_brian2], b2_run.output) and all(
        np.array_equal(a[:n_brian2], b)
        for a, b in zip(np_run.counts, b2_run.counts, strict=True)))
    # the run the arm reports: Brian2's when it ran every test digit, as it always did
    run = b2_run if n_brian2 == len(ds.X_test) else np_run

    y = ds.y_test
    acc_t = convert.accuracy_vs_time(run.output, y)
    pred = convert.predict_from_counts(run.output.sum(axis=0))
    mlp_pred = mlp["net"].predict(ds.X_test)
    close = np.flatnonzero(acc_t >= mlp_metrics["test_accuracy"] - 0.01)
    step_close = int(close[0]) + 1 if close.size else None
    events = spiking_events(run, sizes)
    n_neurons = sum(sizes[1:])
    close_cost: dict[str, float | None] = {"synaptic_ops_to_mlp_accuracy": None,
                                           "energy_ops_to_mlp_accuracy_nj": None,
                                           "energy_total_to_mlp_accuracy_nj": None}
    if step_close is not None:  # the same input, cut at that step (membranes start at zero)
        early = convert.simulate(Wn, spikes[:step_close], p.threshold, engine="numpy",
                                 dt_ms=p.dt_ms)
        ops = float(spiking_events(early, sizes).mean())
        e = energy(cfg, events=ops, updates=n_neurons * step_close)
        close_cost = {"synaptic_ops_to_mlp_accuracy": ops,
                      "energy_ops_to_mlp_accuracy_nj": e["energy_ops_nj"],
                      "energy_total_to_mlp_accuracy_nj": e["energy_total_nj"]}
    window_s = p.n_steps * p.dt_ms / 1000.0

    next(phases, None)
    # learning curve: each MLP snapshot converted (normalised on the training digits) and run
    learning: dict[str, list[float]] = {"samples_seen": [], "test_accuracy": []}
    for seen in sorted(mlp["snapshots"]):
        out = convert.convert_and_simulate(mlp["snapshots"][seen], ds.X_train, X_eval, p,
                                           rng).output
        learning["samples_seen"].append(seen)
        learning["test_accuracy"].append(accuracy(convert.predict_from_counts(out.sum(0)),
                                                  y_eval))

    next(phases, None)

    n_sweep = sweep_digits(cfg, len(X_eval))  # the sweeps' digits: the first n_sweep
    X_sw, y_sw = X_eval[:n_sweep], y_eval[:n_sweep]

    def score(Ws, X) -> float:
        out = convert.simulate(Ws, convert.poisson_input(X, p.n_steps, p.p_max, rng),
                               p.threshold).output
        return accuracy(convert.predict_from_counts(out.sum(axis=0)), y_sw)

    lesions = robustness(cfg.lesion_fractions, cfg.repeats,
                         lambda f, r: score(lesion.lesion(Wn, f, rng), X_sw))
    noise = robustness(cfg.noise_sds, cfg.repeats,
                       lambda sd, r: score(Wn, lesion.noisy(X_sw, sd, rng)))
    lesion_table, lesion_metrics = sweep_summary(cfg.lesion_fractions, lesions,
                                                 "fraction_removed")
    noise_table, noise_metrics = sweep_summary(cfg.noise_sds, noise, "noise_sd")
    next(phases, None)
    # the presentations follow each other without a gap (membranes reset at each digit)
    kept = min(100, len(y))
    sync = synchrony(cfg, hidden, np.column_stack([np.arange(kept), np.arange(1, kept + 1)])
                     * window_s, rng)
    metrics = {
        "test_accuracy": accuracy(pred, y),
        "agreement_with_mlp": accuracy(pred, mlp_pred),
        "presentation_steps": p.n_steps,
        "presentation_ms": p.n_steps * p.dt_ms,
        "steps_to_mlp_accuracy": step_close,
        "engines_identical": identical,
        "brian2_samples": n_brian2,
        "normalisation_factors": [float(f) for f in factors],
        "epochs": mlp_metrics["epochs"],
        "samples_seen": mlp_metrics["samples_seen"],
        "labels_used": mlp_metrics["labels_used"],
        "labels_drive_learning": True,
        "train_seconds": 0.0,
        "brian2_seconds": round(brian2_seconds, 3),
        "trainable_parameters": 0,
        "learning_rule": "none of its own: the MLP's weights, rescaled per layer",
        "locality": "inherits the MLP's global rule (backpropagation before conversion)",
        "synaptic_ops_per_inference": float(events.mean()),
        **close_cost,
        "neuron_updates_per_inference": n_neurons * p.n_steps,
        **energy(cfg, events=float(events.mean()), updates=n_neurons * p.n_steps),
        "mean_rate_hz": activity.mean_rate_hz(run.counts[1], window_s),
        **population_activity(run.counts[1]),
        **sync,
        "learning_curve": curve_metrics(learning),
        "lesion_accuracy": lesion_metrics,
        "lesion_retention": retention(lesion_table, "fraction_removed"),
        "noise_accuracy": noise_metrics,
        "noise_retention": retention(noise_table, "noise_sd"),
    }
    steps = np.arange(1, p.n_steps + 1)
    curves = {"mlp_spiking_time": {"step": steps, "time_ms": steps * p.dt_ms,
                                   "accuracy": acc_t},
              "mlp_spiking_energy": energy_vs_time(cfg, Wn, spikes, acc_t, sizes),
              "mlp_spiking_learning": learning, "mlp_spiking_lesion": lesion_table,
              "mlp_spiking_noise": noise_table}
    spikes_out = {"mlp_spiking_hidden": hidden.window(0.0, N_RASTER * window_s)}
    return metrics, curves, spikes_out
