"""The label-budget protocol: how good is each learner given k labelled examples per class?

Learning speed is measured against *labelled* examples, not optimisation steps: every arm gets
exactly the same labelled examples at each budget (`nested_budgets`: the budgets are nested, so
the 2-per-class set holds the 1-per-class set and a curve over budgets adds labels and nothing
else). A supervised network is trained to convergence on them (`fit_to_convergence`: early
stopping on a validation split that is used for stopping only); scikit-learn's classic
classifiers on the same pixels are the floor any learner should clear (`pixel_baselines`); an
unsupervised network's features are read out two ways (`readouts`): Diehl & Cook's vote of
labelled neurons and a logistic regression on the spike counts, so "how good are the features"
is kept apart from "how good is the readout".
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier, NearestCentroid
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from neurosim.validation import require

#: Pixel baselines: name -> factory given the number of labelled examples. Their settings are
#: the textbook ones (no tuning): 1-NN needs nothing to choose, logistic regression uses
#: scikit-learn's default C = 1 on standardised pixels.
BASELINES: dict[str, Callable[[int], Any]] = {
    "nearest_class_mean": lambda n: NearestCentroid(),
    "knn1": lambda n: KNeighborsClassifier(n_neighbors=1),
    "logistic": lambda n: make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
}


def nested_budgets(y: np.ndarray, per_class: Sequence[int], rng: np.random.Generator,
                   n_classes: int | None = None) -> dict[int, np.ndarray]:
    """Indices of the labelled examples at each budget, nested across budgets.

    Each class's examples are shuffled once; budget k takes the first k of every class (0
    stands for "all"). A budget larger than the smallest class is refused.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        Class of every example of the pool.
    per_class : sequence of int
        Labelled examples per class at each budget (0: all of them).
    rng : numpy.random.Generator

    Returns
    -------
    dict of int -> ndarray of shape (k * n_classes,), int64
        Sorted indices into `y` for every budget.
    """
    y = np.asarray(y)
    n_classes = int(y.max()) + 1 if n_classes is None else n_classes
    members = [rng.permutation(np.flatnonzero(y == c)) for c in range(n_classes)]
    smallest = min(len(m) for m in members)
    out = {}
    for k in per_class:
        require(k >= 0, f"label budgets must be >= 0 per class, got {k}")
        require(k <= smallest, f"label budget {k} per class exceeds the smallest class "
                               f"({smallest} examples)")
        take = [m if k == 0 else m[:k] for m in members]
        out[int(k)] = np.sort(np.concatenate(take)).astype(np.int64)
    return out


def score_classifiers(factories: Mapping[str, Callable[[int], Any]], X_lab: np.ndarray,
                      y_lab: np.ndarray, X_eval: np.ndarray, y_eval: np.ndarray
                      ) -> dict[str, float]:
    """Fit every scikit-learn classifier of `factories` on the labelled examples and return
    its accuracy on the evaluation examples."""
    out = {}
    for name, make in factories.items():
        clf = make(len(y_lab))
        # NearestCentroid also estimates within-class spreads, which one example per class
        # (or constant pixels) leaves at zero: moot for the class means it classifies by
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            warnings.filterwarnings("ignore", "self.within_class_std_dev_", UserWarning)
            clf.fit(X_lab, y_lab)
        out[name] = float(np.mean(clf.predict(X_eval) == y_eval))
    return out


def pixel_baselines(X_lab: np.ndarray, y_lab: np.ndarray, X_eval: np.ndarray,
                    y_eval: np.ndarray) -> dict[str, float]:
    """Accuracy of nearest class mean, 1-NN and logistic regression on pixels (`BASELINES`)."""
    return score_classifiers(BASELINES, X_lab, y_lab, X_eval, y_eval)


def readouts(F_lab: np.ndarray, y_lab: np.ndarray, F_eval: np.ndarray, y_eval: np.ndarray,
             n_classes: int) -> dict[str, float]:
    """Two readouts of an unsupervised layer's spike counts.

    ``vote``: every neuron takes the class it answers most on the labelled examples, a sample
    goes to the class whose neurons answer most (Diehl & Cook 2015; `neurosim.snn.readout`).
    ``logistic``: logistic regression on the standardised counts (a linear readout).

    Parameters
    ----------
    F_lab, F_eval : ndarray of shape (n_samples, n_neurons)
        Spike counts per sample.
    """
    from neurosim.snn.readout import assign_labels, predict

    assignments = assign_labels(F_lab, y_lab, n_classes)
    vote = float(np.mean(predict(F_eval, assignments, n_classes) == y_eval))
    linear = score_classifiers({"logistic": BASELINES["logistic"]}, F_lab, y_lab, F_eval,
                               y_eval)["logistic"]
    return {"vote": vote, "logistic": linear}
