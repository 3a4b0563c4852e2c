"""Rate-based Hebbian learning in numpy: a linear neuron trained by plain Hebb, Oja or BCM.

The rules themselves live in `neurosim.plasticity`; this module runs them on one neuron (the
step functions below, the trajectories of `train_rule` and `train_bcm`) for the `hebbian_oja`
and `bcm_selectivity` experiments.

A linear rate neuron ``y = w · x`` sees one input vector at a time; each rule changes ``w`` from
quantities local to the synapse (pre-synaptic rate x_i, post-synaptic rate y), never from an
error signal. Step functions are pure: ``w_new = step(w, x, eta, state)``.

- Hebb (1949): what fires together wires together; unstable, |w| grows without bound.
- Oja (1982): Hebb plus a decay proportional to y^2 keeps |w| = 1, and w converges to the first
  principal component of the inputs.
- BCM (Bienenstock, Cooper & Munro 1982): potentiation when y is above a sliding threshold
  theta, depression below; theta tracks <y^2>, so the neuron becomes selective to one pattern.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from neurosim.plasticity import rules
from neurosim.validation import lookup, require


def hebb(w: np.ndarray, x: np.ndarray, eta: float) -> np.ndarray:
    r"""Plain Hebbian step of a linear neuron (`neurosim.plasticity.hebb`).

    .. math:: \Delta w = \eta\, y\, x,\quad y = w \cdot x
    """
    return w + rules.hebb(w, x, w @ x, eta=eta)


def hebb_normalised(w: np.ndarray, x: np.ndarray, eta: float) -> np.ndarray:
    r"""Hebb followed by explicit normalisation.

    .. math:: w \leftarrow (w + \eta y x) / |w + \eta y x|
    """
    w = hebb(w, x, eta)
    return w / np.linalg.norm(w)


def oja(w: np.ndarray, x: np.ndarray, eta: float) -> np.ndarray:
    r"""Oja's rule on a linear neuron (`neurosim.plasticity.oja`).

    .. math:: \Delta w = \eta\, y\, (x - y\, w),\quad y = w \cdot x
    """
    return w + rules.oja(w, x, w @ x, eta=eta)


RULES: dict[str, Callable[[np.ndarray, np.ndarray, float], np.ndarray]] = {
    "hebb": hebb,
    "hebb_normalised": hebb_normalised,
    "oja": oja,
}


def train_rule(rule: str, X: np.ndarray, w0: np.ndarray, eta: float,
               record_every: int = 1) -> np.ndarray:
    """Apply `rule` to the rows of `X` in order; return the weight trajectory.

    Parameters
    ----------
    rule : str
        A key of `RULES`.
    X : ndarray of shape (n_steps, n_inputs)
    w0 : ndarray of shape (n_inputs,)
    eta : float
        Learning rate.
    record_every : int
        Keep every k-th weight vector.

    Returns
    -------
    ndarray of shape (n_steps // record_every + 1, n_inputs)
        The weights before the first step and after every `record_every` steps. A rule that
        overflows keeps inf/NaN from there on (plain Hebb does).
    """
    step = lookup(RULES, rule, "rule")
    w = np.array(w0, dtype=float)
    traj = [w.copy()]
    with np.errstate(over="ignore", invalid="ignore"):
        for k, x in enumerate(X, start=1):
            w = step(w, x, eta)
            if k % record_every == 0:
                traj.append(w.copy())
    return np.array(traj)


# --- BCM ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BCMParams:
    """Constants of the BCM neuron (rates dimensionless, time in steps)."""

    eta: float = 0.02  # learning rate
    tau_theta: float = 20.0  # time constant (in steps) of the sliding threshold
    w_min: float = 0.0  # weights stay non-negative (excitatory synapses)

    def __post_init__(self):
        require(self.eta > 0, f"eta must be > 0, got {self.eta}")
        require(self.tau_theta >= 1, f"tau_theta must be >= 1 step, got {self.tau_theta}")


def bcm_step(w: np.ndarray, theta: float, x: np.ndarray,
             p: BCMParams) -> tuple[np.ndarray, float, float]:
    r"""One BCM update of weights and threshold; returns (w, theta, y).

    .. math:: y = w\cdot x,\quad \Delta w = \eta\, x\, y\, (y - \theta),\quad
              \Delta\theta = (y^2 - \theta)/\tau_\theta
    """
    y = max(float(w @ x), 0.0)  # a firing rate cannot be negative
    w = np.maximum(w + rules.bcm(w, x, y, eta=p.eta, theta=theta), p.w_min)
    return w, rules.bcm_threshold(theta, y, tau=p.tau_theta), y


def train_bcm(patterns: np.ndarray, n_steps: int, w0: np.ndarray, p: BCMParams,
              theta0: float = 0.0) -> dict[str, np.ndarray]:
    """Present the `patterns` in alternation for `n_steps`; record everything.

    Parameters
    ----------
    patterns : ndarray of shape (n_patterns, n_inputs)
    w0 : ndarray of shape (n_inputs,)

    Returns
    -------
    dict with ``w`` (n_steps + 1, n_inputs), ``theta`` and ``y`` (n_steps,), ``pattern``
    (n_steps,), the index shown at each step, and ``responses`` (n_steps + 1, n_patterns),
    the output to every pattern after each step. A run whose threshold overflows stops there
    (shorter arrays; `ran_away` tells).
    """
    w, theta = np.array(w0, dtype=float), float(theta0)
    ws, thetas, ys, shown = [w.copy()], [], [], []
    with np.errstate(over="ignore", invalid="ignore"):  # a runaway is the caller's to detect
        for k in range(n_steps):
            idx = k % len(patterns)
            w, theta, y = bcm_step(w, theta, patterns[idx], p)
            ws.append(w.copy())
            thetas.append(theta)
            ys.append(y)
            shown.append(idx)
            if not np.isfinite(theta):
                break  # overflowed: nothing after this is a number
        W = np.array(ws)
        responses = np.maximum(W @ patterns.T, 0.0)
    return {"w": W, "theta": np.array(thetas), "y": np.array(ys), "pattern": np.array(shown),
            "responses": responses}


def runaway_step(trajectory: np.ndarray, limit: float = 1e6) -> int | None:
    """The first row (step) of a trajectory that left the finite numbers or reached `limit`
    in size; None when none did."""
    t = np.asarray(trajectory, dtype=float).reshape(len(trajectory), -1)
    with np.errstate(invalid="ignore", over="ignore"):
        bad = ~(np.isfinite(t) & (np.abs(t) < limit)).all(axis=1)
    return int(np.argmax(bad)) if bad.any() else None


def ran_away(trajectory: np.ndarray, limit: float = 1e6) -> bool:
    """True when a weight trajectory left the finite numbers or grew past `limit` in size."""
    return runaway_step(trajectory, limit) is not None


def correlated_gaussian(n: int, cov: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean Gaussian samples of shape (n, d) with covariance `cov`."""
    return rng.multivariate_normal(np.zeros(len(cov)), cov, size=n)


def first_pc(X: np.ndarray) -> np.ndarray:
    """Unit first principal component of the rows of `X` (about the origin, as Oja's rule)."""
    _, _, vt = np.linalg.svd(X, full_matrices=False)
    return vt[0]
