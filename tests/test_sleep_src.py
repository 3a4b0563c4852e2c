"""One SRC sleep phase pinned by hand: the update rule, the decay, the input window, and the
numpy and Brian2 engines giving the same spikes and weights."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neurosim.ann import MLP
from neurosim.runner.config import ConfigError
from neurosim.sleep import src

pytestmark = pytest.mark.usefixtures("numpy_target")  # conftest: no compiler needed


def g_by_hand(w: float, width: float = 0.001) -> float:
    """The released code's gain, written as it is there: 2 * (1 - 1 / (1 + exp(-w / 0.001)))."""
    return 2 * (1.0 - 1.0 / (1.0 + math.exp(-w / width)))


def test_gain_values():
    for w in (-0.01, -0.001, 0.0, 0.0005, 0.002, 0.01):
        assert src.gain(np.array(w), 0.001) == pytest.approx(g_by_hand(w), rel=1e-12, abs=1e-15)
    assert src.gain(np.array([-1.0, 1.0]), 0.001).tolist() == [2.0, 0.0]  # no overflow warning


@pytest.mark.parametrize("engine", ["numpy", "brian2"])
def test_one_step_update_by_hand(engine):
    """2 inputs -> 2 outputs, one step; input 0 fires, input 1 is silent.

    v = alpha * W^T s = 1000 * [0.002, -0.001] = [2, -1]; threshold 1 -> output 0 fires.
    Its incoming weights change: w00 (pre fired) += inc g(w00), w10 (pre silent) -= dec g(w10);
    output 1's weights do not.
    """
    W = np.array([[0.002, -0.001], [0.0, 0.003]])
    p = src.SleepParams(inc=0.1, dec=0.05, beta=(1.0,), decay=0.5)
    spikes = np.array([[True, False]])
    r = src.sleep([W], np.zeros((1, 2)), 1, p, np.random.default_rng(0), input_spikes=spikes,
                  alphas=[1000.0], engine=engine)
    expected = W.copy()
    expected[0, 0] = 0.002 + 0.1 * g_by_hand(0.002)  # 0.002 + 0.1 * 2 / (1 + e^2)
    expected[1, 0] = 0.0 - 0.05 * g_by_hand(0.0)  # g(0) = 1
    np.testing.assert_allclose(r.weights[0], expected, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(r.rasters[1], [[True, False]])
    assert W[0, 0] == 0.002  # the input is untouched


@pytest.mark.parametrize("engine", ["numpy", "brian2"])
def test_decay_by_hand(engine):
    """A constant drive of 0.4 per step: v = 0.4, 0.4*0.999 + 0.4 = 0.7996, 1.19880 -> spike at
    step 2, reset to 0, so the next spike comes 3 steps later; with decay 0.5 v tends to 0.8
    and never fires."""
    W = np.array([[0.4]])
    spikes = np.ones((6, 1), dtype=bool)
    for decay, fires in ((0.999, [0, 0, 1, 0, 0, 1]), (0.5, [0] * 6)):
        p = src.SleepParams(inc=0.0, dec=0.0, beta=(1.0,), decay=decay)
        r = src.sleep([W], np.ones((1, 1)), 6, p, np.random.default_rng(0),
                      input_spikes=spikes, alphas=[1.0], engine=engine)
        np.testing.assert_array_equal(r.rasters[1][:, 0], np.array(fires, dtype=bool))


def small_case(seed=3, T=300):
    rng = np.random.default_rng(seed)
    Ws = [rng.normal(0.002, 0.01, (16, 8)), rng.normal(0.002, 0.01, (8, 6)),
          rng.normal(0.002, 0.01, (6, 3))]
    X = rng.random((20, 16))
    p = src.SleepParams(beta=(1.0, 0.5, 0.5), alpha_scale=10.0, max_rate_hz=200.0, mask=2,
                        inc=0.01, dec=0.005)
    spikes = src.sleep_input(X.mean(0), T, p, rng)
    return Ws, X, p, spikes


def test_engines_give_the_same_spikes_and_weights():
    Ws, X, p, spikes = small_case()
    a = src.sleep(Ws, X, 0, p, np.random.default_rng(0), input_spikes=spikes, engine="numpy")
    b = src.sleep(Ws, X, 0, p, np.random.default_rng(0), input_spikes=spikes, engine="brian2")
    assert all(c > 10 for c in a.layer_counts)  # every layer fires: the test means something
    for sa, sb in zip(a.rasters, b.rasters, strict=True):
        np.testing.assert_array_equal(sa, sb)
    for wa, wb, w0 in zip(a.weights, b.weights, Ws, strict=True):
        assert np.abs(wa - w0).max() > 1e-3  # plasticity did something
        np.testing.assert_array_equal(wa, wb)  # to the last bit


@pytest.mark.parametrize("engine", ["numpy", "brian2"])
def test_no_plasticity_leaves_weights_exactly(engine):
    Ws, X, p, spikes = small_case(T=120)
    p0 = src.SleepParams(**{**p.__dict__, "inc": 0.0, "dec": 0.0})
    r = src.sleep(Ws, X, 0, p0, np.random.default_rng(0), input_spikes=spikes, engine=engine)
    assert r.layer_counts[-1] > 0
    for W, W0 in zip(r.weights, Ws, strict=True):
        np.testing.assert_array_equal(W, W0)


def test_window_masks():
    rng = np.random.default_rng(0)
    m = src.window_masks(500, (8, 8), 4, rng).reshape(500, 8, 8)
    assert (m.sum(axis=(1, 2)) == 25).all()  # (mask + 1)^2 pixels
    rows = np.flatnonzero(m[0].any(axis=1))
    cols = np.flatnonzero(m[0].any(axis=0))
    assert m[0][np.ix_(rows, cols)].all() and len(rows) == len(cols) == 5  # one square
    corners = {(np.flatnonzero(x.any(1))[0], np.flatnonzero(x.any(0))[0]) for x in m}
    assert corners == {(r, c) for r in range(4) for c in range(4)}  # every inside position
    assert src.window_masks(3, (8, 8), -1, rng).all()
    with pytest.raises(ValueError, match="does not fit"):
        src.window_masks(3, (8, 8), 8, rng)


def test_sleep_input_rates():
    p = src.SleepParams(max_rate_hz=100.0, mask=-1)  # P(spike) = 2 * 0.001 * 100 * pixel
    image = np.linspace(0, 1, 16)
    s = src.sleep_input(image, 20000, p, np.random.default_rng(0))
    np.testing.assert_allclose(s.mean(axis=0), 0.2 * image, atol=0.01)
    assert not s[:, 0].any()  # a zero pixel never fires
    masked = src.sleep_input(np.ones(64), 200, src.SleepParams(max_rate_hz=500.0, mask=2),
                             np.random.default_rng(1))
    assert masked.sum(axis=1).max() <= 9 and masked.sum(axis=1).mean() > 8  # 3x3, p = 1


def test_scales_follow_the_released_code():
    Ws, X, p, _ = small_case()
    from neurosim.snn.convert import normalisation_factors

    np.testing.assert_allclose(src.sleep_scales(Ws, X, p),
                               p.alpha_scale * normalisation_factors(Ws, X, chain="src"))


def test_silent_layers_and_non_finite_weights_are_reported():
    Ws, X, p, spikes = small_case(T=100)
    deaf = src.SleepParams(**{**p.__dict__, "beta": (1.0, 1e6, 0.5)})
    r = src.sleep(Ws, X, 0, deaf, np.random.default_rng(0), input_spikes=spikes)
    assert r.silent_layers == [2, 3] and r.finite
    bad = [W.copy() for W in Ws]
    bad[0][0, 0] = np.nan
    r = src.sleep(bad, X, 0, p, np.random.default_rng(0), input_spikes=spikes,
                  alphas=[1.0, 1.0, 1.0])
    assert not r.finite


def test_sleep_network_writes_in_place_and_draws_its_own_input():
    rng = np.random.default_rng(0)
    net = MLP([16, 8, 3], "relu", "relu", bias=False, dtype="float32", rng=rng)
    arrays = [id(W) for W in net.weights]
    X = rng.random((30, 16))
    p = src.SleepParams(beta=(0.5, 0.5), alpha_scale=5.0, max_rate_hz=300.0, mask=2)
    before = [W.copy() for W in net.weights]
    r = src.sleep_network(net, X, 200, p, np.random.default_rng(5))
    assert [id(W) for W in net.weights] == arrays
    assert r.rasters[0].shape == (200, 16) and r.finite
    np.testing.assert_allclose(net.weights[0], r.weights[0].astype(np.float32))
    assert any(not np.array_equal(a, b) for a, b in zip(before, net.weights, strict=True))
    again = src.sleep_network(MLP([16, 8, 3], "relu", "relu", bias=False, dtype="float32",
                                  rng=np.random.default_rng(0)), X, 200, p,
                              np.random.default_rng(5))
    for a, b in zip(r.rasters, again.rasters, strict=True):  # same generator, same phase
        np.testing.assert_array_equal(a, b)


def test_params_validation():
    with pytest.raises(ConfigError, match="inc"):
        src.SleepParams(inc=-1.0)
    with pytest.raises(ConfigError, match="decay"):
        src.SleepParams(decay=1.5)
    with pytest.raises(ConfigError, match="mask"):
        src.SleepParams(mask=-2)
    with pytest.raises(ConfigError, match="chain"):
        src.SleepParams(chain="other")
    with pytest.raises(ValueError, match="beta"):
        src.sleep([np.zeros((2, 2))], np.zeros((1, 2)), 5, src.SleepParams(),
                  np.random.default_rng(0))
    with pytest.raises(ValueError, match="engine"):
        src.sleep([np.zeros((2, 2))], np.zeros((1, 2)), 5, src.SleepParams(beta=(1.0,)),
                  np.random.default_rng(0), engine="nest")


def test_params_refuse_non_finite_values_and_unknown_engines():
    for key in ("max_rate_hz", "inc", "dec", "alpha_scale", "threshold", "gain_width"):
        with pytest.raises(ConfigError, match=f"{key} must be a finite number"):
            src.SleepParams(**{key: math.inf})
    with pytest.raises(ConfigError, match="beta"):
        src.SleepParams(beta=(1.0, math.nan, 1.0))
    with pytest.raises(ConfigError, match="unknown engine 'nest'; choose from brian2, numpy"):
        src.SleepParams(engine="nest")


def test_params_engine_is_the_default_engine():
    """``SleepParams(engine=...)`` picks the engine when `sleep` is not told one; the two
    give the same weights (as in test_engines_give_the_same_spikes_and_weights)."""
    rng = np.random.default_rng(3)
    W = [rng.uniform(-0.02, 0.03, (9, 6)), rng.uniform(-0.02, 0.03, (6, 3))]
    X = rng.random((20, 9))
    spikes = src.sleep_input(X.mean(axis=0), 40, src.SleepParams(mask=1),
                             np.random.default_rng(0), (3, 3))
    out = {}
    for engine in ("numpy", "brian2"):
        p = src.SleepParams(beta=(1.0, 1.0), alpha_scale=3.0, mask=1, engine=engine)
        out[engine] = src.sleep(W, X, 40, p, rng, input_spikes=spikes)
    for a, b in zip(out["numpy"].weights, out["brian2"].weights, strict=True):
        np.testing.assert_array_equal(a, b)
    assert out["numpy"].layer_counts == out["brian2"].layer_counts
    assert sum(out["numpy"].layer_counts[1:]) > 0


def test_compact_keeps_counts_and_silent_layers():
    Ws, X, p, spikes = small_case(T=100)
    deaf = src.SleepParams(**{**p.__dict__, "beta": (1.0, 1e6, 0.5)})
    r = src.sleep(Ws, X, 0, deaf, np.random.default_rng(0), input_spikes=spikes)
    counts, layer_counts = [c.copy() for c in r.counts], r.layer_counts
    np.testing.assert_array_equal(counts[0], spikes.sum(axis=0))
    assert r.compact() is r and r.spikes == [] and r.weights == []
    assert r.layer_counts == layer_counts and r.silent_layers == [2, 3] and r.n_steps == 100
    for a, b in zip(r.counts, counts, strict=True):
        np.testing.assert_array_equal(a, b)


def test_only_beta_over_alpha_scale_matters():
    """v_l = sum alpha_l W s against threshold beta_l: doubling alpha_scale and every beta (a
    power of two, exact in floating point) gives the very same phase, so a search need not
    draw alpha_scale beside the betas."""
    Ws, X, p, spikes = small_case(T=200)
    a = src.sleep(Ws, X, 0, p, np.random.default_rng(0), input_spikes=spikes)
    q = src.SleepParams(**{**p.__dict__, "alpha_scale": 2 * p.alpha_scale,
                           "beta": tuple(2 * b for b in p.beta)})
    b = src.sleep(Ws, X, 0, q, np.random.default_rng(0), input_spikes=spikes)
    for x, y in zip(a.rasters, b.rasters, strict=True):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(x, y)
    assert sum(a.layer_counts[1:]) > 0


def test_steps_without_input_skip_the_layers_above_and_stay_equal_to_brian2():
    """run_numpy ends a step at the first layer that receives nothing (its membranes only
    decay); Brian2 computes every layer every step. Half the steps here carry no input."""
    Ws, X, p, spikes = small_case(T=300)
    spikes = spikes.copy()
    spikes[1::2] = False
    a = src.sleep(Ws, X, 0, p, np.random.default_rng(0), input_spikes=spikes, engine="numpy")
    b = src.sleep(Ws, X, 0, p, np.random.default_rng(0), input_spikes=spikes, engine="brian2")
    assert all(c > 0 for c in a.layer_counts)
    for x, y in zip(a.rasters, b.rasters, strict=True):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(x, y)


# --- the event engine against the raster engine it replaced ------------------------------------


def raster_input(image, n_steps, params, rng, image_shape):
    """The input as it was drawn before `sleep_input_events`: every window, then every
    uniform number of the phase in one (n_steps, n_inputs) array."""
    masks = src.window_masks(int(n_steps), image_shape, int(params.mask), rng)
    p = np.clip(np.asarray(image, float).ravel() * params.p_max, 0.0, 1.0)
    return (rng.random((int(n_steps), p.size)) < p) & masks


def raster_engine(weights, alphas, input_spikes, params):
    """The numpy engine as it was before `run_events` (dense rasters, a fresh array of terms
    per step), kept verbatim as the reference."""
    from neurosim.plasticity import src as src_rule

    WTs = [np.array(np.asarray(W).T, dtype=np.float64, order="C") for W in weights]
    scaled = [np.ascontiguousarray(alpha * WT.T) for alpha, WT in zip(alphas, WTs, strict=True)]
    T = input_spikes.shape[0]
    thresholds = [params.threshold * b for b in params.betas(len(WTs))]
    sizes = [WT.shape[0] for WT in WTs]
    v_all = np.zeros(sum(sizes))
    v = np.split(v_all, np.cumsum(sizes)[:-1])
    spikes = [np.asarray(input_spikes, dtype=bool)]
    spikes += [np.zeros((T, n), dtype=bool) for n in sizes]
    rule = {"inc": params.inc, "dec": params.dec, "width": params.gain_width}
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(T):
            v_all *= params.decay
            pre = spikes[0][t]
            for l, WT in enumerate(WTs):
                idx = pre.nonzero()[0]
                if not idx.size:
                    break
                terms = np.empty((idx.size + 1, sizes[l]))
                terms[0] = v[l]
                scaled[l].take(idx, axis=0, out=terms[1:], mode="clip")
                np.add.reduce(terms, axis=0, out=v[l])
                post = spikes[l + 1][t]
                np.greater_equal(v[l], thresholds[l], out=post)
                fired = post.nonzero()[0]
                if fired.size:
                    rows = WT[fired]
                    rows += src_rule(rows, pre, None, **rule)
                    WT[fired] = rows
                    scaled[l][:, fired] = alphas[l] * rows.T
                    v[l][fired] = 0.0
                pre = post
    return [np.ascontiguousarray(WT.T) for WT in WTs], spikes


@pytest.mark.parametrize("mask, shape", [(2, (4, 4)), (-1, (4, 4)), (1, (2, 8))])
def test_input_events_are_the_raster_inputs_draws(mask, shape, monkeypatch):
    """Drawn in chunks of steps, the same spikes as the whole raster at once, and the
    generator left in the same state (the next task's batches depend on it)."""
    monkeypatch.setattr(src, "INPUT_CHUNK", 7)  # several chunks and a ragged last one
    p = src.SleepParams(max_rate_hz=300.0, mask=mask)
    image = np.random.default_rng(5).random(16)
    a, b = np.random.default_rng(2), np.random.default_rng(2)
    old = raster_input(image, 50, p, a, shape)
    steps, idx, n = src.sleep_input_events(image, 50, p, b, shape)
    assert n == 16 and steps.size > 20
    np.testing.assert_array_equal(np.column_stack(np.nonzero(old)), np.column_stack([steps, idx]))
    np.testing.assert_array_equal(src.sleep_input(image, 50, p, np.random.default_rng(2), shape),
                                  old)
    assert a.random() == b.random()


def test_event_engine_equals_the_raster_engine_bit_for_bit():
    """Spikes and weights of every layer, on a 4-layer net where every layer fires and
    plasticity moves weights, with steps that carry no input."""
    rng = np.random.default_rng(11)
    Ws = [rng.normal(0.002, 0.01, (16, 12)), rng.normal(0.002, 0.01, (12, 8)),
          rng.normal(0.002, 0.01, (8, 6)), rng.normal(0.002, 0.01, (6, 3))]
    X = rng.random((30, 16))
    p = src.SleepParams(beta=(1.0, 0.5, 0.5, 0.5), alpha_scale=10.0, max_rate_hz=200.0,
                        mask=2, inc=0.01, dec=0.005)
    spikes = raster_input(X.mean(0), 400, p, rng, (4, 4))
    spikes[::3] = False
    alphas = src.sleep_scales(Ws, X, p)
    W_old, s_old = raster_engine(Ws, alphas, spikes, p)
    W_new, s_new = src.run_numpy(Ws, alphas, spikes, p)
    assert all(s.sum() > 10 for s in s_old)
    for a, b in zip(s_old, s_new, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b, w0 in zip(W_old, W_new, Ws, strict=True):
        assert np.abs(a - w0).max() > 1e-3
        np.testing.assert_array_equal(a, b)
    # sleep(): the events straight to Spikes, as from_dense would make them
    r = src.sleep(Ws, X, 0, p, rng, input_spikes=spikes, alphas=alphas)
    old = src.SleepResult.from_dense(W_old, s_old, alphas, True, p.dt_s)
    for a, b in zip(r.spikes, old.spikes, strict=True):
        np.testing.assert_array_equal(a.i, b.i)
        np.testing.assert_array_equal(a.t, b.t)
        assert (a.t_stop, a.n_neurons) == (b.t_stop, b.n_neurons)


def test_sleep_draws_as_before_and_scales_match_the_float64_pass(monkeypatch):
    """A whole phase (scales, input, engine) against the raster path, with `SCREEN_MIN`
    lowered so the float32 screening runs: the same spikes; the scales equal a float64 pass
    over every sample to rounding."""
    from neurosim.snn.convert import normalisation_factors

    monkeypatch.setattr(src, "SCREEN_MIN", 1000)
    rng = np.random.default_rng(4)
    Ws = [rng.normal(0.002, 0.01, (16, 12)), rng.normal(0.002, 0.01, (12, 8)),
          rng.normal(0.002, 0.01, (8, 3))]
    X = rng.random((400, 16))
    p = src.SleepParams(beta=(1.0, 0.5, 0.5), alpha_scale=10.0, max_rate_hz=200.0, mask=2,
                        inc=0.01, dec=0.005)
    alphas = src.sleep_scales(Ws, X, p)
    exact = p.alpha_scale * normalisation_factors(Ws, X, chain="src")
    np.testing.assert_allclose(alphas, exact, rtol=1e-13, atol=0)
    a, b = np.random.default_rng(8), np.random.default_rng(8)
    r = src.sleep(Ws, X, 300, p, a, image_shape=(4, 4))
    W_old, s_old = raster_engine(Ws, alphas, raster_input(X.mean(0), 300, p, b, (4, 4)), p)
    for x, y in zip(r.rasters, s_old, strict=True):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(r.weights, W_old, strict=True):
        np.testing.assert_array_equal(x, y)
    assert a.random() == b.random()


def test_max_activations_picks_the_largest_sample(monkeypatch):
    """The float32 screen keeps every sample near the top; a layer float32 calls silent is
    measured in full; below SCREEN_MIN the float64 pass runs as it is (the digits network:
    its scales, and so its quick metrics, unchanged to the bit)."""
    monkeypatch.setattr(src, "SCREEN_MIN", 1000)
    rng = np.random.default_rng(0)
    W = [rng.normal(0, 0.1, (5, 4)), -np.abs(rng.normal(0, 0.1, (4, 2)))]  # layer 2 silent
    X = rng.random((1000, 5))
    from neurosim.snn.convert import layer_activations

    full = layer_activations(W, X)
    got = src.max_activations(W, X)
    assert got[0] == pytest.approx(full[0].max(), rel=1e-14) and got[1] == 0.0
    monkeypatch.undo()
    assert src.max_activations(W, X) == [full[0].max(), 0.0]  # exactly
