"""brain_vs_ann's learning-rule spectrum (issue 17): the arms key, the FA/DFA and spiking
gradient arms under the label-budget protocol, their energy counts, the spectrum report and
the seeds sweep's neighbour comparisons."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from neurosim import data
from neurosim.ann import MLP
from neurosim.experiments.brain_vs_ann import budgets as bud
from neurosim.experiments.brain_vs_ann import gradient_arms as ga
from neurosim.experiments.brain_vs_ann import seeds_report
from neurosim.experiments.brain_vs_ann.config import (
    ALL_ARMS,
    DEFAULT_ARMS,
    PRESETS,
    QUICK,
    Config,
)
from neurosim.experiments.brain_vs_ann.report import SPECTRUM, spectrum_section
from neurosim.runner.config import ConfigError, build, load_toml
from neurosim.runner.contract import Context
from neurosim.runner.rundir import load_run
from neurosim.snn import surrogate
from tests.test_run import cli


def small_digits(n_train: int = 60, n_test: int = 40) -> data.Dataset:
    return data.load_images("digits", 0, n_train=n_train, n_test=n_test, val_fraction=0.2)


def small_cfg(**values) -> Config:
    return build(Config, {**QUICK, **values})


# --- the arms key -------------------------------------------------------------------------------


def test_arms_key_validates_names_and_dependencies():
    assert set(DEFAULT_ARMS) <= set(ALL_ARMS)
    assert build(Config, {"arms": ["mlp", "fa", "surrogate", "stdp"]}).arms == (
        "mlp", "fa", "surrogate", "stdp")
    with pytest.raises(Exception, match="unknown arm 'surogate'.*did you mean surrogate"):
        build(Config, {"arms": ["mlp", "surogate"]})
    with pytest.raises(Exception, match="mlp_spiking converts the mlp arm"):
        build(Config, {"arms": ["fa", "mlp_spiking"]})
    with pytest.raises(Exception, match="twice"):
        build(Config, {"arms": ["fa", "fa"]})
    # the spiking arms' size, presentation and coding are the STDP arm's: not keys of their own
    with pytest.raises(ConfigError, match="surrogate.n_hidden is not a key.*snn.n_exc"):
        build(Config, {"surrogate.n_hidden": 50})


def test_spiking_arms_take_the_stdp_arms_network_and_input():
    cfg = build(Config, {"snn.n_exc": 37, "snn.present_ms": 120.0, "snn.max_rate_hz": 90.0,
                         "input_coding": "intensity", "eprop.lr": 0.004})
    for arm in ("surrogate", "eprop"):
        p = ga.spiking_params(cfg, arm)
        assert (p.n_hidden, p.present_ms, p.dt_ms, p.max_rate_hz, p.input_coding) == (
            37, 120.0, cfg.snn.dt_ms, 90.0, "intensity")
    assert ga.spiking_params(cfg, "eprop").lr == 0.004
    assert ga.spiking_params(cfg, "eprop").readout == "per_step"
    assert ga.spiking_params(cfg, "surrogate").readout == "mean"


def test_presets_build_and_agree_with_the_28x28_toml():
    toml = load_toml(Path(__file__).resolve().parents[1] / "experiments"
                     / "brain_vs_ann_mnist.toml")
    for name, values in PRESETS.items():
        assert name in data.IMAGE_SETS
        cfg = build(Config, {"dataset": name, **values})
        # the STDP arm's 28x28 values are stdp_digits' Diehl & Cook preset, as in the TOML
        assert (cfg.input_coding, cfg.snn.max_rate_hz, cfg.snn.norm_total) == (
            "intensity", 63.75, 78.0)
        for key in ("input_coding", "stdp_epochs", "snapshot_label_digits"):
            if key in toml:
                assert values[key] == toml[key], key


# --- fa / dfa -----------------------------------------------------------------------------------


def test_fa_arm_starts_from_the_mlp_arms_forward_weights():
    cfg = small_cfg()
    ds = small_digits()
    ctx = Context(seed=3, rng=np.random.default_rng(3))
    sizes = ga.mlp_sizes(cfg, ds)
    bp = MLP(sizes, "relu", "softmax", bias=False, init="he", rng=ctx.rng_for("mlp"))
    fa = MLP(sizes, "relu", "softmax", bias=False, init="he", rng=ctx.rng_for("mlp"),
             feedback="fa")
    for a, b in zip(bp.weights, fa.weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_fa_and_dfa_arms_are_one_rule_with_one_hidden_layer():
    cfg = small_cfg()
    ds = small_digits()
    out = {}
    for rule in ("fa", "dfa"):
        ctx = Context(seed=0, rng=np.random.default_rng(0))
        m, curves, status = ga.feedback_arm(cfg, ctx, ds, rule)
        assert status == "COMPLETED"
        table = curves[f"{rule}_epochs"]
        assert table["epoch"] == list(range(cfg.mlp_epochs + 1))
        assert 0 <= min(table["alignment_angle_deg"]) <= 180
        assert m["alignment_angle_initial_deg"] == table["alignment_angle_deg"][0]
        # an MLP's cost: one MAC per weight, 64*20 + 20*10
        assert m["synaptic_ops_per_inference"] == 64 * 20 + 20 * 10
        assert m["gradient_steps"] == cfg.mlp_epochs * int(np.ceil(len(ds.X_train) / 32))
        out[rule] = m
    assert out["fa"]["test_accuracy"] == out["dfa"]["test_accuracy"]
    assert out["fa"]["alignment_angle_final_deg"] == out["dfa"]["alignment_angle_final_deg"]


# --- the label-budget protocol ------------------------------------------------------------------


def test_extra_arms_get_the_mlps_digits_and_leave_its_draws_alone():
    cfg = small_cfg(label_budgets=[1, 2, 0], budget_max_epochs=5, budget_patience=2)
    ds = small_digits()
    seen = []

    def spy(idx, k, init_seed):
        seen.append((k, np.array(idx), init_seed))
        return 0.5, 7

    plain, _, budgets = bud.label_budget_table(cfg, ds, np.random.default_rng(1))
    with_extra, table, budgets2 = bud.label_budget_table(
        cfg, ds, np.random.default_rng(1), extra={"fa": (spy, "the same digits")})
    for k in budgets:
        np.testing.assert_array_equal(budgets[k], budgets2[k])
    assert [k for k, _, _ in seen] == [1, 2, 0]
    for (_, idx, _), ref in zip(seen, budgets.values(), strict=True):
        np.testing.assert_array_equal(idx, ref)
    assert len({s for _, _, s in seen}) == 1  # one initial draw for every budget
    for col in bud.COLUMNS:
        assert with_extra[col] == plain[col]
    assert with_extra["fa"] == {"k1": 0.5, "k2": 0.5, "kall": 0.5}
    assert with_extra["gradient_steps"] == {"fa": {"k1": 7, "k2": 7, "kall": 7}}
    assert with_extra["given"]["fa"] == "the same digits"
    np.testing.assert_array_equal(table["fa_gradient_steps"], [7, 7, 7])


def test_the_budget_loop_goes_through_the_progress_wrapper():
    """At 28x28 a spiking arm trains for minutes per budget: the loop over budgets is wrapped
    in the runner's progress lines, one item per budget, with the same results."""
    cfg = small_cfg(label_budgets=[1, 0], budget_max_epochs=3, budget_patience=2)
    ds = small_digits()
    totals, items = [], []

    def progress(iterable, total):
        totals.append(total)
        for item in iterable:
            items.append(item[0])
            yield item

    plain, _, _ = bud.label_budget_table(cfg, ds, np.random.default_rng(1))
    wrapped, _, _ = bud.label_budget_table(cfg, ds, np.random.default_rng(1), progress=progress)
    assert totals == [2] and items == [1, 0]
    assert wrapped == plain


