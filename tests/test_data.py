"""Data sets: contents, splits, and IDX files read, written and rejected with a clear message."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurosim import data
from neurosim.data import DataError, Dataset, load_idx, mnist, write_idx
from neurosim.validation import InvalidParameterError
from tests.helpers import write_fake_mnist

# --- toy tasks ---------------------------------------------------------------------------------


def test_xor_patterns():
    ds = data.xor()
    assert ds.X_train.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert ds.y_train.tolist() == [[0], [1], [1], [0]]
    assert np.array_equal(ds.X_test, ds.X_train) and np.array_equal(ds.y_test, ds.y_train)
    assert ds.X_train.dtype == ds.y_train.dtype == np.float32
    assert ds.n_classes == 2 and ds.name == "xor"


def test_linear_regression_is_the_line_and_knows_its_parameters():
    ds = data.linear_regression(400, np.random.default_rng(0), weight=3.0, bias=1.0, noise=0.0)
    assert ds.X_train.shape == (300, 1) and ds.y_test.shape == (100, 1)
    assert ds.X_train.dtype == ds.y_train.dtype == np.float32 and ds.n_classes is None
    np.testing.assert_allclose(ds.y_train, 3.0 * ds.X_train + 1.0, rtol=1e-5, atol=1e-6)
    assert ds.params == {"weight": 3.0, "bias": 1.0, "noise": 0.0}
    assert -1 <= ds.X_train.min() and ds.X_train.max() <= 1
    # the noise has the standard deviation asked for
    noisy = data.linear_regression(4000, np.random.default_rng(1), noise=0.2)
    resid = noisy.y_train - (2.0 * noisy.X_train - 0.5)
    assert abs(resid.std() - 0.2) < 0.01


def test_threshold_task_labels():
    ds = data.threshold_task(200, np.random.default_rng(0), threshold=0.3)
    assert len(ds.X_train) + len(ds.X_test) == 200 and ds.X_train.shape[1] == 1
    for X, y in ((ds.X_train, ds.y_train), (ds.X_test, ds.y_test)):
        assert y.shape == X.shape and set(np.unique(y)) <= {0.0, 1.0}
        assert np.array_equal(y.ravel() == 1, X.ravel() > 0.3)
    assert 0 <= ds.X_train.min() and ds.X_train.max() < 1
    assert ds.n_classes == 2 and ds.params == {"threshold": 0.3}
    default = data.threshold_task(50, np.random.default_rng(0))
    assert np.array_equal(default.y_train.ravel() == 1, default.X_train.ravel() > 0.5)


def test_nonlinear_regression_target():
    ds = data.nonlinear_regression(60, np.random.default_rng(0), noise=0.0)
    assert ds.X_train.shape == (45, 2) and ds.y_train.shape == (45, 1)
    np.testing.assert_allclose(ds.y_test, data.nonlinear_function(ds.X_test), atol=1e-6)
    x = np.array([[0.5, 0.0], [0.5, 1.0], [0.0, 0.3]])
    np.testing.assert_allclose(data.nonlinear_function(x).ravel(), [1.0, -1.0, 0.0], atol=1e-12)


def test_toy_sets_reproducible_for_a_seed():
    a = data.nonlinear_regression(30, np.random.default_rng(7))
    b = data.nonlinear_regression(30, np.random.default_rng(7))
    assert np.array_equal(a.X_train, b.X_train) and np.array_equal(a.y_test, b.y_test)
    c = data.nonlinear_regression(30, np.random.default_rng(8))
    assert not np.array_equal(a.X_train, c.X_train)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda rng: data.linear_regression(1, rng), "at least 2 samples"),
        (lambda rng: data.threshold_task(10, rng, test_fraction=1.0), "test_fraction"),
        (lambda rng: data.nonlinear_regression(10, rng, noise=-1), "noise must be >= 0"),
        (lambda rng: data.threshold_task(10, rng, low=1, high=0), "low < high"),
    ],
)
def test_toy_sets_reject_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call(np.random.default_rng(0))


def test_small_split_keeps_a_sample_on_each_side():
    ds = data.linear_regression(2, np.random.default_rng(0), test_fraction=0.9)
    assert len(ds.X_train) == 1 and len(ds.X_test) == 1


def test_dataset_checks_rows():
    with pytest.raises(ValueError, match="X_test has 3 rows but y_test has 2"):
        Dataset(np.zeros((2, 1)), np.zeros(2), np.zeros((3, 1)), np.zeros(2), None, "bad")


# --- digits ------------------------------------------------------------------------------------


def test_digits_split_is_stratified_and_reproducible():
    a, b = data.digits(seed=3), data.digits(seed=3)
    assert np.array_equal(a.X_test, b.X_test) and np.array_equal(a.y_train, b.y_train)
    assert not np.array_equal(a.X_test, data.digits(seed=4).X_test)
    assert a.X_train.shape[1] == 64 and a.X_train.dtype == np.float32
    assert a.y_train.dtype == np.int64 and a.n_classes == 10 and a.feature_shape == (8, 8)
    assert a.X_train.min() == 0 and a.X_train.max() == 1
    assert len(a.X_train) + len(a.X_test) == 1797
    assert len(a.X_test) == pytest.approx(0.33 * 1797, abs=1)
    train_share = np.bincount(a.y_train) / len(a.y_train)
    test_share = np.bincount(a.y_test) / len(a.y_test)
    np.testing.assert_allclose(train_share, test_share, atol=0.01)


def test_digits_takes_a_generator():
    a = data.digits(np.random.default_rng(5), test_fraction=0.2)
    b = data.digits(np.random.default_rng(5), test_fraction=0.2)
    assert np.array_equal(a.y_test, b.y_test) and len(a.X_test) == 360


# --- IDX files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, suffix):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28)).astype(np.uint8)
    write_idx(tmp_path / f"imgs{suffix}", images)
    np.testing.assert_array_equal(load_idx(tmp_path / f"imgs{suffix}"), images)
    labels = np.arange(7, dtype=np.uint8)
    write_idx(tmp_path / f"labels{suffix}", labels)
    np.testing.assert_array_equal(load_idx(tmp_path / f"labels{suffix}"), labels)
    floats = np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3)
    write_idx(tmp_path / f"f{suffix}", floats)
    back = load_idx(str(tmp_path / f"f{suffix}"))
    np.testing.assert_array_equal(back, floats)
    assert back.dtype == np.float32 and back.dtype.isnative


def test_idx_bytes_follow_the_format(tmp_path):
    write_idx(tmp_path / "x", np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint8))
    assert (tmp_path / "x").read_bytes() == bytes(
        [0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6]
    )
    write_idx(tmp_path / "x.gz", np.array([258], dtype=np.int32))
    assert gzip.decompress((tmp_path / "x.gz").read_bytes()) == bytes(
        [0, 0, 0x0C, 1, 0, 0, 0, 1, 0, 0, 1, 2]
    )


def test_write_idx_rejects_what_idx_cannot_hold(tmp_path):
    with pytest.raises(ValueError, match="cannot store dtype int64"):
        write_idx(tmp_path / "x", np.arange(3))
    with pytest.raises(ValueError, match="shape"):
        write_idx(tmp_path / "x", np.uint8(3))


def _header(ndim, *dims, code=8):
    return bytes([0, 0, code, ndim]) + b"".join(d.to_bytes(4, "big") for d in dims)


@pytest.mark.parametrize(
    ("name", "payload", "message"),
    [
        ("zip-idx1-ubyte", b"PK\x03\x04zipfile", r"not an IDX file \(magic 0x504b0304\)"),
        ("type-idx1-ubyte", _header(1, 3, code=0x07) + bytes(3), r"not an IDX file \(magic 0x"),
        ("empty-idx1-ubyte", b"", "not an IDX file .*empty"),
        (
            "short-idx3-ubyte",
            _header(3, 60000, 28, 28) + bytes(1234),
            "truncated: header says 60000x28x28 = 47040000 bytes, found 1234",
        ),
        ("long-idx1-ubyte", _header(1, 2) + bytes(5), "longer than its header says"),
        ("dims-idx3-ubyte", _header(3, 2), r"broken IDX header \(3 dimensions"),
        ("zero-idx1-ubyte", _header(0), r"broken IDX header \(0 dimensions\)"),
        ("junk-idx1-ubyte.gz", b"\x1f\x8b\x08\x08garbage", "not a valid gzip file"),
        ("plain-idx1-ubyte.gz", _header(1, 1) + bytes(1), "not a valid gzip file"),
        (
            "cut-idx1-ubyte.gz",
            gzip.compress(_header(1, 400) + bytes(400), mtime=0)[:30],
            "not a valid gzip file",
        ),
        ("unnamed-gzip-idx1-ubyte", b"\x1f\x8b\x08\x08garbage", "not a valid gzip file"),
    ],
)
def test_corrupt_idx_names_the_file(tmp_path, name, payload, message):
    path = tmp_path / name
    path.write_bytes(payload)
    with pytest.raises(DataError, match=message) as info:
        load_idx(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_gzip_with_a_bad_checksum_is_rejected(tmp_path):
    blob = bytearray(gzip.compress(_header(1, 4) + bytes(range(4))))
    blob[-8] ^= 0xFF  # the CRC32 of the trailer
    path = tmp_path / "crc-idx1-ubyte.gz"
    path.write_bytes(bytes(blob))
    with pytest.raises(DataError, match=f"{path}.*not a valid gzip file"):
        load_idx(path)


def test_missing_idx_file(tmp_path):
    with pytest.raises(DataError, match="nothing-idx1-ubyte not found"):
        load_idx(tmp_path / "nothing-idx1-ubyte")


def test_gzip_without_the_suffix_is_read(tmp_path):
    path = tmp_path / "labels-idx1-ubyte"
    path.write_bytes(gzip.compress(_header(1, 3) + bytes([1, 2, 3])))
    assert load_idx(path).tolist() == [1, 2, 3]


# --- MNIST -------------------------------------------------------------------------------------


def write_fake_mnist_small(folder, gz=True):
    return write_fake_mnist(folder, n_train=20, n_test=10, gz=gz)


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_reads_a_small_folder(tmp_path, gz):
    write_fake_mnist_small(tmp_path, gz=gz)
    ds = mnist(tmp_path)
    assert ds.X_train.shape == (20, 784) and ds.X_test.shape == (10, 784)
    assert ds.X_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.X_train.min() == 0.0 and ds.X_train.max() == 1.0
    assert ds.y_test.tolist() == list(range(10)) and ds.feature_shape == (28, 28)
    assert ds.n_classes == 10 and ds.name == "mnist"
    raw = load_idx(tmp_path / f"train-images-idx3-ubyte{'.gz' if gz else ''}")
    np.testing.assert_allclose(ds.X_train[3], raw[3].ravel() / 255.0, rtol=1e-6)
    small = mnist(str(tmp_path), n_train=5, n_test=3)
    assert small.X_train.shape == (5, 784) and small.y_test.tolist() == [0, 1, 2]
    np.testing.assert_array_equal(small.X_train, ds.X_train[:5])
    # asking for more than the files hold gives what they hold
    assert mnist(tmp_path, n_train=10**6).X_train.shape == (20, 784)


def test_mnist_dotted_file_names(tmp_path):
    write_fake_mnist_small(tmp_path, gz=False)
    for path in tmp_path.iterdir():
        path.rename(tmp_path / path.name.replace("-idx", ".idx"))
    assert mnist(tmp_path).X_test.shape == (10, 784)


def test_mnist_missing_folder(tmp_path):
    with pytest.raises(DataError, match=f"MNIST folder {tmp_path / 'nowhere'} not found"):
        mnist(tmp_path / "nowhere")


@pytest.mark.parametrize("stem", sorted(data.MNIST_FILES.values()))
def test_mnist_names_the_missing_file(tmp_path, stem):
    write_fake_mnist_small(tmp_path)
    (tmp_path / f"{stem}.gz").unlink()
    with pytest.raises(DataError) as info:
        mnist(tmp_path)
    assert str(info.value).startswith(f"MNIST file {stem}(.gz) not found in {tmp_path};")


def _expect(tmp_path, message, file):
    with pytest.raises(DataError, match=message) as info:
        mnist(tmp_path)
    text = str(info.value)
    assert str(tmp_path / file) in text and "\n" not in text


def test_mnist_label_count_mismatch(tmp_path):
    write_fake_mnist_small(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(7, np.uint8))
    _expect(tmp_path, "has 7 labels for 10 images", "t10k-labels-idx1-ubyte.gz")


def test_mnist_wrong_dimensions(tmp_path):
    write_fake_mnist_small(tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((20, 784), np.uint8))
    _expect(
        tmp_path,
        r"shape \(n, rows, cols\), has uint8 of shape \(20, 784\)",
        "train-images-idx3-ubyte.gz",
    )
    write_fake_mnist_small(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros((20, 1), np.uint8))
    _expect(tmp_path, r"labels of shape \(n,\)", "train-labels-idx1-ubyte.gz")


def test_mnist_wrong_types_and_labels(tmp_path):
    write_fake_mnist_small(tmp_path)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((10, 28, 28), np.float32))
    _expect(tmp_path, "should hold uint8 images", "t10k-images-idx3-ubyte.gz")
    write_fake_mnist_small(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.full(20, 10, np.uint8))
    _expect(tmp_path, r"has label 10 \(expected 0-9\)", "train-labels-idx1-ubyte.gz")


def test_mnist_train_and_test_image_sizes_differ(tmp_path):
    write_fake_mnist_small(tmp_path)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((10, 8, 8), np.uint8))
    _expect(tmp_path, r"holds \(28, 28\) images", "train-images-idx3-ubyte.gz")


def test_mnist_corrupt_files(tmp_path):
    write_fake_mnist_small(tmp_path)
    with gzip.open(tmp_path / "t10k-labels-idx1-ubyte.gz", "wb") as fh:
        fh.write(_header(1, 10) + bytes(5))
    _expect(
        tmp_path, "is truncated: header says 10 = 10 bytes, found 5", "t10k-labels-idx1-ubyte.gz"
    )
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b not really gzip")
    _expect(tmp_path, "not a valid gzip file", "train-images-idx3-ubyte.gz")


def test_mnist_negative_count(tmp_path):
    write_fake_mnist_small(tmp_path)
    with pytest.raises(DataError, match="n_test must be >= 0"):
        mnist(tmp_path, n_test=-1)


# --- helpers and the table ---------------------------------------------------------------------


def test_one_hot():
    out = data.one_hot(np.array([2, 0]), 3)
    assert out.tolist() == [[0, 0, 1], [1, 0, 0]] and out.dtype == np.float32
    assert data.one_hot(np.array([], dtype=np.int64), 4).shape == (0, 4)
    assert data.one_hot([1], 2, dtype="float64").dtype == np.float64
    for bad in ([3], [-1], [0.5]):
        with pytest.raises(ValueError, match=r"integer classes in \[0, 3\)"):
            data.one_hot(np.array(bad), 3)
    with pytest.raises(ValueError, match="shape"):
        data.one_hot(np.zeros((2, 1), np.int64), 3)


def test_class_incremental_tasks():
    y = np.array([0, 1, 2, 3, 4, 5, 0, 5])
    tasks = data.class_incremental_tasks(y, classes_per_task=2)
    assert [t.tolist() for t in tasks] == [[0, 1, 6], [2, 3], [4, 5, 7]]
    assert data.task_classes(y, 2) == [(0, 1), (2, 3), (4, 5)]
    assert data.task_classes(y, 4) == [(0, 1, 2, 3), (4, 5)]
    mnist_like = np.arange(100) % 10
    split = data.class_incremental_tasks(mnist_like)
    assert len(split) == 5 and all(len(t) == 20 for t in split)
    assert np.array_equal(np.sort(np.concatenate(split)), np.arange(100))
    assert set(mnist_like[split[4]]) == {8, 9}
    with pytest.raises(ValueError, match="classes_per_task must be >= 1"):
        data.class_incremental_tasks(y, classes_per_task=0)


def test_datasets_table():
    assert data.get_loader("xor") is data.xor
    assert set(data.DATASETS) >= {"xor", "digits", "mnist", "threshold_task"}
    with pytest.raises(ValueError, match="unknown dataset 'foo'; choose from xor, "):
        data.get_loader("foo")


# --- split sizes: refused before anything is allocated -----------------------------------------


def test_split_sizes_follow_the_splitters():
    # the toy split: round(0.25 * 12) = 3 test; round(0.5 * 9) = 4 validation (half to even)
    assert data.split_sizes(12, 0.25, 0.5) == (5, 4, 3)
    ds = data.carve_validation(data.nonlinear_regression(12, np.random.default_rng(0)), 0.5)
    assert (len(ds.X_train), len(ds.X_val), len(ds.X_test)) == (5, 4, 3)
    # stratified, as scikit-learn rounds: ceil(0.33 * 1797) = 594 test, ceil(0.2 * 1203) = 241
    assert data.split_sizes(1797, 0.33, 0.2, stratified=True) == (962, 241, 594)
    d = data.digits(seed=0, val_fraction=0.2)
    assert (len(d.X_train), len(d.X_val), len(d.X_test)) == (962, 241, 594)
    # a fixed test set (IDX files): only the validation part is carved
    assert data.split_sizes(100, None, 0.1, stratified=True) == (90, 10, 0)


def test_carve_validation_takes_the_first_rows():
    """The rows mlp_regression held out before carve_validation existed: its metrics stay."""
    ds = data.nonlinear_regression(40, np.random.default_rng(1))
    out = data.carve_validation(ds, 0.2)
    n_val = 6  # round(0.2 * 30)
    np.testing.assert_array_equal(out.X_val, ds.X_train[:n_val])
    np.testing.assert_array_equal(out.y_train, ds.y_train[n_val:])
    assert data.carve_validation(ds, 0.0) is ds


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        # issue 15: mlp_regression --quick val_fraction=0.99 n_samples=12 -> "X has no rows"
        ((12, 0.25, 0.99), {}, "n=12, test_fraction=0.25, val_fraction=0.99: 0 of 12 samples "
         "left to train on (3 test, 9 validation), need >= 2: lower val_fraction, or lower "
         "test_fraction, or raise n"),
        # and 1 sample trained on silently
        ((12, 0.25, 0.9), {}, "1 of 12 samples left to train on (3 test, 8 validation)"),
        ((3, 0.5, 0.3), {}, "a validation split of 0 of the 1 training samples (n=3) is too "
         "small, need >= 1: raise val_fraction, or raise n, or set it to 0 for none"),
        ((30, 0.1), {"n_classes": 10}, "a test split of 3 of n=30 is too small, need >= 10 (one "
         "of each of the 10 classes): raise test_fraction, or raise n"),
        ((100, None, 0.05), {"n_classes": 10, "keys": {"n": "n_train",
                                                        "val_fraction": "val_fraction"}},
         "a validation split of 5 of the 100 training samples (n_train=100) is too small, "
         "need >= 10"),
        ((25, None, 0.65), {"n_classes": 10, "keys": {"val_fraction": "val_fraction"}},
         "val_fraction=0.65: 8 of 25 samples left to train on (17 validation), need >= 10 (one "
         "of each of the 10 classes): lower val_fraction"),
    ],
)
def test_check_split_names_the_keys(args, kwargs, message):
    with pytest.raises(InvalidParameterError) as info:
        data.check_split(*args, **kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_check_split_passes_workable_splits():
    assert data.check_split(12, 0.25, 0.5) == (5, 4, 3)
    with pytest.raises(InvalidParameterError, match="need >= 2"):
        data.check_split(2, 0.5)  # one sample is no training set
    assert data.check_split(100, None, 0.1, n_classes=10) == (90, 10, 0)
    with pytest.raises(InvalidParameterError,
                       match="val_fraction=0.6: 0 of 1 samples left to train on"):
        data.carve_validation(data.linear_regression(2, np.random.default_rng(0)), 0.6)


def test_mlp_regression_config_refuses_before_allocating():
    from neurosim.experiments.mlp_regression import Config

    with pytest.raises(InvalidParameterError) as info:
        Config(n_samples=12, val_fraction=0.99)
    assert str(info.value) == (
        "n_samples=12, val_fraction=0.99: 0 of 12 samples left to train on (3 test, 9 "
        "validation), need >= 2: lower val_fraction, or raise n_samples")
    with pytest.raises(InvalidParameterError, match="1 of 12 samples left to train on"):
        Config(n_samples=12, val_fraction=0.9)
    assert Config(n_samples=12, val_fraction=0.5).n_samples == 12
    Config()  # the defaults: 1000 -> 600 train, 150 validation, 250 test


def test_mnist_config_checks_dataset_and_validation_split():
    from neurosim.experiments.mnist import Config

    assert Config().dataset == "mnist" and Config().data_dir == ""
    with pytest.raises(InvalidParameterError, match="unknown dataset 'digits'; choose from "
                       "fashion_mnist, kmnist, mnist"):
        Config(dataset="digits")
    with pytest.raises(InvalidParameterError, match=r"validation split of 2 of the 20 training "
                       r"samples \(n_train=20\) is too small, need >= 10"):
        Config(n_train=20, val_fraction=0.1)
    assert Config(n_train=200, val_fraction=0.1).val_fraction == 0.1


@settings(max_examples=60, deadline=None, derandomize=True)
@given(n=st.integers(2, 80), test_fraction=st.floats(0.05, 0.9),
       val_fraction=st.sampled_from([0.0, 0.1, 0.3, 0.6]))
def test_split_sizes_are_the_sizes_the_splitters_make(n, test_fraction, val_fraction):
    """check_split's arithmetic is the splitters' own: what it passes, they cut as it says."""
    ds = data.nonlinear_regression(n, np.random.default_rng(0), test_fraction=test_fraction)
    try:
        sizes = data.check_split(n, test_fraction, val_fraction)
    except InvalidParameterError:
        sizes = None
    n_train, n_val, n_test = data.split_sizes(n, test_fraction, val_fraction)
    assert len(ds.X_test) == n_test
    if sizes is None:
        assert n_train < data.MIN_TRAIN or (val_fraction and n_val < 1)
        if val_fraction:  # the toy splitter itself keeps its 1-and-1 split of 2 samples
            with pytest.raises(InvalidParameterError):
                data.carve_validation(ds, val_fraction)
        return
    out = data.carve_validation(ds, val_fraction)
    assert sizes == (len(out.X_train), 0 if out.X_val is None else len(out.X_val), n_test)
    assert len(out.X_train) >= data.MIN_TRAIN


@settings(max_examples=40, deadline=None, derandomize=True)
@given(n=st.integers(20, 200), fraction=st.floats(0.02, 0.9))
def test_stratified_sizes_are_scikit_learns(n, fraction):
    y = np.arange(n) % 5
    X = np.zeros((n, 1))
    n_train, _, n_test = data.split_sizes(n, fraction, stratified=True)
    try:
        data.check_split(n, fraction, n_classes=5)
    except InvalidParameterError:
        assert min(n_train, n_test) < 5
        return
    X_tr, X_te, _, _ = data.stratified_split(X, y, fraction, seed=0)
    assert (len(X_tr), len(X_te)) == (n_train, n_test)


def test_test_split_is_one_for_every_seed_and_never_holds_validation_digits():
    """Issue 16: every seed re-split the data, so one seed's validation digits were another's
    test digits. Now the test split is fixed; seeds only move the validation split."""
    runs = [data.load_dataset("digits", seed=s, val_fraction=0.2) for s in (0, 1, 7)]
    for ds in runs[1:]:
        np.testing.assert_array_equal(ds.X_test, runs[0].X_test)
        np.testing.assert_array_equal(ds.y_test, runs[0].y_test)
    test_rows = {r.tobytes() for r in runs[0].X_test}
    for ds in runs:
        assert not any(r.tobytes() in test_rows for r in ds.X_val)
    assert not np.array_equal(runs[0].X_val, runs[1].X_val)  # seeds still differ
