"""Data sets: XOR, toy regression / classification, sklearn digits, MNIST-class image sets by
name (fetched once into a cache with pooch), IDX files, splits and their sizes, task splits.

The toy sets are made in memory and digits ships with scikit-learn; ``mnist``, ``fashion_mnist``
and ``kmnist`` are read from a folder of the four IDX files (``data_dir``) or fetched on first use
into a cache (`cache_root`) and checked against their published SHA256 (`load_dataset`).
Features are float32 by default and pixels are scaled to [0, 1]. Randomness comes from an
explicit `np.random.Generator` (or, where scikit-learn needs one, an integer seed).

A missing, corrupt or undownloadable data file raises `DataError` (a `ValueError`) with one line
naming the file and what is wrong; the runner turns it into an exit status of 2 without a
traceback. Split sizes that leave a part (train, validation, test) too small raise
`InvalidParameterError` naming the keys to change (`check_split`).
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import math
import os
import re
import sys
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np

from neurosim.validation import InvalidParameterError, lookup

__all__ = [
    "DATASETS",
    "IMAGE_SETS",
    "MIN_TRAIN",
    "REMOTE_SETS",
    "DataError",
    "Dataset",
    "MNIST_FILES",
    "RemoteSet",
    "cache_root",
    "carve_validation",
    "check_split",
    "class_incremental_tasks",
    "digits",
    "fetch",
    "find_idx",
    "get_loader",
    "linear_regression",
    "load_dataset",
    "load_idx",
    "load_images",
    "mnist",
    "nonlinear_function",
    "nonlinear_regression",
    "one_hot",
    "stratified_split",
    "task_classes",
    "threshold_task",
    "write_idx",
    "xor",
]


class DataError(ValueError):
    """A data file is missing, unreadable or corrupt; the message names the file."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """A supervised data set split into train and test parts.

    Attributes
    ----------
    X_train : ndarray of shape (n_train, n_features)
    y_train : ndarray of shape (n_train,) of int64 class indices, or (n_train, n_outputs) of
        floats for regression and single-sigmoid (0/1) targets
    X_test : ndarray of shape (n_test, n_features)
    y_test : ndarray like `y_train`, with n_test rows
    n_classes : int or None
        Number of classes; None for a regression.
    name : str
        The data set's name in `DATASETS`.
    feature_shape : tuple of int or None
        How one feature vector is drawn as an image, e.g. (8, 8) for digits, (28, 28) for MNIST.
    params : dict of str to float
        The generating parameters of a synthetic set (e.g. ``weight``, ``bias`` and ``noise`` of
        `linear_regression`), so an experiment can check what a model recovered.
    X_val, y_val : ndarray or None
        A validation split carved from the training data (`stratified_split`), for choosing
        settings without touching the test split; None when none was asked for.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int | None
    name: str
    feature_shape: tuple[int, ...] | None = None
    params: dict[str, float] = field(default_factory=dict)
    X_val: np.ndarray | None = None
    y_val: np.ndarray | None = None

    def __post_init__(self):
        if (self.X_val is None) != (self.y_val is None):
            raise ValueError(f"{self.name}: give both X_val and y_val, or neither")
        for split in ("train", "val", "test"):
            X, y = getattr(self, f"X_{split}"), getattr(self, f"y_{split}")
            if X is None:
                continue
            if len(X) != len(y):
                raise ValueError(
                    f"{self.name}: X_{split} has {len(X)} rows but y_{split} has {len(y)}"
                )
        if self.n_classes is not None and self.n_classes < 1:
            raise ValueError(f"{self.name}: n_classes must be >= 1 or None, got {self.n_classes}")


# --- toy tasks ---------------------------------------------------------------------------------


def xor(dtype: str = "float32") -> Dataset:
    """The four XOR patterns; the test set is the training set (there is nothing else).

    Returns
    -------
    Dataset
        ``X_train`` of shape (4, 2) holding (0, 0), (0, 1), (1, 0), (1, 1) and ``y_train`` of
        shape (4, 1) holding 0, 1, 1, 0, so an MSE- or BCE-trained single sigmoid output can use
        them directly. ``X_test`` / ``y_test`` are copies of the training arrays.
    """
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=dtype)
    y = np.array([[0], [1], [1], [0]], dtype=dtype)
    return Dataset(X, y, X.copy(), y.copy(), n_classes=2, name="xor")


def linear_regression(
    n: int,
    rng: np.random.Generator,
    *,
    weight: float = 2.0,
    bias: float = -0.5,
    noise: float = 0.1,
    test_fraction: float = 0.25,
    dtype: str = "float32",
) -> Dataset:
    r"""Noisy samples of a line, for checking that one linear neuron recovers it.

    .. math:: y = w x + b + \sigma \varepsilon,
       \quad x \sim U[-1, 1],\ \varepsilon \sim N(0, 1)

    Parameters
    ----------
    n : int
        Samples in total (>= 2), split into train and test parts.
    rng : numpy.random.Generator
    weight, bias : float
        The generating line; returned in ``params`` for comparison with the fit.
    noise : float
        Standard deviation sigma of the Gaussian noise (>= 0).
    test_fraction : float
        Share of the samples held out for testing, in (0, 1).

    Returns
    -------
    Dataset
        X of shape (n_split, 1), y of shape (n_split, 1); ``n_classes`` None;
        ``params = {"weight": w, "bias": b, "noise": sigma}``.
    """
    _check_noise(noise)
    _check_split(n, test_fraction)
    x = rng.uniform(-1, 1, size=(n, 1))
    y = weight * x + bias + noise * rng.standard_normal((n, 1))
    params = {"weight": float(weight), "bias": float(bias), "noise": float(noise)}
    return _split(
        x.astype(dtype), y.astype(dtype), test_fraction, rng, None, "linear_regression", params
    )


