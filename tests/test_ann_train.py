"""The training loop's guarantees: learning, determinism, divergence, early stopping, history."""

from __future__ import annotations

import signal

import numpy as np
import pytest

from neurosim import data
from neurosim.ann import DEFAULT_LR, MLP, History, evaluate, make_optimizer, train
from neurosim.ann.optim import adam_moments


def test_xor_is_learned_by_full_batch_gd():
    # lr 2 for 2,000 full-batch steps learns XOR for each of seeds 0-29 (checked when written)
    ds = data.xor()
    rng = np.random.default_rng(0)
    net = MLP([2, 4, 1], "sigmoid", "sigmoid", init="xavier", rng=rng)
    history = train(
        net,
        ds.X_train,
        ds.y_train,
        loss="mse",
        optimizer="gd",
        lr=2.0,
        epochs=2000,
        batch_size=None,
        rng=rng,
        metrics=("accuracy",),
    )
    assert history.status == "COMPLETED" and history.n_epochs == 2000
    np.testing.assert_array_equal(net.predict(ds.X_train), [0, 1, 1, 0])  # 4/4 correct
    assert history.epochs["accuracy"][-1] == 1.0
    assert history.epochs["loss"][-1] < history.epochs["loss"][0] / 10


def test_loop_matches_hand_written_steps():
    # the flat-buffer fast path gives the same weights as loss_and_gradients + step
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(8, 3)), rng.integers(0, 2, size=8)
    a = MLP([3, 4, 2], "tanh", "softmax", dtype="float64", rng=np.random.default_rng(1))
    b = MLP([3, 4, 2], "tanh", "softmax", dtype="float64", rng=np.random.default_rng(1))
    train(
        a,
        X,
        y,
        loss="categorical_cross_entropy",
        optimizer="adam",
        lr=0.05,
        epochs=3,
        batch_size=None,
        rng=rng,
        l2=0.01,
    )
    opt = make_optimizer("adam", 0.05, l2=0.01, n_decayed=len(b.weights))
    for _ in range(3):
        _, grads = b.loss_and_gradients(X, y, "categorical_cross_entropy")
        opt.step(b.params, grads)
    for p, q in zip(a.params, b.params, strict=True):
        np.testing.assert_allclose(p, q, rtol=1e-12)


def test_l2_decays_weights_not_biases_in_the_loop():
    # zero inputs: the weight gradient is 0 and only decay moves W; the bias gradient of the
    # MSE is 2 (out - y) = 2 with b = 1, y = 0; one full-batch SGD step with lr 0.1, l2 0.5:
    net = MLP([2, 1], "relu", "identity", dtype="float64", rng=np.random.default_rng(0))
    net.weights[0][:] = [[1.0], [-2.0]]
    net.biases[0][:] = 1.0
    train(
        net,
        np.zeros((4, 2)),
        np.zeros((4, 1)),
        loss="mse",
        optimizer="sgd",
        lr=0.1,
        epochs=1,
        batch_size=None,
        rng=np.random.default_rng(0),
        l2=0.5,
    )
    np.testing.assert_allclose(net.weights[0], [[0.95], [-1.9]])  # W (1 - 0.1 * 0.5)
    np.testing.assert_allclose(net.biases[0], [0.8])  # 1 - 0.1 * 2, no decay


def digits_run(seed: int, dtype: str = "float32", **kw):
    ds = data.digits(seed=0)
    rng = np.random.default_rng(seed)
    net = MLP([64, 16, 10], "relu", "softmax", dtype=dtype, rng=rng)
    settings = {"optimizer": "adam", "lr": 1e-2, "epochs": 3, "batch_size": 32,
                "metrics": ("accuracy",), **kw}
    history = train(
        net,
        ds.X_train[:300],
        ds.y_train[:300],
        loss="categorical_cross_entropy",
        rng=rng,
        **settings,
    )
    return net, history


def test_same_seed_identical_weights_and_dtypes():
    a, ha = digits_run(5)
    b, hb = digits_run(5)
    c, _ = digits_run(6)
    assert all(np.array_equal(x, y) for x, y in zip(a.params, b.params, strict=True))
    assert ha.epochs == hb.epochs
    assert not np.array_equal(a.weights[0], c.weights[0])
    assert a.weights[0].dtype == np.float32
    d, _ = digits_run(5, dtype="float64")
    assert d.weights[0].dtype == np.float64 and d.forward(np.zeros((1, 64))).dtype == np.float64


