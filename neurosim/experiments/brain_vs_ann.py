"""Brain vs. artificial network: three networks learn the same digits, side by side.

- ``mlp``: a bias-free ReLU multilayer perceptron trained by backpropagation and gradient
  descent (Adam, softmax cross-entropy): a global error signal computed from labels.
- ``stdp``: the Diehl & Cook (2015) spiking winner-take-all network trained by STDP without
  labels (`neurosim.snn.wta`, as in ``stdp_digits``), labelled afterwards: a local rule driven
  by the timing of the spikes on both sides of each synapse.
- ``mlp_spiking``: the trained MLP converted to integrate-and-fire neurons by data-based weight
  normalisation (Diehl et al. 2015, `neurosim.snn.convert`, the conversion the sleep phase
  uses) and run on Brian2 with Poisson input: the same knowledge, carried by spikes.

All three see the same training digits and are scored on the same test digits. They are
compared on a common axis (test accuracy after the same numbers of training samples), on the
cost of one inference (multiply-accumulates vs. synaptic events, and an energy estimate from
Horowitz's 45 nm figures, with and without memory traffic), on how their units are active
(rates, sparseness, synchrony with Elephant against shuffled surrogates), on what their
connection strengths hold (first-layer weights beside receptive fields), and on robustness
(accuracy as synapses are removed at random and as noise is added to the pixels, repeated
draws within the run). The run writes one figure and a report.md that ties each row of its
table to the claim it tests (docs/brain_vs_ann.md walks through both).

Tuning rule: nothing here was chosen by looking at test accuracy; the validation split
(``val_fraction``) is the one to look at, and the test digits are scored at the end (the
learning curves and robustness sweeps score the first ``n_eval`` test digits as they go, for
the record only).
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from neurosim import data, interrupts, lesion, plots
from neurosim.ann import MLP, evaluate, make_optimizer, train
from neurosim.config import require, require_choice, require_fraction, require_positive
from neurosim.results import Context, Result
from neurosim.snn import activity, convert
from neurosim.snn.encoding import on_off
from neurosim.snn.readout import assign_labels, predict
from neurosim.snn.wta import DigitsWTAParams

ARMS = ("mlp", "stdp", "mlp_spiking")
ARM_TITLES = {"mlp": "MLP (backprop)", "stdp": "STDP spiking WTA",
              "mlp_spiking": "MLP converted to spikes"}
N_RASTER = 6  # test digits shown in the raster and activity panels
N_CLASSES = 10
CLASS_NAMES = [str(c) for c in range(N_CLASSES)]
LOSS = "categorical_cross_entropy"


@dataclass(frozen=True)
class Config:
    dataset: str = "digits"  # digits (sklearn 8x8) or mnist (IDX files in data_dir)
    data_dir: str = "data/mnist"  # MNIST folder, for dataset=mnist
    input_coding: str = "on_off"  # the STDP arm's input: on_off (ON and OFF cell per pixel)
    val_fraction: float = 0.2  # stratified share of the training digits kept for validation
    n_train: int = 0  # training samples to use (0: all)
    n_test: int = 0  # test samples to use (0: all)
    n_eval: int = 200  # first test digits scored for learning curves and robustness (0: all)
    # --- mlp arm
    mlp_hidden: int = 0  # hidden ReLU units; 0: as many as the SNN's excitatory neurons
    mlp_epochs: int = 40  # passes over the training digits (Adam plateaus after ~30 on digits)
    mlp_lr: float = 1e-3  # Adam step size
    mlp_batch_size: int = 32  # mini-batch size
    # --- stdp arm (network constants in snn.*, as stdp_digits)
    stdp_epochs: int = 3  # passes with STDP on (as stdp_digits: chosen there on validation)
    lr_decay: float = 1.0  # STDP learning rates x lr_decay ** epoch (1: constant)
    backend: str = "auto"  # Brian2 target of the STDP arm: auto, cpp_standalone, cython, numpy
    chunk: int = 100  # samples per Brian2 run() of the STDP network
    snapshot_label_digits: int = 100  # training digits (10 per class) labelling each snapshot
    snn: DigitsWTAParams = field(default_factory=DigitsWTAParams)  # STDP network constants
    # --- mlp_spiking arm (conversion constants in conversion.*)
    conversion: convert.ConversionParams = field(default_factory=convert.ConversionParams)
    spiking_backend: str = "numpy"  # Brian2 target of the converted net: numpy (no compile), cython
    # --- what is compared
    checkpoints: tuple[int, ...] = (100, 200, 500, 1000, 2000, 5000, 10000, 20000)  # samples seen
    lesion_fractions: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)  # synapses removed
    noise_sds: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.5)  # pixel noise sd (pixels in [0, 1])
    repeats: int = 3  # random lesion / noise draws per level (sample sd over these)
    mac_pj: float = 4.6  # energy of a 32-bit float multiply-accumulate (Horowitz 2014, 45 nm)
    add_pj: float = 0.9  # energy of a 32-bit float add: one synaptic event (Horowitz 2014)
    mem_pj: float = 10.0  # one 64-bit read from an 8 kB SRAM (Horowitz 2014); DRAM: ~1300-2600
    sttc_dt_ms: float = 5.0  # coincidence window of the spike time tiling coefficient
    sync_neurons: int = 30  # at most this many active neurons in the synchrony measures
    n_surrogates: int = 2  # ISI-shuffled surrogate data sets per synchrony measure

    #: keys a user cannot set: the data decides them
    DERIVED = {"snn.n_input": "the data (64 pixels for digits, 784 for MNIST; twice that "
                              "with input_coding=on_off)"}

    def __post_init__(self):
        require_choice("dataset", self.dataset, ("digits", "mnist"))
        require_choice("input_coding", self.input_coding, ("on_off", "intensity"))
        require_choice("backend", self.backend, ("auto", "numpy", "cython", "cpp_standalone"))
        require_choice("spiking_backend", self.spiking_backend, ("numpy", "cython"))
        require(0 <= self.val_fraction < 1,
                f"val_fraction must be in [0, 1), got {self.val_fraction}")
        for name in ("n_train", "n_test", "n_eval", "mlp_hidden"):
            require(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("mlp_epochs", "stdp_epochs", "mlp_batch_size", "chunk",
                     "snapshot_label_digits", "sync_neurons"):
            require(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        require_positive("mlp_lr", self.mlp_lr)
        require(0 < self.lr_decay <= 1, f"lr_decay must be in (0, 1], got {self.lr_decay}")
        require(len(self.checkpoints) >= 1 and min(self.checkpoints) >= 1,
                f"checkpoints must list sample counts >= 1, got {list(self.checkpoints)}")
        require(0.0 in self.lesion_fractions and 0.0 in self.noise_sds,
                "lesion_fractions and noise_sds must include 0 (the undamaged network)")
        for f in self.lesion_fractions:
            require_fraction("lesion_fractions", f, open_right=False)
        for sd in self.noise_sds:
            require(sd >= 0, f"noise_sds must be >= 0, got {sd}")
        require(self.repeats >= 2, f"repeats must be >= 2 (a sample sd needs two draws), "
                                   f"got {self.repeats}")
        require(self.n_surrogates >= 1, f"n_surrogates must be >= 1, got {self.n_surrogates}")
        for name in ("mac_pj", "add_pj", "mem_pj", "sttc_dt_ms"):
            require(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")


# A small run on the numpy target (no compiler): 20 neurons and 48 training digits, the
# stdp_digits quick settings (fast learning rates, large threshold increments).
QUICK = {"n_train": 60, "n_test": 40, "n_eval": 20, "mlp_epochs": 20, "mlp_lr": 0.01,
         "stdp_epochs": 1,
         "backend": "numpy", "chunk": 20, "snapshot_label_digits": 20, "snn.n_exc": 20,
         "snn.present_ms": 100.0, "snn.rest_ms": 50.0, "snn.nu_post": 0.1, "snn.nu_pre": 0.001,
         "snn.theta_plus_mv": 1.0, "conversion.n_steps": 40, "checkpoints": [20, 40, 100],
         "lesion_fractions": [0.0, 0.5, 0.9], "noise_sds": [0.0, 0.3], "repeats": 2,
         "sync_neurons": 10, "n_surrogates": 1}

HEADLINE = ("mlp.test_accuracy", "stdp.test_accuracy", "mlp_spiking.test_accuracy",
            "mlp.bias_cost", "mlp.energy_total_nj", "stdp.energy_total_nj",
            "mlp_spiking.energy_total_nj", "train_seconds", "total_seconds")


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
    """Curve table and metrics of a robustness sweep (sample sd over the draws)."""
    stats = [lesion.mean_sd(row) for row in accs]
    table = {column: np.asarray(levels, float),
             "accuracy_mean": np.array([m for m, _ in stats]),
             "accuracy_sd": np.array([np.nan if s is None else s for _, s in stats])}
    for r in range(accs.shape[1]):
        table[f"accuracy_draw{r}"] = accs[:, r]
    table.update(extra or {})
    metrics = {lesion.percent_key(lv): {"mean": m, "sd": s}
               for lv, (m, s) in zip(levels, stats, strict=True)}
    return table, metrics


def curve_metrics(learning: dict) -> dict[str, float]:
    """A learning curve as metrics: samples seen (as a string key) -> accuracy."""
    return {str(int(s)): float(acc) for s, acc in
            zip(learning["samples_seen"], learning["test_accuracy"], strict=True)}


def energy(cfg: Config, *, macs: float = 0.0, events: float = 0.0, units: float = 0.0,
           updates: float = 0.0, leaky: bool = False) -> dict[str, float]:
    """Energy per inference (nJ) from operation counts and Horowitz's per-operation energies.

    ``energy_ops_nj`` counts the synaptic operations only (MACs at `mac_pj`, synaptic events
    at `add_pj`), the figure most SNN-vs-ANN comparisons quote. ``energy_total_nj`` adds
    what a time-stepped machine also pays: one memory access (`mem_pj`) per weight read
    (per MAC or synaptic event), a read and a write of the target's state per synaptic event,
    a read and a write of every neuron's state at every time step (`updates`), one MAC per
    neuron update for a leak, and a write and a read of every MLP unit's activation (`units`).
    """
    ops = macs * cfg.mac_pj + events * cfg.add_pj
    memory = (macs + 3 * events + 2 * updates + 2 * units) * cfg.mem_pj
    leak = updates * cfg.mac_pj if leaky else 0.0
    return {"energy_ops_nj": ops / 1000.0, "energy_total_nj": (ops + memory + leak) / 1000.0,
            "energy_memory_nj": memory / 1000.0}


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


def _stop_if(status: str) -> None:
    """train() caught Ctrl-C and stopped: stop the whole run (the runner keeps ctx.partial)."""
    if status == "INTERRUPTED":
        raise interrupts.Stopped(interrupts.last_signal() or 2)


# --- arm 1: the MLP ----------------------------------------------------------------------------


def train_mlp(net: MLP, ds: data.Dataset, cfg: Config, rng: np.random.Generator,
              checkpoints: list[int], on_checkpoint, ctx: Context, table: str):
    """Adam on mini-batches, epoch after epoch, stopping at every checkpoint (samples seen) to
    let `on_checkpoint(seen)` score the network; one optimiser keeps its state throughout.

    Returns (per-epoch curve table, status).
    """
    opt = make_optimizer("adam", cfg.mlp_lr)
    n = len(ds.X_train)
    X, y = net.as_input(ds.X_train), ds.y_train
    cols: dict[str, list[float]] = {k: [] for k in (
        "epoch", "loss", "accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy")}
    sets = {"val": (ds.X_val, ds.y_val), "test": (ds.X_test, ds.y_test)}
    for epoch in ctx.progress(range(cfg.mlp_epochs), total=cfg.mlp_epochs, desc=table):
        perm = rng.permutation(n)
        cuts = [c - epoch * n for c in checkpoints if epoch * n < c < (epoch + 1) * n]
        bounds = [0, *cuts, n]
        loss_sum = acc_sum = 0.0
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            idx = perm[a:b]
            h = train(net, X[idx], y[idx], loss=LOSS, optimizer=opt, epochs=1,
                      batch_size=cfg.mlp_batch_size, rng=rng, shuffle=False,
                      metrics=("accuracy",))
            _stop_if(h.status)
            if h.status != "COMPLETED":
                return cols, h.status
            loss_sum += h.epochs["loss"][0] * (b - a)
            acc_sum += h.epochs["accuracy"][0] * (b - a)
            if epoch * n + b in checkpoints:
                on_checkpoint(epoch * n + b)
        cols["epoch"].append(epoch + 1)
        cols["loss"].append(loss_sum / n)
        cols["accuracy"].append(acc_sum / n)
        for split, (Xs, ys) in sets.items():
            scores = (evaluate(net, Xs, ys, LOSS, ("accuracy",)) if Xs is not None
                      else {"loss": np.nan, "accuracy": np.nan})
            cols[f"{split}_loss"].append(scores["loss"])
            cols[f"{split}_accuracy"].append(scores["accuracy"])
        ctx.partial.add_curves(table, cols)
    return cols, "COMPLETED"


def mlp_arm(cfg: Config, ctx: Context, ds: data.Dataset, plan: dict, eval_idx: np.ndarray):
    """Train the bias-free MLP (and, for comparison, the same MLP with biases); score it at
    the checkpoints, on lesions and noise; measure its activations and cost."""
    rng = ctx.rng_for("mlp")
    hidden = cfg.mlp_hidden or cfg.snn.n_exc
    sizes = [ds.X_train.shape[1], hidden, N_CLASSES]
    net = MLP(sizes, "relu", "softmax", bias=False, init="he", rng=rng)
    X_eval, y_eval = ds.X_test[eval_idx], ds.y_test[eval_idx]
    snapshots: dict[int, list[np.ndarray]] = {}
    learning: dict[str, list[float]] = {"samples_seen": [], "test_accuracy": []}

    def on_checkpoint(seen: int) -> None:
        snapshots[seen] = [np.array(W, dtype=np.float64) for W in net.weights]
        learning["samples_seen"].append(seen)
        learning["test_accuracy"].append(accuracy(net.predict(X_eval), y_eval))
        ctx.partial.add_curves("mlp_learning", learning)

    t0 = time.perf_counter()
    epochs, status = train_mlp(net, ds, cfg, rng, plan["mlp"], on_checkpoint, ctx, "mlp_epochs")
    seconds = time.perf_counter() - t0
    if status != "COMPLETED":
        return None, status
    weights = [np.array(W, dtype=np.float64) for W in net.weights]

    # the price of having no biases: the same network with biases, trained alike
    rng_b = ctx.rng_for("mlp_biased")
    biased = MLP(sizes, "relu", "softmax", bias=True, init="he", rng=rng_b)
    _, status_b = train_mlp(biased, ds, cfg, rng_b, [], lambda seen: None, ctx,
                            "mlp_biased_epochs")
    biased_scores = {}
    if status_b == "COMPLETED":
        biased_scores = {"biased_test_accuracy": accuracy(biased.predict(ds.X_test), ds.y_test)}
        if ds.X_val is not None:
            biased_scores["biased_val_accuracy"] = accuracy(biased.predict(ds.X_val), ds.y_val)

    # robustness: the same trained weights, damaged; accuracy on the evaluation digits
    lesions = robustness(cfg.lesion_fractions, cfg.repeats, lambda f, r: accuracy(
        mlp_logits(lesion.lesion(weights, f, rng), X_eval).argmax(1), y_eval))
    noise = robustness(cfg.noise_sds, cfg.repeats, lambda sd, r: accuracy(
        mlp_logits(weights, lesion.noisy(X_eval, sd, rng)).argmax(1), y_eval))
    lesion_table, lesion_metrics = sweep_summary(cfg.lesion_fractions, lesions,
                                                 "fraction_removed")
    noise_table, noise_metrics = sweep_summary(cfg.noise_sds, noise, "noise_sd")

    hidden_test = net.forward_layers(ds.X_test)[1]
    n_weights = int(sum(W.size for W in weights))
    metrics = {
        "test_accuracy": accuracy(net.predict(ds.X_test), ds.y_test),
        "train_accuracy": accuracy(net.predict(ds.X_train), ds.y_train),
        **({"val_accuracy": accuracy(net.predict(ds.X_val), ds.y_val)}
           if ds.X_val is not None else {}),
        **biased_scores,
        "bias_cost": (biased_scores["biased_test_accuracy"]
                      - accuracy(net.predict(ds.X_test), ds.y_test)
                      if biased_scores else None),
        "hidden_units": hidden,
        "epochs": cfg.mlp_epochs,
        "samples_seen": cfg.mlp_epochs * len(ds.X_train),
        "labels_used": cfg.mlp_epochs * len(ds.X_train),
        "labels_drive_learning": True,
        "train_seconds": round(seconds, 3),
        "trainable_parameters": int(net.n_params),
        "learning_rule": "backpropagation + Adam gradient descent on cross-entropy",
        "locality": "global: every weight change needs the output error sent back through "
                    "the layers above",
        "synaptic_ops_per_inference": n_weights,
        "neuron_updates_per_inference": hidden + N_CLASSES,
        **energy(cfg, macs=n_weights, units=hidden + N_CLASSES),
        **population_activity(hidden_test),
        "learning_curve": curve_metrics(learning),
        "lesion_accuracy": lesion_metrics,
        "noise_accuracy": noise_metrics,
    }
    raster = ds.X_test[:N_RASTER]
    order, starts = order_by_class(net.forward_layers(ds.X_train)[1], ds.y_train)
    arrays = {"mlp_W1": weights[0], "mlp_hidden_raster": net.forward_layers(raster)[1][:, order].T,
              "mlp_hidden_class_starts": starts}
    curves = {"mlp_epochs": epochs, "mlp_learning": learning, "mlp_lesion": lesion_table,
              "mlp_noise": noise_table}
    extra = {"snapshots": snapshots, "weights": weights, "net": net}
    return (metrics, curves, arrays, extra), "COMPLETED"


# --- arm 3: the MLP converted to spikes --------------------------------------------------------


def run_converted_on_brian2(weights, spikes: np.ndarray, p: convert.ConversionParams,
                            keep: int):
    """The converted network on Brian2 (`convert.build_chain`, as `convert.simulate_brian2`),
    keeping the hidden layer's spike times of the first `keep` samples.

    Returns (`convert.SpikeRun`, hidden i, hidden t in seconds).
    """
    import brian2 as b2

    T, n, n_in = spikes.shape
    table = np.transpose(spikes, (1, 0, 2)).reshape(n * T, n_in)
    b2.defaultclock.dt = p.dt_ms * b2.ms
    net, obj = convert.build_chain(weights, table, p.dt_ms,
                                   thresholds=[p.threshold] * len(weights), reset_every=T)
    net.run(n * T * p.dt_ms * b2.ms, namespace={})
    groups = [obj["input"], *obj["layers"]]
    trains = [convert.spike_trains(m, n * T, g.N, p.dt_ms).reshape(n, T, g.N)
              for m, g in zip(obj["monitors"], groups, strict=True)]
    run = convert.SpikeRun(np.transpose(trains[-1], (1, 0, 2)).copy(),
                           [tr.sum(axis=1, dtype=np.int64) for tr in trains])
    mon = obj["monitors"][1]
    t = np.asarray(mon.t[:] / b2.second)
    i = np.asarray(mon.i[:])
    window = keep * T * p.dt_ms / 1000.0
    return run, i[t < window], t[t < window]


def spiking_events(run: convert.SpikeRun, sizes: list[int]) -> np.ndarray:
    """Synaptic events of each sample: every spike of a layer reaches every unit above."""
    return sum(run.counts[layer].sum(axis=1) * sizes[layer + 1] for layer in range(len(sizes) - 1))


def mlp_spiking_arm(cfg: Config, ctx: Context, ds: data.Dataset, plan: dict,
                    eval_idx: np.ndarray, mlp: dict, mlp_metrics: dict):
    """Convert the trained MLP (and its checkpoint snapshots), run it on Brian2 and on numpy
    (they must give the same spikes), measure accuracy against presentation time, cost,
    activity and robustness."""
    from neurosim.snn import backend

    rng = ctx.rng_for("mlp_spiking")
    p = cfg.conversion
    weights = mlp["weights"]
    sizes = [weights[0].shape[0], *[W.shape[1] for W in weights]]
    Wn, factors = convert.normalise(weights, ds.X_train, p.percentile, p.chain)
    X_eval, y_eval = ds.X_test[eval_idx], ds.y_test[eval_idx]

    phases = ctx.progress(range(3), total=3,
                          desc="mlp_spiking (Brian2 run, snapshots, lesions and noise)")
    t0 = time.perf_counter()
    spikes = convert.poisson_input(ds.X_test, p.n_steps, p.p_max, rng)
    target = backend.select(cfg.spiking_backend)
    ctx.partial.meta["mlp_spiking_brian2_target"] = target.name
    try:
        b2_run, hid_i, hid_t = run_converted_on_brian2(Wn, spikes, p, keep=100)
    finally:
        backend.reset_device()
    brian2_seconds = time.perf_counter() - t0
    np_run = convert.simulate(Wn, spikes, p.threshold, engine="numpy")
    identical = bool(np.array_equal(np_run.output, b2_run.output) and all(
        np.array_equal(a, b) for a, b in zip(np_run.counts, b2_run.counts, strict=True)))

    y = ds.y_test
    acc_t = convert.accuracy_vs_time(b2_run.output, y)
    pred = convert.predict_from_counts(b2_run.output.sum(axis=0))
    mlp_pred = mlp["net"].predict(ds.X_test)
    close = np.flatnonzero(acc_t >= mlp_metrics["test_accuracy"] - 0.01)
    step_close = int(close[0]) + 1 if close.size else None
    events = spiking_events(b2_run, sizes)
    n_neurons = sum(sizes[1:])
    close_cost: dict[str, float | None] = {"synaptic_ops_to_mlp_accuracy": None,
                                           "energy_ops_to_mlp_accuracy_nj": None,
                                           "energy_total_to_mlp_accuracy_nj": None}
    if step_close is not None:  # the same input, cut at that step (membranes start at zero)
        early = convert.simulate(Wn, spikes[:step_close], p.threshold, engine="numpy")
        ops = float(spiking_events(early, sizes).mean())
        e = energy(cfg, events=ops, updates=n_neurons * step_close)
        close_cost = {"synaptic_ops_to_mlp_accuracy": ops,
                      "energy_ops_to_mlp_accuracy_nj": e["energy_ops_nj"],
                      "energy_total_to_mlp_accuracy_nj": e["energy_total_nj"]}
    window_s = p.n_steps * p.dt_ms / 1000.0

    next(phases, None)
    # learning curve: each MLP snapshot converted (normalised on the training digits) and run
    learning: dict[str, list[float]] = {"samples_seen": [], "test_accuracy": []}
    for seen in sorted(mlp["snapshots"]):
        out = convert.convert_and_simulate(mlp["snapshots"][seen], ds.X_train, X_eval, p,
                                           rng).output
        learning["samples_seen"].append(seen)
        learning["test_accuracy"].append(accuracy(convert.predict_from_counts(out.sum(0)),
                                                  y_eval))

    next(phases, None)

    def score(Ws, X) -> float:
        out = convert.simulate(Ws, convert.poisson_input(X, p.n_steps, p.p_max, rng),
                               p.threshold).output
        return accuracy(convert.predict_from_counts(out.sum(axis=0)), y_eval)

    lesions = robustness(cfg.lesion_fractions, cfg.repeats,
                         lambda f, r: score(lesion.lesion(Wn, f, rng), X_eval))
    noise = robustness(cfg.noise_sds, cfg.repeats,
                       lambda sd, r: score(Wn, lesion.noisy(X_eval, sd, rng)))
    lesion_table, lesion_metrics = sweep_summary(cfg.lesion_fractions, lesions,
                                                 "fraction_removed")
    noise_table, noise_metrics = sweep_summary(cfg.noise_sds, noise, "noise_sd")
    next(phases, None)
    sync = activity.synchrony(hid_i, hid_t, sizes[1], min(100, len(y)) * window_s, rng,
                              sttc_dt_ms=cfg.sttc_dt_ms, max_neurons=cfg.sync_neurons,
                              n_surrogates=cfg.n_surrogates)
    metrics = {
        "test_accuracy": accuracy(pred, y),
        "agreement_with_mlp": accuracy(pred, mlp_pred),
        "presentation_steps": p.n_steps,
        "presentation_ms": p.n_steps * p.dt_ms,
        "steps_to_mlp_accuracy": step_close,
        "engines_identical": identical,
        "normalisation_factors": [float(f) for f in factors],
        "epochs": mlp_metrics["epochs"],
        "samples_seen": mlp_metrics["samples_seen"],
        "labels_used": mlp_metrics["labels_used"],
        "labels_drive_learning": True,
        "train_seconds": 0.0,
        "brian2_seconds": round(brian2_seconds, 3),
        "trainable_parameters": 0,
        "learning_rule": "none of its own: the MLP's weights, rescaled per layer",
        "locality": "inherits the MLP's global rule (backpropagation before conversion)",
        "synaptic_ops_per_inference": float(events.mean()),
        **close_cost,
        "neuron_updates_per_inference": n_neurons * p.n_steps,
        **energy(cfg, events=float(events.mean()), updates=n_neurons * p.n_steps),
        "mean_rate_hz": activity.mean_rate_hz(b2_run.counts[1], window_s),
        **population_activity(b2_run.counts[1]),
        **{k: sync[k] for k in ("spike_contrast", "spike_contrast_surrogate", "sttc",
                                "sttc_surrogate")},
        "sync_neurons_active": sync["n_active"],
        "learning_curve": curve_metrics(learning),
        "lesion_accuracy": lesion_metrics,
        "noise_accuracy": noise_metrics,
    }
    steps = np.arange(1, p.n_steps + 1)
    curves = {"mlp_spiking_time": {"step": steps, "time_ms": steps * p.dt_ms,
                                   "accuracy": acc_t},
              "mlp_spiking_learning": learning, "mlp_spiking_lesion": lesion_table,
              "mlp_spiking_noise": noise_table}
    keep = hid_t < N_RASTER * window_s
    spikes_out = {"mlp_spiking_hidden": {"i": hid_i[keep], "t": hid_t[keep],
                                         "t_stop": N_RASTER * window_s, "n_neurons": sizes[1]}}
    return metrics, curves, spikes_out


# --- arm 2: the STDP network -------------------------------------------------------------------


def stdp_arm(cfg: Config, ctx: Context, ds: data.Dataset, plan: dict, eval_idx: np.ndarray):
    """Train the Diehl & Cook network without labels, label it, score it; then score its
    checkpoint snapshots, lesions and noise in one pass of frozen replicas."""
    from neurosim.snn import backend

    rng = ctx.rng_for("stdp")
    ctx.scratch_dir.mkdir(parents=True, exist_ok=True)
    dirs = [tempfile.mkdtemp(prefix="brian2-standalone-", dir=ctx.scratch_dir)
            for _ in range(2)]
    try:
        trained = _stdp_train(cfg, ctx, ds, plan, rng, dirs[0])
        if trained is None:
            return None, "DIVERGED"
        replicas = _stdp_replicas(cfg, ctx, ds, eval_idx, rng, trained, dirs[1])
        return (trained, replicas), "COMPLETED"
    finally:
        backend.reset_device()
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)


def _select(cfg: Config, ctx: Context, directory: str):
    from neurosim.snn import backend

    requested = "cpp_standalone" if cfg.backend == "auto" else cfg.backend
    target = backend.select(requested, standalone_dir=directory)
    if cfg.backend == "auto":
        target = replace(target, requested="auto")
    ctx.partial.meta.update(target.meta())
    return target


def _stdp_train(cfg, ctx, ds, plan, rng, directory) -> dict | None:
    from neurosim.snn import backend, wta

    X_train = stdp_coding(cfg, ds.X_train)
    target = _select(cfg, ctx, directory)
    backend.seed(rng)
    params = replace(cfg.snn, n_input=X_train.shape[1])
    t_build = time.perf_counter()
    net = wta.WTANetwork(params, rng, chunk=cfg.chunk)
    build_seconds = time.perf_counter() - t_build
    n = len(X_train)
    total = cfg.stdp_epochs * n
    bar = ctx.progress(range(total), total=total, desc="stdp training samples")
    snapshots: dict[int, tuple] = {}
    done = [0]

    def on_chunk(counts: np.ndarray, labels: np.ndarray) -> None:
        for _ in range(len(counts) - done[0]):
            next(bar, None)
        done[0] = len(counts)
        seen = len(counts)
        if seen in plan["stdp"]:
            snapshots[seen] = (normalised(net.weights, params), net.theta_mv.copy())

    def after_epoch(epoch: int, record) -> None:
        if not wta.check_finite(net):
            raise _Diverged(epoch)

    t0 = time.perf_counter()
    try:
        wta.fit(net, X_train, ds.y_train, epochs=cfg.stdp_epochs, rng=rng,
                lr_decay=cfg.lr_decay, on_chunk=on_chunk, after_epoch=after_epoch)
    except _Diverged as exc:
        ctx.partial.warnings.append(f"stdp: weights or thresholds became NaN/inf in epoch "
                                    f"{exc.epoch}")
        return None
    train_seconds = time.perf_counter() - t0

    assignments, label_counts = wta.label_neurons(net, X_train, ds.y_train, N_CLASSES)
    scores = {"train_accuracy": accuracy(predict(label_counts, assignments, N_CLASSES),
                                         ds.y_train)}
    if ds.X_val is not None:
        pred_val, _ = wta.classify(net, stdp_coding(cfg, ds.X_val), assignments, N_CLASSES)
        scores["val_accuracy"] = accuracy(pred_val, ds.y_val)
    pred_test, test_counts = wta.classify(net, stdp_coding(cfg, ds.X_test), assignments,
                                          N_CLASSES, record_input=True)
    i_exc, t_exc, i_in, t_in = net.recorded
    return {"params": params, "weights": normalised(net.weights, params),
            "theta": net.theta_mv.copy(),
            "assignments": assignments, "label_counts": label_counts,
            "pred_test": pred_test, "test_counts": test_counts, "scores": scores,
            "recorded": (i_exc, t_exc, i_in, t_in),
            "recorded_digits": min(cfg.chunk, len(ds.X_test)), "period_s": net.period_s,
            "snapshots": snapshots, "target": target, "build_seconds": build_seconds,
            "train_seconds": train_seconds}


def normalised(W: np.ndarray, p) -> np.ndarray:
    """Input weights as the network uses them: `WTANetwork` scales each neuron's input weights
    to sum ``norm_total`` before every sample, and the weights read after a chunk are not yet
    scaled (the last winner's sum can be 40% above the total, enough to make it answer every
    digit in a frozen copy)."""
    total = W.sum(axis=0, keepdims=True)
    return np.where(total > 0, W * p.norm_total / np.where(total > 0, total, 1.0), W)


def stratified_first(y: np.ndarray, n: int) -> np.ndarray:
    """Indices of the first ``n // 10`` samples of every class (at least one each)."""
    per_class = max(1, n // N_CLASSES)
    return np.sort(np.concatenate([np.flatnonzero(y == c)[:per_class]
                                   for c in range(N_CLASSES)]))


def _stdp_replicas(cfg, ctx, ds, eval_idx, rng, tr: dict, directory: str):
    """Snapshots, lesions and noise as replicas of the trained network, scored in one pass.

    Every replica is shown a few labelled training digits, then the evaluation digits. The
    snapshots (and the undamaged trained network, for the last point of the learning curve)
    are labelled from their responses to the training digits; the damaged replicas keep the
    trained network's labels (a lesion does not get a new readout).
    """
    from neurosim.snn import backend
    from neurosim.snn.replicas import WTAReplicas, chunk_for

    p, W, theta = tr["params"], tr["weights"], tr["theta"]
    lab = stratified_first(ds.y_train, cfg.snapshot_label_digits)
    X_lab, y_lab = ds.X_train[lab], ds.y_train[lab]
    X_eval, y_eval = ds.X_test[eval_idx], ds.y_test[eval_idx]
    final = max(tr["snapshots"])
    specs = []  # (kind, level, weights, theta, pixels of the evaluation digits)
    for seen in sorted(tr["snapshots"]):
        if seen != final:
            Ws, ths = tr["snapshots"][seen]
            specs.append(("snapshot", seen, Ws, ths, X_eval))
    for f in cfg.lesion_fractions:
        for _ in range(cfg.repeats):
            specs.append(("lesion", f, lesion.remove_synapses(W, f, rng), theta, X_eval))
    for sd in cfg.noise_sds:
        if sd == 0:
            continue  # the undamaged draws of the lesion sweep
        for _ in range(cfg.repeats):
            specs.append(("noise", sd, W, theta, lesion.noisy(X_eval, sd, rng)))
    k = len(specs)
    t0 = time.perf_counter()
    _select(cfg, ctx, directory)
    backend.seed(rng)
    n_lab, n_digits = len(lab), len(lab) + len(X_eval)
    reps = WTAReplicas(p, k, rng, chunk=chunk_for(p, k, n_digits))
    bar = ctx.progress(range(n_digits), total=n_digits, desc=f"stdp replicas ({k} networks)")
    done = [0]

    def on_chunk(n_done: int) -> None:
        for _ in range(n_done - done[0]):
            next(bar, None)
        done[0] = n_done

    X = np.stack([stdp_coding(cfg, np.concatenate([X_lab, s[4]])) for s in specs])
    counts = reps.present(X, np.stack([s[2] for s in specs]), np.stack([s[3] for s in specs]),
                          on_chunk=on_chunk)
    inh = reps.inh_counts[:, n_lab:]
    label_counts, counts = counts[:, :n_lab], counts[:, n_lab:]
    seconds = time.perf_counter() - t0
    backend.reset_device()

    def acc(r: int, assignments=None) -> float:
        if assignments is None:  # labelled from its own responses to the training digits
            assignments = assign_labels(label_counts[r], y_lab, N_CLASSES)
        return accuracy(predict(counts[r], assignments, N_CLASSES), y_eval)

    rows: dict[str, dict[float, list[int]]] = {"snapshot": {}, "lesion": {}, "noise": {}}
    for r, s in enumerate(specs):
        rows[s[0]].setdefault(s[1], []).append(r)
    rows["noise"][0.0] = undamaged = rows["lesion"][0.0]
    learning = {"samples_seen": [*sorted(rows["snapshot"]), final],
                "test_accuracy": [*(acc(rs[0]) for _, rs in sorted(rows["snapshot"].items())),
                                  float(np.mean([acc(r) for r in undamaged]))]}
    sweeps = {kind: np.array([[acc(r, tr["assignments"]) for r in rows[kind][level]]
                              for level in levels])
              for kind, levels in (("lesion", cfg.lesion_fractions), ("noise", cfg.noise_sds))}
    spikes_per_digit = np.array([counts[rows["lesion"][f]].sum(axis=2).mean()
                                 for f in cfg.lesion_fractions])
    lesion_table, lesion_metrics = sweep_summary(
        cfg.lesion_fractions, sweeps["lesion"], "fraction_removed",
        {"spikes_per_digit": spikes_per_digit})
    noise_table, noise_metrics = sweep_summary(cfg.noise_sds, sweeps["noise"], "noise_sd")
    return {"learning": learning, "lesion_table": lesion_table, "lesion_metrics": lesion_metrics,
            "noise_table": noise_table, "noise_metrics": noise_metrics,
            "replicas": k, "replica_digits": n_digits, "snapshot_label_digits": n_lab,
            "replica_seconds": seconds,
            "inh_per_exc_spike": float(inh[undamaged].sum() / max(1, counts[undamaged].sum()))}


def stdp_metrics(cfg: Config, ctx: Context, ds: data.Dataset, tr: dict, rep: dict):
    """Metrics, curves, arrays and spikes of the STDP arm from its training and replicas."""
    p = tr["params"]
    rng = ctx.rng_for("stdp_activity")
    test_counts = tr["test_counts"]
    i_exc, t_exc, i_in, t_in = tr["recorded"]
    period = tr["period_s"]
    digits = tr["recorded_digits"]
    in_per_digit = np.bincount(np.floor(t_in / period).astype(int), minlength=digits)[:digits]
    exc_per_digit = test_counts.sum(axis=1)
    inh_per_digit = exc_per_digit * rep["inh_per_exc_spike"]
    events = (in_per_digit.mean() * p.n_exc + exc_per_digit.mean()
              + inh_per_digit.mean() * (p.n_exc - 1))
    updates = 2 * p.n_exc * p.present_ms / p.dt_ms
    sync = activity.synchrony(i_exc, t_exc, p.n_exc, digits * period, rng,
                              sttc_dt_ms=cfg.sttc_dt_ms, max_neurons=cfg.sync_neurons,
                              n_surrogates=cfg.n_surrogates)
    n_train = len(ds.X_train)
    metrics = {
        "test_accuracy": accuracy(tr["pred_test"], ds.y_test),
        **tr["scores"],
        "n_exc": p.n_exc,
        "epochs": cfg.stdp_epochs,
        "samples_seen": cfg.stdp_epochs * n_train,
        "labels_used": n_train,
        "labels_drive_learning": False,
        "train_seconds": round(tr["train_seconds"], 3),
        "build_seconds": round(tr["build_seconds"], 3),
        "replica_seconds": round(rep["replica_seconds"], 3),
        "replicas": rep["replicas"],
        "snapshot_label_digits": rep["snapshot_label_digits"],
        "trainable_parameters": int(p.n_input * p.n_exc + p.n_exc),
        "learning_rule": "STDP (Diehl & Cook 2015) + adaptive thresholds, no labels; "
                         "neurons labelled afterwards",
        "locality": "local: each weight changes with the spike times of its own two neurons",
        "neurons_assigned": int(np.sum(tr["assignments"] >= 0)),
        "silent_test_fraction": float(np.mean(exc_per_digit == 0)),
        "spikes_per_test_digit": float(exc_per_digit.mean()),
        "presentation_ms": p.present_ms,
        "synaptic_ops_per_inference": float(events),
        "neuron_updates_per_inference": float(updates),
        **energy(cfg, events=float(events), updates=float(updates), leaky=True),
        "mean_rate_hz": activity.mean_rate_hz(test_counts, p.present_ms / 1000.0),
        **population_activity(test_counts),
        **{k: sync[k] for k in ("spike_contrast", "spike_contrast_surrogate", "sttc",
                                "sttc_surrogate")},
        "sync_neurons_active": sync["n_active"],
        "learning_curve": curve_metrics(rep["learning"]),
        "lesion_accuracy": rep["lesion_metrics"],
        "noise_accuracy": rep["noise_metrics"],
    }
    W = tr["weights"]
    rf = W[: W.shape[0] // 2] - W[W.shape[0] // 2:] if cfg.input_coding == "on_off" else W
    order, starts = order_by_class(tr["label_counts"], ds.y_train, tr["assignments"])
    raster_end = N_RASTER * period
    keep, keep_in = t_exc < raster_end, t_in < raster_end
    arrays = {"stdp_receptive_fields": rf, "stdp_theta_mv": tr["theta"],
              "stdp_assignments": tr["assignments"],
              "stdp_counts_raster": test_counts[:N_RASTER][:, order].T,
              "stdp_class_starts": starts, "stdp_class_rank": np.argsort(order),
              "stdp_period_s": np.array(period),
              "stdp_present_s": np.array(p.present_ms / 1000.0),
              "raster_labels": ds.y_test[:N_RASTER]}
    spikes = {"stdp_exc": {"i": i_exc[keep], "t": t_exc[keep], "t_stop": raster_end,
                           "n_neurons": p.n_exc},
              "stdp_input": {"i": i_in[keep_in], "t": t_in[keep_in], "t_stop": raster_end,
                             "n_neurons": p.n_input}}
    curves = {"stdp_learning": rep["learning"], "stdp_lesion": rep["lesion_table"],
              "stdp_noise": rep["noise_table"]}
    return metrics, curves, arrays, spikes


class _Diverged(Exception):
    def __init__(self, epoch: int):
        super().__init__(f"diverged in epoch {epoch}")
        self.epoch = epoch


# --- the run -----------------------------------------------------------------------------------


def run(cfg: Config, ctx: Context) -> Result:
    t_start = time.perf_counter()
    ds = load(cfg, ctx.seed)
    n_eval = min(cfg.n_eval or len(ds.X_test), len(ds.X_test))
    eval_idx = np.arange(n_eval)  # the test split is already shuffled (stratified)
    plan = checkpoint_plan(cfg, len(ds.X_train))
    out = ctx.partial
    common = {"dataset": cfg.dataset, "n_train": len(ds.X_train),
              "n_val": 0 if ds.X_val is None else len(ds.X_val), "n_test": len(ds.X_test),
              "n_eval": n_eval, "repeats": cfg.repeats,
              "spread": f"sample sd (ddof=1) over {cfg.repeats} random lesion/noise draws "
                        "within this run; training seeds: sweep seed=0,1,2"}
    out.update_metrics(**common, train_seconds=0.0)
    arrays = {"raster_labels": ds.y_test[:N_RASTER],
              "feature_shape": np.array(ds.feature_shape),
              "checkpoints_stdp": np.array(plan["stdp"]), "checkpoints_mlp": np.array(plan["mlp"])}
    out.add_arrays(**arrays)

    # 1. the MLP
    mlp, status = mlp_arm(cfg, ctx, ds, plan, eval_idx)
    if status != "COMPLETED":
        out.status = status
        out.warnings.append("mlp: training diverged (NaN/inf or runaway loss); the arms "
                            "after it were not run")
        return out
    mlp_m, mlp_curves, mlp_arrays, mlp_extra = mlp
    for name, table in mlp_curves.items():
        out.add_curves(name, table)
    out.add_arrays(**mlp_arrays)
    out.update_metrics(mlp=mlp_m, train_seconds=mlp_m["train_seconds"])

    # 2. the same MLP, converted to spikes
    sp_m, sp_curves, sp_spikes = mlp_spiking_arm(cfg, ctx, ds, plan, eval_idx, mlp_extra, mlp_m)
    for name, table in sp_curves.items():
        out.add_curves(name, table)
    for name, s in sp_spikes.items():
        out.add_spikes(name, s)
    out.update_metrics(mlp_spiking=sp_m)
    if not activity.available():
        out.warnings.append("synchrony not measured: Elephant and Neo are not installed "
                            "(pip install elephant)")
    if not sp_m["engines_identical"]:
        out.warnings.append("mlp_spiking: the Brian2 and numpy engines gave different spikes "
                            "for the same input")

    # 3. the STDP network
    stdp_out, status = stdp_arm(cfg, ctx, ds, plan, eval_idx)
    if status != "COMPLETED":
        out.status = status
        return out
    st_m, st_curves, st_arrays, st_spikes = stdp_metrics(cfg, ctx, ds, *stdp_out)
    for name, table in st_curves.items():
        out.add_curves(name, table)
    out.add_arrays(**st_arrays)
    for name, s in st_spikes.items():
        out.add_spikes(name, s)
    out.update_metrics(stdp=st_m,
                       train_seconds=round(mlp_m["train_seconds"] + st_m["train_seconds"], 3))
    if st_m["spikes_per_test_digit"] == 0:
        out.warnings.append("stdp: the excitatory layer never fired on the test digits")
    out.update_metrics(total_seconds=round(time.perf_counter() - t_start, 3))
    out.report = report(out.metrics, cfg)
    return out


# --- the report --------------------------------------------------------------------------------

#: The rows of the report's table: (section, what, metric key; dotted for nested ones).
ROWS = [
    ("learning", "test accuracy (all test digits)", "test_accuracy"),
    ("learning", "validation accuracy", "val_accuracy"),
    ("learning", "training accuracy", "train_accuracy"),
    ("learning", "training samples seen", "samples_seen"),
    ("learning", "epochs", "epochs"),
    ("learning", "labels used", "labels_used"),
    ("learning", "labels drive the weight changes", "labels_drive_learning"),
    ("learning", "training wall time (s)", "train_seconds"),
    ("learning", "trainable parameters", "trainable_parameters"),
    ("learning", "learning rule", "learning_rule"),
    ("learning", "locality of the rule", "locality"),
    ("cost", "synaptic operations per digit (MACs or synaptic events)",
     "synaptic_ops_per_inference"),
    ("cost", "neuron updates per digit", "neuron_updates_per_inference"),
    ("cost", "energy per digit, synaptic operations only (nJ)", "energy_ops_nj"),
    ("cost", "energy per digit with memory and neuron updates (nJ)", "energy_total_nj"),
    ("activity", "mean firing rate while a digit is shown (Hz)", "mean_rate_hz"),
    ("activity", "active fraction (units active per digit)", "active_fraction"),
    ("activity", "Treves-Rolls sparseness (1: dense, 1/N: one unit)", "treves_rolls_sparseness"),
    ("activity", "spike contrast (population synchrony, 0-1)", "spike_contrast"),
    ("activity", "spike contrast of ISI-shuffled surrogates", "spike_contrast_surrogate"),
    ("activity", "spike time tiling coefficient (mean over pairs)", "sttc"),
    ("activity", "STTC of ISI-shuffled surrogates", "sttc_surrogate"),
]

MISSING = "–"


def lookup(metrics: dict, arm: str, key: str) -> Any:
    value: Any = metrics.get(arm, {})
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def cell(value: Any) -> str:
    """A metric as the report writes it (the test reads it back against metrics.json)."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict) and "mean" in value:
        sd = value.get("sd")
        return f"{value['mean']:.3f} ± {sd:.3f}" if sd is not None else f"{value['mean']:.3f}"
    if isinstance(value, list | tuple):
        return ", ".join(cell(v) for v in value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return MISSING
        return f"{value:.4g}"
    return str(value).replace("|", "/")


def table(metrics: dict, rows: list[tuple[str, str]]) -> list[str]:
    """Markdown table: one row per (what, metric key), one column per arm."""
    lines = ["| what | metric | " + " | ".join(ARM_TITLES[a] for a in ARMS) + " |",
             "|---|---|" + "---|" * len(ARMS)]
    for what, key in rows:
        lines.append(f"| {what} | `{key}` | "
                     + " | ".join(cell(lookup(metrics, a, key)) for a in ARMS) + " |")
    return lines


def _pct(x: float | None) -> str:
    return MISSING if x is None else f"{100 * x:.1f}%"


def report(metrics: dict, cfg: Config) -> str:
    """report.md: every metric per arm, and what each row says about the seed articles'
    claims. Every number comes from `metrics` (the same values as metrics.json)."""
    m = {a: metrics.get(a, {}) for a in ARMS}
    mlp, st, sp = m["mlp"], m["stdp"], m["mlp_spiking"]
    L = []
    L += ["# Brain vs. artificial network", "",
          f"Data: {metrics['dataset']}, {metrics['n_train']} training, {metrics['n_val']} "
          f"validation and {metrics['n_test']} test digits; every arm saw the same training "
          f"digits and was scored on the same test digits. Learning curves and robustness "
          f"score the first {metrics['n_eval']} test digits. Spread: "
          f"{metrics['spread']}. The whole run took {cell(metrics.get('total_seconds'))} s "
          f"(`total_seconds`), training {cell(metrics.get('train_seconds'))} s of it "
          f"(`train_seconds`).", ""]
    L += ["## The table", ""]
    main_rows = [(what, key) for sec, what, key in ROWS if sec in ("learning", "cost")]
    L += table(metrics, main_rows) + [""]
    L += ["## Learning on a common axis", "",
          f"Test accuracy on the first {metrics['n_eval']} test digits after the same numbers "
          "of training samples (`learning_curve` in metrics.json):", ""]
    seen = sorted({int(s) for a in ARMS for s in m[a].get("learning_curve", {})})
    L += ["| samples seen | " + " | ".join(ARM_TITLES[a] for a in ARMS) + " |",
          "|---|" + "---|" * len(ARMS)]
    for s in seen:
        L.append(f"| {s} | " + " | ".join(cell(m[a].get("learning_curve", {}).get(str(s)))
                                          for a in ARMS) + " |")
    L += ["",
          f"**Labels.** The MLP learns from a global error: each of its "
          f"{cell(mlp.get('labels_used'))} training presentations brought its label, whose "
          f"error was sent back through the layers (backpropagation) to change every weight. "
          f"The STDP network never saw a label while "
          f"learning; its {cell(st.get('labels_used'))} labels were used once, afterwards, to "
          f"name each neuron after the class it answers most. It reached "
          f"{cell(st.get('test_accuracy'))} test accuracy against the MLP's "
          f"{cell(mlp.get('test_accuracy'))}: learning without a teacher from "
          f"{cell(st.get('samples_seen'))} samples costs accuracy, and the brain-like rule is "
          f"also the slow one in wall time ({cell(st.get('train_seconds'))} s against "
          f"{cell(mlp.get('train_seconds'))} s here, because a spiking network must be "
          f"simulated in time).",
          "",
          f"**Biases.** Conversion to spikes needs a bias-free ReLU network (a bias has no "
          f"spiking counterpart), so the MLP arm has none. The same MLP with biases reached "
          f"{cell(mlp.get('biased_test_accuracy'))} test and "
          f"{cell(mlp.get('biased_val_accuracy'))} validation accuracy against "
          f"{cell(mlp.get('test_accuracy'))} and {cell(mlp.get('val_accuracy'))}: leaving the "
          f"biases out cost {cell(mlp.get('bias_cost'))} test accuracy (`mlp.bias_cost`, "
          f"positive: the biased network was better).", ""]
    L += ["## The same knowledge, carried by spikes", "",
          f"The trained MLP's weights, rescaled layer by layer (data-based normalisation, "
          f"Diehl et al. 2015; factors {cell(sp.get('normalisation_factors'))}), drive "
          f"integrate-and-fire neurons on Brian2 with Poisson input "
          f"({cfg.conversion.max_rate_hz:g} Hz for a white pixel, dt "
          f"{cfg.conversion.dt_ms:g} ms). After {cell(sp.get('presentation_ms'))} ms the "
          f"spiking network classifies {cell(sp.get('test_accuracy'))} of the test digits "
          f"correctly (MLP: {cell(mlp.get('test_accuracy'))}) and agrees with the MLP on "
          f"{cell(sp.get('agreement_with_mlp'))} of them; it comes within one point of the "
          f"MLP's accuracy after {cell(sp.get('steps_to_mlp_accuracy'))} steps "
          f"(`mlp_spiking_time.csv` has the whole curve). Brian2 and the numpy engine, fed the "
          f"same input spikes, gave identical spikes: {cell(sp.get('engines_identical'))}. "
          "Nothing was learned in the conversion: the memory is entirely in the connection "
          "strengths, which could be moved to a different kind of neuron.", ""]
    L += ["## Cost of one inference", "",
          "Counts per test digit: an MLP does one multiply-accumulate (MAC) per weight; a "
          "spiking network does one accumulate per synaptic event (a spike times its fan-out: "
          "inputs to every excitatory neuron, excitatory to its inhibitory partner, "
          "inhibitory to every other excitatory neuron; for the converted network, each "
          "layer's spikes to every unit above). Energies are Horowitz's (ISSCC 2014, 45 nm): "
          f"fp32 MAC {cfg.mac_pj:g} pJ, fp32 add {cfg.add_pj:g} pJ, a 64-bit read from an "
          f"8 kB SRAM {cfg.mem_pj:g} pJ. `energy_ops_nj` counts the synaptic operations only "
          "(the figure most SNN papers quote). `energy_total_nj` adds memory and time: one "
          "weight read per MAC or event, a read and a write of the target's state per "
          "event, a read and a write of every neuron's state at every time step of the "
          "presentation (time-stepped simulation), one MAC per step for a leaky neuron's "
          "decay, and a write and a read of every MLP activation. The SRAM figure is "
          "optimistic (the weights here fit only in a larger memory; DRAM costs "
          "~1.3-2.6 nJ per access), so the memory terms are lower bounds.", "",
          f"Synaptic operations only, the spiking networks look "
          f"{_ratio(st.get('energy_ops_nj'), mlp.get('energy_ops_nj'))} (STDP) and "
          f"{_ratio(sp.get('energy_ops_nj'), mlp.get('energy_ops_nj'))} (converted) as "
          f"expensive as the MLP; with memory and neuron updates counted, "
          f"{_ratio(st.get('energy_total_nj'), mlp.get('energy_total_nj'))} and "
          f"{_ratio(sp.get('energy_total_nj'), mlp.get('energy_total_nj'))}. Stopping the "
          f"converted network's presentation as soon as it is within a point of the MLP "
          f"({cell(sp.get('steps_to_mlp_accuracy'))} steps) brings it to "
          f"{cell(sp.get('energy_ops_to_mlp_accuracy_nj'))} nJ of synaptic operations and "
          f"{cell(sp.get('energy_total_to_mlp_accuracy_nj'))} nJ in all "
          f"(`energy_*_to_mlp_accuracy_nj`). Rate-coded "
          "networks pay for every time step of the presentation, and the state of every "
          "neuron must be read and written at each: as several papers found, once memory is "
          "counted the spiking versions lose on conventional hardware. Their case rests on "
          "event-driven hardware whose neurons cost nothing while no spike arrives.", ""]
    L += ["## Activity: rates, sparseness, synchrony", ""]
    L += table(metrics, [(what, key) for sec, what, key in ROWS if sec == "activity"]) + [""]
    L += [f"Sparseness: the STDP layer's winner-take-all leaves "
          f"{_pct(st.get('active_fraction'))} of its neurons active on a digit, against "
          f"{_pct(mlp.get('active_fraction'))} of the MLP's ReLU units and "
          f"{_pct(sp.get('active_fraction'))} of the converted network's hidden neurons: "
          f"competition, not the spikes themselves, makes a code sparse. The converted "
          f"network fires at {cell(sp.get('mean_rate_hz'))} Hz on average (the STDP layer at "
          f"{cell(st.get('mean_rate_hz'))} Hz): rate coding of fast analog values needs high "
          "rates.", "",
          "Synchrony is measured with Elephant on Neo spike trains of the active neurons "
          f"(silent ones dropped; at most {cfg.sync_neurons} drawn at random): spike contrast "
          f"(Ciba et al. 2018) and the spike time tiling coefficient (Cutts & Eglen 2014, "
          f"window {cfg.sttc_dt_ms:g} ms), each beside the mean of {cfg.n_surrogates} "
          f"surrogate data sets whose inter-spike intervals were shuffled "
          f"(`elephant.spike_train_surrogates.shuffle_isis`: same rates, no relation between "
          f"neurons). STDP layer: spike contrast {cell(st.get('spike_contrast'))} vs "
          f"{cell(st.get('spike_contrast_surrogate'))}, STTC {cell(st.get('sttc'))} vs "
          f"{cell(st.get('sttc_surrogate'))}; converted network: "
          f"{cell(sp.get('spike_contrast'))} vs {cell(sp.get('spike_contrast_surrogate'))}, "
          f"STTC {cell(sp.get('sttc'))} vs {cell(sp.get('sttc_surrogate'))}. "
          f"{_sync_sentence(st, sp)} The MLP has no spikes and no time: its units "
          "compute one value each, all at once, layer after layer.", ""]
    L += ["## Memory in connection strengths", "",
          "The figure draws the MLP's first-layer weights beside the STDP network's receptive "
          "fields (ON minus OFF input weight of each pixel). The STDP neurons store whole "
          "prototypes of digits, one way of writing one digit each, learned by competition; "
          "the MLP's hidden units store distributed stroke and contrast detectors, useful "
          "only together with the layer above. Both keep everything they learned in their "
          "weights: the converted network shows it, since it works from the MLP's weights "
          "alone.", ""]
    L += ["## Robustness, measured", ""]
    rob_rows = ([(f"accuracy, {lesion.percent_key(f)[:-3]}% of synapses removed",
                  f"lesion_accuracy.{lesion.percent_key(f)}") for f in cfg.lesion_fractions]
                + [(f"accuracy, pixel noise sd {sd:g}", f"noise_accuracy.{lesion.percent_key(sd)}")
                   for sd in cfg.noise_sds])
    L += table(metrics, rob_rows) + [""]
    L += [f"Mean ± sample sd over {cfg.repeats} random draws (of which synapses are removed, "
          f"or of the noise) on the first {metrics['n_eval']} test digits. Every learned "
          "weight matrix loses the same share of its synapses (the MLP's two layers, the "
          "STDP network's input weights, the converted network's two layers); the fixed "
          "lateral inhibition of the STDP network is left intact, and nothing rescales the "
          "surviving weights (the STDP network's training-time weight normalisation is "
          "switched off, or it would quietly undo the lesion). "
          + _robust_sentence(cfg, mlp, st, sp), ""]
    L += ["## Every other metric", "",
          "The rest of metrics.json, per arm (– where an arm has no such value):", ""]
    L += table(metrics, [(key.replace("_", " "), key) for key in other_keys(metrics)]) + [""]
    L += ["## Reading the claims", "",
          "- *Structure*: a layered feed-forward network with a readout (MLP) against one "
          "layer of competing excitatory neurons with inhibitory partners (STDP).",
          "- *Learning rule*: global error and labels against local spike timing without "
          "labels (`locality` row); the local rule learns with no teacher but reaches a lower "
          "accuracy and needs a labelled readout to be scored at all.",
          "- *Memory in connection strengths*: both, literally; the conversion moves it "
          "between neuron types.",
          "- *Parallel, synchronous processing*: the spiking networks integrate evidence "
          f"over time ({cell(st.get('presentation_ms'))} ms per digit for STDP; the "
          f"converted network needed {cell(sp.get('steps_to_mlp_accuracy'))} ms to match "
          "the MLP); the synchrony rows say how much their spikes align beyond chance.",
          "- *Robustness*: see the lesion and noise rows; graceful degradation is measured "
          "here, not assumed.", ""]
    return "\n".join(L)


def other_keys(metrics: dict) -> list[str]:
    """Metric names of the arms that no other table of the report shows."""
    shown = {key for _, _, key in ROWS} | {"learning_curve", "lesion_accuracy",
                                           "noise_accuracy"}
    keys = {k for a in ARMS for k in metrics.get(a, {})}
    return sorted(keys - shown)


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or not b:
        return MISSING
    r = a / b
    return f"{r:.2g}x" if r >= 1 else f"1/{1 / r:.2g}x"


def _sync_sentence(st: dict, sp: dict) -> str:
    parts = []
    for name, arm in (("STDP", st), ("converted", sp)):
        a, b = arm.get("sttc"), arm.get("sttc_surrogate")
        if a is not None and b is not None:
            parts.append(f"{name} {a - b:+.3f}")
    if not parts:
        return ""
    return ("STTC minus its surrogate: " + ", ".join(parts) + ". Shuffling each neuron's "
            "intervals also unlocks its spikes from the digits shown, so an excess here is "
            "co-activation by the same digits at least as much as fine spike timing; a "
            "surrogate that keeps the stimulus locking (spike dithering) would separate the two.")


def _robust_sentence(cfg: Config, mlp: dict, st: dict, sp: dict) -> str:
    f = 0.3 if 0.3 in cfg.lesion_fractions else max(cfg.lesion_fractions)
    key = lesion.percent_key(f)
    vals = {a: lookup({"x": arm}, "x", f"lesion_accuracy.{key}.mean")
            for a, arm in (("MLP", mlp), ("STDP", st), ("converted", sp))}
    base = {a: lookup({"x": arm}, "x", "lesion_accuracy.0pct.mean")
            for a, arm in (("MLP", mlp), ("STDP", st), ("converted", sp))}
    drops = [f"{a} {100 * (base[a] - v):+.1f} points".replace("+", "−", 1)
             if base[a] - v >= 0 else f"{a} +{100 * (v - base[a]):.1f} points"
             for a, v in vals.items() if v is not None and base[a] is not None]
    if not drops:
        return ""
    return (f"With {100 * f:.0f}% of the synapses removed, accuracy fell by: "
            + ", ".join(d.replace("−", "", 1) for d in drops)
            + ". One published MNIST comparison reported -3.9 points for a spiking network "
              "against -10.1 for an ANN at 30%; there is no published Diehl & Cook lesion "
              "curve to hold this against.")


# --- the figure --------------------------------------------------------------------------------


def figures(result: Result) -> dict:
    return {"brain_vs_ann": figure(result)}


def figure(result: Result):
    a, m, c = result.arrays, result.metrics, result.curves
    fig, axes = plots.figure(4, 3, size=(5.0, 3.9))
    shape = tuple(int(v) for v in a["feature_shape"])
    labels = [str(v) for v in a["raster_labels"]]

    # (a) raster of the STDP network over the first test digits
    ax = axes[0, 0]
    if "stdp_exc" in result.spikes:
        s_in, s_exc = result.spikes["stdp_input"], result.spikes["stdp_exc"]
        n_in = s_in.n_neurons
        rank = a["stdp_class_rank"]  # excitatory neurons drawn grouped by assigned class
        plots.raster(ax, s_in.i, s_in.t, color="0.65", markersize=1.2, t_stop=s_in.t_stop)
        plots.raster(ax, rank[s_exc.i] + n_in + 4, s_exc.t, color=plots.COLORS["stdp"],
                     markersize=3, t_stop=s_exc.t_stop,
                     ylabel="input neurons (grey) | excitatory, by class (red)")
        period = float(a["stdp_period_s"])
        for k, lab in enumerate(labels):
            ax.axvline(k * period, color="k", lw=0.5, alpha=0.4)
            ax.text((k + 0.35) * period, n_in + s_exc.n_neurons + 8, lab, ha="center")
        ax.set_ylim(-1, n_in + s_exc.n_neurons + 16)
    else:
        ax.text(0.5, 0.5, "the STDP arm did not finish", ha="center", transform=ax.transAxes)
    ax.set_title("(a) STDP network: spikes for test digits")

    # (b) the MLP's loss curve
    ax = axes[0, 1]
    if "mlp_epochs" in c:
        plots.loss_curve(ax, c["mlp_epochs"], ylabel="cross-entropy")
    ax.set_title("(b) MLP: loss during backprop training")

    # (c) accuracy vs samples seen, every arm
    ax = axes[0, 2]
    for arm in ARMS:
        t = c.get(f"{arm}_learning")
        if t is not None and len(t["samples_seen"]):
            plots.curve(ax, t["samples_seen"], t["test_accuracy"], label=ARM_TITLES[arm],
                        color=plots.COLORS[arm], marker="o", markersize=3)
    ax.set_xscale("log")
    ax.set_ylim(0, 1)
    ax.set_xlabel("training samples seen (log)")
    ax.set_ylabel(f"test accuracy (first {m.get('n_eval')} digits)")
    ax.set_title("(c) learning on a common axis")

    # (d) accuracy vs presentation time of the converted network
    ax = axes[0, 3]
    t = c.get("mlp_spiking_time")
    if t is not None:
        plots.curve(ax, t["time_ms"], t["accuracy"], label="converted (spikes)",
                    color=plots.COLORS["mlp_spiking"], xlabel="presentation time (ms)",
                    ylabel="test accuracy")
        if "mlp" in m:
            ax.axhline(m["mlp"]["test_accuracy"], color=plots.COLORS["mlp"], ls="--",
                       label=f"MLP {m['mlp']['test_accuracy']:.3f}")
            ax.legend(frameon=False, loc="lower right")
        ax.set_ylim(0, 1)
    ax.set_title("(d) MLP converted to spikes: accuracy vs time")

    # (e, f) memory in connection strengths
    if "mlp_W1" in a:
        W1 = a["mlp_W1"]
        plots.receptive_fields(axes[1, 0], W1[:, :min(100, W1.shape[1])], shape,
                               cmap="RdBu_r", signed=True,
                               title="(e) MLP first-layer weights\n(red +, blue -)")
    else:
        axes[1, 0].set_axis_off()
    if "stdp_receptive_fields" in a:
        plots.receptive_fields(axes[1, 1], a["stdp_receptive_fields"], shape, cmap="RdBu_r",
                               signed=True, title="(f) STDP receptive fields\n"
                                                  "(ON - OFF weight: red ink, blue paper)")
    else:
        axes[1, 1].set_axis_off()

    # (g, h) robustness
    for ax, kind, xlabel, title in (
            (axes[1, 2], "lesion", "fraction of synapses removed", "(g) removing synapses"),
            (axes[1, 3], "noise", "pixel noise sd (pixels in [0, 1])", "(h) noisy input")):
        col = "fraction_removed" if kind == "lesion" else "noise_sd"
        for arm in ARMS:
            t = c.get(f"{arm}_{kind}")
            if t is not None:
                plots.mean_band(ax, t[col], t["accuracy_mean"], t["accuracy_sd"],
                                label=ARM_TITLES[arm], color=plots.COLORS[arm], marker="o",
                                markersize=3, xlabel=xlabel, ylabel="test accuracy")
        ax.axhline(0.1, color="k", lw=0.5, ls=":")
        ax.set_ylim(0, 1)
        ax.set_title(f"{title}: mean ± sd of {m.get('repeats')} draws")

    # (i, j) hidden activations beside excitatory spike counts for the same digits
    if "mlp_hidden_raster" in a:
        plots.activity_map(axes[2, 0], a["mlp_hidden_raster"], column_labels=labels,
                           xlabel="test digit (label)",
                           ylabel="hidden unit, grouped by preferred class",
                           colorbar_label="ReLU activation", cmap="magma",
                           boundaries=a["mlp_hidden_class_starts"], group_labels=CLASS_NAMES,
                           title="(i) MLP hidden activations")
    if "stdp_counts_raster" in a:
        plots.activity_map(axes[2, 1], a["stdp_counts_raster"], column_labels=labels,
                           xlabel="test digit (label)",
                           ylabel="excitatory neuron, grouped by assigned class",
                           colorbar_label="spikes", cmap="magma",
                           boundaries=a["stdp_class_starts"], group_labels=CLASS_NAMES,
                           title="(j) STDP excitatory spike counts")
    else:
        axes[2, 1].set_axis_off()

    # (k) energy per inference, (l) sparseness and synchrony
    present = [arm for arm in ARMS if arm in m]
    names = [ARM_TITLES[arm].replace(" ", "\n", 1) for arm in present]
    plots.grouped_bars(axes[2, 2], names, {
        "synaptic ops only": [m[arm].get("energy_ops_nj", np.nan) for arm in present],
        "+ memory, neuron updates": [m[arm].get("energy_total_nj", np.nan) for arm in present]},
        colors={"synaptic ops only": "0.8", "+ memory, neuron updates": "0.4"},
        ylabel="energy per digit (nJ, log)", logy=True)
    axes[2, 2].legend(frameon=False, fontsize=8, loc="upper left")
    axes[2, 2].set_title("(k) cost of one inference (Horowitz 2014)")
    groups = {"active_fraction": "active\nfraction", "treves_rolls_sparseness":
              "Treves-Rolls\nsparseness", "sttc": "STTC", "spike_contrast": "spike\ncontrast"}
    plots.grouped_bars(axes[2, 3], list(groups.values()), {
        ARM_TITLES[arm]: [m[arm].get(k, np.nan) for k in groups] for arm in present},
        colors={ARM_TITLES[arm]: plots.COLORS[arm] for arm in present}, ylabel="value",
        annotate="{:.2f}")
    width, label = 0.8 / max(len(present), 1), "ISI-shuffled surrogate"
    for g, key in enumerate(groups):  # the surrogates' value across each spiking arm's bar
        for k, arm in enumerate(present):
            sur = m[arm].get(f"{key}_surrogate")
            if sur is not None:
                x = g + (k - (len(present) - 1) / 2) * width
                axes[2, 3].plot([x - width / 2, x + width / 2], [sur, sur], "k-", lw=2,
                                label=label)
                label = None
    axes[2, 3].legend(frameon=False, fontsize=7)
    axes[2, 3].set_title("(l) sparseness and synchrony")
    fig.suptitle("Brain vs. artificial network on the same digits: MLP (backprop), "
                 "STDP spiking network, and the MLP converted to spikes", fontsize=13)
    return fig
