"""One step of every update rule against a hand computation; weight decay; schedules."""

from __future__ import annotations

import numpy as np
import pytest

from neurosim.ann import OPTIMIZERS, SCHEDULES, make_optimizer
from neurosim.ann.optim import adam_moments

# Every hand computation below starts from these weights and gradient, with lr = 0.1.
W0 = np.array([1.0, -2.0])
G = np.array([0.5, 0.25])


def one_step(rule: str, **kw) -> np.ndarray:
    opt = make_optimizer(rule, lr=0.1, **kw)
    w = W0.copy()
    opt.step([w], [G.copy()])
    return w


def test_sgd_step_by_hand():
    # w - 0.1 g = [1 - 0.05, -2 - 0.025]
    np.testing.assert_allclose(one_step("sgd"), [0.95, -2.025], rtol=1e-15)
    np.testing.assert_allclose(one_step("gd"), [0.95, -2.025], rtol=1e-15)


def test_l2_and_l1_decay_by_hand():
    # coupled L2: g + 0.01 w = [0.5 + 0.01, 0.25 - 0.02] = [0.51, 0.23]
    np.testing.assert_allclose(one_step("sgd", l2=0.01), [0.949, -2.023], rtol=1e-15)
    # L1: g + 0.01 sign(w) = [0.51, 0.24]
    np.testing.assert_allclose(one_step("sgd", l1=0.01), [0.949, -2.024], rtol=1e-15)
    # both: [0.52, 0.22]
    np.testing.assert_allclose(one_step("sgd", l1=0.01, l2=0.01), [0.948, -2.022], rtol=1e-15)


def test_decay_skips_biases():
    # params = [weights, bias] with n_decayed=1: the bias gets the plain SGD step
    opt = make_optimizer("sgd", lr=0.1, l2=0.5, l1=0.5, n_decayed=1)
    w, b = W0.copy(), np.array([3.0])
    opt.step([w, b], [G.copy(), np.array([1.0])])
    np.testing.assert_allclose(b, [2.9])  # 3 - 0.1 * 1
    # w: g + 0.5 w + 0.5 sign(w) = [0.5 + 0.5 + 0.5, 0.25 - 1 - 0.5] = [1.5, -1.25]
    np.testing.assert_allclose(w, [0.85, -1.875])


@pytest.mark.parametrize("rule", sorted(OPTIMIZERS))
def test_decay_is_coupled_in_every_rule(rule):
    # l1/l2 enter as extra gradient, g + l2 w + l1 sign(w), before the rule's own arithmetic
    decayed = one_step(rule, l1=0.03, l2=0.02)
    w = W0.copy()
    make_optimizer(rule, lr=0.1).step([w], [G + 0.02 * W0 + 0.03 * np.sign(W0)])
    np.testing.assert_allclose(decayed, w, rtol=1e-15)


def test_momentum_with_l2_by_hand():
    # g + 0.01 w = [0.51, 0.23]; v = -0.1 g = [-0.051, -0.023]
    np.testing.assert_allclose(one_step("momentum", l2=0.01), [0.949, -2.023], rtol=1e-15)


def test_momentum_two_steps_by_hand():
    opt = make_optimizer("momentum", lr=0.1, momentum=0.9)
    w = W0.copy()
    opt.step([w], [G.copy()])  # v = -0.1 g = [-0.05, -0.025]
    np.testing.assert_allclose(w, [0.95, -2.025])
    opt.step([w], [G.copy()])  # v = 0.9 v - 0.1 g = [-0.095, -0.0475]
    np.testing.assert_allclose(w, [0.855, -2.0725])


def test_nesterov_two_steps_by_hand():
    opt = make_optimizer("nesterov", lr=0.1, momentum=0.9)
    w = W0.copy()
    # v = -0.1 g = [-0.05, -0.025]; w += 0.9 v - 0.1 g = [-0.095, -0.0475]
    opt.step([w], [G.copy()])
    np.testing.assert_allclose(w, [0.905, -2.0475])
    # v = 0.9 v - 0.1 g = [-0.095, -0.0475]; w += 0.9 v - 0.1 g = [-0.1355, -0.06775]
    opt.step([w], [G.copy()])
    np.testing.assert_allclose(w, [0.7695, -2.11525])


def test_rmsprop_step_by_hand():
    # s = (1 - 0.9) g^2 = [0.025, 0.00625]; sqrt(s) = [0.158113883, 0.0790569415]
    # w -= 0.1 g / (sqrt(s) + 1e-8) = 0.1 * [3.162277640, 3.162277620]
    np.testing.assert_allclose(
        one_step("rmsprop", rho=0.9, eps=1e-8), [0.683772253983, -2.316227726017], rtol=1e-11
    )


