"""Experiment configs: frozen dataclasses, TOML files and strict ``key=value`` overrides.

Values on the command line are parsed as TOML (``hidden=[32,16]``, ``lr=0.01``,
``optimizer="adam"`` or plain ``optimizer=adam``) and converted to the field's declared type.
Unknown keys, wrong types and out-of-range values raise `ConfigError` with one line naming the
thing to fix; the runner prints that line and exits with status 2.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import math
import textwrap
import tomllib
import types
import typing
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from neurosim.validation import (  # noqa: F401  (re-exported for configs)
    InvalidParameterError,
    closest,
    lookup,
    require,
    require_choice,
    require_fraction,
    require_non_negative,
    require_positive,
    short,
)

C = TypeVar("C")


#: A user-caused problem with a config (unknown key, wrong type, value out of range) is the
#: library's own `InvalidParameterError`: one error type, which the command line maps to exit 2.
ConfigError = InvalidParameterError


# --- parsing -----------------------------------------------------------------------------------


def parse_value(text: str) -> Any:
    """Parse one command-line value as TOML; anything TOML rejects is taken as a bare string,
    also inside brackets: ``[sequential,sleep]`` is the list of the two strings, as
    ``[64,32]`` is a list of two numbers."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except ValueError:  # TOMLDecodeError, or an integer of more digits than Python converts
        pass
    inner = text.strip()
    if len(inner) >= 2 and inner[0] == "[" and inner[-1] == "]" and _depth(inner) == 0:
        body = inner[1:-1].strip()
        if not body:
            return []
        items = [part.strip() for part in split_top_level(body)]
        if items and items[-1] == "":  # a trailing comma, as TOML allows
            items.pop()
        if all(items):
            return [parse_value(item) for item in items]
    return text


def _outside_quotes(text: str) -> Iterator[tuple[int, str, int]]:
    """(index, character, bracket depth after it) of every character outside quotes."""
    depth, quote = 0, ""
    for k, ch in enumerate(text):
        if quote or ch in "\"'":
            quote = "" if ch == quote else (quote or ch)
            continue
        depth += (ch in "[{") - (ch in "]}")
        yield k, ch, depth


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside brackets and quotes: ``"[1,2],[3]"`` -> ``["[1,2]", "[3]"]``."""
    parts, start = [], 0
    for k, ch, depth in _outside_quotes(text):
        if ch == sep and depth == 0:
            parts.append(text[start:k])
            start = k + 1
    parts.append(text[start:])
    return parts


def _depth(text: str) -> int:
    """Brackets opened and not closed in `text` (outside quotes)."""
    return next((d for *_, d in reversed(list(_outside_quotes(text)))), 0)


def rejoin(items: Iterable[str]) -> list[str]:
    """Undo the shell's splitting inside brackets: ``["hidden=[64,", "32]"]`` ->
    ``["hidden=[64, 32]"]`` (what ``hidden=[64, 32]`` typed with a space becomes)."""
    out: list[str] = []
    for item in items:
        if out and _depth(out[-1]) > 0:
            out[-1] = f"{out[-1]} {item}"
        else:
            out.append(item)
    return out


def parse_overrides(items: Iterable[str]) -> dict[str, list[Any]]:
    """``["lr=0.1,0.01", "hidden=[32,16]"]`` -> ``{"lr": [0.1, 0.01], "hidden": [[32, 16]]}``.

    A comma outside brackets makes a sweep: each value is one run. Items the shell split
    inside brackets are joined again first (`rejoin`).
    """
    out: dict[str, list[Any]] = {}
    for item in rejoin(items):
        key, eq, text = item.partition("=")
        key = key.strip()
        require(bool(eq) and bool(key), f"expected key=value, got {short(item)}")
        require(_depth(text) == 0, f"unbalanced brackets in {short(item)}")
        require(key not in out, f"key '{key}' given twice")
        values = [parse_value(part.strip()) for part in split_top_level(text)]
        require(all(v != "" for v in values), f"empty value in {short(item)}")
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
    derived = getattr(cls, "DERIVED", {})
    for key in values:
        if key in derived:
            raise ConfigError(f"{key} is not a key: it is set by {derived[key]}")
        require(key in valid, f"unknown key {short(key)}; {closest(str(key), valid)}")
    return _build(cls, dict(values), prefix="")


def check_values(cls: type, values: Mapping[str, Any]) -> None:
    """Check every dotted value on its own: a known key, a value of the field's type. (The
    checks across fields run when the config is built; values another layer replaces, such
    as a config file's under ``--quick``, are checked here all the same.)"""
    valid = field_names(cls)
    derived = getattr(cls, "DERIVED", {})
    for key, value in values.items():
        if key in derived:
            raise ConfigError(f"{key} is not a key: it is set by {derived[key]}")
        require(key in valid, f"unknown key {short(key)}; {closest(str(key), valid)}")
        convert(key, value, field_hint(cls, key))


