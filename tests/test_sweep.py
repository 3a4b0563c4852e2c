"""Sweeps, searches, resume and rerun: driven as a user drives them (``python -m neurosim.run``
in a subprocess) where exit codes and signals matter, in-process where a function is pinned by
hand. Jobs are quick runs of xor / digits / linear_regression (a second or two each)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from neurosim.runner.plan import Row, job_name, make_sweep_dir
from neurosim.runner.rundir import load_run
from neurosim.runner.summary import aggregate, compare_metrics, summary_csv

ENV = {**os.environ, "MPLBACKEND": "Agg", "PYTHONWARNINGS": "ignore"}
#: A hidden layer of 1e6 units: the config's memory estimate (~11 GB, most of it the scored
#: sets' activations) is within this 24 GB machine's, so the run starts; under an address-space
#: limit of 2.5 GB (`limit_memory`) its first forward pass cannot allocate its 2.2 GB and the
#: job fails with a MemoryError, a failure of the run, not of the user's input.
HUGE = "[1000000]"


def limit_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (2_500_000_000, 2_500_000_000))


def cli(*args: str, cwd: Path, timeout: float = 300, preexec_fn=None
        ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "neurosim.run", *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=timeout,
                          preexec_fn=preexec_fn)


def only_dir(parent: Path, pattern: str = "*-sweep-*") -> Path:
    (path,) = parent.glob(pattern)
    return path


def summary(sweep: Path) -> list[dict[str, str]]:
    with (sweep / "summary.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def jobs(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {r["run"]: r for r in rows if r["run"] not in ("mean", "sd")}


def status(path: Path) -> str:
    return json.loads((path / "meta.json").read_text())["status"]


# --- pinned by hand ----------------------------------------------------------------------------


def test_sample_sd_and_mean_by_hand():
    rows = [Row("0-lr=0.1,seed=0", {"lr": 0.1, "seed": 0}, "COMPLETED", {"acc": 0.5, "n": 3}),
            Row("1-lr=0.1,seed=1", {"lr": 0.1, "seed": 1}, "COMPLETED", {"acc": 0.7, "n": 3}),
            Row("2-lr=0.1,seed=2", {"lr": 0.1, "seed": 2}, "COMPLETED", {"acc": 0.9, "n": 3}),
            Row("3-lr=0.1,seed=3", {"lr": 0.1, "seed": 3}, "FAILED", {"acc": 0.0}, "boom"),
            Row("4-lr=1.0,seed=0", {"lr": 1.0, "seed": 0}, "COMPLETED", {"acc": 0.25})]
    first, second = aggregate(rows, ["lr", "seed"])
    # mean (0.5 + 0.7 + 0.9) / 3 = 0.7; sample sd sqrt((0.2^2 + 0 + 0.2^2) / (3 - 1)) = 0.2
    assert first.label == {"lr": 0.1} and first.n == 3  # the FAILED job is not averaged
    assert first.mean["acc"] == pytest.approx(0.7) and first.sd["acc"] == pytest.approx(0.2)
    assert first.sd["n"] == 0.0
    assert second.n == 1 and second.mean["acc"] == 0.25 and np.isnan(second.sd["acc"])
    table = list(csv.DictReader(summary_csv(rows, ["lr", "seed"]).splitlines()))
    assert [r["run"] for r in table] == [r.run for r in rows] + ["mean", "sd", "mean", "sd"]
    assert table[3]["status"] == "FAILED" and table[3]["error"] == "boom"
    assert table[1]["acc"] == "0.7" and table[1]["metrics.n"] == "3"  # as they are
    assert table[1]["n"] == "" and table[5]["n"] == "3"  # n: the jobs a mean is over
    mean1, sd1, mean2, sd2 = table[5:]
    assert (mean1["lr"], mean1["seed"], mean1["n"]) == ("0.1", "", "3")
    assert float(sd1["acc"]) == pytest.approx(0.2)
    assert sd2["acc"] == "" and mean2["acc"] == "0.25"  # one value: no sd


def test_job_names_are_safe_bounded_and_unique():
    long_a, long_b = "x" * 5000 + "a", "x" * 5000 + "b"
    a = job_name(3, {"data_dir": long_a, "seed": 0}, width=2)
    b = job_name(4, {"data_dir": long_b, "seed": 0}, width=2)
    assert a.startswith("03-data_dir=xxx") and len(a) <= 70 and len(b) <= 70
    assert a[3:].rsplit("~", 1)[1] != b[3:].rsplit("~", 1)[1]  # a hash of the full value
    path = job_name(0, {"data_dir": "../../etc/x y", "hidden": [32, 16]})
    assert "/" not in path and " " not in path and path == "0-data_dir=.._.._etc_xy,hidden=32,16"
    same = [job_name(i, {"s": v}) for i, v in enumerate(["a/b", "a_b", "a b"])]
    assert len(set(same)) == 3  # equal once made safe, told apart by the index


def test_same_second_sweeps_never_collide(tmp_path):
    stamp = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
    plan = [{"run": "0-seed=0"}]
    first = make_sweep_dir(tmp_path, "sweep", plan, stamp=stamp)
    second = make_sweep_dir(tmp_path, "sweep", plan, stamp=stamp)
    assert first != second and second.name == first.name + "-1"


def test_compare_metrics_leaves_timings_out():
    a = {"acc": 0.5, "train_seconds": 1.0, "arm": {"samples_per_second": 9.0, "w": [1, 2]}}
    b = {"acc": 0.5, "train_seconds": 2.0, "arm": {"samples_per_second": 3.0, "w": [1, 3]}}
    cmp = compare_metrics(a, b)
    assert cmp.compared == ["acc", "arm.w"]
    assert cmp.timing == ["arm.samples_per_second", "train_seconds"]
    assert cmp.differences == [("arm.w", [1, 2], [1, 3])] and not cmp.match


def test_search_grammar():
    pytest.importorskip("optuna")
    from neurosim.cli import split_space
    from neurosim.runner.search import Choice, Range, space_from_toml

    space, fixed = split_space(["lr=1e-4:1e-1:log", "batch_size=16:128:16", "dropout=0:0.5",
                                "optimizer=adam,sgd", "hidden=[32],[64,", "32]", "epochs=5",
                                "data_dir=C:/x"])
    assert space == {"lr": Range(1e-4, 0.1, log=True), "batch_size": Range(16, 128, step=16),
                     "dropout": Range(0, 0.5), "optimizer": Choice(("adam", "sgd")),
                     "hidden": Choice(([32], [64, 32]))}
    assert fixed == ["epochs=5", "data_dir=C:/x"]
    toml = {"lr": {"low": 1e-3, "high": 1.0, "log": True}, "snn": {"n_exc": [50, 100]}}
    assert space_from_toml(toml) == {"lr": Range(1e-3, 1.0, log=True),
                                     "snn.n_exc": Choice((50, 100))}


# --- sweeps on the command line ----------------------------------------------------------------


@pytest.mark.e2e
def test_failing_job_is_a_row_and_the_others_complete(tmp_path):
    out = tmp_path / "runs"
    done = cli("digits", "--quick", f"hidden={HUGE},[8]", "--seeds", "1", "--workers", "2",
               "--out", str(out), cwd=tmp_path, preexec_fn=limit_memory)
    assert done.returncode == 1, done.stderr
    sweep = only_dir(out / "digits")
    rows = jobs(summary(sweep))
    failed, ok = rows["0-hidden=1000000,seed=0"], rows["1-hidden=8,seed=0"]
    assert failed["status"] == "FAILED" and failed["error"].startswith("MemoryError: ")
    assert ok["status"] == "COMPLETED" and float(ok["test_accuracy"]) > 0.3
    meta = load_run(sweep / "0-hidden=1000000,seed=0")["meta"]
    assert meta["status"] == "FAILED" and "Traceback" in meta["traceback"]
    plan = json.loads((sweep / "sweep.json").read_text())
    assert plan["keys"] == ["hidden", "seed"] and len(plan["jobs"]) == 2
    assert plan["jobs"][0]["run_config"]["config"]["hidden"] == [10**6]
    assert (sweep / "summary.png").exists()
    assert "Traceback" not in done.stderr


@pytest.mark.e2e
def test_data_error_stops_the_sweep_and_keeps_its_summary(tmp_path):
    out = tmp_path / "runs"
    done = cli("digits", "--quick", "test_fraction=0.3,0.999,0.4", "--workers", "1",
               "--out", str(out), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("neurosim: error: a test fraction of 0.999") and "--resume" in last
    sweep = only_dir(out / "digits")
    assert [r["status"] for r in jobs(summary(sweep)).values()] == ["COMPLETED", "FAILED",
                                                                    "PENDING"]


@pytest.mark.e2e
def test_diverging_job_is_a_row(tmp_path):
    out = tmp_path / "runs"
    done = cli("linear_regression", "lr=0.1,1000", "epochs=100", "--workers", "1",
               "--out", str(out), cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    rows = jobs(summary(only_dir(out / "linear_regression")))
    assert [r["status"] for r in rows.values()] == ["COMPLETED", "DIVERGED"]


@pytest.mark.e2e
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_interrupt_then_resume(tmp_path):
    out = tmp_path / "runs"
    proc = subprocess.Popen(
        [sys.executable, "-m", "neurosim.run", "xor", "epochs=1500", "--seeds", "3",
         "--workers", "1", "--out", str(out)],
        cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:  # one job done, the next one running
        time.sleep(0.05)
        metas = sorted((out / "xor").glob("*-sweep-*/*/meta.json"))
        if len(metas) >= 2 and any(status(m.parent) == "COMPLETED" for m in metas):
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    sweep = only_dir(out / "xor")
    first = jobs(summary(sweep))
    assert "COMPLETED" in {r["status"] for r in first.values()}
    assert {r["status"] for r in first.values()} - {"COMPLETED"} <= {"INTERRUPTED", "PENDING"}
    assert {r["status"] for r in first.values()} != {"COMPLETED"}, "nothing left to resume"
    kept = {n: (sweep / n / "meta.json").read_text() for n, r in first.items()
            if r["status"] == "COMPLETED"}
    for name, row in first.items():  # every run directory agrees with the summary
        if row["status"] != "PENDING":
            assert status(sweep / name) == row["status"]

    done = cli("--resume", str(sweep), "--workers", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [r["status"] for r in jobs(summary(sweep)).values()] == ["COMPLETED"] * 3
    assert all((sweep / n / "meta.json").read_text() == text for n, text in kept.items())
    redone = [n for n, r in first.items() if r["status"] == "INTERRUPTED"]
    assert all((sweep / f"{n}.attempt1").is_dir() for n in redone)
    assert cli("--resume", str(sweep), "--seed", "1", cwd=tmp_path).returncode == 2


@pytest.mark.e2e
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_killed_worker_fails_its_job_and_the_sweep_goes_on(tmp_path):
    out = tmp_path / "runs"
    proc = subprocess.Popen(
        [sys.executable, "-m", "neurosim.run", "xor", "epochs=3000,300", "--workers", "1",
         "--out", str(out)],
        cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, pid = time.time() + 120, None
    while time.time() < deadline and pid is None:
        time.sleep(0.05)
        for meta in (out / "xor").glob("*-sweep-*/0-epochs=3000/meta.json"):
            pid = json.loads(meta.read_text())["pid"]  # written atomically: whole or absent
    os.kill(pid, signal.SIGKILL)  # as the out-of-memory killer would
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    rows = jobs(summary(only_dir(out / "xor")))
    assert rows["0-epochs=3000"]["status"] == "FAILED"
    assert "worker process died" in rows["0-epochs=3000"]["error"]
    assert rows["1-epochs=300"]["status"] == "COMPLETED"


@pytest.mark.e2e
def test_scheduler_without_dask_is_one_line_and_leaves_nothing(tmp_path):
    code = ("import sys; [sys.modules.__setitem__(m, None) for m in "
            "('dask', 'distributed', 'dask.distributed')]; from neurosim.cli import main; "
            "sys.exit(main(sys.argv[1:]))")
    done = subprocess.run([sys.executable, "-c", code, "xor", "--quick", "--seeds", "2",
                           "--scheduler", "tcp://127.0.0.1:1", "--out", str(tmp_path / "runs")],
                          cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == ("neurosim: error: --scheduler tcp://127.0.0.1:1 needs Dask "
                                   "distributed: pip install 'neurosim[dask]'")
    assert not (tmp_path / "runs").exists()


@pytest.mark.e2e
def test_dask_local_cluster_two_workers(tmp_path):
    pytest.importorskip("dask.distributed")
    out = tmp_path / "runs"
    done = cli("xor", "--quick", "--seeds", "2", "--executor", "dask", "--workers", "2",
               "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "2 jobs, 2 at a time, dask" in done.stdout
    sweep = only_dir(out / "xor")
    rows = jobs(summary(sweep))
    assert [r["status"] for r in rows.values()] == ["COMPLETED", "COMPLETED"]
    pids = {json.loads((sweep / n / "meta.json").read_text())["pid"] for n in rows}
    assert len(pids) == 2  # two worker processes
    assert "Traceback" not in done.stderr


@pytest.mark.e2e
def test_rerun_of_a_sweep_job_compares_every_metric_but_timings(tmp_path):
    out = tmp_path / "runs"
    done = cli("xor", "--quick", "--seeds", "1", "--workers", "1", "--out", str(out),
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    job = only_dir(out / "xor") / "0-seed=0"
    metrics = json.loads((job / "metrics.json").read_text())
    metrics["final_loss"] += 1e-12  # the last bits of one number of the original
    (job / "metrics.json").write_text(json.dumps(metrics))
    done = cli("--rerun", str(job), "--out", str(out), cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    # everything else the job measured in its worker process, the rerun reproduced exactly
    assert (f"rerun of {job}: metrics DIFFER in 1 of 5 compared; not compared (timing): "
            "train_seconds\n  final_loss: ") in done.stdout
    new = [p for p in (out / "xor").glob("*") if p.is_dir() and "-sweep-" not in p.name]
    assert len(new) == 1 and load_run(new[0])["config"] == load_run(job)["config"]


# --- searches ----------------------------------------------------------------------------------


@pytest.mark.e2e
def test_search_from_toml_three_trials_then_resume(tmp_path):
    pytest.importorskip("optuna")
    toml = tmp_path / "tune.toml"
    toml.write_text('experiment = "xor"\nepochs = 200\n[search]\nobjective = "final_loss"\n'
                    'trials = 3\nsampler = "random"\n[search.space]\n'
                    'lr = {low = 0.5, high = 8.0, log = true}\n')
    out = tmp_path / "runs"
    done = cli("--config", str(toml), "--search", "hidden=2,4", "--workers", "2",
               "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "(minimize final_loss, 3 trials, random sampler, 2 at a time)" in done.stdout
    sweep = only_dir(out / "xor", "*-search-*")
    rows = summary(sweep)
    assert [r["run"] for r in rows] == ["trial-000", "trial-001", "trial-002"]
    assert all(r["status"] == "COMPLETED" and r["trial_state"] == "COMPLETE" for r in rows)
    assert all(r["value"] == r["final_loss"] for r in rows)
    assert {r["hidden"] for r in rows} <= {"2", "4"}
    for r in rows:  # every trial is an ordinary run with the trial's values
        cfg = load_run(sweep / r["run"])["config"]["config"]
        assert cfg["lr"] == float(r["lr"]) and cfg["epochs"] == 200
    assert (sweep / "study.db").exists() and (sweep / "history.png").exists()
    best = min(rows, key=lambda r: float(r["value"]))
    assert f"best: {best['run']}" in done.stdout

    done = cli("--resume", str(sweep), "--trials", "4", "--workers", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = summary(sweep)
    assert [r["run"] for r in rows] == [f"trial-00{k}" for k in range(4)]
    assert json.loads((sweep / "sweep.json").read_text())["search"]["trials"] == 4


def test_search_records_diverged_trials_as_pruned(tmp_path):
    pytest.importorskip("optuna")
    from neurosim.runner.search import Range, search

    result = search("linear_regression", {"lr": Range(500.0, 1000.0)}, "weight_error",
                    trials=2, values={"epochs": 50}, out=tmp_path / "runs", workers=2)
    assert result.exit_code == 1 and result.best_value is None  # nothing completed
    assert [t.state.name for t in result.study.trials] == ["PRUNED", "PRUNED"]
    assert [t.user_attrs["status"] for t in result.study.trials] == ["DIVERGED", "DIVERGED"]
    rows = summary(result.sweep_dir)
    assert [(r["status"], r["trial_state"], r["value"]) for r in rows] == [
        ("DIVERGED", "PRUNED", ""), ("DIVERGED", "PRUNED", "")]


def test_values_a_config_rejects_together_are_rejected_trials(tmp_path):
    pytest.importorskip("optuna")
    from neurosim.runner.search import Choice, search

    # each is a valid covariance with the defaults (var_x1 3, cov_12 1.5); together 1.7^2 > 2.5
    space = {"cov_12": Choice((1.7,)), "var_x1": Choice((2.5,))}
    result = search("hebbian_oja", space, "final_cos_pc1", trials=2, out=tmp_path / "runs")
    assert result.exit_code == 1 and result.best_value is None
    assert [t.state.name for t in result.study.trials] == ["PRUNED", "PRUNED"]
    rows = summary(result.sweep_dir)
    assert [r["status"] for r in rows] == ["REJECTED", "REJECTED"]
    assert "cov_12**2 must be < var_x1 * var_x2" in rows[0]["error"]


def test_how_a_trial_is_recorded():
    pytest.importorskip("optuna")
    from neurosim.runner.search import Search, Settings

    s = Search.__new__(Search)
    s.settings = Settings.make("arm.val_accuracy", None, 3, None)
    assert s.settings.direction == "maximize"
    assert Settings.make("val_loss", None, 3, None).direction == "minimize"

    def row(status, metrics=None):
        return Row("trial-000", {}, status, metrics or {})

    assert s.value_of(row("COMPLETED", {"arm": {"val_accuracy": 0.9}})) == ("COMPLETE", 0.9, None)
    assert s.value_of(row("COMPLETED", {"arm": {"val_accuracy": None}}))[0] == "PRUNED"
    assert s.value_of(row("DIVERGED")) == ("PRUNED", None, None)
    assert s.value_of(row("FAILED")) == ("FAIL", None, None)
    assert s.value_of(row("INTERRUPTED")) == ("FAIL", None, None)
    kind, _, why = s.value_of(row("COMPLETED", {"arm": {"val_acc": 0.9}}))
    assert kind == "MISSING" and "did you mean arm.val_acc" in why


@pytest.mark.e2e
def test_search_refuses_a_test_objective(tmp_path):
    done = cli("digits", "--search", "lr=1e-4:1e-1", "--objective", "test_accuracy",
               "--out", str(tmp_path / "runs"), cwd=tmp_path)
    assert done.returncode == 2 and "is a test metric" in done.stderr
    assert not (tmp_path / "runs").exists()


def test_api_sweep_on_a_running_dask_cluster(tmp_path):
    pytest.importorskip("dask.distributed")
    from dask.distributed import LocalCluster

    from neurosim.runner.executors import Dask
    from neurosim.runner.sweep import sweep

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        result = sweep("xor", {"lr": [1.0, 2.0]}, quick=True, out=tmp_path / "runs",
                       executor=Dask(scheduler=cluster.scheduler_address))
    assert result.exit_code == 0
    assert [(r.label, r.status) for r in result.rows] == [
        ({"lr": 1.0, "seed": 0}, "COMPLETED"), ({"lr": 2.0, "seed": 0}, "COMPLETED")]


# --- the Python API, in process (its jobs run in worker processes) ----------------------------


def test_api_sweep_failing_and_diverging_jobs_are_rows(tmp_path):
    from neurosim.runner.sweep import sweep

    result = sweep("linear_regression", {"lr": [0.1, 1000.0]}, values={"epochs": 100},
                   workers=1, out=tmp_path / "runs")
    assert result.exit_code == 3 and result.error is None
    assert [(r.label, r.status) for r in result.rows] == [
        ({"lr": 0.1, "seed": 0}, "COMPLETED"), ({"lr": 1000.0, "seed": 0}, "DIVERGED")]
    assert (result.sweep_dir / "summary.csv").exists()


def test_api_sweep_stops_at_a_data_error(tmp_path):
    from neurosim.runner.sweep import sweep

    result = sweep("digits", {"test_fraction": [0.3, 0.999, 0.4]}, quick=True, workers=1,
                   out=tmp_path / "runs")
    assert result.exit_code == 2 and result.error.startswith("a test fraction of 0.999")
    assert [r.status for r in result.rows] == ["COMPLETED", "FAILED", "PENDING"]


def test_api_sweep_takes_python_values_and_checks_every_point_first(tmp_path):
    from neurosim.runner.sweep import sweep

    with pytest.raises(ValueError, match="lr must be > 0"):
        sweep("xor", {"lr": [1.0, -1.0]}, quick=True, out=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()  # no point ran, no folder was made
    result = sweep("digits", {"hidden": [(16, 8), [4]]}, seeds=[3], quick=True, workers=2,
                   values={"optimizer": "sgd", "momentum": 0.9}, out=tmp_path / "runs")
    assert result.exit_code == 0
    configs = [load_run(result.sweep_dir / r.run)["config"] for r in result.rows]
    assert [c["config"]["hidden"] for c in configs] == [[16, 8], [4]]
    assert {c["seed"] for c in configs} == {3} and configs[0]["config"]["lr"] == 0.01
    plan = json.loads((result.sweep_dir / "sweep.json").read_text())
    assert plan["argv"] == ["neurosim.runner.sweep.sweep", "digits"]


def test_api_search_builds_each_trial_from_values(tmp_path):
    pytest.importorskip("optuna")
    from neurosim.runner.search import Choice, search

    result = search("xor", {"hidden": Choice((2, 4)), "init": Choice(("xavier", "he"))},
                    "final_loss", trials=2, sampler="random", values={"epochs": 50},
                    workers=2, out=tmp_path / "runs")
    assert result.exit_code == 0 and result.best_value is not None
    assert set(result.best_params) == {"hidden", "init"}
    cfg = load_run(result.best_run)["config"]["config"]
    assert cfg["epochs"] == 50 and cfg["init"] == result.best_params["init"]
