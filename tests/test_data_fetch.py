"""Data sets by name through the real download path: pooch against a local HTTP server.

The server (http.server in a thread on 127.0.0.1) serves tiny IDX files made with `write_idx`,
and in one test the development KMNIST files of shared/; the registry holds the served files'
own SHA256, so the whole path (download to a temporary file, checksum, rename, cache) runs as it
does against the real mirrors. Nothing here reaches the network.
"""

from __future__ import annotations

import collections
import hashlib
import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from neurosim import data
from neurosim.data import DataError, load_dataset, write_idx
from neurosim.validation import InvalidParameterError

FILES = tuple(f + ".gz" for f in data.MNIST_FILES.values())
ROOT = Path(__file__).resolve().parents[1]
# CI has a copy of shared/ beside the checkout, as the developers' machines do
KMNIST = ROOT.parent / "shared" / "data" / "kmnist"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_idx_set(folder: Path, n_train: int = 30, n_test: int = 20, size: int = 28) -> Path:
    """Four small gzipped IDX files; image k of class c is the constant c*20 + k % 5."""
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        values = labels * 20 + np.arange(n) % 5
        images = np.broadcast_to(values[:, None, None], (n, size, size)).astype(np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return folder


class Server:
    """A local HTTP server over `folder` that counts the GET requests per file name."""

    def __init__(self, folder: Path):
        hits: collections.Counter[str] = collections.Counter()

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(folder), **kwargs)

            def do_GET(self):  # noqa: N802 (http.server's name)
                hits[self.path.rsplit("/", 1)[-1]] += 1
                super().do_GET()

            def log_message(self, *args):  # keep the test output clean
                pass

        self.folder, self.hits = folder, hits
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def sums(self) -> dict[str, str]:
        return {f: sha256(self.folder / f) for f in FILES}

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path):
    srv = Server(make_idx_set(tmp_path / "served"))
    yield srv
    srv.close()


@pytest.fixture(autouse=True)
def no_real_mirrors(monkeypatch, tmp_path):
    """Whatever a test forgets to pass, it never reaches the real mirrors or ~/.cache."""
    monkeypatch.setenv("NEUROSIM_DATA_MIRRORS", "http://127.0.0.1:9/")  # discard port: refused
    monkeypatch.setenv("NEUROSIM_DATA_DIR", str(tmp_path / "env-cache"))


