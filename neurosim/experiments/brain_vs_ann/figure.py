"""The one multi-panel figure of brain_vs_ann."""

from __future__ import annotations

import textwrap

import numpy as np

from neurosim import plots
from neurosim.analysis.paired import fmt
from neurosim.experiments.brain_vs_ann.config import (
    ARM_TITLES,
    ARMS,
    CLASS_NAMES,
)
from neurosim.runner.contract import Result


def figures(result: Result) -> dict:
    return {"brain_vs_ann": figure(result)}


def human(x: float | None, digits: int = 3) -> str:
    """A number as people write it (`neurosim.analysis.paired.fmt`: 0.13, 324, 6697), with
    thousands as k and millions as M from 10,000 on: 14.6k, not 1.46e+04."""
    if x is None or not np.isfinite(x):
        return "n/a"
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e4, "k")):
        if abs(x) >= scale:
            return fmt(x / (scale if suffix != "k" else 1e3), digits) + suffix
    return fmt(x, digits)


def _stopped(result: Result) -> str:
    """Why the run has no more to draw: its status (a partial result of an interrupted run
    still says COMPLETED; only a finished run has ``total_seconds``)."""
    if "total_seconds" in result.metrics and result.status == "COMPLETED":
        return ""
    return "diverged" if result.status == "DIVERGED" else "interrupted"


def _missing(ax, text: str, missing: list, label: str, xy: tuple = (0.5, 0.5),
             ha: str = "center") -> None:
    """Say in the panel why it is empty (or partial), and remember it for the figure's
    footnote; a panel with nothing drawn loses its meaningless 0-1 ticks."""
    shown = "\n".join(textwrap.fill(line, 48) for line in text.split("\n"))
    ax.text(*xy, shown, ha=ha, va="center", transform=ax.transAxes, fontsize=9, color="0.3")
    if not (ax.lines or ax.collections or ax.images or ax.patches):
        ax.set_xticks([])
        ax.set_yticks([])
    missing.append((label, text))


def _chance(ax, level: float = 0.1, x: float = 0.02) -> None:
    ax.axhline(level, color="0.4", lw=0.8, ls=":")
    ax.text(x, level + 0.015, "chance (1/10)", transform=ax.get_yaxis_transform(), fontsize=7,
            color="0.35")


