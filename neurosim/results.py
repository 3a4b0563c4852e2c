"""The run contract: what an experiment receives (`Context`), what it returns (`Result`), and
the run directory both end up in.

An experiment module exposes ``Config`` (a frozen dataclass), ``QUICK`` (the overrides
``--quick`` applies), ``run(cfg, ctx) -> Result`` and ``figures(result) -> dict[str, Figure]``.
It never parses arguments, prints or writes files: the runner (`neurosim.run`) resolves the
config and this module writes what the experiment returns. Nothing here imports an experiment.

Layout of a run directory (docs/guide.md)::

    runs/NAME/<UTC time>-<short hash>/
        config.json          resolved config, seed filled in
        meta.json            status RUNNING/COMPLETED/FAILED/INTERRUPTED/DIVERGED, times, versions
        metrics.json         the machine-readable answer of the run
        <table>.csv          one per named curve table (each with its own x axis)
        arrays.npz           everything else a figure is drawn from
        spikes_<pop>.npz     one per spike population: i, t (s), t_stop (s), n_neurons
        report.md            where the experiment writes one
        *.png                figures

Every file is written atomically: to a temporary name in the same folder, then renamed. A
`Result` is checked when it is built (and again before it is written), so a run never computes
for an hour and then fails to write; each entry is written on its own, so one that cannot be
written costs only itself.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import platform
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from neurosim.spikes import Spikes, SpikesError

T = TypeVar("T")

#: Run statuses written to meta.json; a `Result` carries one of the last three.
STATUSES = ("RUNNING", "COMPLETED", "FAILED", "INTERRUPTED", "DIVERGED")
RESULT_STATUSES = ("COMPLETED", "INTERRUPTED", "DIVERGED")

#: Names of tables, columns, arrays and spike populations: they become file or column names.
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]{0,63}")


class ResultError(ValueError):
    """A `Result` entry that could not be written; the message names the entry."""


def _check_name(kind: str, name: Any) -> None:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ResultError(
            f"{kind} name {str(name)[:80]!r} must start with a letter and hold only letters, "
            "digits, '_', '.', '-' (at most 64 characters)"
        )


# --- the pieces of a Result --------------------------------------------------------------------


def as_table(name: str, columns: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Check one curve table: 1-D numeric columns of one length; returns float arrays.

    Raises
    ------
    ResultError
        Naming the table and the column at fault.
    """
    _check_name("curve table", name)
    if not isinstance(columns, Mapping) or not columns:
        raise ResultError(f"curve table '{name}' must be a non-empty mapping of columns")
    out: dict[str, np.ndarray] = {}
    for col, values in columns.items():
        _check_name(f"column of curve table '{name}'", col)
        try:
            arr = np.asarray(values, dtype=float)
        except (TypeError, ValueError):
            raise ResultError(f"curve table '{name}': column '{col}' is not numeric") from None
        if arr.ndim != 1:
            raise ResultError(
                f"curve table '{name}': column '{col}' must be 1-D, has shape {arr.shape}"
            )
        out[col] = arr
    lengths = {col: len(v) for col, v in out.items()}
    if len(set(lengths.values())) > 1:
        first = next(iter(lengths))
        odd = next(c for c, n in lengths.items() if n != lengths[first])
        raise ResultError(
            f"curve table '{name}': column '{odd}' has {lengths[odd]} values but column "
            f"'{first}' has {lengths[first]} (put curves with another x axis in a table of "
            "their own)"
        )
    return out


def as_array(name: str, value: Any) -> np.ndarray:
    _check_name("array", name)
    arr = np.asarray(value)
    if arr.dtype == object:
        raise ResultError(f"array '{name}' holds Python objects; arrays.npz holds numbers only")
    return arr


def as_spikes(name: str, value: Any) -> Spikes:
    _check_name("spike population", name)
    if isinstance(value, Spikes):
        return value
    if isinstance(value, Mapping):
        missing = {"i", "t", "t_stop", "n_neurons"} - set(value)
        if missing:
            raise ResultError(f"spike population '{name}' lacks {', '.join(sorted(missing))}")
        try:
            return Spikes(value["i"], value["t"], value["t_stop"], value["n_neurons"])
        except SpikesError as exc:
            raise ResultError(f"spike population '{name}': {exc}") from None
    raise ResultError(f"spike population '{name}' must be a Spikes or a mapping")


