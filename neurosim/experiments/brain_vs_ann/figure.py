"""The one multi-panel figure of brain_vs_ann."""

from __future__ import annotations

import numpy as np

from neurosim import plots
from neurosim.experiments.brain_vs_ann.config import (
    ARM_TITLES,
    ARMS,
    CLASS_NAMES,
)
from neurosim.runner.contract import Result


def figures(result: Result) -> dict:
    return {"brain_vs_ann": figure(result)}


def figure(result: Result):
    a, m, c = result.arrays, result.metrics, result.curves
    fig, axes = plots.figure(4, 3, size=(5.0, 3.9))
    shape = tuple(int(v) for v in a["feature_shape"])
    labels = [str(v) for v in a["raster_labels"]]

    # (a) raster of the STDP network over the first test digits
    ax = axes[0, 0]
    if "stdp_exc" in result.spikes:
        s_in, s_exc = result.spikes["stdp_input"], result.spikes["stdp_exc"]
        n_in = s_in.n_neurons
        rank = a["stdp_class_rank"]  # excitatory neurons drawn grouped by assigned class
        plots.raster(ax, s_in.i, s_in.t, color="0.65", markersize=1.2, t_stop=s_in.t_stop)
        plots.raster(ax, rank[s_exc.i] + n_in + 4, s_exc.t, color=plots.COLORS["stdp"],
                     markersize=3, t_stop=s_exc.t_stop,
                     ylabel="input neurons (grey) | excitatory, by class (red)")
        period = float(a["stdp_period_s"])
        for k, lab in enumerate(labels):
            ax.axvline(k * period, color="k", lw=0.5, alpha=0.4)
            ax.text((k + 0.35) * period, n_in + s_exc.n_neurons + 8, lab, ha="center")
        ax.set_ylim(-1, n_in + s_exc.n_neurons + 16)
    else:
        ax.text(0.5, 0.5, "the STDP arm did not finish", ha="center", transform=ax.transAxes)
    ax.set_title("(a) STDP network: spikes for test digits")

    # (b) the MLP's loss curve
    ax = axes[0, 1]
    if "mlp_epochs" in c:
        plots.loss_curve(ax, c["mlp_epochs"], ylabel="cross-entropy")
    ax.set_title("(b) MLP: loss during backprop training")

    # (c) learning speed: accuracy against labelled examples, every arm on the same digits
    ax = axes[0, 2]
    t = c.get("label_budget")
    if t is not None:
        styles = {"mlp": ("MLP, trained to convergence", plots.COLORS["mlp"], "-", "o"),
                  "stdp_vote": ("STDP, vote readout", plots.COLORS["stdp"], "-", "s"),
                  "stdp_logistic": ("STDP, logistic readout", plots.COLORS["stdp"], "--", "s"),
                  "nearest_class_mean": ("pixels: nearest class mean", "0.35", ":", "^"),
                  "knn1": ("pixels: 1-NN", "0.55", ":", "v"),
                  "logistic": ("pixels: logistic regression", "0.2", "-.", "d")}
        for col, (label, color, ls, marker) in styles.items():
            if col in t:
                plots.curve(ax, t["labels_per_class"], t[col], label=label, color=color,
                            ls=ls, marker=marker, markersize=3, legend=False)
        ax.axhline(1 / 10, color="0.5", lw=0.8, ls=":")
        ax.text(t["labels_per_class"][0], 1 / 10 + 0.02, "chance", fontsize=7, color="0.4")
        ax.legend(frameon=False, fontsize=6.5, ncol=2, loc="upper center",
                  bbox_to_anchor=(0.5, -0.2))
        ax.set_xscale("log")
        per_class = t["labels_per_class"]
        ax.set_xticks(per_class, [f"{v:g}" if k < len(per_class) - 1 or v == round(v)
                                  else f"all\n({v:.0f})" for k, v in enumerate(per_class)])
        ax.minorticks_off()
    ax.set_ylim(0, 1)
    ax.set_xlabel("labelled training digits per class (log)", labelpad=1)
    ax.set_ylabel("test accuracy")
    ax.set_title("(c) learning speed: accuracy vs labels")

    # (d) accuracy vs presentation time of the converted network
    ax = axes[0, 3]
    t = c.get("mlp_spiking_time")
    if t is not None:
        plots.curve(ax, t["time_ms"], t["accuracy"], label="converted (spikes)",
                    color=plots.COLORS["mlp_spiking"], xlabel="presentation time (ms)",
                    ylabel="test accuracy")
        if "mlp" in m:
            ax.axhline(m["mlp"]["test_accuracy"], color=plots.COLORS["mlp"], ls="--",
                       label=f"MLP {m['mlp']['test_accuracy']:.3f}")
            ax.legend(frameon=False, loc="lower right")
        ax.set_ylim(0, 1)
    ax.set_title("(d) MLP converted to spikes: accuracy vs time")

    # (e, f) memory in connection strengths
    if "mlp_W1" in a:
        W1 = a["mlp_W1"]
        plots.receptive_fields(axes[1, 0], W1[:, :min(100, W1.shape[1])], shape,
                               cmap="RdBu_r", signed=True,
                               title="(e) MLP first-layer weights\n(red +, blue -)")
    else:
        axes[1, 0].set_axis_off()
    if "stdp_receptive_fields" in a:
        plots.receptive_fields(axes[1, 1], a["stdp_receptive_fields"], shape, cmap="RdBu_r",
                               signed=True, title="(f) STDP receptive fields\n"
                                                  "(ON - OFF weight: red ink, blue paper)")
    else:
        axes[1, 1].set_axis_off()

    # (g, h) robustness
    for ax, kind, xlabel, title in (
            (axes[1, 2], "lesion", "fraction of synapses removed", "(g) removing synapses"),
            (axes[1, 3], "noise", "pixel noise sd (pixels in [0, 1])", "(h) noisy input")):
        col = "fraction_removed" if kind == "lesion" else "noise_sd"
        for arm in ARMS:
            t = c.get(f"{arm}_{kind}")
            if t is not None:
                plots.mean_band(ax, t[col], t["accuracy_mean"], t["accuracy_sd"],
                                label=ARM_TITLES[arm], color=plots.COLORS[arm], marker="o",
                                markersize=3, xlabel=xlabel, ylabel="test accuracy")
        ax.axhline(0.1, color="k", lw=0.5, ls=":")
        ax.set_ylim(0, 1)
        ax.set_title(f"{title}: mean ± sd of {m.get('repeats')} draws")

    # (i, j) hidden activations beside excitatory spike counts for the same digits
    for ax, (key, starts, units, unit, title) in zip(axes[2, :2], (
            ("mlp_hidden_raster", "mlp_hidden_class_starts", "hidden unit, grouped by "
             "preferred class", "ReLU activation", "(i) MLP hidden activations"),
            ("stdp_counts_raster", "stdp_class_starts", "excitatory neuron, grouped by "
             "assigned class", "spikes", "(j) STDP excitatory spike counts")), strict=True):
        if key not in a:
            ax.set_axis_off()
            continue
        plots.activity_map(ax, a[key], column_labels=labels, xlabel="test digit (label)",
                           ylabel=units, colorbar_label=unit, cmap="magma",
                           boundaries=a[starts], group_labels=CLASS_NAMES, title=title)

    # (k) energy per inference, (l) sparseness and synchrony
    present = [arm for arm in ARMS if arm in m]
    names = [ARM_TITLES[arm].replace(" ", "\n", 1) for arm in present]
    plots.grouped_bars(axes[2, 2], names, {
        "synaptic ops only": [m[arm].get("energy_ops_nj", np.nan) for arm in present],
        "+ memory, neuron updates": [m[arm].get("energy_total_nj", np.nan) for arm in present]},
        colors={"synaptic ops only": "0.8", "+ memory, neuron updates": "0.4"},
        ylabel="energy per digit (nJ, log)", logy=True)
    axes[2, 2].legend(frameon=False, fontsize=8, loc="upper left")
    axes[2, 2].set_title("(k) cost of one inference (Horowitz 2014)")
    groups = {"active_fraction": "active\nfraction", "treves_rolls_sparseness":
              "Treves-Rolls\nsparseness", "sttc": "STTC", "spike_contrast": "spike\ncontrast"}
    plots.grouped_bars(axes[2, 3], list(groups.values()), {
        ARM_TITLES[arm]: [m[arm].get(k, np.nan) for k in groups] for arm in present},
        colors={ARM_TITLES[arm]: plots.COLORS[arm] for arm in present}, ylabel="value",
        annotate="{:.2f}")
    width, label = 0.8 / max(len(present), 1), "ISI-shuffled surrogate"
    for g, key in enumerate(groups):  # the surrogates' value across each spiking arm's bar
        for k, arm in enumerate(present):
            sur = m[arm].get(f"{key}_surrogate")
            if sur is not None:
                x = g + (k - (len(present) - 1) / 2) * width
                axes[2, 3].plot([x - width / 2, x + width / 2], [sur, sur], "k-", lw=2,
                                label=label)
                label = None
    axes[2, 3].legend(frameon=False, fontsize=7)
    axes[2, 3].set_title("(l) sparseness and synchrony")
    fig.suptitle("Brain vs. artificial network on the same digits: MLP (backprop), "
                 "STDP spiking network, and the MLP converted to spikes", fontsize=13)
    return fig
