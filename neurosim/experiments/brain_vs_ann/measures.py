"""Data and the measurements every arm shares: the split and its coding, the common checkpoints,
accuracy, robustness sweeps, energy per inference and population activity."""

from __future__ import annotations

import math

import numpy as np

from neurosim import data, lesion
from neurosim.analysis.energy import EnergyModel, energy_band, energy_nj
from neurosim.analysis.stats import summary
from neurosim.analysis.synchrony import synchrony_test
from neurosim.experiments.brain_vs_ann.config import (
    N_CLASSES,
    Config,
)
from neurosim.snn import activity
from neurosim.snn.encoding import on_off
from neurosim.snn.readout import assign_labels
from neurosim.spikes import Spikes

# --- data --------------------------------------------------------------------------------------


def load(cfg: Config, seed: int) -> data.Dataset:
    """Pixels in [0, 1], split as stdp_digits splits them (the STDP arm codes them ON/OFF)."""
    return data.load_images(cfg.dataset, seed, data_dir=cfg.data_dir, n_train=cfg.n_train,
                            n_test=cfg.n_test, val_fraction=cfg.val_fraction)


def stdp_coding(cfg: Config, X: np.ndarray) -> np.ndarray:
    return on_off(X) if cfg.input_coding == "on_off" else np.asarray(X, dtype=float)


def chunk_ends(n: int, epochs: int, chunk: int) -> list[int]:
    """Samples seen after each chunk of an STDP training run (where it can be snapshotted)."""
    return sorted({e * n + min(c * chunk, n) for e in range(epochs)
                   for c in range(1, math.ceil(n / chunk) + 1)})


def checkpoint_plan(cfg: Config, n: int) -> dict[str, list[int]]:
    """Samples seen at which each arm is scored: the configured checkpoints moved to the
    STDP network's next chunk end (where it can be snapshotted), plus each arm's end.

    Returns
    -------
    dict
        ``stdp`` and ``mlp`` (also the converted network's) lists of sample counts; the
        ones both reach are equal.
    """
    stdp_total, mlp_total = cfg.stdp_epochs * n, cfg.mlp_epochs * n
    ends = chunk_ends(n, cfg.stdp_epochs, cfg.chunk)
    stdp = {min(e for e in ends if e >= c) for c in cfg.checkpoints if c <= stdp_total}
    stdp.add(stdp_total)
    mlp = {c for c in stdp if c <= mlp_total}
    mlp |= {c for c in cfg.checkpoints if stdp_total < c <= mlp_total}
    mlp.add(mlp_total)
    return {"stdp": sorted(stdp), "mlp": sorted(mlp)}


# --- shared measurements -----------------------------------------------------------------------


def sweep_digits(cfg: Config, n_eval: int) -> int:
    """How many of the `n_eval` evaluation digits the lesion and noise sweeps score (the
    first ones, the same for every arm): ``n_eval_sweeps``, or all of them when it is 0."""
    return min(cfg.n_eval_sweeps or n_eval, n_eval)


def mlp_logits(weights: list[np.ndarray], X: np.ndarray) -> np.ndarray:
    """Bias-free ReLU network: the output layer's pre-activations."""
    a = np.asarray(X, dtype=np.float64)
    for W in weights[:-1]:
        a = np.maximum(a @ W, 0.0)
    return a @ weights[-1]


def accuracy(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.asarray(pred) == np.asarray(y)))


def robustness(levels: tuple[float, ...], repeats: int, score) -> np.ndarray:
    """``score(level, repeat)`` for every level and repeat: array (n_levels, repeats)."""
    return np.array([[score(level, r) for r in range(repeats)] for level in levels])


def sweep_summary(levels: tuple[float, ...], accs: np.ndarray, column: str,
                  extra: dict[str, np.ndarray] | None = None):
    """Curve table and metrics of a robustness sweep (sample sd over the draws).

    The table also holds the retention of every level (`retention`): each draw's accuracy
    over the mean accuracy of the draws at level 0 (`levels` must hold 0).
    """
    stats = [(s["mean"], s["sd"]) for s in map(summary, accs)]
    clean = float(np.mean(accs[list(levels).index(0.0)]))
    kept = accs / clean if clean > 0 else np.full(accs.shape, np.nan)
    ret = [(s["mean"], s["sd"]) for s in map(summary, kept)]
    table = {column: np.asarray(levels, float),
             "accuracy_mean": np.array([m for m, _ in stats]),
             "accuracy_sd": np.array([np.nan if s is None else s for _, s in stats]),
             "retention_mean": np.array([np.nan if m is None else m for m, _ in ret]),
             "retention_sd": np.array([np.nan if s is None else s for _, s in ret])}
    for r in range(accs.shape[1]):
        table[f"accuracy_draw{r}"] = accs[:, r]
    table.update(extra or {})
    metrics = {lesion.percent_key(lv): {"mean": m, "sd": s}
               for lv, (m, s) in zip(levels, stats, strict=True)}
    return table, metrics


def retention(table: dict[str, np.ndarray], column: str) -> dict[str, dict]:
    """Retention (accuracy / the same arm's undamaged accuracy) of a `sweep_summary` table as
    metrics: level -> ``{"mean", "sd"}`` (sample sd over the draws; None where undefined)."""
    return {lesion.percent_key(lv): {"mean": _finite(m), "sd": _finite(s)}
            for lv, m, s in zip(table[column], table["retention_mean"], table["retention_sd"],
                                strict=True)}