def threshold_task(
    n: int,
    rng: np.random.Generator,
    *,
    threshold: float = 0.5,
    low: float = 0.0,
    high: float = 1.0,
    test_fraction: float = 0.25,
    dtype: str = "float32",
) -> Dataset:
    """The 1-D threshold task: points on a line, class 1 above a threshold.

    The logistic-regression toy of the sleep article: one sigmoid neuron must learn
    ``w x + b = 0`` at ``x = threshold``.

    Parameters
    ----------
    n : int
        Samples in total (>= 2).
    rng : numpy.random.Generator
    threshold : float
        Class boundary; class 1 where ``x > threshold``.
    low, high : float
        Inputs are uniform in [low, high).
    test_fraction : float
        Share of the samples held out for testing, in (0, 1).

    Returns
    -------
    Dataset
        X of shape (n_split, 1); y of shape (n_split, 1) of 0/1 floats (a single sigmoid
        output's target); ``n_classes`` 2; ``params = {"threshold": threshold}``.
    """
    if not low < high:
        raise ValueError(f"threshold_task needs low < high, got low={low}, high={high}")
    _check_split(n, test_fraction)
    x = rng.uniform(low, high, size=(n, 1))
    y = (x > threshold).astype(dtype)
    params = {"threshold": float(threshold)}
    return _split(x.astype(dtype), y, test_fraction, rng, 2, "threshold_task", params)


def nonlinear_function(X: np.ndarray) -> np.ndarray:
    r"""The noise-free target of `nonlinear_regression`.

    .. math:: f(x_1, x_2) = \sin(\pi x_1) \cos(\pi x_2)

    Parameters
    ----------
    X : ndarray of shape (n_samples, 2)

    Returns
    -------
    ndarray of shape (n_samples, 1)
    """
    return (np.sin(np.pi * X[:, 0]) * np.cos(np.pi * X[:, 1]))[:, None]


def nonlinear_regression(
    n: int,
    rng: np.random.Generator,
    *,
    noise: float = 0.1,
    test_fraction: float = 0.25,
    dtype: str = "float32",
) -> Dataset:
    r"""A noisy nonlinear function of two inputs, for an MLP regression.

    .. math:: y = \sin(\pi x_1) \cos(\pi x_2) + \sigma \varepsilon,
       \quad x \sim U[-1, 1]^2,\ \varepsilon \sim N(0, 1)

    Parameters
    ----------
    n : int
        Samples in total (>= 2).
    rng : numpy.random.Generator
    noise : float
        Standard deviation sigma of the Gaussian noise (>= 0).
    test_fraction : float
        Share of the samples held out for testing, in (0, 1).

    Returns
    -------
    Dataset
        X of shape (n_split, 2), y of shape (n_split, 1); ``n_classes`` None;
        ``params = {"noise": sigma}``. `nonlinear_function` gives the noise-free target.
    """
    _check_noise(noise)
    _check_split(n, test_fraction)
    X = rng.uniform(-1, 1, size=(n, 2))
    y = nonlinear_function(X) + noise * rng.standard_normal((n, 1))
    params = {"noise": float(noise)}
    return _split(
        X.astype(dtype), y.astype(dtype), test_fraction, rng, None, "nonlinear_regression", params
    )


def _check_noise(noise: float) -> None:
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0, got {noise}")


def _check_split(n: int, test_fraction: float) -> None:
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if n < 2:
        raise ValueError(f"need at least 2 samples for a train/test split, got n={n}")


def _split(X, y, test_fraction, rng, n_classes, name, params) -> Dataset:
    order = rng.permutation(len(X))
    # at least one sample on each side, whatever the rounding
    n_test = min(len(X) - 1, max(1, int(round(test_fraction * len(X)))))
    test, train = order[:n_test], order[n_test:]
    return Dataset(X[train], y[train], X[test], y[test], n_classes, name, params=params)


# --- split sizes: checked where the split is defined, before anything is allocated -------------

MIN_TRAIN = 2  # a fit on one sample drives its loss to 0 and says nothing about the task


