"""The only place that turns a signal into a status: Ctrl-C (SIGINT) and SIGTERM (``kill``,
batch schedulers) stop a run.

Inside `handling()` both signals raise `Stopped`, a `KeyboardInterrupt`, so every place that
keeps partial results on Ctrl-C (the training loop, the experiments, the runner) does the same
for SIGTERM. Brian2 would otherwise catch SIGINT during a simulation, end the current
``run()`` early and let the experiment carry on with wrong numbers; `neurosim.snn.backend`
switches that off (``prefs.core.stop_on_keyboard_interrupt = False``), so the signal reaches
the handler here, also from inside a Brian2 run or while a compiled standalone program runs
(``subprocess.call`` kills the program when interrupted).

While the runner writes a run's final files and status (`deferred`), a signal is recorded but
raises nothing: whatever moment it arrives, meta.json's status and the exit code agree. The
user is told so in one line on stderr (the writes may take a few seconds), not left guessing.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: The signals that stop a run.
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(KeyboardInterrupt):
    """A signal asked the run to stop; `signum` says which."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


def signal_of(exc: BaseException) -> int:
    """The signal behind a KeyboardInterrupt (SIGINT when it came from elsewhere)."""
    return getattr(exc, "signum", int(signal.SIGINT))


def exit_code(signum: int) -> int:
    """The shell's convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
    return 128 + int(signum)


#: What a signal held during the final writes prints (once per run), on stderr.
HELD = ("neurosim: {name} received while the run's files and status are being written; "
        "stopping as soon as they are complete")


class _State:
    deferring = 0  # > 0: signals are recorded, not raised
    pending: int | None = None  # a signal that arrived while deferring
    last: int | None = None  # the last signal received
    told = False  # the one line about a held signal was printed
    import_cut = False  # a signal landed inside an import (never reset: a half-initialised
    #                     module stays for the process's life; see `_handler`)


def _reset() -> None:
    _State.deferring, _State.pending, _State.last, _State.told = 0, None, None, False


def _tell_held(signum: int) -> None:
    if _State.told:
        return
    _State.told = True
    try:
        print(HELD.format(name=signal.Signals(signum).name), file=sys.stderr, flush=True)
    except (OSError, ValueError):  # stderr closed: nobody to tell
        pass


def _importing(frame) -> bool:
    """Whether the live stack from `frame` down runs an import (importlib's frames are on
    the stack, though Python strips them from tracebacks)."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _handler(signum: int, frame) -> None:
    _State.last = signum
    if _State.deferring:
        _State.pending = signum
        _tell_held(signum)
        return
    if _importing(frame):
        # the Stopped raised here cuts that import short; a C extension cut off in its
        # initialisation can crash the interpreter's shutdown later ("Fatal Python error:
        # PyThreadState_Get", SIGABRT instead of 130), so the command line then ends the
        # process without one (`neurosim.cli.cli`)
        _State.import_cut = True
    raise Stopped(signum)


def _redeliver(previous_hook):
    """A ``sys.unraisablehook`` for a `Stopped` raised where Python cannot propagate it (the
    signal landed inside a weakref callback or a ``__del__``, e.g. an import's module-lock
    callback): Python would print "Exception ignored ..." with a traceback and carry on as if
    no signal had come. Instead the signal is sent again from a helper thread 20 ms later
    (once this hook has returned: a signal landing inside the hook would be lost the same
    way), so the handler runs at the main thread's next ordinary bytecode and stops the run."""
    def hook(unraisable) -> None:
        if isinstance(unraisable.exc_value, Stopped):
            again = threading.Timer(0.02, os.kill, (os.getpid(), unraisable.exc_value.signum))
            again.daemon = True
            again.start()
            return
        previous_hook(unraisable)
    return hook


def interrupt_behind(exc: BaseException) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt that `exc` stands for, if any: a signal that lands while a C
    extension module initialises comes back as ``ImportError: initialization failed`` (or a
    SystemError) with the KeyboardInterrupt as its cause or context. Walks that chain."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def import_cut() -> bool:
    """Whether a signal has landed while a module was being imported in this process (see
    `_handler`)."""
    return _State.import_cut


def last_signal() -> int | None:
    """The last signal received inside `handling` (None if none); code that caught the
    `Stopped` itself (the training loop) leaves this to tell which one it was."""
    return _State.last


@contextmanager
def handling(restore: bool = True) -> Iterator[None]:
    """Install the handlers for the duration (main thread only; elsewhere a no-op, since
    only the main thread receives signals).

    Parameters
    ----------
    restore : bool
        Put the previous handlers back afterwards. The command line passes False: it exits
        right after, and a signal in between must not undo a status already written.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    previous_hook = sys.unraisablehook
    _reset()
    for s in SIGNALS:
        signal.signal(s, _handler)
    sys.unraisablehook = _redeliver(previous_hook)
    try:
        yield
    finally:
        if restore:
            for s, h in previous.items():
                signal.signal(s, h)
            sys.unraisablehook = previous_hook
            _reset()
        else:
            hold()


def hold() -> None:
    """From now until `handling` ends, signals are recorded and raise nothing (the runner
    calls this once it starts writing a run's final status)."""
    _State.deferring += 1


@contextmanager
def deferred() -> Iterator[list[int]]:
    """Hold signals while the body runs; yields a list that receives the signal numbers that
    arrived (they raise nothing, here or afterwards)."""
    arrived: list[int] = []
    _State.deferring += 1
    try:
        yield arrived
    finally:
        _State.deferring -= 1
        if _State.pending is not None:
            arrived.append(_State.pending)
            _State.pending = None
