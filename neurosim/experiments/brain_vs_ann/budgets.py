"""Learning speed as accuracy against *labelled* examples (issue 16's label-budget protocol).

At every budget (k labelled training digits per class, `Config.label_budgets`, 0 = all) each arm
gets exactly the same labelled digits (`neurosim.analysis.budgets.nested_budgets`):

- ``mlp``: a fresh bias-free MLP (the mlp arm's architecture and initial draw, the same for
  every budget) trained on the k-per-class digits alone until the validation loss stops
  falling (``budget_patience`` epochs; the validation split is used for stopping only, and
  its labels are counted apart in ``validation_labels``);
- ``stdp_vote`` / ``stdp_logistic``: the STDP network trained once, without labels, on the
  whole training split (its unlabelled pool), read out from the k-per-class digits' spike
  counts by Diehl & Cook's vote and by logistic regression;
- ``nearest_class_mean``, ``knn1``, ``logistic``: scikit-learn on the pixels of the same digits.

The learning-rule spectrum's arms (``fa``, ``dfa``, ``surrogate``, ``eprop``; issue 17) come in
as `BudgetTrainer` callables (`neurosim.experiments.brain_vs_ann.gradient_arms`): each is given
the same indices as the MLP and the MLP's initial draw, and trained to convergence in its own
way (early stopping, or best validation checkpoint for the spiking ones).

Compute is kept on its own axis: the MLP's gradient steps at each budget (the STDP network's
training cost does not depend on the budget and is reported by its arm), and every other
gradient arm's in ``gradient_steps``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping

import numpy as np

from neurosim import data
from neurosim.analysis.budgets import nested_budgets, pixel_baselines, readouts
from neurosim.ann import MLP, train
from neurosim.experiments.brain_vs_ann.config import LOSS, N_CLASSES, Config

#: Column order of the label-budget table (arms from supervised to pixel baselines).
COLUMNS = ("mlp", "stdp_vote", "stdp_logistic", "nearest_class_mean", "knn1", "logistic")

#: (indices into the training split, labelled digits per class (0: all), the MLP's initial
#: seed) -> (test accuracy, or None where training diverged; gradient steps taken)
BudgetTrainer = Callable[[np.ndarray, int, int], tuple[float | None, int]]


def budget_key(k: int) -> str:
    """``k5`` for 5 per class, ``kall`` for all."""
    return "kall" if k == 0 else f"k{k}"


def label_budget_table(cfg: Config, ds: data.Dataset, rng: np.random.Generator,
                       stdp_counts: tuple[np.ndarray, np.ndarray] | None = None,
                       extra: Mapping[str, tuple[BudgetTrainer, str]] | None = None,
                       with_mlp: bool = True,
                       progress: Callable[[Iterable, int], Iterable] | None = None,
                       ) -> tuple[dict, dict[str, np.ndarray], dict[int, np.ndarray]]:
    """Accuracy of every arm at every label budget, on the test digits.

    Parameters
    ----------
    cfg : Config
    ds : Dataset
        Training split (the labelled pool), validation split (early stopping only), test split.
    rng : numpy.random.Generator
        Draws the budgets and the MLP's initial weights and mini-batches.
    stdp_counts : (ndarray of shape (n_train, n_exc), ndarray of shape (n_test, n_exc)), optional
        The trained STDP network's spike counts for every training and test digit.
    extra : dict of str -> (BudgetTrainer, str), optional
        More arms by name: the trainer, and what the arm was given (for ``given``). They
        draw nothing from `rng` (the MLP's and the budgets' draws stay as without them).
    with_mlp : bool
        Train the MLP at every budget (False: its column is None; its draws are made alike).
    progress : callable (iterable, total) -> iterable, optional
        Wraps the loop over budgets (the runner's progress lines: a spiking arm trains for
        minutes per budget at 28x28).

    Returns
    -------
    metrics : dict
        ``{arm: {budget_key: accuracy}}`` plus ``mlp_gradient_steps``, ``mlp_epochs``,
        ``labelled_examples`` per budget and what each arm was given; with `extra`,
        ``gradient_steps: {arm: {budget_key: steps}}``.
    table : dict of str -> ndarray
        The same as a curve table with a ``labels_per_class`` column (all: the pool's mean).
    budgets : dict of int -> ndarray
        The indices into the training split used at each budget (the same for every arm).
    """
    budgets = nested_budgets(ds.y_train, cfg.label_budgets, rng, N_CLASSES)
    init_seed = int(rng.integers(2**63 - 1))  # one initial draw for every budget
    hidden = cfg.mlp_hidden or cfg.snn.n_exc
    sizes = [ds.X_train.shape[1], hidden, N_CLASSES]
    extra = dict(extra or {})
    rows: dict[str, list[float | None]] = {c: [] for c in (*COLUMNS, *extra)}
    steps: list[int | None] = []
    epochs: list[int | None] = []
    labelled: list[int] = []
    extra_steps: dict[str, list[int]] = {name: [] for name in extra}
    items = budgets.items() if progress is None else progress(budgets.items(), len(budgets))
    for k, idx in items:
        X, y = ds.X_train[idx], ds.y_train[idx]
        labelled.append(len(idx))
        if with_mlp:
            net = MLP(sizes, "relu", "softmax", bias=False, init="he",
                      rng=np.random.default_rng(init_seed))
            batch = min(cfg.mlp_batch_size, len(idx))
            history = train(net, X, y, loss=LOSS, optimizer="adam", lr=cfg.mlp_lr,
                            epochs=cfg.budget_max_epochs, batch_size=batch, rng=rng,
                            X_val=ds.X_val, y_val=ds.y_val, patience=cfg.budget_patience)
            ran = len(history.epochs["loss"])
            epochs.append(ran)
            steps.append(ran * math.ceil(len(idx) / batch))
            rows["mlp"].append(float(np.mean(net.predict(ds.X_test) == ds.y_test))
                               if history.status == "COMPLETED" else None)
        else:
            epochs.append(None)
            steps.append(None)
            rows["mlp"].append(None)
        for name, (trainer, _) in extra.items():
            acc, n_steps = trainer(idx, k, init_seed)
            rows[name].append(acc)
            extra_steps[name].append(n_steps)
        for name, acc in pixel_baselines(X, y, ds.X_test, ds.y_test).items():
            rows[name].append(acc)
        if stdp_counts is None:
            rows["stdp_vote"].append(None)
            rows["stdp_logistic"].append(None)
        else:
            out = readouts(stdp_counts[0][idx], y, stdp_counts[1], ds.y_test, N_CLASSES)
            rows["stdp_vote"].append(out["vote"])
            rows["stdp_logistic"].append(out["logistic"])
    keys = [budget_key(k) for k in budgets]
    metrics = {arm: dict(zip(keys, values, strict=True)) for arm, values in rows.items()}
    metrics.update(
        labelled_examples=dict(zip(keys, labelled, strict=True)),
        mlp_gradient_steps=dict(zip(keys, steps, strict=True)),
        mlp_epochs=dict(zip(keys, epochs, strict=True)),
        validation_labels=0 if ds.y_val is None else len(ds.y_val),
        given={
            **({"mlp": "the budget's labelled digits; validation labels for early stopping "
                       "only"} if with_mlp else {}),
            **({"stdp": f"all {len(ds.y_train)} training digits without labels (STDP), then "
                        "the budget's labelled digits for the readout"}
               if stdp_counts is not None else {}),
            "pixel baselines": "the budget's labelled digits",
            **{name: given for name, (_, given) in extra.items()},
        },
    )
    if extra:
        metrics["gradient_steps"] = {name: dict(zip(keys, s, strict=True))
                                     for name, s in extra_steps.items()}
    per_class = [k if k else len(ds.y_train) / N_CLASSES for k in budgets]
    table = {"labels_per_class": np.array(per_class, dtype=float),
             "labelled_examples": np.array(labelled, dtype=float),
             "mlp_gradient_steps": np.array([np.nan if s is None else s for s in steps],
                                            dtype=float)}
    for name, s in extra_steps.items():
        table[f"{name}_gradient_steps"] = np.array(s, dtype=float)
    for arm, values in rows.items():
        if any(v is not None for v in values):
            table[arm] = np.array([np.nan if v is None else v for v in values])
    return metrics, table, budgets
