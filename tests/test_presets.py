"""Presets: an experiment's values per data set, layered by the runner (issue 18).

Config defaults < PRESETS[dataset] < config file < --quick < command line / caller; the data set
is whichever layer sets it last; a sweep over ``dataset`` picks a preset per run; a bad preset
fails when the run is planned; ``--help`` lists every preset with its note.
"""

from __future__ import annotations

import json
import sys
import types
from dataclasses import dataclass, replace

import pytest

from neurosim import cli, experiments
from neurosim.experiments import sleep_replay
from neurosim.runner import search
from neurosim.runner.config import ConfigError
from neurosim.runner.contract import Result
from neurosim.runner.plan import base_values, build_specs, check_presets, spec_from_payload


@dataclass(frozen=True)
class Config:
    dataset: str = "digits"  # which data set (picks the preset)
    a: int = 0  # set by the preset only
    b: int = 0  # preset, then file
    c: int = 0  # preset, file, then --quick
    d: int = 0  # preset, file, --quick, then the caller
    e: int = 0  # nobody sets it

    def __post_init__(self):
        if self.dataset not in ("digits", "kmnist", "mnist"):
            raise ConfigError(f"unknown dataset {self.dataset}")


def _run(cfg, ctx):
    return Result(metrics={"a": cfg.a, "b": cfg.b, "c": cfg.c, "d": cfg.d})


@pytest.fixture
def toy(monkeypatch):
    """A registered experiment ``toy`` with a kmnist preset, its QUICK and a Config."""
    module = types.ModuleType("neurosim_test_toy")
    module.Config = Config
    module.PRESETS = {"kmnist": {"a": 1, "b": 1, "c": 1, "d": 1}}
    module.PRESET_NOTES = {"kmnist": "made up for the test"}
    module.QUICK = {"c": 3, "d": 3}
    module.HEADLINE = ("a",)
    module.run = _run
    module.figures = lambda result: {}
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(experiments.EXPERIMENTS, "toy", (module.__name__, "a test experiment"))
    return module


def values_of(spec) -> tuple[int, ...]:
    return (spec.cfg.a, spec.cfg.b, spec.cfg.c, spec.cfg.d, spec.cfg.e)


def test_layers_default_preset_file_quick_caller(toy):
    file_values = {"dataset": "kmnist", "b": 2, "c": 2, "d": 2}
    (spec,) = build_specs("toy", file_values=file_values, quick=True, values={"d": 4})
    assert values_of(spec) == (1, 2, 3, 4, 0) and spec.preset == "kmnist"
    # each layer alone over the preset
    (spec,) = build_specs("toy", values={"dataset": "kmnist", "c": 7})
    assert values_of(spec) == (1, 1, 7, 1, 0)
    assert base_values("toy", values={"dataset": "kmnist"}) == {
        "a": 1, "b": 1, "c": 1, "d": 1, "dataset": "kmnist"}
    # no preset for the default data set: the defaults
    (spec,) = build_specs("toy", quick=True)
    assert values_of(spec) == (0, 0, 3, 3, 0) and spec.preset is None


def test_the_data_set_comes_from_the_highest_layer(toy):
    # the file picks kmnist, the caller digits: no preset at all
    (spec,) = build_specs("toy", file_values={"dataset": "kmnist", "b": 2},
                          values={"dataset": "digits"})
    assert values_of(spec) == (0, 2, 0, 0, 0) and spec.preset is None
    # the file picks digits, the caller kmnist: the preset, under the file's b
    (spec,) = build_specs("toy", file_values={"dataset": "digits", "b": 2},
                          values={"dataset": "kmnist"})
    assert values_of(spec) == (1, 2, 1, 1, 0) and spec.preset == "kmnist"
    # --quick may set the data set too
    toy.QUICK = {"dataset": "kmnist", "d": 5}
    (spec,) = build_specs("toy", quick=True)
    assert values_of(spec) == (1, 1, 1, 5, 0) and spec.preset == "kmnist"


def test_a_sweep_over_dataset_picks_each_runs_preset(toy):
    specs = build_specs("toy", grid={"dataset": ["digits", "kmnist", "mnist"]},
                        values={"d": 9}, seeds=[0, 1])
    got = [(s.cfg.dataset, s.seed, s.preset, values_of(s)) for s in specs]
    assert got == [
        ("digits", 0, None, (0, 0, 0, 9, 0)), ("digits", 1, None, (0, 0, 0, 9, 0)),
        ("kmnist", 0, "kmnist", (1, 1, 1, 9, 0)), ("kmnist", 1, "kmnist", (1, 1, 1, 9, 0)),
        ("mnist", 0, None, (0, 0, 0, 9, 0)), ("mnist", 1, None, (0, 0, 0, 9, 0)),
    ]


def test_a_search_trial_gets_the_preset_under_its_parameters(toy):
    base = search.make_base("toy", values={"dataset": "kmnist", "b": 5})
    spec = search.trial_spec(base, {"c": 6}, [])
    assert values_of(spec) == (1, 5, 6, 1, 0) and spec.preset == "kmnist"


