"""The run directory: one folder per run holding its config, status, metrics, data and figures.

Layout (DESIGN.md §3)::

    runs/NAME/<UTC time>-<short hash>/
        config.json    resolved config, seed filled in
        meta.json      status RUNNING/COMPLETED/FAILED/INTERRUPTED/DIVERGED, times, versions
        metrics.json   the machine-readable answer of the run
        curves.csv     equal-length series (per epoch, per block of samples)
        arrays.npz     everything else a figure is drawn from
        spikes.npz     i, t (s), t_stop (s), n_neurons
        *.png          figures

Every file is written atomically: to a temporary name in the same folder, then renamed.
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
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from neurosim.experiments.base import Result


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def config_hash(payload: Any) -> str:
    """Six hex digits identifying a resolved config."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:6]


def make_run_dir(parent: Path, payload: Any, stamp: dt.datetime | None = None) -> Path:
    """Create ``parent/<UTC time>-<hash>`` (never reusing an existing folder) and return it."""
    stamp = stamp or utc_now()
    base = f"{stamp:%Y%m%dT%H%M%SZ}-{config_hash(payload)}"
    parent.mkdir(parents=True, exist_ok=True)
    for k in range(1000):
        path = parent / (base if k == 0 else f"{base}-{k}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot find a free run directory name under {parent}")


# --- atomic writers ----------------------------------------------------------------------------


def write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_json(path: Path, obj: Any) -> None:
    write_bytes(path, (json.dumps(jsonable(obj), indent=2, sort_keys=False) + "\n").encode())


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    write_bytes(path, buf.getvalue())


def write_csv(path: Path, columns: dict[str, np.ndarray]) -> None:
    """Equal-length 1-D columns -> CSV with a header row."""
    lengths = {len(np.ravel(v)) for v in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"curves must have equal lengths, got {sorted(lengths)}")
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
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


# --- what goes into meta.json ------------------------------------------------------------------


def versions() -> dict[str, str | None]:
    """Versions of the interpreter and the main dependencies, without importing brian2."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for pkg in ("neurosim", "numpy", "brian2", "scipy", "matplotlib"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def git_commit() -> str | None:
    """The commit of the neurosim checkout, if it is one."""
    here = Path(__file__).resolve().parent
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


class RunDirectory:
    """Writes one run's files; `meta.json` is rewritten at each status change."""

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
            "git_commit": git_commit(),
            "host": platform.node(),
            "platform": platform.platform(),
            "pid": os.getpid(),
        }
        self._t0 = utc_now()
        write_json(path / "meta.json", self.meta)

    def write_config(self, payload: dict[str, Any]) -> None:
        write_json(self.path / "config.json", payload)

    def write_result(self, result: Result) -> None:
        """metrics.json, curves.csv, arrays.npz, spikes.npz: whatever the result holds."""
        write_json(self.path / "metrics.json", result.metrics)
        if result.curves:
            write_csv(self.path / "curves.csv", result.curves)
        if result.arrays:
            write_npz(self.path / "arrays.npz", result.arrays)
        if result.spikes is not None:
            write_npz(self.path / "spikes.npz", result.spikes)

    def write_figures(self, figures: dict[str, Any]) -> list[Path]:
        paths = []
        for name, fig in figures.items():
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
    """Read a run directory back: config, meta, metrics, curves and arrays as numpy arrays."""
    path = Path(path)
    out: dict[str, Any] = {}
    for name in ("config", "meta", "metrics"):
        file = path / f"{name}.json"
        out[name] = json.loads(file.read_text()) if file.exists() else None
    curves = path / "curves.csv"
    if curves.exists():
        table = np.genfromtxt(curves, delimiter=",", names=True)
        out["curves"] = {n: np.atleast_1d(table[n]) for n in table.dtype.names}
    for name in ("arrays", "spikes"):
        file = path / f"{name}.npz"
        if file.exists():
            with np.load(file, allow_pickle=False) as npz:
                out[name] = {k: npz[k] for k in npz.files}
    return out
