"""What an experiment receives (`Context`) and what it returns (`Result`).

An experiment module exposes ``Config`` (a frozen dataclass), ``QUICK`` (the overrides ``--quick``
applies), ``run(cfg, ctx) -> Result`` and ``figures(result) -> dict[str, Figure]``. It never parses
arguments, prints or writes files: the runner (`neurosim.run`) resolves the config and
`neurosim.results` writes what the experiment returns.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")

#: Run statuses written to meta.json.
STATUSES = ("RUNNING", "COMPLETED", "FAILED", "INTERRUPTED", "DIVERGED")


@dataclass
class Result:
    """Everything a run measured; `neurosim.results` turns it into files.

    Attributes
    ----------
    metrics : dict
        JSON-able answer of the run (names as in DESIGN.md §3: ``test_accuracy``,
        ``train_seconds``, ...). Written to metrics.json.
    curves : dict of str -> ndarray of shape (n_points,)
        Equal-length 1-D series (per epoch, per sample block, ...). Written to curves.csv.
    arrays : dict of str -> ndarray
        Everything else a figure needs (weights, confusion matrix, ...). Written to arrays.npz.
    spikes : dict of str -> ndarray, optional
        ``i``, ``t`` (seconds), ``t_stop`` and ``n_neurons``. Written to spikes.npz.
    status : str
        One of ``COMPLETED``, ``DIVERGED``, ``INTERRUPTED``.
    meta : dict
        Extra facts for meta.json, e.g. ``{"brian2_target": "cython"}``.
    """

    metrics: dict[str, Any] = field(default_factory=dict)
    curves: dict[str, np.ndarray] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    spikes: dict[str, np.ndarray] | None = None
    status: str = "COMPLETED"
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    """What the runner hands an experiment besides its config.

    Attributes
    ----------
    seed : int
        The run's seed; ``rng`` was made from it.
    rng : numpy.random.Generator
        The one source of randomness; pass it (or generators spawned from it) down.
    quick : bool
        True under ``--quick`` (the config already holds the quick overrides).
    scratch_dir : Path
        Where an experiment may put compiled code (a Brian2 standalone project, in a unique
        subdirectory it removes again). The runner gives each run its own inside the run
        directory and deletes it afterwards; the default is the working directory.
    partial : Result
        Experiments may fill it as they go; if the run is interrupted before ``run`` returns,
        the runner writes it and marks the run INTERRUPTED.
    show_progress : bool
        Whether `progress` draws tqdm bars (True only when stderr is a terminal).
    """

    seed: int
    rng: np.random.Generator
    quick: bool = False
    scratch_dir: Path = field(default_factory=lambda: Path("."))
    partial: Result = field(default_factory=Result)
    show_progress: bool = field(default_factory=lambda: sys.stderr.isatty())

    def progress(
        self, iterable: Iterable[T], total: int | None = None, desc: str = ""
    ) -> Iterator[T]:
        """Wrap `iterable` in a tqdm bar on a terminal; return it unchanged otherwise."""
        if not self.show_progress:
            return iter(iterable)
        from tqdm.auto import tqdm

        return iter(tqdm(iterable, total=total, desc=desc, leave=False))


def quick_context(seed: int = 0, **kwargs: Any) -> Context:
    """A `Context` for calling an experiment from a script or a test."""
    return Context(seed=seed, rng=np.random.default_rng(seed), **kwargs)
