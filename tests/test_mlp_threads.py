"""Issue 18, item 5: the MLP's training loop and BLAS threads.

Before: the optimiser's scaled additions went through scipy's BLAS ``axpy``, a second OpenBLAS
runtime beside numpy's; at ``blas_threads=2`` the two thread pools spun against each other and
training ran ~15x slower than at one thread. Now the updates are numpy ufuncs (one BLAS runtime
in the loop) and more threads are used only while they measure faster (`ThreadChoice`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from neurosim.ann import MLP, make_optimizer, train
from neurosim.ann.train import ThreadChoice


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_update_equals_the_formula_in_its_dtype(dtype):
    # the flat-buffer update of the training loop against Kingma & Ba's formula written out in
    # the same dtype: float32 stays float32 (no float64 temporaries), float64 to 1e-12
    rng = np.random.default_rng(3)
    w0 = rng.standard_normal(1000).astype(dtype)
    grads = [rng.standard_normal(1000).astype(dtype) * dtype(0.1) for _ in range(3)]
    opt = make_optimizer("adam", lr=np.float64(1e-3))  # a numpy scalar must not upcast either
    w = w0.copy()
    for g in grads:
        opt.step([w], [g.copy()])
    assert w.dtype == dtype
    m, v, ref = np.zeros(1000), np.zeros(1000), w0.astype(np.float64)
    for t, g in enumerate(grads, start=1):
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g.astype(np.float64) ** 2
        ref = ref - 1e-3 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    if dtype == np.float64:
        np.testing.assert_allclose(w, ref, rtol=0, atol=1e-12)
    else:  # three steps of 1e-3 on weights ~1: a few float32 ulps of 1
        np.testing.assert_allclose(w, ref, rtol=0, atol=4e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_update_is_the_two_rounding_formula(dtype):
    # w - lr g, as numpy writes it in the array's dtype: bit for bit
    rng = np.random.default_rng(0)
    w = rng.standard_normal(513).astype(dtype)
    g = rng.standard_normal(513).astype(dtype)
    expected = w + g * dtype(-0.01)
    opt = make_optimizer("sgd", lr=0.01)
    opt.step([w], [g.copy()])
    np.testing.assert_array_equal(w, expected)


def test_training_uses_one_blas_runtime():
    # the cause of the 15x: scipy's OpenBLAS loaded and called beside numpy's. In a fresh
    # process, training at two threads must leave exactly the BLAS library numpy brought
    code = textwrap.dedent("""
        import json
        import numpy as np
        from threadpoolctl import threadpool_info
        before = [i["filepath"] for i in threadpool_info() if i["user_api"] == "blas"]
        from neurosim.ann import MLP, train
        rng = np.random.default_rng(0)
        net = MLP([20, 16, 3], "relu", "softmax", rng=rng)
        X, y = rng.random((64, 20)), rng.integers(0, 3, 64)
        for rule in ("sgd", "momentum", "nesterov", "rmsprop", "adam"):
            train(net, X, y, loss="categorical_cross_entropy", optimizer=rule, epochs=2,
                  batch_size=16, rng=rng, l2=1e-3, blas_threads=2)
        after = [i["filepath"] for i in threadpool_info() if i["user_api"] == "blas"]
        print(json.dumps([before, after]))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "OPENBLAS_NUM_THREADS": "2"})
    assert out.returncode == 0, out.stderr
    before, after = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(before) == 1 and after == before


class FakeLibrary:
    def __init__(self):
        self.calls = []

    def set_num_threads(self, k):
        self.calls.append(k)


def drive(cost: dict[int, float], steps: int, spare: float = 1.0):
    """Run `steps` steps whose duration depends on the thread count; return the choice and the
    total (fake) seconds."""
    now = [0.0]
    lib = FakeLibrary()
    choice = ThreadChoice(2, [lib], clock=lambda: now[0], spare=lambda: spare)
    for _ in range(steps):
        now[0] += cost[choice.threads]
        choice.step_done()
    return choice, now[0], lib


