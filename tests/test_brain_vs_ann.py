"""brain_vs_ann: the quick run end to end through the command line, the report against
metrics.json, the undamaged lesion, the checkpoint plan.

(The conversion itself keeping a small MLP's argmax is tested in tests/test_snn_convert.py;
here the whole run checks that Brian2 and numpy gave the converted network the same spikes.)
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from neurosim.experiments import brain_vs_ann as bva
from neurosim.runner.config import ConfigError, build
from neurosim.runner.rundir import load_run
from tests.helpers import write_fake_mnist
from tests.test_run import cli

ARMS = ("mlp", "stdp", "mlp_spiking")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One quick run for the whole module (numpy target: no compiler needed)."""
    tmp = tmp_path_factory.mktemp("bva")
    done = cli("brain_vs_ann", "--quick", "--out", str(tmp / "runs"), cwd=tmp)
    assert done.returncode == 0, done.stderr
    (path,) = sorted((tmp / "runs" / "brain_vs_ann").iterdir())
    return path, load_run(path), done.stdout


@pytest.mark.slow  # a whole quick run of the main job (~15 s)
def test_quick_run_completes_with_every_arm(quick_run):
    path, run, stdout = quick_run
    assert run["meta"]["status"] == "COMPLETED"
    assert run["meta"]["brian2_target"] == "numpy"
    assert (path / "brain_vs_ann.png").exists() and (path / "report.md").exists()
    m = run["metrics"]
    assert m["n_eval"] == 20 and m["train_seconds"] >= 0
    for arm in ARMS:
        assert 0 <= m[arm]["test_accuracy"] <= 1
        for table in ("learning", "lesion", "noise"):
            assert f"{arm}_{table}" in run["curves"], f"{arm}_{table}"
        assert set(m[arm]["lesion_accuracy"]) == {"0pct", "50pct", "90pct"}
        assert set(m[arm]["noise_accuracy"]) == {"0pct", "30pct"}
        assert m[arm]["energy_total_nj"] > m[arm]["energy_ops_nj"] > 0
    assert m["mlp"]["labels_drive_learning"] and not m["stdp"]["labels_drive_learning"]
    assert m["mlp"]["hidden_units"] == 20  # matched to snn.n_exc
    # the converted network: the same spikes on Brian2 and numpy, and it follows the MLP
    assert m["mlp_spiking"]["engines_identical"] is True
    assert m["mlp_spiking"]["agreement_with_mlp"] >= 0.6
    assert run["spikes"]["stdp_exc"]["t"].size > 0
    assert "mlp.test_accuracy" in stdout


@pytest.mark.slow  # a whole quick run of the main job (~15 s)
def test_every_arm_is_scored_at_the_same_checkpoints(quick_run):
    _, run, _ = quick_run
    c = run["curves"]
    stdp = c["stdp_learning"]["samples_seen"]
    for arm in ("mlp", "mlp_spiking"):
        seen = c[f"{arm}_learning"]["samples_seen"]
        np.testing.assert_array_equal(seen[: len(stdp)], stdp)
    np.testing.assert_array_equal(c["mlp_learning"]["samples_seen"],
                                  c["mlp_spiking_learning"]["samples_seen"])


def _number(text: str) -> float:
    return float(text.replace("−", "-"))


def _check_cell(text: str, value, where: str) -> None:
    text = text.strip()
    if value is None:
        assert text == bva.MISSING, where
    elif isinstance(value, bool):
        assert text == ("yes" if value else "no"), where
    elif isinstance(value, dict):  # mean ± sd
        mean, _, sd = text.partition(" ± ")
        # half a unit of the third decimal, plus float fuzz (0.1875 is written 0.188)
        assert _number(mean) == pytest.approx(value["mean"], abs=5e-4 + 1e-9), where
        if value["sd"] is not None:
            assert _number(sd) == pytest.approx(value["sd"], abs=5e-4 + 1e-9), where
    elif isinstance(value, list):
        parts = text.split(", ")
        assert len(parts) == len(value), where
        for part, v in zip(parts, value, strict=True):
            _check_cell(part, v, where)
    elif isinstance(value, int | float):
        assert _number(text) == pytest.approx(value, rel=5e-4, abs=1e-12), where
    else:
        assert text == str(value).replace("|", "/"), where


