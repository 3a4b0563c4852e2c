"""Shared fixtures: Brian2's global state restored around every test, the numpy target, and a
tiny MNIST look-alike on disk.

Markers (registered in pyproject.toml): ``slow`` for long Brian2 tests, ``e2e`` for tests that
start a ``python -m neurosim.run`` subprocess. ``python -m pytest`` runs everything; the fast
subset is ``python -m pytest -m "not slow and not e2e"``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from neurosim.data import write_idx


def _brian2_state() -> dict | None:
    """Everything a test may change in Brian2 and must give back: preferences (the code
    target among them), ``defaultclock.dt``, the device, the ``brian2`` logger's level."""
    b2 = sys.modules.get("brian2")
    if b2 is None:  # not imported yet: nothing to snapshot (and no import cost)
        return None
    return {"prefs": {name: b2.prefs[name] for name in b2.prefs},
            "dt": b2.defaultclock.dt_,
            "level": logging.getLogger("brian2").level}


def _restore(saved: dict | None) -> None:
    b2 = sys.modules.get("brian2")
    if b2 is None:
        return
    from brian2.devices.device import runtime_device

    device = b2.get_device()
    if device is not runtime_device:  # a test left cpp_standalone on: forget its project
        device.reinit()
        b2.set_device("runtime")
    if saved is None:  # brian2 was first imported by the test: back to the defaults
        b2.prefs.reset_to_defaults()
        b2.defaultclock.dt = 0.1 * b2.ms
        return
    for name, value in saved["prefs"].items():
        if b2.prefs[name] != value:
            b2.prefs[name] = value
    b2.defaultclock.dt_ = saved["dt"]
    logging.getLogger("brian2").setLevel(saved["level"])


@pytest.fixture(autouse=True)
def brian2_state() -> Iterator[None]:
    """Snapshot Brian2's global state before each test and restore it afterwards, so no test
    depends on the ones before it (target, dt, device, preferences)."""
    saved = _brian2_state()
    yield
    _restore(saved)


@pytest.fixture
def numpy_target() -> Iterator[None]:
    """Brian2 on its numpy target (no compiler) for the test; `brian2_state` restores it."""
    from neurosim.snn import backend

    backend.select("numpy")
    yield
    backend.reset_device()


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


@pytest.fixture
def fake_mnist() -> Callable[..., Path]:
    """`write_fake_mnist`, as a fixture: ``fake_mnist(tmp_path / "mnist", n_train=20)``."""
    return write_fake_mnist