def test_spiking_budget_training_stretches_small_budgets_to_min_steps():
    cfg = small_cfg(**{"surrogate.epochs": 2, "surrogate.batch_size": 8,
                       "spiking_min_steps": 12, "spiking_val_checks": 3})
    ds = small_digits()
    X, y = ds.X_train[:10], ds.y_train[:10]  # 2 batches per epoch
    run = ga.train_spiking(cfg, "surrogate", X, y, ds, np.random.default_rng(0), 5, 12)
    assert run.status == "COMPLETED"
    assert run.epochs == 6 and run.steps == 12  # ceil(12 / 2) epochs, not 2
    assert np.isfinite(run.curve["val_accuracy"]).sum() == 3  # epochs 2, 4, 6
    assert run.best_epoch in (2, 4, 6)
    full = ga.train_spiking(cfg, "surrogate", X, y, ds, np.random.default_rng(0), 5, 1)
    assert full.epochs == 2  # the full run keeps its schedule


def test_spiking_training_reports_its_epochs_as_a_progress_phase():
    """One spiking training is one item of the label-budget phase and takes minutes at 28x28:
    its epochs are a phase of their own, every epoch taken once, and the run is the same
    with or without it."""
    cfg = small_cfg(**{"surrogate.epochs": 2, "surrogate.batch_size": 8,
                       "spiking_min_steps": 12, "spiking_val_checks": 3})
    ds = small_digits()
    X, y = ds.X_train[:10], ds.y_train[:10]
    phases = []

    class Ctx:
        def progress(self, items, total, desc):
            phases.append([total, desc, 0])
            for item in items:
                phases[-1][2] += 1
                yield item

    run = ga.train_spiking(cfg, "surrogate", X, y, ds, np.random.default_rng(0), 5, 12, Ctx())
    assert phases == [[6, "surrogate training, 10 labelled digits (epochs)", 6]]
    plain = ga.train_spiking(cfg, "surrogate", X, y, ds, np.random.default_rng(0), 5, 12)
    assert np.array_equal(run.net.flat, plain.net.flat)
    np.testing.assert_equal(run.curve, plain.curve)  # NaN where validation was not scored


