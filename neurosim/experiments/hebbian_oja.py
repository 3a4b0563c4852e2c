"""Oja's rule finds the first principal component; plain Hebb diverges.

A linear neuron y = w·x sees zero-mean correlated Gaussian inputs one at a time. Plain Hebbian
learning (dw = eta y x) grows |w| without bound; Oja (1982) adds a decay -eta y^2 w that keeps
|w| = 1, and w turns to the inputs' first principal component. Expected: |cos(w, PC1)| > 0.99
and |w| ~ 1 in 2-D and 10-D; Hebb overflowing; Hebb with explicit normalisation also finding PC1.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from neurosim import plots
from neurosim.runner.contract import Context, Result
from neurosim.snn.hebbian import correlated_gaussian, first_pc, runaway_step, train_rule
from neurosim.validation import require, require_positive


@dataclass(frozen=True)
class Config:
    n_steps: int = 5000  # input vectors presented (one update each)
    eta: float = 0.005  # learning rate; Oja is stable for eta * largest eigenvalue << 1
    eta_10d: float = 0.001  # learning rate in 10-D (largest eigenvalue 6)
    n_steps_10d: int = 20000  # presentations in 10-D (slower: eigenvalues 6 vs 3 are closer)
    var_x1: float = 3.0  # 2-D covariance [[var_x1, cov_12], [cov_12, var_x2]]
    var_x2: float = 1.0
    cov_12: float = 1.5

    def __post_init__(self):
        require(self.n_steps >= 10, f"n_steps must be >= 10, got {self.n_steps}")
        require(self.n_steps_10d >= 10, f"n_steps_10d must be >= 10, got {self.n_steps_10d}")
        require_positive("eta", self.eta)
        require_positive("eta_10d", self.eta_10d)
        require_positive("var_x1", self.var_x1)
        require_positive("var_x2", self.var_x2)
        require(self.cov_12**2 < self.var_x1 * self.var_x2,
                "cov_12**2 must be < var_x1 * var_x2 (a valid covariance)")


QUICK = {"n_steps": 2000, "n_steps_10d": 6000}

EIGENVALUES_10D = np.array([6.0, 3.0, 2.0, 1.5, 1.0, 0.8, 0.6, 0.4, 0.3, 0.2])


def _cos(w: np.ndarray, pc: np.ndarray) -> np.ndarray:
    """|cos| between each row of w and pc."""
    with np.errstate(invalid="ignore", over="ignore"):
        return np.abs(w @ pc) / np.linalg.norm(w, axis=-1)


def run(cfg: Config, ctx: Context) -> Result:
    t0 = time.perf_counter()
    rng = ctx.rng
    cov2 = np.array([[cfg.var_x1, cfg.cov_12], [cfg.cov_12, cfg.var_x2]])
    X2 = correlated_gaussian(cfg.n_steps, cov2, rng)
    pc2 = first_pc(X2)
    w0 = rng.normal(size=2) * 0.1
    oja2 = train_rule("oja", X2, w0, cfg.eta)
    hebb2 = train_rule("hebb", X2, w0, cfg.eta)
    hebbn2 = train_rule("hebb_normalised", X2, w0 / np.linalg.norm(w0), cfg.eta)

    Q, _ = np.linalg.qr(rng.normal(size=(10, 10)))
    cov10 = Q @ np.diag(EIGENVALUES_10D) @ Q.T
    X10 = correlated_gaussian(cfg.n_steps_10d, cov10, rng)
    pc10 = first_pc(X10)
    oja10 = train_rule("oja", X10, rng.normal(size=10) * 0.1, cfg.eta_10d)

    # runaway trajectories are handled explicitly below: no overflow warnings on the way
    with np.errstate(over="ignore", invalid="ignore"):
        hebb_norm = np.linalg.norm(hebb2, axis=1)
        finite = np.isfinite(hebb_norm) & (hebb_norm < 1e30)
        overflow_step = int(np.argmin(finite)) if not finite.all() else None
        metrics = {
            "cos_pc1_2d": float(_cos(oja2[-1], pc2)),
            "norm_2d": float(np.linalg.norm(oja2[-1])),
            "cos_pc1_10d": float(_cos(oja10[-1], pc10)),
            "norm_10d": float(np.linalg.norm(oja10[-1])),
            "hebb_normalised_cos_pc1_2d": float(_cos(hebbn2[-1], pc2)),
            "hebb_norm_step_100": float(hebb_norm[min(100, len(hebb_norm) - 1)]),
            "hebb_norm_final": float(hebb_norm[-1]) if finite[-1] else None,
            "hebb_overflow_step": overflow_step,  # first step with |w| > 1e30 (None: never)
            "train_seconds": round(time.perf_counter() - t0, 4),
        }
        n2 = len(oja2)
        curves = {
            "step": np.arange(n2),
            "oja_cos_2d": _cos(oja2, pc2),
            "oja_norm_2d": np.linalg.norm(oja2, axis=1),
            "hebb_norm_2d": np.where(finite, hebb_norm, np.nan),
            "hebb_normalised_cos_2d": _cos(hebbn2, pc2),
        }
        arrays = {"X2": X2[:1000], "pc2": pc2, "oja_w2": oja2[-1],
                  "oja10_cos": _cos(oja10, pc10), "oja10_norm": np.linalg.norm(oja10, axis=1),
                  "eigenvalues_10d": EIGENVALUES_10D}
    result = Result(metrics=metrics, curves={"steps": curves}, arrays=arrays)
    steps = {name: runaway_step(traj) for name, traj in (
        ("oja 2-D", oja2), ("normalised Hebb 2-D", hebbn2), ("oja 10-D", oja10))}
    runaways = [f"{name} at step {k}" for name, k in steps.items() if k is not None]
    if runaways:  # plain Hebb is meant to run away; Oja's rule is not
        result.status = "DIVERGED"
        result.warnings.append(f"weights ran away (|w| >= 1e6 or NaN/inf): "
                               f"{', '.join(runaways)}; eta too large for the inputs' "
                               "variance: eta * largest eigenvalue must be << 1")
    return result



def figures(result: Result) -> dict:
    a, c, m = result.arrays, result.curves["steps"], result.metrics
    fig, axes = plots.figure(3, size=(4.3, 3.6))
    ax = axes[0, 0]
    ax.scatter(a["X2"][:, 0], a["X2"][:, 1], s=3, alpha=0.3, color="gray", label="inputs x")
    scale = 2.5 * np.sqrt(np.max(np.var(a["X2"], axis=0)))
    for vec, color, label in ((a["pc2"], "k", "PC1"), (a["oja_w2"], plots.COLORS["mlp"], "Oja w")):
        v = vec / np.linalg.norm(vec) * scale * (1 if label == "PC1" else 0.8)
        ax.annotate("", xy=v, xytext=(0, 0),
                    arrowprops={"arrowstyle": "->", "color": color, "lw": 2})
        ax.plot([], [], color=color, lw=2, label=label)
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.legend(frameon=False, loc="upper left")
    ax.set_title(f"2-D: |cos(w, PC1)| = {m['cos_pc1_2d']:.4f}")
    ax = axes[0, 1]
    plots.curve(ax, c["step"], c["oja_cos_2d"], label="Oja |cos(w, PC1)|", xlabel="step",
                ylabel="value", color=plots.COLORS["mlp"])
    plots.curve(ax, c["step"], c["oja_norm_2d"], label="Oja |w|", xlabel="step", ylabel="value",
                color=plots.COLORS["val"])
    plots.curve(ax, np.arange(len(a["oja10_cos"])) * (len(c["step"]) / len(a["oja10_cos"])),
                a["oja10_cos"], label="Oja 10-D |cos|", xlabel="step (10-D rescaled)",
                ylabel="value", color=plots.COLORS["test"], ls="--")
    ax.set_ylim(0, 1.3)
    ax.set_title("Oja's rule converges")
    ax = axes[0, 2]
    plots.curve(ax, c["step"], c["hebb_norm_2d"], label="plain Hebb |w|", xlabel="step",
                ylabel="|w|", logy=True, color=plots.COLORS["snn"])
    plots.curve(ax, c["step"], c["oja_norm_2d"], label="Oja |w|", xlabel="step", ylabel="|w|",
                logy=True, color=plots.COLORS["mlp"])
    step = m["hebb_overflow_step"]
    ax.set_title("plain Hebb diverges" + (f" (|w| > 1e30 at step {step})" if step else ""))
    return {"hebbian_oja": fig}
