"""The run contract: Result entries checked when built, several arms, per-arm random streams,
partial results that keep every arm, and a run directory that survives a writing problem."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from neurosim import cli, experiments
from neurosim.ann import MLP
from neurosim.experiments.common import fit
from neurosim.runner.contract import (
    Context,
    Result,
    ResultError,
    Spikes,
    arm_seed_sequence,
    quick_context,
)
from neurosim.runner.rundir import load_run, write_result


def test_a_result_with_two_arms_round_trips(tmp_path):
    result = Result(
        metrics={"mlp": {"test_accuracy": 0.9}, "snn": {"test_accuracy": np.float64(0.8)}},
        curves={"mlp_epochs": {"epoch": [1, 2, 3], "loss": [3.0, 2.0, 1.0]},
                "snn_samples": {"samples_seen": [100, 200], "accuracy": [0.5, 0.7]}},
        arrays={"W1": np.eye(2)},
        spikes={"exc": Spikes([0, 1, 1], [0.1, 0.2, 0.3], 0.5, 3),
                "inh": {"i": [0], "t": [0.25], "t_stop": 0.5, "n_neurons": 1}},
        report="# two arms\n\n| arm | accuracy |\n",
    )
    assert write_result(tmp_path, result) == []
    back = load_run(tmp_path)
    assert back["metrics"] == {"mlp": {"test_accuracy": 0.9}, "snn": {"test_accuracy": 0.8}}
    assert back["curves"]["mlp_epochs"]["loss"].tolist() == [3.0, 2.0, 1.0]
    assert back["curves"]["snn_samples"]["samples_seen"].tolist() == [100, 200]
    assert back["spikes"]["exc"]["i"].tolist() == [0, 1, 1]
    assert float(back["spikes"]["inh"]["t_stop"]) == 0.5
    assert back["report"].startswith("# two arms")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"curves": {"epochs": {"epoch": [1, 2, 3], "val_loss": [1.0, 2.0]}}},
     "curve table 'epochs': column 'val_loss' has 2 values but column 'epoch' has 3"),
    ({"curves": {"bad name": {"x": [1]}}}, "curve table name 'bad name'"),
    ({"curves": {"t": {"x": [[1, 2]]}}}, "column 'x' must be 1-D"),
    ({"curves": {"t": {"x": ["a"]}}}, "column 'x' is not numeric"),
    ({"arrays": {"w": np.array([object()])}}, "array 'w' holds Python objects"),
    ({"spikes": {"exc": {"i": [0, 1], "t": [0.1], "t_stop": 1, "n_neurons": 2}}},
     "spike population 'exc': spikes: 2 indices but 1 times"),
    ({"spikes": {"exc": {"i": [5], "t": [0.1], "t_stop": 1, "n_neurons": 2}}},
     "spike indices must lie in [0, 2)"),
    ({"spikes": {"exc": {"i": [0]}}}, "spike population 'exc' lacks n_neurons, t, t_stop"),
    ({"metrics": {"arm": {"when": object()}}}, "metric 'arm.when'"),
    ({"status": "DONE"}, "status must be one of"),
])
def test_a_result_that_cannot_be_written_is_refused_when_built(kwargs, message):
    with pytest.raises(ResultError) as err:
        Result(**kwargs)
    assert message in str(err.value)


def test_adding_a_bad_table_to_a_partial_result_fails_at_once():
    partial = Result()
    partial.add_curves("mlp_epochs", {"epoch": [1], "loss": [0.5]})
    with pytest.raises(ResultError, match="'snn_samples'"):
        partial.add_curves("snn_samples", {"x": [1, 2], "y": [1]})
    assert list(partial.curves) == ["mlp_epochs"]


def test_arm_streams_depend_on_the_name_only():
    ctx = quick_context(7)
    a1 = ctx.rng_for("mlp").random(5)
    ctx.rng_for("stdp").random(100)  # another arm drawing in between changes nothing
    a2 = ctx.rng_for("mlp").random(5)
    np.testing.assert_array_equal(a1, a2)
    assert not np.array_equal(a1, ctx.rng_for("stdp").random(5))
    assert not np.array_equal(a1, quick_context(8).rng_for("mlp").random(5))
    assert arm_seed_sequence(7, "mlp").entropy == 7


def _two_arms(ctx: Context, arms: tuple[str, ...]) -> dict[str, np.ndarray]:
    """A miniature multi-arm experiment: one small MLP per arm, each on its own stream."""
    X = np.random.default_rng(0).normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    out = {}
    for arm in arms:
        rng = ctx.rng_for(arm)
        net = MLP([3, 4, 2], "relu", "softmax", rng=rng)
        fit(net, X, y, ctx, epochs=3, table=f"{arm}_epochs", rng=rng,
            loss="categorical_cross_entropy", optimizer="sgd", batch_size=8)
        out[arm] = net.weights[0].copy()
    return out


def test_dropping_or_adding_an_arm_leaves_the_others_unchanged():
    both = _two_arms(quick_context(3), ("sequential", "sleep"))
    only = _two_arms(quick_context(3), ("sleep",))
    more = _two_arms(quick_context(3), ("joint", "sequential", "sleep"))
    np.testing.assert_array_equal(both["sleep"], only["sleep"])
    np.testing.assert_array_equal(both["sequential"], more["sequential"])
    np.testing.assert_array_equal(both["sleep"], more["sleep"])


def test_partial_result_keeps_every_arms_curves():
    ctx = quick_context(0)
    _two_arms(ctx, ("a", "b"))
    assert set(ctx.partial.curves) == {"a_epochs", "b_epochs"}
    assert len(ctx.partial.curves["a_epochs"]["loss"]) == 3


def _main(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_a_figure_that_fails_loses_no_data(tmp_path, monkeypatch):
    module = experiments.get("xor")

    def broken(result):
        raise RuntimeError("no figure today")

    monkeypatch.setattr(module, "figures", broken)
    code, _, _ = _main("xor", "--quick", "--out", str(tmp_path))
    (path,) = (tmp_path / "xor").iterdir()
    meta = json.loads((path / "meta.json").read_text())
    assert code == 1 and meta["status"] == "FAILED"
    assert "no figure today" in meta["error"]
    assert json.loads((path / "metrics.json").read_text())["correct"] >= 0
    assert (path / "epochs.csv").exists()


def test_run_ends_with_a_table_of_headline_metrics(tmp_path):
    code, out, _ = _main("digits", "--quick", "--out", str(tmp_path))
    assert code == 0
    lines = out.splitlines()
    assert lines[-1].strip().startswith("figure") and lines[-1].endswith("digits.png")
    assert any(line.split()[:1] == ["test_accuracy"] for line in lines)
    assert lines[1].startswith("COMPLETED: ")


def test_the_guides_two_arm_experiment_runs():
    """docs/guide.md 'Write your own experiment' is real code: run it as a module."""
    import re
    import types
    from pathlib import Path

    from neurosim.runner.config import build

    guide = (Path(__file__).resolve().parent.parent / "docs" / "guide.md").read_text()
    code = next(b for b in re.findall(r"```python\n(.*?)```", guide, re.S) if "ARMS" in b)
    module = types.ModuleType("two_arms")
    exec(compile(code, "guide.md", "exec", dont_inherit=True), module.__dict__)
    result = module.run(build(module.Config, module.QUICK), quick_context(0))
    assert set(result.curves) == {"gd_epochs", "adam_epochs"}
    assert "| adam |" in result.report and 0 <= result.metrics["adam"]["test_accuracy"] <= 1
    assert set(module.figures(result)) == {"loss"}


@pytest.mark.parametrize("name", list(experiments.EXPERIMENTS))
def test_every_experiment_implements_the_contract(name):
    """Each registered module is an `Experiment` (Config, QUICK, run, figures)."""
    import types

    from neurosim.runner.contract import Experiment

    assert isinstance(experiments.get(name), Experiment)
    assert not isinstance(types.ModuleType("empty"), Experiment)
