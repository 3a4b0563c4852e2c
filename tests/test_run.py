"""The runner, driven as a user drives it: ``python -m neurosim.run`` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from neurosim import experiments
from neurosim.runner.rundir import load_run
from neurosim.runner.summary import is_timing, leaves
from tests.helpers import write_fake_mnist

ENV = {**os.environ, "MPLBACKEND": "Agg", "PYTHONWARNINGS": "ignore"}


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "neurosim.run", *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=600)


def run_dirs(out: Path, name: str) -> list[Path]:
    return sorted(p for p in (out / name).glob("*") if p.is_dir()) if (out / name).exists() else []


@pytest.mark.e2e
def test_list_names_every_experiment(tmp_path):
    done = cli("list", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for name in experiments.EXPERIMENTS:
        assert name in done.stdout


QUICK_EXPERIMENTS = [name for name in experiments.EXPERIMENTS if name != "mnist"]

#: metrics.json of every quick run, as the runner before issue 15 wrote them
QUICK_METRICS = Path(__file__).resolve().parent / "data" / "quick_metrics"


@pytest.mark.e2e
@pytest.mark.parametrize("name", QUICK_EXPERIMENTS)
def test_quick_run_writes_a_complete_run_directory(tmp_path, name):
    done = cli(name, "--quick", "--out", str(tmp_path / "runs"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (path,) = run_dirs(tmp_path / "runs", name)
    assert str(path) in done.stdout
    run = load_run(path)
    assert run["meta"]["status"] == "COMPLETED"
    assert run["config"]["experiment"] == name and run["config"]["seed"] == 0
    assert run["metrics"]["train_seconds"] >= 0
    assert run["curves"]
    assert list(path.glob("*.png")), "no figure written"
    assert not list(path.glob(".*.tmp")), "temporary file left behind"
    if name.startswith("stdp_"):
        assert run["meta"]["brian2_target"] == "numpy"  # --quick runs without a compiler
        assert sum(pop["t"].size for pop in run["spikes"].values()) > 0
    if name == "stdp_digits":  # 20 neurons, 60 unlabelled digits: already well above 10%
        assert run["metrics"]["test_accuracy"] >= 0.2
    if name == "stdp_song2000":
        assert run["metrics"]["output_rate_last_10pct_hz"] > 0
    # the same metrics as the runner before issue 15 wrote, leaf for leaf, timings aside
    expected = json.loads((QUICK_METRICS / f"{name}.json").read_text())
    got, want = leaves(run["metrics"]), leaves(expected)
    assert sorted(got) == sorted(want)
    assert {k: v for k, v in got.items() if not is_timing(k)} == \
        {k: v for k, v in want.items() if not is_timing(k)}


@pytest.mark.e2e
def test_mnist_quick_on_small_idx_files(tmp_path):
    data = write_fake_mnist(tmp_path / "mnist")
    out = str(tmp_path / "runs")
    done = cli("mnist", "--quick", f"data_dir={data}", "--out", out, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (path,) = run_dirs(tmp_path / "runs", "mnist")
    metrics = json.loads((path / "metrics.json").read_text())
    assert 0 <= metrics["test_accuracy"] <= 1


@pytest.mark.e2e
def test_stdp_digits_reads_mnist_idx_files(tmp_path):
    data = write_fake_mnist(tmp_path / "mnist")
    out = str(tmp_path / "runs")
    done = cli("stdp_digits", "--quick", "dataset=mnist", f"data_dir={data}", "n_train=30",
               "n_test=20", "input_coding=intensity", "val_fraction=0", "--out", out,
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (path,) = run_dirs(tmp_path / "runs", "stdp_digits")
    run = load_run(path)
    assert run["arrays"]["weights"].shape == (784, 20)
    assert run["arrays"]["feature_shape"].tolist() == [28, 28]


@pytest.mark.e2e
def test_same_seed_same_metrics(tmp_path):
    out = tmp_path / "runs"
    for _ in range(2):
        assert cli("xor", "--quick", "--seed", "3", "--out", str(out), cwd=tmp_path).returncode == 0
    a, b = (load_run(p)["metrics"] for p in run_dirs(out, "xor"))
    a.pop("train_seconds"), b.pop("train_seconds")
    assert a == b


@pytest.mark.e2e
def test_config_file_and_override_precedence(tmp_path):
    toml = tmp_path / "x.toml"
    toml.write_text('experiment = "xor"\nepochs = 7\nlr = 0.3\n')
    done = cli("--config", str(toml), "lr=0.2", "--out", str(tmp_path / "runs"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (path,) = run_dirs(tmp_path / "runs", "xor")
    cfg = json.loads((path / "config.json").read_text())["config"]
    assert cfg["epochs"] == 7 and cfg["lr"] == 0.2


@pytest.mark.e2e
def test_seed_sweep_writes_summary(tmp_path):
    out = tmp_path / "runs"
    done = cli("xor", "--quick", "seed=0,1", "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (sweep,) = (out / "xor").glob("*-sweep-*")
    rows = (sweep / "summary.csv").read_text().splitlines()
    assert rows[0].startswith("run,seed,status,n,error")
    assert [r.split(",")[0] for r in rows[1:]] == ["0-seed=0", "1-seed=1", "mean", "sd"]
    assert all((sweep / f"{s}-seed={s}").is_dir() for s in (0, 1))


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["xorr"], "unknown experiment 'xorr'; did you mean xor"),
        (["xor", "lrr=0.1"], "unknown key 'lrr'; did you mean lr"),
        (["xor", "lr=fast"], "lr must be a number"),
        (["xor", "lr=-1"], "lr must be > 0"),
        (["digits", "hidden=[]"], "hidden"),
        (["digits", "hidden=[0]"], "hidden"),
        (["xor", "--seed", "-1"], "seed"),
        (["xor", "nonsense"], "expected key=value"),
        (["xor", "--config", "missing.toml"], "not found"),
        (["mnist", "data_dir=nowhere"], "not found"),
        (["xor", "--bogus"], "unrecognized arguments"),
        (["stdp_digits", "backend=gpu"], "unknown backend 'gpu'"),
        (["stdp_digits", "snn.n_exc=0"], "snn.n_exc must be >= 1"),
        (["stdp_digits", "snn.n_ex=3"], "did you mean snn.n_exc"),
        (["stdp_song2000", "song.input_rate_hz=-5"], "song.input_rate_hz must be > 0"),
        (["bcm_selectivity", "n_inputs=3"], "even number"),
        (["digits", "hidden=64,32"], "hidden=64,32 is ambiguous: write hidden=[64,32]"),
        (["stdp_digits", "snn.n_input=5"], "snn.n_input is not a key: it is set by the data"),
        (["xor", "lr=nan"], "lr must be a finite number"),
        (["digits", "test_fraction=0.001"], "a stratified split needs at least one sample"),
        (["stdp_digits", "n_train=8"], "validation fraction of 0.2 splits 8 samples"),
        (["stdp_song2000", "duration_s=1", "snapshot_s=0.3"], "snapshot_s (0.3) must divide"),
        (["stdp_digits", "snn.dt_ms=0.3"], "snn.present_ms must be a whole number of time steps"),
        (["xor", "lr=" + "9" * 100_000], "lr must be a number, got"),
    ],
)
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, args, message):
    out = tmp_path / "runs"
    done = cli(*args, "--out", str(out), cwd=tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    leftover = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
    assert leftover == []


@pytest.mark.e2e
def test_empty_out_is_refused(tmp_path):
    done = cli("xor", "--quick", "--out", "", cwd=tmp_path)
    assert done.returncode == 2 and "--out must name a directory" in done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.e2e
def test_an_error_line_never_echoes_a_huge_value(tmp_path):
    done = cli("xor", "init=" + "x" * 100_000, "--out", str(tmp_path / "runs"), cwd=tmp_path)
    assert done.returncode == 2 and len(done.stderr) < 500


@pytest.mark.e2e
def test_help_lists_every_key_with_type_default_and_meaning(tmp_path):
    for args in (["stdp_digits", "--help"], ["show", "stdp_digits"]):
        done = cli(*args, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "snn.n_exc" in done.stdout and "int" in done.stdout
        assert "excitatory (and inhibitory) neurons" in done.stdout
        assert "snn.n_input" not in done.stdout  # set by the data


@pytest.mark.e2e
def test_list_values_typed_with_a_space_work(tmp_path):
    done = cli("digits", "--quick", "hidden=[16,", "8]", "--out", str(tmp_path / "runs"),
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (path,) = run_dirs(tmp_path / "runs", "digits")
    assert load_run(path)["config"]["config"]["hidden"] == [16, 8]


@pytest.mark.e2e
def test_learning_rate_follows_the_optimiser_unless_set(tmp_path):
    done = cli("digits", "--quick", "optimizer=sgd", "momentum=0.9", "--out",
               str(tmp_path / "runs"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (path,) = run_dirs(tmp_path / "runs", "digits")
    assert load_run(path)["config"]["config"]["lr"] == 0.01  # SGD's usual rate, not Adam's


@pytest.mark.parametrize(("args", "table", "rows"), [
    (["digits", "--quick", "lr=1e9"], "epochs", 0),  # Adam: the loss explodes, no NaN
    (["linear_regression", "--quick", "lr=1000"], "epochs", 1),
    (["hebbian_oja", "--quick", "eta=10"], "steps", 10),
    (["bcm_selectivity", "--quick", "eta=1"], "steps", 2),
])
@pytest.mark.e2e
def test_every_family_marks_runaway_values_diverged(tmp_path, args, table, rows):
    done = cli(*args, "--out", str(tmp_path / "runs"), cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    assert "Warning" not in done.stderr  # no RuntimeWarning leaks to the terminal
    (path,) = run_dirs(tmp_path / "runs", args[0])
    run = load_run(path)
    assert run["meta"]["status"] == "DIVERGED" and run["meta"]["partial"] is True
    kept = run["curves"][table]  # the curves up to the runaway
    assert len(next(iter(kept.values()))) >= rows
    assert list(path.glob("*.png"))  # a diverged run still gets its figure


@pytest.mark.e2e
def test_corrupt_mnist_file_named(tmp_path):
    data = write_fake_mnist(tmp_path / "mnist")
    (data / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    done = cli("mnist", f"data_dir={data}", "--out", str(tmp_path / "runs"), cwd=tmp_path)
    assert done.returncode == 2
    assert "t10k-labels-idx1-ubyte" in done.stderr and "Traceback" not in done.stderr
    assert run_dirs(tmp_path / "runs", "mnist") == []


@pytest.mark.e2e
def test_unwritable_out(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    done = cli("xor", "--quick", "--out", str(blocker / "runs"), cwd=tmp_path)
    assert done.returncode == 2
    assert "--out" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.e2e
def test_divergence_is_marked_and_keeps_curves(tmp_path):
    out = tmp_path / "runs"
    done = cli("linear_regression", "lr=1000", "--out", str(out), cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    (path,) = run_dirs(out, "linear_regression")
    run = load_run(path)
    assert run["meta"]["status"] == "DIVERGED"
    assert run["curves"]


@pytest.mark.e2e
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_marks_interrupted_and_keeps_partial_curves(tmp_path):
    import signal
    import time

    out = tmp_path / "runs"
    proc = subprocess.Popen(
        [sys.executable, "-m", "neurosim.run", "digits", "epochs=100000", "--out", str(out)],
        cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline:  # wait until a few epochs are done
        time.sleep(0.5)
        dirs = run_dirs(out, "digits")
        if dirs and (dirs[0] / "meta.json").exists():
            time.sleep(3)
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    (path,) = run_dirs(out, "digits")
    run = load_run(path)
    assert run["meta"]["status"] == "INTERRUPTED"
    assert len(run["curves"]["epochs"]["loss"]) >= 1


@pytest.mark.e2e
def test_import_and_list_do_not_import_brian2(tmp_path):
    code = ("import sys, neurosim, neurosim.run, neurosim.cli, neurosim.ann, neurosim.experiments; "
            "neurosim.cli.print_list(); assert 'brian2' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=ENV,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


CONFIGS = Path(__file__).resolve().parent.parent / "experiments"


@pytest.mark.parametrize("name", list(experiments.EXPERIMENTS))
def test_every_experiment_has_its_canonical_toml(name):
    """experiments/NAME.toml holds the defaults (the docs say so for every experiment)."""
    from neurosim.runner.config import build, flatten, load_toml

    values = flatten(load_toml(CONFIGS / f"{name}.toml"))
    assert values.pop("experiment") == name
    values.pop("seed", None)
    module = experiments.get(name)
    assert build(module.Config, values) == module.Config()


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.toml")), ids=lambda p: p.name)
def test_every_toml_in_experiments_builds_its_config(path):
    """The variants the docs point to (stdp_digits_400, brain_vs_ann_mnist, ...) name a known
    experiment and only keys and values its Config accepts."""
    from neurosim.runner.config import build, flatten, load_toml

    values = flatten(load_toml(path))
    module = experiments.get(values.pop("experiment"))
    values.pop("seed", None)
    build(module.Config, values)


def test_a_run_does_its_linear_algebra_on_one_blas_thread(tmp_path, monkeypatch):
    """Alone or as a sweep job, the experiment runs with BLAS held to one thread, so a matrix
    product's rounding (and every metric) is the same however the run was launched."""
    from threadpoolctl import threadpool_info

    from neurosim.cli import main

    module = experiments.get("xor")
    seen: list[list[int]] = []

    def run(cfg, ctx):
        seen.append([pool["num_threads"] for pool in threadpool_info()
                     if pool["user_api"] == "blas"])
        return original(cfg, ctx)

    original = module.run
    monkeypatch.setattr(module, "run", run)
    assert main(["xor", "--quick", "--out", str(tmp_path)], restore_signals=False) == 0
    assert seen and seen[0] and set(seen[0]) == {1}


def test_warnings_about_the_run_are_kept_and_libraries_deprecations_dropped(tmp_path, monkeypatch):
    """A warning raised during the run reaches meta.json once; a library's deprecation notice
    does not, even when it is a UserWarning too and a library imported mid-run has put a
    'once' filter for UserWarnings in front (as elephant.spade does)."""
    import warnings

    from neurosim.cli import main

    class LibraryDeprecation(UserWarning, DeprecationWarning):
        pass

    module = experiments.get("xor")
    original = module.run

    def run(cfg, ctx):
        warnings.simplefilter("once", UserWarning)
        warnings.warn("'parseString' deprecated", LibraryDeprecation, stacklevel=2)
        warnings.warn("the loss plateaued", RuntimeWarning, stacklevel=2)
        warnings.warn("the loss plateaued", RuntimeWarning, stacklevel=2)
        return original(cfg, ctx)

    monkeypatch.setattr(module, "run", run)
    assert main(["xor", "--quick", "--out", str(tmp_path)], restore_signals=False) == 0
    (path,) = run_dirs(tmp_path, "xor")
    assert load_run(path)["meta"]["warnings"] == ["RuntimeWarning: the loss plateaued"]
