"""Plans: the runs a sweep or search will do, built and checked before any folder exists, and
the job model they share (`Job`, `Row`), folder names and the plan file ``sweep.json``.

Every config of a sweep is built here from Python values (`build_specs`): a bad value or a bad
combination of values (a config's ``__post_init__``) fails before anything runs or is written.

Presets. An experiment module may define ``PRESETS``, a data set's name -> dotted key -> value,
and ``PRESET_NOTES``, name -> one line saying where the values come from. A run's values are
layered, each layer over the one before:

    Config defaults < PRESETS[dataset] < config file < --quick < command line / caller

where ``dataset`` is the value the highest of those layers gives (a sweep over ``dataset``
picks each run's preset). The name of the preset applied is recorded in the run's
config.json (``"preset": "kmnist"``); its values are in the resolved config beside it.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import re
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from types import ModuleType
from typing import Any

from neurosim import experiments
from neurosim.runner.config import (
    ConfigError,
    build,
    check_values,
    flatten,
    load_toml,
    short,
    to_dict,
)
from neurosim.runner.contract import jsonable
from neurosim.runner.rundir import git_state, make_run_dir, utc_now, versions, write_json
from neurosim.runner.single import RunSpec

PLAN, SUMMARY, FIGURE, LOGS = "sweep.json", "summary.csv", "summary.png", "logs"
STOP, LOCK, SCRATCH = ".stop", ".lock", ".scratch"

#: The status of a job that has not run (yet, or because the sweep was stopped first).
PENDING = "PENDING"

#: Job folder names: these characters only, at most this many after the index.
UNSAFE = re.compile(r"[^A-Za-z0-9._,=+-]")
MAX_NAME = 64


# --- what a job is and how it ended ------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One run of a sweep: its folder name, its swept values and the run itself."""

    run: str
    label: dict[str, Any]
    spec: RunSpec


@dataclass
class Row:
    """How a job ended, as summary.csv shows it (one row)."""

    run: str
    label: dict[str, Any]
    status: str = PENDING
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    user_error: bool = False  # a ConfigError / DataError: the user has something to fix
    output: str = ""  # what the job printed (written to logs/<run>.log)


def read_json(path: Path) -> Any:
    """A JSON file's content, or None when it is missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def read_row(path: Path, label: dict[str, Any]) -> Row:
    """A job's row from its run directory (PENDING when there is none)."""
    meta = read_json(path / "meta.json")
    if not isinstance(meta, dict):
        return Row(path.name, label)
    metrics = read_json(path / "metrics.json")
    return Row(path.name, label, str(meta.get("status", "RUNNING")),
               metrics if isinstance(metrics, dict) else {}, meta.get("error"))


def mark_ended(path: Path, status: str, why: str) -> None:
    """Give a run whose process is gone (meta.json still RUNNING) its final status, and
    remove the scratch folder its process could not remove."""
    shutil.rmtree(path / SCRATCH, ignore_errors=True)
    meta = read_json(path / "meta.json")
    if isinstance(meta, dict) and meta.get("status") == "RUNNING":
        meta.update(status=status, error=why, partial=True,
                    finished_utc=utc_now().isoformat(timespec="seconds"))
        write_json(path / "meta.json", meta)