def test_adam_two_steps_by_hand():
    opt = make_optimizer("adam", lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8)
    w = W0.copy()
    # step 1: m = 0.1 g = [0.05, 0.025], v = 0.001 g^2 = [2.5e-4, 6.25e-5]; bias-corrected
    # m_hat = g, v_hat = g^2, so w -= 0.1 g / (|g| + 1e-8) = [0.099999998, 0.099999996]
    opt.step([w], [G.copy()])
    np.testing.assert_allclose(w, [0.900000002, -2.099999996], rtol=1e-12)
    m, v = adam_moments(opt)
    np.testing.assert_allclose(m[0], [0.05, 0.025], rtol=1e-12)
    np.testing.assert_allclose(v[0], [2.5e-4, 6.25e-5], rtol=1e-12)
    # step 2 with g = [-1, 0.5]:
    # m = 0.9 m + 0.1 g = [-0.055, 0.0725];  m_hat = m / (1 - 0.9^2)   = [-0.289473684, 0.381578947]
    # v = 0.999 v + 0.001 g^2 = [0.00124975, 0.0003124375]
    # v_hat = v / (1 - 0.999^2) = [0.625187594, 0.156296898], sqrt = [0.790688051, 0.395344025]
    # w -= 0.1 m_hat / (sqrt(v_hat) + 1e-8) = 0.1 * [-0.366103524, 0.965181961]
    opt.step([w], [np.array([-1.0, 0.5])])
    np.testing.assert_allclose(w, [0.936610354241, -2.196518196141], rtol=1e-11)
    m, v = adam_moments(opt)
    np.testing.assert_allclose(m[0], [-0.055, 0.0725], rtol=1e-12)
    np.testing.assert_allclose(v[0], [0.00124975, 0.0003124375], rtol=1e-12)


def reference_adam(w, grads, lr, b1, b2, eps):
    """Kingma & Ba's Algorithm 1, written out plainly."""
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w = w - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return w


@pytest.mark.parametrize(("b1", "b2"), [(0.9, 0.999), (0.0, 0.9), (0.5, 0.0)])
def test_adam_many_steps_match_the_paper(b1, b2):
    # 400 steps: Adam's stored-scale form folds its scales back several times in between
    rng = np.random.default_rng(0)
    grads = rng.normal(size=(400, 6)) * np.array([1e-4, 1e-2, 1, 1, 10, 1e3])
    w0 = rng.normal(size=6)
    opt = make_optimizer("adam", lr=0.01, beta1=b1, beta2=b2, eps=1e-8)
    w = w0.copy()
    for g in grads:
        opt.step([w], [g.copy()])
    np.testing.assert_allclose(w, reference_adam(w0, grads, 0.01, b1, b2, 1e-8), rtol=1e-10)


@pytest.mark.parametrize("rule", sorted(OPTIMIZERS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blas_path_matches_numpy_path(rule, dtype):
    # 1-D buffers take BLAS axpy/scal; a strided view takes plain numpy: same updates
    rng = np.random.default_rng(0)
    flat = rng.standard_normal(50).astype(dtype)
    strided = np.zeros((50, 2), dtype)[:, 0]
    strided[:] = flat
    a = make_optimizer(rule, 0.01, l1=1e-3, l2=1e-2)
    b = make_optimizer(rule, 0.01, l1=1e-3, l2=1e-2)
    for _ in range(5):
        g = rng.standard_normal(50).astype(dtype)
        a.step([flat], [g.copy()])
        b.step([strided], [g.copy()])
    np.testing.assert_allclose(flat, strided, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_step_keeps_dtype_and_allocates_state_once():
    w = np.asfortranarray(np.ones((3, 4), np.float32))
    opt = make_optimizer("adam", 0.1)
    opt.step([w], [np.ones_like(w)])
    state = {k: [id(a) for a in v] for k, v in opt.state.items()}
    opt.step([w], [np.ones_like(w)])
    assert {k: [id(a) for a in v] for k, v in opt.state.items()} == state
    assert w.dtype == np.float32 and w.flags.f_contiguous and opt.t == 2


def test_bad_hyper_parameters():
    with pytest.raises(ValueError, match="unknown optimizer 'adagrad'; choose from adam, gd"):
        make_optimizer("adagrad", 0.1)
    with pytest.raises(ValueError, match="lr must be > 0"):
        make_optimizer("sgd", 0.0)
    with pytest.raises(ValueError, match=r"beta1 must be in \[0, 1\)"):
        make_optimizer("adam", 0.1, beta1=1.0)
    with pytest.raises(ValueError, match="l2 must be >= 0"):
        make_optimizer("sgd", 0.1, l2=-1.0)


def test_schedules():
    assert SCHEDULES["constant"](7, 0.1, 10) == 0.1
    step = SCHEDULES["step"]
    assert step(9, 0.1, 100, step_size=10, gamma=0.5) == pytest.approx(0.1)
    assert step(10, 0.1, 100, step_size=10, gamma=0.5) == pytest.approx(0.05)
    assert step(25, 0.1, 100, step_size=10, gamma=0.5) == pytest.approx(0.025)
    cosine = SCHEDULES["cosine"]
    assert cosine(0, 0.1, 10) == pytest.approx(0.1)
    assert cosine(5, 0.1, 10, lr_min=0.02) == pytest.approx(0.06)  # halfway: the mean
    assert cosine(10, 0.1, 10) == pytest.approx(0.0, abs=1e-12)
    assert cosine(10, 0.1, 10, lr_min=0.01) == pytest.approx(0.01)  # the floor
