"""Arm 1: the bias-free MLP trained by backpropagation, scored at the common checkpoints, lesioned
and noised."""

from __future__ import annotations

import time

import numpy as np

from neurosim import data, lesion
from neurosim.ann import MLP, evaluate, make_optimizer, train
from neurosim.experiments.brain_vs_ann.config import (
    LOSS,
    N_CLASSES,
    N_RASTER,
    Config,
)
from neurosim.experiments.brain_vs_ann.measures import (
    accuracy,
    curve_metrics,
    energy,
    mlp_logits,
    nonzero_macs,
    order_by_class,
    population_activity,
    retention,
    robustness,
    sweep_digits,
    sweep_summary,
)
from neurosim.runner.contract import Context


def train_mlp(net: MLP, ds: data.Dataset, cfg: Config, rng: np.random.Generator,
              checkpoints: list[int], on_checkpoint, ctx: Context, table: str):
    """Adam on mini-batches, epoch after epoch, stopping at every checkpoint (samples seen) to
    let `on_checkpoint(seen)` score the network; one optimiser keeps its state throughout.

    Returns (per-epoch curve table, status). A KeyboardInterrupt passes on to the runner,
    which keeps the curves already in ``ctx.partial``; a divergence adds what ran away to
    ``ctx.partial.warnings``.
    """
    opt = make_optimizer("adam", cfg.mlp_lr)
    n = len(ds.X_train)
    X, y = net.as_input(ds.X_train), ds.y_train
    cols: dict[str, list[float]] = {k: [] for k in (
        "epoch", "loss", "accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy")}
    sets = {"val": (ds.X_val, ds.y_val), "test": (ds.X_test, ds.y_test)}
    for epoch in ctx.progress(range(cfg.mlp_epochs), total=cfg.mlp_epochs, desc=table,
                              done_when="finished"):
        perm = rng.permutation(n)
        cuts = [c - epoch * n for c in checkpoints if epoch * n < c < (epoch + 1) * n]
        bounds = [0, *cuts, n]
        loss_sum = acc_sum = 0.0
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            idx = perm[a:b]
            h = train(net, X[idx], y[idx], loss=LOSS, optimizer=opt, epochs=1,
                      batch_size=cfg.mlp_batch_size, rng=rng, shuffle=False,
                      metrics=("accuracy",))
            if h.status != "COMPLETED":
                ctx.partial.warnings.append(f"{table}: {h.diverged}")
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

    # robustness: the same trained weights, damaged; accuracy on the sweeps' digits
    n_sweep = sweep_digits(cfg, len(X_eval))
    X_sw, y_sw = X_eval[:n_sweep], y_eval[:n_sweep]
    lesions = robustness(cfg.lesion_fractions, cfg.repeats, lambda f, r: accuracy(
        mlp_logits(lesion.lesion(weights, f, rng), X_sw).argmax(1), y_sw))
    noise = robustness(cfg.noise_sds, cfg.repeats, lambda sd, r: accuracy(
        mlp_logits(weights, lesion.noisy(X_sw, sd, rng)).argmax(1), y_sw))
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
        # the same inference when zero inputs cost nothing (about half the pixels are 0 and
        # many ReLU units are silent): the MLP's cost with its own sparsity counted
        "macs_nonzero_per_inference": (nz := nonzero_macs(weights, ds.X_test)),
        **{f"{k}_nonzero": v for k, v in energy(cfg, macs=nz, units=hidden + N_CLASSES).items()},
        **population_activity(hidden_test),
        "learning_curve": curve_metrics(learning),
        "lesion_accuracy": lesion_metrics,
        "lesion_retention": retention(lesion_table, "fraction_removed"),
        "noise_accuracy": noise_metrics,
        "noise_retention": retention(noise_table, "noise_sd"),
    }
    raster = ds.X_test[:N_RASTER]
    order, starts = order_by_class(net.forward_layers(ds.X_train)[1], ds.y_train)
    arrays = {"mlp_W1": weights[0], "mlp_hidden_raster": net.forward_layers(raster)[1][:, order].T,
              "mlp_hidden_class_starts": starts}
    curves = {"mlp_epochs": epochs, "mlp_learning": learning, "mlp_lesion": lesion_table,
              "mlp_noise": noise_table}
    extra = {"snapshots": snapshots, "weights": weights, "net": net}
    return (metrics, curves, arrays, extra), "COMPLETED"