def test_spiking_energy_counts_input_and_hidden_spikes():
    p = surrogate.SurrogateParams(n_hidden=6, present_ms=10.0, max_rate_hz=300.0,
                                  dtype="float64")
    net = surrogate.SpikingNet(2 * 64, 10, p, np.random.default_rng(0))
    net.W_in *= 4  # make the hidden layer fire
    ds = small_digits(n_test=9)
    out = ga.spiking_test(net, ds.X_test, ds.y_test, np.random.default_rng(2), batch=4)
    x = surrogate.encode(ds.X_test[:4], p, np.random.default_rng(2))
    z = net.run(x).z
    np.testing.assert_array_equal(out["input_spikes"][:4], x.sum(axis=(0, 2)))
    np.testing.assert_array_equal(out["hidden_counts"][:4], z.sum(axis=0))
    assert out["hidden_counts"].sum() > 0


# --- the report -----------------------------------------------------------------------------------


def _arm(acc, energy, **extra):
    return {"test_accuracy": acc, "energy_total_nj": energy, "train_seconds": 1.0,
            "energy_band_total_nj": {"a": energy / 2, "b": energy}, **extra}


def _spectrum_metrics(rng, shift=0.0):
    accs = {"mlp": 0.97, "fa": 0.96, "dfa": 0.96, "surrogate": 0.95, "eprop": 0.94,
            "stdp": 0.80, "mlp_spiking": 0.96}
    m = {a: _arm(v + rng.normal(0, 0.003) + (shift if a == "stdp" else 0), 100.0 * (i + 1))
         for i, (a, v) in enumerate(accs.items())}
    m["fa"].update(alignment_angle_initial_deg=90.0, alignment_angle_final_deg=60.0)
    m["label_budget"] = {"labelled_examples": {"k1": 10, "kall": 900},
                         "mlp_gradient_steps": {"k1": 5, "kall": 50},
                         **{c: {"k1": 0.6 + rng.normal(0, 0.01), "kall": 0.95}
                            for c in ("mlp", "fa", "dfa", "surrogate", "eprop", "stdp_vote",
                                      "stdp_logistic", "nearest_class_mean", "logistic")}}
    m["n_train"] = 900
    return m


def test_spectrum_section_orders_the_arms_and_says_one_seed():
    m = _spectrum_metrics(np.random.default_rng(0))
    text = "\n".join(spectrum_section(m, Config()))
    rows = [line for line in text.splitlines()
            if line.split(" | ")[0][2:] in {"ref", *(f"+{n}" for n in range(1, 6)), "side"}]
    titles = [r.split(" | ")[1] for r in rows]
    assert titles == ["MLP (backprop)", "MLP, feedback alignment",
                      "MLP, direct feedback alignment", "SNN, surrogate-gradient BPTT",
                      "SNN, e-prop", "STDP spiking WTA", "MLP converted to spikes"]
    assert rows[-1].startswith("| side |")
    assert "One seed" in text and "beats" not in text
    # the step FA -> DFA: accuracy difference and energy factor from the metrics
    d = m["dfa"]["test_accuracy"] - m["fa"]["test_accuracy"]
    assert f"test accuracy {d:+.3f}" in text
    assert "energy per digit 1.5x that of the step before" in text  # 300 / 200
    assert "went from 90.0° to 60.0°" in text
    assert "| `alignment_angle_final_deg` | 60 | – | – | – |" in text  # every metric's table
    assert "weight transport removed" in text and "supervision removed" in text


