"""MLP training speed: neurosim vs PyTorch (CPU) vs scikit-learn's MLPClassifier.

Workload (issue 2): a 784-256-10 ReLU/softmax MLP, mini-batches of 64, Adam (lr 1e-3),
10 epochs over 8,000 MNIST-shaped samples (synthetic: uniform pixels, labels from a random
linear teacher, so the task is learnable and every library does the same arithmetic). The three
libraries are timed in alternation, ``--repeats`` rounds with the order rotated each round, and
the median wall time of each is reported with its ratio to neurosim's. All three are held to the
same number of threads (``--threads``, default 1). An accuracy check trains each on sklearn's
digits with the same recipe, so speed is compared at equal accuracy.

    pip install -e ".[bench]"
    python experiments/benchmarks/bench_mlp.py            # writes its section of docs/benchmarks.md
    python experiments/benchmarks/bench_mlp.py --repeats 1 --epochs 2 --no-write   # smoke run
"""

from __future__ import annotations

import argparse
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
    train(net, X, y, loss="categorical_cross_entropy", optimizer="adam", lr=lr,
          epochs=epochs, batch_size=batch, rng=rng, blas_threads=threads)
    return net.predict


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


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--samples", type=int, default=8000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--digits-epochs", type=int, default=60)
    p.add_argument("--no-write", action="store_true", help="print the table only")
    args = p.parse_args(argv)
    hidden, batch, lr = 256, 64, 1e-3

    X, y = synthetic(args.samples, 784, 10, seed=0)
    for fit in PEERS.values():  # untimed warm-up: imports, first-call allocations
        fit(X[:512], y[:512], hidden, 1, batch, lr, 0, args.threads)
    times: dict[str, list[float]] = {name: [] for name in PEERS}
    names = list(PEERS)
    for r in range(args.repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            t0 = time.perf_counter()
            PEERS[name](X, y, hidden, args.epochs, batch, lr, r, args.threads)
            times[name].append(time.perf_counter() - t0)
            print(f"round {r + 1}: {name:9s} {times[name][-1]:7.2f} s", flush=True)

    ds = data.digits(seed=0)
    acc = {}
    for name, fit in PEERS.items():
        predict = fit(ds.X_train, ds.y_train, hidden, args.digits_epochs, batch, lr, 0,
                      args.threads)
        acc[name] = float(np.mean(predict(ds.X_test) == ds.y_test))

    ref = statistics.median(times["neurosim"])
    rows = []
    for name in PEERS:
        med = statistics.median(times[name])
        rows.append([name, f"{med:.2f}", f"{min(times[name]):.2f}",
                     f"{med / ref:.2f}x", f"{acc[name]:.3f}"])
    body = "\n".join([
        "## MLP training: neurosim vs PyTorch vs scikit-learn",
        "",
        f"784-{hidden}-10 ReLU/softmax MLP, Adam (lr {lr}), batch {batch}, {args.epochs} epochs "
        f"on {args.samples} synthetic MNIST-shaped samples; {args.threads} thread(s) for every "
        f"library; median of {args.repeats} alternating rounds. The accuracy column trains the "
        f"same recipe ({args.digits_epochs} epochs) on sklearn digits and scores the test split.",
        "",
        table(["library", "median s", "best s", "time / neurosim", "digits test accuracy"],
              rows),
        "",
        f"Machine: {machine()}.",
        "",
        "Reproduce: `pip install -e \".[bench]\" && python experiments/benchmarks/bench_mlp.py`",
    ])
    print(body)
    if not args.no_write:
        write_section("bench_mlp", body)


if __name__ == "__main__":
    main()
