"""Helpers shared by the test files (conftest.py turns the ones tests want as fixtures into
fixtures)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neurosim.data import write_idx


def write_fake_mnist(folder: Path, n_train: int = 60, n_test: int = 30,
                     gz: bool = True) -> Path:
    """A tiny MNIST look-alike in IDX files: class k lights up rows 2k..2k+3, so it is
    learnable; labels cycle 0..9; pixel values span 0..255 (the first image has both)."""
    rng = np.random.default_rng(0)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 40, size=(n, 28, 28)).astype(np.uint8)
        for k, lab in enumerate(labels):
            images[k, 2 * lab: 2 * lab + 4, :] = 250
        images[0, 27, 0], images[0, 27, 1] = 0, 255
        write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", labels.astype(np.uint8))
    return folder
