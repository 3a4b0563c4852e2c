"""Issue 17: brain_vs_ann draws the learning-rule spectrum as a figure of its own
(`figure_spectrum`), beside the 12-panel main figure, whenever a run has an arm between backprop
and STDP (fa, dfa, surrogate, eprop); a run without one draws the main figure only.
"""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

from neurosim.experiments import brain_vs_ann as bva
from neurosim.experiments.brain_vs_ann import figure_spectrum as fs
from neurosim.runner.contract import Result
from neurosim.runner.rundir import load_run
from tests.test_run import cli

matplotlib.use("Agg")


def _arm(acc: float, energy: float) -> dict:
    return {"test_accuracy": acc, "energy_total_nj": energy}


def _result(arms: dict[str, dict], fa_angle=None, dfa_angle=None) -> Result:
    """A finished run's result with only what the spectrum figure reads."""
    budget = {"labels_per_class": np.array([1.0, 2.0, 4.8]),
              "labelled_examples": np.array([10.0, 20.0, 48.0])}
    for arm in arms:
        if arm != "mlp_spiking":
            col = "stdp_vote" if arm == "stdp" else arm
            budget[col] = np.array([0.2, 0.4, arms[arm]["test_accuracy"]])
    curves = {"label_budget": budget}
    for arm, angle in (("fa", fa_angle), ("dfa", dfa_angle)):
        if angle is not None:
            curves[f"{arm}_epochs"] = {"epoch": np.arange(len(angle), dtype=float),
                                       "alignment_angle_deg": np.asarray(angle, float)}
    return Result(metrics={"dataset": "digits", "n_train": 48, "n_test": 40, **arms},
                  curves=curves)


def _ticks(ax) -> list[str]:
    return [t.get_text().replace("\n", " ") for t in ax.get_xticklabels()]


def test_no_spectrum_without_an_arm_between_backprop_and_stdp():
    three = {"mlp": _arm(0.97, 22.0), "stdp": _arm(0.85, 800.0),
             "mlp_spiking": _arm(0.96, 500.0)}
    assert not fs.has_spectrum(_result(three))
    assert fs.has_spectrum(_result({**three, "eprop": _arm(0.9, 850.0)}))


def test_panels_order_the_arms_and_leave_out_the_missing_ones():
    # dict order scrambled on purpose: the figure orders backprop -> FA -> ... -> STDP
    arms = {"stdp": _arm(0.8512, 825.0), "mlp_spiking": _arm(0.96, 532.0),
            "fa": _arm(0.95, 22.2), "mlp": _arm(0.97, 22.2), "surrogate": _arm(0.96, 15250.0)}
    fig = fs.spectrum_figure(_result(arms, fa_angle=[65.0, 80.0, 60.0]))
    acc, budget, energy, angle = [ax for ax in fig.axes if ax.axison]
    order = ["backprop", "FA", "surrogate SNN", "STDP", "converted MLP"]  # no DFA, no e-prop
    assert _ticks(acc) == order and _ticks(energy) == order
    # (a) one point per arm at its accuracy, each written beside it; chance labelled
    ys = [line.get_ydata()[0] for line in acc.get_lines() if len(line.get_ydata()) == 1]
    assert ys == [0.97, 0.95, 0.96, 0.8512, 0.96]
    texts = [t.get_text() for t in acc.texts]
    assert "0.851" in texts and "chance (1/10)" in texts
    assert acc.get_ylabel() == "test accuracy"
    # (b) one line per arm with a budget (not the converted MLP), log x, last tick "all (4.8)"
    assert [t.get_text() for t in budget.get_legend().get_texts()] == [
        "backprop", "FA", "surrogate SNN", "STDP (vote readout)"]
    assert budget.get_xscale() == "log" and _ticks(budget)[-1] == "all (4.8)"
    # (c) the headline energy, log y, numbers as people write them (15.2k, not 1.525e+04)
    assert energy.get_yscale() == "log"
    assert [p.get_height() for p in energy.patches] == [22.2, 22.2, 15250.0, 825.0, 532.0]
    assert {"22.2", "15.2k", "825", "532"} <= {t.get_text() for t in energy.texts}
    assert "Horowitz 2014" in energy.get_title()
    # (d) FA's angle per epoch only (no DFA table), 90° labelled
    assert [t.get_text() for t in angle.get_legend().get_texts()] == ["FA"]
    np.testing.assert_array_equal(angle.get_lines()[0].get_ydata(), [65.0, 80.0, 60.0])
    assert any(t.get_text().startswith("90°") for t in angle.texts)
    for ax in (acc, budget, energy, angle):
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()


def test_spiking_arms_alone_have_no_angle_panel():
    fig = fs.spectrum_figure(_result({"mlp": _arm(0.97, 22.0), "eprop": _arm(0.9, 850.0)}))
    titles = [ax.get_title() for ax in fig.axes if ax.axison]
    assert len(titles) == 3 and not any("alignment" in t for t in titles)


def test_equal_fa_and_dfa_angles_are_said_to_be_one_rule():
    angle = [65.0, 76.3, 70.1]
    fig = fs.spectrum_figure(_result({"fa": _arm(0.9, 22.0), "dfa": _arm(0.9, 22.0)},
                                     fa_angle=angle, dfa_angle=angle))
    ax = [ax for ax in fig.axes if ax.axison][-1]
    assert any("FA = DFA" in t.get_text() for t in ax.texts)


def _figures_of(path) -> dict:
    run = load_run(path)
    return bva.figures(Result(metrics=run["metrics"], curves=run["curves"],
                              arrays=run["arrays"], spikes=run["spikes"]))


@pytest.mark.slow  # two whole quick runs (~15 s each at low load)
@pytest.mark.e2e
def test_quick_runs_draw_the_spectrum_only_with_spectrum_arms(tmp_path):
    for arms, out in (("[mlp,fa,dfa,surrogate,eprop,stdp,mlp_spiking]", "all"),
                      ("[mlp,stdp,mlp_spiking]", "three")):
        done = cli("brain_vs_ann", "--quick", f"arms={arms}", "--out", str(tmp_path / out),
                   cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    (every,) = sorted((tmp_path / "all" / "brain_vs_ann").iterdir())
    (three,) = sorted((tmp_path / "three" / "brain_vs_ann").iterdir())
    assert (every / "spectrum.png").exists() and (every / "brain_vs_ann.png").exists()
    assert not (three / "spectrum.png").exists() and (three / "brain_vs_ann.png").exists()
    assert set(_figures_of(every)) == {"brain_vs_ann", "spectrum"}
    assert set(_figures_of(three)) == {"brain_vs_ann"}
    fig = _figures_of(every)["spectrum"]
    acc = [ax for ax in fig.axes if ax.axison][0]
    assert _ticks(acc) == ["backprop", "FA", "DFA", "surrogate SNN", "e-prop SNN", "STDP",
                           "converted MLP"]
