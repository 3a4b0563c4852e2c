"""The report of a sweep over seeds: paired comparisons between arms (issue 16).

``python -m neurosim.run brain_vs_ann --seeds 10`` (or ``seed=100,...,109``) runs every seed as
its own run; all arms of one seed share its data split and draws, so their scores pair up
seed by seed. This module turns the runs' metrics into the sweep's report.md and
comparisons.json (`neurosim.runner.summary.write_seeds_report` calls `seeds_report`): for each
comparison the mean of each arm, the mean paired difference with its bootstrap 95% CI, and a
paired t-test (`neurosim.analysis.paired`). A sentence saying one arm beats another is written
only where the interval excludes 0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from neurosim.analysis.paired import PairedComparison, compare, fmt, fmt_p
from neurosim.experiments.brain_vs_ann.config import ARM_TITLES
from neurosim.experiments.brain_vs_ann.report import BUDGET_COLUMNS, BUDGET_OF, SPECTRUM

Getter = Callable[[Mapping[str, Any]], float | None]
#: (section, metric, arm A, arm B, getter A, getter B, higher is better)
Comparison = tuple[str, str, str, str, Getter, Getter, bool]


def dig(metrics: Mapping[str, Any], path: str) -> float | None:
    """``metrics["a"]["b"]`` for path ``"a.b"``; None where any part is missing."""
    value: Any = metrics
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def retention(arm: str, kind: str, level: str) -> Getter:
    """Accuracy at a lesion/noise level over the same arm's undamaged accuracy."""
    def get(m: Mapping[str, Any]) -> float | None:
        hit = dig(m, f"{arm}.{kind}.{level}.mean")
        clean = dig(m, f"{arm}.{kind}.0pct.mean")
        return hit / clean if hit is not None and clean else None
    return get


def comparisons(first: Mapping[str, Any]) -> list[Comparison]:
    """Every comparison the report makes (`Comparison`), from the metrics of one seed (which
    budgets and damage levels exist)."""
    t = ARM_TITLES
    out: list[Comparison] = []
    pairs = (("mlp", "stdp"), ("mlp", "mlp_spiking"), ("mlp_spiking", "stdp"))
    for a, b in pairs:
        out.append(("accuracy", "test accuracy", t[a], t[b],
                    lambda m, a=a: dig(m, f"{a}.test_accuracy"),
                    lambda m, b=b: dig(m, f"{b}.test_accuracy"), True))
    budget_titles = dict(BUDGET_COLUMNS)
    budget_pairs = (("mlp", "stdp_vote"), ("mlp", "stdp_logistic"),
                    ("stdp_logistic", "stdp_vote"), ("mlp", "nearest_class_mean"),
                    ("stdp_logistic", "logistic"))
    for key in first.get("label_budget", {}).get("labelled_examples", {}):
        per_class = "all" if key == "kall" else key[1:]
        for a, b in budget_pairs:
            digits = "digit" if per_class == "1" else "digits"
            out.append(("label budget", f"test accuracy with {per_class} labelled {digits} per "
                        "class", budget_titles[a], budget_titles[b],
                        lambda m, a=a, k=key: dig(m, f"label_budget.{a}.{k}"),
                        lambda m, b=b, k=key: dig(m, f"label_budget.{b}.{k}"), True))
    for kind, what in (("lesion_accuracy", "synapses removed"), ("noise_accuracy", "noise sd")):
        for level in first.get("mlp", {}).get(kind, {}):
            if level == "0pct":
                continue
            shown = (f"{level[:-3]}% {what}" if kind == "lesion_accuracy"
                     else f"{what} {int(level[:-3]) / 100:g}")
            for a, b in pairs:
                out.append(("robustness", f"retention (accuracy / clean accuracy), {shown}",
                            t[a], t[b], retention(a, kind, level), retention(b, kind, level),
                            True))
    for a, b in pairs:
        out.append(("cost", "energy per digit with memory and neuron updates (nJ)", t[a], t[b],
                    lambda m, a=a: dig(m, f"{a}.energy_total_nj"),
                    lambda m, b=b: dig(m, f"{b}.energy_total_nj"), False))
    out += spectrum_comparisons(first)
    out += curve_comparisons(first)
    return out


