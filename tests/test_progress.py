"""Issue 18: a run whose stderr is not a terminal (a log file, a batch job) prints a plain
progress line at least every minute: phase, done/total, elapsed, ETA.

Before: `Context.progress` returned the iterable unchanged off a terminal, so a 16-minute
brain_vs_ann run with its output in a file printed nothing between its first and last line.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading
import time

import pytest

from neurosim.runner.contract import (
    PROGRESS_EVERY_S,
    Context,
    ProgressLines,
    duration,
    progress_every_s,
    progress_line,
    quick_context,
)

LINE = re.compile(r"^\[(?P<desc>[^\]]+)\] (?P<done>\d+)/(?P<total>\d+), "
                  r"(?P<elapsed>\d+(h\d\dm|m\d\ds|s)) elapsed(, ETA \d+(h\d\dm|m\d\ds|s)|, done)?$")


def test_line_format_by_hand():
    assert duration(45.4) == "45s"
    assert duration(192) == "3m12s"
    assert duration(7500) == "2h05m"
    # 4200 of 7011 in 192 s: (7011 - 4200) * 192 / 4200 = 128.50 s left
    line = progress_line("stdp training samples", 4200, 7011, 192.0)
    assert line == "[stdp training samples] 4200/7011, 3m12s elapsed, ETA 2m09s"
    assert LINE.match(line)
    assert progress_line("epochs", 5, 5, 3.0) == "[epochs] 5/5, 3s elapsed, done"
    assert progress_line("epochs", 1, 5, 0.2) == "[epochs] 1/5, 0s elapsed"  # no rate yet
    assert progress_line("", 3, None, 61) == "3, 1m01s elapsed"


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_lines_are_rate_limited_on_a_fake_clock():
    clock, lines = FakeClock(), []
    p = ProgressLines("samples", 1000, 60.0, lines.append, clock=clock, heartbeat=False)
    for _ in range(1000):  # one item every 0.5 s: 500 s in all
        clock.now += 0.5
        p.tick()
    # the first item, then one line per 60 s at most: at 0.5 s, 60.5, 120.5, ..., 480.5, and
    # the last item's at 500 s
    assert len(lines) == 10
    assert lines[0] == "[samples] 1/1000, 0s elapsed"
    assert lines[1] == "[samples] 121/1000, 1m00s elapsed, ETA 7m20s"  # 879 * 60.5 / 121 = 439.5
    assert lines[-1] == "[samples] 1000/1000, 8m20s elapsed, done"
    assert all(LINE.match(line) for line in lines)
    # a finished phase falls silent: its heartbeat does not repeat "done" while the run goes on
    clock.now += 600.0
    p.beat()
    assert len(lines) == 10 and p.stopped.is_set()


def test_heartbeat_on_a_fake_clock_covers_a_silent_stretch():
    clock, lines = FakeClock(), []
    p = ProgressLines("chunks", 10, 60.0, lines.append, clock=clock, heartbeat=False)
    clock.now += 30
    assert p.beat() == pytest.approx(30.0) and lines == []  # not due: 30 s to wait
    clock.now += 30
    p.beat()  # 60 s without any item (e.g. a compile): the unchanged count
    assert lines == ["[chunks] 0/10, 1m00s elapsed"]
    clock.now += 10
    p.tick()  # too soon after the heartbeat's line
    assert len(lines) == 1
    clock.now += 50
    assert p.beat() == pytest.approx(60.0)
    # no ETA from the first item alone (it used to say "ETA 18m00s": 120 s / 1 item * 9)
    assert lines[-1] == "[chunks] 1/10, 2m00s elapsed"


def test_eta_leaves_out_the_first_items_setup_on_a_fake_clock():
    """Before: ``[stdp replicas (56 networks)] 1/300, 47s elapsed, ETA 3h53m``: the first item
    carried the phase's compile, and elapsed / done * remaining made that the rate."""
    clock, lines = FakeClock(), []
    p = ProgressLines("stdp replicas", 300, 2.0, lines.append, clock=clock, heartbeat=False)
    p.tick()  # item 1 taken at once; it compiles for 47 s
    clock.now += 47
    p.beat()
    for _ in range(4):  # items 2-5 taken 2 s apart: items 1-4 done
        clock.now += 2
        p.tick()
    assert lines == [
        "[stdp replicas] 1/300, 0s elapsed",
        "[stdp replicas] 1/300, 47s elapsed",  # was "ETA 3h54m": 47 s / 1 * 299
        "[stdp replicas] 2/300, 49s elapsed",  # item 1 done: the rate starts here
        "[stdp replicas] 3/300, 51s elapsed",  # one item after the first: no rate yet
        # 2 items in 4 s after the first: 2 s each * 296 = 592 s (was 53 / 4 * 296: 1h05m)
        "[stdp replicas] 4/300, 53s elapsed, ETA 9m52s",
        "[stdp replicas] 5/300, 55s elapsed, ETA 9m50s"]  # 6 s / 3 * 295 = 590 s
    assert all(LINE.match(line) for line in lines)


