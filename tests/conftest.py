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

import pytest

from tests.helpers import write_fake_mnist


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


@pytest.fixture
def fake_mnist() -> Callable[..., Path]:
    """`write_fake_mnist`, as a fixture: ``fake_mnist(tmp_path / "mnist", n_train=20)``."""
    return write_fake_mnist
