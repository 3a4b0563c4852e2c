"""The seeds sweep's report: paired comparisons, and no "beats" sentence without evidence."""

from __future__ import annotations

import numpy as np

from neurosim.experiments.brain_vs_ann import seeds_report


def _metrics(rng, mlp, stdp, spiking):
    """Metrics of one seed with the keys the report reads."""
    def arm(acc):
        return {"test_accuracy": acc, "energy_total_nj": 100 * acc,
                "lesion_accuracy": {"0pct": {"mean": acc}, "30pct": {"mean": acc * 0.9}},
                "noise_accuracy": {"0pct": {"mean": acc}, "30pct": {"mean": acc * 0.8}}}
    budgets = {"k1": rng.uniform(0.3, 0.4), "kall": rng.uniform(0.9, 0.95)}
    return {"mlp": arm(mlp), "stdp": arm(stdp), "mlp_spiking": arm(spiking),
            "label_budget": {"labelled_examples": {"k1": 10, "kall": 900},
                             **{col: dict(budgets) for col in (
                                 "mlp", "stdp_vote", "stdp_logistic", "nearest_class_mean",
                                 "logistic")}}}


def test_clear_and_overlapping_arms():
    rng = np.random.default_rng(0)
    runs = {}
    for seed in range(10):
        mlp = 0.95 + rng.normal(0, 0.005)
        runs[seed] = _metrics(rng, mlp, mlp - 0.1 + rng.normal(0, 0.01),
                              mlp + rng.normal(0, 0.01) * (1 if seed % 2 else -1))
    text, numbers = seeds_report(runs)
    assert numbers["n_seeds"] == 10 and "n = 10 seeds" in text
    assert "MLP (backprop) beats STDP spiking WTA on test accuracy by" in text
    accuracy = [c for c in numbers["comparisons"] if c["metric"] == "test accuracy"]
    converted = next(c for c in accuracy if c["b"] == "MLP converted to spikes")
    assert converted["ci_low"] < 0 < converted["ci_high"]
    assert "beats MLP converted to spikes on test accuracy" not in text
    assert "MLP converted to spikes beats MLP (backprop) on test accuracy" not in text


def test_no_beats_sentence_where_an_interval_includes_zero():
    """Arms drawn from one distribution: whatever the draw, every sentence the report writes
    belongs to a comparison whose interval excludes 0."""
    rng = np.random.default_rng(3)
    runs = {s: _metrics(rng, *rng.normal(0.8, 0.02, size=3)) for s in range(10)}
    text, numbers = seeds_report(runs)
    for c in numbers["comparisons"]:
        beats = f"{c['a']} beats {c['b']} on {c['metric']} by"
        beaten = f"{c['b']} beats {c['a']} on {c['metric']} by"
        if c["ci_low"] is None or c["ci_low"] <= 0 <= c["ci_high"]:
            assert beats not in text and beaten not in text


def test_retention_is_compared_not_raw_accuracy():
    rng = np.random.default_rng(1)
    runs = {s: _metrics(rng, 0.95, 0.80, 0.94) for s in range(4)}
    _, numbers = seeds_report(runs)
    lesion = [c for c in numbers["comparisons"] if "30% synapses removed" in c["metric"]]
    assert lesion and all(abs(c["mean_a"] - 0.9) < 1e-12 for c in lesion)


def test_the_stdp_learning_curve_is_compared_step_by_step():
    """A curve that rises by 0.1 per checkpoint on every seed, then moves by seed noise alone
    at its last step: each rise is a sentence, the last step is "no difference shown"."""
    rng = np.random.default_rng(2)
    runs = {}
    for seed in range(6):
        m = _metrics(rng, 0.95, 0.8, 0.94)
        top = 0.6 + rng.normal(0, 0.01)
        m["stdp"]["learning_curve"] = {"100": top - 0.2 + rng.normal(0, 0.01),
                                       "1000": top - 0.1 + rng.normal(0, 0.01),
                                       "5000": top, "5608": top + 0.02 * (-1) ** seed}
        runs[seed] = m
    text, numbers = seeds_report(runs)
    curve = [c for c in numbers["comparisons"] if c["section"] == "learning curve"]
    assert [(c["a"], c["b"]) for c in curve] == [
        ("STDP after 1,000 digits", "STDP after 100 digits"),
        ("STDP after 5,000 digits", "STDP after 1,000 digits"),
        ("STDP after 5,608 digits", "STDP after 5,000 digits")]
    assert "STDP after 5,000 digits beats STDP after 1,000 digits" in text
    assert curve[-1]["ci_low"] < 0 < curve[-1]["ci_high"]
    assert "## Learning curve" in text
    assert "STDP after 5,608 digits beats" not in text and "beats STDP after 5,608" not in text