def test_eta_needs_two_items_after_the_first():
    assert progress_line("x", 5, 10, 30.0, timed=(1, 10.0)) == "[x] 5/10, 30s elapsed"
    # 2 items in 10 s since the first was done: 5 s each, 5 items left
    assert progress_line("x", 5, 10, 30.0, timed=(2, 10.0)) == "[x] 5/10, 30s elapsed, ETA 25s"
    assert progress_line("x", 5, 10, 30.0, timed=(0, 0.0)) == "[x] 5/10, 30s elapsed"


def test_heartbeat_thread_writes_while_no_item_comes_and_stops():
    lines: list[str] = []
    t0 = time.monotonic()
    p = ProgressLines("compile", 3, 0.05, lines.append)
    while len(lines) < 3 and time.monotonic() - t0 < 10:  # a loaded machine wakes it late
        time.sleep(0.01)
    p.stop()
    elapsed, n = time.monotonic() - t0, len(lines)
    assert 3 <= n <= elapsed / 0.05 + 1  # at most one line per interval
    assert all(line.startswith("[compile] 0/3, ") for line in lines)
    time.sleep(0.2)
    assert len(lines) == n  # stopped


def test_context_writes_lines_only_off_a_terminal(capsys):
    ctx = Context(seed=0, rng=None, show_progress=False, progress_every_s=1e-9)
    assert list(ctx.progress(range(3), total=3, desc="epochs")) == [0, 1, 2]
    err = capsys.readouterr().err.splitlines()
    assert "[epochs] 1/3, 0s elapsed" in err and err[-1].startswith("[epochs] 3/3, ")
    silent = Context(seed=0, rng=None, show_progress=False, progress_every_s=None)
    assert list(silent.progress(range(3), desc="epochs")) == [0, 1, 2]
    assert capsys.readouterr().err == ""
    # pytest's captured stderr is no file: no lines by default (a sweep job's captured output)
    assert quick_context().progress_every_s is None
    assert PROGRESS_EVERY_S == 60.0


def test_an_unfinished_phase_stops_its_heartbeat():
    ctx = Context(seed=0, rng=None, show_progress=False, progress_every_s=0.02)
    bar = ctx.progress(range(100), total=100, desc="abandoned")
    next(bar)
    beats = [t for t in threading.enumerate() if t.name.endswith("abandoned")]
    assert len(beats) == 1
    del bar  # the experiment returned without taking every item
    beats[0].join(timeout=2)
    assert not beats[0].is_alive()


