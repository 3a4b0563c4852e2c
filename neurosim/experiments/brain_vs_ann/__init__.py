"""Brain vs. artificial network: three networks learn the same digits, side by side.

- ``mlp``: a bias-free ReLU multilayer perceptron trained by backpropagation and gradient
  descent (Adam, softmax cross-entropy): a global error signal computed from labels.
- ``stdp``: the Diehl & Cook (2015) spiking winner-take-all network trained by STDP without
  labels (`neurosim.snn.wta`, as in ``stdp_digits``), labelled afterwards: a local rule driven
  by the timing of the spikes on both sides of each synapse.
- ``mlp_spiking``: the trained MLP converted to integrate-and-fire neurons by data-based weight
  normalisation (Diehl et al. 2015, `neurosim.snn.convert`, the conversion the sleep phase
  uses) and run on Brian2 with Poisson input: the same knowledge, carried by spikes.

All three see the same training digits and are scored on the same test digits. They are
compared on a common axis (test accuracy after the same numbers of training samples), on the
cost of one inference (multiply-accumulates vs. synaptic events, and an energy estimate from
Horowitz's 45 nm figures, with and without memory traffic), on how their units are active
(rates, sparseness, synchrony with Elephant against shuffled surrogates), on what their
connection strengths hold (first-layer weights beside receptive fields), and on robustness
(accuracy as synapses are removed at random and as noise is added to the pixels, repeated
draws within the run). The run writes one figure and a report.md that ties each row of its
table to the claim it tests (docs/brain_vs_ann.md walks through both).

Tuning rule: nothing here was chosen by looking at test accuracy; the validation split
(``val_fraction``) is the one to look at, and the test digits are scored at the end (the
learning curves and robustness sweeps score the first ``n_eval`` test digits as they go, for
the record only).
"""

from __future__ import annotations

import time

import numpy as np

from neurosim.analysis.budgets import nested_budgets
from neurosim.experiments.brain_vs_ann import figure as main_figure
from neurosim.experiments.brain_vs_ann.budgets import label_budget_table
from neurosim.experiments.brain_vs_ann.config import (
    ALL_ARMS,
    ARMS,
    HEADLINE,
    N_RASTER,
    PRESET_NOTES,
    PRESETS,
    QUICK,
    Config,
)
from neurosim.experiments.brain_vs_ann.converted_arm import mlp_spiking_arm
from neurosim.experiments.brain_vs_ann.figure_spectrum import has_spectrum, spectrum_figure
from neurosim.experiments.brain_vs_ann.gradient_arms import (
    FEEDBACK_ARMS,
    budget_trainers,
    feedback_arm,
)
from neurosim.experiments.brain_vs_ann.measures import checkpoint_plan, load, sweep_digits
from neurosim.experiments.brain_vs_ann.mlp_arm import mlp_arm
from neurosim.experiments.brain_vs_ann.report import MISSING, ROWS, lookup, report
from neurosim.experiments.brain_vs_ann.seeds import seeds_report
from neurosim.experiments.brain_vs_ann.stdp_arm import stdp_arm, stdp_metrics
from neurosim.runner.contract import Context, Result
from neurosim.snn import activity

__all__ = ["ALL_ARMS", "ARMS", "HEADLINE", "MISSING", "PRESETS", "PRESET_NOTES", "QUICK",
           "ROWS", "Config", "checkpoint_plan", "figures", "lookup", "report", "run",
           "seeds_report"]


def figures(result: Result) -> dict:
    """The main 12-panel figure, and ``spectrum`` (`figure_spectrum`) when the run had an
    arm between backprop and STDP (fa, dfa, surrogate, eprop)."""
    out = main_figure.figures(result)
    if has_spectrum(result):
        out["spectrum"] = spectrum_figure(result)
    return out


