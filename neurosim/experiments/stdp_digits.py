"""Diehl & Cook (2015)-style unsupervised digit learning: STDP + winner-take-all on Brian2.

Poisson-coded pixels drive a layer of excitatory LIF neurons through STDP synapses; each
excitatory neuron excites one inhibitory partner, which inhibits every other excitatory neuron,
so the neurons compete and each comes to prefer one kind of digit. Adaptive thresholds keep any
one neuron from winning everything. No label is used in training; afterwards every neuron is
labelled with the class it answers most (`neurosim.snn.readout`), and test digits are classified
by the mean response of each class's neurons.

The defaults are adapted to scikit-learn's 8x8 digits (64 inputs, ~1,200 training samples);
`experiments/stdp_digits_diehl_cook.toml` holds the original parameters, and
``dataset=mnist data_dir=DIR`` runs on MNIST. docs/experiments.md explains each adaptation.
"""

from __future__ import annotations

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

    n_input: int = 64  # set from the data at run time
    n_exc: int = 100  # excitatory (and inhibitory) neurons
    present_ms: float = 350.0  # each digit shown for this long
    rest_ms: float = 150.0  # then silence
    max_rate_hz: float = 255.0  # 4x D&C's 63.75 Hz: 64 pixels carry ~5x less ink than 784
    norm_total: float = 6.37  # 78 * 64 / 784: same mean weight per synapse as D&C
    theta_plus_mv: float = 0.02  # D&C: 0.05; over 3 epochs 0.05 silences neurons, 0.01 lets few win
    min_spikes: int = 0  # D&C repeat faint samples faster (5); off: the 4x rate does that job


@dataclass(frozen=True)
class Config:
    dataset: str = "digits"  # digits (sklearn 8x8) or mnist (IDX files in data_dir)
    data_dir: str = "data/mnist"  # MNIST folder, for dataset=mnist
    n_train: int = 0  # training samples to use (0: all)
    n_test: int = 0  # test samples to use (0: all)
    epochs: int = 3  # passes with plasticity on; 1,200 digits give each neuron few wins per pass
    backend: str = "auto"  # Brian2 target: auto (cython if it builds, else numpy), numpy, cython
    chunk: int = 100  # samples per Brian2 run() (one compiled network serves every pass)
    curve_block: int = 100  # samples per point of the accuracy-vs-samples-seen curve
    snn: DigitsWTAParams = field(default_factory=DigitsWTAParams)  # network constants

    def __post_init__(self):
        require_choice("dataset", self.dataset, ("digits", "mnist"))
        require_choice("backend", self.backend, ("auto", "numpy", "cython"))
        require(self.n_train >= 0 and self.n_test >= 0, "n_train and n_test must be >= 0")
        require(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
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


# one short epoch on the numpy target (no compiler needed); with a single epoch D&C's own
# threshold increment works better than the 3-epoch default
QUICK = {"n_train": 60, "n_test": 40, "epochs": 1, "backend": "numpy", "chunk": 20,
         "curve_block": 20, "snn.n_exc": 20, "snn.present_ms": 100.0, "snn.rest_ms": 50.0,
         "snn.theta_plus_mv": 0.05}


def load(cfg: Config, seed: int) -> data.Dataset:
    if cfg.dataset == "mnist":
        return data.mnist(cfg.data_dir, n_train=cfg.n_train or None, n_test=cfg.n_test or None)
    ds = data.digits(seed=seed)
    n_tr, n_te = cfg.n_train or len(ds.X_train), cfg.n_test or len(ds.X_test)
    return replace(ds, X_train=ds.X_train[:n_tr], y_train=ds.y_train[:n_tr],
                   X_test=ds.X_test[:n_te], y_test=ds.y_test[:n_te])


def run(cfg: Config, ctx: Context) -> Result:
    from neurosim.snn import backend
    from neurosim.snn.readout import assign_labels, predict, running_accuracy
    from neurosim.snn.wta import WTANetwork

    ds = load(cfg, ctx.seed)
    target = backend.select(cfg.backend)
    backend.seed(ctx.rng)
    params = replace(cfg.snn, n_input=ds.X_train.shape[1])
    t_build = time.perf_counter()
    net = WTANetwork(params, ctx.rng, chunk=cfg.chunk)

    # --- training: no labels; the order is reshuffled every epoch
    t0 = time.perf_counter()
    order = np.concatenate([ctx.rng.permutation(len(ds.X_train)) for _ in range(cfg.epochs)])
    seen_labels = ds.y_train[order]
    bar = ctx.progress(range(len(order)), total=len(order), desc="training samples")

    def on_chunk(n_done: int, counts: np.ndarray) -> None:
        for _ in range(cfg.chunk):
            next(bar, None)
        seen, acc = running_accuracy(counts, seen_labels[:n_done], 10, cfg.curve_block)
        ctx.partial.curves = {"samples_seen": seen, "running_accuracy": acc}
        ctx.partial.arrays = {"weights": net.weights}

    train_counts = net.present(ds.X_train[order], plastic=True, on_chunk=on_chunk)
    train_seconds = time.perf_counter() - t0

    # --- labelling (training set, plasticity off) and testing
    label_counts = net.present(ds.X_train, plastic=False)
    assignments = assign_labels(label_counts, ds.y_train, 10)
    n_spikes_before = net.exc_mon.num_spikes
    t_test = net.t_s
    test_counts = net.present(ds.X_test, plastic=False, record_input=True)
    pred_test = predict(test_counts, assignments, 10)
    pred_train = predict(label_counts, assignments, 10)

    seen, acc = running_accuracy(train_counts, seen_labels, 10, cfg.curve_block)
    raster_end = t_test + N_RASTER * net.period_s
    i_exc = np.asarray(net.exc_mon.i[n_spikes_before:])
    t_exc = np.asarray(net.exc_mon.t[n_spikes_before:]) - t_test
    keep = t_exc < raster_end - t_test
    i_in, t_in = np.asarray(net.inp_mon.i[:]), np.asarray(net.inp_mon.t[:]) - t_test
    keep_in = t_in < raster_end - t_test
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
                "feature_shape": np.array(ds.feature_shape)},
        spikes={"i": i_exc[keep], "t": t_exc[keep], "t_stop": np.array(raster_end - t_test),
                "n_neurons": np.array(params.n_exc)},
        meta=target.meta(),
    )


def figures(result: Result) -> dict:
    a, m, s = result.arrays, result.metrics, result.spikes
    shape = tuple(int(v) for v in a["feature_shape"])
    fig_rf, axes = plots.figure(1, size=(6.5, 6.5))
    plots.receptive_fields(axes[0, 0], a["weights"], shape,
                           title=f"input weights of the {m['n_exc']} excitatory neurons")

    fig, axes = plots.figure(3, size=(4.6, 3.8))
    ax = axes[0, 0]
    n_in = a["weights"].shape[0]
    plots.raster(ax, a["input_i"], a["input_t"], color="0.6", markersize=1.5,
                 t_stop=float(s["t_stop"]))
    plots.raster(ax, s["i"] + n_in + 5, s["t"], color=plots.COLORS["snn"], markersize=4,
                 t_stop=float(s["t_stop"]), ylabel="input pixels (grey) | excitatory neurons")
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