def figure(result: Result):
    a, m, c = result.arrays, result.metrics, result.curves
    stopped = _stopped(result)
    why = {arm: f"not measured: the run was {stopped} before the {ARM_TITLES[arm]} arm "
                f"finished" for arm in ARMS}
    missing: list[tuple[str, str]] = []
    fig, axes = plots.figure(4, 3, size=(5.0, 3.9))
    shape = tuple(int(v) for v in a["feature_shape"])
    labels = [str(v) for v in a["raster_labels"]]

    # (a) raster of the STDP network over the first test digits
    ax = axes[0, 0]
    if "stdp_exc" in result.spikes:
        _raster(ax, result, a, labels)
    else:
        _missing(ax, why["stdp"], missing, "(a)")
    ax.set_title("(a) STDP network: spikes for test digits")

    # (b) the MLP's loss curve (the epochs trained so far, if the run stopped)
    ax = axes[0, 1]
    if "mlp_epochs" in c:
        plots.loss_curve(ax, c["mlp_epochs"], ylabel="cross-entropy")
    else:
        _missing(ax, why["mlp"], missing, "(b)")
    ax.set_title("(b) MLP: loss during backprop training")

    # (c) learning speed: accuracy against labelled examples, every arm on the same digits
    ax = axes[0, 2]
    t = c.get("label_budget")
    if t is not None:
        _label_budget(ax, t)
        ax.set_title("(c) learning speed: accuracy vs labels")
    else:  # keep what the arms measured before the run stopped: accuracy vs presentations
        for arm in ARMS:
            lc = c.get(f"{arm}_learning")
            if lc is not None and len(lc["samples_seen"]):
                plots.curve(ax, lc["samples_seen"], lc["test_accuracy"], label=ARM_TITLES[arm],
                            color=plots.COLORS[arm], marker="o", markersize=3,
                            xlabel="training presentations (log)", ylabel="test accuracy")
        ax.set_xscale("log")
        _chance(ax)
        _missing(ax, f"label-budget protocol not reached (run {stopped or 'incomplete'});\n"
                     "shown: accuracy vs training presentations so far", missing, "(c)",
                 xy=(0.97, 0.25), ha="right")  # below the rising curves
        ax.set_title("(c) accuracy vs presentations (partial)")
    ax.set_ylim(0, 1)

    # (d) accuracy vs presentation time of the converted network
    ax = axes[0, 3]
    t = c.get("mlp_spiking_time")
    if t is not None:
        plots.curve(ax, t["time_ms"], t["accuracy"], label="converted (spikes)",
                    color=plots.COLORS["mlp_spiking"], xlabel="presentation time (ms)",
                    ylabel="test accuracy")
        if "mlp" in m:
            ax.axhline(m["mlp"]["test_accuracy"], color=plots.COLORS["mlp"], ls="--",
                       label=f"MLP {fmt(m['mlp']['test_accuracy'])}")
        _chance(ax, x=0.45)
        ax.legend(frameon=False, loc="center right")
    else:
        _missing(ax, why["mlp_spiking"], missing, "(d)")
    ax.set_ylim(0, 1)
    ax.set_title("(d) MLP converted to spikes: accuracy vs time")

    # (e, f) memory in connection strengths, each unit scaled by its largest |weight|
    # the STDP fields are ON - OFF weights with on_off coding; with one input per pixel
    # (intensity, the 28x28 presets) they are the weights themselves, never negative
    on_off = bool(a.get("stdp_on_off", True))
    for ax, key, arm, title in (
            (axes[1, 0], "mlp_W1", "mlp", "(e) MLP first-layer weights\n(first 100 units)"),
            (axes[1, 1], "stdp_receptive_fields", "stdp",
             "(f) STDP receptive fields\n" + ("(ON - OFF weight)" if on_off
                                              else "(input weight)"))):
        if key not in a:
            _missing(ax, why[arm], missing, title[:3])
            ax.set_axis_off()
            continue
        W = a[key][:, :100] if arm == "mlp" else a[key]
        signed = arm == "mlp" or on_off
        img = plots.receptive_fields(ax, W, shape, cmap="RdBu_r" if signed else "Reds",
                                     signed=signed, title=title)
        ticks = [-1, 0, 1] if signed else [0, 1]
        bar = fig.colorbar(img, ax=ax, fraction=0.046, pad=0.02, ticks=ticks)
        bar.set_label("weight / unit's largest |weight|", fontsize=8)
        bar.ax.set_yticklabels(["-1", "0", "+1"] if arm == "mlp"
                               else ["-1 paper", "0", "+1 ink"] if on_off
                               else ["0", "+1 ink"], fontsize=7)

    # (g, h) robustness
    for ax, kind, xlabel, title in (
            (axes[1, 2], "lesion", "fraction of synapses removed", "(g) removing synapses"),
            (axes[1, 3], "noise", "pixel noise sd (pixels in [0, 1])", "(h) noisy input")):
        col = "fraction_removed" if kind == "lesion" else "noise_sd"
        drawn = False
        for arm in ARMS:
            for suffix, ls, label in (("", "-", ARM_TITLES[arm]),
                                      ("_renorm", "--", "STDP, renormalised after lesion")):
                t = c.get(f"{arm}_{kind}{suffix}")
                if t is None:
                    continue
                plots.mean_band(ax, t[col], t["accuracy_mean"], t["accuracy_sd"],
                                label=label, color=plots.COLORS[arm], marker="o", ls=ls,
                                markersize=3, xlabel=xlabel, ylabel="test accuracy")
                drawn = True
        if not drawn:
            _missing(ax, f"not measured: the run was {stopped} first", missing, title[:3])
        _chance(ax, x=0.55)
        if drawn:
            ax.legend(frameon=False, fontsize=7, loc="upper right")
        ax.set_ylim(0, 1)
        ax.set_title(f"{title}: mean ± sd of {m.get('repeats')} draws")
    if "stdp_lesion" in c:
        axes[1, 2].text(0.02, 0.03, "STDP spread at 0%: Poisson input,\nspikes redrawn each draw",
                        transform=axes[1, 2].transAxes, fontsize=7, color=plots.COLORS["stdp"])

    # (i, j) hidden activations beside excitatory spike counts for the same digits
    for ax, (key, starts, units, unit, title, arm) in zip(axes[2, :2], (
            ("mlp_hidden_raster", "mlp_hidden_class_starts", "hidden unit, grouped by "
             "preferred class", "ReLU activation", "(i) MLP hidden activations", "mlp"),
            ("stdp_counts_raster", "stdp_class_starts", "excitatory neuron, grouped by "
             "assigned class", "spikes", "(j) STDP excitatory spike counts", "stdp")),
            strict=True):
        if key not in a:
            _missing(ax, why[arm], missing, title[:3])
            ax.set_axis_off()
            continue
        plots.activity_map(ax, a[key], column_labels=labels, xlabel="test digit (label)",
                           ylabel=units, colorbar_label=unit, cmap="magma",
                           boundaries=a[starts], group_labels=CLASS_NAMES, title=title)

    present = [arm for arm in ARMS if arm in m]
    _energy(axes[2, 2], m, present)
    _activity(axes[2, 3], m, present)
    fig.suptitle("Brain vs. artificial network on the same digits: MLP (backprop), "
                 "STDP spiking network, and the MLP converted to spikes", fontsize=13)
    if missing:
        fig.text(0.5, -0.01, f"Run {stopped or 'incomplete'}: the curves measured so far are "
                 "drawn; missing: " + "; ".join(f"{p} {t}" for p, t in missing),
                 ha="center", va="top", fontsize=9, color="0.25", wrap=True)
    return fig


