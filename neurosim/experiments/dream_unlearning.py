"""Hopfield "dream" unlearning: dreams remove spurious memories, too many remove everything.

Hopfield, Feinstein & Palmer (1983) and Crick & Mitchison (1983): a Hebbian Hopfield network
storing P random patterns recalls them from noisy cues up to a load P/N of ~0.14 (Amit,
Gutfreund & Sompolinsky 1985); beyond it spurious attractors (mixtures, spin-glass states)
swallow the memories. A dream starts the network from a random state, lets it fall into an
attractor and weakens that attractor by a small anti-Hebbian step epsilon. Near and above
capacity random starts end mostly in spurious states, so these are unlearned most.

The run measures, over independent networks (each from its own stream,
``ctx.rng_for("network<k>")``), recall from noisy cues and an attractor census of random starts
at every load of `loads` after increasing amounts of sleep. The dream axis is the weight
unlearned per pattern stored, x = epsilon * D / P (D dreams): on it the loads line up
(`neurosim.sleep.hopfield` module docstring), so D = round(x P / epsilon) differs per load.
From the grid: capacity before and after unlearning, the best amount of sleep per load, and
the breakdown, where too much unlearning erases the memories too. A separate part
(``ctx.rng_for("hfp1983")``) repeats HFP's own setting: N=32, P=5, epsilon=0.01, ~300 dreams.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from neurosim import plots
from neurosim.analysis.stats import mean_sd, summary
from neurosim.runner.contract import Context, Result
from neurosim.sleep.hopfield import CURVES, HopfieldParams, dreams_for, unlearning_curves
from neurosim.validation import require, require_fraction, require_positive

AGS_CAPACITY = 0.138  # Amit, Gutfreund & Sompolinsky (1985): Hebbian capacity P/N, N -> inf
HFP_DREAMS = 300  # Hopfield, Feinstein & Palmer (1983): ~300 dreams at N=32, P=5, epsilon=0.01

#: census and recall measures summarised as mean and sample sd over networks
MEASURES = ("recall_overlap", "recall_success", "stable_fraction", "memory_share",
            "spurious_share", "exact_share", "n_spurious", "memories_reached", "memory_basin_cv")


@dataclass(frozen=True)
class HFPSetting:
    """The setting of Hopfield, Feinstein & Palmer (1983), measured on its own."""

    n_neurons: int = 32  # HFP 1983: N = 32
    n_patterns: int = 5  # HFP 1983: P = 5 (load 0.16, just above the Hebbian capacity)
    epsilon: float = 0.01  # HFP 1983: 0.01
    dreams: tuple[int, ...] = (0, 100, 300, 500, 1000)  # HFP: ~300; 1000 shows the breakdown
    n_networks: int = 20  # independent pattern sets; one costs ~0.2 s
    n_starts: int = 1000  # random starts of each census (HFP counted where starts end)

    def __post_init__(self):
        require(self.n_neurons >= 2, f"n_neurons must be >= 2, got {self.n_neurons}")
        require(1 <= self.n_patterns <= self.n_neurons,
                f"n_patterns must be in [1, n_neurons], got {self.n_patterns}")
        require_positive("epsilon", self.epsilon)
        require(len(self.dreams) >= 1 and min(self.dreams) >= 0
                and bool(np.all(np.diff(self.dreams) > 0)),
                f"dreams must be non-negative and increasing, got {list(self.dreams)}")
        require(self.n_networks >= 1, f"n_networks must be >= 1, got {self.n_networks}")
        require(self.n_starts >= 1, f"n_starts must be >= 1, got {self.n_starts}")


@dataclass(frozen=True)
class Config:
    n_neurons: int = 100  # N; Hebbian capacity ~0.138 N patterns (AGS 1985)
    loads: tuple[float, ...] = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)  # P/N, increasing
    unlearned: tuple[float, ...] = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.05, 1.1, 1.15, 1.2, 1.25,
                                    1.3)  # dream axis x = epsilon*D/P; breakdown at ~1.05-1.25
    epsilon: float = 0.01  # unlearning per dream, in units of one stored pattern (HFP: 0.01)
    n_networks: int = 3  # independent networks (pattern sets, dreams); ~13 s CPU each
    cue_flip: float = 0.1  # fraction of a pattern's bits flipped in a recall cue
    n_cues: int = 10  # noisy cues per stored pattern
    n_starts: int = 500  # random starts per attractor census; also caps the spurious count
    memory_overlap: float = 0.9  # |m| from which a cue or a start counts as reaching a memory
    max_sweeps: int = 100  # asynchronous sweeps before a relaxation counts as non-converged
    breakdown_overlap: float = 0.5  # recall overlap below which the memories count as erased
    capacity_success: float = 0.9  # capacity: load where the share of cues recalled drops below
    hfp: HFPSetting = field(default_factory=HFPSetting)  # the HFP 1983 setting

    def __post_init__(self):
        require(self.n_neurons >= 2, f"n_neurons must be >= 2, got {self.n_neurons}")
        loads = np.asarray(self.loads, dtype=float)
        require(loads.size >= 1 and bool(np.all(loads > 0)) and bool(np.all(np.diff(loads) > 0)),
                f"loads must be positive and increasing, got {list(self.loads)}")
        n_patterns = np.rint(loads * self.n_neurons)
        require(bool(np.all(n_patterns >= 1)) and bool(np.all(np.diff(n_patterns) > 0)),
                f"loads {list(self.loads)} at n_neurons={self.n_neurons} must store >= 1 "
                "pattern each and a different number of patterns each")
        x = np.asarray(self.unlearned, dtype=float)
        require(x.size >= 2 and x[0] == 0 and bool(np.all(np.diff(x) > 0)),
                f"unlearned must start at 0 (no dreams) and increase, got {list(self.unlearned)}")
        require_positive("epsilon", self.epsilon)
        require(self.n_networks >= 1, f"n_networks must be >= 1, got {self.n_networks}")
        # the library checks the rest (cue_flip, n_cues, n_starts, memory_overlap, max_sweeps)
        self.params()
        require(0 < self.breakdown_overlap < 1,
                f"breakdown_overlap must be in (0, 1), got {self.breakdown_overlap}")
        require_fraction("capacity_success", self.capacity_success)
        require(self.capacity_success > 0,
                f"capacity_success must be in (0, 1), got {self.capacity_success}")

    def params(self) -> HopfieldParams:
        return HopfieldParams(n_neurons=self.n_neurons, epsilon=self.epsilon,
                              max_sweeps=self.max_sweeps, cue_flip=self.cue_flip,
                              n_cues=self.n_cues, n_starts=self.n_starts,
                              memory_overlap=self.memory_overlap)


QUICK = {"n_neurons": 50, "loads": [0.1, 0.3], "unlearned": [0.0, 0.5, 1.0, 1.5],
         "n_networks": 2, "n_cues": 4, "n_starts": 200, "hfp.n_networks": 2,
         "hfp.dreams": [0, 300], "hfp.n_starts": 200}

HEADLINE = ("capacity.before.load.mean", "capacity.after.load.mean",
            "breakdown.unlearned.mean", "breakdown.unlearned_range",
            "hfp1983.dreams_0.memory_share.mean", "hfp1983.dreams_300.memory_share.mean",
            "hfp1983.dreams_0.spurious_share.mean", "hfp1983.dreams_300.spurious_share.mean",
            "nonconverged.total", "train_seconds")


# --- statistics over networks ------------------------------------------------------------------


def falls_below(x: np.ndarray, y: np.ndarray, level: float, start: int = 0) -> float:
    """First x after index `start` where y drops below `level`, linearly interpolated between
    the grid points; NaN if y is already below at `start` or never drops below."""
    if not y[start] >= level:
        return np.nan
    for j in range(start + 1, len(y)):
        if y[j] < level:
            return float(x[j - 1] + (y[j - 1] - level) / (y[j - 1] - y[j]) * (x[j] - x[j - 1]))
    return np.nan


def best_index(grid: dict, a: int) -> int:
    """The amount of sleep that serves load `a` best, chosen on the means over networks: most
    cues recalled, then highest recall overlap, then largest memory basin share."""
    keys = [grid[name][:, a].mean(axis=0)
            for name in ("memory_share", "recall_overlap", "recall_success")]
    return int(np.lexsort(keys)[-1])  # lexsort: last key is the primary one


# --- the run -----------------------------------------------------------------------------------


def run(cfg: Config, ctx: Context) -> Result:
    t0 = time.perf_counter()
    p = cfg.params()
    n_patterns = np.rint(np.asarray(cfg.loads) * cfg.n_neurons).astype(int)
    x = np.asarray(cfg.unlearned, dtype=float)
    counts = dreams_for(x, n_patterns, cfg.epsilon)  # (n_loads, n_x): D per load

    h = cfg.hfp
    hfp_p = replace(p, n_neurons=h.n_neurons, epsilon=h.epsilon, n_starts=h.n_starts)
    hfp = unlearning_curves([h.n_patterns / h.n_neurons], list(h.dreams), h.n_networks, hfp_p,
                            ctx.rng_for("hfp1983"))
    hfp = {name: hfp[name][:, 0] for name in CURVES}  # (n_networks, n_dreams)

    # one network at a time, each from its own stream: adding networks keeps the first ones,
    # and an interrupted run keeps the networks it finished
    nets: list[dict] = []
    for k in ctx.progress(range(cfg.n_networks), total=cfg.n_networks, desc="networks",
                          done_when="finished"):
        out = unlearning_curves(cfg.loads, counts, 1, p, ctx.rng_for(f"network{k}"))
        nets.append({name: out[name][0] for name in CURVES})
        grid = {name: np.stack([net[name] for net in nets]) for name in CURVES}
        if k < cfg.n_networks - 1:
            ctx.partial.report = ""  # merge appends reports; this one replaces the last
            ctx.partial.merge(summarise(cfg, grid, counts, hfp, time.perf_counter() - t0))
    return summarise(cfg, grid, counts, hfp, time.perf_counter() - t0)


def summarise(cfg: Config, grid: dict, counts: np.ndarray, hfp: dict, seconds: float) -> Result:
    """Metrics, curve tables, arrays and report from the per-network measurements.

    grid[name] : ndarray of shape (n_networks, n_loads, n_x); hfp[name] : (n_networks, n_hfp).
    """
    loads = np.asarray(cfg.loads, dtype=float)
    n_patterns = np.rint(loads * cfg.n_neurons).astype(int)
    x = np.asarray(cfg.unlearned, dtype=float)
    n_nets, n_loads, n_x = grid["recall_overlap"].shape
    best = np.array([best_index(grid, a) for a in range(n_loads)])
    sel = (slice(None), np.arange(n_loads), best)  # (n_networks, n_loads) at the best x

    # breakdown: per network, the first x past the peak recall where the overlap drops below
    # breakdown_overlap
    breakdown = np.full((n_nets, n_loads), np.nan)
    for k in range(n_nets):
        for a in range(n_loads):
            r = grid["recall_overlap"][k, a]
            breakdown[k, a] = falls_below(x, r, cfg.breakdown_overlap, int(np.argmax(r)))
    breakdown_dreams = breakdown * n_patterns / cfg.epsilon

    # capacity: per network, the load where the share of cues recalled drops below the criterion
    success_before = grid["recall_success"][:, :, 0]
    success_best = grid["recall_success"][sel]
    cap_before = np.array([falls_below(loads, s, cfg.capacity_success) for s in success_before])
    cap_after = np.array([falls_below(loads, s, cfg.capacity_success) for s in success_best])

    by_load = {}
    for a, (load, n_pat) in enumerate(zip(loads, n_patterns, strict=True)):
        b = best[a]
        ok = grid["recall_success"][:, a].mean(axis=0) >= 0.99
        by_load[f"P{n_pat}"] = {
            "load": float(load), "n_patterns": int(n_pat),
            "before": {m: summary(grid[m][:, a, 0]) for m in MEASURES},
            "best": {"unlearned": float(x[b]), "dreams": int(counts[a, b]),
                     **{m: summary(grid[m][:, a, b]) for m in MEASURES}},
            "recall_window_unlearned": [float(x[ok].min()), float(x[ok].max())] if ok.any()
            else None,
            "breakdown": {"unlearned": summary(breakdown[:, a]),
                          "dreams": summary(breakdown_dreams[:, a])},
        }
    per_load_breakdown = [v["breakdown"]["unlearned"]["mean"] for v in by_load.values()]
    per_load_breakdown = [v for v in per_load_breakdown if v is not None]

    hfp_x = np.asarray(cfg.hfp.dreams) * cfg.hfp.epsilon / cfg.hfp.n_patterns
    hfp_metrics = {"n_neurons": cfg.hfp.n_neurons, "n_patterns": cfg.hfp.n_patterns,
                   "epsilon": cfg.hfp.epsilon, "n_networks": hfp["recall_overlap"].shape[0]}
    for j, d in enumerate(cfg.hfp.dreams):
        hfp_metrics[f"dreams_{d}"] = {"unlearned": float(hfp_x[j]),
                                      **{m: summary(hfp[m][:, j]) for m in MEASURES}}

    n_cues_total = cfg.n_cues * n_patterns[None, :, None]
    stuck = {
        "dreams": int(grid["dreams_nonconverged"][:, :, -1].sum()
                      + hfp["dreams_nonconverged"][:, -1].sum()),
        "census_starts": int(round(grid["nonconverged_share"].sum() * cfg.n_starts
                                   + hfp["nonconverged_share"].sum() * cfg.hfp.n_starts)),
        "recall_cues": int(round((grid["recall_nonconverged"] * n_cues_total).sum()
                                 + hfp["recall_nonconverged"].sum() * cfg.n_cues
                                 * cfg.hfp.n_patterns)),
    }
    stuck["total"] = sum(stuck.values())

    metrics = {
        "n_neurons": cfg.n_neurons, "epsilon": cfg.epsilon, "n_networks": n_nets,
        "settings": {"cue_flip": cfg.cue_flip, "n_cues": cfg.n_cues, "n_starts": cfg.n_starts,
                     "memory_overlap": cfg.memory_overlap, "max_sweeps": cfg.max_sweeps,
                     "breakdown_overlap": cfg.breakdown_overlap,
                     "capacity_success": cfg.capacity_success},
        "capacity": {
            "criterion": f"load where the share of cues recalled (m >= {cfg.memory_overlap}) "
                         f"falls below {cfg.capacity_success}",
            "before": {"load": summary(cap_before),
                       "n_above_largest_load": int(np.sum(success_before[:, -1]
                                                          >= cfg.capacity_success))},
            "after": {"load": summary(cap_after),
                      "n_above_largest_load": int(np.sum(success_best[:, -1]
                                                         >= cfg.capacity_success))},
        },
        "breakdown": {
            "criterion": f"first x = epsilon*D/P past the best recall where the recall overlap "
                         f"falls below {cfg.breakdown_overlap}",
            "unlearned": summary(breakdown),
            "unlearned_range": ([min(per_load_breakdown), max(per_load_breakdown)]
                                if per_load_breakdown else None),
        },
        "by_load": by_load,
        "hfp1983": hfp_metrics,
        "nonconverged": stuck,
        "train_seconds": round(seconds, 3),
    }

    warnings = []
    if stuck["total"]:
        warnings.append(
            f"{stuck['total']} relaxations hit the cap of {cfg.max_sweeps} sweeps "
            f"({stuck['dreams']} dreams, unlearned where they stopped; {stuck['census_starts']} "
            f"census starts, counted as neither memory nor spurious; {stuck['recall_cues']} "
            "recall cues, scored where they stopped): raise max_sweeps")
    missing = np.isnan(breakdown) & (grid["recall_overlap"].max(axis=2) >= cfg.breakdown_overlap)
    for a in np.flatnonzero(missing.any(axis=0)):
        warnings.append(
            f"load {loads[a]:g}: recall did not break down by x = {x[-1]:g} in "
            f"{int(missing[:, a].sum())} of {n_nets} networks; extend `unlearned`")

    curves = {"unlearning": unlearning_table(grid, loads, n_patterns, x, counts),
              "capacity": capacity_table(grid, loads, n_patterns, x, counts, best, breakdown,
                                         breakdown_dreams),
              "hfp1983": hfp_table(hfp, cfg.hfp)}
    arrays = {f"grid_{name}": grid[name] for name in CURVES}
    arrays.update({f"hfp_{name}": hfp[name] for name in CURVES})
    arrays.update(loads=loads, n_patterns=n_patterns, unlearned=x, dream_counts=counts,
                  hfp_dreams=np.asarray(cfg.hfp.dreams), breakdown_unlearned=breakdown,
                  capacity_before=cap_before, capacity_after=cap_after)
    return Result(metrics=metrics, curves=curves, arrays=arrays,
                  report=report(cfg, metrics), warnings=warnings)


def _columns(prefix: str, values: np.ndarray) -> dict[str, np.ndarray]:
    mean, sd = mean_sd(values)
    return {f"{prefix}_mean": mean, f"{prefix}_sd": sd}


def unlearning_table(grid, loads, n_patterns, x, counts) -> dict[str, np.ndarray]:
    """One row per (load, x): the unlearning curves, long format (x axis: ``unlearned``)."""
    n_nets, n_loads, n_x = grid["recall_overlap"].shape
    table = {"load": np.repeat(loads, n_x), "n_patterns": np.repeat(n_patterns, n_x),
             "unlearned": np.tile(x, n_loads), "dreams": counts.ravel(),
             "n_networks": np.full(n_loads * n_x, n_nets)}
    for m in MEASURES:
        table.update(_columns(m, grid[m].reshape(n_nets, -1)))
    return table


def capacity_table(grid, loads, n_patterns, x, counts, best, breakdown, breakdown_dreams):
    """One row per load (x axis: ``load``): before any dream and at the best amount of sleep."""
    n_loads = len(loads)
    sel = (slice(None), np.arange(n_loads), best)
    table = {"load": loads, "n_patterns": n_patterns, "best_unlearned": x[best],
             "best_dreams": counts[np.arange(n_loads), best]}
    for m in ("recall_overlap", "recall_success", "memory_share", "spurious_share",
              "n_spurious"):
        table.update(_columns(f"{m}_before", grid[m][:, :, 0]))
        table.update(_columns(f"{m}_best", grid[m][sel]))
    table.update(_columns("breakdown_unlearned", breakdown))
    table.update(_columns("breakdown_dreams", breakdown_dreams))
    table["breakdown_n"] = np.isfinite(breakdown).sum(axis=0)
    return table


def hfp_table(hfp, h: HFPSetting) -> dict[str, np.ndarray]:
    """One row per dream count of the HFP 1983 setting (x axis: ``dreams``)."""
    dreams = np.asarray(h.dreams)
    table = {"dreams": dreams, "unlearned": dreams * h.epsilon / h.n_patterns}
    for m in MEASURES:
        table.update(_columns(m, hfp[m]))
    return table


# --- report ------------------------------------------------------------------------------------


def _pm(s: dict, fmt: str = ".2f") -> str:
    if s["mean"] is None:
        return "n/a"
    if s["sd"] is None:
        return f"{s['mean']:{fmt}}"
    return f"{s['mean']:{fmt}} ± {s['sd']:{fmt}}"


def report(cfg: Config, m: dict) -> str:
    n = m["n_networks"]
    lines = [
        "# Dream unlearning in a Hopfield network",
        "",
        f"N = {cfg.n_neurons}, epsilon = {cfg.epsilon}, {n} networks (mean ± sample sd). "
        f"Recall: {cfg.n_cues} cues per pattern with {cfg.cue_flip:.0%} of the bits flipped; "
        f"m = overlap of the final state with the cued pattern, a cue is recalled when "
        f"m >= {cfg.memory_overlap}. Census: {cfg.n_starts} random starts per network; "
        "basin share = fraction of starts ending at a memory (|m| >= "
        f"{cfg.memory_overlap}) or elsewhere (spurious). Dream axis x = epsilon*D/P, the "
        "weight unlearned per pattern stored; best x = most cues recalled (ties: higher m, "
        f"then larger memory basin); breakdown = first x past the best where m < "
        f"{cfg.breakdown_overlap}.",
        "",
        "| P/N | P | m before | recalled before | best x (D) | m at best | recalled at best "
        "| memory basin before -> best | spurious basin before -> best | breakdown x "
        "| breakdown D |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for v in m["by_load"].values():
        b, a, br = v["before"], v["best"], v["breakdown"]
        lines.append(
            f"| {v['load']:g} | {v['n_patterns']} | {_pm(b['recall_overlap'])} "
            f"| {_pm(b['recall_success'])} | {a['unlearned']:g} ({a['dreams']}) "
            f"| {_pm(a['recall_overlap'])} | {_pm(a['recall_success'])} "
            f"| {_pm(b['memory_share'])} -> {_pm(a['memory_share'])} "
            f"| {_pm(b['spurious_share'])} -> {_pm(a['spurious_share'])} "
            f"| {_pm(br['unlearned'])} "
            f"| {_pm(br['dreams'], '.0f')} |")
    lines += [
        "",
        f"Spurious states ({cfg.n_starts} random starts per census): distinct spurious fixed "
        "points reached (a state and its negation counted once) and the share of the P memories "
        "that at least one start reached.",
        "",
        "| P/N | distinct spurious before -> best | memories reached before -> best |",
        "|---|---|---|",
    ]
    for v in m["by_load"].values():
        b, a = v["before"], v["best"]
        lines.append(
            f"| {v['load']:g} | {_pm(b['n_spurious'], '.0f')} -> {_pm(a['n_spurious'], '.0f')} "
            f"| {_pm(b['memories_reached'])} -> {_pm(a['memories_reached'])} |")
    cap = m["capacity"]
    lines += [
        "",
        f"Capacity ({cap['criterion']}): {_pm(cap['before']['load'], '.3f')} before any dream, "
        f"{_pm(cap['after']['load'], '.3f')} at the best amount of sleep "
        f"(networks still above the criterion at the largest load: "
        f"{cap['before']['n_above_largest_load']} before, {cap['after']['n_above_largest_load']}"
        " after).",
        "",
    ]
    h = m["hfp1983"]
    lines += [
        f"## HFP 1983 setting: N = {h['n_neurons']}, P = {h['n_patterns']}, "
        f"epsilon = {h['epsilon']}, {h['n_networks']} networks",
        "",
        "| dreams D | x | memory basin | spurious basin | distinct spurious states "
        "| recall m | patterns stable |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, v in h.items():
        if key.startswith("dreams_"):
            lines.append(
                f"| {key.removeprefix('dreams_')} | {v['unlearned']:g} "
                f"| {_pm(v['memory_share'])} | {_pm(v['spurious_share'])} "
                f"| {_pm(v['n_spurious'], '.1f')} | {_pm(v['recall_overlap'])} "
                f"| {_pm(v['stable_fraction'])} |")
    lines += ["", _reading(m), ""]
    return "\n".join(lines)


def _reading(m: dict) -> str:
    """A few sentences tying the measured numbers to the idea that dreams sort and forget."""
    cap, br, h = m["capacity"], m["breakdown"], m["hfp1983"]
    gain = {k: v["best"]["memory_share"]["mean"] - v["before"]["memory_share"]["mean"]
            for k, v in m["by_load"].items()}
    v = m["by_load"][max(gain, key=gain.get)]
    after = cap["after"]["load"]
    largest = list(m["by_load"].values())[-1]["load"]
    after_text = (_pm(after, ".3f") if after["mean"] is not None
                  else f"beyond the largest load measured ({largest:g})")
    hfp = [k for k in h if k.startswith("dreams_")]
    hfp_text = ""
    if len(hfp) >= 2:
        first, d300 = h[hfp[0]], h.get(f"dreams_{HFP_DREAMS}", h[hfp[1]])
        hfp_text = (f" In HFP's own setting (N = {h['n_neurons']}, P = {h['n_patterns']}) the "
                    f"memories' share of random starts went from "
                    f"{_pm(first['memory_share'])} to {_pm(d300['memory_share'])} after "
                    f"{d300['unlearned'] * h['n_patterns'] / h['epsilon']:.0f} dreams and to "
                    f"{_pm(h[hfp[-1]]['memory_share'])} after "
                    f"{h[hfp[-1]]['unlearned'] * h['n_patterns'] / h['epsilon']:.0f}.")
    return (
        "Reading: sleep here is selective forgetting. Each dream weakens whatever state the "
        f"network falls into from noise; at P/N = {v['load']:g} spurious states catch "
        f"{_pm(v['before']['spurious_share'])} of random starts, so they are unlearned most, "
        "and the landscape is sorted without the network being told which states are "
        f"memories: the memories' share of random starts rose to "
        f"{_pm(v['best']['memory_share'])} (from {_pm(v['before']['memory_share'])}), and the "
        "load at which noisy cues are still recalled moved from "
        f"{_pm(cap['before']['load'], '.3f')} to {after_text}. This is the seed idea that "
        "dreams help the brain sort and forget, in the form Crick & Mitchison (1983) called "
        "reverse learning. The forgetting has no "
        "built-in stop: once the weight unlearned reaches about "
        f"{_pm(br['unlearned'], '.2f')} times the weight stored per pattern the memories "
        f"themselves are erased.{hfp_text} A brain using such a mechanism would have to limit "
        "how much it dreams.")


# --- figures -----------------------------------------------------------------------------------


def figures(result: Result) -> dict:
    u, c, hf = result.curves["unlearning"], result.curves["capacity"], result.curves["hfp1983"]
    m = result.metrics
    loads = c["load"]
    colors = dict(zip((float(a) for a in loads), plots.sequential_colors(len(loads)),
                      strict=True))
    n = m["n_networks"]
    x_label = r"weight unlearned per stored pattern  $x = \epsilon D/P$"
    br = m["breakdown"]["unlearned"]["mean"]
    level = m["settings"]["breakdown_overlap"]

    # 1. the unlearning curves
    fig, axes = plots.figure(3, size=(4.4, 3.5))
    flip = m["settings"]["cue_flip"]
    panels = (("recall_overlap", "overlap m", (-0.03, 1.05),
               f"recall from {flip:.0%}-noisy cues"),
              ("memory_share", "share of random starts", (-0.02, 1.0),
               "random starts ending at a memory"),
              ("spurious_share", "share of random starts", (-0.02, 1.03),
               "random starts ending in a spurious state"))
    for ax, (key, ylabel, ylim, title) in zip(axes[0], panels, strict=True):
        for load, n_pat in zip(loads, c["n_patterns"], strict=True):
            rows = u["load"] == load
            plots.mean_band(ax, u["unlearned"][rows], u[f"{key}_mean"][rows],
                            u[f"{key}_sd"][rows], color=colors[float(load)],
                            label=f"P/N = {load:g} (P = {n_pat:.0f})", xlabel=x_label,
                            ylabel=ylabel, legend=False, marker=".", ms=4)
        if br is not None:
            ax.axvline(br, color="0.3", ls=":", lw=1.2,
                       label=f"mean breakdown (m < {level:g}), x = {br:.2f}")
        ax.set_ylim(*ylim)
        ax.set_title(title)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=4, frameon=False, fontsize=8)
    fig.suptitle(f"Hopfield dream unlearning, N = {m['n_neurons']}, epsilon = {m['epsilon']}: "
                 f"mean ± sd over {n} networks, one line per load P/N")
    out = {"dream_unlearning": fig}

    # 2. capacity before and after, and where too much unlearning breaks the memories
    fig, axes = plots.figure(3, size=(4.2, 3.5))
    for ax, key, ylabel, title in (
            (axes[0, 0], "recall_overlap", "overlap m", "recall overlap vs load"),
            (axes[0, 1], "recall_success", f"share of cues with m >= "
             f"{m['settings']['memory_overlap']:g}", "cues recalled vs load")):
        for when, color, name in (("before", "tab:red", "no dreams"),
                                  ("best", "tab:blue", "best amount of sleep")):
            ax.errorbar(loads, c[f"{key}_{when}_mean"], yerr=np.nan_to_num(c[f"{key}_{when}_sd"]),
                        color=color, marker="o", ms=4, capsize=2, label=name)
        ax.axvline(AGS_CAPACITY, color="0.5", ls=":", lw=1.2, label="0.138 (AGS 1985)")
        ax.set_xlabel("load P/N")
        ax.set_ylabel(ylabel)
        ax.set_ylim(-0.03, 1.05)
        ax.grid(alpha=0.3)
        ax.legend(frameon=False, fontsize=8, loc="lower left")
        ax.set_title(title)
    cap = m["capacity"]
    crit = m["settings"]["capacity_success"]
    for when, color in (("before", "tab:red"), ("after", "tab:blue")):
        value = cap[when]["load"]["mean"]
        if value is not None:
            axes[0, 1].plot([value], [crit], "x", color=color, ms=9, mew=2)
    axes[0, 1].axhline(crit, color="0.6", lw=0.8)
    ax = axes[0, 2]
    lo, hi = _windows(m)
    ok = np.isfinite(lo)
    if ok.any():
        ax.vlines(loads[ok], lo[ok], hi[ok], color="tab:blue", alpha=0.3, lw=7,
                  label=">= 99% of cues recalled")
    ax.plot(loads, c["best_unlearned"], "s", color="tab:blue", ms=5, label="best amount of sleep")
    ax.errorbar(loads, c["breakdown_unlearned_mean"],
                yerr=np.nan_to_num(c["breakdown_unlearned_sd"]), color="k", marker="o", ms=4,
                capsize=2, label=f"breakdown (m < {level:g})")
    ax.set_xlabel("load P/N")
    ax.set_ylabel(r"unlearned per stored pattern  $x = \epsilon D/P$")
    top = c["breakdown_unlearned_mean"][np.isfinite(c["breakdown_unlearned_mean"])]
    ax.set_ylim(0, max([1.5, *(top + 0.3)]))
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=8, loc="upper center", ncol=2)
    ax.set_title("how much sleep helps, and when it erases")
    fig.suptitle(f"Capacity before and after dream unlearning, N = {m['n_neurons']}, mean ± sd "
                 f"over {n} networks (crosses: capacity, < {crit:.0%} of cues recalled)")
    out["dream_unlearning_capacity"] = fig

    # 3. the spurious states: how many, and the HFP 1983 setting
    fig, axes = plots.figure(2, size=(4.8, 3.6))
    ax = axes[0, 0]
    for load in loads:
        rows = u["load"] == load
        plots.mean_band(ax, u["unlearned"][rows], np.maximum(u["n_spurious_mean"][rows], 0.5),
                        u["n_spurious_sd"][rows], color=colors[float(load)],
                        label=f"P/N = {load:g}", xlabel=x_label,
                        ylabel="distinct spurious fixed points reached", legend=False,
                        marker=".", ms=4)
    n_starts = m["settings"]["n_starts"]
    ax.axhline(n_starts, color="0.4", ls="--", lw=1, label=f"one per start ({n_starts})")
    ax.set_yscale("log")
    ax.legend(frameon=False, fontsize=7, loc="lower left", ncol=2)
    ax.set_title(f"spurious states found by {n_starts} random starts")
    ax = axes[0, 1]
    h = m["hfp1983"]
    for key, color, label in (("memory_share", "tab:blue", "starts ending at a memory"),
                              ("spurious_share", "tab:red", "starts ending spurious"),
                              ("recall_overlap", "k", "recall overlap m")):
        plots.mean_band(ax, hf["dreams"], hf[f"{key}_mean"], hf[f"{key}_sd"], color=color,
                        label=label, xlabel="dreams D", ylabel="share of starts / overlap",
                        legend=False, marker="o", ms=4)
    ax.axvline(HFP_DREAMS, color="0.5", ls=":", lw=1.2, label=f"HFP: ~{HFP_DREAMS} dreams")
    ax.legend(frameon=False, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2),
              ncol=2)
    ax.set_ylim(-0.03, 1.05)
    scale = h["epsilon"] / h["n_patterns"]
    top = ax.secondary_xaxis("top", functions=(lambda d: d * scale, lambda v: v / scale))
    top.set_xlabel(r"$x = \epsilon D/P$", fontsize=8)
    ax.set_title(f"HFP 1983 setting: N = {h['n_neurons']}, P = {h['n_patterns']}, "
                 f"epsilon = {h['epsilon']}, {h['n_networks']} networks", fontsize=10)
    fig.suptitle("Spurious states under unlearning (mean ± sd over networks)")
    out["dream_unlearning_spurious"] = fig
    return out


def _windows(m: dict) -> tuple[np.ndarray, np.ndarray]:
    win = [v["recall_window_unlearned"] for v in m["by_load"].values()]
    lo = np.array([w[0] if w else np.nan for w in win], dtype=float)
    hi = np.array([w[1] if w else np.nan for w in win], dtype=float)
    return lo, hi