def curve_comparisons(first: Mapping[str, Any]) -> list[Comparison]:
    """The STDP arm's learning curve, each checkpoint against the one before it (A the later,
    B the earlier; the same network's snapshots, so the seeds pair up): does the curve rise,
    and does its last step fall by more than the seeds' noise (issue 18)?"""
    seen = sorted(int(s) for s in first.get("stdp", {}).get("learning_curve", {}))
    out: list[Comparison] = []
    for earlier, later in zip(seen[:-1], seen[1:], strict=True):
        out.append(("learning curve", "STDP test accuracy on the learning curve's test digits",
                    f"STDP after {later:,} digits", f"STDP after {earlier:,} digits",
                    lambda m, s=later: dig(m, f"stdp.learning_curve.{s}"),
                    lambda m, s=earlier: dig(m, f"stdp.learning_curve.{s}"), True))
    return out


def spectrum_comparisons(first: Mapping[str, Any]) -> list[Comparison]:
    """Neighbours on the learning-rule spectrum (issue 17), B the step before A: test
    accuracy, accuracy at every label budget (STDP: its logistic readout) and energy."""
    t = ARM_TITLES
    present = [a for a in SPECTRUM if isinstance(first.get(a), Mapping)]
    if not any(a in present for a in ("fa", "dfa", "surrogate", "eprop")):
        return []
    out: list[Comparison] = []
    budgets = first.get("label_budget", {}).get("labelled_examples", {})
    for b, a in zip(present[:-1], present[1:], strict=True):
        out.append(("spectrum", "test accuracy", t[a], t[b],
                    lambda m, a=a: dig(m, f"{a}.test_accuracy"),
                    lambda m, b=b: dig(m, f"{b}.test_accuracy"), True))
        for key in budgets:
            per_class = "all" if key == "kall" else key[1:]
            ca, cb = BUDGET_OF.get(a, a), BUDGET_OF.get(b, b)
            out.append(("spectrum", f"test accuracy, {per_class} labelled per class", t[a],
                        t[b], lambda m, c=ca, k=key: dig(m, f"label_budget.{c}.{k}"),
                        lambda m, c=cb, k=key: dig(m, f"label_budget.{c}.{k}"), True))
        out.append(("spectrum", "energy per digit with memory and neuron updates (nJ)", t[a],
                    t[b], lambda m, a=a: dig(m, f"{a}.energy_total_nj"),
                    lambda m, b=b: dig(m, f"{b}.energy_total_nj"), False))
    return out


def paired(metrics_by_seed: Mapping[int, Mapping[str, Any]]) -> list[tuple[str, PairedComparison]]:
    """Every comparison over the seeds where both arms have a value."""
    runs = list(metrics_by_seed.values())
    done = []
    for section, metric, a, b, get_a, get_b, higher in comparisons(runs[0]):
        pairs = [(get_a(m), get_b(m)) for m in runs]
        pairs = [(x, y) for x, y in pairs if x is not None and y is not None
                 and np.isfinite(x) and np.isfinite(y)]
        if len(pairs) < 2:
            continue
        xs, ys = zip(*pairs, strict=True)
        done.append((section, compare(xs, ys, names=(a, b), metric=metric,
                                      higher_is_better=higher)))
    return done


def no_spread(c: PairedComparison) -> bool:
    """A non-zero difference that is the same on every seed: the paired t-test is undefined
    there (scipy returns t = inf, p = 0) and a two-seed sweep gets it by chance (the same one
    test digit twice), so no claim is made from it."""
    return c.n >= 2 and c.diff_mean != 0 and c.diff_sd == 0