def field_hint(cls: type, key: str) -> Any:
    """The declared type of dotted `key` in config class `cls` (KeyError if there is none)."""
    head, _, rest = key.partition(".")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    if head not in names:
        raise KeyError(key)
    hint = hints[head]
    if rest:
        if not dataclasses.is_dataclass(hint):
            raise KeyError(key)
        return field_hint(hint, rest)
    return hint


def is_list_hint(hint: Any) -> bool:
    """True for list/tuple fields (possibly inside an Optional)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(is_list_hint(a) for a in typing.get_args(hint))
    return origin in (list, tuple)


@dataclasses.dataclass(frozen=True)
class FieldDoc:
    """One settable key of a config: what ``python -m neurosim.run NAME --help`` lists."""

    key: str
    type: str
    default: Any
    comment: str


def _comments(cls: type) -> dict[str, str]:
    """The comment written beside each field of `cls` (and of its dataclass bases)."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            lines = textwrap.dedent("".join(inspect.getsourcelines(klass)[0])).splitlines()
        except (OSError, TypeError):
            continue
        (node,) = ast.parse("\n".join(lines)).body
        for item in node.body:
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                line = lines[item.end_lineno - 1]
                if "#" in line:
                    out[item.target.id] = line.split("#", 1)[1].strip()
    return out


def _type_name(hint: Any) -> str:
    if hint in (int, float, str, bool):
        return hint.__name__
    return str(hint).replace("typing.", "")


def describe(cls: type, prefix: str = "") -> list[FieldDoc]:
    """Every settable key of config class `cls` with its type, default and comment."""
    hints = typing.get_type_hints(cls)
    comments = _comments(cls)
    derived = getattr(cls, "DERIVED", {}) if not prefix else {}
    defaults = cls()
    out = []
    for f in dataclasses.fields(cls):
        key, hint = prefix + f.name, hints[f.name]
        if dataclasses.is_dataclass(hint):
            out += [d for d in describe(hint, f"{key}.") if d.key not in derived]
        else:
            out.append(FieldDoc(key, _type_name(hint), getattr(defaults, f.name),
                                comments.get(f.name, "")))
    return [d for d in out if d.key not in getattr(cls, "DERIVED", {})]


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
    except ConfigError as exc:
        # a nested parameter class names its own fields: name them as keys (snn.n_exc)
        message = str(exc)
        if prefix and message.split(" ", 1)[0] in {f.name for f in dataclasses.fields(cls)}:
            message = prefix + message
        raise ConfigError(message) from None
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
        raise ConfigError(errors[0] if errors else f"{key}: cannot use {short(value)}")
    if origin is typing.Literal:
        require(value in args,
                f"unknown {key} {short(value)}; choose from {', '.join(map(str, args))}")
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
        require(isinstance(value, bool), f"{key} must be true or false, got {short(value)}")
        return value
    if hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        require(ok, f"{key} must be an integer, got {short(value)}")
        return value
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        require(ok, f"{key} must be a number, got {short(value)}")
        require(math.isfinite(value), f"{key} must be a finite number, got {value}")
        return float(value)
    if hint is str:
        require(isinstance(value, str), f"{key} must be a string, got {short(value)}")
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