def run(cfg: Config, ctx: Context) -> Result:
    t_start = time.perf_counter()
    ds = load(cfg, ctx.seed)
    nested_budgets(ds.y_train, cfg.label_budgets, np.random.default_rng(0))  # fail now, not later
    n_eval = min(cfg.n_eval or len(ds.X_test), len(ds.X_test))
    eval_idx = np.arange(n_eval)  # the test split is already shuffled (stratified)
    plan = checkpoint_plan(cfg, len(ds.X_train))
    out = ctx.partial
    common = {"dataset": cfg.dataset, "n_train": len(ds.X_train),
              "n_val": 0 if ds.X_val is None else len(ds.X_val), "n_test": len(ds.X_test),
              "n_eval": n_eval, "n_sweep": sweep_digits(cfg, n_eval), "repeats": cfg.repeats,
              "spread": f"sample sd (ddof=1) over {cfg.repeats} random lesion/noise draws "
                        "within this run; training seeds: sweep seed=0,1,2"}
    out.update_metrics(**common, train_seconds=0.0)
    arrays = {"raster_labels": ds.y_test[:N_RASTER],
              "feature_shape": np.array(ds.feature_shape),
              "checkpoints_stdp": np.array(plan["stdp"]), "checkpoints_mlp": np.array(plan["mlp"])}
    out.add_arrays(**arrays)

    arms = cfg.arms
    train_seconds = 0.0
    mlp_m = None
    # 1. the MLP
    if "mlp" in arms:
        mlp, status = mlp_arm(cfg, ctx, ds, plan, eval_idx)
        if status != "COMPLETED":
            out.status = status
            out.warnings.append("mlp: training diverged (see above); the arms after it were "
                                "not run")
            return out
        mlp_m, mlp_curves, mlp_arrays, mlp_extra = mlp
        for name, table in mlp_curves.items():
            out.add_curves(name, table)
        out.add_arrays(**mlp_arrays)
        train_seconds += mlp_m["train_seconds"]
        out.update_metrics(mlp=mlp_m, train_seconds=train_seconds)

    # 2. the same MLP, converted to spikes
    if "mlp_spiking" in arms:
        sp_m, sp_curves, sp_spikes = mlp_spiking_arm(cfg, ctx, ds, plan, eval_idx, mlp_extra,
                                                     mlp_m)
        for name, table in sp_curves.items():
            out.add_curves(name, table)
        for name, s in sp_spikes.items():
            out.add_spikes(name, s)
        out.update_metrics(mlp_spiking=sp_m)
        if not activity.available():
            out.warnings.append("synchrony not measured: Elephant and Neo are not installed "
                                "(pip install elephant)")
        if not sp_m["engines_identical"]:
            out.warnings.append("mlp_spiking: the Brian2 and numpy engines gave different "
                                "spikes for the same input")

    # 3. the STDP network
    stdp_counts = None
    if "stdp" in arms:
        stdp_out, status = stdp_arm(cfg, ctx, ds, plan, eval_idx)
        if status != "COMPLETED":
            out.status = status
            return out
        st_m, st_curves, st_arrays, st_spikes = stdp_metrics(cfg, ctx, ds, *stdp_out)
        for name, table in st_curves.items():
            out.add_curves(name, table)
        out.add_arrays(**st_arrays)
        for name, s in st_spikes.items():
            out.add_spikes(name, s)
        train_seconds += st_m["train_seconds"]
        out.update_metrics(stdp=st_m, train_seconds=round(train_seconds, 3))
        if st_m["spikes_per_test_digit"] == 0:
            out.warnings.append("stdp: the excitatory layer never fired on the test digits")
        trained = stdp_out[0]
        stdp_counts = (trained["label_counts"], trained["test_counts"])

    # 4. feedback alignment: the MLP without weight transport
    for rule in (r for r in FEEDBACK_ARMS if r in arms):
        train_seconds = _add_arm(out, rule, *feedback_arm(cfg, ctx, ds, rule), train_seconds)
        if out.status != "COMPLETED":
            return out

    # 5. learning speed against labelled examples: every arm, the same labelled digits (the
    # spiking gradient arms train here: their all-digits budget is their arm's training)
    trainers, spiking = budget_trainers(cfg, ctx, ds)
    lb_metrics, lb_table, _ = label_budget_table(
        cfg, ds, ctx.rng_for("label_budget"), stdp_counts, extra=trainers,
        with_mlp="mlp" in arms,
        progress=lambda items, n: ctx.progress(items, n, "label budgets (every arm trained)",
                                               done_when="finished"))
    out.add_curves("label_budget", lb_table)
    out.update_metrics(label_budget=lb_metrics)

    # 6. the spiking gradient arms' own metrics, from their full-data training
    for arm, obj in spiking.items():
        obj.train_full(int(ctx.rng_for(f"{arm}_init").integers(2**63 - 1)))
        train_seconds = _add_arm(out, arm, *obj.metrics(), train_seconds)
        if out.status != "COMPLETED":
            return out
    out.update_metrics(total_seconds=round(time.perf_counter() - t_start, 3))
    out.report = report(out.metrics, cfg)
    return out


def _add_arm(out, arm: str, metrics: dict, curves: dict, status: str,
             train_seconds: float) -> float:
    """Put a spectrum arm's curves into `out` and, when it completed, its metrics (adding its
    training time to the run's); otherwise mark `out` with its status. Returns the run's
    training seconds so far."""
    for name, table in curves.items():
        out.add_curves(name, table)
    if status != "COMPLETED":
        out.status = status
        return train_seconds
    train_seconds += metrics["train_seconds"]
    out.update_metrics(**{arm: metrics}, train_seconds=round(train_seconds, 3))
    return train_seconds
