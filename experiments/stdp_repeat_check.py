"""Do Diehl & Cook's repeats of faint digits change the trained network at the end of a pass?

One pass of the 28x28 preset's STDP network (100 neurons) over KMNIST's 5,608 training digits
(the seed's 80/20 split); snapshots after 4,000 and 5,000 digits and at the last chunk end, and
the network after the pass's remaining repeats (``after repeats``); each scored as 3 frozen
replicas (`neurosim.snn.replicas`: 3 Poisson draws), labelled from 1,000 training digits (100
per class) and scored on the first 2,000 validation digits.

    python experiments/stdp_repeat_check.py [SEED]     # from the repository's top folder

Until issue 18 the repeats of a pass followed the whole pass (every faint digit of the epoch,
at rising rates, with STDP on): seed 0 gave 0.722 at the last chunk end and 0.684 after the
repeats. Now a chunk's faint digits open the next run (`neurosim.snn.wta.interleaved_runs`), and
only the last chunk's repeats follow the last chunk end.
"""

from __future__ import annotations

import sys
import tempfile
import time

import numpy as np

from neurosim import data
from neurosim.experiments.brain_vs_ann.stdp_arm import normalised, stratified_first
from neurosim.snn import backend, wta
from neurosim.snn.readout import assign_labels, predict
from neurosim.snn.replicas import WTAReplicas, chunk_for

DATA = "../shared/data/kmnist"
DRAWS = 3


def main(seed: int) -> None:
    ds = data.load_images("kmnist", seed, data_dir=DATA, val_fraction=0.2)
    # stdp_digits' 28x28 preset (DIEHL_COOK_28X28) at 100 neurons
    p = wta.DigitsWTAParams(n_input=784, n_exc=100, max_rate_hz=63.75, norm_total=78.0,
                            theta_plus_mv=0.05, min_spikes=5, rest="closed_form",
                            inh_method="euler")
    rng = np.random.default_rng(seed)
    backend.select("cpp_standalone", standalone_dir=tempfile.mkdtemp())
    backend.seed(rng)
    net = wta.WTANetwork(p, rng, chunk=100)
    snaps = {}

    def on_chunk(counts, labels):
        snaps[len(counts)] = (normalised(net.weights, p), net.theta_mv.copy())

    t0 = time.perf_counter()
    record = wta.fit(net, ds.X_train, ds.y_train, epochs=1, rng=rng, on_chunk=on_chunk)
    print(f"trained in {time.perf_counter() - t0:.1f} s; digits still faint after their "
          f"repeats: {np.mean(record.counts.sum(axis=1) < p.min_spikes):.4f}")
    n = len(ds.X_train)
    names = ["4000", "5000", f"{n} (last chunk end)", "after repeats"]
    variants = [snaps[4000], snaps[5000], snaps[n],
                (normalised(net.weights, p), net.theta_mv.copy())]
    backend.reset_device()
    backend.select("cpp_standalone", standalone_dir=tempfile.mkdtemp())
    lab = stratified_first(ds.y_train, 1000)
    X_eval, y_eval = ds.X_val[:2000], ds.y_val[:2000]
    W = np.stack([w for w, _ in variants for _ in range(DRAWS)])
    theta = np.stack([th for _, th in variants for _ in range(DRAWS)])
    X = np.tile(np.concatenate([ds.X_train[lab], X_eval]), (len(W), 1, 1))
    reps = WTAReplicas(p, len(W), rng, chunk=chunk_for(p, len(W), X.shape[1]))
    counts = reps.present(X, W, theta)
    n_lab = len(lab)
    for v, name in enumerate(names):
        rows = range(v * DRAWS, (v + 1) * DRAWS)
        accs = [np.mean(predict(counts[r, n_lab:],
                                assign_labels(counts[r, :n_lab], ds.y_train[lab], 10), 10)
                        == y_eval) for r in rows]
        print(f"{name:>22}: validation {np.mean(accs):.4f} ± {np.std(accs, ddof=1):.4f} "
              f"(sd of {DRAWS} draws), spikes per digit "
              f"{counts[list(rows), n_lab:].sum(axis=2).mean():.1f}, "
              f"mean theta {variants[v][1].mean():.1f} mV")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
