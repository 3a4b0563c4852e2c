"""A run's recorded status is the truth, whatever moment a signal arrives.

Runs are started through the CLI and sent SIGINT (Ctrl-C) or SIGTERM (``kill``, batch
schedulers) at many offsets after their run directory appears: during start-up, training,
labelling, writing the results and after. Whatever the moment, the exit status and meta.json's
status agree, and no run stays RUNNING after its process ended.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.test_run import ENV

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

EXPECTED = {0: "COMPLETED", 130: "INTERRUPTED", 143: "INTERRUPTED"}


def signal_at(args: list[str], out: Path, offset: float, signum: int) -> tuple[int, str]:
    """Start a run, wait for its run directory, wait `offset` s more, send `signum`."""
    proc = subprocess.Popen([sys.executable, "-m", "neurosim.run", *args, "--out", str(out)],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if list(out.glob("*/*/meta.json")):
            break
        time.sleep(0.005)
    time.sleep(offset)
    if proc.poll() is None:
        proc.send_signal(signum)
    _, err = proc.communicate(timeout=180)
    return proc.returncode, err


def check_truthful(code: int, err: str, out: Path, signum: int) -> str:
    assert code in EXPECTED, f"exit {code}: {err}"
    assert "Traceback" not in err, err
    metas = [json.loads(p.read_text()) for p in out.glob("*/*/meta.json")]
    dirs = [p for p in out.glob("*/*") if p.is_dir()]
    assert len(metas) == len(dirs) == 1, "a run directory without meta.json"
    meta = metas[0]
    assert meta["status"] == EXPECTED[code], (code, meta["status"], err)
    if meta["status"] == "INTERRUPTED":
        assert meta["partial"] is True and meta["signal"] == signal.Signals(signum).name
        assert code == 128 + signum
    return meta["status"]


def signal_many(tmp_path: Path, args: list[str], offsets: list[float]) -> list[str]:
    jobs = []
    with ThreadPoolExecutor(max_workers=3) as pool:
        for k, offset in enumerate(offsets):
            signum = signal.SIGINT if k % 2 == 0 else signal.SIGTERM
            out = tmp_path / f"o{k}"
            jobs.append((pool.submit(signal_at, args, out, offset, signum), out, signum))
        return [check_truthful(*job.result(), out, signum) for job, out, signum in jobs]


@pytest.mark.e2e
def test_numpy_run_signalled_at_many_offsets(tmp_path):
    statuses = signal_many(tmp_path, ["digits", "epochs=120"],
                           [0.0, 0.01, 0.05, 0.2, 0.5, 0.8, 1.2, 1.6, 2.2, 3.5, 6.0])
    assert "INTERRUPTED" in statuses  # the early signals land inside training


@pytest.mark.e2e
def test_brian2_run_signalled_at_many_offsets(tmp_path):
    statuses = signal_many(tmp_path, ["stdp_digits", "--quick"],
                           [0.0, 0.3, 1.5, 3.0, 5.0, 7.0, 9.0, 12.0])
    assert "INTERRUPTED" in statuses


@pytest.mark.e2e
def test_interrupted_brian2_run_keeps_what_it_measured(tmp_path):
    """Brian2 used to swallow Ctrl-C: the run carried on and ended COMPLETED with wrong
    numbers. Now the simulation stops, the run is INTERRUPTED and its curves are kept."""
    out = tmp_path / "runs"
    # ~70 s of training (400 digits twice) interrupted 15 s in: well after the first chunk's
    # curve exists, even on a loaded machine, and well before the end on an idle one
    code, err = signal_at(["stdp_digits", "--quick", "n_train=400", "epochs=2"], out, 15.0,
                          signal.SIGINT)
    assert code == 130, err
    (path,) = out.glob("stdp_digits/*")
    meta = json.loads((path / "meta.json").read_text())
    assert meta["status"] == "INTERRUPTED" and meta["partial"] is True
    assert (path / "training.csv").exists()  # the running-accuracy curve so far
    assert "test_accuracy" not in json.loads((path / "metrics.json").read_text())


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_right_after_the_folder_is_made_still_marks_the_run(tmp_path, signum):
    """The signal lands just after the run directory and its meta.json exist, before the
    experiment starts (here: while the runner prints the folder's path). The run is
    INTERRUPTED, not left RUNNING with the process gone."""
    import os

    from neurosim.runner import signals as interrupts
    from neurosim.runner.plan import build_specs
    from neurosim.runner.single import run_one

    (spec,) = build_specs("xor", quick=True, out=tmp_path, argv=["test"])

    def say(_message: str) -> None:
        os.kill(os.getpid(), signum)
        time.sleep(0.05)  # the handler runs here, between two bytecodes

    with interrupts.handling():
        try:
            outcome = run_one(spec, say=say)
        except KeyboardInterrupt:
            pytest.fail("the signal escaped run_one and left the run RUNNING")
    (meta,) = tmp_path.glob("xor/*/meta.json")
    assert json.loads(meta.read_text())["status"] == "INTERRUPTED"
    assert outcome.exit_code == 128 + signum


def test_a_signal_inside_a_callback_python_cannot_raise_from_still_stops_the_run():
    """A signal that lands inside a weakref callback (as one did inside an import's module
    lock) used to print "Exception ignored ... Stopped" and be lost: it is sent again and
    stops the code at its next ordinary step."""
    import gc
    import weakref

    from neurosim.runner import signals

    class Thing:
        pass

    def callback(ref):  # what the handler does when the signal lands here
        signals._handler(signal.SIGINT, None)

    caught = []
    with signals.handling():
        try:
            thing = Thing()
            ref = weakref.ref(thing, callback)  # noqa: F841 (the callback needs it alive)
            del thing
            gc.collect()
            deadline = time.time() + 5
            while time.time() < deadline:
                time.sleep(0.01)
        except KeyboardInterrupt as exc:
            caught.append(exc)
    assert caught and isinstance(caught[0], signals.Stopped)


def test_a_ctrl_c_that_surfaced_as_an_import_error_is_still_an_interrupt():
    """A signal landing while a C extension initialises (matplotlib's _image, seen in CI)
    comes back as ``ImportError: initialization failed`` caused by the Stopped: the run must
    still end INTERRUPTED / 130, not FAILED / 1."""
    from neurosim.runner import signals

    stop = signals.Stopped(signal.SIGTERM)
    try:
        try:
            raise stop
        except KeyboardInterrupt as exc:
            raise ImportError("initialization failed") from exc
    except ImportError as wrapped:
        assert signals.interrupt_behind(wrapped) is stop
    assert signals.interrupt_behind(ValueError("plain")) is None
