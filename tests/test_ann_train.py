"""Optimisers against hand computations, schedules, and the training loop's guarantees."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neurosim import data
from neurosim.ann import MLP, SCHEDULES, make_optimizer, train

W0 = np.array([1.0, -2.0])
G = np.array([0.5, 0.25])


def one_step(rule: str, **kw) -> np.ndarray:
    opt = make_optimizer(rule, lr=0.1, **kw)
    w = W0.copy()
    opt.step([w], [G.copy()])
    return w


def test_sgd_step_by_hand():
    np.testing.assert_allclose(one_step("sgd"), [1.0 - 0.05, -2.0 - 0.025])


def test_l2_and_l1_decay_by_hand():
    # g + l2*w = [0.5 + 0.01, 0.25 - 0.02]; g + l1*sign(w) = [0.5 + 0.01, 0.25 - 0.01]
    np.testing.assert_allclose(one_step("sgd", l2=0.01), [1.0 - 0.051, -2.0 - 0.023])
    np.testing.assert_allclose(one_step("sgd", l1=0.01), [1.0 - 0.051, -2.0 - 0.024])


def test_momentum_two_steps_by_hand():
    opt = make_optimizer("momentum", lr=0.1, momentum=0.9)
    w = W0.copy()
    opt.step([w], [G.copy()])  # v = -0.1 g = [-0.05, -0.025]
    opt.step([w], [G.copy()])  # v = 0.9 v - 0.1 g = [-0.095, -0.0475]
    np.testing.assert_allclose(w, [1.0 - 0.05 - 0.095, -2.0 - 0.025 - 0.0475])


def test_nesterov_step_by_hand():
    # v = -0.1 g; w += 0.9 v - 0.1 g = -0.19 g
    np.testing.assert_allclose(one_step("nesterov", momentum=0.9), W0 - 0.19 * G)


def test_rmsprop_step_by_hand():
    s = 0.1 * G**2  # (1 - rho) g^2 with rho = 0.9
    np.testing.assert_allclose(one_step("rmsprop", rho=0.9, eps=1e-8),
                               W0 - 0.1 * G / (np.sqrt(s) + 1e-8))


def test_adam_first_step_is_lr_times_sign():
    # m_hat = g, v_hat = g^2 after bias correction: w -= lr * g / (|g| + eps)
    np.testing.assert_allclose(one_step("adam", eps=1e-8), W0 - 0.1 * G / (np.abs(G) + 1e-8))


def test_adam_second_step_by_hand():
    b1, b2, lr, eps = 0.9, 0.999, 0.1, 1e-8
    g2 = np.array([-1.0, 0.5])
    opt = make_optimizer("adam", lr=lr, beta1=b1, beta2=b2, eps=eps)
    w = W0.copy()
    opt.step([w], [G.copy()])
    opt.step([w], [g2.copy()])
    m = b1 * (1 - b1) * G + (1 - b1) * g2
    v = b2 * (1 - b2) * G**2 + (1 - b2) * g2**2
    expected = W0 - lr * G / (np.abs(G) + eps)
    expected -= lr * (m / (1 - b1**2)) / (np.sqrt(v / (1 - b2**2)) + eps)
    np.testing.assert_allclose(w, expected, rtol=1e-12)


def test_schedules():
    assert SCHEDULES["constant"](7, 0.1, 10) == 0.1
    assert SCHEDULES["step"](25, 0.1, 100, step_size=10, gamma=0.5) == pytest.approx(0.025)
    assert SCHEDULES["cosine"](0, 0.1, 10) == pytest.approx(0.1)
    assert SCHEDULES["cosine"](5, 0.1, 10, lr_min=0.02) == pytest.approx(0.06)
    assert SCHEDULES["cosine"](10, 0.1, 10) == pytest.approx(0.0, abs=1e-12)
    assert math.isclose(SCHEDULES["cosine"](10, 0.1, 10, lr_min=0.01), 0.01)


def test_xor_is_learned_by_full_batch_gd():
    ds = data.xor()
    rng = np.random.default_rng(0)
    net = MLP([2, 4, 1], "sigmoid", "sigmoid", init="xavier", rng=rng)
    history = train(net, ds.X_train, ds.y_train, loss="mse", optimizer="gd", lr=2.0,
                    epochs=3000, batch_size=None, rng=rng, metrics=("accuracy",))
    assert history.status == "COMPLETED"
    assert np.array_equal(net.predict(ds.X_train).ravel(), ds.y_train.ravel().astype(int))
    assert history.epochs["accuracy"][-1] == 1.0
    assert history.epochs["loss"][-1] < history.epochs["loss"][0] / 10


def digits_run(seed: int, dtype: str = "float32", **kw):
    ds = data.digits(seed=0)
    rng = np.random.default_rng(seed)
    net = MLP([64, 16, 10], "relu", "softmax", dtype=dtype, rng=rng)
    history = train(net, ds.X_train[:300], ds.y_train[:300], loss="categorical_cross_entropy",
                    optimizer="adam", lr=1e-2, epochs=3, batch_size=32, rng=rng,
                    metrics=("accuracy",), **kw)
    return net, history


def test_same_seed_identical_weights_and_dtypes():
    a, _ = digits_run(5)
    b, _ = digits_run(5)
    c, _ = digits_run(6)
    assert all(np.array_equal(x, y) for x, y in zip(a.params, b.params, strict=True))
    assert not np.array_equal(a.weights[0], c.weights[0])
    assert a.weights[0].dtype == np.float32
    d, _ = digits_run(5, dtype="float64")
    assert d.weights[0].dtype == np.float64 and d.forward(np.zeros((1, 64))).dtype == np.float64


def test_save_load_round_trip(tmp_path):
    net, _ = digits_run(1)
    net.save(tmp_path / "net.npz")
    back = MLP.load(tmp_path / "net.npz")
    X = np.random.default_rng(0).random((5, 64))
    np.testing.assert_array_equal(net.forward(X), back.forward(X))
    bias_free = MLP([3, 2], bias=False, rng=np.random.default_rng(0))
    bias_free.save(tmp_path / "nb.npz")
    assert MLP.load(tmp_path / "nb.npz").biases is None


def test_divergence_stops_with_finite_history():
    ds = data.linear_regression(100, np.random.default_rng(0))
    rng = np.random.default_rng(0)
    net = MLP([1, 1], output_activation="identity", rng=rng)
    history = train(net, ds.X_train, ds.y_train, loss="mse", optimizer="gd", lr=1000.0,
                    epochs=500, batch_size=None, rng=rng)
    assert history.status == "DIVERGED"
    assert 0 < len(history.epochs["loss"]) < 500
    assert np.all(np.isfinite(history.epochs["loss"]))


def test_early_stopping_restores_best_weights():
    ds = data.digits(seed=0)
    rng = np.random.default_rng(0)
    net = MLP([64, 64, 10], "relu", "softmax", rng=rng)
    # a tiny training set overfits fast, so the validation loss turns up early
    history = train(net, ds.X_train[:60], ds.y_train[:60], loss="categorical_cross_entropy",
                    optimizer="adam", lr=0.05, epochs=200, batch_size=10, rng=rng,
                    X_val=ds.X_test, y_val=ds.y_test, patience=3)
    assert history.stopped_early
    assert len(history.epochs["loss"]) == history.best_epoch + 3
    best = history.epochs["val_loss"][history.best_epoch - 1]
    from neurosim.ann import evaluate

    assert evaluate(net, ds.X_test, ds.y_test, "categorical_cross_entropy")["loss"] == (
        pytest.approx(best, rel=1e-5))


def test_dropout_only_while_training():
    rng = np.random.default_rng(0)
    net = MLP([8, 32, 2], "relu", "softmax", dropout=0.5, rng=rng)
    X = rng.random((4, 8))
    np.testing.assert_array_equal(net.forward(X), net.forward(X))  # inference: deterministic
    y = np.array([0, 1, 0, 1])
    l1, _ = net.loss_and_gradients(X, y, "categorical_cross_entropy", rng=rng)
    l2, _ = net.loss_and_gradients(X, y, "categorical_cross_entropy", rng=rng)
    assert l1 != l2  # fresh masks each call
    l3, _ = net.loss_and_gradients(X, y, "categorical_cross_entropy", rng=rng, training=False)
    l4, _ = net.loss_and_gradients(X, y, "categorical_cross_entropy", rng=rng, training=False)
    assert l3 == l4


def test_history_per_step_and_lr_schedule():
    _, history = digits_run(0, record_steps=True, schedule="step",
                            schedule_kwargs={"step_size": 1, "gamma": 0.5})
    assert len(history.steps["loss"]) == 3 * 10  # 300 samples / 32 -> 10 batches per epoch
    assert history.epochs["lr"] == pytest.approx([1e-2, 5e-3, 2.5e-3])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_blas_path_matches_numpy_path(dtype):
    # flat 1-D buffers take BLAS axpy/scal; 2-D arrays take plain numpy: same updates
    rng = np.random.default_rng(0)
    flat = rng.standard_normal(50).astype(dtype)
    square = flat.reshape(5, 10).copy()
    a, b = make_optimizer("adam", 0.01), make_optimizer("adam", 0.01)
    for _ in range(5):
        g = rng.standard_normal(50).astype(dtype)
        a.step([flat], [g.copy()])
        b.step([square], [g.reshape(5, 10).copy()])
    np.testing.assert_allclose(flat, square.ravel(), rtol=1e-5 if dtype == np.float32 else 1e-12)
