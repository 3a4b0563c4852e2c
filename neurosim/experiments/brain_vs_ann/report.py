"""report.md: the table of every metric per arm and the sentences tying each row to a claim."""

from __future__ import annotations

import math
from typing import Any

from neurosim import lesion
from neurosim.analysis.energy import ENERGY_MODELS
from neurosim.analysis.paired import fmt
from neurosim.experiments.brain_vs_ann.config import (
    ARM_TITLES,
    ARMS,
    Config,
)

#: The learning-rule spectrum, from exact backprop to STDP (issue 17); the converted network
#: is a side row. Per arm: what changed biologically from the row above.
SPECTRUM = ("mlp", "fa", "dfa", "surrogate", "eprop", "stdp")
SPECTRUM_SIDE = ("mlp_spiking",)
CHANGES = {
    "mlp": "the reference: exact gradients, errors sent back through the transposed weights",
    "fa": "weight transport removed: the error goes down through a fixed random matrix, "
          "not W^T",
    "dfa": "no layer-by-layer backward pass: the output error reaches the hidden layer "
           "directly through a fixed random matrix",
    "surrogate": "spikes: LIF neurons driven by Poisson input over time; learning is exact "
                 "BPTT again (weight transport back, non-local in time)",
    "eprop": "locality in time: eligibility traces run forward, a learning signal is "
             "broadcast through random feedback (no BPTT, no weight transport)",
    "stdp": "supervision removed: a local spike-timing rule without labels; labels only "
            "name the neurons afterwards",
    "mlp_spiking": "side row: backprop's weights carried by integrate-and-fire spikes "
                   "(nothing learned with spikes)",
}
#: The label-budget column that stands for each spectrum arm (STDP: its logistic readout, a
#: trained readout as the gradient arms have).
BUDGET_OF = {"stdp": "stdp_logistic"}

#: The rows of the report's table: (section, what, metric key; dotted for nested ones).
ROWS = [
    ("learning", "test accuracy (all test digits)", "test_accuracy"),
    ("learning", "validation accuracy", "val_accuracy"),
    ("learning", "training accuracy", "train_accuracy"),
    ("learning", "training samples seen", "samples_seen"),
    ("learning", "epochs", "epochs"),
    ("learning", "labels used", "labels_used"),
    ("learning", "labels drive the weight changes", "labels_drive_learning"),
    ("learning", "training wall time (s)", "train_seconds"),
    ("learning", "trainable parameters", "trainable_parameters"),
    ("learning", "learning rule", "learning_rule"),
    ("learning", "locality of the rule", "locality"),
    ("cost", "synaptic operations per digit (MACs or synaptic events)",
     "synaptic_ops_per_inference"),
    ("cost", "neuron updates per digit", "neuron_updates_per_inference"),
    ("cost", "energy per digit, synaptic operations only (nJ)", "energy_ops_nj"),
    ("cost", "energy per digit with memory and neuron updates (nJ)", "energy_total_nj"),
    ("activity", "mean firing rate while a digit is shown (Hz)", "mean_rate_hz"),
    ("activity", "active fraction (units active per digit)", "active_fraction"),
    ("activity", "Treves-Rolls sparseness (1: dense, 1/N: one unit)", "treves_rolls_sparseness"),
    ("activity", "spike contrast (population synchrony, 0-1)", "spike_contrast"),
    ("activity", "spike contrast: surrogates' mean", "spike_contrast_surrogate"),
    ("activity", "spike contrast: surrogates' sd", "spike_contrast_surrogate_sd"),
    ("activity", "spike contrast: empirical p (one-sided)", "spike_contrast_p"),
    ("activity", "spike contrast: bin size of its peak (ms)", "spike_contrast_bin_ms"),
    ("activity", "pairwise correlation of binned spikes (mean over pairs)", "correlation"),
    ("activity", "correlation: surrogates' mean", "correlation_surrogate"),
    ("activity", "correlation: surrogates' sd", "correlation_surrogate_sd"),
    ("activity", "correlation: empirical p (one-sided)", "correlation_p"),
    ("activity", "neurons active (>= 2 spikes) in the synchrony window", "sync_neurons_active"),
    ("activity", "neurons analysed for synchrony", "sync_neurons_analysed"),
]

