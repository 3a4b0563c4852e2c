"""The contract between the runner and an experiment: what an experiment receives
(`Context`), what it returns (`Result`), and what it is (`Experiment`, a typing.Protocol).

An experiment module exposes ``Config`` (a frozen dataclass), ``QUICK`` (the values ``--quick``
applies), ``run(cfg, ctx) -> Result`` and ``figures(result) -> dict[str, Figure]``. It never
parses arguments, prints or writes files: the runner (`neurosim.runner`) builds the config and
`neurosim.runner.rundir` writes what the experiment returns. This module sits below the
experiments: it imports only the library (`neurosim.spikes`), never an experiment or another
part of the runner.

A `Result` is checked when it is built (and again before it is written), so a run never
computes for an hour and then fails to write.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

import numpy as np

from neurosim.spikes import Spikes, SpikesError

__all__ = ["Context", "Experiment", "Result", "ResultError", "Spikes", "arm_seed_sequence",
           "jsonable", "quick_context"]

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


#: Seconds between two plain progress lines when stderr is a file, not a terminal (a log file, a
#: batch job): at least one line a minute shows the run is alive. The environment variable
#: NEUROSIM_PROGRESS_EVERY_S overrides it (the tests use a fraction of a second).
PROGRESS_EVERY_S = 60.0


def progress_every_s() -> float | None:
    """The interval of plain progress lines for this process: None when stderr is a terminal
    (tqdm draws bars there) or no real file (a sweep job's captured output), else
    `PROGRESS_EVERY_S` or NEUROSIM_PROGRESS_EVERY_S (a positive number of seconds)."""
    try:
        sys.stderr.fileno()
        if sys.stderr.isatty():
            return None
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None
    try:
        every = float(os.environ.get("NEUROSIM_PROGRESS_EVERY_S", PROGRESS_EVERY_S))
    except ValueError:
        return PROGRESS_EVERY_S
    return every if every > 0 and math.isfinite(every) else PROGRESS_EVERY_S


def duration(seconds: float) -> str:
    """``45s``, ``3m12s``, ``2h05m``: a duration as a log line shows it."""
    s = max(int(round(seconds)), 0)
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


def progress_line(desc: str, done: int, total: int | None, elapsed: float,
                  timed: tuple[int, float] | None = None) -> str:
    """``[stdp training samples] 4200/7011, 3m12s elapsed, ETA 2m09s``: the phase, items done
    (of the total, when known), wall time so far and the time left at the rate of `timed`.

    `timed` is ``(items, seconds)``, the stretch the rate is measured over (`ProgressLines`
    passes the items after the first: the first one carries the phase's setup, a compile,
    and would make ``elapsed / done`` absurd); None means ``(done, elapsed)``. No ETA until
    that stretch holds 2 items: a rate from one item is noise.
    """
    line = (f"[{desc}] " if desc else "") + (f"{done}/{total}" if total else f"{done}")
    line += f", {duration(elapsed)} elapsed"
    items, seconds = (done, elapsed) if timed is None else timed
    if total and 0 < done < total and items >= 2 and seconds > 0:
        line += f", ETA {duration(seconds / items * (total - done))}"
    elif total and done >= total:
        line += ", done"
    return line


class ProgressLines:
    """Plain progress lines for one phase, rate-limited: one when the first item is taken, then
    at most one per `every` seconds, also while no item comes (a heartbeat thread writes the
    unchanged count, so a long silent stretch, a compile or a slow chunk, still shows). The
    ETA's rate is measured from when the first item is done (the second taken): the first item
    carries the phase's setup (a Brian2 compile) and would make the ETA absurd.

    Parameters
    ----------
    desc : str
        The phase, e.g. ``"training samples"``.
    total : int or None
    every : float
        Seconds between lines, > 0.
    write : callable (str) -> None
        Receives each line (without newline).
    clock : callable () -> float
        Seconds (`time.monotonic`; a fake one in tests).
    heartbeat : bool
        Start the heartbeat thread (off in the fake-clock tests).
    """

    def __init__(self, desc: str, total: int | None, every: float,
                 write: Callable[[str], None], clock: Callable[[], float] = time.monotonic,
                 heartbeat: bool = True, counts_finished: bool = False):
        self.desc, self.total, self.every, self.write, self.clock = desc, total, every, write, clock
        self.done = 0
        self.start = clock()
        # a tick means an item was taken (its predecessor is done: the first item is done at
        # the second tick), or, with counts_finished, that the item itself is done
        self.origin = 1 if counts_finished else 2
        self.first_done: float | None = None  # when the first item was done: the rate's origin
        self.last: float | None = None  # when the last line was written
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        if heartbeat:
            threading.Thread(target=self._beat, daemon=True,
                             name=f"neurosim progress {desc}").start()

    def _emit(self, now: float) -> None:
        self.last = now
        try:
            timed = ((0, 0.0) if self.first_done is None
                     else (self.done - self.origin, now - self.first_done))
            self.write(progress_line(self.desc, self.done, self.total, now - self.start, timed))
        except (OSError, ValueError):  # stderr closed: nobody to tell
            self.stopped.set()

    def tick(self, items: int = 1) -> None:
        """`items` more items counted (0: none, only the first line): a line if it is the
        first, the last (then the heartbeat stops: a finished phase does not repeat "done"
        while the next one runs), or `every` seconds have passed."""
        with self.lock:
            self.done += items
            now = self.clock()
            if self.first_done is None and self.done >= self.origin:
                self.first_done = now  # the first item is done: its setup (a compile) is over
            finished = self.total is not None and self.done >= self.total
            if finished or self.last is None or now - self.last >= self.every:
                self._emit(now)
            if finished:
                self.stopped.set()

    def beat(self) -> float:
        """Write a line if none came for `every` seconds; return the seconds until the next
        one is due."""
        with self.lock:
            now = self.clock()
            due = (self.start if self.last is None else self.last) + self.every
            if now >= due and not self.stopped.is_set():
                self._emit(now)
                due = now + self.every
            return due - now

    def _beat(self) -> None:
        wait = self.every
        while not self.stopped.wait(max(wait, 0.01)):
            wait = self.beat()

    def stop(self) -> None:
        self.stopped.set()


def _counted(iterable: Iterable[T], lines: ProgressLines, finished: bool) -> Iterator[T]:
    try:
        for k, item in enumerate(iterable):
            if not finished:
                lines.tick()
            else:  # item k-1's loop body has returned: it is done (the first: a line at 0)
                lines.tick(1 if k else 0)
            yield item
        if finished:
            lines.tick()  # the last body returned
    finally:
        lines.stop()


def _write_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


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
    progress_every_s : float or None
        Otherwise, seconds between the plain progress lines `progress` writes to stderr
        (`ProgressLines`; `progress_every_s()`: 60 when stderr is a file, None when it is a
        terminal or captured, which writes none).
    on_work : callable, optional
        Called once, at the first `progress` call: the runner announces the run's folder
        then (a run refused while loading its data names no folder).
    """

    seed: int
    rng: np.random.Generator
    quick: bool = False
    scratch_dir: Path = field(default_factory=lambda: Path("."))
    partial: Result = field(default_factory=Result)
    show_progress: bool = field(default_factory=lambda: sys.stderr.isatty())
    progress_every_s: float | None = field(default_factory=progress_every_s)
    on_work: Callable[[], None] | None = field(default=None, repr=False)  # see `progress`

    def rng_for(self, arm: str) -> np.random.Generator:
        """An independent generator for arm `arm` (`arm_seed_sequence`): the same seed and
        arm name always give the same stream, whatever other arms the run has."""
        return np.random.default_rng(arm_seed_sequence(self.seed, arm))

    def progress(
        self, iterable: Iterable[T], total: int | None = None, desc: str = "",
        done_when: str = "taken",
    ) -> Iterator[T]:
        """Wrap `iterable` in a tqdm bar on a terminal; where stderr is a file (a log, a batch
        job), in plain progress lines (`ProgressLines`, every `progress_every_s`); else return
        it unchanged.

        ``done_when="taken"``: an item counts as done when it is taken (experiments that take
        the next one after finishing a unit of work: ``next(bar, None)``). ``"finished"``: when
        the next one is asked for, the count a ``for`` loop over the work needs (its first
        line says 0 done, its last comes after the last body); tqdm counts so anyway.
        """
        if done_when not in ("taken", "finished"):
            raise ValueError(f"done_when must be 'taken' or 'finished', got {done_when!r}")
        if self.on_work is not None:  # the experiment has its data and starts its work
            started, self.on_work = self.on_work, None
            started()
        if not self.show_progress:
            if self.progress_every_s is None:
                return iter(iterable)
            if total is None:
                total = len(iterable) if hasattr(iterable, "__len__") else None
            lines = ProgressLines(desc, total, self.progress_every_s, _write_stderr,
                                  counts_finished=done_when == "finished")
            counted = _counted(iterable, lines, done_when == "finished")
            weakref.finalize(counted, lines.stop)  # a phase left unfinished stops its heartbeat
            return counted
        from tqdm.auto import tqdm

        return iter(tqdm(iterable, total=total, desc=desc, leave=False))


def quick_context(seed: int = 0, **kwargs: Any) -> Context:
    """A `Context` for calling an experiment from a script or a test."""
    return Context(seed=seed, rng=np.random.default_rng(seed), **kwargs)


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


@runtime_checkable
class Experiment(Protocol):
    """What the runner needs of an experiment (a module, or any object with these names).

    Attributes
    ----------
    Config : type
        A frozen dataclass; every field has a default and a comment saying why.
    QUICK : dict
        The values ``--quick`` sets (a fast smoke-test version of the run).

    An experiment may also define ``seeds_report(metrics_by_seed: dict[int, dict]) ->
    tuple[str, dict]``: a sweep over seeds alone then writes the markdown to the sweep
    folder's report.md and the dict to its comparisons.json
    (`neurosim.runner.summary.write_seeds_report`), e.g. paired tests between arms.
    """

    Config: ClassVar[type]
    QUICK: ClassVar[dict[str, Any]]

    def run(self, cfg: Any, ctx: Context) -> Result: ...

    def figures(self, result: Result) -> dict[str, Any]: ...