def _raster(ax, result: Result, a: dict, labels: list[str]) -> None:
    """Input spikes (grey band) under the excitatory spikes (red band, rows grouped by the
    class each neuron was named after, the class written beside its block)."""
    s_in, s_exc = result.spikes["stdp_input"], result.spikes["stdp_exc"]
    n_in, n_exc = s_in.n_neurons, s_exc.n_neurons
    base = n_in + 4
    rank = a["stdp_class_rank"]  # excitatory neurons drawn grouped by assigned class
    plots.raster(ax, s_in.i, s_in.t, color="0.65", markersize=1.2, t_stop=s_in.t_stop)
    plots.raster(ax, rank[s_exc.i] + base, s_exc.t, color=plots.COLORS["stdp"],
                 markersize=3, t_stop=s_exc.t_stop, ylabel="neuron")
    period = float(a["stdp_period_s"])
    for k, lab in enumerate(labels):
        ax.axvline(k * period, color="k", lw=0.5, alpha=0.4)
        ax.text((k + 0.35) * period, base + n_exc + 4, lab, ha="center", fontsize=8)
    starts = [int(v) for v in a["stdp_class_starts"]]
    ends = [*starts[1:], n_exc]
    trans = ax.get_yaxis_transform()
    for cls, (b, e) in enumerate(zip(starts, ends, strict=True)):
        if e > b:
            ax.axhline(base + b - 0.5, color=plots.COLORS["stdp"], lw=0.3, alpha=0.4)
            ax.text(1.01, base + (b + e - 1) / 2, CLASS_NAMES[cls], transform=trans,
                    fontsize=6, va="center", color=plots.COLORS["stdp"])
    ax.set_yticks([n_in / 2, base + n_exc / 2],
                  [f"input\n({n_in})", f"excitatory\n({n_exc},\nby class)"], fontsize=7)
    ax.set_ylim(-1, base + n_exc + 12)


_BUDGET_STYLES = {
    "mlp": ("MLP, trained to convergence", plots.COLORS["mlp"], "-", "o"),
    "stdp_vote": ("STDP, vote readout", plots.COLORS["stdp"], "-", "s"),
    "stdp_logistic": ("STDP, logistic readout", plots.COLORS["stdp"], "--", "s"),
    "nearest_class_mean": ("pixels: nearest class mean", "0.35", ":", "^"),
    "knn1": ("pixels: 1-NN", "0.55", ":", "v"),
    "logistic": ("pixels: logistic regression", "0.2", "-.", "d")}


def _label_budget(ax, t: dict) -> None:
    for col, (label, color, ls, marker) in _BUDGET_STYLES.items():
        if col in t:
            plots.curve(ax, t["labels_per_class"], t[col], label=label, color=color,
                        ls=ls, marker=marker, markersize=3, legend=False)
    _chance(ax)
    ax.legend(frameon=False, fontsize=6.5, ncol=2, loc="upper center",
              bbox_to_anchor=(0.5, -0.2))
    ax.set_xscale("log")
    per_class = t["labels_per_class"]
    ax.set_xticks(per_class, [f"{v:g}" if k < len(per_class) - 1 or v == round(v)
                              else f"all\n({v:.0f})" for k, v in enumerate(per_class)])
    ax.minorticks_off()
    ax.set_xlabel("labelled training digits per class (log)", labelpad=1)
    ax.set_ylabel("test accuracy")