def test_training_accuracy_and_validation_series():
    ds = data.digits(seed=0)
    _, history = digits_run(0, X_val=ds.X_test, y_val=ds.y_test)
    assert set(history.epochs) == {"loss", "accuracy", "lr", "val_loss", "val_accuracy"}
    assert all(len(v) == 3 for v in history.epochs.values())
    assert history.epochs["accuracy"][-1] > history.epochs["accuracy"][0]
    assert 0.5 < history.epochs["val_accuracy"][-1] <= 1.0
    assert history.best_epoch == 1 + int(np.argmin(history.epochs["val_loss"]))
    assert not history.stopped_early


def test_regression_reports_mae():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 2))
    y = X @ np.array([[1.0], [-2.0]])
    net = MLP([2, 1], "relu", "identity", rng=rng)
    history = train(
        net,
        X,
        y,
        loss="mse",
        optimizer="sgd",
        lr=0.1,
        epochs=50,
        batch_size=16,
        rng=rng,
        metrics=("mae",),
        X_val=X,
        y_val=y,
    )
    assert history.epochs["val_mae"][-1] < 0.01
    val = evaluate(net, X, y, "mse", ("mae",))
    assert val["mae"] == pytest.approx(history.epochs["val_mae"][-1])


def test_divergence_stops_with_finite_history():
    ds = data.linear_regression(100, np.random.default_rng(0))
    rng = np.random.default_rng(0)
    net = MLP([1, 1], output_activation="identity", rng=rng)
    history = train(
        net,
        ds.X_train,
        ds.y_train,
        loss="mse",
        optimizer="gd",
        lr=1000.0,
        epochs=500,
        batch_size=None,
        rng=rng,
        record_steps=True,
    )
    assert history.status == "DIVERGED"
    assert 0 < history.n_epochs < 500
    assert np.all(np.isfinite(history.epochs["loss"]))
    assert np.all(np.isfinite(history.steps["loss"]))
    # what ran away is named: the loss, its size, the epoch
    assert history.diverged == (f"loss 9.9e+11 exceeded 1e+06 times its first value at epoch "
                                f"{history.n_epochs + 1} (weights still finite)")


def test_a_nan_loss_names_the_layer_whose_weights_left_the_numbers():
    rng = np.random.default_rng(0)
    net = MLP([3, 4, 2], "relu", "identity", rng=rng)
    net.weights[1][0, 0] = np.inf
    history = train(net, np.ones((4, 3)), np.zeros((4, 2)), loss="mse", rng=rng, epochs=3)
    assert history.status == "DIVERGED" and history.n_epochs == 0
    # relu(h) * inf is inf or nan (0 * inf): the loss is nan
    assert history.diverged == "loss became nan at epoch 1 (layer 2 weights inf)"


def test_early_stopping_restores_best_weights():
    ds = data.digits(seed=0)
    rng = np.random.default_rng(0)
    net = MLP([64, 64, 10], "relu", "softmax", rng=rng)
    # a tiny training set overfits fast, so the validation loss turns up early
    history = train(
        net,
        ds.X_train[:60],
        ds.y_train[:60],
        loss="categorical_cross_entropy",
        optimizer="adam",
        lr=0.05,
        epochs=200,
        batch_size=10,
        rng=rng,
        X_val=ds.X_test,
        y_val=ds.y_test,
        patience=3,
    )
    assert history.stopped_early and history.status == "COMPLETED"
    assert history.n_epochs == history.best_epoch + 3
    best = history.epochs["val_loss"][history.best_epoch - 1]
    assert best == min(history.epochs["val_loss"]) < history.epochs["val_loss"][-1]
    restored = evaluate(net, ds.X_test, ds.y_test, "categorical_cross_entropy")["loss"]
    assert restored == pytest.approx(best, rel=1e-6)


def test_interrupt_keeps_the_completed_epochs():
    def on_epoch(epoch, history):
        seen.append(epoch)
        if epoch == 2:
            raise KeyboardInterrupt

    seen: list[int] = []
    history = History()
    with pytest.raises(KeyboardInterrupt) as info:  # propagates: the caller decides
        digits_run(0, on_epoch=on_epoch, history=history)
    assert history.status == "INTERRUPTED"
    assert seen == [1, 2] and history.n_epochs == 2
    assert info.value.history is history


def test_ctrl_c_in_a_plain_script_stops_train_and_keeps_its_history():
    """Before: train() swallowed KeyboardInterrupt, so Ctrl-C in a research script carried on
    with the next line. Now SIGINT (Python's default handler, no runner) raises out of
    train(), and the epochs completed so far are in the History the script passed."""
    def on_epoch(epoch, history):
        if epoch == 3:
            signal.raise_signal(signal.SIGINT)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    history = History()
    try:
        with pytest.raises(KeyboardInterrupt):
            digits_run(0, epochs=50, on_epoch=on_epoch, history=history)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert history.status == "INTERRUPTED" and history.n_epochs == 3
    assert len(history.epochs["accuracy"]) == 3