@pytest.mark.slow  # a whole quick run of the main job (~15 s)
def test_report_numbers_equal_metrics_json(quick_run):
    path, run, _ = quick_run
    metrics = json.loads((path / "metrics.json").read_text())
    report = (path / "report.md").read_text()
    rows = re.findall(r"^\| (.+?) \| `([\w.]+)` \| (.+) \|$", report, flags=re.M)
    keys = {key for _, key, _ in rows}
    # every row of the table list is in the report, and the robustness rows too
    assert {key for _, _, key in bva.ROWS} <= keys
    assert "lesion_accuracy.90pct" in keys and "noise_accuracy.30pct" in keys
    # every metric of every arm is in some table of the report
    for arm in ARMS:
        for key, value in metrics[arm].items():
            nested = key in ("lesion_accuracy", "lesion_accuracy_renorm", "noise_accuracy",
                             "lesion_retention", "lesion_retention_renorm",
                             "noise_retention") or key.startswith(
                "energy_band_total_nj")  # one row per level / energy model
            assert key in keys or key == "learning_curve" or nested, \
                f"{arm}.{key} not in the report"
            if nested:
                assert {f"{key}.{level}" for level in value} <= keys
    for _, key, cells in rows:
        values = [bva.lookup(metrics, arm, key) for arm in ARMS]
        for text, value, arm in zip(cells.split(" | "), values, ARMS, strict=True):
            _check_cell(text, value, f"{key} / {arm}")
    # the learning-curve table
    curve_rows = re.findall(r"^\| (\d+) \| (.+) \|$", report, flags=re.M)
    assert curve_rows
    for seen, cells in curve_rows:
        for text, arm in zip(cells.split(" | "), ARMS, strict=True):
            _check_cell(text, metrics[arm]["learning_curve"].get(seen), f"{seen} / {arm}")


@pytest.mark.slow  # a whole quick run of the main job (~15 s)
def test_undamaged_lesion_is_the_undamaged_network(quick_run):
    _, run, _ = quick_run
    m = run["metrics"]
    # the MLP is deterministic: 0% removed gives its accuracy on the evaluation digits,
    # every draw the same (sd 0)
    final = str(int(run["curves"]["mlp_learning"]["samples_seen"][-1]))
    assert m["mlp"]["lesion_accuracy"]["0pct"] == {
        "mean": m["mlp"]["learning_curve"][final], "sd": 0.0}
    assert m["mlp"]["noise_accuracy"]["0pct"] == m["mlp"]["lesion_accuracy"]["0pct"]
    # the spiking arms' undamaged draws differ only in their Poisson input; the STDP arm's
    # 0% noise level is the same replicas as its 0% lesion level
    assert m["stdp"]["noise_accuracy"]["0pct"] == m["stdp"]["lesion_accuracy"]["0pct"]


@pytest.mark.slow  # a whole quick run of the main job (~15 s)
def test_converted_accuracy_against_energy_over_presentation_time(quick_run):
    _, run, _ = quick_run
    m, curve = run["metrics"]["mlp_spiking"], run["curves"]["mlp_spiking_energy"]
    steps = curve["step"]
    assert steps[0] == 1 and np.all(np.diff(steps) > 0)
    # a longer presentation costs more: events and neuron updates only accumulate
    assert np.all(np.diff(curve["energy_total_nj"]) > 0)
    assert np.all(np.diff(curve["synaptic_ops"]) >= 0)
    # cut at the last step it is the full run: the arm's own cost and accuracy
    assert curve["synaptic_ops"][-1] == pytest.approx(m["synaptic_ops_per_inference"])
    assert curve["energy_total_nj"][-1] == pytest.approx(m["energy_total_nj"])
    time_curve = run["curves"]["mlp_spiking_time"]
    assert np.array_equal(curve["accuracy"], time_curve["accuracy"][steps.astype(int) - 1])


