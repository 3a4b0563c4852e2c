"""Surrogate-gradient SNN training speed: neurosim (numpy) vs snnTorch (PyTorch, CPU).

Workload (issue 17): the same network in both: 128 ON/OFF Poisson inputs (sklearn digits, max
rate 160 Hz), 100 LIF neurons (tau_mem 20 ms, threshold 1, reset by subtraction with the reset
detached from the gradient), a non-spiking leaky readout (tau_out 20 ms) read by its time-averaged
membrane plus a bias, softmax cross-entropy, 700 steps of 0.5 ms per digit, BPTT with the fast
sigmoid surrogate 1/(1 + k|v - theta|)^2 (k = `SurrogateParams.slope`), Adam, batch 64. snnTorch's
``snn.Leaky`` computes exactly this recursion (``mem = beta mem + I - reset * threshold`` with a
detached reset; ``surrogate.fast_sigmoid``). Each library draws its own Poisson spikes every
epoch. The two are timed in alternation, ``--repeats`` rounds with the order rotated, one thread
each; the median wall time and the ratio (peer / neurosim) are reported, with the test accuracy
of each after the timed training (same epochs).

    pip install -e ".[bench]"
    python experiments/benchmarks/bench_surrogate.py          # writes its section of the page
    python experiments/benchmarks/bench_surrogate.py --repeats 1 --epochs 1 --no-write
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import machine, table, write_section  # noqa: E402

from neurosim import data  # noqa: E402
from neurosim.snn import surrogate  # noqa: E402


def fit_neurosim(X, y, p: surrogate.SurrogateParams, seed: int):
    rng = np.random.default_rng(seed)
    net = surrogate.SpikingNet(2 * X.shape[1], 10, p, rng)
    surrogate.train(net, X, y, rng)
    return lambda Z: net.predict(Z, rng)


def fit_snntorch(X, y, p: surrogate.SurrogateParams, seed: int):
    import snntorch as snn
    import torch
    from snntorch import surrogate as sg

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    n_in, H, T = 2 * X.shape[1], p.n_hidden, p.n_steps
    fc1 = torch.nn.Linear(n_in, H, bias=False)
    fc2 = torch.nn.Linear(H, 10, bias=False)
    bias = torch.nn.Parameter(torch.zeros(10))
    with torch.no_grad():  # the same initial scales as neurosim's SpikingNet
        ref = surrogate.SpikingNet(n_in, 10, p, np.random.default_rng(seed))
        fc1.weight.copy_(torch.from_numpy(ref.W_in.T.copy()))
        fc2.weight.copy_(torch.from_numpy(ref.W_out.T.copy()))
    lif = snn.Leaky(beta=p.beta, threshold=p.threshold, reset_mechanism="subtract",
                    spike_grad=sg.fast_sigmoid(slope=p.slope))
    params = [fc1.weight, fc2.weight, bias]
    opt = torch.optim.Adam(params, lr=p.lr)
    prob_scale = p.max_rate_hz * p.dt_ms * 1e-3

    def rates(Z):
        Zt = torch.from_numpy(np.asarray(Z, np.float32))
        return torch.cat([Zt, 1 - Zt], dim=1) * prob_scale  # ON/OFF cells

    def scores(prob):
        mem = lif.init_leaky()
        out = torch.zeros(prob.shape[0], 10)
        total = torch.zeros(prob.shape[0], 10)
        spikes_in = (torch.rand((T, *prob.shape), generator=gen) < prob).float()
        current = fc1(spikes_in)  # every step's input current in one product, as neurosim
        for t in range(T):
            spk, mem = lif(current[t], mem)
            out = p.kappa * out + fc2(spk)
            total = total + out
        return total / T + bias

    loss_fn = torch.nn.CrossEntropyLoss()
    P, Y = rates(X), torch.from_numpy(np.asarray(y, np.int64))
    for _ in range(p.epochs):
        order = torch.randperm(len(P), generator=gen)
        for start in range(0, len(P), p.batch_size):
            idx = order[start:start + p.batch_size]
            opt.zero_grad(set_to_none=True)
            loss_fn(scores(P[idx]), Y[idx]).backward()
            opt.step()

    def predict(Z):
        with torch.no_grad():
            return scores(rates(Z)).argmax(1).numpy()

    return predict


PEERS: dict[str, Callable] = {"neurosim": fit_neurosim, "snntorch": fit_snntorch}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=1)  # snnTorch: ~3 min per epoch here
    ap.add_argument("--no-write", action="store_true", help="print the table only")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    # a constant learning rate: the peer's loop below has no schedule
    p = surrogate.SurrogateParams(epochs=args.epochs, schedule="constant")
    ds = data.digits(seed=0)
    X, y = ds.X_train, ds.y_train
    with threadpool_limits(1):
        for fit in PEERS.values():  # untimed warm-up: imports, first-call allocations
            fit(X[:64], y[:64], surrogate.SurrogateParams(epochs=1), 0)
        times: dict[str, list[float]] = {name: [] for name in PEERS}
        acc: dict[str, list[float]] = {name: [] for name in PEERS}
        names = list(PEERS)
        for r in range(args.repeats):
            for name in names[r % len(names):] + names[: r % len(names)]:
                t0 = time.perf_counter()
                predict = PEERS[name](X, y, p, r)
                times[name].append(time.perf_counter() - t0)
                acc[name].append(float(np.mean(predict(ds.X_test) == ds.y_test)))
                print(f"round {r + 1}: {name:9s} {times[name][-1]:7.2f} s  "
                      f"test accuracy {acc[name][-1]:.3f}", flush=True)
    load = os.getloadavg()
    ref = statistics.median(times["neurosim"])
    rows = [[name, f"{statistics.median(times[name]):.2f}", f"{min(times[name]):.2f}",
             f"{statistics.median(times[name]) / ref:.2f}x",
             f"{statistics.mean(acc[name]):.3f}"] for name in PEERS]
    body = "\n".join([
        "## Surrogate-gradient SNN training: neurosim vs snnTorch",
        "",
        f"128 ON/OFF Poisson inputs -> {p.n_hidden} LIF -> 10 leaky readout units, "
        f"{p.n_steps} steps of {p.dt_ms} ms per digit, BPTT with the fast-sigmoid surrogate "
        f"(k = {p.slope}), detached reset by subtraction, Adam (constant lr {p.lr}), batch "
        f"{p.batch_size}, {args.epochs} epochs over the {len(X)} training digits of sklearn's "
        f"digits; one thread each; median of {args.repeats} alternating rounds. Accuracy: the "
        f"test split after those epochs (mean over rounds), not the tuned result.",
        "",
        table(["library", "median s", "best s", "time / neurosim", "digits test accuracy"],
              rows),
        "",
        f"Load average during the run (1/5/15 min): {load[0]:.2f} / {load[1]:.2f} / "
        f"{load[2]:.2f}. Machine: {machine()}, snntorch {_version('snntorch')}.",
        "",
        "Reproduce: `pip install -e \".[bench]\" && "
        "python experiments/benchmarks/bench_surrogate.py`",
    ])
    print(body)
    if not args.no_write:
        write_section("bench_surrogate", body)


def _version(pkg: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "?"


if __name__ == "__main__":
    main()
