"""Where a sweep's jobs run: an `Executor` (a typing.Protocol) and two of them, local processes
(`LocalProcesses`, the default) and Dask distributed (`Dask`: a LocalCluster, or a running
cluster by its scheduler address). A third one is one new class with these methods.

Both hand jobs to a `concurrent.futures.Executor`; a job is `run_job` (one `run_one` in the
worker, its output captured). An executor is made before the sweep's folder, so a missing
Dask leaves nothing behind; `start` then opens it for a given number of jobs.

Local workers are spawned (a fresh interpreter, as a Dask worker has), ignore SIGINT/SIGTERM
between jobs and leave the terminal's process group: Ctrl-C reaches only the sweep, which
passes it on to the workers it knows (each reports its pid when it starts). Each worker
watches its parent: when the sweep's process dies (SIGKILL, the out-of-memory killer) the
worker stops its run and exits instead of waiting forever for work that will never come.
"""

from __future__ import annotations

import contextlib
import io
import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, CancelledError, Future, as_completed, wait
from concurrent.futures.process import BrokenProcessPool, ProcessPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from neurosim.runner import signals
from neurosim.runner.config import ConfigError
from neurosim.runner.plan import Job, Row, mark_ended, read_row
from neurosim.runner.single import USER_ERRORS, RunSpec, run_one

#: Seconds to wait for a Dask scheduler given by its address.
CONNECT_TIMEOUT = 20

#: How often a local worker checks that its parent is alive, and how long it then gives its
#: run to end INTERRUPTED before it exits anyway (seconds).
WATCH_EVERY, ORPHAN_GRACE = 0.5, 10.0

#: A local worker's exit status when it ended because its parent died.
EXIT_ORPHANED = 75


def cores() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


# --- the job, in a worker ----------------------------------------------------------------------


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:400]


def run_job(spec: RunSpec, label: dict[str, Any], stop_file: str) -> Row:
    """Run one job; called in a worker (a pool process, or a Dask worker's thread).

    Signals are handled as in a single run (`signals.handling`; only in a main thread). A job
    that finds the sweep's stop file does not start: PENDING. What the job prints is captured
    (it would tear the parent's progress bar) and returned.
    """
    _IDLE.clear()
    try:
        return _run_job(spec, label, stop_file)
    finally:
        _IDLE.set()


def _run_job(spec: RunSpec, label: dict[str, Any], stop_file: str) -> Row:
    row = Row(spec.parent.name, label)
    out = io.StringIO()
    with signals.handling(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            if not os.path.exists(stop_file):
                outcome = run_one(spec, say=lambda _msg: None)
                row = read_row(spec.parent, label)
                row.status, row.error = outcome.status, outcome.error
        except USER_ERRORS as exc:  # e.g. a missing data file; run_one removed the folder
            row = Row(spec.parent.name, label, "FAILED", error=_one_line(exc), user_error=True)
        except KeyboardInterrupt:  # before the run had its folder: it never started
            row = read_row(spec.parent, label)
        except Exception as exc:  # the run wrote FAILED, its partial result and the traceback
            row = read_row(spec.parent, label)
            row.status, row.error = "FAILED", f"{type(exc).__name__}: {exc}"
    row.output = out.getvalue()
    return row


#: Set while a worker holds no job (a job in a local worker clears it while it runs).
_IDLE = threading.Event()
_IDLE.set()


def _watch_parent(parent: int) -> None:
    """In a local worker: once the parent has gone, stop the run (SIGTERM to itself, which
    ends it INTERRUPTED, its status written) and exit as soon as it has ended, or after a
    grace period whatever happens."""
    while os.getppid() == parent:
        time.sleep(WATCH_EVERY)
    with contextlib.suppress(OSError):
        os.kill(os.getpid(), signal.SIGTERM)  # ignored between jobs
    _IDLE.wait(ORPHAN_GRACE)
    os._exit(EXIT_ORPHANED)


def _init_worker(pids: Any, parent: int) -> None:
    """A pool process: report its pid, ignore SIGINT/SIGTERM between jobs (a run installs its
    own handlers), leave the terminal's process group and watch its parent."""
    for s in signals.SIGNALS:
        signal.signal(s, signal.SIG_IGN)
    if hasattr(os, "setpgrp"):
        os.setpgrp()
    pids.put(os.getpid())
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True,
                     name="neurosim-parent-watch").start()