def check_metrics(metrics: Any) -> dict[str, Any]:
    if not isinstance(metrics, Mapping):
        raise ResultError("metrics must be a mapping")
    for key, value in _walk(metrics):
        if not isinstance(key, str):
            raise ResultError(f"metric key {key!r} must be a string")
        try:
            json.dumps(jsonable(value), allow_nan=False)
        except (TypeError, ValueError):
            raise ResultError(
                f"metric '{key}' ({type(value).__name__}) cannot be written as JSON"
            ) from None
    return dict(metrics)


def _walk(mapping: Mapping, prefix: str = "") -> Iterator[tuple[Any, Any]]:
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            yield from _walk(value, f"{prefix}{key}.")
        else:
            yield (f"{prefix}{key}" if isinstance(key, str) else key), value


@dataclass
class Result:
    """Everything a run measured, with any number of arms; `write_result` turns it into files.

    Every entry is checked when the Result is built and when an entry is added with the
    ``add_*`` methods: a bad entry raises `ResultError` naming it, at once, not after the
    computation when the files are written.

    Attributes
    ----------
    metrics : dict
        JSON-able answer of the run (names as in docs/guide.md: ``test_accuracy``,
        ``train_seconds``, ...; arms nest by name). Written to metrics.json.
    curves : dict of str -> dict of str -> ndarray of shape (n_points,)
        Named curve tables, each a set of equal-length 1-D columns with its own x axis (per
        epoch, per 100 samples, ...). Table ``name`` is written to ``name.csv``.
    arrays : dict of str -> ndarray
        Everything else a figure needs (weights, confusion matrix, ...). Written to arrays.npz.
    spikes : dict of str -> Spikes
        Named spike populations (mappings with ``i``, ``t``, ``t_stop``, ``n_neurons`` are
        converted). Population ``name`` is written to ``spikes_name.npz``.
    report : str
        Markdown written to report.md (nothing is written when empty).
    status : str
        ``COMPLETED``, ``DIVERGED`` or ``INTERRUPTED``.
    meta : dict
        Extra facts for meta.json, e.g. ``{"brian2_target": "cython"}``.
    warnings : list of str
        Things the user should know although the run completed (a layer that never spiked);
        printed at the end of the run and kept in meta.json.
    """

    metrics: dict[str, Any] = field(default_factory=dict)
    curves: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    spikes: dict[str, Spikes] = field(default_factory=dict)
    report: str = ""
    status: str = "COMPLETED"
    meta: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.check()

    def check(self) -> Result:
        """Check (and normalise) every entry; raises `ResultError` naming the first bad one."""
        if self.status not in RESULT_STATUSES:
            raise ResultError(f"status must be one of {', '.join(RESULT_STATUSES)}, "
                              f"got {self.status!r}")
        self.metrics = check_metrics(self.metrics)
        self.curves = {name: as_table(name, table) for name, table in self.curves.items()}
        self.arrays = {name: as_array(name, a) for name, a in self.arrays.items()}
        self.spikes = {name: as_spikes(name, s) for name, s in self.spikes.items()}
        if not isinstance(self.report, str):
            raise ResultError("report must be a string (markdown)")
        return self

    # Adding entries as an experiment goes (e.g. into `Context.partial`): each is checked.

    def add_curves(self, name: str, columns: Mapping[str, Any]) -> None:
        """Set curve table `name` (replacing an earlier table of that name)."""
        self.curves[name] = as_table(name, columns)

    def add_arrays(self, **arrays: Any) -> None:
        for name, value in arrays.items():
            self.arrays[name] = as_array(name, value)

    def add_spikes(self, name: str, spikes: Spikes | Mapping[str, Any]) -> None:
        self.spikes[name] = as_spikes(name, spikes)

    def update_metrics(self, **metrics: Any) -> None:
        self.metrics = check_metrics({**self.metrics, **metrics})

    def merge(self, other: Result) -> None:
        """Take every entry of `other` (same names replace); a non-COMPLETED status wins."""
        self.metrics = check_metrics({**self.metrics, **other.metrics})
        self.curves.update(other.curves)
        self.arrays.update(other.arrays)
        self.spikes.update(other.spikes)
        self.report = "\n\n".join(filter(None, [self.report, other.report]))
        self.meta.update(other.meta)
        self.warnings += [w for w in other.warnings if w not in self.warnings]
        if other.status != "COMPLETED":
            self.status = other.status


# --- what an experiment receives ---------------------------------------------------------------