def dead_url() -> str:
    """A loopback URL where nothing listens (a port just released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def test_download_checks_and_caches(server, tmp_path):
    cache = tmp_path / "cache"
    ds = load_dataset("kmnist", cache_dir=cache, mirrors=[server.url], sha256=server.sums(),
                      progressbar=False)
    assert ds.name == "kmnist" and ds.feature_shape == (28, 28)
    assert ds.X_train.shape == (30, 784) and ds.X_test.shape == (20, 784)
    # image 13 is class 3, value 3*20 + 13 % 5 = 63, scaled to [0, 1]
    assert ds.y_train[13] == 3 and ds.X_train[13, 0] == pytest.approx(63 / 255)
    assert files_under(cache) == ["kmnist", *(f"kmnist/{f}" for f in sorted(FILES))]
    assert all(server.hits[f] == 1 for f in FILES)
    # the second load reads the cache: no request at all
    again = load_dataset("kmnist", cache_dir=cache, mirrors=[server.url], sha256=server.sums())
    np.testing.assert_array_equal(again.X_test, ds.X_test)
    assert sum(server.hits.values()) == 4


def test_corrupt_download_is_refused_and_not_kept(server, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    sums = server.sums()
    labels = server.folder / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(labels.read_bytes()[:-3] + b"bad")  # what a broken transfer looks like
    with pytest.raises(DataError) as info:
        data.fetch("kmnist", cache, mirrors=[server.url], sha256=sums, progressbar=False)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(f"KMNIST: t10k-labels-idx1-ubyte.gz from {server.url}"
                           "t10k-labels-idx1-ubyte.gz failed its SHA256 check (expected "
                           f"{sums['t10k-labels-idx1-ubyte.gz']}, got {sha256(labels)})")
    # the files verified before it stay (the next try resumes); the corrupt one is gone
    assert "t10k-labels-idx1-ubyte.gz" not in files_under(cache / "kmnist")
    assert not [p for p in files_under(cache) if "tmp" in p]
    assert len(files_under(cache / "kmnist")) == 3


def test_server_down_gives_one_line_and_leaves_nothing(tmp_path):
    cache = tmp_path / "cache"
    url = dead_url()
    with pytest.raises(DataError) as info:
        load_dataset("kmnist", cache_dir=cache, mirrors=[url], progressbar=False)
    text = str(info.value)
    assert "\n" not in text
    assert text == (
        f"cannot download KMNIST ({url}train-images-idx3-ubyte.gz: [Errno 111] Connection "
        f"refused); put its files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        f"t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) in a folder and pass "
        f"data_dir=FOLDER, or in {cache / 'kmnist'}")
    assert not cache.exists()  # no empty cache folder made just for the failure


def test_progress_bar_on_request_and_bad_mirror_urls(server, tmp_path, capfd):
    data.fetch("kmnist", tmp_path, mirrors=["nonsense://x/", server.url], sha256=server.sums(),
               progressbar=True)
    assert "100%" in capfd.readouterr().err  # tqdm's bar, drawn by pooch
    with pytest.raises(DataError, match=r"cannot download KMNIST \(nonsense://x/train-images"):
        data.fetch("kmnist", tmp_path / "b", mirrors=["nonsense://x/"], progressbar=False)


def test_a_cache_that_cannot_be_made_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DataError) as info:
        data.fetch("kmnist", blocker / "cache", mirrors=[dead_url()])
    assert str(info.value).startswith(f"cannot create the data cache {blocker / 'cache/kmnist'} (")
    assert "NEUROSIM_DATA_DIR" in str(info.value) and "\n" not in str(info.value)


def test_mirrors_are_tried_in_order(server, tmp_path):
    sums = server.sums()
    # the first mirror is down: the second serves every file
    folder = data.fetch("kmnist", tmp_path / "a", mirrors=[dead_url(), server.url], sha256=sums,
                        progressbar=False)
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)
    # the first mirror serves a corrupt copy: it is discarded and the second one's kept
    bad = tmp_path / "bad"
    shutil.copytree(server.folder, bad)
    (bad / "train-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8bnot the file")
    corrupt = Server(bad)
    try:
        folder = data.fetch("kmnist", tmp_path / "b", mirrors=[corrupt.url, server.url],
                            sha256=sums, progressbar=False)
    finally:
        corrupt.close()
    assert sha256(folder / "train-labels-idx1-ubyte.gz") == sums["train-labels-idx1-ubyte.gz"]
    assert corrupt.hits["train-labels-idx1-ubyte.gz"] == 1


def test_a_cached_file_that_went_bad_is_fetched_again(server, tmp_path):
    sums = server.sums()
    folder = data.fetch("kmnist", tmp_path, mirrors=[server.url], sha256=sums,
                        progressbar=False)
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(b"truncated")
    data.fetch("kmnist", tmp_path, mirrors=[server.url], sha256=sums, progressbar=False)
    assert server.hits["t10k-images-idx3-ubyte.gz"] == 2
    assert sha256(folder / "t10k-images-idx3-ubyte.gz") == sums["t10k-images-idx3-ubyte.gz"]


def test_environment_sets_cache_and_mirrors(server, tmp_path, monkeypatch):
    served = tmp_path / "byname"
    (served / "kmnist").mkdir(parents=True)
    for f in FILES:
        shutil.copy(server.folder / f, served / "kmnist" / f)
    mirror = Server(served)
    monkeypatch.setenv("NEUROSIM_DATA_MIRRORS", f"{dead_url()}, {mirror.url}{{name}}/")
    monkeypatch.setenv("NEUROSIM_DATA_DIR", str(tmp_path / "envcache"))
    try:
        folder = data.fetch("kmnist", sha256=server.sums(), progressbar=False)
    finally:
        mirror.close()
    assert folder == tmp_path / "envcache" / "kmnist"
    assert data.cache_root() == tmp_path / "envcache"
    assert data.cache_root("~/x") == Path.home() / "x"  # an argument wins over the variable
    monkeypatch.delenv("NEUROSIM_DATA_DIR")
    assert data.cache_root().name == "neurosim"  # pooch's per-user cache


def test_data_dir_wins_and_needs_no_network(tmp_path):
    folder = make_idx_set(tmp_path / "mine", n_train=12, n_test=10)
    ds = load_dataset("fashion_mnist", folder, cache_dir=tmp_path / "cache")
    assert ds.name == "fashion_mnist" and ds.X_train.shape == (12, 784)
    assert not (tmp_path / "cache").exists()
    with pytest.raises(DataError, match=r"Fashion-MNIST file t10k-labels-idx1-ubyte\(.gz\) "
                       f"not found in {tmp_path / 'empty'}"):
        (tmp_path / "empty").mkdir()
        for f in FILES[:3]:
            shutil.copy(folder / f, tmp_path / "empty" / f)
        load_dataset("fashion_mnist", tmp_path / "empty")


def test_wrong_image_size_is_refused_at_load(tmp_path):
    folder = make_idx_set(tmp_path / "eight", size=8)
    assert load_dataset("mnist", folder).feature_shape == (8, 8)  # any size unless asked
    with pytest.raises(DataError) as info:
        load_dataset("mnist", folder, image_shape=(28, 28))
    assert str(info.value) == (
        f"{folder / 'train-images-idx3-ubyte.gz'} holds 8x8 images; this needs 28x28 images "
        f"(the files of mnist or fashion_mnist or kmnist)")
    with pytest.raises(InvalidParameterError, match="dataset=digits holds 8x8 images"):
        load_dataset("digits", image_shape=(28, 28))
    with pytest.raises(InvalidParameterError, match="unknown dataset 'mnst'; choose from "
                       "digits, fashion_mnist, kmnist, mnist"):
        load_dataset("mnst")


def test_digits_by_name_is_the_digits_split():
    """One test split for every seed (issue 16): digits' split drawn with TEST_SPLIT_SEED."""
    ds = load_dataset("digits", seed=3, n_train=100, val_fraction=0.2)
    ref = data.digits(seed=data.TEST_SPLIT_SEED)
    assert ds.feature_shape == (8, 8) and len(ds.X_train) + len(ds.X_val) == 100
    np.testing.assert_array_equal(ds.X_test, ref.X_test)
    assert len(ds.X_val) == 20 and set(ds.y_val) == set(range(10))


