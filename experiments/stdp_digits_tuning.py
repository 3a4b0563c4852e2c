"""Tune the stdp_digits network: train epoch by epoch, score the test set after every epoch.

Takes the experiment's own overrides (``snn.max_rate_hz=120``, ``input_coding=intensity``, ...)
and prints one JSON line per epoch: test accuracy, spikes per sample, the spread of wins over
the neurons, the thresholds. The tuning tables in docs/experiments.md come from it, e.g.

    python experiments/stdp_digits_tuning.py --epochs 5 --seed 0 snn.max_rate_hz=160
    python experiments/stdp_digits_tuning.py --epochs 5 input_coding=intensity \\
        snn.max_rate_hz=255 snn.norm_total=6.37

Unlike ``python -m neurosim.run stdp_digits``, which labels and tests once at the end, this
labels and tests after every epoch (plasticity off), so one run shows the whole course.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from neurosim.config import ConfigError, build, parse_overrides
from neurosim.experiments import stdp_digits
from neurosim.snn import backend
from neurosim.snn.readout import assign_labels, predict
from neurosim.snn.wta import WTANetwork


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("overrides", nargs="*", help="key=value, as for neurosim.run")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--log", type=Path, help="also append every line to this file")
    args = ap.parse_args(argv)
    try:
        overrides = {}
        for key, values in parse_overrides(args.overrides).items():
            if len(values) != 1:
                raise ConfigError(f"one value per key here, got {key}={values}")
            overrides[key] = values[0]
        cfg = build(stdp_digits.Config, {**overrides, "epochs": args.epochs})
    except ConfigError as exc:
        ap.error(str(exc))  # one line, exit status 2
    rng = np.random.default_rng(args.seed)
    ds = stdp_digits.load(cfg, args.seed)
    scratch = tempfile.mkdtemp(prefix="stdp-tuning-")
    try:
        requested = "cpp_standalone" if cfg.backend == "auto" else cfg.backend
        target = backend.select(requested, standalone_dir=scratch)
        backend.seed(rng)
        params = replace(cfg.snn, n_input=ds.X_train.shape[1])
        net = WTANetwork(params, rng, chunk=cfg.chunk)
        for epoch in range(1, args.epochs + 1):
            t0 = time.perf_counter()
            order = rng.permutation(len(ds.X_train))
            train = net.present(ds.X_train[order], plastic=True)
            labels = net.present(ds.X_train, plastic=False)
            test = net.present(ds.X_test, plastic=False)
            assignments = assign_labels(labels, ds.y_train, 10)
            wins = np.bincount(train.argmax(axis=1), minlength=params.n_exc)
            line = {
                "overrides": args.overrides, "seed": args.seed, "epoch": epoch,
                "test_accuracy": round(float(np.mean(predict(test, assignments, 10)
                                                     == ds.y_test)), 4),
                "train_spikes_per_sample": round(float(train.sum(axis=1).mean()), 2),
                "test_spikes_per_sample": round(float(test.sum(axis=1).mean()), 2),
                "silent_test_fraction": round(float(np.mean(test.sum(axis=1) == 0)), 3),
                "wins_per_neuron_sd": round(float(wins.std()), 2),
                "theta_mv_mean": round(float(net.theta_mv.mean()), 2),
                "theta_mv_sd": round(float(net.theta_mv.std()), 2),
                "seconds": round(time.perf_counter() - t0, 1), "target": target.name,
            }
            print(json.dumps(line), flush=True)
            if args.log:
                with args.log.open("a") as f:
                    f.write(json.dumps(line) + "\n")
    finally:
        backend.reset_device()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