def test_seeds_report_compares_spectrum_neighbours_only_with_evidence():
    rng = np.random.default_rng(0)
    runs = {s: _spectrum_metrics(rng) for s in range(10)}
    text, numbers = seeds_report(runs)
    spectrum = [c for c in numbers["comparisons"] if c["section"] == "spectrum"]
    pairs = {(c["a"], c["b"]) for c in spectrum}
    assert ("STDP spiking WTA", "SNN, e-prop") in pairs
    assert ("MLP, feedback alignment", "MLP (backprop)") in pairs
    assert not any("converted" in a or "converted" in b for a, b in pairs)
    # e-prop 0.94 vs STDP 0.80: clear; FA vs DFA: noise only -> no sentence
    assert "SNN, e-prop beats STDP spiking WTA on test accuracy" in text
    fa_dfa = next(c for c in spectrum if c["a"] == "MLP, direct feedback alignment"
                  and c["metric"] == "test accuracy")
    if fa_dfa["ci_low"] < 0 < fa_dfa["ci_high"] or fa_dfa["p_value"] >= 0.05:
        assert "direct feedback alignment beats MLP, feedback alignment on test" not in text
        assert "feedback alignment beats MLP, direct feedback alignment on test" not in text
    # each arm's mean +- sample sd, pinned against numpy
    acc = [runs[s]["surrogate"]["test_accuracy"] for s in runs]
    got = numbers["arms"]["surrogate"]
    assert got["n"] == 10
    assert got["test_accuracy_mean"] == pytest.approx(np.mean(acc))
    assert got["test_accuracy_sd"] == pytest.approx(np.std(acc, ddof=1))
    assert "## The learning-rule spectrum over the seeds" in text


def test_seeds_report_without_spectrum_arms_is_unchanged():
    rng = np.random.default_rng(0)
    runs = {s: {a: v for a, v in _spectrum_metrics(rng).items()
                if a not in ("fa", "dfa", "surrogate", "eprop")} for s in range(3)}
    text, numbers = seeds_report(runs)
    assert "arms" not in numbers and "learning-rule spectrum" not in text
    assert not [c for c in numbers["comparisons"] if c["section"] == "spectrum"]


# --- whole runs ---------------------------------------------------------------------------------


@pytest.mark.slow  # every arm's quick run (~25 s on a loaded 2-core machine)
def test_quick_run_of_every_arm(tmp_path):
    done = cli("brain_vs_ann", "--quick", f"arms=[{','.join(ALL_ARMS)}]", "--out",
               str(tmp_path / "runs"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (path,) = sorted((tmp_path / "runs" / "brain_vs_ann").iterdir())
    run = load_run(path)
    m = run["metrics"]
    assert run["meta"]["status"] == "COMPLETED"
    for arm in ALL_ARMS:
        assert 0 <= m[arm]["test_accuracy"] <= 1, arm
        assert m[arm]["energy_total_nj"] > 0, arm
    for arm in ("fa", "dfa", "surrogate", "eprop"):
        assert f"{arm}_epochs" in run["curves"]
        assert set(m["label_budget"][arm]) == {"k1", "k2", "kall"}
        assert m["label_budget"]["gradient_steps"][arm]["k1"] >= 1
    for arm in ("surrogate", "eprop"):  # their all-digits budget is their arm's training
        assert m["label_budget"][arm]["kall"] == m[arm]["test_accuracy"]
        assert m[arm]["hidden_units"] == 20 and m[arm]["input_cells"] == 128
    report = (path / "report.md").read_text()
    assert "## The learning-rule spectrum" in report
    for arm in SPECTRUM:
        assert f"{m[arm]['test_accuracy']:.4g}" in report


def test_subset_of_arms_runs_without_brian2(tmp_path):
    done = cli("brain_vs_ann", "--quick", "arms=[mlp,fa]", "label_budgets=[1,0]", "--out",
               str(tmp_path / "runs"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (path,) = sorted((tmp_path / "runs" / "brain_vs_ann").iterdir())
    m = json.loads((path / "metrics.json").read_text())
    assert set(m) >= {"mlp", "fa", "label_budget"}
    assert "stdp" not in m and "mlp_spiking" not in m
    assert m["label_budget"]["stdp_vote"] == {"k1": None, "kall": None}
    assert "stdp" not in m["label_budget"]["given"]


def test_replace_keeps_frozen_params():
    # spiking_params must not mutate the Config's own parameters
    cfg = Config()
    ga.spiking_params(dataclasses.replace(cfg), "surrogate")
    assert cfg.surrogate == surrogate.SurrogateParams()


def test_a_difference_without_spread_is_not_claimed():
    # two seeds, the FA arm one test digit (1/594) behind on both: scipy's paired t-test
    # returns p = 0 for differences without spread; the report must not call it a win
    rng = np.random.default_rng(0)
    runs = {s: _spectrum_metrics(rng) for s in range(2)}
    for m in runs.values():
        m["fa"]["test_accuracy"] = m["mlp"]["test_accuracy"] - 2 / 594
    text, numbers = seeds_report(runs)
    c = next(c for c in numbers["comparisons"] if c["section"] == "spectrum"
             and c["a"] == "MLP, feedback alignment" and c["metric"] == "test accuracy")
    assert c["diff_sd"] == 0 and c["p_value"] < 0.05  # what the test alone would claim
    assert "MLP (backprop) beats MLP, feedback alignment on test accuracy by" not in text
    assert "no spread to test, not claimed" in text