def test_published_checksums():
    """The registry holds the four official files of each set; two sums pinned as published."""
    assert set(data.REMOTE_SETS) == {"mnist", "fashion_mnist", "kmnist"}
    for remote in data.REMOTE_SETS.values():
        assert tuple(remote.sha256) == FILES and remote.mirrors
        assert all(len(h) == 64 and int(h, 16) >= 0 for h in remote.sha256.values())
    assert data.REMOTE_SETS["mnist"].sha256["t10k-labels-idx1-ubyte.gz"] == (
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6")
    assert data.REMOTE_SETS["kmnist"].sha256["train-images-idx3-ubyte.gz"] == (
        "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4")


@pytest.mark.skipif(not KMNIST.is_dir(), reason=f"the development KMNIST files are not in {KMNIST}")
def test_real_kmnist_files_through_the_download_path(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    for f in FILES:
        shutil.copy(KMNIST / f, served / f)
    srv = Server(served)
    try:
        ds = load_dataset("kmnist", cache_dir=tmp_path / "cache", mirrors=[srv.url],
                          sha256=srv.sums(), progressbar=False)
    finally:
        srv.close()
    assert ds.X_train.shape == (7011, 784) and ds.X_test.shape == (10000, 784)
    assert np.bincount(ds.y_test).tolist() == [1000] * 10  # KMNIST's balanced test set
    counts = np.bincount(ds.y_train)
    assert counts.min() == 672 and counts.max() == 757  # as the README says
    assert ds.X_train.min() == 0 and ds.X_train.max() == 1
    offline = load_dataset("kmnist", KMNIST)  # the same files read in place
    np.testing.assert_array_equal(offline.X_test, ds.X_test)


# --- the command line: exit 2, one line, nothing left behind ------------------------------------


def cli(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", **env}
    return subprocess.run([sys.executable, "-m", "neurosim.run", *args], cwd=cwd, env=environ,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.e2e
def test_cli_without_files_or_network_exits_2(tmp_path):
    cache = tmp_path / "cache"
    done = cli(["mnist", "dataset=kmnist", "--out", str(tmp_path / "runs")], tmp_path,
               NEUROSIM_DATA_DIR=str(cache), NEUROSIM_DATA_MIRRORS=dead_url())
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("neurosim: error: cannot download KMNIST (")
    assert f"or in {cache / 'kmnist'}" in line and "train-images-idx3-ubyte.gz" in line
    assert not cache.exists()
    assert not list((tmp_path / "runs").rglob("meta.json"))


@pytest.mark.e2e
def test_cli_refuses_8x8_files_for_the_mnist_experiment(tmp_path):
    folder = make_idx_set(tmp_path / "eight", size=8)
    done = cli(["mnist", f"data_dir={folder}", "--out", str(tmp_path / "runs")], tmp_path)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.endswith("holds 8x8 images; this needs 28x28 images (the files of mnist or "
                         "fashion_mnist or kmnist)")
    assert not list((tmp_path / "runs").rglob("meta.json"))  # refused before training
