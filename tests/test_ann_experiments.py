"""The MLP experiments' glue (neurosim.experiments.common): interrupts pass on with the curves
kept, diverged runs name what ran away and report no scores computed from runaway weights."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neurosim.experiments import digits, linear_regression, mlp_regression, xor
from neurosim.experiments.common import fit
from neurosim.runner.config import build
from neurosim.runner.contract import jsonable, quick_context


@pytest.mark.parametrize(("module", "overrides", "scores"), [
    # Adam at lr 1e9: the loss explodes in epoch 1, weights still finite
    (digits, {"epochs": 3, "lr": 1e9}, ("test_accuracy", "train_accuracy")),
    (linear_regression, {"epochs": 200, "lr": 1000.0}, ("test_mse", "test_mae")),
    (mlp_regression, {"epochs": 3, "lr": 1e6}, ("test_mse", "test_mae", "train_mse")),
])
def test_a_diverged_run_names_what_ran_away_and_reports_no_scores(module, overrides, scores):
    """Before: DIVERGED runs reported e.g. test_accuracy 0.099 computed from runaway weights
    and no warning saying what ran away. Now the scores are None and a warning names the
    loss, its size and the epoch."""
    result = module.run(build(module.Config, overrides), quick_context(0))
    assert result.status == "DIVERGED"
    for key in scores:
        assert result.metrics[key] is None, key
    (warning,) = result.warnings
    assert warning.startswith("loss ") and "times its first value at epoch" in warning
    json.dumps(jsonable(result.metrics), allow_nan=False)
    figs = module.figures(result)  # the figure still draws, saying n/a where it must
    assert figs


def test_a_completed_run_has_its_scores_and_no_warning():
    result = xor.run(build(xor.Config, {"epochs": 300}), quick_context(0))
    assert result.status == "COMPLETED" and not result.warnings
    assert result.metrics["correct"] == 4 and result.metrics["test_accuracy"] == 1.0


def test_fit_keeps_the_curves_and_lets_the_interrupt_through():
    """Before: fit() re-raised a Stopped built from a global the signal handler set. Now the
    KeyboardInterrupt from train() passes through fit() untouched, after the epochs
    completed so far went into ctx.partial."""
    from neurosim.ann import MLP

    ctx = quick_context(0)
    ctx_bar = iter(range(2))  # the bar ticks after epochs 1 and 2; Ctrl-C lands after 3

    def progress(iterable, total=None, desc=""):
        def bar():
            yield from ctx_bar
            raise KeyboardInterrupt
        return bar()

    ctx.progress = progress
    rng = np.random.default_rng(0)
    net = MLP([2, 3, 1], "sigmoid", "sigmoid", rng=rng)
    X, y = rng.random((8, 2)), (rng.random((8, 1)) > 0.5).astype(float)
    with pytest.raises(KeyboardInterrupt) as info:
        fit(net, X, y, ctx, epochs=10, loss="mse", optimizer="gd", lr=0.1, batch_size=None)
    assert type(info.value) is KeyboardInterrupt  # the same exception, not a new one
    assert list(ctx.partial.curves["epochs"]["epoch"]) == [1, 2, 3]
    assert info.value.history.n_epochs == 3