def _finite(x: float) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None


def curve_metrics(learning: dict) -> dict[str, float]:
    """A learning curve as metrics: samples seen (as a string key) -> accuracy."""
    return {str(int(s)): float(acc) for s, acc in
            zip(learning["samples_seen"], learning["test_accuracy"], strict=True)}


def energy(cfg: Config, *, macs: float = 0.0, events: float = 0.0, units: float = 0.0,
           updates: float = 0.0, leaky: bool = False) -> dict:
    """Energy per inference (nJ) from operation counts (`neurosim.analysis.energy.energy_nj`).

    ``energy_ops_nj`` counts the synaptic operations only (MACs at `mac_pj`, synaptic events
    at `add_pj`), the figure most SNN-vs-ANN comparisons quote. ``energy_total_nj`` adds
    what a time-stepped machine also pays: one memory access (`mem_pj`) per weight read
    (per MAC or synaptic event), a read and a write of the target's state per synaptic event,
    a read and a write of every neuron's state at every time step (`updates`), one MAC per
    neuron update for a leak, and a write and a read of every MLP unit's activation (`units`).
    ``energy_band_total_nj`` gives the total under each published model of
    `ENERGY_MODELS` (fp32 and int8 at 45 nm, TrueNorth, Loihi): the assumptions' spread.
    """
    counts = {"macs": macs, "events": events, "units": units, "updates": updates,
              "leaky": leaky}
    own = EnergyModel(cfg.mac_pj, cfg.add_pj, cfg.mem_pj, None, "Config: mac_pj, add_pj, mem_pj")
    out = energy_nj(own, **counts)
    out["energy_band_total_nj"] = {name: e["energy_total_nj"]
                                   for name, e in energy_band(**counts).items()}
    return out


def nonzero_macs(weights: list[np.ndarray], X: np.ndarray) -> float:
    """MACs per sample of a bias-free ReLU network when a zero input to a layer costs
    nothing (a zero pixel, a silent ReLU unit): mean over samples of sum over layers of
    (non-zero inputs) x (units of the layer)."""
    a = np.asarray(X, dtype=np.float64)
    total = np.zeros(len(a))
    for k, W in enumerate(weights):
        total += np.count_nonzero(a, axis=1) * W.shape[1]
        if k < len(weights) - 1:
            a = np.maximum(a @ W, 0.0)
    return float(total.mean())


#: The synchrony metrics of a spiking arm (`synchrony`): measured value, the surrogates' mean
#: and sample sd, the empirical one-sided p, for spike contrast and the binned correlation.
SYNCHRONY_KEYS = tuple(f"{m}{suffix}" for m in ("spike_contrast", "correlation")
                       for suffix in ("", "_surrogate", "_surrogate_sd", "_p")) + (
    "spike_contrast_bin_ms", "sync_neurons_active", "sync_neurons_analysed")


def synchrony(cfg: Config, spikes: Spikes, windows: np.ndarray,
              rng: np.random.Generator) -> dict[str, float | int | None]:
    """Synchrony of a spiking arm against stimulus-preserving surrogates, as flat metrics
    (`SYNCHRONY_KEYS`; `neurosim.analysis.synchrony.synchrony_test`).

    Parameters
    ----------
    spikes : Spikes
        The population's spikes.
    windows : ndarray of shape (n_windows, 2)
        Start and end (s) of every presentation: only spikes inside count, and surrogates
        move spikes only within them (the silent gaps between digits are cut out).
    """
    out: dict[str, float | int | None] = dict.fromkeys(SYNCHRONY_KEYS)
    if not activity.available():
        return out
    res = synchrony_test(spikes, windows, rng, method=cfg.sync_method,
                         n_surrogates=cfg.n_surrogates, dither_ms=cfg.sync_dither_ms,
                         bin_ms=cfg.sync_bin_ms, max_neurons=cfg.sync_neurons,
                         contrast_surrogates=cfg.sync_contrast_surrogates)
    for m in ("spike_contrast", "correlation"):
        r = res[m]
        out.update({m: r["value"], f"{m}_surrogate": r["surrogate_mean"],
                    f"{m}_surrogate_sd": r["surrogate_sd"], f"{m}_p": r["p"]})
    out.update(spike_contrast_bin_ms=res["spike_contrast_bin_ms"],
               sync_neurons_active=res["n_active"], sync_neurons_analysed=res["n_analysed"])
    return out


def population_activity(counts_or_acts: np.ndarray) -> dict[str, float]:
    return {"active_fraction": activity.active_fraction(counts_or_acts),
            "treves_rolls_sparseness": activity.treves_rolls(counts_or_acts)}


def order_by_class(responses: np.ndarray, y: np.ndarray, assignments=None):
    """Units sorted by the class they answer most (or by given assignments): the order and
    where each class's block starts (for the activity panels)."""
    if assignments is None:
        assignments = assign_labels(responses, y, N_CLASSES)
    order = np.lexsort((-responses.mean(axis=0), assignments))
    starts = np.searchsorted(assignments[order], np.arange(N_CLASSES))
    return order, starts
