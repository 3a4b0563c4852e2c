"""Drawing: plot functions take an ``ax`` and return the artist; figure builders compose them.

Plots never compute results: every value drawn comes from a `Result`'s metrics, curves and
arrays, so any figure can be redrawn from a run directory. Figures are made with
`matplotlib.figure.Figure` directly (no pyplot state, no GUI backend, nothing to close).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from neurosim.spikes import Spikes

#: One colour per arm, used wherever the MLP and the spiking network share a figure.
COLORS = {"mlp": "tab:blue", "snn": "tab:red", "train": "tab:blue", "val": "tab:orange",
          "test": "tab:green", "stdp": "tab:red", "mlp_spiking": "tab:purple"}


def figure(ncols: int = 1, nrows: int = 1, size: tuple[float, float] = (4.5, 3.4),
           **kwargs) -> tuple[Figure, np.ndarray]:
    """A `Figure` with an ``(nrows, ncols)`` array of axes, each about `size` inches."""
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    fig.get_layout_engine().set(w_pad=0.1, wspace=0.05)  # room for colour-bar labels
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    return fig, axes


def curve(ax: Axes, x: np.ndarray, y: np.ndarray, *, label: str | None = None,
          xlabel: str = "", ylabel: str = "", logy: bool = False, legend: bool = True,
          **style):
    """One line ``y(x)``; returns the `Line2D`. A labelled line draws the legend unless
    ``legend=False`` (a figure that places its own legend)."""
    (line,) = ax.plot(x, y, label=label, **style)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if label and legend:
        ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    return line


def loss_curve(ax: Axes, curves: Mapping[str, np.ndarray] | Any, *, key: str = "loss",
               ylabel: str = "loss", logy: bool = True):
    """Training `key` against epoch, with the validation and test curves where the table has
    them (``val_<key>``, ``test_<key>``); returns the training line.

    `curves` is a curve table (a run's ``result.curves["epochs"]``) or the
    `neurosim.ann.History` that `neurosim.ann.train` returns (its ``epochs`` series).
    """
    if not isinstance(curves, Mapping) and isinstance(getattr(curves, "epochs", None), Mapping):
        curves = curves.epochs  # a History: per-epoch series, epochs counted from 1
    if len(curves.get(key, ())) == 0:  # e.g. diverged or interrupted inside the first epoch
        ax.text(0.5, 0.5, "no epoch completed", ha="center", va="center",
                transform=ax.transAxes, color="0.4")
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        return None
    epochs = curves.get("epoch", np.arange(1, len(curves[key]) + 1))
    marker = "o" if len(epochs) <= 12 else None  # a few points: show where they are
    line = curve(ax, epochs, curves[key], label="train", xlabel="epoch", ylabel=ylabel,
                 logy=logy, color=COLORS["train"], marker=marker)
    for other, color in (("val_", COLORS["val"]), ("test_", COLORS["test"])):
        if other + key in curves:
            curve(ax, epochs, curves[other + key], label=other.rstrip("_"), xlabel="epoch",
                  ylabel=ylabel, logy=logy, color=color, marker=marker)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    return line


def raster(ax: Axes, i: np.ndarray | Spikes, t: np.ndarray | None = None, *,
           n_neurons: int | None = None, t_stop: float | None = None, color: str = "k",
           markersize: float = 2.0, ylabel: str = "neuron index", t_unit: str = "s",
           dt_s: float | None = None):
    """Spike raster: one dot per spike of neuron `i` at time `t` (seconds); returns the Line2D.

    Parameters
    ----------
    i : ndarray of shape (n_spikes,), or Spikes, or ndarray of shape (n_steps, n_neurons), bool
        Neuron indices (with `t`); or a `neurosim.spikes.Spikes`, which brings its own times,
        population size and window; or a dense boolean raster of a network simulated in time
        steps (e.g. a sleep phase's), drawn with steps of `dt_s` seconds.
    t : ndarray of shape (n_spikes,), optional
        Spike times in seconds, with indices `i`.
    dt_s : float, optional
        Step of a dense raster (None: the x axis counts steps).
    """
    if t is None:
        spikes = i if isinstance(i, Spikes) else None
        if spikes is None:
            dense = np.asarray(i)
            if dense.ndim != 2:
                raise ValueError("raster needs indices and times, a Spikes, or a 2-D dense "
                                 f"raster of shape (n_steps, n_neurons); got shape {dense.shape}")
            spikes = Spikes.from_dense(dense, 1.0 if dt_s is None else dt_s)
            if dt_s is None:
                t_unit = "step"
        i, t = spikes.i, spikes.t
        n_neurons = spikes.n_neurons if n_neurons is None else n_neurons
        t_stop = spikes.t_stop if t_stop is None else t_stop
    scale = {"s": 1.0, "ms": 1e3, "step": 1.0}[t_unit]
    (dots,) = ax.plot(np.asarray(t) * scale, i, "|" if len(t) < 5000 else ".",
                      color=color, markersize=markersize, linestyle="none")
    ax.set_xlabel("time step" if t_unit == "step" else f"time ({t_unit})")
    ax.set_ylabel(ylabel)
    if n_neurons is not None:
        ax.set_ylim(-0.5, n_neurons - 0.5)
    if t_stop is not None:
        ax.set_xlim(0, t_stop * scale)
    return dots


def histogram(ax: Axes, values: np.ndarray, *, bins: int | Sequence[float] = 40,
              label: str | None = None, xlabel: str = "", ylabel: str = "count", **style):
    """A histogram of `values`; returns the bar container."""
    _, _, bars = ax.hist(np.ravel(values), bins=bins, label=label, **style)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if label:
        ax.legend(frameon=False)
    return bars


def tile(W: np.ndarray, shape: tuple[int, int], n_cols: int | None = None,
         pad: int = 1, signed: bool = False) -> np.ndarray:
    """Arrange the columns of ``W`` (n_inputs, n_units) as images of `shape` in one mosaic.

    Each image is scaled to its own [0, 1] range, or with ``signed=True`` to [-1, 1] by its
    largest magnitude (so zero stays zero); padding is NaN (drawn blank).
    """
    n_units = W.shape[1]
    n_cols = n_cols or int(np.ceil(np.sqrt(n_units)))
    n_rows = int(np.ceil(n_units / n_cols))
    h, w = shape
    mosaic = np.full((n_rows * (h + pad) - pad, n_cols * (w + pad) - pad), np.nan)
    for k in range(n_units):
        img = W[:, k].reshape(shape).astype(float)
        if signed:
            top = np.abs(img).max()
            img = img / top if top > 0 else img
        else:
            lo, hi = img.min(), img.max()
            img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
        r, c = divmod(k, n_cols)
        mosaic[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = img
    return mosaic


def receptive_fields(ax: Axes, W: np.ndarray, shape: tuple[int, int], *,
                     n_cols: int | None = None, cmap: str = "hot_r", title: str = "",
                     signed: bool = False):
    """Each unit's input weights, ``W[:, k]`` of shape (n_inputs,), drawn as an image.

    ``signed=True`` keeps the sign (for MLP weights: use a diverging `cmap`)."""
    limits = {"vmin": -1, "vmax": 1} if signed else {"vmin": 0, "vmax": 1}
    img = ax.imshow(tile(np.asarray(W), shape, n_cols, signed=signed), cmap=cmap,
                    interpolation="nearest", **limits)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return img


def confusion_matrix(ax: Axes, cm: np.ndarray, *, labels: Sequence[str] | None = None,
                     title: str = ""):
    """A confusion matrix ``cm[true, predicted]`` with counts written in each cell."""
    cm = np.asarray(cm)
    img = ax.imshow(cm, cmap="Blues")
    n = cm.shape[0]
    labels = list(labels) if labels is not None else [str(k) for k in range(n)]
    ax.set_xticks(range(n), labels)
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = cm.max() / 2 if cm.size else 0
    for (r, c), v in np.ndenumerate(cm):
        ax.text(c, r, f"{v:d}" if np.issubdtype(cm.dtype, np.integer) else f"{v:.2f}",
                ha="center", va="center", fontsize=7,
                color="white" if v > threshold else "black")
    if title:
        ax.set_title(title)
    return img


def decision_surface(ax: Axes, xx: np.ndarray, yy: np.ndarray, zz: np.ndarray,
                     X: np.ndarray, y: np.ndarray, *, levels: int = 21):
    """Network output `zz` on the grid ``(xx, yy)`` with the data points on top."""
    filled = ax.contourf(xx, yy, zz, levels=levels, cmap="RdBu_r", alpha=0.8)
    ax.contour(xx, yy, zz, levels=[0.5], colors="k", linewidths=1)
    ax.scatter(X[:, 0], X[:, 1], c=np.ravel(y), cmap="RdBu_r", edgecolors="k", s=80,
               vmin=0, vmax=1)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.figure.colorbar(filled, ax=ax, label="network output")
    return filled


def score(value: float | None, spec: str = ".3f") -> str:
    """`value` formatted for a title; "n/a" for a metric a diverged run could not measure."""
    return "n/a" if value is None else format(value, spec)


def one_neuron_figure(result: Any, loss_label: str, *, markersize: float = 8):
    """The figure of a one-neuron fit: training loss on the left; on the right the data
    ``arrays["X"]``, ``arrays["y"]`` as grey dots, for the caller to draw the fit over.

    Returns
    -------
    fig : Figure
    ax : Axes, the data panel
    """
    a = result.arrays
    fig, axes = figure(2)
    loss_curve(axes[0, 0], result.curves["epochs"], ylabel=loss_label)
    axes[0, 0].set_title("training loss")
    ax = axes[0, 1]
    ax.scatter(a["X"].ravel(), a["y"].ravel(), s=markersize, alpha=0.5, color="gray",
               label="data")
    return fig, ax


def classifier_figure(result: Any, image_shape: tuple[int, int], title: str,
                      table: str = "epochs") -> Figure:
    """Loss and accuracy (train beside validation/test), confusion matrix and first-layer
    weights of an MLP classifier run."""
    curves = result.curves[table]
    fig, axes = figure(4, size=(4.0, 3.6))
    loss_curve(axes[0, 0], curves, ylabel="cross-entropy")
    axes[0, 0].set_title("loss")
    if "accuracy" in curves:
        loss_curve(axes[0, 1], curves, key="accuracy", ylabel="accuracy", logy=False)
    axes[0, 1].set_title("accuracy")
    confusion_matrix(axes[0, 2], result.arrays["confusion"],
                     title=f"test accuracy {score(result.metrics['test_accuracy'])}")
    W1 = result.arrays["W1"]
    if np.isfinite(W1).all():
        receptive_fields(axes[0, 3], W1[:, : min(64, W1.shape[1])], image_shape, cmap="RdBu_r",
                         signed=True, title="first-layer weights (red +, blue -)")
    fig.suptitle(title + ("" if result.status == "COMPLETED" else f" ({result.status.lower()})"))
    return fig


def mean_band(ax: Axes, x: np.ndarray, mean: np.ndarray, sd: np.ndarray | None = None, *,
              label: str | None = None, xlabel: str = "", ylabel: str = "", color=None,
              legend: bool = True, **style):
    """A mean curve with a shaded band of +-`sd` around it (no band where sd is NaN);
    returns the mean's `Line2D`."""
    line = curve(ax, x, mean, label=label, xlabel=xlabel, ylabel=ylabel, color=color,
                 legend=legend, **style)
    if sd is not None:
        mean, sd = np.asarray(mean, float), np.asarray(sd, float)
        ok = np.isfinite(sd)
        ax.fill_between(np.asarray(x, float)[ok], (mean - sd)[ok], (mean + sd)[ok],
                        color=line.get_color(), alpha=0.2, linewidth=0)
    return line


def sequential_colors(n: int, cmap: str = "viridis") -> list[tuple]:
    """`n` colours in order along `cmap` (its first 90%: viridis' last yellow is too pale on
    white), for curves indexed by a number (loads, tasks, layers)."""
    from matplotlib import colormaps

    colors = colormaps[cmap]
    return [colors(0.9 * k / max(n - 1, 1)) for k in range(n)]


def activity_map(ax: Axes, activity: np.ndarray, *, column_labels: Sequence[str] = (),
                 xlabel: str = "", ylabel: str = "", title: str = "", cmap: str = "viridis",
                 colorbar_label: str = "", boundaries: Sequence[int] = (),
                 group_labels: Sequence[str] = ()):
    """Units (rows) x samples (columns) as an image, e.g. hidden activations or spike counts
    of each neuron for a few digits; `boundaries` are the first rows of groups of units (a
    line above each), named by `group_labels` on the y axis; returns the image."""
    activity = np.asarray(activity, float)
    img = ax.imshow(activity, aspect="auto", cmap=cmap, interpolation="nearest")
    if len(column_labels):
        ax.set_xticks(range(len(column_labels)), list(column_labels))
    for b in boundaries:
        ax.axhline(b - 0.5, color="w", lw=0.6)
    if len(group_labels) and len(boundaries):
        ends = [*list(boundaries)[1:], activity.shape[0]]
        mids = [(b + e - 1) / 2 for b, e in zip(boundaries, ends, strict=True)]
        keep = [k for k, (b, e) in enumerate(zip(boundaries, ends, strict=True)) if e > b]
        ax.set_yticks([mids[k] for k in keep], [group_labels[k] for k in keep], fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.figure.colorbar(img, ax=ax, label=colorbar_label, fraction=0.05, pad=0.02)
    return img


def grouped_bars(ax: Axes, groups: Sequence[str], series: Mapping[str, Sequence[float]], *,
                 colors: Mapping[str, Any] | None = None, ylabel: str = "", logy: bool = False,
                 annotate: str | None = "{:.3g}", hatches: Mapping[str, str] | None = None):
    """Bars of several series side by side for each group (NaN: no bar); returns the
    containers, one per series."""
    n = max(len(series), 1)
    width = 0.8 / n
    out = []
    for k, (name, values) in enumerate(series.items()):
        x = np.arange(len(groups)) + (k - (n - 1) / 2) * width
        bars = ax.bar(x, np.asarray(values, float), width, label=name,
                      color=(colors or {}).get(name), hatch=(hatches or {}).get(name),
                      edgecolor="k", linewidth=0.5)
        if annotate:
            for xi, v in zip(x, values, strict=True):
                if v is not None and np.isfinite(v):
                    ax.text(xi, v, annotate.format(v), ha="center", va="bottom", fontsize=7)
        out.append(bars)
    ax.set_xticks(range(len(groups)), list(groups))
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    ax.legend(frameon=False, fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    return out
