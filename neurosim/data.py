"""Data sets: XOR, toy regression / classification, sklearn digits, MNIST IDX files, task splits.

Everything is made or read locally: nothing is downloaded at run time. Pixels are scaled to
[0, 1] and stored as float32. Randomness comes from an explicit `np.random.Generator` (or, where
scikit-learn needs one, an integer seed).
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class DataError(ValueError):
    """A data file is missing, unreadable or corrupt; the message names the file."""


@dataclass(frozen=True)
class Dataset:
    """A supervised data set split into train and test parts.

    Attributes
    ----------
    X_train : ndarray of shape (n_train, n_features)
    y_train : ndarray of shape (n_train,) for classes, (n_train, n_outputs) for regression
    X_test : ndarray of shape (n_test, n_features)
    y_test : ndarray like `y_train`
    n_classes : int or None
        Number of classes; None for a regression.
    name : str
    feature_shape : tuple of int, optional
        How a feature vector is drawn as an image, e.g. (8, 8) for digits.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int | None
    name: str
    feature_shape: tuple[int, ...] | None = None


# --- toy tasks ---------------------------------------------------------------------------------


def xor(dtype: str = "float32") -> Dataset:
    """The four XOR patterns; the test set is the training set (there is nothing else).

    Targets have shape (4, 1) so an MSE-trained single sigmoid output can use them directly.
    """
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=dtype)
    y = np.array([[0], [1], [1], [0]], dtype=dtype)
    return Dataset(X, y, X.copy(), y.copy(), n_classes=2, name="xor")


def linear_regression(n: int, rng: np.random.Generator, *, weight: float = 2.0,
                      bias: float = -0.5, noise: float = 0.1, test_fraction: float = 0.25,
                      dtype: str = "float32") -> Dataset:
    """``y = weight * x + bias + noise``, x uniform in [-1, 1]; shapes (n, 1)."""
    x = rng.uniform(-1, 1, size=(n, 1))
    y = weight * x + bias + noise * rng.standard_normal((n, 1))
    return _split(x.astype(dtype), y.astype(dtype), test_fraction, rng, None, "linear_regression")


def threshold_task(n: int, rng: np.random.Generator, *, threshold: float = 0.5,
                   test_fraction: float = 0.25, dtype: str = "float32") -> Dataset:
    """The 1-D threshold task: x uniform in [0, 1], class 1 where ``x > threshold``.

    ``y`` has shape (n, 1) (0/1 floats) for a single sigmoid output.
    """
    x = rng.uniform(0, 1, size=(n, 1))
    y = (x > threshold).astype(dtype)
    return _split(x.astype(dtype), y, test_fraction, rng, None, "threshold_task")


def nonlinear_function(X: np.ndarray) -> np.ndarray:
    """The regression target ``sin(pi x1) * cos(pi x2)`` of shape (n, 1)."""
    return (np.sin(np.pi * X[:, 0]) * np.cos(np.pi * X[:, 1]))[:, None]


def nonlinear_regression(n: int, rng: np.random.Generator, *, noise: float = 0.1,
                         test_fraction: float = 0.25, dtype: str = "float32") -> Dataset:
    """``y = sin(pi x1) cos(pi x2) + noise`` on x uniform in [-1, 1]^2; y of shape (n, 1)."""
    X = rng.uniform(-1, 1, size=(n, 2))
    y = nonlinear_function(X) + noise * rng.standard_normal((n, 1))
    return _split(X.astype(dtype), y.astype(dtype), test_fraction, rng, None,
                  "nonlinear_regression")


def _split(X, y, test_fraction, rng, n_classes, name) -> Dataset:
    order = rng.permutation(len(X))
    n_test = max(1, int(round(test_fraction * len(X))))
    test, train = order[:n_test], order[n_test:]
    return Dataset(X[train], y[train], X[test], y[test], n_classes, name)


# --- sklearn digits ----------------------------------------------------------------------------