def short_text(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- names -------------------------------------------------------------------------------------


def value_text(value: Any) -> str:
    """A swept value as text: JSON-like for numbers and lists, raw for strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple | dict):
        return json.dumps(jsonable(value), separators=(",", ":"))
    return repr(value) if isinstance(value, float) else str(value)


def job_name(index: int, label: Mapping[str, Any], width: int = 1) -> str:
    """``<index>-<key=value,...>``: only letters, digits and ``._,=+-`` (anything else, a
    path separator included, becomes ``_``), cut to `MAX_NAME` characters with a hash of the
    full text when longer. The index makes it unique within its sweep."""
    text = ",".join(f"{k}={value_text(v)}" for k, v in label.items())
    slug = UNSAFE.sub("_", re.sub(r"[\[\]{}\"' ]", "", text))  # hidden=[32,16]: hidden=32,16
    if len(slug) > MAX_NAME:
        digest = hashlib.sha1(text.encode()).hexdigest()[:6]
        slug = f"{slug[: MAX_NAME - 7]}~{digest}"
    return f"{index:0{width}d}-{slug}" if slug else f"{index:0{width}d}"


def make_sweep_dir(parent: Path, kind: str, payload: Any, stamp: Any = None) -> Path:
    """Create ``parent/<UTC time>-<kind>-<hash>`` (`neurosim.runner.rundir.make_run_dir`)."""
    try:
        return make_run_dir(parent, payload, stamp=stamp, kind=kind)
    except OSError as exc:
        raise ConfigError(f"cannot create a {kind} folder in {parent}: {exc}") from None


@contextlib.contextmanager
def locked(sweep_dir: Path) -> Iterator[None]:
    """Hold the sweep's lock file while it runs: a second process (a --resume while the
    sweep still runs) is refused with one line."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock
        yield
        return
    with open(sweep_dir / LOCK, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ConfigError(f"{sweep_dir} is in use by another running sweep") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --- building the runs -------------------------------------------------------------------------


def check_seed(seed: Any) -> int:
    if not (isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2**63):
        raise ConfigError(f"seed must be a non-negative integer, got {short(seed)}")
    return seed


#: The config key whose value picks a preset.
PRESET_KEY = "dataset"


def presets(module: ModuleType) -> dict[str, dict[str, Any]]:
    """An experiment module's ``PRESETS`` (data set -> dotted key -> value); {} without."""
    return {name: dict(values) for name, values in getattr(module, "PRESETS", {}).items()}


def preset_notes(module: ModuleType) -> dict[str, str]:
    """An experiment module's ``PRESET_NOTES`` (data set -> where the values come from)."""
    return dict(getattr(module, "PRESET_NOTES", {}))


def check_presets(experiment: str) -> None:
    """Check every preset of `experiment`: the experiment's Config has a ``dataset`` field,
    each preset names a known data set, sets only known keys (not ``dataset`` itself) with
    values of the field's type, and builds a valid config with its data set.

    Raises
    ------
    ConfigError
        Naming the experiment, the preset and the fault (a typo in a preset fails when a run
        is planned, before any folder exists).
    """
    module = experiments.get(experiment)
    table = presets(module)
    if not table:
        return
    if PRESET_KEY not in {f.name for f in fields(module.Config)}:
        raise ConfigError(f"{experiment}: PRESETS are picked by a '{PRESET_KEY}' key, which "
                          "its Config lacks")
    for name, values in table.items():
        try:
            if PRESET_KEY in values:
                raise ConfigError(f"a preset cannot set {PRESET_KEY} (it is picked by it)")
            check_values(module.Config, values)
            build(module.Config, {**values, PRESET_KEY: name})
        except ConfigError as exc:
            raise ConfigError(f"{experiment}: preset '{name}': {exc}") from None


def default_value(module: ModuleType, key: str) -> Any:
    """The default of a top-level Config field (None when it has none)."""
    for f in fields(module.Config):
        if f.name == key:
            if f.default is not MISSING:
                return f.default
            if f.default_factory is not MISSING:
                return f.default_factory()
    return None


def layered(module: ModuleType, file_values: Mapping[str, Any], quick: bool,
            values: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The dotted values of one run, layered as the module docstring says, and the name of
    the preset applied (None when its data set has none)."""
    quick_values = dict(getattr(module, "QUICK", {})) if quick else {}
    given = {**file_values, **quick_values, **values}
    name = given.get(PRESET_KEY, default_value(module, PRESET_KEY))
    table = presets(module)
    if not isinstance(name, str) or name not in table:
        return given, None
    return {**table[name], **given}, name


def base_values(experiment: str, *, file_values: Mapping[str, Any] | None = None,
                quick: bool = False, values: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The dotted values a run's config is built from: the preset of its data set (the
    experiment's ``PRESETS``), then a config file's, then ``--quick``'s, then the caller's.
    Every value given is checked on its own first (known key, right type), also those
    ``--quick`` replaces: a typo in a file must not pass because of ``--quick``; and so is
    every preset (`check_presets`)."""
    module = experiments.get(experiment)
    file_values, values = dict(file_values or {}), dict(values or {})
    check_values(module.Config, file_values)
    check_values(module.Config, values)
    check_presets(experiment)
    return layered(module, file_values, quick, values)[0]


def build_specs(experiment: str, *, values: Mapping[str, Any] | None = None,
                grid: Mapping[str, Sequence[Any]] | None = None,
                seeds: Sequence[int] = (0,), quick: bool = False,
                file_values: Mapping[str, Any] | None = None, out: str | Path = "runs",
                argv: Sequence[str] = (), label_seed: bool = False) -> list[RunSpec]:
    """Every run of a sweep (one when nothing is swept), each config built and checked.

    Parameters
    ----------
    experiment : str
    values : mapping of dotted key to value
        Fixed values, e.g. ``{"epochs": 5, "snn.n_exc": 100}``.
    grid : mapping of dotted key to list of values
        Every combination is one run (times each seed); the keys label the runs.
    seeds : sequence of int
    quick : bool
        Apply the experiment's ``QUICK`` values (under `values` and `grid`).
    file_values : mapping
        A config file's values (under ``QUICK``). The preset of each run's data set lies under
        all of them (`layered`); a sweep over ``dataset`` picks one per run.
    label_seed : bool
        Label the runs with their seed even when there is one seed.

    Raises
    ------
    ConfigError
        For any value, or combination of values, a config rejects: before anything is made.
    """
    module = experiments.get(experiment)
    grid = {k: list(v) for k, v in (grid or {}).items()}
    seeds = [check_seed(s) for s in seeds]
    if not seeds:
        raise ConfigError("give at least one seed")
    if "seed" in grid or "seed" in (values or {}):
        raise ConfigError("give the seeds with seeds=..., not as a config value")
    for key, options in grid.items():
        if not options:
            raise ConfigError(f"{key}: an empty list of values to sweep")
        for v in options:
            check_values(module.Config, {key: v})
    base_values(experiment, file_values=file_values, quick=quick, values=values)  # checks
    file_values, values = dict(file_values or {}), dict(values or {})
    swept: dict[str, list[Any]] = dict(grid)
    if len(seeds) > 1 or label_seed:
        swept["seed"] = seeds
    out = Path(out).expanduser()
    specs = []
    for combo in (dict(zip(swept, vals, strict=True))
                  for vals in itertools.product(*swept.values())):
        given = {**values, **{k: v for k, v in combo.items() if k != "seed"}}
        run_values, preset = layered(module, file_values, quick, given)
        cfg = build(module.Config, run_values)
        specs.append(RunSpec(experiment, cfg, combo.get("seed", seeds[0]), out / experiment,
                             quick, list(argv), combo, preset=preset))
    return specs


def config_file_values(experiment: str, config: str | Path | None) -> dict[str, Any]:
    """The dotted values of a TOML config file for `experiment` (its ``[search]`` table and
    ``seed`` left out); none without a file."""
    if config is None:
        return {}
    values = flatten({k: v for k, v in load_toml(config).items() if k != "search"})
    named = values.pop("experiment", experiment)
    if named != experiment:
        raise ConfigError(f"{config} is a config for '{named}', not '{experiment}'")
    values.pop("seed", None)
    return values


def spec_from_payload(payload: Mapping[str, Any], parent: Path, argv: list[str],
                      exact_dir: bool) -> RunSpec:
    """The run a config.json (or a job of sweep.json) describes, rebuilt exactly."""
    try:
        name, seed, quick = payload["experiment"], payload["seed"], payload["quick"]
        values = flatten(payload["config"])
    except (KeyError, TypeError, AttributeError):
        raise ConfigError("not a neurosim run config (needs experiment, seed, quick, config)"
                          ) from None
    module = experiments.get(name)
    derived = getattr(module.Config, "DERIVED", {})
    cfg = build(module.Config, {k: v for k, v in values.items() if k not in derived})
    if jsonable(to_dict(cfg)) != payload["config"]:
        raise ConfigError(f"the {name} config cannot be rebuilt exactly from its JSON "
                          "(the experiment's Config has changed since?)")
    preset = payload.get("preset")  # recorded, not applied again: the config holds its values
    spec = RunSpec(name, cfg, int(seed), parent, bool(quick), argv, exact_dir=exact_dir)
    return replace(spec, preset=preset) if isinstance(preset, str) else spec


def load_plan(sweep_dir: Path) -> dict[str, Any]:
    plan = read_json(sweep_dir / PLAN)
    if not isinstance(plan, dict) or plan.get("kind") not in ("sweep", "search"):
        raise ConfigError(f"{sweep_dir} is not a sweep or search directory (no valid {PLAN})")
    return plan


def new_plan(kind: str, experiment: str, argv: Sequence[str], **more: Any) -> dict[str, Any]:
    return {"kind": kind, "experiment": experiment,
            "created_utc": utc_now().isoformat(timespec="seconds"), "argv": list(argv),
            **more, "versions": versions(), **git_state()}
