"""Means and sample standard deviations over replicates, seeds and repeated draws: the one
implementation every experiment and summary uses.

The spread is always the *sample* standard deviation (ddof=1): the replicates are a sample of
what another seed would give, not the whole population. Non-finite values (a replicate that
diverged, a measure that is undefined) are left out, never counted as zeros.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def mean_sd(a: Any, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """NaN-aware mean and sample sd (ddof=1) along `axis`.

    Parameters
    ----------
    a : array_like of any shape
    axis : int
        The axis of the replicates.

    Returns
    -------
    mean, sd : ndarray of the shape of `a` without `axis`
        NaN where fewer than one (mean) or two (sd) finite values lie along `axis`.
    """
    a = np.asarray(a, dtype=float)
    ok = np.isfinite(a)
    n = ok.sum(axis=axis)
    total = np.where(ok, a, 0.0).sum(axis=axis)
    mean = np.divide(total, n, out=np.full(n.shape, np.nan), where=n > 0)
    dev = np.where(ok, a - np.expand_dims(mean, axis), 0.0)
    var = np.divide((dev ** 2).sum(axis=axis), n - 1, out=np.full(n.shape, np.nan),
                    where=n > 1)
    return mean, np.sqrt(var)


def summary(values: Any) -> dict[str, float | int | None]:
    """Mean, sample sd (ddof=1) and count of the finite `values`, as JSON-ready numbers.

    Returns
    -------
    dict
        ``{"mean": float or None, "sd": float or None, "n": int}``: the mean is None without
        a finite value, the sd None with fewer than two.
    """
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]  # left out before summing: the sums see exactly the finite values
    mean, sd = mean_sd(v)
    return {"mean": float(mean) if v.size else None,
            "sd": float(sd) if v.size > 1 else None, "n": int(v.size)}