def digits(seed: int = 0, test_fraction: float = 0.33, dtype: str = "float32") -> Dataset:
    """scikit-learn's 1,797 handwritten digits (8x8, pixels 0..16 scaled to [0, 1]).

    The train/test split is stratified by class and fixed by `seed`.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    X = (bunch.data / 16.0).astype(dtype)
    y = bunch.target.astype(np.int64)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=test_fraction, stratify=y,
                                              random_state=seed)
    return Dataset(X_tr, y_tr, X_te, y_te, n_classes=10, name="digits", feature_shape=(8, 8))


# --- MNIST from IDX files ----------------------------------------------------------------------

_IDX_TYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None
    if path.suffix == ".gz" or raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{path} is not a valid gzip file ({exc})") from None
    return raw


def load_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (plain or ``.gz``) into an array, checking its header against its size.

    Raises
    ------
    DataError
        One line naming the file: missing, not gzip, bad magic number, truncated, too long.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        magic = raw[:4].hex() if raw else "empty"
        raise DataError(f"{path} is not an IDX file (magic 0x{magic})")
    dtype, ndim = _IDX_TYPES[raw[2]], raw[3]
    if ndim < 1 or len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path} has a broken IDX header ({ndim} dimensions)")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    expected = int(np.prod(shape)) * dtype.itemsize
    found = len(raw) - 4 - 4 * ndim
    if found != expected:
        dims = "x".join(map(str, shape))
        what = "truncated" if found < expected else "longer than its header says"
        raise DataError(f"{path} is {what}: header says {dims} = {expected} bytes, found {found}")
    values = np.frombuffer(raw, dtype, offset=4 + 4 * ndim).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write `array` as an IDX file, gzip-compressed when `path` ends in ``.gz``."""
    path = Path(path)
    array = np.asarray(array)
    codes = {np.dtype(v).newbyteorder("="): k for k, v in _IDX_TYPES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"IDX cannot store dtype {array.dtype}")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    body = header + array.astype(_IDX_TYPES[code]).tobytes()
    path.write_bytes(gzip.compress(body) if path.suffix == ".gz" else body)


MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def find_idx(folder: Path, stem: str) -> Path:
    """``folder/stem`` or ``folder/stem.gz`` (also the ``stem.idx3-ubyte`` dot variant)."""
    candidates = [stem, stem + ".gz", stem.replace("-idx", ".idx"),
                  stem.replace("-idx", ".idx") + ".gz"]
    for name in candidates:
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"MNIST file {stem}(.gz) not found in {folder}; put the four MNIST IDX "
                    f"files there or pass data_dir=DIR")


def mnist(data_dir: str | Path, n_train: int | None = None, n_test: int | None = None,
          dtype: str = "float32") -> Dataset:
    """MNIST from its four IDX files in `data_dir`; pixels scaled to [0, 1], images flattened.

    `n_train` / `n_test` keep only the first images of each split (all when None).
    """
    folder = Path(data_dir).expanduser()
    if not folder.is_dir():
        raise DataError(f"MNIST folder {folder} not found; pass data_dir=DIR holding the four "
                        f"IDX files (train-images-idx3-ubyte.gz, ...)")
    arrays = {k: load_idx(find_idx(folder, stem)) for k, stem in MNIST_FILES.items()}
    out = {}
    for split, limit in (("train", n_train), ("test", n_test)):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        stem = MNIST_FILES[f"{split}_images"]
        if images.ndim != 3:
            raise DataError(f"{stem} in {folder} should hold 3-D images, has shape {images.shape}")
        if labels.ndim != 1 or len(labels) != len(images):
            raise DataError(f"{MNIST_FILES[f'{split}_labels']} in {folder} has {len(labels)} "
                            f"labels for {len(images)} images")
        if labels.size and labels.max() > 9:
            raise DataError(f"{MNIST_FILES[f'{split}_labels']} in {folder} has label "
                            f"{labels.max()} (expected 0-9)")
        images, labels = images[:limit], labels[:limit]
        out[split] = (images.reshape(len(images), -1).astype(dtype) / 255.0,
                      labels.astype(np.int64))
    shape = arrays["train_images"].shape[1:]
    return Dataset(*out["train"], *out["test"], n_classes=10, name="mnist",
                   feature_shape=tuple(int(s) for s in shape))


# --- helpers -----------------------------------------------------------------------------------


def one_hot(y: np.ndarray, n_classes: int, dtype: str = "float32") -> np.ndarray:
    """Class indices of shape (n,) -> one-hot rows of shape (n, n_classes)."""
    out = np.zeros((len(y), n_classes), dtype=dtype)
    out[np.arange(len(y)), np.asarray(y, dtype=np.int64)] = 1
    return out


def class_incremental_tasks(y: np.ndarray, classes_per_task: int = 2) -> list[np.ndarray]:
    """Indices of each task of a class-incremental split: classes 0-1, then 2-3, ...

    Returns one index array per task, in class order (the sleep experiment's 5 x 2 MNIST split).
    """
    classes = np.unique(y)
    groups = [classes[k: k + classes_per_task] for k in range(0, len(classes), classes_per_task)]
    return [np.flatnonzero(np.isin(y, g)) for g in groups]
