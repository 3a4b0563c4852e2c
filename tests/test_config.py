"""Config parsing: TOML values, strict keys, type conversion, range checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from neurosim.runner.config import (
    ConfigError,
    build,
    describe,
    field_hint,
    field_names,
    flatten,
    is_list_hint,
    load_toml,
    parse_overrides,
    parse_value,
    rejoin,
    require_positive,
    short,
    split_top_level,
    to_dict,
)


@dataclass(frozen=True)
class Inner:
    n_exc: int = 100  # excitatory neurons
    tau_ms: float = 20.0  # membrane time constant


@dataclass(frozen=True)
class Outer:
    lr: float = 0.1  # step size
    hidden: tuple[int, ...] = (32,)  # hidden layer sizes
    optimizer: Literal["sgd", "adam"] = "adam"  # update rule
    bias: bool = True  # learn biases
    data_dir: str | None = None  # folder of IDX files
    snn: Inner = field(default_factory=Inner)  # nested section

    def __post_init__(self):
        require_positive("lr", self.lr)


def test_parse_value_is_toml_with_bare_strings():
    assert parse_value("0.5") == 0.5
    assert parse_value("[32,16]") == [32, 16]
    assert parse_value("true") is True
    assert parse_value("adam") == "adam"
    assert parse_value('"adam"') == "adam"


def test_split_top_level_respects_brackets_and_quotes():
    assert split_top_level("[1,2],[3]") == ["[1,2]", "[3]"]
    assert split_top_level('"a,b",c') == ['"a,b"', "c"]
    assert split_top_level("0.1") == ["0.1"]


def test_parse_overrides_makes_sweeps():
    out = parse_overrides(["lr=0.1,0.01", "hidden=[32,16]"])
    assert out == {"lr": [0.1, 0.01], "hidden": [[32, 16]]}
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["lr"])
    with pytest.raises(ConfigError, match="twice"):
        parse_overrides(["lr=1", "lr=2"])


def test_build_converts_types_and_nests():
    cfg = build(Outer, {"lr": 1, "hidden": [8, 4], "snn.n_exc": 400, "optimizer": "sgd"})
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)
    assert cfg.hidden == (8, 4)
    assert cfg.snn.n_exc == 400 and cfg.snn.tau_ms == 20.0
    assert build(Outer, {"hidden": 16}).hidden == (16,)
    assert build(Outer, {"data_dir": "/tmp/x"}).data_dir == "/tmp/x"
    assert to_dict(cfg)["hidden"] == [8, 4]


def test_unknown_key_names_the_closest():
    with pytest.raises(ConfigError, match="unknown key 'hiden'; did you mean hidden"):
        build(Outer, {"hiden": [3]})
    with pytest.raises(ConfigError, match="snn.n_exc"):
        build(Outer, {"snn.n_ex": 3})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"lr": "fast"}, "lr must be a number"),
        ({"lr": -0.1}, "lr must be > 0"),
        ({"snn.n_exc": 2.5}, "snn.n_exc must be an integer"),
        ({"bias": 1}, "bias must be true or false"),
        ({"optimizer": "rmsprop"}, "choose from sgd, adam"),
        ({"hidden": [8, "x"]}, r"hidden\[1\] must be an integer"),
    ],
)
def test_bad_values_raise_one_clear_line(values, message):
    with pytest.raises(ConfigError, match=message) as info:
        build(Outer, values)
    assert "\n" not in str(info.value)


def test_field_names_and_flatten():
    assert "snn.n_exc" in field_names(Outer)
    assert flatten({"lr": 1, "snn": {"n_exc": 4}}) == {"lr": 1, "snn.n_exc": 4}


def test_load_toml_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_toml(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("lr = = 3\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_toml(bad)
    good = tmp_path / "good.toml"
    good.write_text("lr = 0.3\n[snn]\nn_exc = 7\n")
    assert flatten(load_toml(good)) == {"lr": 0.3, "snn.n_exc": 7}


def test_list_values_split_by_the_shell_are_joined_again():
    # `hidden=[64, 32]` typed with a space reaches us as two arguments
    assert rejoin(["hidden=[64,", "32]", "lr=0.1"]) == ["hidden=[64, 32]", "lr=0.1"]
    assert parse_overrides(["hidden=[64,", "32]"]) == {"hidden": [[64, 32]]}
    with pytest.raises(ConfigError, match="unbalanced brackets"):
        parse_overrides(["hidden=[64,32"])


def test_non_finite_numbers_are_refused():
    for text in ("nan", "inf", "-inf"):
        with pytest.raises(ConfigError, match="lr must be a finite number"):
            build(Outer, {"lr": parse_value(text)})


@dataclass(frozen=True)
class WithData:
    snn: Inner = field(default_factory=Inner)  # nested section
    DERIVED = {"snn.n_exc": "the data"}


def test_keys_set_by_the_data_are_not_keys():
    with pytest.raises(ConfigError, match="snn.n_exc is not a key: it is set by the data"):
        build(WithData, {"snn.n_exc": 3})
    assert [d.key for d in describe(WithData)] == ["snn.tau_ms"]


def test_describe_lists_type_default_and_comment():
    docs = {d.key: d for d in describe(Outer)}
    assert docs["lr"].type == "float" and docs["lr"].default == 0.1
    assert docs["lr"].comment == "step size"
    assert docs["snn.n_exc"].comment == "excitatory neurons"
    assert field_hint(Outer, "snn.tau_ms") is float
    assert is_list_hint(field_hint(Outer, "hidden")) and not is_list_hint(float)


@dataclass(frozen=True)
class Checked:
    n: int = 1  # count

    def __post_init__(self):
        require_positive("n", self.n)


@dataclass(frozen=True)
class Top:
    inner: Checked = field(default_factory=Checked)  # nested


def test_nested_parameter_errors_are_named_as_keys():
    with pytest.raises(ConfigError, match=r"^inner.n must be > 0, got 0$"):
        build(Top, {"inner.n": 0})


def test_long_values_are_cut_in_messages():
    with pytest.raises(ConfigError) as err:
        build(Outer, {"lr": "x" * 100_000})
    assert len(str(err.value)) < 200
    assert len(short("y" * 10_000)) < 80