def test_interrupt_with_patience_still_restores_the_best_weights():
    ds = data.digits(seed=0)
    best_net = {}

    def on_epoch(epoch, history):
        if epoch == history.best_epoch:
            best_net["params"] = [p.copy() for p in net.params]
        if epoch == 6:
            raise KeyboardInterrupt

    rng = np.random.default_rng(0)
    net = MLP([64, 16, 10], "relu", "softmax", rng=rng)
    with pytest.raises(KeyboardInterrupt):
        train(net, ds.X_train[:60], ds.y_train[:60], loss="categorical_cross_entropy",
              optimizer="adam", lr=0.05, epochs=50, batch_size=10, rng=rng,
              X_val=ds.X_test, y_val=ds.y_test, patience=20, on_epoch=on_epoch)
    assert all(np.array_equal(a, b) for a, b in zip(net.params, best_net["params"],
                                                     strict=True))


def test_train_refuses_a_history_that_already_holds_epochs():
    history = History()
    history.log(loss=1.0)
    with pytest.raises(ValueError, match="new, empty History"):
        digits_run(0, history=history)


def test_history_per_step_and_lr_schedule():
    _, history = digits_run(
        0, record_steps=True, schedule="step", schedule_kwargs={"step_size": 1, "gamma": 0.5}
    )
    assert len(history.steps["loss"]) == 3 * 10  # 300 samples / 32 -> 10 batches per epoch
    assert history.epochs["lr"] == pytest.approx([1e-2, 5e-3, 2.5e-3])
    # each epoch's loss is the sample-weighted mean of its batch losses (last batch: 12 rows)
    batch = np.array(history.steps["loss"][:10])
    weights = np.array([32] * 9 + [12])
    assert history.epochs["loss"][0] == pytest.approx(float(batch @ weights) / 300)


def test_dropout_network_trains_and_infers_deterministically():
    ds = data.digits(seed=0)
    rng = np.random.default_rng(0)
    net = MLP([64, 32, 10], "relu", "softmax", dropout=0.3, rng=rng)
    history = train(
        net,
        ds.X_train,
        ds.y_train,
        loss="categorical_cross_entropy",
        optimizer="adam",
        lr=1e-2,
        epochs=5,
        batch_size=64,
        rng=rng,
        metrics=("accuracy",),
    )
    assert history.epochs["accuracy"][-1] > 0.8
    np.testing.assert_array_equal(net.predict(ds.X_test), net.predict(ds.X_test))
    assert np.mean(net.predict(ds.X_test) == ds.y_test) > 0.85


def test_bias_free_relu_network_trains():
    # the sleep experiment's network: ReLU, no biases
    ds = data.digits(seed=0)
    rng = np.random.default_rng(0)
    net = MLP([64, 32, 10], "relu", "softmax", bias=False, rng=rng)
    train(
        net,
        ds.X_train,
        ds.y_train,
        loss="categorical_cross_entropy",
        optimizer="sgd",
        lr=0.1,
        epochs=5,
        batch_size=32,
        rng=rng,
    )
    assert net.biases is None
    assert np.mean(net.predict(ds.X_test) == ds.y_test) > 0.85


def test_bad_arguments():
    net = MLP([2, 1], rng=np.random.default_rng(0))
    X, y = np.zeros((4, 2)), np.zeros((4, 1))
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="unknown metric 'f1'; choose from accuracy, mae"):
        train(net, X, y, loss="mse", rng=rng, metrics=("f1",))
    with pytest.raises(ValueError, match="unknown schedule 'linear'; choose from constant"):
        train(net, X, y, loss="mse", rng=rng, schedule="linear")
    with pytest.raises(ValueError, match="schedule 'step': .*'stepsize'"):
        train(net, X, y, loss="mse", rng=rng, schedule="step", schedule_kwargs={"stepsize": 2})
    with pytest.raises(ValueError, match="patience .* needs X_val and y_val"):
        train(net, X, y, loss="mse", rng=rng, patience=2)
    with pytest.raises(ValueError, match="same number"):
        train(net, X, y[:3], loss="mse", rng=rng)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        train(net, X, y, loss="mse", rng=rng, batch_size=0)