# --- the protocol ------------------------------------------------------------------------------


class Executor(Protocol):
    """What a sweep needs of the place its jobs run.

    Attributes
    ----------
    description : str
        How the sweep's first line names it (``local processes``, ``dask``).
    capacity : int
        Jobs run at once (set by `start`).
    owns_workers : bool
        True when closing it ends every worker (so a run still RUNNING afterwards never
        ends and is marked INTERRUPTED).
    broken : bool
        A worker died and took its pool with it: no new job until the running ones are
        collected (`submit` then starts a fresh pool).
    """

    description: str
    capacity: int
    owns_workers: bool
    broken: bool

    def start(self, n_jobs: int) -> None:
        """Open the workers for `n_jobs` jobs; raises ConfigError when it cannot."""

    def submit(self, job: Job, stop_file: Path) -> Future:
        """Run `run_job` for `job`."""

    def result(self, fut: Future, job: Job) -> Row:
        """The row of a finished future; a dead worker or a cancelled task is a row too."""

    def interrupt(self, signum: int, futures: Sequence[Future]) -> None:
        """Stop the running jobs (they end INTERRUPTED where they can be signalled)."""

    def kill(self) -> None:
        """Stop now (a second Ctrl-C)."""

    def release(self) -> None:
        """Every job has ended: let the workers go while the caller draws the summary."""

    def close(self) -> None:
        """End everything (idempotent)."""

    def stopped(self) -> str:
        """What became of the running jobs when the sweep was stopped (one clause)."""


# --- local processes ---------------------------------------------------------------------------


