"""Ctrl-C while Brian2 compiles: the run ends INTERRUPTED with exit code 130, the compiler is
stopped with it, its output kept in a log file (cpp_standalone) and nothing raw on the
terminal: no Brian2 "please report" banner, no g++ lines, no warnings about unused objects.

Brian2 compiles a standalone project with ``os.system("make")``, which ignores SIGINT in the
caller: ``kill -INT`` was lost and the run completed (a terminal's Ctrl-C, which also kills
the compiler, gave FAILED, exit 1, the banner and g++'s output). Each test starts a real run
with empty caches (a fresh HOME: Brian2's Cython cache is ``~/.cython``), waits until a
compiler is a child of the run and sends SIGINT to the run's process only.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
              pytest.mark.skipif(shutil.which("g++") is None or shutil.which("make") is None,
                                 reason="no C++ toolchain")]

NOISE = ("please report", "Brian 2 encountered", "Traceback", "g++", "never included in a "
         "network", "WARNING")


def children(pid: int) -> dict[int, str]:
    """Direct children of `pid`: {pid: command name}."""
    out = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended meanwhile
            continue
        name, rest = text[text.index("(") + 1: text.rindex(")")], text[text.rindex(")") + 2:]
        if int(rest.split()[1]) == pid:
            out[int(stat.parent.name)] = name
    return out


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def interrupt_while_compiling(tmp_path: Path, args: list[str], compiler: set[str]):
    """Start ``neurosim.run`` with `args`, send SIGINT once a child named in `compiler`
    runs; returns (exit code, stderr, run directory, the compiler's pids)."""
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "neurosim.run", *args, "--out",
                             str(tmp_path / "runs")], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline, found = time.monotonic() + 240, {}
        while not found and proc.poll() is None and time.monotonic() < deadline:
            found = {p: n for p, n in children(proc.pid).items() if n in compiler}
            time.sleep(0.05)
        assert found, f"no compiler started (exit {proc.poll()})"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    runs = list((tmp_path / "runs").glob("*/*/meta.json"))
    assert len(runs) == 1
    return proc.returncode, stderr, runs[0].parent, set(found)


@pytest.mark.e2e
@pytest.mark.slow
def test_ctrl_c_during_the_cpp_standalone_build(tmp_path):
    code, stderr, run, pids = interrupt_while_compiling(
        tmp_path, ["stdp_digits", "--quick", "backend=cpp_standalone"], {"make"})
    meta = json.loads((run / "meta.json").read_text())
    assert code == 130 and meta["status"] == "INTERRUPTED", stderr
    assert not [word for word in NOISE if word in stderr], stderr
    log = run / "brian2_build.log"
    assert "g++" in log.read_text()  # the compiler's output, kept
    assert any("brian2_build.log" in w for w in meta["warnings"])
    time.sleep(0.5)
    assert not any(alive(p) for p in pids)  # make (and its compilers) stopped with the run


@pytest.mark.e2e
@pytest.mark.slow
def test_ctrl_c_during_the_cython_compile(tmp_path):
    code, stderr, run, _ = interrupt_while_compiling(
        tmp_path, ["stdp_song2000", "--quick", "backend=cython"], {"g++", "gcc", "cc1plus"})
    meta = json.loads((run / "meta.json").read_text())
    assert code == 130 and meta["status"] == "INTERRUPTED", stderr
    assert not [word for word in NOISE if word in stderr], stderr


def _makefile(folder: Path, recipe: str) -> Path:
    folder.mkdir()
    (folder / "makefile").write_text(f"all:\n\t{recipe}\n")
    return folder


def test_a_signal_stops_the_build_and_keeps_its_output(tmp_path):
    """`compile_standalone` in-process: SIGINT to this process (the compiler's session is
    its own) raises KeyboardInterrupt at once and kills the whole build."""
    import threading

    from neurosim.snn import backend

    project = _makefile(tmp_path / "p", "echo compiling; sleep 30 & echo $$! > pid; wait")
    # Python's own SIGINT handler for the test: a suite started as a background job
    # (`cmd &` in a script) inherits SIGINT ignored, Brian2's import-time handler then wraps
    # SIG_IGN and fails with "'Handlers' object is not callable" instead of raising
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    t0 = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            backend.compile_standalone(str(project))
    finally:
        signal.signal(signal.SIGINT, previous)
    assert time.monotonic() - t0 < 10  # not the 30 s of the 'compiler'
    assert "compiling" in (project / backend.BUILD_LOG).read_text()
    time.sleep(0.2)
    assert not alive(int((project / "pid").read_text()))


def test_a_failed_build_names_its_log(tmp_path):
    from neurosim.snn import backend

    project = _makefile(tmp_path / "p", "echo 'error: no such header' && exit 3")
    log = tmp_path / "logs" / "build.log"
    with pytest.raises(RuntimeError, match=f"C\\+\\+ build failed .*{log}"):
        backend.compile_standalone(str(project), str(log))
    assert "error: no such header" in log.read_text()
