"""Song, Miller & Abbott (2000): additive STDP makes the input weights bimodal.

One conductance-based LIF neuron, 1,000 Poisson inputs at 15 Hz, additive STDP with depression
5% stronger than potentiation, 100 s. Expected (the paper's Fig. 1; docs/experiments.md): at least
15% of the weights below 0.1 g_max and at least 15% above 0.9 g_max at the end, the output rate
settling at a few Hz whatever the initial weights.

Parameters: these are **Brian2's adaptation** of the model (the ``synapses/STDP.py`` example,
"adapted from Song, Miller and Abbott (2000) and Song and Abbott (2001)"), value for value
(`neurosim.snn.song2000.SongParams`), not the paper's own. The same as the paper: τ+ = τ- =
20 ms, A-/A+ = 1.05 (additive, hard bounds [0, g_max]), threshold -54 mV, reset -60 mV,
E_exc 0 mV, τ_exc 5 ms, 1,000 excitatory Poisson inputs. Different (the paper's Methods as
reproduced by Brian 1's example of them; not re-read in full text here): τm 10 ms (paper
20 ms), leak reversal -74 mV (-70 mV), g_max 0.01 (0.015, in units of the leak conductance),
A+ 0.01 g_max (0.005 g_max: learning here is twice as fast per pairing), every input at 15 Hz
(the paper: rates of 10-40 Hz), and no inhibitory inputs (the paper: 200 at 10 Hz through
fixed conductances). The bimodal outcome is the paper's; its exact timing and output rate are
this adaptation's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from neurosim import plots
from neurosim.runner.contract import Context, Result
from neurosim.snn.song2000 import SongParams
from neurosim.validation import require, require_choice, require_positive

RASTER_S = 1.0  # seconds of input spikes kept for the raster (the first and the last)
N_RASTER_INPUTS = 100  # inputs shown in the raster


@dataclass(frozen=True)
class Config:
    duration_s: float = 100.0  # simulated time (the paper: 100 s for Fig. 1)
    snapshot_s: float = 1.0  # weights recorded every this many seconds
    backend: str = "auto"  # Brian2 target: auto (cython if it builds, else numpy), numpy, cython
    song: SongParams = field(default_factory=SongParams)  # model constants

    def __post_init__(self):  # the model's own constants check themselves (SongParams)
        require_positive("duration_s", self.duration_s)
        require_positive("snapshot_s", self.snapshot_s)
        require(self.snapshot_s <= self.duration_s, "snapshot_s must be <= duration_s")
        n_snap = self.duration_s / self.snapshot_s
        require(abs(n_snap - round(n_snap)) < 1e-9,
                f"snapshot_s ({self.snapshot_s}) must divide duration_s ({self.duration_s})")
        steps = self.snapshot_s * 1000 / self.song.dt_ms
        require(abs(steps - round(steps)) < 1e-6,
                f"snapshot_s ({self.snapshot_s}) must be a whole number of time steps "
                f"(song.dt_ms={self.song.dt_ms})")
        require_choice("backend", self.backend, ("auto", "numpy", "cython"))


QUICK = {"duration_s": 2.0, "snapshot_s": 0.5, "backend": "numpy"}


HEADLINE = ("frac_low", "frac_high", "bimodal", "output_rate_last_10pct_hz", "train_seconds")


def run(cfg: Config, ctx: Context) -> Result:
    from neurosim.snn import backend
    from neurosim.snn.song2000 import SongNetwork

    target = backend.select(cfg.backend)
    backend.seed(ctx.rng)
    net = SongNetwork(cfg.song, ctx.rng)
    w_start = net.weights.copy()
    n_snap = int(round(cfg.duration_s / cfg.snapshot_s))
    snapshots, times = [w_start], [0.0]
    t0 = time.perf_counter()
    bar = ctx.progress(range(n_snap), total=n_snap, desc="simulated seconds")
    last = n_snap - 1
    stopped = False
    try:
        for k in bar:
            # input spikes are recorded only in the first and last second (memory)
            record = k * cfg.snapshot_s < RASTER_S or k == last
            net.run(cfg.snapshot_s, record_inputs=record)
            snapshots.append(net.weights.copy())
            times.append((k + 1) * cfg.snapshot_s)
    except KeyboardInterrupt:  # keep the snapshots simulated so far
        stopped = True
    seconds = time.perf_counter() - t0
    result = _result(net, snapshots, times, cfg, seconds)
    result.meta.update(target.meta())
    if stopped:
        result.status = "INTERRUPTED"
    if result.metrics["output_spikes"] == 0:
        result.warnings.append("the output neuron never fired: check the input rate and g_max")
    return result


def _result(net, snapshots: list[np.ndarray], times: list[float], cfg: Config,
            seconds: float) -> Result:
    """What the figures and metrics need, from the first len(snapshots) - 1 snapshots."""
    duration = times[-1]
    w_start, w_end = snapshots[0], snapshots[-1]
    out_t = np.asarray(net.out_mon.t[:])
    out_t = out_t[out_t < duration]
    bins = np.asarray(times)
    rate = np.histogram(out_t, bins=bins)[0] / cfg.snapshot_s
    tail = out_t > duration * 0.9
    in_i, in_t = np.asarray(net.in_mon.i[:]), np.asarray(net.in_mon.t[:])
    shown = (in_i < N_RASTER_INPUTS) & (in_t < duration)
    tenth = max(duration * 0.1, 1e-12)
    metrics = {
        "frac_low": float(np.mean(w_end < 0.1)),
        "frac_high": float(np.mean(w_end > 0.9)),
        "bimodal": bool(np.mean(w_end < 0.1) >= 0.15 and np.mean(w_end > 0.9) >= 0.15),
        "mean_weight_start": float(w_start.mean()),
        "mean_weight_end": float(w_end.mean()),
        "output_rate_first_10pct_hz": float(np.sum(out_t < duration * 0.1) / tenth),
        "output_rate_last_10pct_hz": float(tail.sum() / tenth),
        "output_spikes": int(len(out_t)),
        "simulated_seconds": duration,
        "train_seconds": round(seconds, 3),
    }
    return Result(
        metrics=metrics,
        curves={"snapshots": {"time_s": bins[1:], "output_rate_hz": rate,
                              "mean_weight": np.array(snapshots)[1:].mean(axis=1)}},
        arrays={"w_start": w_start, "w_end": w_end, "weights_over_time": np.array(snapshots),
                "snapshot_times_s": np.array(times), "input_i": in_i[shown],
                "input_t": in_t[shown], "output_t": out_t},
        spikes={"output": {"i": np.zeros(len(out_t), dtype=np.int64), "t": out_t,
                           "t_stop": duration, "n_neurons": 1}},
    )


def figures(result: Result) -> dict:
    a, c, m = result.arrays, result.curves["snapshots"], result.metrics
    fig, axes = plots.figure(2, 2, size=(5.0, 3.5))
    bins = np.linspace(0, 1, 41)
    ax = axes[0, 0]
    plots.histogram(ax, a["w_start"], bins=bins, label="start", alpha=0.6, color="0.5",
                    xlabel="weight / $g_{max}$", ylabel="synapses")
    plots.histogram(ax, a["w_end"], bins=bins, label="end", alpha=0.7, color=plots.COLORS["snn"],
                    xlabel="weight / $g_{max}$", ylabel="synapses")
    ax.set_title(f"{m['frac_low']:.0%} below 0.1, {m['frac_high']:.0%} above 0.9 at the end")
    ax = axes[0, 1]
    img = ax.imshow(a["weights_over_time"].T[np.argsort(a["w_end"])], aspect="auto",
                    cmap="viridis", vmin=0, vmax=1, interpolation="nearest",
                    extent=(0, float(a["snapshot_times_s"][-1]), 0, a["w_end"].size))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("synapse (sorted by final weight)")
    ax.set_title("weights over time")
    ax.figure.colorbar(img, ax=ax, label="weight / $g_{max}$")
    ax = axes[1, 0]
    t_end = float(c["time_s"][-1])
    first = a["input_t"] < RASTER_S
    plots.raster(ax, a["input_i"][first], a["input_t"][first], color="0.4", markersize=2,
                 ylabel="input (first 100) / output", t_stop=RASTER_S)
    out = a["output_t"][a["output_t"] < RASTER_S]
    ax.plot(out, np.full(len(out), N_RASTER_INPUTS + 5), "|", color=plots.COLORS["snn"],
            markersize=10)
    ax.set_ylim(-1, N_RASTER_INPUTS + 10)
    ax.set_title(f"first second of {t_end:g} s (red: output spikes)")
    ax = axes[1, 1]
    plots.curve(ax, c["time_s"], c["output_rate_hz"], xlabel="time (s)",
                ylabel="output rate (Hz)", color=plots.COLORS["snn"])
    ax.set_title("output rate")
    return {"stdp_song2000": fig}