def test_one_adam_carries_its_state_from_task_a_to_task_b():
    # continual learning: train on classes 0-4, then 5-9, with one optimiser object
    ds = data.digits(seed=0)
    rng = np.random.default_rng(0)
    net = MLP([64, 16, 10], "relu", "softmax", rng=rng)
    W0 = net.weights[0]  # a reference taken before training stays the network's array
    opt = make_optimizer("adam", 1e-3)
    a, b = ds.y_train < 5, ds.y_train >= 5
    common = {"loss": "categorical_cross_entropy", "batch_size": 50, "rng": rng}
    train(net, ds.X_train[a], ds.y_train[a], optimizer=opt, epochs=2, **common)
    steps_a = opt.t
    assert steps_a == 2 * int(np.ceil(a.sum() / 50))
    m_after_a = [m.copy() for m in adam_moments(opt)[0]]
    train(net, ds.X_train[b], ds.y_train[b], optimizer=opt, epochs=1, **common)
    assert opt.t == steps_a + int(np.ceil(b.sum() / 50))  # the step count carried over
    # the moments carried over: the first step of task B decayed them, it did not restart them
    m_fresh = make_optimizer("adam", 1e-3)
    net2 = MLP([64, 16, 10], "relu", "softmax", rng=np.random.default_rng(0))
    train(net2, ds.X_train[b], ds.y_train[b], optimizer=m_fresh, epochs=1, **common)
    assert not np.allclose(adam_moments(opt)[0][0], adam_moments(m_fresh)[0][0])
    assert np.abs(m_after_a[0]).sum() > 0
    assert W0 is net.weights[0] and np.shares_memory(W0, net.flat_params())
    assert np.array_equal(W0, net.weights[0])


def test_optimizer_object_and_hyper_parameters_are_not_mixed():
    net = MLP([2, 1], rng=np.random.default_rng(0))
    X, y = np.zeros((4, 2)), np.zeros((4, 1))
    with pytest.raises(ValueError, match="lr belong to the Optimizer"):
        train(net, X, y, loss="mse", rng=np.random.default_rng(0),
              optimizer=make_optimizer("sgd", 0.1), lr=0.5)
    other = make_optimizer("adam", 0.1)
    train(MLP([3, 2], rng=np.random.default_rng(0)), np.zeros((4, 3)), np.zeros((4, 2)),
          loss="mse", rng=np.random.default_rng(0), optimizer=other, epochs=1)
    with pytest.raises(ValueError, match="one optimiser per network"):
        train(net, X, y, loss="mse", rng=np.random.default_rng(0), optimizer=other, epochs=1)


def test_default_learning_rate_follows_the_rule():
    assert DEFAULT_LR["adam"] == 1e-3 and DEFAULT_LR["sgd"] == 1e-2
    _, history = digits_run(0, optimizer="adam", lr=None)
    assert history.epochs["lr"][0] == pytest.approx(1e-3)


def test_targets_are_checked_against_the_network():
    rng = np.random.default_rng(0)
    clf = MLP([3, 4], "relu", "softmax", rng=rng)
    X = np.zeros((5, 3))
    with pytest.raises(ValueError, match=r"class labels 3..7, but the network has 4 outputs"):
        train(clf, X, np.arange(5) + 3, loss="categorical_cross_entropy", rng=rng)
    with pytest.raises(ValueError, match="integer class labels"):
        train(clf, X, np.full(5, 0.5), loss="categorical_cross_entropy", rng=rng)
    reg = MLP([3, 2], rng=rng)
    with pytest.raises(ValueError, match=r"needs y of shape \(5, 2\) .* got y of shape \(5,\)"):
        train(reg, X, np.zeros(5), loss="mse", rng=rng)
    with pytest.raises(ValueError, match="epochs must be an integer, got 2.5"):
        train(reg, X, np.zeros((5, 2)), loss="mse", rng=rng, epochs=2.5)
    with pytest.raises(ValueError, match="X holds NaN"):
        train(reg, np.full((5, 3), np.nan), np.zeros((5, 2)), loss="mse", rng=rng)


def test_a_loss_that_explodes_without_nan_is_divergence():
    # Adam at lr 1e9 sends the loss to ~1e20 without ever producing NaN
    _, history = digits_run(0, optimizer="adam", lr=1e9, epochs=5)
    assert history.status == "DIVERGED"
    assert all(np.isfinite(history.epochs["loss"]))
    assert history.diverged.startswith("loss ") and "exceeded 1e+06 times its first value" \
        in history.diverged
    assert history.diverged.endswith("(weights still finite)")


def test_a_completed_history_names_no_divergence():
    assert digits_run(0)[1].diverged is None


def test_monitor_sets_are_recorded_and_change_nothing():
    net_a, h_a = digits_run(0)
    ds = data.digits(seed=0)
    net_b, h_b = digits_run(0, monitor={"test": (ds.X_test, ds.y_test)})
    for p, q in zip(net_a.params, net_b.params, strict=True):
        np.testing.assert_array_equal(p, q)
    assert len(h_b.epochs["test_loss"]) == h_b.n_epochs
    assert "test_loss" not in h_a.epochs
