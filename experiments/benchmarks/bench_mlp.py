"""MLP training speed: neurosim vs PyTorch (CPU) vs scikit-learn's MLPClassifier.

Workload (issues 2 and 18): a 784-256-10 ReLU/softmax MLP, mini-batches of 64, Adam (lr 1e-3),
10 epochs over 8,000 MNIST-shaped samples (synthetic: uniform pixels, labels from a random
linear teacher, so the task is learnable and every library does the same arithmetic), or over
the training images of an MNIST-format folder (``--data-dir ../shared/data/kmnist``: KMNIST's
7,011). Every library is held to the same number of threads; ``--threads 1,2`` (the default)
measures each count, rows side by side. The libraries and thread counts are timed in
alternation, ``--repeats`` rounds with the library order rotated each round, and the median wall
time of each is reported with its ratio to neurosim's at the same thread count. neurosim's
``blas_threads=2`` uses two BLAS threads only while they measure faster than one
(`neurosim.ann.train.ThreadChoice`); the table says on how many of its steps they did. Speed is
compared at equal accuracy: with ``--data-dir`` each timed model is scored on the folder's test
images; otherwise each library trains the same recipe on sklearn's digits. The 1-minute load
average at the start and end is part of the section: on a shared machine it decides what two
threads can gain.

    pip install -e ".[bench]"
    python experiments/benchmarks/bench_mlp.py            # writes its section of docs/benchmarks.md
    python experiments/benchmarks/bench_mlp.py --repeats 1 --epochs 2 --no-write   # smoke run
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import machine, table, write_section  # noqa: E402

from neurosim import data  # noqa: E402
from neurosim.ann import MLP, train  # noqa: E402


def synthetic(n: int, n_in: int, n_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.random((n, n_in), dtype=np.float32)
    teacher = rng.standard_normal((n_in, n_classes)).astype(np.float32)
    return X, np.argmax((X - 0.5) @ teacher, axis=1)


def fit_neurosim(X, y, hidden, epochs, batch, lr, seed, threads):
    rng = np.random.default_rng(seed)
    net = MLP([X.shape[1], hidden, int(y.max()) + 1], hidden_activation="relu",
              output_activation="softmax", init="he", rng=rng)
    history = train(net, X, y, loss="categorical_cross_entropy", optimizer="adam", lr=lr,
                    epochs=epochs, batch_size=batch, rng=rng, blas_threads=threads)

    def predict(Z):
        return net.predict(Z)

    predict.blas_threads = history.blas_threads  # steps run at each BLAS thread count
    return predict


def fit_torch(X, y, hidden, epochs, batch, lr, seed, threads):
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    n_classes = int(y.max()) + 1
    model = torch.nn.Sequential(torch.nn.Linear(X.shape[1], hidden), torch.nn.ReLU(),
                                torch.nn.Linear(hidden, n_classes))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(Xt), generator=gen)
        for start in range(0, len(Xt), batch):
            idx = order[start: start + batch]
            opt.zero_grad(set_to_none=True)
            loss_fn(model(Xt[idx]), yt[idx]).backward()
            opt.step()

    def predict(Z):
        with torch.no_grad():
            return model(torch.from_numpy(Z)).argmax(1).numpy()

    return predict


def fit_sklearn(X, y, hidden, epochs, batch, lr, seed, threads):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=(hidden,), solver="adam", batch_size=batch,
                        learning_rate_init=lr, max_iter=epochs, alpha=0.0, tol=0.0,
                        n_iter_no_change=epochs + 1, shuffle=True, random_state=seed)
    with warnings.catch_warnings(), threadpool_limits(limits=threads):
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    return clf.predict


PEERS: dict[str, Callable] = {"neurosim": fit_neurosim, "pytorch": fit_torch,
                              "sklearn": fit_sklearn}


def load(args) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, str]:
    """Training images and labels, test images and labels (None: synthetic), and a phrase."""
    if args.data_dir:
        ds = data.load_dataset("kmnist", data_dir=args.data_dir, n_train=args.samples)
        return (ds.X_train, ds.y_train, ds.X_test, ds.y_test,
                f"the first {len(ds.X_train)} training images of {args.data_dir}")
    X, y = synthetic(args.samples, 784, 10, seed=0)
    return X, y, None, None, f"{args.samples} synthetic MNIST-shaped samples"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--samples", type=int, default=8000)
    p.add_argument("--threads", default="1,2",
                   help="thread counts to measure, comma-separated (default 1,2)")
    p.add_argument("--data-dir", default="",
                   help="an MNIST-format folder (e.g. ../shared/data/kmnist): train on its "
                        "training images, score its test images (default: synthetic)")
    p.add_argument("--digits-epochs", type=int, default=60)
    p.add_argument("--no-write", action="store_true", help="print the table only")
    args = p.parse_args(argv)
    counts = [int(t) for t in str(args.threads).split(",")]
    hidden, batch, lr = 256, 64, 1e-3
    load_start = os.getloadavg()[0]

    X, y, X_test, y_test, workload = load(args)
    for t in counts:
        for fit in PEERS.values():  # untimed warm-up: imports, first-call allocations
            fit(X[:512], y[:512], hidden, 1, batch, lr, 0, t)
    times = {(t, name): [] for t in counts for name in PEERS}
    acc = {key: [] for key in times}
    share: dict[int, list[float]] = {t: [] for t in counts}  # neurosim's steps at t threads
    names = list(PEERS)
    for r in range(args.repeats):
        for t in counts:
            for name in names[r % len(names):] + names[: r % len(names)]:
                t0 = time.perf_counter()
                predict = PEERS[name](X, y, hidden, args.epochs, batch, lr, r, t)
                times[t, name].append(time.perf_counter() - t0)
                if X_test is not None:
                    acc[t, name].append(float(np.mean(predict(X_test) == y_test)))
                steps = getattr(predict, "blas_threads", {})
                if name == "neurosim" and t > 1 and steps:
                    share[t].append(steps.get(t, 0) / sum(steps.values()))
                print(f"round {r + 1}, {t} thread(s): {name:9s} {times[t, name][-1]:7.2f} s",
                      flush=True)
    load_end = os.getloadavg()[0]

    if X_test is None:  # speed at equal accuracy: the same recipe on sklearn's digits
        ds = data.digits(seed=0)
        for t in counts:
            for name, fit in PEERS.items():
                predict = fit(ds.X_train, ds.y_train, hidden, args.digits_epochs, batch, lr, 0, t)
                acc[t, name].append(float(np.mean(predict(ds.X_test) == ds.y_test)))

    rows = []
    for t in counts:
        ref = statistics.median(times[t, "neurosim"])
        for name in PEERS:
            med = statistics.median(times[t, name])
            note = ""
            if name == "neurosim" and t > 1 and share[t]:
                note = f"{statistics.mean(share[t]):.0%} of steps at {t} threads"
            rows.append([t, name, f"{med:.2f}", f"{min(times[t, name]):.2f}",
                         f"{med / ref:.2f}x", f"{statistics.mean(acc[t, name]):.3f}", note])
    one = statistics.median(times[counts[0], "neurosim"])
    scaling = ", ".join(f"{t} threads {statistics.median(times[t, 'neurosim']) / one:.2f}x"
                        for t in counts[1:])
    accuracy = ("test accuracy (mean over rounds)" if X_test is not None else
                f"digits test accuracy ({args.digits_epochs} epochs)")
    body = "\n".join([
        "## MLP training: neurosim vs PyTorch vs scikit-learn",
        "",
        f"784-{hidden}-10 ReLU/softmax MLP, Adam (lr {lr}), batch {batch}, {args.epochs} epochs "
        f"on {workload}; every library on the same number of threads (first column); median of "
        f"{args.repeats} rounds alternating libraries and thread counts; time / neurosim is "
        f"against neurosim at the same thread count. The accuracy column: "
        + ("each timed model scored on the folder's test images."
           if X_test is not None else
           f"the same recipe ({args.digits_epochs} epochs) trained on sklearn digits, test "
           "split.")
        + f" neurosim's time at more threads relative to one: {scaling or 'n/a'}.",
        "",
        table(["threads", "library", "median s", "best s", "time / neurosim", accuracy, "note"],
              rows),
        "",
        f"Load average (1 min) {load_start:.1f} at the start, {load_end:.1f} at the end. "
        f"Machine: {machine()}.",
        "",
        "Reproduce: `pip install -e \".[bench]\" && python experiments/benchmarks/bench_mlp.py"
        + (f" --data-dir {args.data_dir}" if args.data_dir else "")
        + (f" --repeats {args.repeats}" if args.repeats != 3 else "") + "`",
    ])
    print(body)
    if not args.no_write:
        write_section("bench_mlp", body)


if __name__ == "__main__":
    main()