def _energy(ax, m: dict, present: list[str]) -> None:
    """(k) energy per inference, both counts, numbers written as people write them."""
    names = [ARM_TITLES[arm].replace(" ", "\n", 1) for arm in present]
    series = {"synaptic ops only": [m[arm].get("energy_ops_nj", np.nan) for arm in present],
              "+ memory, neuron updates": [m[arm].get("energy_total_nj", np.nan)
                                           for arm in present]}
    bars = plots.grouped_bars(ax, names, series, colors={"synaptic ops only": "0.8",
                                                         "+ memory, neuron updates": "0.4"},
                              ylabel="energy per digit (nJ, log)", logy=True, annotate=None)
    for container in bars:
        for rect in container:
            v = rect.get_height()
            if np.isfinite(v) and v > 0:
                ax.text(rect.get_x() + rect.get_width() / 2, v, human(v), ha="center",
                        va="bottom", fontsize=7)
    ax.legend(frameon=False, fontsize=8, loc="upper left")
    ax.set_title("(k) cost of one inference (Horowitz 2014)")


def _activity(ax, m: dict, present: list[str]) -> None:
    """(l) sparseness (two fractions, one axis) beside synchrony against its surrogate null,
    as a z-score (the two synchrony measures have different scales): two axes in one cell."""
    ax.set_axis_off()
    left, right = ax.inset_axes([0.0, 0.0, 0.42, 1.0]), ax.inset_axes([0.64, 0.0, 0.36, 1.0])
    groups = {"active_fraction": "active\nfraction", "treves_rolls_sparseness":
              "Treves-Rolls\nsparseness"}
    plots.grouped_bars(left, list(groups.values()), {
        ARM_TITLES[arm]: [m[arm].get(k, np.nan) for k in groups] for arm in present},
        colors={ARM_TITLES[arm]: plots.COLORS[arm] for arm in present},
        ylabel="fraction (lower: sparser)", annotate="{:.2f}")
    left.set_ylim(0, 1.05)
    left.legend(frameon=False, fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.2),
                ncol=1)
    left.set_title("(l) sparseness", fontsize=10)
    measures = {"correlation": "binned\ncorrelation", "spike_contrast": "spike\ncontrast"}
    width = 0.8 / max(len(present), 1)
    for k, arm in enumerate(present):
        for g, key in enumerate(measures):
            x = g + (k - (len(present) - 1) / 2) * width
            v, mu, sd = (m[arm].get(s) for s in (key, f"{key}_surrogate",
                                                 f"{key}_surrogate_sd"))
            if arm == "mlp":
                right.text(x, 0.05, "n/a:\nno\nspikes", ha="center", va="bottom", fontsize=6,
                           color=plots.COLORS[arm], transform=right.get_xaxis_transform())
                continue
            if v is None or mu is None:
                continue
            if not sd:  # e.g. spike contrast peaking at its coarsest bin: dithering moves nothing
                right.text(x, 0.3, "null has\nno spread", ha="center", va="bottom", fontsize=6,
                           color=plots.COLORS[arm], rotation=90)
                continue
            z = (v - mu) / sd
            right.bar(x, z, width, color=plots.COLORS[arm], edgecolor="k", linewidth=0.5)
            right.text(x, z, f"p={fmt(m[arm].get(f'{key}_p'), 2)}", ha="center",
                       va="bottom" if z >= 0 else "top", fontsize=6)
    right.set_yscale("symlog", linthresh=2)  # a tiny null sd can make z large
    right.axhline(0, color="k", lw=0.6)
    right.axhspan(-2, 2, color="0.85", zorder=0)
    right.text(0.02, 0.02, "grey: within ±2 sd of the null", transform=right.transAxes,
               fontsize=6, color="0.35")
    right.set_xticks(range(len(measures)), list(measures.values()), fontsize=8)
    right.set_xlim(-0.6, len(measures) - 0.4)
    right.set_ylabel("z = (data - null mean) / null sd", fontsize=7, labelpad=1)
    right.set_ylim(bottom=-3)
    right.set_title("synchrony vs null", fontsize=10)