@pytest.mark.e2e
def test_a_run_with_stderr_in_a_file_prints_progress_lines(tmp_path):
    log = tmp_path / "log.txt"
    with open(log, "w") as err:
        done = subprocess.run(
            [sys.executable, "-m", "neurosim.run", "digits", "--quick", "--out",
             str(tmp_path / "runs")], stdout=subprocess.PIPE, stderr=err, text=True,
            cwd=tmp_path, timeout=600, env={**os.environ, "NEUROSIM_PROGRESS_EVERY_S": "1e-6"})
    assert done.returncode == 0, log.read_text()
    lines = log.read_text().splitlines()
    progress = [line for line in lines if line.startswith("[")]
    assert progress, lines
    assert all(LINE.match(line) for line in progress), progress
    # digits --quick trains 5 epochs: a line per epoch at this interval (and the heartbeat's
    # between them), the last one done
    done = [int(LINE.match(line)["done"]) for line in progress]
    assert done == sorted(done) and set(range(1, 6)) <= set(done) and done[-1] == 5
    assert progress[-1].endswith("5/5, " + progress[-1].split(", ")[1] + ", done")


def test_interval_from_the_environment_and_where_lines_go(tmp_path, monkeypatch):
    with open(tmp_path / "err.txt", "w") as log:  # a log file: lines, every 60 s by default
        monkeypatch.setattr(sys, "stderr", log)
        monkeypatch.delenv("NEUROSIM_PROGRESS_EVERY_S", raising=False)
        assert progress_every_s() == 60.0
        for raw, every in (("0.5", 0.5), ("abc", 60.0), ("-1", 60.0), ("inf", 60.0)):
            monkeypatch.setenv("NEUROSIM_PROGRESS_EVERY_S", raw)
            assert progress_every_s() == every
        monkeypatch.setattr(sys, "stderr", io.StringIO())  # captured (a sweep job): none
        assert progress_every_s() is None


def test_a_for_loop_counts_an_item_done_when_its_body_has_returned(capsys):
    """done_when="finished" (the count a ``for`` loop needs): a first line with 0 done, each
    item counted after its body, "done" only after the last body. With the default ("taken")
    the first body's line already said 1/3, and the last one said "done" as it began."""
    ctx = Context(seed=0, rng=None, show_progress=False, progress_every_s=1e-9)
    seen = []
    for k in ctx.progress(range(3), total=3, desc="replicates", done_when="finished"):
        seen.append(capsys.readouterr().err.splitlines()[-1])
        time.sleep(0.01 * (k == 0))
    last = capsys.readouterr().err.splitlines()
    assert seen[0].startswith("[replicates] 0/3, ") and "done" not in seen[0]
    assert seen[1].startswith("[replicates] 1/3, ") and seen[2].startswith("[replicates] 2/3, ")
    assert all("done" not in line for line in seen)
    assert last[-1].startswith("[replicates] 3/3, ") and last[-1].endswith(", done")
    taken = []
    for _ in ctx.progress(range(3), total=3, desc="taken"):
        taken.append(capsys.readouterr().err.splitlines()[-1])
    assert taken[0].startswith("[taken] 1/3, ") and taken[2].endswith(", done")
    with pytest.raises(ValueError, match="done_when"):
        ctx.progress(range(3), done_when="later")


def test_finished_counts_measure_the_rate_from_the_first_item_done():
    clock = FakeClock()
    lines: list[str] = []
    p = ProgressLines("replicates", 4, 60.0, lines.append, clock=clock, heartbeat=False,
                      counts_finished=True)
    p.tick(0)  # the loop starts
    for seconds in (500.0, 100.0, 100.0):  # the first replicate carries a compile
        clock.now += seconds
        p.tick()
    # 3 done; the rate from the first one done: 2 in 200 s, so 100 s for the last one
    assert lines[0] == "[replicates] 0/4, 0s elapsed"
    assert lines[-1] == "[replicates] 3/4, 11m40s elapsed, ETA 1m40s"


def test_progress_to_moves_a_phase_on_to_running_totals():
    """Brian2 passes report how many digits are done so far (labelling, then validation and
    test, with offsets): the phase takes exactly the new items, never one twice."""
    from neurosim.experiments.common import progress_to

    taken = []

    class Ctx:
        def progress(self, items, total, desc):
            assert total == 10 and desc == "passes"
            for item in items:
                taken.append(item)
                yield item

    advance = progress_to(Ctx(), 10, "passes")
    for n_done in (3, 3, 7, 6, 10):
        advance(n_done)
    assert taken == list(range(10))
