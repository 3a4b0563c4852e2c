"""The learning-rule spectrum figure of brain_vs_ann (issue 17): the arms from exact backprop
to STDP side by side, drawn from the metrics and curve tables the run already returns.

Four panels, each a plot function that takes ``ax``: test accuracy per arm, accuracy against
labelled digits per class, energy per inference (the report's headline energy), and the
feedback-alignment angle per epoch. The converted MLP is not a learning rule of its own (it is
the backprop MLP run on spikes), so it stands apart at the right with a distinct marker.
Arms a run did not have are left out, not drawn empty.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.ticker import MaxNLocator

from neurosim import plots
from neurosim.analysis.paired import fmt
from neurosim.experiments.brain_vs_ann.figure import human
from neurosim.runner.contract import Result

#: The arms along the spectrum, from exact backprop to STDP; what changes at each step is in
#: docs/brain_vs_ann.md (weight transport, spikes, locality in time, supervision).
SPECTRUM = ("mlp", "fa", "dfa", "surrogate", "eprop", "stdp")
#: Drawn beside the spectrum, not on it: the backprop MLP's knowledge carried by spikes.
CONVERTED = "mlp_spiking"
#: A run with any of these has a spectrum to show (the default three-arm run does not).
SPECTRUM_ONLY = ("fa", "dfa", "surrogate", "eprop")
#: Short tick labels (the report's ARM_TITLES are too long for a tick).
SHORT = {"mlp": "backprop", "fa": "FA", "dfa": "DFA", "surrogate": "surrogate\nSNN",
         "eprop": "e-prop\nSNN", "stdp": "STDP", "mlp_spiking": "converted\nMLP"}
#: One colour per arm: the main figure's three plus four between them.
COLORS = {**{arm: plots.COLORS[arm] for arm in ("mlp", "stdp", "mlp_spiking")},
          "fa": "tab:cyan", "dfa": "tab:green", "surrogate": "tab:orange", "eprop": "tab:brown"}
#: The energy panel's one model: the report's headline energy (its table row "cost").
ENERGY_KEY = "energy_total_nj"
ENERGY_MODEL = "Horowitz 2014, 45 nm: synaptic ops + memory + neuron updates"
CHANCE = 0.1  # ten classes


def has_spectrum(result: Result) -> bool:
    """Whether `result` ran at least one arm between backprop and STDP."""
    return any(arm in result.metrics for arm in SPECTRUM_ONLY)


def _order(present: Sequence[str]) -> list[str]:
    """The arms of `present` in spectrum order, the converted MLP last."""
    return [arm for arm in (*SPECTRUM, CONVERTED) if arm in present]


def _chance(ax, x: float = 0.02) -> None:
    ax.axhline(CHANCE, color="0.4", lw=0.8, ls=":")
    ax.text(x, CHANCE + 0.015, "chance (1/10)", transform=ax.get_yaxis_transform(),
            fontsize=7, color="0.35")


def _arm_axis(ax, arms: list[str]) -> None:
    """Arm names as x ticks; a dashed line sets the converted MLP apart."""
    ax.set_xticks(range(len(arms)), [SHORT[a] for a in arms], fontsize=8)
    ax.set_xlim(-0.6, len(arms) - 0.4)
    if CONVERTED in arms and len(arms) > 1:
        ax.axvline(len(arms) - 1.5, color="0.6", lw=0.8, ls="--")
    ax.set_xlabel("learning rule: exact backprop → local STDP (converted MLP beside)")


#: One marker per arm, so that arms with equal numbers (FA and DFA are the same rule with one
#: hidden layer) stay visible on top of each other.
MARKERS = {"mlp": "o", "fa": "s", "dfa": "^", "surrogate": "v", "eprop": "P", "stdp": "X"}


def _marker(arm: str) -> dict:
    if arm == CONVERTED:  # not a learning rule: a hollow diamond
        return {"marker": "D", "markerfacecolor": "white", "markeredgewidth": 1.5}
    if arm == "dfa":  # hollow, so that FA's square shows through when they coincide
        return {"marker": MARKERS[arm], "markerfacecolor": "none", "markeredgewidth": 1.5}
    return {"marker": MARKERS[arm]}


def accuracy_panel(ax, metrics: Mapping[str, dict], arms: list[str]) -> None:
    """(a) test accuracy per arm, each value written beside its point.

    Parameters
    ----------
    metrics : mapping arm -> dict with ``test_accuracy``
    arms : the arms to draw, in order
    """
    for x, arm in enumerate(arms):
        v = metrics[arm].get("test_accuracy")
        if v is None:
            continue
        ax.plot([x], [v], ls="none", color=COLORS[arm], markersize=8, **_marker(arm))
        ax.text(x, v + 0.03, fmt(v, 3), ha="center", va="bottom", fontsize=8)
    _chance(ax)
    _arm_axis(ax, arms)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3, axis="y")
    ax.set_title("(a) test accuracy (one run, all training digits)")


def label_budget_panel(ax, table: Mapping[str, np.ndarray], arms: list[str]) -> None:
    """(b) accuracy against labelled training digits per class (log x), one line per arm; the
    STDP arm's vote readout (its own protocol). The last budget is every training digit,
    written "all (N)" when it is not a whole number per class.

    Parameters
    ----------
    table : the ``label_budget`` curve table: ``labels_per_class`` (n_budgets,) and one
        accuracy column (n_budgets,) per arm (``stdp_vote`` for STDP)
    arms : the arms to draw, in order
    """
    per_class = np.asarray(table["labels_per_class"], float)
    for arm in arms:
        col = "stdp_vote" if arm == "stdp" else arm
        if col not in table:  # the converted MLP has no budget protocol of its own
            continue
        label = SHORT[arm].replace("\n", " ") + (" (vote readout)" if arm == "stdp" else "")
        plots.curve(ax, per_class, np.asarray(table[col], float), label=label,
                    color=COLORS[arm], markersize=4, legend=False, **_marker(arm))
    _chance(ax)
    ax.set_xscale("log")
    ax.set_xticks(per_class, [f"{v:g}" if k < len(per_class) - 1 or v == round(v)
                              else f"all\n({fmt(v, 3)})" for k, v in enumerate(per_class)])
    ax.minorticks_off()
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("labelled training digits per class (log)")
    ax.set_ylabel("test accuracy")
    ax.legend(frameon=False, fontsize=7, ncol=3, loc="upper center",
              bbox_to_anchor=(0.5, -0.22))
    ax.set_title("(b) accuracy vs labelled digits")


def energy_panel(ax, metrics: Mapping[str, dict], arms: list[str]) -> None:
    """(c) energy per inference per arm under the report's headline model, log y, each bar
    written as people write numbers (14.6k, 324)."""
    drawn = [arm for arm in arms if np.isfinite(metrics[arm].get(ENERGY_KEY) or np.nan)]
    values = [float(metrics[arm][ENERGY_KEY]) for arm in drawn]
    for x, (arm, v) in enumerate(zip(drawn, values, strict=True)):
        ax.bar(x, v, 0.7, color=COLORS[arm], edgecolor="k", linewidth=0.5,
               hatch="//" if arm == CONVERTED else None)
        ax.text(x, v, human(v), ha="center", va="bottom", fontsize=8)
    ax.set_yscale("log")
    if values:
        ax.set_ylim(min(values) / 3, max(values) * 4)  # room for the numbers above the bars
    _arm_axis(ax, drawn)
    ax.set_ylabel("energy per digit (nJ, log)")
    ax.grid(alpha=0.3, axis="y")
    ax.set_title(f"(c) energy of one inference\n({ENERGY_MODEL})", fontsize=10)


def alignment_panel(ax, curves: Mapping[str, Mapping[str, np.ndarray]],
                    arms: list[str]) -> None:
    """(d) angle between the feedback-alignment update and the true gradient per epoch (epoch
    0: before training); below 90° the update points downhill.

    Parameters
    ----------
    curves : the run's curve tables; ``{arm}_epochs`` with ``epoch`` and
        ``alignment_angle_deg`` (n_epochs + 1,)
    arms : the arms to draw (those without an angle table are skipped)
    """
    top = 90.0
    for arm in arms:
        t = curves.get(f"{arm}_epochs")
        if t is None or "alignment_angle_deg" not in t:
            continue
        angle = np.asarray(t["alignment_angle_deg"], float)
        top = max(top, float(np.nanmax(angle)))
        plots.curve(ax, t["epoch"], angle, label=SHORT[arm], color=COLORS[arm], markersize=4,
                    legend=False, ls="--" if arm == "dfa" else "-", **_marker(arm))
    ax.axhline(90, color="0.4", lw=0.8, ls=":")
    ax.text(0.98, 91, "90°: orthogonal to the gradient", transform=ax.get_yaxis_transform(),
            fontsize=7, color="0.35", ha="right", va="bottom")
    ax.set_ylim(0, top + 8)  # room for the 90° label above its line
    ax.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
    ax.set_xlabel("epoch (0: before training)")
    ax.set_ylabel("angle to backprop's update (°)")
    tables = [curves[f"{a}_epochs"]["alignment_angle_deg"] for a in arms
              if "alignment_angle_deg" in curves.get(f"{a}_epochs", {})]
    if len(tables) == 2 and np.array_equal(*tables, equal_nan=True):
        ax.text(0.98, 0.03, "FA = DFA here: one hidden layer", transform=ax.transAxes,
                ha="right", fontsize=7, color="0.35")
    ax.legend(frameon=False, fontsize=8, loc="lower left")
    ax.set_title("(d) feedback alignment: angle to the gradient")


def spectrum_figure(result: Result):
    """The four-panel spectrum figure of `result` (call only when `has_spectrum`)."""
    m, c = result.metrics, result.curves
    arms = _order([arm for arm in (*SPECTRUM, CONVERTED) if isinstance(m.get(arm), dict)])
    panels = ["accuracy"]
    if "label_budget" in c:
        panels.append("budget")
    if any(np.isfinite(m[a].get(ENERGY_KEY) or np.nan) for a in arms):
        panels.append("energy")
    aligned = [a for a in ("fa", "dfa") if "alignment_angle_deg" in c.get(f"{a}_epochs", {})]
    if aligned:
        panels.append("alignment")
    ncols = min(len(panels), 2)
    fig, axes = plots.figure(ncols, -(-len(panels) // ncols), size=(6.0, 4.6))
    for ax in axes.flat[len(panels):]:
        ax.set_axis_off()
    for ax, panel in zip(axes.flat, panels, strict=False):
        if panel == "accuracy":
            accuracy_panel(ax, m, arms)
        elif panel == "budget":
            label_budget_panel(ax, c["label_budget"], arms)
        elif panel == "energy":
            energy_panel(ax, m, arms)
        else:
            alignment_panel(ax, c, aligned)
    fig.suptitle(f"From backprop to STDP on the same digits ({m.get('dataset', '?')}, "
                 f"{m.get('n_train', '?')} training digits, {m.get('n_test', '?')} test digits)",
                 fontsize=12)
    return fig