def arm_seed_sequence(seed: int, arm: str) -> np.random.SeedSequence:
    """The seed sequence of arm `arm` of a run with seed `seed`.

    Derived from the run's seed and the arm's *name* (not its position), so adding, removing
    or reordering other arms never changes this arm's random numbers.
    """
    key = int.from_bytes(hashlib.sha256(arm.encode()).digest()[:8], "little")
    return np.random.SeedSequence(entropy=int(seed), spawn_key=(key,))


@dataclass
class Context:
    """What the runner hands an experiment besides its config.

    Attributes
    ----------
    seed : int
        The run's seed; ``rng`` was made from it.
    rng : numpy.random.Generator
        The run's generator, for single-arm experiments; pass it (or generators spawned from
        it) down. Experiments with several arms take one stream per arm from `rng_for`.
    quick : bool
        True under ``--quick`` (the config already holds the quick overrides).
    scratch_dir : Path
        Where an experiment may put compiled code (a Brian2 standalone project, in a unique
        subdirectory it removes again). The runner gives each run its own inside the run
        directory and deletes it afterwards; the default is the working directory.
    partial : Result
        Experiments fill it as they go (every arm under its own names); if the run is
        interrupted or fails before ``run`` returns, the runner writes it.
    show_progress : bool
        Whether `progress` draws tqdm bars (True only when stderr is a terminal).
    """

    seed: int
    rng: np.random.Generator
    quick: bool = False
    scratch_dir: Path = field(default_factory=lambda: Path("."))
    partial: Result = field(default_factory=Result)
    show_progress: bool = field(default_factory=lambda: sys.stderr.isatty())

    def rng_for(self, arm: str) -> np.random.Generator:
        """An independent generator for arm `arm` (`arm_seed_sequence`): the same seed and
        arm name always give the same stream, whatever other arms the run has."""
        return np.random.default_rng(arm_seed_sequence(self.seed, arm))

    def progress(
        self, iterable: Iterable[T], total: int | None = None, desc: str = ""
    ) -> Iterator[T]:
        """Wrap `iterable` in a tqdm bar on a terminal; return it unchanged otherwise."""
        if not self.show_progress:
            return iter(iterable)
        from tqdm.auto import tqdm

        return iter(tqdm(iterable, total=total, desc=desc, leave=False))


def quick_context(seed: int = 0, **kwargs: Any) -> Context:
    """A `Context` for calling an experiment from a script or a test."""
    return Context(seed=seed, rng=np.random.default_rng(seed), **kwargs)


# --- the run directory -------------------------------------------------------------------------


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def config_hash(payload: Any) -> str:
    """Six hex digits identifying a resolved config."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:6]


def make_run_dir(parent: Path, payload: Any, stamp: dt.datetime | None = None,
                 kind: str = "") -> Path:
    """Create ``parent/<UTC time>-[<kind>-]<hash>`` and return it; a folder of that name (the
    same config started in the same second) gets ``-1``, ``-2``, ... rather than an error.

    `kind` names what the folder holds besides one run (``sweep``, ``search``)."""
    stamp = stamp or utc_now()
    base = f"{stamp:%Y%m%dT%H%M%SZ}-{kind + '-' if kind else ''}{config_hash(payload)}"
    parent.mkdir(parents=True, exist_ok=True)
    for k in range(10_000):
        path = parent / (base if k == 0 else f"{base}-{k}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot find a free folder name under {parent}")


def write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (a temporary name in the same folder, then rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: Path, obj: Any) -> None:
    write_bytes(path, (json.dumps(jsonable(obj), indent=2) + "\n").encode())


def write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    write_bytes(path, buf.getvalue())


def write_csv(path: Path, columns: Mapping[str, np.ndarray]) -> None:
    """Equal-length 1-D columns (checked by `as_table`) -> CSV with a header row."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(zip(*(np.ravel(v).tolist() for v in columns.values()), strict=True))
    write_bytes(path, buf.getvalue().encode())