class LocalProcesses:
    """Jobs in spawned local processes (`concurrent.futures.ProcessPoolExecutor`).

    Parameters
    ----------
    workers : int, optional
        Processes at once; default the cores this process may use (at most the jobs).
    """

    description = "local processes"
    owns_workers = True

    def __init__(self, workers: int | None = None):
        if workers is not None and workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {workers}")
        self.workers = workers
        self.capacity = 1
        self.broken = self.closed = False
        self._ctx = multiprocessing.get_context("spawn")
        self._pids_queue: Any = None
        self._pids: set[int] = set()
        self._pool: ProcessPoolExecutor | None = None

    def start(self, n_jobs: int) -> None:
        self.capacity = min(self.workers or cores(), max(1, n_jobs))
        self._pids_queue = self._ctx.SimpleQueue()
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.capacity, mp_context=self._ctx, initializer=_init_worker,
                                   initargs=(self._pids_queue, os.getpid()))

    def _live_pids(self) -> list[int]:
        """The workers that reported in and still run (a pool restart adds new ones)."""
        with contextlib.suppress(OSError, EOFError, queue.Empty):
            while not self._pids_queue.empty():
                self._pids.add(self._pids_queue.get())
        live = []
        for pid in sorted(self._pids):
            try:
                os.kill(pid, 0)
                live.append(pid)
            except OSError:
                self._pids.discard(pid)
        return live

    def submit(self, job: Job, stop_file: Path) -> Future:
        if self.broken:  # a worker process died: the pool is gone, start a new one
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool, self.broken = self._new_pool(), False
        return self._pool.submit(run_job, job.spec, job.label, str(stop_file))

    def result(self, fut: Future, job: Job) -> Row:
        try:
            return fut.result()
        except BrokenProcessPool:
            self.broken = True
            row = read_row(job.spec.parent, job.label)
            row.status = "FAILED"
            row.error = ("its worker process died (killed, or out of memory?); the pool was "
                         "restarted and the other jobs it held are FAILED too")
            mark_ended(job.spec.parent, "FAILED", row.error)
            return row
        except CancelledError:
            return read_row(job.spec.parent, job.label)

    def interrupt(self, signum: int, futures: Sequence[Future]) -> None:
        for pid in self._live_pids():
            with contextlib.suppress(OSError):
                os.kill(pid, signum)

    def kill(self) -> None:
        for pid in self._live_pids():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

    def release(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def stopped(self) -> str:
        return "the running jobs ended INTERRUPTED, keeping what they measured"


# --- Dask --------------------------------------------------------------------------------------


class Dask:
    """Jobs on Dask distributed: a LocalCluster of `workers` processes (one thread each), or
    the running cluster at `scheduler` (``tcp://host:8786``).

    Dask tasks cannot be signalled: on Ctrl-C they are cancelled, and a LocalCluster's
    workers end with it (their runs are marked INTERRUPTED); a running cluster's go on. The
    LocalCluster's processes block SIGINT for life (`_children_ignore_sigint`), so a
    terminal's Ctrl-C (sent to the whole process group) reaches the sweep only and is handled
    there, in one line.
    """

    owns_workers = True

    def __init__(self, workers: int | None = None, scheduler: str | None = None):
        if workers is not None and workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {workers}")
        self.what = f"--scheduler {scheduler}" if scheduler else "--executor dask"
        try:
            import dask.distributed  # noqa: F401
        except ImportError:
            raise ConfigError(f"{self.what} needs Dask distributed: pip install "
                              "'neurosim[dask]'") from None
        self.workers, self.scheduler = workers, scheduler
        self.owns_workers = scheduler is None
        self.description = "dask"
        self.capacity = 1
        self.cluster: Any = None
        self.client: Any = None
        self._executor: Any = None
        self.broken = self.closed = False

    def start(self, n_jobs: int) -> None:
        from dask.distributed import Client, LocalCluster

        if self.scheduler:
            try:
                self.client = Client(self.scheduler, timeout=CONNECT_TIMEOUT)
            except (OSError, TimeoutError, ValueError) as exc:
                raise ConfigError(f"{self.what}: cannot connect ({exc})") from None
            self.capacity = self.workers or max(1, sum(self.client.nthreads().values()))
        else:
            self.capacity = min(self.workers or cores(), max(1, n_jobs))
            try:
                with _children_ignore_sigint():
                    self.cluster = LocalCluster(n_workers=self.capacity, threads_per_worker=1,
                                                processes=True, dashboard_address=None,
                                                silence_logs=logging.CRITICAL)
                    self.client = Client(self.cluster)
            except KeyboardInterrupt:  # Ctrl-C while the cluster started: none is left
                self.close()
                _end_children()  # a half-built cluster's workers (which ignore SIGINT)
                raise
        self._executor = self.client.get_executor(pure=False)  # two equal jobs are two jobs

    def submit(self, job: Job, stop_file: Path) -> Future:
        return self._executor.submit(run_job, job.spec, job.label, str(stop_file))

    def result(self, fut: Future, job: Job) -> Row:
        try:
            return fut.result()
        except CancelledError:
            return read_row(job.spec.parent, job.label)
        except Exception as exc:  # e.g. Dask's KilledWorker
            row = read_row(job.spec.parent, job.label)
            row.status, row.error = "FAILED", f"{type(exc).__name__}: {exc}"
            return row

    def interrupt(self, signum: int, futures: Sequence[Future]) -> None:
        for fut in futures:
            fut.cancel()

    def kill(self) -> None:
        pass  # closing the cluster ends its workers

    def release(self) -> None:
        pass

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        # Closing a cluster whose tasks were cancelled logs (and prints) tracebacks of the
        # tasks' CancelledError from Dask's own threads: none of them is news to the user.
        with _quiet_dask():
            for thing in (self._executor, self.client, self.cluster):
                if thing is None:
                    continue
                with contextlib.suppress(Exception):
                    if thing is self._executor:
                        thing.shutdown(wait=False)
                    else:
                        thing.close()

    def stopped(self) -> str:
        if self.owns_workers:
            return "the running jobs were stopped with their Dask workers (INTERRUPTED)"
        return "jobs already running on the cluster go on; --resume later collects them"


@contextlib.contextmanager
def _children_ignore_sigint():
    """Processes started in the body never see SIGINT, and a Ctrl-C that arrives meanwhile
    reaches this process once the body is done.

    SIGINT is blocked in this thread, and the threads the cluster starts from here (its event
    loop, which starts the worker processes) inherit the mask; a child inherits it across
    exec and Python leaves it alone, so a worker never dies of a terminal's Ctrl-C with a
    traceback (the signal stays pending in it, never delivered). Multiprocessing's resource
    tracker unblocks SIGINT in the thread that first launches it (CPython's bpo-33613 dance),
    so it is launched here first, before the block.

    Meanwhile this process's handler is one that only records the signal, and the recorded
    signal is sent again once the previous handler is back. SIGINT is not set to SIG_IGN:
    other threads (the cluster's, a BLAS library's native ones) do not block it, and the
    kernel hands a signal sent to the process (the terminal's Ctrl-C) to any thread that does
    not block it, where an ignored signal is discarded: the Ctrl-C was lost and the sweep ran
    on. A handler, unlike SIG_IGN, is not inherited across exec, hence the mask.
    """
    if not hasattr(signal, "pthread_sigmask") or \
            threading.current_thread() is not threading.main_thread():
        yield
        return
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    arrived: list[int] = []
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, _frame: arrived.append(signum))
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)  # runs the recorder first if one is due
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # a pending one: now
        if arrived:
            signal.raise_signal(signal.SIGINT)  # to the previous handler (Stopped, in a sweep)


