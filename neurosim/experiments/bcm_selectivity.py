"""A BCM neuron fed two alternating patterns becomes selective to one of them.

Bienenstock, Cooper & Munro (1982): dw = eta x y (y - theta), with a threshold theta that
slides towards <y^2>. Both patterns start out driving the neuron alike; whichever gets ahead
is potentiated (y > theta) while the other is depressed (y < theta), until the neuron answers
one pattern strongly and the other hardly at all. Expected: selectivity 1 - min/max response
close to 1.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from neurosim import plots
from neurosim.runner.contract import Context, Result
from neurosim.snn.hebbian import BCMParams, ran_away, train_bcm
from neurosim.validation import require, require_fraction, require_positive


@dataclass(frozen=True)
class Config:
    n_inputs: int = 8  # inputs; pattern A drives the first half, pattern B the second
    overlap: float = 0.05  # rate of the inputs a pattern does not drive (shared background)
    n_steps: int = 4000  # presentations, alternating A, B, A, ...
    eta: float = 0.01  # learning rate
    tau_theta: float = 10.0  # threshold time constant in steps; must be fast vs. learning
    w_init_low: float = 0.2  # initial weights uniform in [w_init_low, w_init_high]
    w_init_high: float = 0.3

    def __post_init__(self):
        require(self.n_inputs >= 2 and self.n_inputs % 2 == 0,
                f"n_inputs must be an even number >= 2, got {self.n_inputs}")
        require_fraction("overlap", self.overlap)
        require(self.n_steps >= 2, f"n_steps must be >= 2, got {self.n_steps}")
        require_positive("eta", self.eta)
        require(self.tau_theta >= 1,  # below one step the threshold update overshoots
                f"tau_theta must be >= 1 (presentations), got {self.tau_theta}")
        require(0 <= self.w_init_low <= self.w_init_high,
                "need 0 <= w_init_low <= w_init_high")


QUICK = {"n_steps": 2000}


def run(cfg: Config, ctx: Context) -> Result:
    t0 = time.perf_counter()
    half = cfg.n_inputs // 2
    patterns = np.full((2, cfg.n_inputs), cfg.overlap)
    patterns[0, :half] = 1.0
    patterns[1, half:] = 1.0
    w0 = ctx.rng.uniform(cfg.w_init_low, cfg.w_init_high, cfg.n_inputs)
    rec = train_bcm(patterns, cfg.n_steps, w0, BCMParams(eta=cfg.eta, tau_theta=cfg.tau_theta))
    diverged = ran_away(rec["w"]) or ran_away(rec["theta"])
    if diverged:  # keep the steps before the runaway
        ok = np.isfinite(rec["theta"]) & (np.abs(rec["w"][1:]).max(axis=1) < 1e6)
        n_ok = int(np.argmin(ok)) if not ok.all() else len(ok)
        rec = {k: v[: n_ok + 1] if k in ("w", "responses") else v[:n_ok] for k, v in rec.items()}
    final = rec["responses"][-1]
    preferred = int(np.argmax(final))
    metrics = {
        "response_A": float(final[0]),
        "response_B": float(final[1]),
        "preferred": "AB"[preferred],
        "selectivity": float(1 - final.min() / final.max()) if final.max() > 0 else 0.0,
        "theta_final": float(rec["theta"][-1]) if len(rec["theta"]) else 0.0,
        "train_seconds": round(time.perf_counter() - t0, 4),
    }
    theta = np.concatenate([[0.0], rec["theta"]])
    # theta follows <y^2> within a few presentations, so it swings between the A and B steps;
    # its mean over the last A and B presentation is the threshold the pair sees
    theta_pair = np.concatenate([[0.0], (theta[1:] + theta[:-1]) / 2])
    curves = {"step": np.arange(len(theta)), "response_A": rec["responses"][:, 0],
              "response_B": rec["responses"][:, 1], "theta": theta, "theta_pair": theta_pair}
    arrays = {"w": rec["w"], "patterns": patterns}
    result = Result(metrics=metrics, curves={"steps": curves}, arrays=arrays)
    if diverged:
        result.status = "DIVERGED"
        result.warnings.append(f"weights ran away after {len(rec['theta'])} steps: eta "
                               f"{cfg.eta} is too large for these patterns")
    return result


def figures(result: Result) -> dict:
    c, a, m = result.curves["steps"], result.arrays, result.metrics
    fig, axes = plots.figure(2, size=(4.8, 3.6))
    ax = axes[0, 0]
    plots.curve(ax, c["step"], c["response_A"], label="response to A", xlabel="step",
                ylabel="output rate y", color=plots.COLORS["mlp"])
    plots.curve(ax, c["step"], c["response_B"], label="response to B", xlabel="step",
                ylabel="output rate y", color=plots.COLORS["snn"])
    plots.curve(ax, c["step"], np.sqrt(np.maximum(c["theta_pair"], 0)),
                label=r"$\sqrt{\theta}$ (mean over an A, B pair)", xlabel="step",
                ylabel="output rate y", color="k", ls="--", lw=1)
    ax.set_title(f"BCM: selective to {m['preferred']} (selectivity {m['selectivity']:.2f})")
    ax = axes[0, 1]
    img = ax.imshow(a["w"].T, aspect="auto", cmap="viridis", interpolation="nearest")
    half = a["w"].shape[1] // 2
    ax.axhline(half - 0.5, color="w", lw=1)
    ax.set_yticks([half / 2 - 0.5, half + half / 2 - 0.5], ["A inputs", "B inputs"])
    ax.set_xlabel("step")
    ax.set_title("weights over time")
    fig.colorbar(img, ax=ax, label="w")
    return {"bcm_selectivity": fig}
