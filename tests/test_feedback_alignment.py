"""Feedback alignment (Lillicrap 2016) and direct feedback alignment (Nøkland 2016) in the MLP."""

from __future__ import annotations

import numpy as np
import pytest

from neurosim import data
from neurosim.ann import MLP, train
from neurosim.ann.feedback import alignment_angles, angle_deg, rule_and_true_gradients
from neurosim.ann.mlp import FEEDBACK_MODES, backward, forward, loss_and_delta
from neurosim.validation import InvalidParameterError


def batch(n: int = 9, seed: int = 1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)), rng.integers(0, 3, size=n)


def net(feedback: str, sizes=(4, 6, 5, 3), seed: int = 3, **kw) -> MLP:
    return MLP(list(sizes), "tanh", "softmax", dtype="float64", init="xavier",
               rng=np.random.default_rng(seed), feedback=feedback, **kw)


def test_feedback_shapes_and_backprop_weights_unchanged_by_the_option():
    bp, fa, dfa = net("backprop"), net("fa"), net("dfa")
    assert bp.feedback_matrices == [] and bp.feedback == "backprop"
    assert [B.shape for B in fa.feedback_matrices] == [(5, 6), (3, 5)]  # W_1^T, W_2^T
    assert [B.shape for B in dfa.feedback_matrices] == [(3, 6), (3, 5)]  # (n_out, n_k)
    for a, b in zip(bp.weights, fa.weights, strict=True):  # B drawn after W
        np.testing.assert_array_equal(a, b)
    assert "feedback='fa'" in repr(fa) and "feedback" not in repr(bp)
    with pytest.raises(InvalidParameterError, match="backprop, dfa, fa"):
        net("fb")
    assert FEEDBACK_MODES == ("backprop", "fa", "dfa")


def test_fa_with_transposed_weights_reproduces_backprop_exactly():
    X, y = batch()
    fa = net("fa", bias=True)
    for B, W in zip(fa.feedback_matrices, fa.weights[1:], strict=True):
        B[...] = W.T
    _, g_fa = fa.loss_and_gradients(X, y, "categorical_cross_entropy")
    fa.weights.feedback = None  # the same network, plain backprop
    _, g_bp = fa.loss_and_gradients(X, y, "categorical_cross_entropy")
    for a, b in zip(g_fa, g_bp, strict=True):
        np.testing.assert_array_equal(a, b)


def test_dfa_last_hidden_layer_is_backprop_when_b_is_the_output_weights():
    X, y = batch()
    dfa = net("dfa")
    dfa.feedback_matrices[-1][...] = dfa.weights[-1].T
    rule, exact = rule_and_true_gradients(dfa, X, y, "categorical_cross_entropy")
    np.testing.assert_allclose(rule[-1], exact[-1])  # output layer: exact for every rule
    np.testing.assert_allclose(rule[-2], exact[-2])  # last hidden layer: e B = delta W^T
    assert angle_deg(rule[0], exact[0]) > 1  # the first: its own random matrix


def test_fa_and_dfa_deltas_by_hand():
    """One hidden layer: delta_1 = f'(z_1) * (delta_2 B) for FA, e B for DFA (same here)."""
    X, y = batch()
    for mode in ("fa", "dfa"):
        m = net(mode, sizes=(4, 6, 3))
        cache = forward(X, m.weights, m.biases, m.activations, activate_output=False)
        _, e = loss_and_delta(cache, y, m.check_loss("categorical_cross_entropy"), "softmax")
        gW, _ = backward(cache, e, m.weights, m.activations, True)
        B = m.feedback_matrices[0]
        delta1 = (1 - np.tanh(cache.pre[0]) ** 2) * (e @ B)
        np.testing.assert_allclose(gW[0], X.T @ delta1)
        np.testing.assert_allclose(gW[1], cache.activations[1].T @ e)


def test_feedback_matrices_saved_and_loaded(tmp_path):
    fa = net("dfa")
    fa.save(tmp_path / "fa.npz")
    back = MLP.load(tmp_path / "fa.npz")
    assert back.feedback == "dfa" and repr(back) == repr(fa)
    for a, b in zip(fa.feedback_matrices, back.feedback_matrices, strict=True):
        np.testing.assert_array_equal(a, b)


def test_alignment_angle_falls_below_90_while_training_on_digits():
    ds = data.digits(seed=0)
    rng = np.random.default_rng(0)
    m = MLP([64, 64, 64, 10], "relu", "softmax", rng=rng, feedback="fa")
    loss = "categorical_cross_entropy"
    Xb, yb = ds.X_train[:500], ds.y_train[:500]
    before = alignment_angles(m, Xb, yb, loss)
    train(m, ds.X_train, ds.y_train, loss=loss, optimizer="adam", lr=1e-3, epochs=15,
          batch_size=32, rng=rng)
    after = alignment_angles(m, Xb, yb, loss)
    assert len(before) == len(after) == 2, (before, after)
    print("angles before", before, "after", after)
    assert all(a < 90 for a in after) and all(a < b for a, b in zip(after, before, strict=True))
    assert (m.predict(ds.X_test) == ds.y_test).mean() > 0.9
    bp = MLP([64, 64, 64, 10], "relu", "softmax", rng=np.random.default_rng(0))
    assert alignment_angles(bp, Xb, yb, loss) == pytest.approx([0.0, 0.0], abs=1e-3)
