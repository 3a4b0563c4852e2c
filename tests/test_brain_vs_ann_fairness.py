"""brain_vs_ann's fairness items (issue 16: 4, 5, 7, 9): retention and renormalised lesions,
synchrony wired against its null, numbers as people write them, an interrupted run's figure,
and tuning that never sees the test split."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from neurosim.experiments.brain_vs_ann.config import PRESETS, Config
from neurosim.experiments.brain_vs_ann.figure import figure, human
from neurosim.experiments.brain_vs_ann.measures import (
    SYNCHRONY_KEYS,
    retention,
    sweep_summary,
    synchrony,
)
from neurosim.experiments.brain_vs_ann.report import _ratio
from neurosim.experiments.brain_vs_ann.stdp_arm import normalised
from neurosim.runner.config import ConfigError, build
from neurosim.runner.contract import Result
from neurosim.snn.wta import DigitsWTAParams
from neurosim.spikes import Spikes

ROOT = Path(__file__).resolve().parents[1]


def _tuning_module():
    spec = importlib.util.spec_from_file_location(
        "brain_vs_ann_tuning", ROOT / "experiments" / "brain_vs_ann_tuning.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up by name
    spec.loader.exec_module(mod)
    return mod


# --- retention and renormalisation (item 7) ----------------------------------------------------


def test_retention_is_each_draw_over_the_clean_mean():
    accs = np.array([[0.8, 1.0], [0.45, 0.36]])  # clean mean 0.9
    table, metrics = sweep_summary((0.0, 0.3), accs, "fraction_removed")
    kept = retention(table, "fraction_removed")
    assert kept["0pct"]["mean"] == pytest.approx(1.0)
    # draws 0.45/0.9 = 0.5 and 0.36/0.9 = 0.4: mean 0.45, sample sd 0.0707
    assert kept["30pct"]["mean"] == pytest.approx(0.45)
    assert kept["30pct"]["sd"] == pytest.approx(np.sqrt(0.005))
    assert metrics["30pct"] == {"mean": pytest.approx(0.405), "sd": pytest.approx(0.0636396)}
    np.testing.assert_allclose(table["retention_mean"], [1.0, 0.45])


def test_renormalisation_scales_the_survivors_back_to_the_sum():
    p = DigitsWTAParams(n_input=4, n_exc=2, norm_total=2.0)
    lesioned = np.array([[0.5, 0.0], [0.0, 0.0], [0.5, 0.25], [0.0, 0.25]])  # sums 1, 0.5
    W = normalised(lesioned, p)
    np.testing.assert_allclose(W, [[1.0, 0.0], [0.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    assert np.all(W[lesioned == 0] == 0)  # a removed synapse stays removed
    dead = normalised(np.zeros((4, 2)), p)  # every synapse gone: nothing to scale
    assert np.all(dead == 0)


# --- synchrony (item 5) ------------------------------------------------------------------------


def test_synchrony_metrics_are_flat_with_null_and_p():
    pytest.importorskip("elephant")
    rng = np.random.default_rng(0)
    i, t, windows = [], [], []
    for w in range(8):  # 5 neurons fire together at 3 shared instants of each window
        start = 0.5 * w
        windows.append((start, start + 0.35))
        for s in np.sort(rng.uniform(start + 0.02, start + 0.33, 3)):
            i += range(5)
            t += [s] * 5
    cfg = Config(n_surrogates=9, sync_contrast_surrogates=4, sync_neurons=5)
    out = synchrony(cfg, Spikes(i, t, 4.0, 6), np.array(windows), np.random.default_rng(1))
    assert set(out) == set(SYNCHRONY_KEYS)
    assert out["sync_neurons_active"] == 5 and out["sync_neurons_analysed"] == 5
    assert out["correlation"] > out["correlation_surrogate"] + 3 * out["correlation_surrogate_sd"]
    assert out["correlation_p"] == pytest.approx(1 / 10)
    assert out["spike_contrast_p"] == pytest.approx(1 / 5)
    assert out["spike_contrast_bin_ms"] > 0


def test_fairness_keys_are_checked():
    with pytest.raises(ConfigError, match="disjoint"):
        build(Config, {"tuning_seeds": [0, 1, 100], "reporting_seeds": [100, 101]})
    with pytest.raises(ConfigError, match="sync_method"):
        build(Config, {"sync_method": "shuffle"})
    cfg = Config()
    assert cfg.n_surrogates >= 100
    assert set(cfg.tuning_seeds) == {0, 1, 2, 3}
    assert list(cfg.reporting_seeds) == list(range(100, 110))


# --- numbers and the figure (item 9) -----------------------------------------------------------


def test_numbers_as_people_write_them():
    assert human(14567.0) == "14.6k"
    assert human(6697.0) == "6697"
    assert human(130.4) == "130"
    assert human(0.12891) == "0.129"
    assert human(1.46e6) == "1.46M"
    assert human(None) == "n/a"
    assert _ratio(130.4, 1.0) == "130x"  # was 1.3e+02x
    assert _ratio(1.0, 5.0) == "1/5x"


def _partial_result() -> Result:
    """What an interrupt during the STDP arm leaves: the MLP's and converted network's
    curves and metrics, nothing of the STDP network, no label-budget table."""
    r = Result()
    r.metrics = {"repeats": 2, "mlp": {"test_accuracy": 0.9, "energy_ops_nj": 34.0,
                                       "energy_total_nj": 110.0, "active_fraction": 0.7,
                                       "treves_rolls_sparseness": 0.5}}
    r.arrays = {"feature_shape": np.array([8, 8]), "raster_labels": np.arange(6),
                "mlp_W1": np.random.default_rng(0).standard_normal((64, 10))}
    r.curves = {"mlp_epochs": {"epoch": np.array([1.0, 2.0]), "loss": np.array([2.0, 1.0]),
                               "val_loss": np.array([2.1, 1.2])},
                "mlp_learning": {"samples_seen": np.array([100.0, 200.0]),
                                 "test_accuracy": np.array([0.3, 0.5])},
                "mlp_lesion": {"fraction_removed": np.array([0.0, 0.5]),
                               "accuracy_mean": np.array([0.9, 0.6]),
                               "accuracy_sd": np.array([0.0, 0.1])}}
    return r


def test_interrupted_figure_names_the_missing_panels_and_keeps_partial_curves():
    fig = figure(_partial_result())
    texts = [t.get_text() for t in fig.texts]
    note = next(t for t in texts if t.startswith("Run interrupted"))
    for panel in ("(a)", "(c)", "(d)", "(f)", "(j)"):
        assert panel in note
    assert "(b)" not in note and "(e)" not in note
    assert "STDP spiking WTA arm finished" in note
    axes = fig.axes
    loss_ax = next(ax for ax in axes if ax.get_title().startswith("(b)"))
    assert loss_ax.get_lines(), "the MLP's partial loss curve is drawn"
    speed_ax = next(ax for ax in axes if ax.get_title().startswith("(c)"))
    assert any(len(line.get_xdata()) == 2 for line in speed_ax.get_lines())  # mlp_learning


# --- tuning never sees the test split (item 4) -------------------------------------------------


def test_tuning_data_holds_no_test_digits():
    mod = _tuning_module()
    d = mod.tuning_data(Config(), 0)
    assert not hasattr(d, "X_test") and not hasattr(d, "y_test")
    assert len(d.X_val) > 0 and len(d.X_train) > len(d.X_val)


def test_tuning_config_takes_the_data_sets_preset():
    """`--dataset kmnist` tunes the config a kmnist run gets: its preset under the defaults
    (the MLP's keys are not in it, so the grid's default point is the run's MLP)."""
    mod = _tuning_module()
    assert mod.tuning_config("digits") == Config()
    cfg = mod.tuning_config("kmnist", "/data/kmnist")
    assert (cfg.dataset, cfg.data_dir) == ("kmnist", "/data/kmnist")
    assert cfg.n_eval == PRESETS["kmnist"]["n_eval"] != Config().n_eval
    assert (cfg.mlp_epochs, cfg.mlp_lr) == (Config().mlp_epochs, Config().mlp_lr)


def test_tuning_refuses_an_unknown_data_set_or_a_missing_folder(tmp_path, capsys):
    """Bad input to the script's data set flags: argparse's one error line, exit 2, and no
    score file written."""
    mod = _tuning_module()
    out = tmp_path / "tuning.json"
    for argv, words in ((["--dataset", "foo"], "unknown dataset 'foo'"),
                        (["--dataset", "kmnist", "--data-dir", str(tmp_path / "none")],
                         "not found")):
        with pytest.raises(SystemExit) as exit_info:
            mod.main(["--part", "mlp", "--out", str(out), *argv])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err
    assert not out.exists()


def test_mlp_tuning_runs_on_validation_only(monkeypatch):
    """The MLP grid scores a data set that has no test part at all; the grid is cut to one
    point and two epochs to keep the test fast."""
    mod = _tuning_module()
    monkeypatch.setattr(mod, "MLP_WIDTHS", (100,))
    monkeypatch.setattr(mod, "MLP_LRS", (Config().mlp_lr,))
    monkeypatch.setattr(mod, "MLP_MAX_EPOCHS", 2)
    cfg = Config(mlp_epochs=2)
    rng = np.random.default_rng(0)
    X = rng.random((60, 64))
    y = np.repeat(np.arange(10), 6)
    d = mod.TuningData(0, X[:40], y[:40], X[40:], y[40:])
    out = mod.tune_mlp(cfg, [d, mod.TuningData(1, X[:40], y[:40], X[40:], y[40:])])
    (row,) = out["grid"]
    assert 0 <= row["val_at_best"] <= 1 and row["best_epochs"] in (1, 2)
    # the only grid point is the default width and step; at most its epochs may change
    assert out["change"] in (None, {"mlp_hidden": 100, "mlp_lr": Config().mlp_lr,
                                    "mlp_epochs": row["best_epochs"]})


def test_stdp_tuning_summary_keeps_the_default_within_the_margin():
    mod = _tuning_module()
    cfg = Config()
    scores = {f"on_off/160/{s}": 0.85 for s in range(4)}
    scores |= {f"intensity/320/{s}": 0.85 + mod.MARGIN / 2 for s in range(4)}
    assert mod.summarise_stdp(cfg, scores)["change"] is None
    scores |= {f"intensity/320/{s}": 0.87 for s in range(4)}
    assert mod.summarise_stdp(cfg, scores)["change"] == {"input_coding": "intensity",
                                                         "snn.max_rate_hz": 320.0}


def test_retention_of_a_network_that_never_was_right_is_missing_not_a_crash():
    """n_eval=1 can give a clean accuracy of 0: retention is undefined (drawn config that
    crashed report.md's cell() before)."""
    from neurosim.experiments.brain_vs_ann.report import MISSING, cell

    table, _ = sweep_summary((0.0, 0.5), np.array([[0.0, 0.0], [0.0, 0.0]]), "fraction_removed")
    kept = retention(table, "fraction_removed")
    assert kept["50pct"] == {"mean": None, "sd": None}
    assert cell(kept["50pct"]) == MISSING
