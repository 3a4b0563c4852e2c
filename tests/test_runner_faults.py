"""Faults of the runner found by trying it as a new user would (issue 15), each pinned by a
test that failed on the code before the runner/ package: lists of strings, values --quick
replaces, output problems, held signals, Dask's Ctrl-C, orphaned workers, a shadowed package."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from neurosim import cli
from neurosim.runner import signals
from neurosim.runner.config import build, parse_overrides
from neurosim.runner.plan import build_specs, mark_ended
from neurosim.runner.rundir import load_run

ENV = {**os.environ, "MPLBACKEND": "Agg", "PYTHONWARNINGS": "ignore"}
REPO = Path(__file__).resolve().parent.parent
posix = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and pipes")


def main(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


# --- lists of strings --------------------------------------------------------------------------


def test_a_list_of_bare_words_is_a_list_of_strings():
    assert parse_overrides(["conditions=[sequential,sleep]"]) == {
        "conditions": [["sequential", "sleep"]]}
    assert parse_overrides(["c=[a, [b,c]]", "h=[64,32]"]) == {"c": [["a", ["b", "c"]]],
                                                             "h": [[64, 32]]}
    from neurosim.experiments import sleep_replay

    (values,) = parse_overrides(["conditions=[sequential,sleep]"])["conditions"]
    cfg = build(sleep_replay.Config, {"conditions": values})
    assert cfg.conditions == ("sequential", "sleep")


# --- every value given is checked --------------------------------------------------------------


def test_a_config_files_value_that_quick_replaces_is_still_checked(tmp_path):
    toml = tmp_path / "x.toml"
    toml.write_text('experiment = "xor"\nepochs = "two"\n')
    code, out, err = main("--config", str(toml), "--quick", "--out", str(tmp_path / "runs"))
    assert code == 2 and "epochs must be an integer, got 'two'" in err
    assert not (tmp_path / "runs").exists()


def test_every_sweep_config_is_built_before_any_folder(tmp_path):
    with pytest.raises(ValueError, match="lr must be > 0"):
        build_specs("xor", grid={"lr": [1.0, -1.0]}, out=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


# --- output problems ---------------------------------------------------------------------------


def test_a_data_error_leaves_no_folder_and_names_none(tmp_path):
    out = tmp_path / "runs"
    code, stdout, err = main("digits", "--quick", "test_fraction=0.999", "--out", str(out))
    assert code == 2 and err.startswith("neurosim: error: a test fraction of 0.999")
    assert "run directory" not in stdout
    assert not out.exists()  # neither the run's folder nor the folders made for it


def test_a_run_folder_that_becomes_unwritable_still_records_its_status(tmp_path, monkeypatch):
    """Files can no longer be created in the folder once the experiment has run (a full disk,
    permissions changed): the status is still written (meta.json rewritten in place), FAILED,
    and the exit status is 1, with no traceback."""
    from neurosim import experiments
    from neurosim.runner import rundir

    module = experiments.get("xor")
    original_run, original_write = module.run, rundir.write_bytes
    state = {"ran": False}

    def run(cfg, ctx):
        result = original_run(cfg, ctx)
        state["ran"] = True
        return result

    def write_bytes(path, data):
        if state["ran"]:
            raise PermissionError(13, "Permission denied", str(path))
        return original_write(path, data)

    monkeypatch.setattr(module, "run", run)
    monkeypatch.setattr(rundir, "write_bytes", write_bytes)
    code, stdout, err = main("xor", "--quick", "--out", str(tmp_path))
    (path,) = (tmp_path / "xor").iterdir()
    meta = json.loads((path / "meta.json").read_text())
    assert meta["status"] == "FAILED" and code == 1
    assert "Permission denied" in meta["error"] and "Traceback" not in err
    assert any(line.startswith("FAILED: ") for line in stdout.splitlines())


@posix
@pytest.mark.e2e
@pytest.mark.parametrize("args", [["digits", "--help"], ["list"], ["xor", "--quick"]])
def test_a_reader_that_goes_away_is_no_traceback(tmp_path, args):
    """``... | head -1``: the reader closes the pipe; the run ends as it would have."""
    proc = subprocess.Popen([sys.executable, "-m", "neurosim.run", *args, "--out",
                             str(tmp_path / "runs")], cwd=tmp_path, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # before the process writes anything: every write fails
    err = proc.stderr.read()
    proc.wait(timeout=300)
    assert proc.returncode == 0 and "Traceback" not in err, err
    if args[0] == "xor":
        (path,) = (tmp_path / "runs" / "xor").iterdir()
        assert load_run(path)["meta"]["status"] == "COMPLETED"
        # stderr is a pipe, not a terminal: the runner's plain progress lines ("[epochs] 1/300,
        # 0s elapsed") go there too; besides them, only the one note
        notes = [line for line in err.strip().splitlines() if not line.startswith("[")]
        assert notes == [
            f"neurosim: note: the output was closed early (broken pipe); the run went on and "
            f"ended COMPLETED: {path}"]


# --- signals -----------------------------------------------------------------------------------


@posix
def test_a_signal_held_during_the_final_writes_is_announced(capsys):
    with signals.handling():
        with signals.deferred() as arrived:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            os.kill(os.getpid(), signal.SIGTERM)  # told once only
            time.sleep(0.05)
    assert arrived == [signal.SIGTERM]
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["neurosim: SIGINT received while the run's files and status are being "
                   "written; stopping as soon as they are complete"]


def test_a_run_stopped_from_outside_loses_its_scratch_folder(tmp_path):
    run = tmp_path / "0-seed=0"
    (run / ".scratch" / "standalone").mkdir(parents=True)
    (run / "meta.json").write_text(json.dumps({"status": "RUNNING"}))
    mark_ended(run, "INTERRUPTED", "the sweep stopped its worker")
    assert not (run / ".scratch").exists()
    assert json.loads((run / "meta.json").read_text())["status"] == "INTERRUPTED"


def _children(pid: int) -> set[int]:
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out.add(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is missing


@pytest.mark.e2e
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_workers_exit_when_the_sweep_is_killed(tmp_path):
    """SIGKILL of a sweep (as the out-of-memory killer does) used to leave its workers and the
    resource tracker blocked forever; they now notice and exit within seconds."""
    out = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "neurosim.run", "xor",
                             "epochs=3000000,3000001", "--workers", "2", "--out", str(out)],
                            cwd=tmp_path, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("xor/*-sweep-*/*/meta.json"))) < 2:
        time.sleep(0.1)
    assert len(list(out.glob("xor/*-sweep-*/*/meta.json"))) == 2
    helpers = _children(proc.pid)
    workers = {json.loads(m.read_text())["pid"] for m in out.glob("xor/*-sweep-*/*/meta.json")}
    assert workers <= helpers and len(helpers) >= 2
    proc.kill()
    proc.wait()
    deadline = time.time() + 20
    while time.time() < deadline and any(_alive(p) for p in helpers):
        time.sleep(0.2)
    assert [p for p in helpers if _alive(p)] == []
    for meta in out.glob("xor/*-sweep-*/*/meta.json"):  # each run was told to stop
        assert json.loads(meta.read_text())["status"] == "INTERRUPTED"


@pytest.mark.e2e
@posix
@pytest.mark.parametrize("when", ["starting", "running"])
def test_ctrl_c_on_a_dask_sweep_is_one_line(tmp_path, when):
    """Ctrl-C 1.5 s in (the cluster still starting) or while the jobs run: one line, 130."""
    pytest.importorskip("dask.distributed")
    out = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "neurosim.run", "xor", "epochs=3000000",
                             "--seeds", "2", "--executor", "dask", "--workers", "2", "--out",
                             str(out)], cwd=tmp_path, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 180
    while when == "running" and time.time() < deadline and \
            len(list(out.glob("xor/*-sweep-*/*/meta.json"))) < 2:
        time.sleep(0.1)
    time.sleep(1.5)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("neurosim: interrupted")
    assert list(out.rglob(".scratch")) == []


# --- a checkout named neurosim, run from the folder above it -----------------------------------


@pytest.mark.e2e
def test_list_from_the_folder_above_a_checkout_named_neurosim(tmp_path):
    """The checkout's root (no __init__.py) became a namespace package ``neurosim`` when the
    package is installed behind a meta-path finder (pip install -e) and the working directory
    holds the checkout: its TOML folder ``experiments/`` shadowed ``neurosim.experiments``."""
    (tmp_path / "neurosim").symlink_to(REPO, target_is_directory=True)
    finder = (
        "import importlib.machinery as m, sys, runpy\n"
        f"PKG = {str(REPO / 'neurosim')!r}\n"
        "class Finder:\n"
        "    @classmethod\n"
        "    def find_spec(cls, name, path=None, target=None):\n"
        "        if name == 'neurosim':\n"
        "            return m.PathFinder.find_spec(name, [PKG + '/..'])\n"
        "        if name.count('.') == 1 and name.startswith('neurosim.'):\n"
        "            return m.PathFinder.find_spec(name, [PKG])\n"
        # as setuptools' editable finder does, right after PathFinder (and before any other
        # editable finder of an installed neurosim)
        "sys.meta_path.insert(sys.meta_path.index(m.PathFinder) + 1, Finder)\n"
        "sys.argv = ['neurosim.run', 'list']\n"
        "runpy.run_module('neurosim.run', run_name='__main__', alter_sys=True)\n"
    )
    env = {k: v for k, v in ENV.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, ''); "
                           f"exec({finder!r})"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "xor" in done.stdout and "AttributeError" not in done.stderr


@pytest.mark.e2e
@posix
def test_ctrl_c_while_the_command_line_imports_is_one_line(tmp_path):
    """A signal before the runner's handlers exist (importing takes a second or more on a
    loaded machine) used to end in a KeyboardInterrupt traceback from inside an import."""
    proc = subprocess.Popen([sys.executable, "-m", "neurosim.run", "xor", "--quick", "--out",
                             str(tmp_path / "runs")], cwd=tmp_path, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["neurosim: interrupted"], err
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").rglob("meta.json"))


@posix
def test_a_signal_inside_an_import_is_remembered(tmp_path, monkeypatch):
    (tmp_path / "ns_signalled.py").write_text(
        "import os, signal, time\n"
        "os.kill(os.getpid(), signal.SIGINT)\n"
        "time.sleep(5)  # the handler runs here, inside the import\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(signals._State, "import_cut", False)
    with signals.handling():
        with pytest.raises(signals.Stopped):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        assert not signals.import_cut()
        with pytest.raises(signals.Stopped):
            import ns_signalled  # noqa: F401
        assert signals.import_cut()
    assert "ns_signalled" not in sys.modules


@posix
@pytest.mark.parametrize("where", ["inside an import", "elsewhere"])
def test_after_a_signal_inside_an_import_the_process_skips_pythons_shutdown(tmp_path, where):
    """A signal that cuts a C extension's initialisation short can make the interpreter's
    shutdown abort (SIGABRT, "Fatal Python error: PyThreadState_Get": about 1 in 100 Ctrl-Cs
    0.2-0.35 s after `python -m neurosim.run xor --quick` started). The command line then
    ends the process without that shutdown, with the same exit status and line; elsewhere
    the shutdown runs as usual."""
    (tmp_path / "ns_signalled.py").write_text(
        "import os, signal, time\nos.kill(os.getpid(), signal.SIGINT)\ntime.sleep(5)\n")
    stop = ("import ns_signalled" if where == "inside an import"
            else "os.kill(os.getpid(), signal.SIGINT); time.sleep(5)")
    script = (
        "import atexit, os, signal, sys, time\n"
        "sys.path.insert(0, '')\n"
        "from neurosim import cli\n"
        "from neurosim.runner import signals\n"
        "atexit.register(lambda: print('shutdown ran', file=sys.stderr))\n"
        "def main(restore_signals=True):\n"
        "    with signals.handling(restore=restore_signals):\n"
        "        try:\n"
        f"            {stop}\n"
        "        except KeyboardInterrupt as exc:\n"
        "            return cli._interrupted(exc, [])\n"
        "cli.main = main\n"
        "cli.cli()\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=ENV,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 130, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines == (["neurosim: interrupted"] if where == "inside an import"
                     else ["neurosim: interrupted", "shutdown ran"]), done.stderr