@pytest.mark.slow  # two quick runs of the MLP and converted arms (~10 s)
def test_the_converted_net_runs_brian2_on_a_subset_and_scores_every_digit():
    """spiking_brian2_samples=k: Brian2 runs the first k test digits (at 28x28 all 10,000 are
    1M steps on its numpy target), the numpy engine all of them, equal spike for spike on
    the k; the arm's numbers are those of the full Brian2 run."""
    from neurosim.runner.contract import quick_context

    out = {}
    for k in (0, 15):
        cfg = build(bva.Config, {**bva.QUICK, "arms": ["mlp", "mlp_spiking"],
                                 "spiking_brian2_samples": k})
        out[k] = bva.run(cfg, quick_context(seed=0)).metrics["mlp_spiking"]
    assert out[0]["brian2_samples"] == 40 and out[15]["brian2_samples"] == 15
    assert out[0]["engines_identical"] is True and out[15]["engines_identical"] is True
    for key in ("test_accuracy", "agreement_with_mlp", "synaptic_ops_per_inference",
                "mean_rate_hz", "steps_to_mlp_accuracy"):
        assert out[15][key] == out[0][key], key
    with pytest.raises(ConfigError, match="spiking_brian2_samples"):
        build(bva.Config, {"spiking_brian2_samples": -1})


def test_checkpoint_plan_snaps_to_the_stdp_chunks():
    cfg = build(bva.Config, {"stdp_epochs": 2, "mlp_epochs": 5, "chunk": 100,
                             "checkpoints": [50, 100, 250, 400, 1000]})
    plan = bva.checkpoint_plan(cfg, 250)  # chunks end at 100, 200, 250 | 350, 450, 500
    assert plan["stdp"] == [100, 250, 450, 500]
    assert plan["mlp"] == [100, 250, 450, 500, 1000, 1250]


def test_config_refusals():
    with pytest.raises(ConfigError, match="repeats"):
        build(bva.Config, {"repeats": 1})
    with pytest.raises(ConfigError, match="include 0"):
        build(bva.Config, {"lesion_fractions": [0.5, 0.9]})
    with pytest.raises(ConfigError, match="lesion_fractions"):
        build(bva.Config, {"lesion_fractions": [0.0, 1.5]})


def test_diverging_mlp_marks_the_run_and_keeps_its_curves(tmp_path):
    done = cli("brain_vs_ann", "--quick", "mlp_lr=1e20", "--out", str(tmp_path / "runs"),
               cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    (path,) = sorted((tmp_path / "runs" / "brain_vs_ann").iterdir())
    run = load_run(path)
    assert run["meta"]["status"] == "DIVERGED"
    assert "stdp" not in run["metrics"]  # stopped where the MLP diverged
    # what ran away is named, not only that something did
    assert any(w.startswith("mlp_epochs: loss ") and "at epoch 1" in w
               for w in run["meta"]["warnings"]), run["meta"]["warnings"]


@pytest.mark.slow  # a whole quick run of the main job (~15 s)
def test_reads_mnist_idx_files(tmp_path):
    """dataset=mnist on a tiny MNIST look-alike: class k lights up a block of rows."""
    folder = write_fake_mnist(tmp_path / "mnist")
    done = cli("brain_vs_ann", "--quick", "dataset=mnist", f"data_dir={folder}",
               "input_coding=intensity", "n_train=60", "n_test=20", "n_eval=10",
               "n_eval_sweeps=6", "lesion_fractions=[0.0, 0.9]", "noise_sds=[0.0]",
               "checkpoints=[1000]",
               "conversion.n_steps=20", "--out", str(tmp_path / "runs"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (path,) = sorted((tmp_path / "runs" / "brain_vs_ann").iterdir())
    run = load_run(path)
    assert run["arrays"]["stdp_receptive_fields"].shape == (784, 20)
    assert run["arrays"]["mlp_W1"].shape == (784, 20)
    assert run["metrics"]["n_eval"] == 10
    # the sweeps scored their first 6 digits in every arm: accuracies in sixths
    assert run["metrics"]["n_sweep"] == 6
    for arm in ("mlp", "mlp_spiking", "stdp"):
        table = run["curves"][f"{arm}_lesion"]
        draws = np.array([table[k] for k in table if k.startswith("accuracy_draw")]) * 6
        assert np.allclose(draws, np.round(draws)), (arm, draws)
