"""The run directory: atomic writes, provenance (versions, git commit) and reading a run back.

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

Every file is written atomically: to a temporary name in the same folder, then renamed; each
entry of a `Result` is written on its own, so one that cannot be written costs only itself.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import platform
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from neurosim.runner.contract import Result, ResultError, _check_name, jsonable
from neurosim.validation import InvalidParameterError


class OutputError(InvalidParameterError):
    """A run's folder cannot be written at all (not even its meta.json): the user has a disk,
    a permission or a mount to fix. One line, exit status 2, as for any bad input."""


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
    here = Path(__file__).resolve().parent.parent  # the neurosim package

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
        self._write_meta()

    def _write_meta(self) -> None:
        """meta.json, atomically; when the folder no longer takes new files (its permissions
        changed mid-run) the existing file is rewritten in place, so that the status is still
        recorded. Raises `OutputError` when neither works."""
        path = self.path / "meta.json"
        try:
            write_json(path, self.meta)
            return
        except OSError as exc:
            first = exc
        try:
            with path.open("r+b") as fh:
                fh.write((json.dumps(jsonable(self.meta), indent=2) + "\n").encode())
                fh.truncate()
        except OSError:
            why = first.strerror or type(first).__name__
            raise OutputError(f"cannot write {path} ({why}): the run's status "
                              f"{self.meta['status']} is not recorded there") from None


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
