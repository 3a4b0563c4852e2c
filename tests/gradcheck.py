"""Central finite differences, shared by the gradient-check tests."""

from __future__ import annotations

import numpy as np

EPS = 1e-6  # central-difference step (float64): truncation ~EPS^2, rounding ~1e-16/EPS


def numeric_grad(f, x: np.ndarray) -> np.ndarray:
    """Central differences of the scalar function f at x (float64); x is restored."""
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + EPS
        up = f(x)
        x[idx] = old - EPS
        down = f(x)
        x[idx] = old
        g[idx] = (up - down) / (2 * EPS)
    return g