MISSING = "–"


def lookup(metrics: dict, arm: str, key: str) -> Any:
    value: Any = metrics.get(arm, {})
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def cell(value: Any) -> str:
    """A metric as the report writes it (the test reads it back against metrics.json)."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict) and "mean" in value:
        if value["mean"] is None:  # e.g. a retention whose clean accuracy is 0
            return MISSING
        sd = value.get("sd")
        return f"{value['mean']:.3f} ± {sd:.3f}" if sd is not None else f"{value['mean']:.3f}"
    if isinstance(value, list | tuple):
        return ", ".join(cell(v) for v in value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return MISSING
        return f"{value:.4g}"
    return str(value).replace("|", "/")


def table(metrics: dict, rows: list[tuple[str, str]]) -> list[str]:
    """Markdown table: one row per (what, metric key), one column per arm."""
    lines = ["| what | metric | " + " | ".join(ARM_TITLES[a] for a in ARMS) + " |",
             "|---|---|" + "---|" * len(ARMS)]
    for what, key in rows:
        lines.append(f"| {what} | `{key}` | "
                     + " | ".join(cell(lookup(metrics, a, key)) for a in ARMS) + " |")
    return lines


def _pct(x: float | None) -> str:
    return MISSING if x is None else f"{100 * x:.1f}%"


def report(metrics: dict, cfg: Config) -> str:
    """report.md: every metric per arm, and what each row says about the seed articles'
    claims. Every number comes from `metrics` (the same values as metrics.json)."""
    m = {a: metrics.get(a, {}) for a in ARMS}
    mlp, st, sp = m["mlp"], m["stdp"], m["mlp_spiking"]
    L = []
    L += ["# Brain vs. artificial network", "",
          f"Data: {metrics['dataset']}, {metrics['n_train']} training, {metrics['n_val']} "
          f"validation and {metrics['n_test']} test digits; every arm saw the same training "
          f"digits and was scored on the same test digits. Learning curves score the first "
          f"{metrics['n_eval']} test digits, the lesion and noise sweeps the first "
          f"{metrics.get('n_sweep', metrics['n_eval'])}. Spread: "
          f"{metrics['spread']}. The whole run took {cell(metrics.get('total_seconds'))} s "
          f"(`total_seconds`), training {cell(metrics.get('train_seconds'))} s of it "
          f"(`train_seconds`).", ""]
    L += ["## The table", ""]
    main_rows = [(what, key) for sec, what, key in ROWS if sec in ("learning", "cost")]
    L += table(metrics, main_rows) + [""]
    L += label_budget_section(metrics)
    L += spectrum_section(metrics, cfg)
    L += ["## Accuracy against training presentations (compute, not labels)", "",
          f"Test accuracy on the first {metrics['n_eval']} test digits after the same numbers "
          "of training presentations (`learning_curve` in metrics.json). This axis counts "
          "optimisation work, not data: the MLP's checkpoints are mid-training (one pass of "
          "Adam over the first k digits), and every STDP snapshot is read out with "
          f"{cfg.snapshot_label_digits} labelled digits. Learning speed is the label-budget "
          "table above.", ""]
    seen = sorted({int(s) for a in ARMS for s in m[a].get("learning_curve", {})})
    L += ["| samples seen | " + " | ".join(ARM_TITLES[a] for a in ARMS) + " |",
          "|---|" + "---|" * len(ARMS)]
    for s in seen:
        L.append(f"| {s} | " + " | ".join(cell(m[a].get("learning_curve", {}).get(str(s)))
                                          for a in ARMS) + " |")
    L += ["",
          f"**Labels.** The MLP learns from a global error: each of its "
          f"{cell(mlp.get('labels_used'))} training presentations brought its label, whose "
          f"error was sent back through the layers (backpropagation) to change every weight. "
          f"The STDP network never saw a label while "
          f"learning; its {cell(st.get('labels_used'))} labels were used once, afterwards, to "
          f"name each neuron after the class it answers most. It reached "
          f"{cell(st.get('test_accuracy'))} test accuracy against the MLP's "
          f"{cell(mlp.get('test_accuracy'))}: learning without a teacher from "
          f"{cell(st.get('samples_seen'))} samples costs accuracy, and the brain-like rule is "
          f"also the slow one in wall time ({cell(st.get('train_seconds'))} s against "
          f"{cell(mlp.get('train_seconds'))} s here, because a spiking network must be "
          f"simulated in time).",
          "",
          f"**Biases.** Conversion to spikes needs a bias-free ReLU network (a bias has no "
          f"spiking counterpart), so the MLP arm has none. The same MLP with biases reached "
          f"{cell(mlp.get('biased_test_accuracy'))} test and "
          f"{cell(mlp.get('biased_val_accuracy'))} validation accuracy against "
          f"{cell(mlp.get('test_accuracy'))} and {cell(mlp.get('val_accuracy'))}: leaving the "
          f"biases out cost {cell(mlp.get('bias_cost'))} test accuracy (`mlp.bias_cost`, "
          f"positive: the biased network was better).", ""]
    L += ["## The same knowledge, carried by spikes", "",
          f"The trained MLP's weights, rescaled layer by layer (data-based normalisation, "
          f"Diehl et al. 2015; factors {cell(sp.get('normalisation_factors'))}), drive "
          f"integrate-and-fire neurons on Brian2 with Poisson input "
          f"({cfg.conversion.max_rate_hz:g} Hz for a white pixel, dt "
          f"{cfg.conversion.dt_ms:g} ms). After {cell(sp.get('presentation_ms'))} ms the "
          f"spiking network classifies {cell(sp.get('test_accuracy'))} of the test digits "
          f"correctly (MLP: {cell(mlp.get('test_accuracy'))}) and agrees with the MLP on "
          f"{cell(sp.get('agreement_with_mlp'))} of them; it comes within one point of the "
          f"MLP's accuracy after {cell(sp.get('steps_to_mlp_accuracy'))} steps "
          f"(`mlp_spiking_time.csv` has the whole curve). Brian2 and the numpy engine, fed the "
          f"same input spikes, gave identical spikes: {cell(sp.get('engines_identical'))} "
          f"(on the first {cell(sp.get('brian2_samples'))} test digits, which Brian2 ran; the "
          "numpy engine scored them all). "
          "Nothing was learned in the conversion: the memory is entirely in the connection "
          "strengths, which could be moved to a different kind of neuron.", ""]
    L += ["## Cost of one inference", "",
          "Counts per test digit: an MLP does one multiply-accumulate (MAC) per weight; a "
          "spiking network does one accumulate per synaptic event (a spike times its fan-out: "
          "inputs to every excitatory neuron, excitatory to its inhibitory partner, "
          "inhibitory to every other excitatory neuron; for the converted network, each "
          "layer's spikes to every unit above). Energies are Horowitz's (ISSCC 2014, 45 nm): "
          f"fp32 MAC {cfg.mac_pj:g} pJ, fp32 add {cfg.add_pj:g} pJ, a 64-bit read from an "
          f"8 kB SRAM {cfg.mem_pj:g} pJ. `energy_ops_nj` counts the synaptic operations only "
          "(the figure most SNN papers quote). `energy_total_nj` adds memory and time: one "
          "weight read per MAC or event, a read and a write of the target's state per "
          "event, a read and a write of every neuron's state at every time step of the "
          "presentation (time-stepped simulation), one MAC per step for a leaky neuron's "
          "decay, and a write and a read of every MLP activation. The SRAM figure is "
          "optimistic (the weights here fit only in a larger memory; DRAM costs "
          "~1.3-2.6 nJ per access), so the memory terms are lower bounds.", "",
          f"Synaptic operations only, the spiking networks look "
          f"{_ratio(st.get('energy_ops_nj'), mlp.get('energy_ops_nj'))} (STDP) and "
          f"{_ratio(sp.get('energy_ops_nj'), mlp.get('energy_ops_nj'))} (converted) as "
          f"expensive as the MLP; with memory and neuron updates counted, "
          f"{_ratio(st.get('energy_total_nj'), mlp.get('energy_total_nj'))} and "
          f"{_ratio(sp.get('energy_total_nj'), mlp.get('energy_total_nj'))}. Stopping the "
          f"converted network's presentation as soon as it is within a point of the MLP "
          f"({cell(sp.get('steps_to_mlp_accuracy'))} steps) brings it to "
          f"{cell(sp.get('energy_ops_to_mlp_accuracy_nj'))} nJ of synaptic operations and "
          f"{cell(sp.get('energy_total_to_mlp_accuracy_nj'))} nJ in all "
          f"(`energy_*_to_mlp_accuracy_nj`). Rate-coded "
          "networks pay for every time step of the presentation, and the state of every "
          "neuron must be read and written at each: as several papers found, once memory is "
          "counted the spiking versions lose on conventional hardware. Their case rests on "
          "event-driven hardware whose neurons cost nothing while no spike arrives.", ""]
    L += energy_band_section(metrics, mlp)
    L += ["## Activity: rates, sparseness, synchrony", ""]
    L += table(metrics, [(what, key) for sec, what, key in ROWS if sec == "activity"]) + [""]
    L += [f"Sparseness: the STDP layer's winner-take-all leaves "
          f"{_pct(st.get('active_fraction'))} of its neurons active on a digit, against "
          f"{_pct(mlp.get('active_fraction'))} of the MLP's ReLU units and "
          f"{_pct(sp.get('active_fraction'))} of the converted network's hidden neurons: "
          f"competition, not the spikes themselves, makes a code sparse. The converted "
          f"network fires at {cell(sp.get('mean_rate_hz'))} Hz on average (the STDP layer at "
          f"{cell(st.get('mean_rate_hz'))} Hz): rate coding of fast analog values needs high "
          "rates.", "",
          "Synchrony is measured with Elephant on Neo spike trains of the active neurons "
          f"(fewer than 2 spikes: dropped; at most {cfg.sync_neurons} drawn at random) of the "
          "first 100 test digits, inside the presentation windows only (the silent gaps "
          "between digits are cut out): spike contrast (Ciba et al. 2018, with the bin size "
          "of its peak, its time scale) and the mean pairwise correlation coefficient of the "
          f"spike trains in {cfg.sync_bin_ms:g} ms bins. Each is set against "
          f"{cfg.n_surrogates} {_SURROGATES[cfg.sync_method].format(d=cfg.sync_dither_ms)} "
          "which keep every neuron's response to every digit and destroy finer alignment; "
          "p is the empirical one-sided p-value (1 + surrogates at or above the data) / "
          "(1 + surrogates). Spike contrast costs ~50x the correlation, so only the first "
          f"{min(cfg.sync_contrast_surrogates, cfg.n_surrogates)} surrogates get it (its p "
          f"cannot fall below 1/{min(cfg.sync_contrast_surrogates, cfg.n_surrogates) + 1}). "
          f"{_sync_sentence(st, sp)} The MLP has no spikes and no time: its units "
          "compute one value each, all at once, layer after layer.", ""]
    L += ["## Memory in connection strengths", "",
          "The figure draws the MLP's first-layer weights beside the STDP network's receptive "
          "fields (ON minus OFF input weight of each pixel). The STDP neurons store whole "
          "prototypes of digits, one way of writing one digit each, learned by competition; "
          "the MLP's hidden units store distributed stroke and contrast detectors, useful "
          "only together with the layer above. Both keep everything they learned in their "
          "weights: the converted network shows it, since it works from the MLP's weights "
          "alone.", ""]
    L += ["## Robustness, measured", ""]
    pct = [(lesion.percent_key(f), lesion.percent_key(f)[:-3]) for f in cfg.lesion_fractions]
    noise = [(lesion.percent_key(sd), sd) for sd in cfg.noise_sds]
    rob_rows = ([(f"accuracy, {p}% of synapses removed", f"lesion_accuracy.{k}")
                 for k, p in pct]
                + [(f"retention (accuracy / clean accuracy), {p}% removed",
                    f"lesion_retention.{k}") for k, p in pct]
                + [(f"accuracy, {p}% removed, then renormalised (STDP only)",
                    f"lesion_accuracy_renorm.{k}") for k, p in pct]
                + [(f"retention, {p}% removed, then renormalised (STDP only)",
                    f"lesion_retention_renorm.{k}") for k, p in pct]
                + [(f"accuracy, pixel noise sd {sd:g}", f"noise_accuracy.{k}") for k, sd in noise]
                + [(f"retention, pixel noise sd {sd:g}", f"noise_retention.{k}")
                   for k, sd in noise])
    L += table(metrics, rob_rows) + [""]
    L += [f"Mean ± sample sd over {cfg.repeats} random draws (of which synapses are removed, "
          f"or of the noise) on the first {metrics.get('n_sweep', metrics['n_eval'])} test "
          "digits; retention is each "
          "draw's accuracy over the mean undamaged accuracy of the same arm. Every learned "
          "weight matrix loses the same share of its synapses (the MLP's two layers, the "
          "STDP network's input weights, the converted network's two layers); the fixed "
          "lateral inhibition of the STDP network is left intact. Plain lesions rescale "
          "nothing. The STDP network also has a homeostatic mechanism of its own, the "
          "weight renormalisation it applies during training (each neuron's input weights "
          "scaled to a fixed sum, Diehl & Cook 2015), so its lesions are scored twice with "
          "the same removed synapses: as they are, and renormalised afterwards (the survivors "
          "scaled up); the MLP and the converted network have no such mechanism (– in those "
          "rows). The STDP rows have a spread even at 0% removed: its replicas see the "
          "digits as Poisson spike trains, and every draw redraws the spikes. "
          + _robust_sentence(cfg, mlp, st, sp), ""]
    L += ["## Every other metric", "",
          "The rest of metrics.json, per arm (– where an arm has no such value):", ""]
    L += table(metrics, [(key.replace("_", " "), key) for key in other_keys(metrics)]) + [""]
    L += ["## Reading the claims", "",
          "- *Structure*: a layered feed-forward network with a readout (MLP) against one "
          "layer of competing excitatory neurons with inhibitory partners (STDP).",
          "- *Learning rule*: global error and labels against local spike timing without "
          "labels (`locality` row); the local rule learns with no teacher but reaches a lower "
          "accuracy and needs a labelled readout to be scored at all.",
          "- *Memory in connection strengths*: both, literally; the conversion moves it "
          "between neuron types.",
          "- *Parallel, synchronous processing*: the spiking networks integrate evidence "
          f"over time ({cell(st.get('presentation_ms'))} ms per digit for STDP; the "
          f"converted network needed {cell(sp.get('steps_to_mlp_accuracy'))} ms to match "
          "the MLP); the synchrony rows say how much their spikes align beyond chance.",
          "- *Robustness*: see the lesion and noise rows; graceful degradation is measured "
          "here, not assumed.", ""]
    return "\n".join(L)


#: Label-budget columns in the report: (metrics key, title, what the arm was given).
BUDGET_COLUMNS = (("mlp", "MLP"), ("stdp_vote", "STDP, vote"), ("stdp_logistic", "STDP, logistic"),
                  ("nearest_class_mean", "pixels: nearest mean"), ("knn1", "pixels: 1-NN"),
                  ("logistic", "pixels: logistic"))
#: The spectrum's arms in the label-budget table, where a run has them.
SPECTRUM_BUDGET_COLUMNS = (("fa", "FA"), ("dfa", "DFA"), ("surrogate", "SNN, surrogate"),
                           ("eprop", "SNN, e-prop"))


def label_budget_section(metrics: dict) -> list[str]:
    """The learning-speed table: test accuracy of every arm at every label budget."""
    lb = metrics.get("label_budget")
    if not lb:
        return []
    keys = list(lb["labelled_examples"])
    given = lb.get("given", {})
    columns = BUDGET_COLUMNS + tuple(c for c in SPECTRUM_BUDGET_COLUMNS if c[0] in lb)
    L = ["## Learning speed: accuracy against labelled examples", "",
         "Every arm got exactly the same labelled training digits at each budget (k per "
         "class; `label_budget` in metrics.json, `label_budget.csv`). What each was given: "
         + "; ".join(f"**{k}**: {v}" for k, v in given.items())
         + f" ({lb.get('validation_labels', 0)} validation digits). The MLP was trained to "
         "convergence at every budget (early stopping); compute is its own column "
         "(`mlp_gradient_steps`). The two STDP readouts of the same spike counts separate "
         "how good the features are (logistic) from how good Diehl & Cook's vote is.", "",
         "| labelled digits | " + " | ".join(t for _, t in columns)
         + " | MLP gradient steps |",
         "|---|" + "---|" * (len(columns) + 1)]
    for key in keys:
        per_class = "all" if key == "kall" else key[1:]
        L.append(f"| {lb['labelled_examples'][key]} ({per_class} per class) | "
                 + " | ".join(cell(lb.get(col, {}).get(key)) for col, _ in columns)
                 + f" | {cell(lb['mlp_gradient_steps'].get(key))} |")
    if lb.get("gradient_steps"):
        L += ["", "Gradient steps of the other gradient arms at each budget "
              "(`label_budget.gradient_steps`): " + "; ".join(
                  f"{ARM_TITLES[arm]}: " + ", ".join(f"{cell(v)}" for v in steps.values())
                  for arm, steps in lb["gradient_steps"].items()) + "."]
    L += ["", "One seed: no difference between arms is claimed here; "
          "`python -m neurosim.run brain_vs_ann --seeds 10` writes the sweep's report.md "
          "with paired tests and confidence intervals (docs/brain_vs_ann.md).", ""]
    return L


def energy_band_section(metrics: dict, mlp: dict) -> list[str]:
    """Energy per digit (with memory and neuron updates) under each published energy model:
    the spread that the assumptions alone make (`neurosim.analysis.energy`)."""
    if not any("energy_band_total_nj" in metrics.get(a, {}) for a in ARMS):
        return []
    rows = [(f"{name} ({spec.source}), nJ", f"energy_band_total_nj.{name}")
            for name, spec in ENERGY_MODELS.items()]
    rows += [(f"{name}, MLP charged for non-zero inputs only, nJ",
              f"energy_band_total_nj_nonzero.{name}") for name in ENERGY_MODELS]
    return ["Energy per digit with memory and neuron updates under four published energy "
            "models (`neurosim.analysis.energy`). The MLP is also charged only for weights "
            "whose input is non-zero (a zero pixel, a silent ReLU unit): "
            f"{cell(mlp.get('macs_nonzero_per_inference'))} of "
            f"{cell(mlp.get('synaptic_ops_per_inference'))} MACs per digit. TrueNorth and "
            "Loihi price synaptic events as those chips do (memory included) and the MLP at "
            "fp32 45 nm with its memory. The spread across rows is what the assumptions alone "
            "make.", ""] + table(metrics, rows) + [""]


def other_keys(metrics: dict) -> list[str]:
    """Metric names of the arms that no other table of the report shows."""
    shown = {key for _, _, key in ROWS} | {"learning_curve", "lesion_accuracy",
                                           "lesion_accuracy_renorm", "lesion_retention",
                                           "lesion_retention_renorm", "noise_retention",
                                           "noise_accuracy", "energy_band_total_nj",
                                           "energy_band_total_nj_nonzero"}
    keys = {k for a in ARMS for k in metrics.get(a, {})}
    return sorted(keys - shown)


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or not b:
        return MISSING
    r = a / b  # as people write it: 130x, not 1.3e+02x
    return f"{fmt(r, 2)}x" if r >= 1 else f"1/{fmt(1 / r, 2)}x"


_SURROGATES = {
    "dither": "surrogates in which every spike moved by up to ± {d:g} ms "
              "(`elephant.spike_train_surrogates.dither_spikes`, within the windows),",
    "trial_shift": "surrogates in which each neuron's response to each digit moved as a whole "
                   "by up to ± {d:g} ms, wrapping within its window (trial shifting),"}


def _num(x: float | None) -> str:
    return MISSING if x is None else fmt(x)


def _sync_sentence(st: dict, sp: dict) -> str:
    parts = []
    for name, arm in (("STDP layer", st), ("Converted network", sp)):
        v, mu, sd, p = (arm.get(k) for k in ("correlation", "correlation_surrogate",
                                             "correlation_surrogate_sd", "correlation_p"))
        if v is None or mu is None or p is None:
            continue
        verdict = ("above its stimulus-locked null" if p < 0.05
                   else "no synchrony beyond the stimulus-locked null shown")
        flat = arm.get("spike_contrast_surrogate_sd") == 0
        parts.append(f"{name}: correlation {_num(v)} against {_num(mu)} ± {_num(sd)} "
                     f"(p = {_num(p)}), {verdict}; spike contrast "
                     f"{_num(arm.get('spike_contrast'))} against "
                     f"{_num(arm.get('spike_contrast_surrogate'))} ± "
                     f"{_num(arm.get('spike_contrast_surrogate_sd'))} (p = "
                     f"{_num(arm.get('spike_contrast_p'))}), peak at "
                     f"{_num(arm.get('spike_contrast_bin_ms'))} ms bins"
                     + (" (a null without spread: at so coarse a bin dithering moves "
                        "nothing, and spike contrast says nothing about fine timing)"
                        if flat else ""))
    return ". ".join(parts) + "." if parts else ""


def _robust_sentence(cfg: Config, mlp: dict, st: dict, sp: dict) -> str:
    f = 0.3 if 0.3 in cfg.lesion_fractions else max(cfg.lesion_fractions)
    key = lesion.percent_key(f)
    vals = {a: lookup({"x": arm}, "x", f"lesion_accuracy.{key}.mean")
            for a, arm in (("MLP", mlp), ("STDP", st), ("converted", sp))}
    base = {a: lookup({"x": arm}, "x", "lesion_accuracy.0pct.mean")
            for a, arm in (("MLP", mlp), ("STDP", st), ("converted", sp))}
    drops = [f"{a} {100 * (base[a] - v):+.1f} points".replace("+", "−", 1)
             if base[a] - v >= 0 else f"{a} +{100 * (v - base[a]):.1f} points"
             for a, v in vals.items() if v is not None and base[a] is not None]
    if not drops:
        return ""
    kept = [(a, lookup({"x": arm}, "x", f"{k}.{key}.mean"))
            for a, arm, k in (("MLP", mlp, "lesion_retention"), ("STDP", st, "lesion_retention"),
                              ("STDP renormalised", st, "lesion_retention_renorm"),
                              ("converted", sp, "lesion_retention"))]
    kept_text = ", ".join(f"{a} {r:.2f}" for a, r in kept if r is not None)
    return (f"With {100 * f:.0f}% of the synapses removed, accuracy fell by: "
            + ", ".join(d.replace("−", "", 1) for d in drops)
            + (f"; retention (one seed): {kept_text}" if kept_text else "")
            + ". One published MNIST comparison reported -3.9 points for a spiking network "
              "against -10.1 for an ANN at 30%; there is no published Diehl & Cook lesion "
              "curve to hold this against.")


def spectrum_section(metrics: dict, cfg: Config) -> list[str]:
    """The learning-rule spectrum (issue 17): one row per arm from exact backprop to STDP,
    what changed biologically at each step and what it cost in accuracy, labels and energy.
    A single run states it is one seed and claims no difference."""
    present = [a for a in SPECTRUM if metrics.get(a)]
    if not any(a in metrics for a in ("fa", "dfa", "surrogate", "eprop")):
        return []
    lb = metrics.get("label_budget") or {}
    budget_keys = [k for k in lb.get("labelled_examples", {}) if k != "kall"]
    few = budget_keys[0] if budget_keys else None
    few_title = f"{few[1:]} labelled per class" if few else "few labels"
    L = ["## The learning-rule spectrum: from backprop to STDP", "",
         "Each row changes one thing from the row above (issue 17; docs/concepts.md maps each "
         "rule to its equations and code). Test accuracy on all test digits; the label-budget "
         f"column is the same arm trained on {few_title} (the label-budget table above; STDP: "
         "its logistic readout); energy per digit with memory and neuron updates "
         "(fp32, 45 nm; the band is the range over the four energy models).", "",
         f"| step | arm | what changed biologically | test accuracy | {few_title} | "
         "train s | gradient steps | energy per digit (nJ) | energy band (nJ) |",
         "|---|---|---|---|---|---|---|---|---|"]
    rows = present + [a for a in SPECTRUM_SIDE if metrics.get(a)]
    for n, arm in enumerate(rows):
        m = metrics[arm]
        band = m.get("energy_band_total_nj") or {}
        band_text = (f"{fmt(min(band.values()))} to {fmt(max(band.values()))}" if band
                     else MISSING)
        e_total = m.get("energy_total_nj")
        few_acc = (lb.get(BUDGET_OF.get(arm, arm), {}).get(few) if few else None)
        steps = m.get("gradient_steps")
        if arm == "mlp":  # the mlp arm's training, as the FA/DFA arms count theirs
            steps = cfg.mlp_epochs * math.ceil(metrics["n_train"] / cfg.mlp_batch_size)
        # "+n" steps from backprop ("ref" itself): never a bare number, which would read as
        # a row of the learning-curve table
        step = "side" if arm in SPECTRUM_SIDE else f"+{n}" if n else "ref"
        L.append(f"| {step} | {ARM_TITLES[arm]} | {CHANGES[arm]} | "
                 f"{cell(m.get('test_accuracy'))} | {cell(few_acc)} | "
                 f"{cell(m.get('train_seconds'))} | {cell(steps)} | "
                 f"{MISSING if e_total is None else fmt(e_total)} | {band_text} |")
    L += [""]
    steps_text = []
    for a, b in zip(present[:-1], present[1:], strict=True):
        ma, mb = metrics[a], metrics[b]
        acc = _diff(mb.get("test_accuracy"), ma.get("test_accuracy"))
        few_d = (_diff(lb.get(BUDGET_OF.get(b, b), {}).get(few),
                       lb.get(BUDGET_OF.get(a, a), {}).get(few)) if few else MISSING)
        steps_text.append(f"- {ARM_TITLES[a]} -> {ARM_TITLES[b]} ({CHANGES[b].split(':')[0]}): "
                          f"test accuracy {acc}, with {few_title} {few_d}, energy per digit "
                          f"{_times(mb.get('energy_total_nj'), ma.get('energy_total_nj'))} "
                          f"that of the step before.")
    L += steps_text
    for rule in ("fa", "dfa"):
        m = metrics.get(rule)
        if m and "alignment_angle_final_deg" in m:
            L.append(f"- {ARM_TITLES[rule]}: the angle between its update of the hidden "
                     f"weights and the true gradient went from "
                     f"{m['alignment_angle_initial_deg']:.1f}° to "
                     f"{m['alignment_angle_final_deg']:.1f}° over training (below 90°: it "
                     f"still descends the loss; `{rule}_epochs.csv` per epoch).")
    fa, dfa = metrics.get("fa"), metrics.get("dfa")
    if fa and dfa and metrics.get("mlp", {}).get("hidden_units", 1) and \
            fa.get("test_accuracy") == dfa.get("test_accuracy") and \
            fa.get("alignment_angle_final_deg") == dfa.get("alignment_angle_final_deg"):
        L.append("- FA and DFA are the same rule in a network with one hidden layer (the "
                 "hidden layer's error comes from the output through one random matrix "
                 "either way, drawn alike): their rows are equal by construction.")
    new_arms = [a for a in ("fa", "dfa", "surrogate", "eprop") if metrics.get(a)]
    keys = sorted({k for a in new_arms for k, v in metrics[a].items()
                   if not isinstance(v, dict)})
    L += ["", "Every metric of the spectrum's arms (metrics.json):", "",
          "| metric | " + " | ".join(ARM_TITLES[a] for a in new_arms) + " |",
          "|---|" + "---|" * len(new_arms)]
    L += [f"| `{k}` | " + " | ".join(cell(metrics[a].get(k)) for a in new_arms) + " |"
          for k in keys]
    L += ["", "One seed: the differences above are one draw each and are not tested. "
          "`python -m neurosim.run --config experiments/brain_vs_ann_spectrum.toml --seeds 10` "
          "writes the sweep's report with paired differences between neighbours (CI and p).",
          ""]
    return L


def _diff(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return MISSING
    return f"{a - b:+.3f}"


def _times(a: float | None, b: float | None) -> str:
    """``a / b`` as people write a factor: 36x, 1.0x, 0.97x."""
    if a is None or b is None or not b:
        return MISSING
    r = a / b
    return f"{r:.0f}x" if r >= 10 else f"{r:.2g}x"