def save_figure(path: Path, fig: Any) -> None:
    """Save a matplotlib figure as PNG atomically."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    write_bytes(path, buf.getvalue())


def jsonable(obj: Any) -> Any:
    """numpy scalars/arrays and Paths -> plain JSON types; NaN/inf -> null."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def versions() -> dict[str, str | None]:
    """Versions of the interpreter and the main dependencies, without importing brian2."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for pkg in ("neurosim", "numpy", "brian2", "scipy", "matplotlib", "scikit-learn"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def git_state() -> dict[str, Any]:
    """Commit of the neurosim checkout and whether it has uncommitted changes (None outside
    a git checkout)."""
    here = Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=here, capture_output=True, text=True,
                                  timeout=5)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return {"git_commit": None, "git_dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no", "--", ".")
    return {"git_commit": commit.strip(), "git_dirty": bool(status and status.strip())}


def write_result(path: Path, result: Result) -> list[str]:
    """Write every entry of `result` into run directory `path`, each on its own.

    Returns the problems met (an entry that could not be written), empty when all went well;
    the other entries are written regardless.
    """
    problems: list[str] = []

    def attempt(what: str, fn, *args) -> None:
        try:
            fn(*args)
        except (OSError, ValueError, TypeError) as exc:
            problems.append(f"{what}: {type(exc).__name__}: {exc}")

    try:
        result.check()
    except ResultError as exc:  # only when an entry was changed by hand after it was added
        problems.append(str(exc))
    attempt("metrics.json", write_json, path / "metrics.json", result.metrics)
    for name, table in result.curves.items():
        attempt(f"{name}.csv", write_csv, path / f"{name}.csv", table)
    if result.arrays:
        attempt("arrays.npz", write_npz, path / "arrays.npz", result.arrays)
    for name, spikes in result.spikes.items():
        attempt(f"spikes_{name}.npz", write_npz, path / f"spikes_{name}.npz", spikes.arrays())
    if result.report:
        attempt("report.md", write_bytes, path / "report.md", result.report.encode())
    return problems


class RunDirectory:
    """One run's folder; `meta.json` is rewritten at every status change."""

    def __init__(self, path: Path, experiment: str, argv: list[str]):
        self.path = path
        self.meta: dict[str, Any] = {
            "experiment": experiment,
            "status": "RUNNING",
            "started_utc": utc_now().isoformat(timespec="seconds"),
            "finished_utc": None,
            "duration_s": None,
            "argv": argv,
            "versions": versions(),
            **git_state(),
            "host": platform.node(),
            "platform": platform.platform(),
            "pid": os.getpid(),
        }
        self._t0 = utc_now()
        write_json(path / "meta.json", self.meta)

    def write_config(self, payload: dict[str, Any]) -> None:
        write_json(self.path / "config.json", payload)

    def write_figures(self, figures: Mapping[str, Any]) -> list[Path]:
        paths = []
        for name, fig in figures.items():
            _check_name("figure", name)
            path = self.path / f"{name}.png"
            save_figure(path, fig)
            paths.append(path)
        return paths

    def finish(self, status: str, **extra: Any) -> None:
        now = utc_now()
        self.meta.update(extra)
        self.meta.update(
            status=status,
            finished_utc=now.isoformat(timespec="seconds"),
            duration_s=round((now - self._t0).total_seconds(), 3),
        )
        write_json(self.path / "meta.json", self.meta)


# --- reading a run back ------------------------------------------------------------------------


def load_run(path: str | Path) -> dict[str, Any]:
    """Read a run directory back.

    Returns
    -------
    dict
        ``config``, ``meta``, ``metrics`` (parsed JSON or None), ``curves`` (table name ->
        column -> ndarray), ``arrays`` (name -> ndarray), ``spikes`` (population -> dict of
        ``i``, ``t``, ``t_stop``, ``n_neurons``) and ``report`` (str or None).
    """
    path = Path(path)
    out: dict[str, Any] = {}
    for name in ("config", "meta", "metrics"):
        file = path / f"{name}.json"
        out[name] = json.loads(file.read_text()) if file.exists() else None
    out["curves"] = {}
    for file in sorted(path.glob("*.csv")):
        with file.open(newline="") as fh:
            rows = list(csv.reader(fh))
        header, body = rows[0], rows[1:]
        values = np.array(body, dtype=float).reshape(len(body), len(header))
        out["curves"][file.stem] = {col: values[:, k] for k, col in enumerate(header)}
    out["arrays"] = {}
    if (path / "arrays.npz").exists():
        with np.load(path / "arrays.npz", allow_pickle=False) as npz:
            out["arrays"] = {k: npz[k] for k in npz.files}
    out["spikes"] = {}
    for file in sorted(path.glob("spikes_*.npz")):
        with np.load(file, allow_pickle=False) as npz:
            out["spikes"][file.stem.removeprefix("spikes_")] = {k: npz[k] for k in npz.files}
    report = path / "report.md"
    out["report"] = report.read_text() if report.exists() else None
    return out