def _end_children(grace_s: float = 2.0) -> None:
    """Terminate this process's multiprocessing children (SIGTERM, then SIGKILL after
    `grace_s`): the workers of a cluster whose construction a Ctrl-C cut short have no
    cluster object to close them, ignore SIGINT, and would keep the interpreter from exiting
    (multiprocessing joins its children at exit)."""
    import multiprocessing

    children = multiprocessing.active_children()
    for child in children:
        with contextlib.suppress(Exception):
            child.terminate()
    for child in children:
        with contextlib.suppress(Exception):
            child.join(grace_s)
            if child.is_alive():
                child.kill()
                child.join(grace_s)


@contextlib.contextmanager
def _quiet_dask():
    loggers = [logging.getLogger(n) for n in ("distributed", "tornado", "asyncio")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


# --- choosing one, and the loop that feeds it ----------------------------------------------


def choose_executor(executor: Executor | None, workers: int | None) -> Executor:
    """The executor given, or local processes (`workers` at once)."""
    if executor is None:
        return LocalProcesses(workers)
    if workers is not None:
        raise ConfigError("give the number of workers to the executor, e.g. "
                          "LocalProcesses(workers=2), not beside it")
    return executor


def drive(executor: Executor, next_job: Callable[[], Job | None],
          finish: Callable[[Job, Row], bool], stop_file: Path) -> int | None:
    """Run jobs until `next_job` returns None, at most ``executor.capacity`` at a time.

    `finish` receives each job's row as it ends and returns False to start no further job.
    Returns the signal that stopped the sweep (SIGINT, SIGTERM), or None: the running jobs are
    stopped (`Executor.interrupt`) and waited for; a second signal stops the waiting.
    """
    in_flight: dict[Future, Job] = {}
    more = True
    try:
        while True:
            while more and len(in_flight) < executor.capacity and not (
                    executor.broken and in_flight):
                job = next_job()
                if job is None:
                    more = False
                    break
                in_flight[executor.submit(job, stop_file)] = job
            if not in_flight:
                return None
            done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
            for fut in done:
                job = in_flight.pop(fut)
                if not finish(job, executor.result(fut, job)):
                    more = False
    except KeyboardInterrupt as exc:
        signum = signals.signal_of(exc)
        stop_file.touch()  # a job handed out but not started yet will not start
        try:
            executor.interrupt(signum, list(in_flight))
            for fut in as_completed(list(in_flight)):
                job = in_flight.pop(fut)
                finish(job, executor.result(fut, job))
        except KeyboardInterrupt:
            executor.kill()
        for job in in_flight.values():
            finish(job, read_row(job.spec.parent, job.label))
        return signum
