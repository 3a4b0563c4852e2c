"""The arms between backprop and STDP (issue 17): one biological constraint more per step.

- ``fa`` / ``dfa``: the mlp arm's network and training (same width, epochs, Adam, the same
  initial forward weights: ``ctx.rng_for("mlp")``), with the output error sent back through
  fixed random matrices instead of the transposed weights (Lillicrap et al. 2016; Nøkland
  2016): no weight transport. The angle between the rule's update and the true gradient is
  measured on the training digits after every epoch (`neurosim.ann.feedback`).
- ``surrogate``: leaky integrate-and-fire neurons in discrete time trained by backpropagation
  through time with a fast-sigmoid surrogate derivative (`neurosim.snn.surrogate`): spikes.
- ``eprop``: the same network trained online with eligibility traces and a learning signal
  broadcast through random feedback (`neurosim.snn.eprop`): local in time, no weight
  transport.

The spiking arms use the STDP arm's input and size: ``input_coding`` (ON/OFF cells by
default), ``snn.max_rate_hz``, ``snn.present_ms`` at ``snn.dt_ms``, and ``snn.n_exc`` hidden
neurons, so the step from e-prop to STDP changes the rule and the supervision, not the
network's input or size. Their readout is snn.surrogate's: a layer of non-spiking leaky
integrators, classified by the time-averaged readout membrane (surrogate trains on its
cross-entropy; e-prop on every step's, the online learning signal it needs).

Protocol (as the mlp arm, issue 16): the same split and test digits; at every label budget
the same labelled digits (`budgets.label_budget_table`), each arm trained to convergence:
FA/DFA with the MLP's early stopping on validation loss, the spiking arms for their cosine
schedule (with at least ``spiking_min_steps`` Adam steps), keeping the weights of the best of
``spiking_val_checks`` validation scorings. The spiking arms' full-data run is their
``kall`` budget (one training, not two).
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from neurosim import data
from neurosim.ann import MLP, evaluate, train
from neurosim.ann.feedback import alignment_angles
from neurosim.experiments.brain_vs_ann.budgets import BudgetTrainer
from neurosim.experiments.brain_vs_ann.config import LOSS, N_CLASSES, Config
from neurosim.experiments.brain_vs_ann.measures import (
    accuracy,
    energy,
    nonzero_macs,
    population_activity,
)
from neurosim.experiments.common import progress_to
from neurosim.runner.contract import Context
from neurosim.snn import activity, eprop, surrogate

FEEDBACK_ARMS = ("fa", "dfa")
SPIKING_ARMS = ("surrogate", "eprop")
GRADIENT_ARMS = (*FEEDBACK_ARMS, *SPIKING_ARMS)

RULES = {
    "fa": ("feedback alignment (Lillicrap et al. 2016): backprop's error sent down through a "
           "fixed random matrix B instead of W^T; Adam on cross-entropy",
           "no weight transport; still a global error, layer by layer, in two phases"),
    "dfa": ("direct feedback alignment (Nøkland 2016): the output error sent straight to the "
            "hidden layer through a fixed random matrix; Adam on cross-entropy",
            "no weight transport and no layer-by-layer backward pass; a global error"),
    "surrogate": ("backpropagation through time with a fast-sigmoid surrogate derivative "
                  "(Neftci, Mostafa & Zenke 2019); Adam on cross-entropy of the readout",
                  "spikes, but global in space and in time: the error of every step is "
                  "sent back through the whole presentation"),
    "eprop": ("e-prop (Bellec et al. 2020): eligibility traces x a learning signal "
              "broadcast from the output through random feedback; Adam",
              "local in time (online: traces forward, no backward pass through time) and "
              "no weight transport; still supervised by a global error"),
}


def mlp_sizes(cfg: Config, ds: data.Dataset) -> list[int]:
    return [ds.X_train.shape[1], cfg.mlp_hidden or cfg.snn.n_exc, N_CLASSES]


def spiking_params(cfg: Config, arm: str) -> surrogate.SurrogateParams:
    """The arm's parameters with the STDP arm's size, presentation and coding (`Config.DERIVED`)."""
    base = cfg.surrogate if arm == "surrogate" else cfg.eprop
    return dataclasses.replace(base, n_hidden=cfg.snn.n_exc, present_ms=cfg.snn.present_ms,
                               dt_ms=cfg.snn.dt_ms, max_rate_hz=cfg.snn.max_rate_hz,
                               input_coding=cfg.input_coding)


# --- fa / dfa -------------------------------------------------------------------------------


def feedback_arm(cfg: Config, ctx: Context, ds: data.Dataset, rule: str):
    """Train the mlp arm's network with feedback `rule` (``fa`` or ``dfa``) for ``mlp_epochs``.

    Returns
    -------
    (metrics, curves, status)
        ``curves[f"{rule}_epochs"]``: per epoch (0 = before training) the training loss,
        validation and test accuracy and the alignment angle (degrees) of the rule's update
        of the hidden layer's weights with the true gradient, on all training digits.
    """
    rng = ctx.rng_for("mlp")  # the mlp arm's stream: the same initial forward weights
    sizes = mlp_sizes(cfg, ds)
    net = MLP(sizes, "relu", "softmax", bias=False, init="he", rng=rng, feedback=rule)
    table = f"{rule}_epochs"
    cols: dict[str, list[float]] = {"epoch": [0], "loss": [np.nan], "val_accuracy": [np.nan],
                                    "test_accuracy": [np.nan],
                                    "alignment_angle_deg": [alignment_angles(
                                        net, ds.X_train, ds.y_train, LOSS)[0]]}
    seconds = [0.0]

    def on_epoch(epoch: int, history) -> None:
        t = time.perf_counter()  # the angle and scores are measurements, not training
        cols["epoch"].append(epoch)
        cols["loss"].append(history.epochs["loss"][-1])
        cols["val_accuracy"].append(accuracy(net.predict(ds.X_val), ds.y_val)
                                    if ds.X_val is not None else np.nan)
        cols["test_accuracy"].append(accuracy(net.predict(ds.X_test), ds.y_test))
        cols["alignment_angle_deg"].append(
            alignment_angles(net, ds.X_train, ds.y_train, LOSS)[0])
        ctx.partial.add_curves(table, cols)
        seconds[0] += time.perf_counter() - t

    t0 = time.perf_counter()
    history = train(net, ds.X_train, ds.y_train, loss=LOSS, optimizer="adam", lr=cfg.mlp_lr,
                    epochs=cfg.mlp_epochs, batch_size=cfg.mlp_batch_size, rng=rng,
                    on_epoch=on_epoch)
    train_seconds = time.perf_counter() - t0 - seconds[0]
    if history.status != "COMPLETED":
        ctx.partial.warnings.append(f"{rule}: {history.diverged}")
        return None, {table: cols}, history.status
    weights = [np.array(W, dtype=np.float64) for W in net.weights]
    n_weights = int(sum(W.size for W in weights))
    hidden = sizes[1]
    rule_text, locality = RULES[rule]
    angles = cols["alignment_angle_deg"]
    nz = nonzero_macs(weights, ds.X_test)
    metrics = {
        "test_accuracy": accuracy(net.predict(ds.X_test), ds.y_test),
        "train_accuracy": accuracy(net.predict(ds.X_train), ds.y_train),
        **({"val_accuracy": accuracy(net.predict(ds.X_val), ds.y_val)}
           if ds.X_val is not None else {}),
        "hidden_units": hidden,
        "epochs": cfg.mlp_epochs,
        "samples_seen": cfg.mlp_epochs * len(ds.X_train),
        "labels_used": cfg.mlp_epochs * len(ds.X_train),
        "labels_drive_learning": True,
        "gradient_steps": cfg.mlp_epochs * math.ceil(len(ds.X_train) / cfg.mlp_batch_size),
        "train_seconds": round(train_seconds, 3),
        "trainable_parameters": int(net.n_params),
        "learning_rule": rule_text,
        "locality": locality,
        "alignment_angle_initial_deg": float(angles[0]),
        "alignment_angle_final_deg": float(angles[-1]),
        "alignment_angle_min_deg": float(np.min(angles)),
        "synaptic_ops_per_inference": n_weights,
        "neuron_updates_per_inference": hidden + N_CLASSES,
        **energy(cfg, macs=n_weights, units=hidden + N_CLASSES),
        "macs_nonzero_per_inference": nz,
        **{f"{k}_nonzero": v for k, v in energy(cfg, macs=nz, units=hidden + N_CLASSES).items()},
        **population_activity(net.forward_layers(ds.X_test)[1]),
    }
    return metrics, {table: cols}, "COMPLETED"


def feedback_budget_trainer(cfg: Config, ds: data.Dataset, rule: str,
                            rng: np.random.Generator) -> BudgetTrainer:
    """The MLP's label-budget training (budgets.py: same initial forward weights, Adam, early
    stopping on validation loss) with feedback `rule`; `rng` shuffles the mini-batches."""
    sizes = mlp_sizes(cfg, ds)

    def run(idx: np.ndarray, k: int, init_seed: int) -> tuple[float | None, int]:
        net = MLP(sizes, "relu", "softmax", bias=False, init="he",
                  rng=np.random.default_rng(init_seed), feedback=rule)
        batch = min(cfg.mlp_batch_size, len(idx))
        history = train(net, ds.X_train[idx], ds.y_train[idx], loss=LOSS, optimizer="adam",
                        lr=cfg.mlp_lr, epochs=cfg.budget_max_epochs, batch_size=batch, rng=rng,
                        X_val=ds.X_val, y_val=ds.y_val, patience=cfg.budget_patience)
        steps = len(history.epochs["loss"]) * math.ceil(len(idx) / batch)
        if history.status != "COMPLETED":
            return None, steps
        return float(evaluate(net, ds.X_test, ds.y_test, LOSS, ("accuracy",))["accuracy"]), steps

    return run


# --- surrogate / eprop ------------------------------------------------------------------------


@dataclasses.dataclass
class SpikingRun:
    """One training of a spiking arm: the net (best validation checkpoint), what it cost and
    its per-epoch curve."""

    net: surrogate.SpikingNet
    status: str
    seconds: float
    steps: int
    epochs: int
    best_epoch: int
    val_accuracy: float | None
    curve: dict[str, list[float]]


def train_spiking(cfg: Config, arm: str, X: np.ndarray, y: np.ndarray, ds: data.Dataset,
                  rng: np.random.Generator, init_seed: int, min_steps: int,
                  ctx: Context | None = None) -> SpikingRun:
    """Train the `arm` network on (X, y) for its cosine schedule, stretched to at least
    `min_steps` Adam steps (at most ``budget_max_epochs``), scoring the validation digits
    ``spiking_val_checks`` times (the same spike draw each time) and keeping the best.

    `init_seed` draws the initial weights (and e-prop's random feedback), `rng` the batches
    and the input spikes. With `ctx`, the epochs are a progress phase of their own: at 28x28
    one training takes ~10 minutes, one item of the label-budget phase around it."""
    base = spiking_params(cfg, arm)
    per_epoch = math.ceil(len(X) / base.batch_size)
    epochs = min(max(base.epochs, math.ceil(min_steps / per_epoch)),
                 max(cfg.budget_max_epochs, base.epochs))
    p = dataclasses.replace(base, epochs=epochs)
    init = np.random.default_rng(init_seed)
    n_in = surrogate.input_width(X.shape[1], p)
    net = surrogate.SpikingNet(n_in, N_CLASSES, p, init)
    gradient = (surrogate.bptt_gradient if arm == "surrogate"
                else eprop.make_gradient(net, init))
    every = max(1, epochs // cfg.spiking_val_checks)
    val_seed = int(init.integers(2**63 - 1))
    best = {"acc": -1.0, "flat": net.flat.copy(), "epoch": 0}
    curve: dict[str, list[float]] = {"epoch": [], "loss": [], "val_accuracy": []}
    spent = [0.0]
    advance = (None if ctx is None else
               progress_to(ctx, epochs, f"{arm} training, {len(X)} labelled digits (epochs)"))

    def on_epoch(epoch: int, history: surrogate.History) -> None:
        if advance is not None:
            advance(epoch)
        curve["epoch"].append(epoch)
        curve["loss"].append(history.loss[-1])
        acc = np.nan
        if ds.X_val is not None and (epoch % every == 0 or epoch == epochs):
            t = time.perf_counter()
            acc = accuracy(net.predict(ds.X_val, np.random.default_rng(val_seed)), ds.y_val)
            spent[0] += time.perf_counter() - t
            if acc > best["acc"]:
                best.update(acc=acc, flat=net.flat.copy(), epoch=epoch)
        curve["val_accuracy"].append(acc)

    t0 = time.perf_counter()
    history = surrogate.train(net, X, y, rng, gradient=gradient, on_epoch=on_epoch)
    seconds = time.perf_counter() - t0 - spent[0]
    if ds.X_val is not None and best["acc"] >= 0:
        net.flat[...] = best["flat"]
    return SpikingRun(net, history.status, seconds, len(history.loss) * per_epoch, epochs,
                      int(best["epoch"]) if best["acc"] >= 0 else len(history.loss),
                      float(best["acc"]) if best["acc"] >= 0 else None, curve)


def spiking_test(net: surrogate.SpikingNet, X: np.ndarray, y: np.ndarray,
                 rng: np.random.Generator, batch: int = 128) -> dict:
    """Accuracy on (X, y) and per-digit counts: input spikes, hidden spikes (n, n_hidden)."""
    pred, in_spikes, hidden = [], [], []
    for start in range(0, len(X), batch):
        x = surrogate.encode(X[start:start + batch], net.params, rng)
        trace = net.run(x)
        pred.append(surrogate.predict_scores(trace, net.b_out).argmax(axis=1))
        in_spikes.append(x.sum(axis=(0, 2), dtype=np.float64))
        hidden.append(trace.z.sum(axis=0, dtype=np.float64))
    return {"accuracy": accuracy(np.concatenate(pred), y),
            "input_spikes": np.concatenate(in_spikes), "hidden_counts": np.concatenate(hidden)}


class SpikingArm:
    """A spiking arm's budget trainer (`BudgetTrainer`) that keeps its full-data training
    (k = all) for the arm's own metrics (`metrics`)."""

    def __init__(self, cfg: Config, ctx: Context, ds: data.Dataset, arm: str):
        self.cfg, self.ctx, self.ds, self.arm = cfg, ctx, ds, arm
        self.rng = ctx.rng_for(arm)
        self.full: SpikingRun | None = None
        self.full_test: dict | None = None

    def __call__(self, idx: np.ndarray, k: int, init_seed: int) -> tuple[float | None, int]:
        ds, cfg = self.ds, self.cfg
        run = train_spiking(cfg, self.arm, ds.X_train[idx], ds.y_train[idx], ds, self.rng,
                            init_seed, cfg.spiking_min_steps if k else 1, self.ctx)
        if run.status != "COMPLETED":
            if k == 0:
                self.full = run
            return None, run.steps
        # the same test spike draw at every budget: differences between budgets are the net's
        test = spiking_test(run.net, ds.X_test, ds.y_test, np.random.default_rng(init_seed))
        if k == 0:
            self.full, self.full_test = run, test
        return test["accuracy"], run.steps

    def train_full(self, init_seed: int) -> SpikingRun:
        """The full-data run, when the label budgets did not include all digits."""
        if self.full is None:
            n = len(self.ds.X_train)
            self(np.arange(n), 0, init_seed)
        assert self.full is not None
        return self.full

    def metrics(self) -> tuple[dict | None, dict, str]:
        """(metrics, curves, status) of the full-data run."""
        run, cfg, ds = self.full, self.cfg, self.ds
        assert run is not None, "train_full first"
        table = f"{self.arm}_epochs"
        if run.status != "COMPLETED":
            self.ctx.partial.warnings.append(f"{self.arm}: training diverged (a loss or a "
                                             "weight stopped being finite)")
            return None, {table: run.curve}, run.status
        p = run.net.params
        test = self.full_test
        assert test is not None
        H = p.n_hidden
        n_in = run.net.W_in.shape[0]
        # every input spike reaches every hidden neuron, every hidden spike every readout unit
        events = float(np.mean(test["input_spikes"] * H + test["hidden_counts"].sum(1)
                               * N_CLASSES))
        updates = (H + N_CLASSES) * p.n_steps  # LIF and leaky readout, every step
        window_s = p.present_ms * 1e-3
        rule_text, locality = RULES[self.arm]
        metrics = {
            "test_accuracy": test["accuracy"],
            **({"val_accuracy": run.val_accuracy} if run.val_accuracy is not None else {}),
            "hidden_units": H,
            "input_cells": n_in,
            "input_coding": p.input_coding,
            "readout": ("time-averaged membrane of leaky non-spiking readout units; trained "
                        + ("on its cross-entropy" if p.readout == "mean"
                           else "on every step's cross-entropy (the online signal)")),
            "presentation_ms": p.present_ms,
            "epochs": run.epochs,
            "best_epoch": run.best_epoch,
            "samples_seen": run.epochs * len(ds.X_train),
            "labels_used": run.epochs * len(ds.X_train),
            "labels_drive_learning": True,
            "gradient_steps": run.steps,
            "train_seconds": round(run.seconds, 3),
            "trainable_parameters": int(run.net.flat.size),
            "learning_rule": rule_text,
            "locality": locality,
            "synaptic_ops_per_inference": events,
            "neuron_updates_per_inference": updates,
            **energy(cfg, events=events, updates=updates, leaky=True),
            "mean_rate_hz": activity.mean_rate_hz(test["hidden_counts"], window_s),
            **population_activity(test["hidden_counts"]),
        }
        if self.arm == "eprop":
            metrics["feedback"] = p.feedback
        return metrics, {table: run.curve}, "COMPLETED"


def budget_trainers(cfg: Config, ctx: Context, ds: data.Dataset
                    ) -> tuple[dict[str, tuple[BudgetTrainer, str]], dict[str, SpikingArm]]:
    """Every gradient arm of ``cfg.arms`` as a label-budget trainer, with what it was given;
    and the spiking arms' objects (their full-data run becomes their arm's metrics)."""
    trainers: dict[str, tuple[BudgetTrainer, str]] = {}
    spiking: dict[str, SpikingArm] = {}
    for arm in (a for a in GRADIENT_ARMS if a in cfg.arms):
        if arm in FEEDBACK_ARMS:
            trainers[arm] = (feedback_budget_trainer(cfg, ds, arm, ctx.rng_for(f"{arm}_budget")),
                             "as the MLP (same initial forward weights, early stopping)")
        else:
            spiking[arm] = SpikingArm(cfg, ctx, ds, arm)
            trainers[arm] = (spiking[arm], "the budget's labelled digits as Poisson spikes; "
                             f"at least {cfg.spiking_min_steps} Adam steps, the best of "
                             f"{cfg.spiking_val_checks} validation scorings kept")
    return trainers, spiking
