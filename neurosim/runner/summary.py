"""What a sweep shows and writes about its jobs: the progress lines, summary.csv (one row per
job, then the mean and sample sd of each setting across seeds), summary.png (the headline
metrics against the swept values, error bars one sample sd), report.md for a sweep over seeds
of an experiment that writes one (its ``seeds_report``), the end-of-sweep table, the exit
status, and the comparison of a rerun's metrics with the original's.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import sys
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neurosim.runner.config import flatten
from neurosim.runner.plan import FIGURE, PENDING, SUMMARY, Row, short_text, value_text
from neurosim.runner.rundir import save_figure, write_bytes, write_json
from neurosim.runner.single import EXIT_DIVERGED, EXIT_FAILED, EXIT_OK, fmt, headline

#: Metrics left out of a rerun's comparison and of the figures: wall-clock timings.
TIMING = re.compile(r"(^|_)(seconds|per_second)$")


def is_timing(name: str) -> bool:
    """A wall-clock timing: a dotted name with a part named like one (``train_seconds``,
    ``stdp.samples_per_second``, ``conditions.sleep.seconds.train_total_mean``); a simulated
    duration (``simulated_seconds``) is a setting, not a timing."""
    parts = name.split(".")
    return any(TIMING.search(p) for p in parts) and not parts[-1].startswith("simulated_")


# --- progress on the terminal ------------------------------------------------------------------


class Progress:
    """A tqdm bar of jobs (done / total, failed, diverged) when stderr is a terminal, and one
    line per finished job on stdout in any case (with the experiment's headline metrics, or
    none when `module` is None)."""

    def __init__(self, total: int, done: int, desc: str, module: Any):
        self.total, self.n, self.module = total, done, module
        self.counts: Counter[str] = Counter()
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, desc=desc, unit="job", file=sys.stderr,
                            dynamic_ncols=True)

    def say(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)

    def update(self, row: Row, extra: str = "") -> None:
        ended = row.status not in (PENDING, "RUNNING")  # not: never started, or abandoned
        if ended:
            self.n += 1
            self.counts[row.status] += 1
        if self.bar is not None:
            self.bar.update(int(ended))
            self.bar.set_postfix(failed=self.counts["FAILED"],
                                 diverged=self.counts["DIVERGED"], refresh=True)
        if not ended:
            return
        if row.error:
            detail = row.error
        elif self.module is None:  # a search shows its objective only
            detail = ""
        else:
            detail = ", ".join(f"{k} {fmt(v)}" for k, v in headline(self.module, row.metrics)
                               if not TIMING.search(k))
        line = f"[{self.n}/{self.total}] {row.status:<11} {row.run}{extra}"
        self.say(f"{line}  {short_text(detail, 160)}" if detail else line)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# --- the summary -------------------------------------------------------------------------------


def numeric_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, int | float]:
    """Flatten nested metrics to dotted names, keeping numbers only (not booleans)."""
    flat: dict[str, int | float] = {}
    for key, value in metrics.items():
        if isinstance(value, Mapping):
            flat.update(numeric_metrics(value, f"{prefix}{key}."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[f"{prefix}{key}"] = value
    return flat


@dataclass
class Setting:
    """One setting of the swept values (all but the seed) across its seeds."""

    label: dict[str, Any]
    n: int  # COMPLETED jobs: the statistics are over these
    mean: dict[str, float]
    sd: dict[str, float]  # sample standard deviation (ddof=1); NaN with fewer than 2 values
    values: dict[str, list[float]]


def aggregate(rows: Sequence[Row], keys: Sequence[str]) -> list[Setting]:
    """Mean and sample sd of every numeric metric per setting, over its COMPLETED jobs."""
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(json.dumps([row.label.get(k) for k in keys if k != "seed"],
                                     default=str), []).append(row)
    out = []
    for members in groups.values():
        flats = [numeric_metrics(r.metrics) for r in members if r.status == "COMPLETED"]
        names = list(dict.fromkeys(n for f in flats for n in f))
        values = {n: [float(f[n]) for f in flats if n in f and math.isfinite(f[n])]
                  for n in names}
        mean = {n: float(np.mean(v)) if v else math.nan for n, v in values.items()}
        sd = {n: float(np.std(v, ddof=1)) if len(v) >= 2 else math.nan
              for n, v in values.items()}
        label = {k: members[0].label.get(k) for k in keys if k != "seed"}
        out.append(Setting(label, len(flats), mean, sd, values))
    return out


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, float):
        return repr(value)
    return value_text(value)


def summary_csv(rows: Sequence[Row], keys: Sequence[str],
                extra: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """summary.csv: ``run, <keys>, status, n, error, [<extra>], <metrics>``, one row per job;
    when seeds are swept, then a ``mean`` and an ``sd`` row per setting (``n``: the COMPLETED
    jobs they are over). `extra` maps a run to more columns (a search's objective value)."""
    extra = extra or {}
    extra_cols = list(dict.fromkeys(c for cols in extra.values() for c in cols))
    flats = [numeric_metrics(r.metrics) for r in rows]
    names = sorted(set().union(*flats)) if flats else []
    fixed = ["run", *keys, "status", "n", "error", *extra_cols]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")  # a metric named like a column: metrics.<name>
    w.writerow([*fixed, *(f"metrics.{n}" if n in fixed else n for n in names)])
    for row, flat in zip(rows, flats, strict=True):
        more = extra.get(row.run, {})
        w.writerow([row.run, *(_cell(row.label.get(k)) for k in keys), row.status, "",
                    short_text(row.error, 300) if row.error else "",
                    *(_cell(more.get(c)) for c in extra_cols),
                    *(_cell(flat.get(n)) for n in names)])
    if "seed" in keys:
        for s in aggregate(rows, keys):
            for stat, table in (("mean", s.mean), ("sd", s.sd)):
                w.writerow([stat, *(_cell(s.label.get(k)) for k in keys), "", s.n, "",
                            *([""] * len(extra_cols)), *(_cell(table.get(n)) for n in names)])
    return buf.getvalue()


def write_summary(sweep_dir: Path, rows: Sequence[Row], keys: Sequence[str],
                  extra: Mapping[str, Mapping[str, Any]] | None = None) -> Path:
    path = sweep_dir / SUMMARY
    write_bytes(path, summary_csv(rows, keys, extra).encode())
    return path


#: The sweep folder's report and its numbers, from the experiment's ``seeds_report`` hook.
REPORT, COMPARISONS = "report.md", "comparisons.json"


def write_seeds_report(sweep_dir: Path, module: Any, rows: Sequence[Row],
                       keys: Sequence[str]) -> Path | None:
    """report.md and comparisons.json of a sweep over seeds alone, when the experiment has a
    ``seeds_report`` and at least two seeds completed; None otherwise. Only completed runs
    are compared (a paired comparison needs every arm of every seed)."""
    hook = getattr(module, "seeds_report", None)
    if hook is None or list(keys) != ["seed"]:
        return None
    done = {int(r.label["seed"]): r.metrics for r in rows if r.status == "COMPLETED"}
    if len(done) < 2:
        return None
    markdown, comparisons = hook(dict(sorted(done.items())))
    write_json(sweep_dir / COMPARISONS, comparisons)
    path = sweep_dir / REPORT
    write_bytes(path, markdown.encode())
    return path


def figure_metrics(module: Any, settings: Sequence[Setting], limit: int = 6,
                   varying_only: bool = True) -> list[str]:
    """The metrics a summary figure shows: the experiment's HEADLINE (else its first numeric
    ones), without timings and, unless nothing changes, without those that never change
    (epochs_run of a fixed schedule)."""
    present = list(dict.fromkeys(n for s in settings for n, v in s.mean.items()
                                 if math.isfinite(v)))
    varying = {n for n in present if len({v for s in settings for v in s.values.get(n, [])}) > 1}
    wanted = list(getattr(module, "HEADLINE", None) or present)
    keep = varying if varying_only and varying else set(present)
    return [n for n in wanted if n in keep and not TIMING.search(n)][:limit]


def errorbar_panel(ax: Any, x: Sequence[float], mean: Sequence[float], sd: Sequence[float],
                   points: Sequence[Sequence[float]], ylabel: str, line: bool = True) -> Any:
    """Mean +- sample sd at each x (joined by a line when x is a number), with the single
    jobs as grey dots; returns the errorbar."""
    for xi, ys in zip(x, points, strict=True):
        ax.plot([xi] * len(ys), ys, "o", color="0.6", markersize=3, zorder=1)
    bars = ax.errorbar(x, mean, yerr=np.nan_to_num(sd), fmt="o-" if line else "o", capsize=4,
                       zorder=2)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return bars


def summary_figure(settings: Sequence[Setting], keys: Sequence[str], names: Sequence[str],
                   title: str) -> Any:
    """One panel per metric against the swept values: a numeric x axis when one key besides
    the seed is swept, else one tick per setting."""
    from matplotlib.figure import Figure

    xkeys = [k for k in keys if k != "seed"]
    xs_raw = [s.label.get(xkeys[0]) for s in settings] if len(xkeys) == 1 else []
    numeric = bool(xs_raw) and all(isinstance(v, int | float) and not isinstance(v, bool)
                                   for v in xs_raw)
    x = [float(v) for v in xs_raw] if numeric else list(range(len(settings)))
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig = Figure(figsize=(4.2 * cols, 3.4 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, name in zip(axes, names, strict=False):
        errorbar_panel(ax, x, [s.mean.get(name, math.nan) for s in settings],
                       [s.sd.get(name, math.nan) for s in settings],
                       [s.values.get(name, []) for s in settings], name, line=numeric)
        if numeric:
            ax.set_xlabel(xkeys[0])
            if min(x) > 0 and max(x) / min(x) >= 100:
                ax.set_xscale("log")
        else:
            ticks = [",".join(f"{k}={value_text(v)}" for k, v in s.label.items()) or "all seeds"
                     for s in settings]
            ax.set_xticks(x, [short_text(t, 30) for t in ticks], rotation=30 if len(x) > 1
                          else 0, ha="right" if len(x) > 1 else "center", fontsize=8)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    n = sorted({s.n for s in settings})
    seeds = f"n = {n[0]}" if len(n) == 1 else f"n = {n[0]}-{n[-1]}"
    fig.suptitle(f"{title}: mean ± sample sd over seeds ({seeds})" if "seed" in keys
                 else f"{title}: one run per setting", fontsize=10)
    return fig


def write_figure(sweep_dir: Path, module: Any, rows: Sequence[Row], keys: Sequence[str],
                 title: str) -> Path | None:
    """summary.png, when some job completed; None otherwise (or when drawing failed)."""
    settings = [s for s in aggregate(rows, keys) if s.n]
    names = figure_metrics(module, settings)
    if not names:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            save_figure(sweep_dir / FIGURE, summary_figure(settings, keys, names, title))
    except Exception as exc:  # the figure is a convenience: the csv holds the numbers
        print(f"neurosim: note: no {FIGURE} ({type(exc).__name__}: {exc})", file=sys.stderr)
        return None
    return sweep_dir / FIGURE


def summary_table(module: Any, rows: Sequence[Row], keys: Sequence[str]) -> list[str]:
    """The end-of-sweep table on the terminal: mean +- sd of the headline metrics."""
    settings = [s for s in aggregate(rows, keys) if s.n]
    names = figure_metrics(module, settings, limit=4, varying_only=False)
    if not names or "seed" not in keys:
        return []
    first = [",".join(f"{k}={value_text(v)}" for k, v in s.label.items()) or "all seeds"
             for s in settings]
    cells = [[f"{s.mean[n]:.4g} +- {s.sd[n]:.2g}" if math.isfinite(s.sd.get(n, math.nan))
              else fmt(s.mean.get(n, math.nan)) for n in names] for s in settings]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(names)]
    w0 = max(len("setting"), *(len(f) for f in first))
    out = [f"  {'setting':<{w0}}  {'n':>3}  " + "  ".join(
        f"{h:<{w}}" for h, w in zip(names, widths, strict=True))]
    for f, s, c in zip(first, settings, cells, strict=True):
        out.append(f"  {f:<{w0}}  {s.n:>3}  " + "  ".join(
            f"{v:<{w}}" for v, w in zip(c, widths, strict=True)))
    return out


def exit_status(rows: Sequence[Row]) -> int:
    """0 when every job COMPLETED; 1 when one FAILED (or did not finish); else 3 (DIVERGED)."""
    statuses = {r.status for r in rows}
    if statuses <= {"COMPLETED"}:
        return EXIT_OK
    if statuses <= {"COMPLETED", "DIVERGED"}:
        return EXIT_DIVERGED
    return EXIT_FAILED


def leaves(metrics: Any) -> dict[str, Any]:
    """Every value of nested metrics by dotted name (lists kept whole)."""
    return flatten(metrics) if isinstance(metrics, Mapping) else {}


@dataclass
class Comparison:
    compared: list[str]
    timing: list[str]  # left out: wall-clock timings
    differences: list[tuple[str, Any, Any]]  # name, original, rerun (None: absent)

    @property
    def match(self) -> bool:
        return not self.differences


def compare_metrics(original: Any, rerun: Any) -> Comparison:
    """Compare two metrics.json exactly, leaving out timings (``*_seconds``,
    ``*_per_second``); a metric present in one only is a difference."""
    a, b = leaves(original), leaves(rerun)
    out = Comparison([], [], [])
    for name in sorted(set(a) | set(b)):
        if is_timing(name):
            out.timing.append(name)
            continue
        out.compared.append(name)
        if name not in a or name not in b or a[name] != b[name]:
            out.differences.append((name, a.get(name), b.get(name)))
    return out
