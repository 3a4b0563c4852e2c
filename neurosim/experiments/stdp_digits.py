"""Diehl & Cook (2015)-style unsupervised digit learning: STDP + winner-take-all on Brian2.

Poisson-coded pixels drive a layer of excitatory LIF neurons through STDP synapses; each
excitatory neuron excites one inhibitory partner, which inhibits every other excitatory neuron,
so the neurons compete and each comes to prefer one kind of digit. Adaptive thresholds keep any
one neuron from winning everything. No label is used in training; afterwards every neuron is
labelled with the class it answers most (`neurosim.snn.readout`), and test digits are classified
by the mean response of each class's neurons.

The defaults are adapted to scikit-learn's 8x8 digits (64 pixels, ~1,200 training samples);
`experiments/stdp_digits_diehl_cook.toml` holds the original parameters, and
``dataset=mnist data_dir=DIR`` runs on MNIST. docs/experiments.md explains each adaptation; the
largest is the input coding. With ``input_coding="on_off"`` every pixel drives two input
neurons, an ON cell firing at ``x * max_rate`` and an OFF cell at ``(1 - x) * max_rate``, like
the retina's ON- and OFF-centre ganglion cells. A neuron's input weights can then prefer dark
pixels as well as bright ones, so its drive measures how well a digit agrees with its prototype
over all pixels, not only how much ink falls where its weights are.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace

import numpy as np

from neurosim import data, plots
from neurosim.config import require, require_choice, require_positive
from neurosim.experiments.base import Context, Result
from neurosim.experiments.common import confusion
from neurosim.snn.wta import WTAParams

N_RASTER = 8  # test samples whose spikes are kept for the raster figure


@dataclass(frozen=True)
class DigitsWTAParams(WTAParams):
    """`WTAParams` adapted to 64-pixel digits (see the module docstring for why)."""

    n_input: int = 128  # set from the data at run time (64 pixels x ON/OFF)
    n_exc: int = 100  # excitatory (and inhibitory) neurons
    present_ms: float = 350.0  # each digit shown for this long
    rest_ms: float = 150.0  # then silence
    max_rate_hz: float = 160.0  # D&C: 63.75 Hz for 784 pixels; 128 ON/OFF inputs need more
    norm_total: float = 12.73  # 78 * 128 / 784: same mean weight per synapse as D&C
    theta_plus_mv: float = 0.02  # D&C: 0.05, which silences neurons over several epochs
    min_spikes: int = 0  # D&C repeat faint samples faster (5); no digit is faint here


@dataclass(frozen=True)
class Config:
    dataset: str = "digits"  # digits (sklearn 8x8) or mnist (IDX files in data_dir)
    data_dir: str = "data/mnist"  # MNIST folder, for dataset=mnist
    input_coding: str = "on_off"  # on_off (ON and OFF cell per pixel) or intensity (D&C)
    n_train: int = 0  # training samples to use (0: all)
    n_test: int = 0  # test samples to use (0: all)
    epochs: int = 4  # passes with plasticity on; 1,200 digits give each neuron few wins per pass
    lr_decay: float = 1.0  # STDP learning rates x lr_decay ** epoch (annealing; 1: constant)
    backend: str = "auto"  # auto (cpp_standalone if it builds), cpp_standalone, cython, numpy
    chunk: int = 100  # samples per Brian2 run() (one compiled network serves every pass)
    curve_block: int = 100  # samples per point of the accuracy-vs-samples-seen curve
    snn: DigitsWTAParams = field(default_factory=DigitsWTAParams)  # network constants

    def __post_init__(self):
        require_choice("dataset", self.dataset, ("digits", "mnist"))
        require_choice("input_coding", self.input_coding, ("on_off", "intensity"))
        require_choice("backend", self.backend, ("auto", "numpy", "cython", "cpp_standalone"))
        require(self.n_train >= 0 and self.n_test >= 0, "n_train and n_test must be >= 0")
        require(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        require(0 < self.lr_decay <= 1, f"lr_decay must be in (0, 1], got {self.lr_decay}")
        require(self.chunk >= 1, f"chunk must be >= 1, got {self.chunk}")
        require(self.curve_block >= 1, f"curve_block must be >= 1, got {self.curve_block}")
        s = self.snn
        require(s.n_exc >= 1, f"snn.n_exc must be >= 1, got {s.n_exc}")
        for name in ("dt_ms", "present_ms", "max_rate_hz", "tau_e_ms", "tau_i_ms", "tau_ge_ms",
                     "tau_gi_ms", "tau_theta_ms", "tau_pre_ms", "tau_post1_ms", "tau_post2_ms",
                     "w_max", "norm_total"):
            require_positive(f"snn.{name}", getattr(s, name))
        for name in ("rest_ms", "nu_pre", "nu_post", "theta_plus_mv", "w_init_max", "w_ei",
                     "w_ie", "refrac_e_ms", "refrac_i_ms", "min_spikes", "max_repeats"):
            require(getattr(s, name) >= 0, f"snn.{name} must be >= 0, got {getattr(s, name)}")


# One short pass on the numpy target (no compiler needed). 20 neurons and 60 digits leave each
# neuron ~3 wins, so learning is made fast: learning rates x10 and threshold increment x50
# (each winner jumps towards its digit and then lets others win). test_run.py holds it to >= 0.2.
QUICK = {"n_train": 60, "n_test": 40, "epochs": 1, "backend": "numpy", "chunk": 20,
         "curve_block": 20, "snn.n_exc": 20, "snn.present_ms": 100.0, "snn.rest_ms": 50.0,
         "snn.nu_post": 0.1, "snn.nu_pre": 0.001, "snn.theta_plus_mv": 1.0}


def load(cfg: Config, seed: int) -> data.Dataset:
    """The data set, cut to n_train / n_test, in the configured input coding."""
    if cfg.dataset == "mnist":
        ds = data.mnist(cfg.data_dir, n_train=cfg.n_train or None, n_test=cfg.n_test or None)
    else:
        ds = data.digits(seed=seed)
        n_tr, n_te = cfg.n_train or len(ds.X_train), cfg.n_test or len(ds.X_test)
        ds = replace(ds, X_train=ds.X_train[:n_tr], y_train=ds.y_train[:n_tr],
                     X_test=ds.X_test[:n_te], y_test=ds.y_test[:n_te])
    if cfg.input_coding == "on_off":
        ds = replace(ds, X_train=on_off(ds.X_train), X_test=on_off(ds.X_test))
    return ds


def on_off(X: np.ndarray) -> np.ndarray:
    """ON cells (the intensities) followed by OFF cells (one minus them): (n, 2 * n_pixels)."""
    return np.hstack([X, 1.0 - X])


def run(cfg: Config, ctx: Context) -> Result:
    from neurosim.snn import backend

    ds = load(cfg, ctx.seed)
    ctx.scratch_dir.mkdir(parents=True, exist_ok=True)
    standalone_dir = tempfile.mkdtemp(prefix="brian2-standalone-", dir=ctx.scratch_dir)
    try:
        return _run(cfg, ctx, ds, standalone_dir)
    finally:
        backend.reset_device()  # leave Brian2 as found: runtime device, no standalone project
        shutil.rmtree(standalone_dir, ignore_errors=True)


def _run(cfg: Config, ctx: Context, ds: data.Dataset, standalone_dir: str) -> Result:
    from neurosim.snn import backend
    from neurosim.snn.readout import assign_labels, predict, running_accuracy
    from neurosim.snn.wta import WTANetwork

    requested = "cpp_standalone" if cfg.backend == "auto" else cfg.backend
    target = backend.select(requested, standalone_dir=standalone_dir)
    if cfg.backend == "auto":
        target = replace(target, requested="auto")
    backend.seed(ctx.rng)
    params = replace(cfg.snn, n_input=ds.X_train.shape[1])
    t_build = time.perf_counter()
    net = WTANetwork(params, ctx.rng, chunk=cfg.chunk)

    # --- training: no labels; the order is reshuffled every epoch
    t0 = time.perf_counter()
    order = np.concatenate([ctx.rng.permutation(len(ds.X_train)) for _ in range(cfg.epochs)])
    seen_labels = ds.y_train[order]
    bar = ctx.progress(range(len(order)), total=len(order), desc="training samples")

    n, finished = len(ds.X_train), []  # finished: spike counts of the completed epochs

    def on_chunk(n_done: int, counts: np.ndarray) -> None:
        for _ in range(cfg.chunk):
            next(bar, None)
        counts = np.concatenate([*finished, counts])
        seen, acc = running_accuracy(counts, seen_labels[:len(counts)], 10, cfg.curve_block)
        ctx.partial.curves = {"samples_seen": seen, "running_accuracy": acc}
        ctx.partial.arrays = {"weights": net.weights}

    for e in range(cfg.epochs):
        finished.append(net.present(ds.X_train[order[e * n: (e + 1) * n]], plastic=True,
                                    learning_rate_scale=cfg.lr_decay ** e, on_chunk=on_chunk))
    train_counts = np.concatenate(finished)
    train_seconds = time.perf_counter() - t0

    # --- labelling (training set, plasticity off) and testing
    label_counts = net.present(ds.X_train, plastic=False)
    assignments = assign_labels(label_counts, ds.y_train, 10)
    test_counts = net.present(ds.X_test, plastic=False, record_input=True)
    pred_test = predict(test_counts, assignments, 10)
    pred_train = predict(label_counts, assignments, 10)

    seen, acc = running_accuracy(train_counts, seen_labels, 10, cfg.curve_block)
    raster_end = N_RASTER * net.period_s  # the first test samples, from the test pass's start
    i_exc, t_exc, i_in, t_in = net.recorded
    keep, keep_in = t_exc < raster_end, t_in < raster_end
    metrics = {
        "test_accuracy": float(np.mean(pred_test == ds.y_test)),
        "train_accuracy": float(np.mean(pred_train == ds.y_train)),
        "n_exc": params.n_exc,
        "epochs": cfg.epochs,
        "n_train": len(ds.X_train),
        "n_test": len(ds.X_test),
        "silent_test_fraction": float(np.mean(test_counts.sum(axis=1) == 0)),
        "spikes_per_test_sample": float(test_counts.sum(axis=1).mean()),
        "neurons_assigned": int(np.sum(assignments >= 0)),
        "train_seconds": round(train_seconds, 3),
        "train_samples_per_second": round(len(order) / train_seconds, 3),
        "build_seconds": round(t0 - t_build, 3),
        "total_seconds": round(time.perf_counter() - t_build, 3),
    }
    return Result(
        metrics=metrics,
        curves={"samples_seen": seen, "running_accuracy": acc},
        arrays={"weights": net.weights, "theta_mv": net.theta_mv, "assignments": assignments,
                "confusion": confusion(ds.y_test[pred_test >= 0], pred_test[pred_test >= 0], 10),
                "raster_labels": ds.y_test[:N_RASTER], "period_s": np.array(net.period_s),
                "input_i": i_in[keep_in], "input_t": t_in[keep_in],
                "feature_shape": np.array(ds.feature_shape),
                "on_off": np.array(cfg.input_coding == "on_off")},
        spikes={"i": i_exc[keep], "t": t_exc[keep], "t_stop": np.array(raster_end),
                "n_neurons": np.array(params.n_exc)},
        meta=target.meta(),
    )


def figures(result: Result) -> dict:
    a, m, s = result.arrays, result.metrics, result.spikes
    shape = tuple(int(v) for v in a["feature_shape"])
    fig_rf, axes = plots.figure(1, size=(6.5, 6.5))
    W = a["weights"]
    if bool(a.get("on_off", False)):  # ON minus OFF weight of each pixel: red ink, blue paper
        n_pix = W.shape[0] // 2
        plots.receptive_fields(axes[0, 0], W[:n_pix] - W[n_pix:], shape, signed=True,
                               cmap="RdBu_r", title=f"input weights (ON - OFF) of the "
                               f"{m['n_exc']} excitatory neurons")
    else:
        plots.receptive_fields(axes[0, 0], W, shape,
                               title=f"input weights of the {m['n_exc']} excitatory neurons")

    fig, axes = plots.figure(3, size=(4.6, 3.8))
    ax = axes[0, 0]
    n_in = a["weights"].shape[0]
    plots.raster(ax, a["input_i"], a["input_t"], color="0.6", markersize=1.5,
                 t_stop=float(s["t_stop"]))
    plots.raster(ax, s["i"] + n_in + 5, s["t"], color=plots.COLORS["snn"], markersize=4,
                 t_stop=float(s["t_stop"]), ylabel="input neurons (grey) | excitatory neurons")
    period = float(a["period_s"])
    for k, label in enumerate(a["raster_labels"]):
        ax.axvline(k * period, color="k", lw=0.5, alpha=0.4)
        ax.text((k + 0.35) * period, n_in + int(m["n_exc"]) + 8, str(label), ha="center")
    ax.set_ylim(-1, n_in + int(m["n_exc"]) + 15)
    ax.set_title("spikes of the first test digits (labels on top)")
    ax = axes[0, 1]
    plots.curve(ax, result.curves["samples_seen"], result.curves["running_accuracy"],
                xlabel="training samples seen", ylabel="accuracy on the next block",
                marker="o", color=plots.COLORS["snn"])
    ax.axhline(m["test_accuracy"], color="k", ls="--", lw=1,
               label=f"final test accuracy {m['test_accuracy']:.3f}")
    ax.set_ylim(0, 1)
    ax.legend(frameon=False, loc="lower right")
    ax.set_title("learning without labels")
    plots.confusion_matrix(axes[0, 2], a["confusion"], title="test confusion matrix")
    return {"receptive_fields": fig_rf, "stdp_digits": fig}
