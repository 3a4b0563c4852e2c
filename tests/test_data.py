"""Data sets: contents, splits, and IDX files read, written and rejected with a clear message."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from neurosim import data
from neurosim.data import DataError, load_idx, mnist, write_idx


def test_xor_patterns():
    ds = data.xor()
    assert ds.X_train.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert ds.y_train.ravel().tolist() == [0, 1, 1, 0]
    assert ds.X_train.dtype == np.float32


def test_toy_tasks_shapes_and_labels():
    rng = np.random.default_rng(0)
    th = data.threshold_task(100, rng, threshold=0.3)
    assert th.X_train.shape[1] == 1 and len(th.X_train) + len(th.X_test) == 100
    assert np.array_equal(th.y_train.ravel() == 1, th.X_train.ravel() > 0.3)
    lin = data.linear_regression(400, rng, weight=3.0, bias=1.0, noise=0.0)
    np.testing.assert_allclose(lin.y_train, 3.0 * lin.X_train + 1.0, rtol=1e-5)
    nl = data.nonlinear_regression(50, rng, noise=0.0)
    np.testing.assert_allclose(nl.y_test, data.nonlinear_function(nl.X_test), atol=1e-6)


def test_digits_split_is_stratified_and_reproducible():
    a, b = data.digits(seed=3), data.digits(seed=3)
    assert np.array_equal(a.X_test, b.X_test)
    assert not np.array_equal(a.X_test, data.digits(seed=4).X_test)
    assert a.X_train.shape[1] == 64 and a.X_train.dtype == np.float32
    assert 0 <= a.X_train.min() and a.X_train.max() <= 1
    assert len(a.X_train) + len(a.X_test) == 1797
    train_share = np.bincount(a.y_train) / len(a.y_train)
    test_share = np.bincount(a.y_test) / len(a.y_test)
    np.testing.assert_allclose(train_share, test_share, atol=0.01)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, suffix):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28)).astype(np.uint8)
    write_idx(tmp_path / f"imgs{suffix}", images)
    np.testing.assert_array_equal(load_idx(tmp_path / f"imgs{suffix}"), images)
    floats = np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3)
    write_idx(tmp_path / f"f{suffix}", floats)
    np.testing.assert_array_equal(load_idx(tmp_path / f"f{suffix}"), floats)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\x1f\x8b\x08\x08garbage", "not a valid gzip file"),
        (b"PK\x03\x04zipfile", "not an IDX file"),
        (bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + bytes(3), "truncated: header says 10"),
        (bytes([0, 0, 8, 1]) + (2).to_bytes(4, "big") + bytes(5), "longer than its header"),
        (bytes([0, 0, 8, 3]) + (2).to_bytes(4, "big"), "broken IDX header"),
        (b"", "not an IDX file"),
    ],
)
def test_corrupt_idx_names_the_file(tmp_path, payload, message):
    path = tmp_path / "broken-idx1-ubyte"
    path.write_bytes(payload)
    with pytest.raises(DataError, match=message) as info:
        load_idx(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def write_fake_mnist(folder, n_train=20, n_test=10, gz=True):
    rng = np.random.default_rng(0)
    folder.mkdir(exist_ok=True)
    ext = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}",
                  rng.integers(0, 256, (n, 28, 28)).astype(np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", (np.arange(n) % 10).astype(np.uint8))


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_reads_a_small_folder(tmp_path, gz):
    write_fake_mnist(tmp_path, gz=gz)
    ds = mnist(tmp_path)
    assert ds.X_train.shape == (20, 784) and ds.X_test.shape == (10, 784)
    assert ds.X_train.dtype == np.float32 and ds.X_train.max() <= 1.0
    assert ds.y_test.tolist() == list(range(10)) and ds.feature_shape == (28, 28)
    assert mnist(tmp_path, n_train=5, n_test=3).X_train.shape == (5, 784)


def test_mnist_missing_and_mismatched_files(tmp_path):
    with pytest.raises(DataError, match="not found"):
        mnist(tmp_path / "nowhere")
    write_fake_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\(.gz\) not found"):
        mnist(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(7, np.uint8))
    with pytest.raises(DataError, match="7 labels for 10 images"):
        mnist(tmp_path)
    with gzip.open(tmp_path / "t10k-labels-idx1-ubyte.gz", "wb") as fh:
        fh.write(b"\x00\x00\x08\x01\x00\x00\x00\x0a" + bytes(5))
    with pytest.raises(DataError, match="truncated"):
        mnist(tmp_path)


def test_one_hot_and_task_splits():
    assert data.one_hot(np.array([2, 0]), 3).tolist() == [[0, 0, 1], [1, 0, 0]]
    y = np.array([0, 1, 2, 3, 4, 5, 0, 5])
    tasks = data.class_incremental_tasks(y, classes_per_task=2)
    assert [t.tolist() for t in tasks] == [[0, 1, 6], [2, 3], [4, 5, 7]]
