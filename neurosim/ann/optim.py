r"""Update rules (SGD, momentum, Nesterov, RMSprop, Adam), weight decay and learning-rate schedules.

An `Optimizer` holds hyper-parameters, a step counter and per-parameter state as plain arrays;
``step(params, grads)`` updates the parameters in place and allocates nothing after the first
call. Full-batch gradient descent is ``sgd`` (alias ``gd``) with the whole set as the batch.

Weight decay is *coupled*: the penalty's gradient is added to the weights' gradient before the
update rule, as in classic SGD and Keras' kernel regularisers (not AdamW's decoupled decay).
With penalty :math:`\tfrac{\lambda_2}{2}\lVert w\rVert^2 + \lambda_1 \lVert w\rVert_1`

.. math:: g \leftarrow g + \lambda_2 w + \lambda_1 \operatorname{sign}(w)

and biases are never decayed (only the first `n_decayed` arrays, the weights).

Every update is a short sequence of in-place numpy ufuncs (``np.multiply(x, a, out=tmp)``,
``y += tmp``), single-threaded and vectorised. No BLAS level-1 call (``axpy``/``scal``) is used:
scipy's are in scipy's own copy of OpenBLAS, a second BLAS runtime beside numpy's with its own
pool of spin-waiting threads. With both pools at two threads on a two-core machine, every switch
between a numpy product and a scipy ``axpy`` left the other pool's threads spinning on the cores
the work needed: training ran ~15x slower at ``blas_threads=2`` than at 1 (issue 18). Scalars
are passed as Python floats, so float32 arrays are updated in float32 (NEP 50), never through
float64 temporaries.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from neurosim.validation import lookup

RESCALE_BELOW = 1e-6  # Adam folds the moment decay into a scale; fold it back below this


def axpy(a: float, x: np.ndarray, y: np.ndarray, scratch: np.ndarray) -> None:
    """``y += a * x`` in place; `scratch` (shaped like `x`, may be `x` itself when `x` is spent)
    holds ``a * x``."""
    if a == 1.0:
        np.add(y, x, out=y)
        return
    np.multiply(x, float(a), out=scratch)
    np.add(y, scratch, out=y)


def scal(a: float, x: np.ndarray) -> None:
    """``x *= a`` in place."""
    np.multiply(x, float(a), out=x)


@dataclass
class Optimizer:
    """Hyper-parameters, step counter and per-parameter state of one update rule.

    Attributes
    ----------
    rule : str
        A key of `OPTIMIZERS`.
    lr : float
        Current learning rate (a schedule may change it between epochs).
    momentum : float
        Momentum coefficient mu of ``momentum`` and ``nesterov``.
    beta1, beta2 : float
        Adam's decay rates of the first and second moment estimates.
    rho : float
        RMSprop's decay rate of the mean squared gradient.
    eps : float
        Added to the denominators of RMSprop and Adam.
    l1, l2 : float
        Weight-decay strengths (coupled, see the module docstring).
    n_decayed : int or None
        Weight decay applies to the first `n_decayed` arrays of `params` (the weights, when
        `params` is ``MLP.params``: pass ``len(net.weights)``); None: to all of them.
    initial_lr : float
        The learning rate it was made with: a schedule scales this one (`lr` is the current).
    t : int
        Steps taken.
    state : dict of str -> list of ndarray
        Per-parameter buffers of the rule (velocity, moments), created on first use.
    scalars : dict of str -> float
        Scalar state of the rule (Adam's moment scales).
    """

    rule: str
    lr: float
    momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    rho: float = 0.9
    eps: float = 1e-8
    l1: float = 0.0
    l2: float = 0.0
    n_decayed: int | None = None
    initial_lr: float | None = None
    t: int = 0
    state: dict[str, list[np.ndarray]] = field(default_factory=dict)
    scalars: dict[str, float] = field(default_factory=dict)

    def __post_init__(self):
        if self.initial_lr is None:
            self.initial_lr = self.lr

    def check_state(self, params: list[np.ndarray]) -> None:
        """Raise ValueError if the state held is for parameters of other shapes (an optimiser
        reused for another network)."""
        for name, buffers in self.state.items():
            shapes = [b.shape for b in buffers]
            if shapes != [p.shape for p in params]:
                raise ValueError(
                    f"this optimiser's '{name}' state has shapes {shapes}, but the parameters "
                    f"have {[p.shape for p in params]}: use one optimiser per network"
                )

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        """Apply one update to `params` in place.

        Parameters
        ----------
        params : list of ndarray
        grads : list of ndarray, shapes as `params`
            Overwritten (weight decay and the rules work in them to avoid allocations).
        """
        scratch = self.buffers("scratch", params, zero=False)
        self.t += 1
        n_decayed = len(params) if self.n_decayed is None else self.n_decayed
        for p, g, tmp in zip(params[:n_decayed], grads, scratch, strict=False):
            if self.l2:
                axpy(self.l2, p, g, tmp)
            if self.l1:
                np.sign(p, out=tmp)
                tmp *= self.l1
                g += tmp
        lookup(OPTIMIZERS, self.rule, "optimizer")(self, params, grads)

    def buffers(self, name: str, params: list[np.ndarray], zero: bool = True) -> list[np.ndarray]:
        """The state arrays `name`, one per parameter (same shape and layout), made once."""
        if name not in self.state:
            make = np.zeros_like if zero else np.empty_like
            self.state[name] = [make(p) for p in params]
        return self.state[name]


def sgd(opt: Optimizer, params, grads) -> None:
    r"""Plain (stochastic) gradient descent; full-batch GD when the batch is the whole set.

    .. math:: w \leftarrow w - \eta\, g
    """
    for p, g in zip(params, grads, strict=True):
        axpy(-opt.lr, g, p, g)  # g is spent: it holds -lr g


def momentum(opt: Optimizer, params, grads) -> None:
    r"""Heavy-ball momentum (Polyak 1964).

    .. math:: v \leftarrow \mu v - \eta g,\quad w \leftarrow w + v
    """
    vs = opt.buffers("v", params)
    for p, g, v, tmp in zip(params, grads, vs, opt.state["scratch"], strict=True):
        scal(opt.momentum, v)
        axpy(-opt.lr, g, v, g)
        axpy(1.0, v, p, tmp)  # a plain add: no scratch written


def nesterov(opt: Optimizer, params, grads) -> None:
    r"""Nesterov momentum in the form of Sutskever et al. 2013, gradient taken at w.

    .. math:: v \leftarrow \mu v - \eta g,\quad w \leftarrow w + \mu v - \eta g

    (the same as PyTorch's ``nesterov=True`` with its velocity scaled by -eta).
    """
    vs = opt.buffers("v", params)
    for p, g, v, tmp in zip(params, grads, vs, opt.state["scratch"], strict=True):
        scal(opt.momentum, v)
        axpy(-opt.lr, g, v, g)  # g now holds -lr g
        axpy(1.0, g, p, g)
        axpy(opt.momentum, v, p, tmp)


def rmsprop(opt: Optimizer, params, grads) -> None:
    r"""RMSprop (Tieleman & Hinton 2012, Coursera lecture 6.5).

    .. math:: s \leftarrow \rho s + (1-\rho) g^2,\quad
              w \leftarrow w - \eta\, g / (\sqrt{s} + \epsilon)
    """
    ss = opt.buffers("s", params)
    for p, g, s, tmp in zip(params, grads, ss, opt.state["scratch"], strict=True):
        np.multiply(g, g, out=tmp)
        scal(opt.rho, s)
        axpy(1 - opt.rho, tmp, s, tmp)
        np.sqrt(s, out=tmp)
        tmp += opt.eps
        np.divide(g, tmp, out=tmp)
        axpy(-opt.lr, tmp, p, tmp)


def adam(opt: Optimizer, params, grads) -> None:
    r"""Adam with bias correction (Kingma & Ba 2015, Algorithm 1).

    .. math:: m \leftarrow \beta_1 m + (1-\beta_1) g,\;
              v \leftarrow \beta_2 v + (1-\beta_2) g^2,\;
              w \leftarrow w - \eta\, \frac{m / (1-\beta_1^t)}{\sqrt{v / (1-\beta_2^t)} + \epsilon}

    Implementation: the moments are stored divided by running scales, ``m = s_1 M`` and
    ``v = s_2 V`` with :math:`s_k = \beta_k^{\,t - t_k}` (`adam_moments` undoes it). The
    decays then cost no pass over the parameters (only the scales shrink) and, with
    :math:`c_k = 1 - \beta_k^t` and :math:`\kappa = \sqrt{s_2 / c_2}`, the update is the
    algebraically identical

    .. math:: M \mathrel{+}= \tfrac{1-\beta_1}{s_1} g,\;
              V \mathrel{+}= \tfrac{1-\beta_2}{s_2} g^2,\;
              w \mathrel{-}= \frac{\eta s_1}{c_1 \kappa}\, \frac{M}{\sqrt V + \epsilon / \kappa}

    ten in-place ufunc passes over the parameters instead of twelve (the two decays). A scale is
    folded back into its buffer when it drops below 1e-6 (every ~130 steps for
    beta1 = 0.9), so M and V stay within a factor 1e6 of m and v.
    """
    b1, b2, t = opt.beta1, opt.beta2, opt.t
    ms, vs = opt.buffers("m", params), opt.buffers("v", params)
    s1, s2 = opt.scalars.get("m_scale", 1.0) * b1, opt.scalars.get("v_scale", 1.0) * b2
    if s1 < RESCALE_BELOW:  # includes beta1 = 0
        for m in ms:
            scal(s1, m)
        s1 = 1.0
    if s2 < RESCALE_BELOW:
        for v in vs:
            scal(s2, v)
        s2 = 1.0
    opt.scalars["m_scale"], opt.scalars["v_scale"] = s1, s2
    c1, c2 = 1 - b1**t, 1 - b2**t
    kappa = math.sqrt(s2 / c2)  # sqrt(v_hat) = kappa * sqrt(V)
    step = opt.lr * s1 / (c1 * kappa)
    for p, g, m, v, tmp in zip(params, grads, ms, vs, opt.state["scratch"], strict=True):
        axpy((1 - b1) / s1, g, m, tmp)
        np.square(g, out=g)  # g is spent from here on: it holds g^2, then its scaled copy
        axpy((1 - b2) / s2, g, v, g)
        np.sqrt(v, out=tmp)
        tmp += opt.eps / kappa
        np.divide(m, tmp, out=tmp)
        axpy(-step, tmp, p, tmp)


def adam_moments(opt: Optimizer) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Adam's first and second moment estimates m and v (copies, not bias-corrected)."""
    s1, s2 = opt.scalars.get("m_scale", 1.0), opt.scalars.get("v_scale", 1.0)
    return [s1 * m for m in opt.state.get("m", [])], [s2 * v for v in opt.state.get("v", [])]


#: The usual learning rate of each rule (Keras' defaults), used when none is given.
DEFAULT_LR = {"gd": 0.01, "sgd": 0.01, "momentum": 0.01, "nesterov": 0.01, "rmsprop": 0.001,
              "adam": 0.001}

#: Arrays the size of the parameters each rule keeps as state (velocity, Adam's two moments).
STATE_ARRAYS = {"gd": 0, "sgd": 0, "momentum": 1, "nesterov": 1, "rmsprop": 1, "adam": 2}

OPTIMIZERS: dict[str, Callable[[Optimizer, list, list], None]] = {
    "gd": sgd,
    "sgd": sgd,
    "momentum": momentum,
    "nesterov": nesterov,
    "rmsprop": rmsprop,
    "adam": adam,
}


def make_optimizer(rule: str, lr: float, **kwargs) -> Optimizer:
    """An `Optimizer` for `rule` (a key of `OPTIMIZERS`), hyper-parameters checked.

    Parameters
    ----------
    rule : str
    lr : float
        Learning rate, > 0.
    **kwargs
        Any other `Optimizer` field (momentum, beta1, beta2, rho, eps, l1, l2, n_decayed).
    """
    lookup(OPTIMIZERS, rule, "optimizer")
    opt = Optimizer(rule=rule, lr=float(lr), **kwargs)
    checks = {
        "lr": opt.lr > 0,
        "momentum": 0 <= opt.momentum < 1,
        "beta1": 0 <= opt.beta1 < 1,
        "beta2": 0 <= opt.beta2 < 1,
        "rho": 0 <= opt.rho < 1,
        "eps": opt.eps >= 0,
        "l1": opt.l1 >= 0,
        "l2": opt.l2 >= 0,
    }
    ranges = {"lr": "> 0", "eps": ">= 0", "l1": ">= 0", "l2": ">= 0"}
    for name, ok in checks.items():
        if not ok:
            allowed = ranges.get(name, "in [0, 1)")
            raise ValueError(f"{name} must be {allowed}, got {getattr(opt, name)}")
    return opt


# --- learning-rate schedules: (epoch from 0, base lr, total epochs, **kwargs) -> lr ------------
# Unknown keyword arguments raise TypeError (a misspelt `step_size` must not pass silently).


def constant(epoch: int, lr: float, epochs: int) -> float:
    r""".. math:: \eta_e = \eta_0"""
    return lr


def step_decay(
    epoch: int, lr: float, epochs: int, *, step_size: int = 10, gamma: float = 0.5
) -> float:
    r"""Multiply the rate by `gamma` every `step_size` epochs.

    .. math:: \eta_e = \eta_0\, \gamma^{\lfloor e / k \rfloor}
    """
    if step_size < 1:
        raise ValueError(f"step_size must be >= 1, got {step_size}")
    return lr * gamma ** (epoch // step_size)


def cosine(epoch: int, lr: float, epochs: int, *, lr_min: float = 0.0) -> float:
    r"""Cosine annealing to a floor over the run (Loshchilov & Hutter 2017, one half period).

    .. math:: \eta_e = \eta_{min} + \tfrac12 (\eta_0 - \eta_{min})(1 + \cos(\pi e / E))
    """
    return lr_min + 0.5 * (lr - lr_min) * (1 + math.cos(math.pi * epoch / max(epochs, 1)))


SCHEDULES: dict[str, Callable[..., float]] = {
    "constant": constant,
    "step": step_decay,
    "cosine": cosine,
}