def seeds_report(metrics_by_seed: Mapping[int, Mapping[str, Any]]) -> tuple[str, dict]:
    """report.md and comparisons.json of a seeds sweep (see the module docstring)."""
    seeds = sorted(metrics_by_seed)
    results = paired(metrics_by_seed)
    n = len(seeds)
    L = ["# Brain vs. artificial network: paired comparisons across seeds", "",
         f"n = {n} seeds ({', '.join(map(str, seeds))}); every arm of a seed shares its data "
         "split (one fixed test split for all seeds), its labelled digits and its draws. For "
         "each comparison: each arm's mean, the mean paired difference (A - B) with its "
         "bootstrap 95% confidence interval (BCa, `scipy.stats.bootstrap`), and a paired "
         "t-test (`scipy.stats.ttest_rel`). A sentence that one arm beats another is written "
         "only where the interval excludes 0 and the test's p is below 0.05; elsewhere the "
         "row says no difference was shown.", ""]
    if n < 10:
        L += [f"With n = {n} the intervals are rough (a bootstrap of {n} values has few "
              "distinct resamples): the headline comparison uses 10 seeds "
              "(docs/brain_vs_ann.md).", ""]
    beats = [c.sentence() for _, c in results if c.sentence() and not no_spread(c)]
    L += ["## What the seeds show", ""]
    L += [f"- {s}" for s in beats] or ["- No comparison's interval excludes 0."]
    L += [""]
    sections: dict[str, list[PairedComparison]] = {}
    for sec, c in results:
        sections.setdefault(sec, []).append(c)
    for sec, rows in sections.items():
        L += [f"## {sec.capitalize()}", "",
              "| metric | A | B | mean A | mean B | A - B | 95% CI | p (paired t) | verdict |",
              "|---|---|---|---|---|---|---|---|---|"]
        for c in rows:
            verdict = ("the same difference on every seed: no spread to test, not claimed"
                       if no_spread(c) else f"{c.winner} better" if c.winner
                       else "no difference shown")
            L.append(f"| {c.metric} | {c.a} | {c.b} | {fmt(c.mean_a)} | {fmt(c.mean_b)} | "
                     f"{fmt(c.diff_mean)} | {fmt(c.ci_low)} to {fmt(c.ci_high)} | "
                     f"{fmt_p(c.p_value)} | {verdict} |")
        L.append("")
    arm_rows, arm_numbers = spectrum_summary(metrics_by_seed)
    L += arm_rows
    numbers = {"n_seeds": n, "seeds": seeds, "test": "paired t-test",
               "interval": "bootstrap 95% (BCa) of the mean difference",
               "comparisons": [{"section": s, **c.as_dict()} for s, c in results],
               **({"arms": arm_numbers} if arm_numbers else {})}
    return "\n".join(L) + "\n", numbers


def spectrum_summary(metrics_by_seed: Mapping[int, Mapping[str, Any]]
                     ) -> tuple[list[str], dict[str, dict[str, float | int]]]:
    """Each spectrum arm's test accuracy over the seeds, mean ± sample sd (ddof=1), as report
    lines and numbers; nothing when the runs have no arm beyond the original three."""
    runs = list(metrics_by_seed.values())
    arms = [a for a in (*SPECTRUM, "mlp_spiking") if any(isinstance(m.get(a), Mapping)
                                                         for m in runs)]
    if not any(a in arms for a in ("fa", "dfa", "surrogate", "eprop")):
        return [], {}
    L = ["## The learning-rule spectrum over the seeds", "",
         "Test accuracy of each arm, mean ± sample sd (ddof=1) over the seeds; the paired "
         "differences between neighbours are in the Spectrum section above.", "",
         "| arm | n | test accuracy | train s (mean) |", "|---|---|---|---|"]
    numbers: dict[str, dict[str, float | int]] = {}
    for arm in arms:
        acc = [v for m in runs if (v := dig(m, f"{arm}.test_accuracy")) is not None]
        secs = [v for m in runs if (v := dig(m, f"{arm}.train_seconds")) is not None]
        if not acc:
            continue
        sd = float(np.std(acc, ddof=1)) if len(acc) > 1 else float("nan")
        numbers[arm] = {"n": len(acc), "test_accuracy_mean": float(np.mean(acc)),
                        "test_accuracy_sd": sd,
                        "train_seconds_mean": float(np.mean(secs)) if secs else float("nan")}
        L.append(f"| {ARM_TITLES[arm]} | {len(acc)} | {fmt(float(np.mean(acc)))} ± {fmt(sd)} | "
                 f"{fmt(numbers[arm]['train_seconds_mean'], 2)} |")
    return L + [""], numbers
