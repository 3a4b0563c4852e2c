"""Experiment configs: frozen dataclasses, TOML files and strict ``key=value`` overrides.

Values on the command line are parsed as TOML (``hidden=[32,16]``, ``lr=0.01``,
``optimizer="adam"`` or plain ``optimizer=adam``) and converted to the field's declared type.
Unknown keys, wrong types and out-of-range values raise `ConfigError` with one line naming the
thing to fix; the runner prints that line and exits with status 2.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

C = TypeVar("C")


class ConfigError(ValueError):
    """A user-caused problem with a config: unknown key, wrong type, value out of range."""


# --- validation helpers used by the configs' __post_init__ -------------------------------------


def require(condition: bool, message: str) -> None:
    """Raise `ConfigError(message)` unless `condition` holds."""
    if not condition:
        raise ConfigError(message)


def require_positive(name: str, value: float) -> None:
    require(value > 0, f"{name} must be > 0, got {value}")


def require_non_negative(name: str, value: float) -> None:
    require(value >= 0, f"{name} must be >= 0, got {value}")


def require_fraction(name: str, value: float, *, open_right: bool = True) -> None:
    """`value` in [0, 1) (or [0, 1] with ``open_right=False``)."""
    ok = 0 <= value < 1 if open_right else 0 <= value <= 1
    right = ")" if open_right else "]"
    require(ok, f"{name} must be in [0, 1{right}, got {value}")


def require_choice(name: str, value: str, choices: Iterable[str]) -> None:
    choices = sorted(choices)
    require(value in choices, f"unknown {name} '{value}'; choose from {', '.join(choices)}")


def closest(name: str, candidates: Iterable[str]) -> str:
    """A ``did you mean`` suffix naming the closest candidates, or the full list."""
    candidates = sorted(candidates)
    near = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
    if near:
        return f"did you mean {', '.join(near)}?"
    return f"valid: {', '.join(candidates)}"


# --- parsing -----------------------------------------------------------------------------------


def parse_value(text: str) -> Any:
    """Parse one command-line value as TOML; anything TOML rejects is taken as a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside brackets and quotes: ``"[1,2],[3]"`` -> ``["[1,2]", "[3]"]``."""
    parts, depth, quote, start = [], 0, "", 0
    for k, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:k])
            start = k + 1
    parts.append(text[start:])
    return parts


def parse_overrides(items: Iterable[str]) -> dict[str, list[Any]]:
    """``["lr=0.1,0.01", "hidden=[32,16]"]`` -> ``{"lr": [0.1, 0.01], "hidden": [[32, 16]]}``.

    A comma outside brackets makes a sweep: each value is one run.
    """
    out: dict[str, list[Any]] = {}
    for item in items:
        key, eq, text = item.partition("=")
        key = key.strip()
        require(bool(eq) and bool(key), f"expected key=value, got '{item}'")
        require(key not in out, f"key '{key}' given twice")
        values = [parse_value(part.strip()) for part in split_top_level(text)]
        require(all(v != "" for v in values), f"empty value in '{item}'")
        out[key] = values
    return out


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file; a missing or malformed file raises `ConfigError`."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None


# --- building configs --------------------------------------------------------------------------


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"snn": {"n_exc": 4}}`` -> ``{"snn.n_exc": 4}``."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def field_names(cls: type) -> list[str]:
    """Every settable dotted key of a (nested) config dataclass."""
    hints = typing.get_type_hints(cls)
    names = []
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            names += [f"{f.name}.{sub}" for sub in field_names(hints[f.name])]
        else:
            names.append(f.name)
    return names


def build(cls: type[C], values: Mapping[str, Any]) -> C:
    """Make a config of type `cls` from its defaults and dotted `values`.

    Raises
    ------
    ConfigError
        For an unknown key (naming the closest valid ones), a value of the wrong type, or a
        value the config's ``__post_init__`` rejects.
    """
    valid = field_names(cls)
    for key in values:
        require(key in valid, f"unknown key '{key}'; {closest(key, valid)}")
    return _build(cls, dict(values), prefix="")


def _build(cls: type[C], values: dict[str, Any], prefix: str) -> C:
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        key, hint = prefix + f.name, hints[f.name]
        if dataclasses.is_dataclass(hint):
            kwargs[f.name] = _build(hint, values, prefix=f"{key}.")
        elif key in values:
            kwargs[f.name] = convert(key, values[key], hint)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:  # a value __post_init__ could not use
        raise ConfigError(f"{prefix or 'config'}: {exc}") from None


def convert(key: str, value: Any, hint: Any) -> Any:
    """Convert a parsed TOML `value` to the declared type `hint`, or raise `ConfigError`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() == "none"):
            if type(None) in args:
                return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return convert(key, value, arg)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{key}: cannot use {value!r}")
    if origin is typing.Literal:
        require(value in args, f"unknown {key} {value!r}; choose from {', '.join(map(str, args))}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            value = [value]  # hidden=32 means one hidden layer of 32
        item = args[0] if args else Any
        items = [convert(f"{key}[{k}]", v, item) for k, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if hint is Any:
        return value
    if hint is bool:
        require(isinstance(value, bool), f"{key} must be true or false, got {value!r}")
        return value
    if hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        require(ok, f"{key} must be an integer, got {value!r}")
        return value
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        require(ok, f"{key} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        require(isinstance(value, str), f"{key} must be a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported field type {hint}")


def to_dict(cfg: Any) -> dict[str, Any]:
    """A config as JSON-able nested dicts (tuples become lists)."""

    def plain(v: Any) -> Any:
        if isinstance(v, tuple | list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(cfg))