def split_sizes(
    n: int, test_fraction: float | None, val_fraction: float = 0.0, *, stratified: bool = False
) -> tuple[int, int, int]:
    """The sizes (n_train, n_val, n_test) that this module's splitters give `n` samples.

    Parameters
    ----------
    n : int
        Samples to split.
    test_fraction : float or None
        Share held out for testing; None when the test part is a separate, fixed set (the IDX
        sets' t10k files) and only the validation part is carved from `n`.
    val_fraction : float
        Share of what is left after the test part held out for validation (0: none).
    stratified : bool
        Round like `stratified_split` (scikit-learn: the held-out part is ``ceil(f * n)``)
        instead of like the toy sets' shuffled split and `carve_validation` (``round(f * n)``,
        the toy test part at least 1 and at most n - 1).

    Returns
    -------
    (n_train, n_val, n_test) : tuple of int
    """
    if test_fraction is None:
        n_test = 0
    elif stratified:
        n_test = math.ceil(test_fraction * n)
    else:
        n_test = min(n - 1, max(1, int(round(test_fraction * n))))
    rest = n - n_test
    if not val_fraction:
        n_val = 0
    elif stratified:
        n_val = math.ceil(val_fraction * rest)
    else:
        n_val = int(round(val_fraction * rest))
    return rest - n_val, n_val, n_test


def check_split(
    n: int,
    test_fraction: float | None,
    val_fraction: float = 0.0,
    *,
    n_classes: int | None = None,
    keys: Mapping[str, str] | None = None,
) -> tuple[int, int, int]:
    """Refuse a split that leaves a part too small, naming the keys to change.

    Every part gets a minimum: the training part at least `MIN_TRAIN` samples, and, for a
    stratified split (`n_classes` given), at least one sample of every class in every part.
    Experiments call this from their ``Config.__post_init__`` where the sizes are known up front,
    so a sweep refuses before any run starts.

    Parameters
    ----------
    n, test_fraction, val_fraction
        As in `split_sizes`.
    n_classes : int or None
        Classes of a stratified split; None for a plain shuffled split.
    keys : mapping of str to str or None
        The config keys behind the roles ``"n"``, ``"test_fraction"`` and ``"val_fraction"``,
        e.g. ``{"n": "n_samples", "val_fraction": "val_fraction"}``; the message names only the
        roles listed here as things to change (all three, under these names, when None).

    Returns
    -------
    (n_train, n_val, n_test) : tuple of int

    Raises
    ------
    InvalidParameterError
        One line: which part is too small, its size, and the keys to change.
    """
    keys = dict(keys) if keys is not None else {r: r for r in ("n", "test_fraction",
                                                                 "val_fraction")}
    n_train, n_val, n_test = split_sizes(n, test_fraction, val_fraction,
                                         stratified=n_classes is not None)
    each = n_classes or 1  # the smallest useful held-out part: one sample of every class
    per_class = f" (one of each of the {n_classes} classes)" if n_classes else ""
    n_name = f"{keys['n']}={n}" if "n" in keys else f"{n} samples"

    def change(*moves: tuple[str, str]) -> str:
        """": raise n_samples, or lower val_fraction" for the (verb, role) moves whose role is
        a key the user can set."""
        named = [f"{verb} {keys[role]}" for verb, role in moves if role in keys]
        return ": " + ", or ".join(named) if named else ""

    if test_fraction is not None and n_test < each:
        raise InvalidParameterError(
            f"a test split of {n_test} of {n_name} is too small, need >= {each}{per_class}"
            + change(("raise", "test_fraction"), ("raise", "n")))
    if val_fraction and n_val < each:
        raise InvalidParameterError(
            f"a validation split of {n_val} of the {n - n_test} training samples"
            f"{f' ({n_name})' if 'n' in keys else ''} is too small, need >= {each}{per_class}"
            + change(("raise", "val_fraction"), ("raise", "n")) + (", or set it to 0 for none"
                                                          if "val_fraction" in keys else ""))
    need = max(MIN_TRAIN, each)
    if n_train < need:
        held = ", ".join(f"{k} {what}" for k, what in ((n_test, "test"), (n_val, "validation"))
                         if k)
        given = ", ".join(f"{keys[role]}={value}" for role, value in (
            ("n", n), ("test_fraction", test_fraction), ("val_fraction", val_fraction))
            if role in keys and value is not None)
        raise InvalidParameterError(
            f"{given or f'{n} samples'}: {n_train} of {n} samples left to train on ({held}), "
            f"need >= {need}{per_class}"
            + change(("lower", "val_fraction"), ("lower", "test_fraction"), ("raise", "n")))
    return n_train, n_val, n_test


def carve_validation(ds: Dataset, val_fraction: float) -> Dataset:
    """`ds` with the first ``round(val_fraction * n_train)`` training rows as its validation split.

    For the shuffled toy sets (their splitter permutes before it cuts, so the first rows are a
    random sample); class-balanced sets use `with_validation`.

    Raises
    ------
    InvalidParameterError
        When a part would be too small (`check_split`).
    """
    if not val_fraction:
        return ds
    n_train, n_val, _ = check_split(len(ds.X_train), None, val_fraction,
                                    keys={"val_fraction": "val_fraction"})
    return replace(ds, X_train=ds.X_train[n_val:], y_train=ds.y_train[n_val:],
                   X_val=ds.X_train[:n_val], y_val=ds.y_train[:n_val])


# --- sklearn digits ----------------------------------------------------------------------------