def test_thread_choice_keeps_one_thread_when_two_are_slower():
    # a busy machine's profile: a two-thread step 20x the one-thread step (a run measured
    # 11-17x slower at load 15-18)
    choice, total, lib = drive({1: 1.0, 2: 20.0}, 10_000)
    assert lib.calls[0] == 1 and set(lib.calls) == {1, 2}
    # probes of one block each, spaced PATIENCE times their cost: total <= (1 + ~1/20) x best
    assert total <= 10_000 * 1.0 * 1.08
    assert choice.steps[2] <= 0.005 * 10_000
    assert choice.steps[1] + choice.steps[2] == 10_000


def test_thread_choice_takes_two_threads_when_they_are_faster():
    # an idle machine's profile: a step ~40% shorter at two threads; the load average counts
    # the loop's own two threads (2 cores - load 2 = 0 to spare), which must not stop it
    choice, total, _ = drive({1: 1.0, 2: 0.6}, 10_000, spare=0.0)
    assert choice.threads == 2
    assert choice.steps[1] == ThreadChoice.BLOCK  # one block at one thread, then two for good
    assert total == pytest.approx(10_000 * 0.6 + ThreadChoice.BLOCK * 0.4)


def test_thread_choice_follows_the_load():
    # two threads win, then the machine fills up (two threads 10x slower), then frees again
    now = [0.0]
    choice = ThreadChoice(2, [], clock=lambda: now[0], spare=lambda: 1.0)
    phases = [({1: 1.0, 2: 0.6}, 2000), ({1: 1.5, 2: 15.0}, 4000), ({1: 1.0, 2: 0.6}, 4000)]
    threads_at_end = []
    for cost, steps in phases:
        for _ in range(steps):
            now[0] += cost[choice.threads]
            choice.step_done()
        threads_at_end.append(choice.threads)
    assert threads_at_end == [2, 1, 2]


def test_thread_choice_never_probes_a_full_machine():
    # no core to spare (load >= cores): two threads are never tried, whatever the timing says
    choice, total, lib = drive({1: 1.0, 2: 0.5}, 1000, spare=-3.0)
    assert choice.steps[2] == 0 and set(lib.calls) == {1}
    assert total == 1000.0


def test_train_counts_steps_per_thread_count_and_checks_the_argument():
    rng = np.random.default_rng(0)
    X, y = rng.random((200, 8)), rng.integers(0, 2, 200)
    net = MLP([8, 6, 2], "relu", "softmax", rng=rng)
    history = train(net, X, y, loss="categorical_cross_entropy", optimizer="adam", epochs=3,
                    batch_size=20, rng=rng, blas_threads=2)
    assert set(history.blas_threads) == {1, 2}
    assert sum(history.blas_threads.values()) == 30  # 3 epochs x 10 batches
    one = train(net, X, y, loss="categorical_cross_entropy", epochs=1, rng=rng)
    assert one.blas_threads == {}  # the default: one thread, nothing to choose
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="blas_threads must be an integer >= 1 or None"):
            train(net, X, y, loss="categorical_cross_entropy", rng=rng, blas_threads=bad)


def test_two_threads_give_the_same_network_to_float_rounding():
    # the thread count changes the products' rounding only: same accuracy, weights ~1e-6 apart
    rng = np.random.default_rng(1)
    X = rng.random((512, 64), dtype=np.float32)
    y = np.argmax(X @ rng.standard_normal((64, 4)).astype(np.float32), axis=1)
    nets = []
    for threads in (1, 2):
        r = np.random.default_rng(7)
        net = MLP([64, 32, 4], "relu", "softmax", rng=r)
        train(net, X, y, loss="categorical_cross_entropy", optimizer="adam", epochs=3,
              batch_size=64, rng=r, blas_threads=threads)
        nets.append(net)
    np.testing.assert_allclose(nets[0].weights[0], nets[1].weights[0], atol=1e-5)
    assert np.mean(nets[0].predict(X) == nets[1].predict(X)) > 0.99