@pytest.mark.parametrize("preset, message", [
    ({"kmnist": {"aa": 1}}, "toy: preset 'kmnist': unknown key 'aa'; did you mean a?"),
    ({"kmnist": {"a": "one"}}, "toy: preset 'kmnist': a must be an integer"),
    ({"kmnist": {"dataset": "mnist"}}, "toy: preset 'kmnist': a preset cannot set dataset"),
    ({"fmnist": {"a": 1}}, "toy: preset 'fmnist': "),  # not a data set the Config takes
])
def test_a_bad_preset_fails_when_the_run_is_planned(toy, preset, message):
    toy.PRESETS = preset
    # even a run on another data set: the typo is found at once, not on the day it is used
    with pytest.raises(ConfigError) as err:
        build_specs("toy")
    assert str(err.value).startswith(message)


def test_a_bad_preset_is_one_line_and_no_run_directory(toy, tmp_path, capsys):
    toy.PRESETS = {"kmnist": {"sleep_stepz": 1}}
    code = cli.main(["toy", "dataset=kmnist", "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "neurosim: error: toy: preset 'kmnist': unknown key 'sleep_stepz'" in err
    assert not (tmp_path / "runs").exists()


def test_the_applied_preset_is_recorded_in_config_json(toy, tmp_path):
    out = tmp_path / "runs"
    assert cli.main(["toy", "dataset=kmnist", "b=2", "--out", str(out)]) == 0
    assert cli.main(["toy", "--out", str(out)]) == 0
    payloads = [json.loads(p.read_text()) for p in sorted(out.glob("toy/*/config.json"))]
    by_set = {p["config"]["dataset"]: p for p in payloads}
    assert by_set["kmnist"]["preset"] == "kmnist"
    assert by_set["kmnist"]["config"] == {"dataset": "kmnist", "a": 1, "b": 2, "c": 1,
                                          "d": 1, "e": 0}
    assert "preset" not in by_set["digits"]  # no preset, no key: older runs read the same
    # a rerun rebuilds the resolved config as it is, the preset's name kept
    spec = spec_from_payload(by_set["kmnist"], tmp_path, [], exact_dir=False)
    assert spec.preset == "kmnist" and values_of(spec) == (1, 2, 1, 1, 0)


def test_help_lists_every_preset_with_its_values_and_note(capsys):
    assert cli.main(["sleep_replay", "--help"]) == 0
    text = capsys.readouterr().out
    for name, note in sleep_replay.PRESET_NOTES.items():
        assert f"dataset={name}: {note}" in text
    assert "sleep.max_rate_hz=239.515363" in text  # exact, not rounded to 4 digits
    assert "sleep.beta=[14.548273,44.560317,38.046326]" in text
    assert "sleep.max_rate_hz=181.047258" in text  # Fashion-MNIST's own released values
    assert cli.main(["show", "sleep_replay"]) == 0
    assert "dataset=kmnist:" in capsys.readouterr().out


def test_sleep_replay_presets_are_the_released_codes_values():
    check_presets("sleep_replay")
    (spec,) = build_specs("sleep_replay", values={"dataset": "mnist"})
    cfg = spec.cfg
    assert spec.preset == "mnist"
    assert cfg.hidden == (1200, 1200) and cfg.epochs == 2 and cfg.batch_size == 100
    assert cfg.init_scale == 0.01 and (cfg.lr, cfg.momentum, cfg.dropout) == (0.1, 0.5, 0.25)
    assert (cfg.sleep_steps, cfg.sleep_steps_per_task) == (15000, 5000)
    s = cfg.sleep
    assert (s.max_rate_hz, s.inc, s.dec, s.alpha_scale, s.mask, s.decay) == (
        239.515363, 0.032064, 0.003344, 55.882454, 10, 0.999)
    assert s.beta == (14.548273, 44.560317, 38.046326)
    assert cfg.sleep_units == "released"  # they act on DeepLearnToolbox's weights
    # KMNIST: the released network and schedule, 6 epochs and the sleep values tuned on its
    # validation split (the released code publishes none for KMNIST)
    (spec,) = build_specs("sleep_replay", values={"dataset": "kmnist"})
    k = spec.cfg
    assert spec.preset == "kmnist" and "tuned on KMNIST validation" in \
        sleep_replay.PRESET_NOTES["kmnist"]
    assert k.epochs == 6 and replace(k, epochs=2, sleep=cfg.sleep) == replace(
        cfg, dataset="kmnist")
    assert (k.sleep.max_rate_hz, k.sleep.inc, k.sleep.dec, k.sleep.alpha_scale) == (
        60.9232, 0.024101, 0.000627652, 17.2051)
    assert k.sleep.beta == (5.1115, 3.11393, 37.9379)
    # key by key overridable; digits keeps its defaults exactly
    (spec,) = build_specs("sleep_replay", values={"dataset": "mnist", "sleep.inc": 0.01})
    assert spec.cfg.sleep.inc == 0.01 and spec.cfg.sleep.dec == 0.003344
    (spec,) = build_specs("sleep_replay")
    assert spec.preset is None and spec.cfg == sleep_replay.Config()