def stratified_split(
    X: np.ndarray, y: np.ndarray, fraction: float, seed: int, what: str = "test"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hold out `fraction` of the samples, the same share of every class (scikit-learn's
    ``train_test_split(stratify=y)``).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,) of integer classes
    fraction : float
        Share held out, in (0, 1).
    seed : int
        Fixes the split.
    what : str
        Name of the held-out part, for error messages (``test``, ``validation``).

    Returns
    -------
    X_keep, X_held, y_keep, y_held

    Raises
    ------
    DataError
        When either part would be left with fewer samples than there are classes.
    """
    if not 0 < fraction < 1:
        raise DataError(f"the {what} fraction must be in (0, 1), got {fraction}")
    from sklearn.model_selection import train_test_split

    n, n_classes = len(y), len(np.unique(y))
    n_held = math.ceil(fraction * n)  # as scikit-learn rounds
    if n_held < n_classes or n - n_held < n_classes:
        raise DataError(
            f"a {what} fraction of {fraction} splits {n} samples into {n - n_held} and "
            f"{n_held}; a stratified split needs at least one sample of each of the "
            f"{n_classes} classes on both sides"
        )
    return train_test_split(X, y, test_size=fraction, stratify=y, random_state=int(seed))


def digits(
    seed: int | np.random.Generator = 0,
    test_fraction: float = 0.33,
    dtype: str = "float32",
    val_fraction: float = 0.0,
) -> Dataset:
    """scikit-learn's 1,797 handwritten digits (8x8 pixels, 0..16 scaled to [0, 1]).

    Parameters
    ----------
    seed : int or numpy.random.Generator
        Fixes the split (scikit-learn's ``random_state``); a Generator is asked for one integer.
    test_fraction : float
        Share held out for testing, in (0, 1); the split is stratified by class.
    val_fraction : float
        Share of the *training* part held out as a validation split, stratified too (0: none).
        The test split does not depend on it.

    Returns
    -------
    Dataset
        X of shape (n_split, 64) in [0, 1]; y of shape (n_split,) of int64 classes 0-9;
        ``n_classes`` 10; ``feature_shape`` (8, 8); ``X_val``/``y_val`` with `val_fraction`.
    """
    from sklearn.datasets import load_digits

    if isinstance(seed, np.random.Generator):
        seed = int(seed.integers(2**31 - 1))
    bunch = load_digits()
    X = (bunch.data / 16.0).astype(dtype)
    y = bunch.target.astype(np.int64)
    X_tr, X_te, y_tr, y_te = stratified_split(X, y, test_fraction, seed, "test")
    ds = Dataset(X_tr, y_tr, X_te, y_te, n_classes=10, name="digits", feature_shape=(8, 8))
    return with_validation(ds, val_fraction, seed) if val_fraction else ds


def with_validation(ds: Dataset, val_fraction: float, seed: int) -> Dataset:
    """`ds` with `val_fraction` of its training part moved to a stratified validation split."""
    X_tr, X_val, y_tr, y_val = stratified_split(
        ds.X_train, ds.y_train, val_fraction, seed + 1, "validation")
    return replace(ds, X_train=X_tr, y_train=y_tr, X_val=X_val, y_val=y_val)


# --- IDX files (MNIST's format) ----------------------------------------------------------------

# IDX type codes (the third byte of the magic number) -> big-endian element type
_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it is named ``.gz`` or starts like a gzip stream."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path} not found") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    if path.suffix == ".gz" or raw[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise DataError(f"{path} is not a valid gzip file ({reason})") from None
    return raw


def load_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (plain or gzip-compressed) into an array, checking header against size.

    The IDX header is two zero bytes, a type code (0x08 unsigned byte, 0x09 signed byte,
    0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions, then each
    dimension's size as a big-endian uint32; the values follow, big-endian, in C order.

    Parameters
    ----------
    path : str or Path
        The file; gzip is recognised by a ``.gz`` suffix or by the gzip magic bytes.

    Returns
    -------
    ndarray of shape given by the header, in native byte order

    Raises
    ------
    DataError
        One line naming the file: missing or unreadable, corrupt gzip, bad magic number,
        broken header, truncated or longer than its header says.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        magic = f"0x{raw[:4].hex()}" if raw else "none: the file is empty"
        raise DataError(f"{path} is not an IDX file (magic {magic})")
    dtype, ndim = _IDX_TYPES[raw[2]], raw[3]
    if ndim < 1:
        raise DataError(f"{path} has a broken IDX header (0 dimensions)")
    if len(raw) < 4 + 4 * ndim:
        raise DataError(
            f"{path} has a broken IDX header ({ndim} dimensions but only "
            f"{max(0, len(raw) - 4)} of {4 * ndim} bytes of sizes)"
        )
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    expected = math.prod(shape) * dtype.itemsize  # Python ints: no overflow on silly headers
    found = len(raw) - 4 - 4 * ndim
    if found != expected:
        dims = "x".join(map(str, shape))
        what = "truncated" if found < expected else "longer than its header says"
        raise DataError(f"{path} is {what}: header says {dims} = {expected} bytes, found {found}")
    values = np.frombuffer(raw, dtype, offset=4 + 4 * ndim).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write `array` as an IDX file, gzip-compressed when `path` ends in ``.gz``.

    Parameters
    ----------
    path : str or Path
    array : ndarray with 1 to 255 dimensions
        dtype uint8, int8, int16, int32, float32 or float64 (MNIST itself is uint8).

    Raises
    ------
    ValueError
        For a dtype or a shape that IDX cannot store.
    """
    path = Path(path)
    array = np.asarray(array)
    codes = {v.newbyteorder("="): k for k, v in _IDX_TYPES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None:
        names = ", ".join(str(v.newbyteorder("=")) for v in _IDX_TYPES.values())
        raise ValueError(f"IDX cannot store dtype {array.dtype}; use one of {names}")
    if not 1 <= array.ndim <= 255 or max(array.shape) >= 2**32:
        raise ValueError(f"IDX cannot store an array of shape {array.shape}")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    body = header + np.ascontiguousarray(array, dtype=_IDX_TYPES[code]).tobytes()
    path.write_bytes(gzip.compress(body) if path.suffix == ".gz" else body)


# --- MNIST -------------------------------------------------------------------------------------

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def find_idx(folder: Path, stem: str, title: str = "MNIST") -> Path:
    """``folder/stem`` or ``folder/stem.gz`` (also the ``train-images.idx3-ubyte`` spelling).

    `title` names the data set in the message (``MNIST``, ``KMNIST``, ...).

    Raises
    ------
    DataError
        Naming the missing file and the folder searched.
    """
    folder = Path(folder)
    dotted = stem.replace("-idx", ".idx")  # how some mirrors and Kaggle name the files
    for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise DataError(
        f"{title} file {stem}(.gz) not found in {folder}; put the four {title} IDX files "
        f"({', '.join(f + '.gz' for f in MNIST_FILES.values())}) there or pass data_dir=DIR"
    )


def mnist(
    data_dir: str | Path,
    n_train: int | None = None,
    n_test: int | None = None,
    dtype: str = "float32",
    val_fraction: float = 0.0,
    seed: int = 0,
    *,
    name: str = "mnist",
    image_shape: tuple[int, int] | None = None,
) -> Dataset:
    """MNIST (or an MNIST-format set: Fashion-MNIST, KMNIST) from its four IDX files in
    `data_dir`; nothing is downloaded (`load_dataset` fetches them).

    Looks for ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each plain or ``.gz``.

    Parameters
    ----------
    data_dir : str or Path
        The folder holding the files (``~`` is expanded).
    n_train, n_test : int or None
        Keep only the first n images of each split (all when None, or when n exceeds the file).
    val_fraction : float
        Share of the (kept) training images held out as a stratified validation split
        (0: none), drawn with `seed`.
    name : str
        The set's name in `IMAGE_SETS`, kept as ``Dataset.name`` and used in messages.
    image_shape : (rows, cols) or None
        The image size the caller needs, e.g. (28, 28) for a 784-input network: files of another
        size are refused at load (not after training, in a figure). None: any size.

    Returns
    -------
    Dataset
        X of shape (n_split, H*W) with pixels 0..255 scaled to [0, 1]; y of shape (n_split,)
        of int64 classes 0-9; ``n_classes`` 10; ``feature_shape`` (H, W), (28, 28) for MNIST.

    Raises
    ------
    DataError
        One line naming the folder or file at fault: missing, corrupt, images not 3-D uint8,
        labels not 1-D uint8 in 0-9, image and label counts that disagree, images not of
        `image_shape`.
    """
    title = REMOTE_SETS[name].title if name in REMOTE_SETS else name
    for key, n in (("n_train", n_train), ("n_test", n_test)):
        if n is not None and n < 0:
            raise DataError(f"{key} must be >= 0 or None, got {n}")
    folder = Path(data_dir).expanduser()
    if not folder.is_dir():
        raise DataError(
            f"{title} folder {folder} not found; pass data_dir=DIR holding the four IDX files "
            f"(train-images-idx3-ubyte.gz, ...)"
        )
    paths = {key: find_idx(folder, stem, title) for key, stem in MNIST_FILES.items()}
    arrays = {key: load_idx(path) for key, path in paths.items()}
    out = {}
    for split, limit in (("train", n_train), ("test", n_test)):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        image_path, label_path = paths[f"{split}_images"], paths[f"{split}_labels"]
        if images.ndim != 3 or images.dtype != np.uint8:
            raise DataError(
                f"{image_path} should hold uint8 images of shape (n, rows, cols), "
                f"has {images.dtype} of shape {images.shape}"
            )
        if labels.ndim != 1 or labels.dtype != np.uint8:
            raise DataError(
                f"{label_path} should hold uint8 labels of shape (n,), "
                f"has {labels.dtype} of shape {labels.shape}"
            )
        if len(labels) != len(images):
            raise DataError(
                f"{label_path} has {len(labels)} labels for {len(images)} images in "
                f"{image_path.name}"
            )
        if labels.size and labels.max() > 9:
            raise DataError(f"{label_path} has label {labels.max()} (expected 0-9)")
        if len(images) == 0:
            raise DataError(f"{image_path} holds no images")
        images, labels = images[:limit], labels[:limit]
        X = images.reshape(len(images), -1).astype(dtype) / 255.0
        out[split] = (X, labels.astype(np.int64))
    if arrays["train_images"].shape[1:] != arrays["test_images"].shape[1:]:
        raise DataError(
            f"{paths['train_images']} holds {arrays['train_images'].shape[1:]} images but "
            f"{paths['test_images'].name} holds {arrays['test_images'].shape[1:]}"
        )
    shape = tuple(int(s) for s in arrays["train_images"].shape[1:])
    if image_shape is not None and shape != tuple(image_shape):
        raise DataError(
            f"{paths['train_images']} holds {'x'.join(map(str, shape))} images; this needs "
            f"{'x'.join(map(str, image_shape))} images (the files of "
            f"{' or '.join(s for s in IMAGE_SETS if s != 'digits')})"
        )
    ds = Dataset(*out["train"], *out["test"], n_classes=10, name=name, feature_shape=shape)
    return with_validation(ds, val_fraction, seed) if val_fraction else ds


# --- MNIST-class sets by name: fetched once into a cache with pooch ---------------------------


@dataclass(frozen=True)
class RemoteSet:
    """Where an MNIST-format set is published and the SHA256 of its four gzipped IDX files."""

    title: str  # the name a reader knows, for messages
    mirrors: tuple[str, ...]  # base URLs tried in order; each serves the four files by name
    sha256: dict[str, str]  # file name -> published SHA256 of the .gz file


# The SHA256 sums are those tensorflow-datasets publishes for the official files
# (tensorflow_datasets/url_checksums/{mnist,fashion_mnist,kmnist}.txt), the same as in
# torchvision's prototype data sets (datasets/_builtin/mnist.py `_CHECKSUMS`). The mirrors are
# the ones those libraries download from; MNIST's original site (yann.lecun.com) is last because
# it often refuses scripted downloads.
REMOTE_SETS: dict[str, RemoteSet] = {
    "mnist": RemoteSet(
        title="MNIST",
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        sha256={
            "train-images-idx3-ubyte.gz":
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train-labels-idx1-ubyte.gz":
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "t10k-images-idx3-ubyte.gz":
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "t10k-labels-idx1-ubyte.gz":
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
    ),
    "fashion_mnist": RemoteSet(
        title="Fashion-MNIST",
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        sha256={
            "train-images-idx3-ubyte.gz":
                "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "train-labels-idx1-ubyte.gz":
                "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "t10k-images-idx3-ubyte.gz":
                "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "t10k-labels-idx1-ubyte.gz":
                "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        },
    ),
    "kmnist": RemoteSet(
        title="KMNIST",
        mirrors=(
            "https://codh.rois.ac.jp/kmnist/dataset/kmnist/",
            "http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
        ),
        sha256={
            "train-images-idx3-ubyte.gz":
                "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4",
            "train-labels-idx1-ubyte.gz":
                "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17",
            "t10k-images-idx3-ubyte.gz":
                "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5",
            "t10k-labels-idx1-ubyte.gz":
                "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c",
        },
    ),
}

#: The image classification sets `load_dataset` knows: 8x8 digits ships with scikit-learn, the
#: three 28x28 sets are fetched.
IMAGE_SETS = ("digits", *REMOTE_SETS)

CACHE_ENV = "NEUROSIM_DATA_DIR"  # overrides the cache folder (a shared disk, a cluster's scratch)
MIRRORS_ENV = "NEUROSIM_DATA_MIRRORS"  # comma-separated base URLs used instead of the built-in
#                                        mirrors; "{name}" in one is replaced by the set's name


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """The folder that holds one subfolder of downloaded files per data set.

    `cache_dir` when given, else ``$NEUROSIM_DATA_DIR``, else pooch's per-user cache
    (``~/.cache/neurosim`` on Linux). Nothing is created here.
    """
    if cache_dir:
        return Path(cache_dir).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    import pooch

    return Path(pooch.os_cache("neurosim"))


def _mirrors(name: str) -> tuple[str, ...]:
    custom = [m.strip() for m in os.environ.get(MIRRORS_ENV, "").split(",") if m.strip()]
    return tuple(m.replace("{name}", name) for m in custom) or REMOTE_SETS[name].mirrors


@contextlib.contextmanager
def _quiet_pooch() -> Iterator[None]:
    """Silence pooch's "Downloading data from ..." log lines (the library never prints); its
    tqdm progress bar, shown only on a terminal, says the same."""
    import pooch

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _reason(exc: BaseException) -> str:
    """The useful end of a download error, on one line: requests wraps the system's reason
    ("[Errno 111] Connection refused", "[Errno -3] Temporary failure in name resolution") in
    two layers of repr."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    errno = re.search(r"\[Errno -?\d+\] [^'\")\]]+", text)
    if errno:
        return errno.group(0).strip()
    return text if len(text) <= 160 else text[:157] + "..."


def fetch(
    name: str,
    cache_dir: str | Path | None = None,
    *,
    mirrors: Sequence[str] | None = None,
    sha256: Mapping[str, str] | None = None,
    progressbar: bool | None = None,
    timeout: float = 30.0,
) -> Path:
    """The folder holding the four IDX files of `name`, downloading the missing ones first.

    Each file is fetched with pooch from the first mirror that serves it, into a temporary file
    that is checked against its SHA256 and only then renamed, so the cache never holds a partial
    or corrupt file. Files already in the cache are checked against their SHA256 and not fetched
    again; an interrupted fetch resumes with the files still missing.

    Parameters
    ----------
    name : {"mnist", "fashion_mnist", "kmnist"}
    cache_dir : str or Path or None
        The cache root (see `cache_root`); the files go to ``cache_root / name``.
    mirrors : sequence of str or None
        Base URLs to try in order (default: ``$NEUROSIM_DATA_MIRRORS``, else the set's
        published mirrors).
    sha256 : mapping of file name to hex digest, or None
        The files to fetch and their sums (default: the published ones in `REMOTE_SETS`).
    progressbar : bool or None
        tqdm progress bars on stderr; None: only when stderr is a terminal.
    timeout : float
        Seconds to wait for a server before trying the next mirror.

    Returns
    -------
    Path
        ``cache_root(cache_dir) / name``.

    Raises
    ------
    DataError
        One line: a file that failed its SHA256 check on every mirror that served it, or, when
        no mirror could be reached, where to put which four files instead. Folders created for a
        failed fetch are removed again.
    """
    import pooch
    import requests

    remote = lookup(REMOTE_SETS, name, "downloadable data set")
    sums = dict(sha256) if sha256 is not None else remote.sha256
    bases = tuple(mirrors) if mirrors is not None else _mirrors(name)
    root = cache_root(cache_dir)
    folder = root / name
    if progressbar is None:
        progressbar = sys.stderr.isatty()
    # which folders this call creates, so that a failure removes them again
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(
                f"cannot create the data cache {folder} ({exc.strerror or exc}); pass "
                f"cache_dir=DIR or set ${CACHE_ENV} to a writable folder, or pass "
                f"data_dir=FOLDER holding the files") from None
        with _quiet_pooch():
            for fname, digest in sums.items():
                failures: list[str] = []
                bad_sum = None
                for base in bases:
                    url = base.rstrip("/") + "/" + fname
                    downloader = pooch.HTTPDownloader(progressbar=progressbar, timeout=timeout)
                    try:
                        pooch.retrieve(url, known_hash=f"sha256:{digest}", fname=fname,
                                       path=folder, downloader=downloader)
                        break
                    except (requests.RequestException, OSError) as exc:
                        failures.append(f"{url}: {_reason(exc)}")
                    except ValueError as exc:
                        if "does not match the known hash" not in str(exc):
                            failures.append(f"{url}: {_reason(exc)}")  # e.g. a bad URL scheme
                            continue
                        # pooch has already deleted the download
                        got = str(exc).split(" but got ")[-1].split(".")[0]
                        bad_sum = (f"{fname} from {url} failed its SHA256 check (expected "
                                   f"{digest}, got {got}); the download was discarded")
                else:
                    if bad_sum:
                        raise DataError(f"{remote.title}: {bad_sum}")
                    files = ", ".join(sums)
                    tried = (f"{len(bases)} mirrors failed, the last with " if len(bases) > 1
                             else "")
                    reason = tried + failures[-1] if failures else "no mirror given"
                    raise DataError(
                        f"cannot download {remote.title} ({reason}); put its files "
                        f"({files}) in a folder and pass data_dir=FOLDER, or in {folder}"
                    )
    except BaseException:
        for path in created:  # deepest first; only folders this call made, and only if empty
            with contextlib.suppress(OSError):
                path.rmdir()
        raise
    return folder


#: The seed of digits' one train/test split used by `load_dataset` for every run seed.
TEST_SPLIT_SEED = 0


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    *,
    seed: int = 0,
    n_train: int | None = None,
    n_test: int | None = None,
    val_fraction: float = 0.0,
    image_shape: tuple[int, int] | None = None,
    dtype: str = "float32",
    mirrors: Sequence[str] | None = None,
    sha256: Mapping[str, str] | None = None,
    progressbar: bool | None = None,
) -> Dataset:
    """An image classification set by name: digits, or an MNIST-class set read or fetched.

    Parameters
    ----------
    name : {"digits", "mnist", "fashion_mnist", "kmnist"}
    data_dir : str or Path or None
        A folder already holding the four IDX files (plain or ``.gz``): they are read as they
        are, offline, without a checksum (a subset or a re-compressed copy works). None or "":
        use the cache, downloading what is missing (`fetch`).
    cache_dir : str or Path or None
        The cache root when `data_dir` is not given (see `cache_root`).
    seed : int
        Fixes the validation split (and nothing else). The test split is the same for every
        seed: the official t10k images of the MNIST-class sets, and digits' stratified split
        drawn once with `TEST_SPLIT_SEED`, so no seed's validation digits are another seed's
        test digits.
    n_train, n_test : int or None
        Keep only the first n training / test images (None or 0: all).
    val_fraction : float
        Stratified share of the kept training images held out as the validation split (0: none).
    image_shape : (rows, cols) or None
        Refuse files whose images are not of this size (e.g. 8x8 files for a 784-input net).
    mirrors, sha256, progressbar
        Passed to `fetch`.

    Returns
    -------
    Dataset
        X of shape (n_split, rows*cols) in [0, 1], y of int64 classes 0-9, ``feature_shape``
        (8, 8) for digits and (28, 28) for the fetched sets, ``name`` the set's name.

    Raises
    ------
    InvalidParameterError
        An unknown name, or digits asked for with another `image_shape`.
    DataError
        A missing, corrupt or undownloadable file, or images of the wrong size (one line).
    """
    lookup(dict.fromkeys(IMAGE_SETS), name, "dataset")
    if name == "digits":
        if image_shape is not None and tuple(image_shape) != (8, 8):
            raise InvalidParameterError(
                f"dataset=digits holds 8x8 images; this needs "
                f"{'x'.join(map(str, image_shape))}: choose from "
                f"{', '.join(REMOTE_SETS)}")
        ds = digits(seed=TEST_SPLIT_SEED, dtype=dtype)
        n_tr, n_te = n_train or len(ds.X_train), n_test or len(ds.X_test)
        ds = replace(ds, X_train=ds.X_train[:n_tr], y_train=ds.y_train[:n_tr],
                     X_test=ds.X_test[:n_te], y_test=ds.y_test[:n_te])
    else:
        folder = data_dir or fetch(name, cache_dir, mirrors=mirrors, sha256=sha256,
                                   progressbar=progressbar)
        ds = mnist(folder, n_train=n_train or None, n_test=n_test or None, dtype=dtype,
                   name=name, image_shape=image_shape)
    return with_validation(ds, val_fraction, seed) if val_fraction else ds


def load_images(name: str, seed: int, *, data_dir: str | Path | None = None, n_train: int = 0,
                n_test: int = 0, val_fraction: float = 0.0) -> Dataset:
    """`load_dataset` with the experiments' argument order (kept for their callers)."""
    return load_dataset(name, data_dir, seed=seed, n_train=n_train, n_test=n_test,
                        val_fraction=val_fraction)


# --- helpers -----------------------------------------------------------------------------------


def one_hot(y: np.ndarray, n_classes: int, dtype: str = "float32") -> np.ndarray:
    """Class indices -> one-hot rows.

    Parameters
    ----------
    y : ndarray of shape (n,) of integer classes in [0, n_classes)
    n_classes : int

    Returns
    -------
    ndarray of shape (n, n_classes)
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"one_hot needs class indices of shape (n,), got shape {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= n_classes or not np.all(y == np.round(y))):
        raise ValueError(f"one_hot needs integer classes in [0, {n_classes}), got {np.unique(y)}")
    out = np.zeros((len(y), n_classes), dtype=dtype)
    out[np.arange(len(y)), y.astype(np.int64)] = 1
    return out


def task_classes(y: np.ndarray, classes_per_task: int = 2) -> list[tuple[int, ...]]:
    """The classes of each task of a class-incremental split, in class order.

    Parameters
    ----------
    y : ndarray of shape (n,) of integer classes
    classes_per_task : int
        Classes per task (>= 1); the last task holds the remainder when it does not divide.

    Returns
    -------
    list of tuple of int
        E.g. ``[(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]`` for MNIST in 5 tasks of 2.
    """
    if classes_per_task < 1:
        raise ValueError(f"classes_per_task must be >= 1, got {classes_per_task}")
    classes = [int(c) for c in np.unique(y)]
    return [
        tuple(classes[k : k + classes_per_task]) for k in range(0, len(classes), classes_per_task)
    ]


def class_incremental_tasks(y: np.ndarray, classes_per_task: int = 2) -> list[np.ndarray]:
    """Sample indices of each task of a class-incremental split: classes 0-1, then 2-3, ...

    Parameters
    ----------
    y : ndarray of shape (n,) of integer classes
    classes_per_task : int
        Classes per task (>= 1); `task_classes` names the classes of each task.

    Returns
    -------
    list of ndarray of int64
        One sorted index array into `y` per task (the sleep experiment's 5 x 2 MNIST split).
    """
    y = np.asarray(y)
    return [np.flatnonzero(np.isin(y, group)) for group in task_classes(y, classes_per_task)]


# --- the table ---------------------------------------------------------------------------------

DATASETS: dict[str, Callable[..., Dataset]] = {
    "xor": xor,
    "linear_regression": linear_regression,
    "threshold_task": threshold_task,
    "nonlinear_regression": nonlinear_regression,
    "digits": digits,
    "mnist": mnist,
    "fashion_mnist": partial(load_dataset, "fashion_mnist"),  # data_dir=None: fetched
    "kmnist": partial(load_dataset, "kmnist"),
}



def get_loader(name: str) -> Callable[..., Dataset]:
    """The loader registered under `name` in `DATASETS`.

    Raises
    ------
    ValueError
        ``unknown dataset 'foo'; choose from xor, linear_regression, ...``
    """
    try:
        return DATASETS[name]
    except KeyError:
        choices = ", ".join(DATASETS)
        raise ValueError(f"unknown dataset {name!r}; choose from {choices}") from None
