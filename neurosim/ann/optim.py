"""Optimisers, weight decay and learning-rate schedules.

An optimiser's state is plain arrays, one per parameter; `step` updates the parameters in place
(the hot loop allocates nothing per step). Weight decay is *coupled*: the penalty's gradient is
added to the weights' gradient before the update rule (as in classic SGD and Keras' kernel
regularisers), and biases are never decayed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.linalg.blas import get_blas_funcs

from neurosim.ann.functions import lookup


@dataclass
class Optimizer:
    """Hyper-parameters, per-parameter state and step counter of one update rule.

    Attributes
    ----------
    rule : str
        A key of `OPTIMIZERS`.
    lr : float
        Current learning rate (a schedule may change it between epochs).
    momentum, beta1, beta2, eps, rho : float
        Rule constants (see each rule's docstring).
    l1, l2 : float
        Weight-decay strengths, applied to the first `n_decayed` parameters (the weights).
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
    t: int = 0
    state: dict[str, list[np.ndarray]] = field(default_factory=dict)
    scratch: list[np.ndarray] = field(default_factory=list)

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        """Apply one update to `params` in place (gradients may be modified)."""
        if not self.scratch:
            self.scratch = [np.empty_like(p) for p in params]
        self.t += 1
        n_decayed = len(params) if self.n_decayed is None else self.n_decayed
        for k in range(n_decayed):
            if self.l2:
                grads[k] += self.l2 * params[k]
            if self.l1:
                grads[k] += self.l1 * np.sign(params[k])
        lookup(OPTIMIZERS, self.rule, "optimizer")(self, params, grads)

    def buffers(self, name: str, params: list[np.ndarray]) -> list[np.ndarray]:
        if name not in self.state:
            self.state[name] = [np.zeros_like(p) for p in params]
        return self.state[name]


def sgd(opt: Optimizer, params, grads) -> None:
    r"""Plain (stochastic) gradient descent; full-batch GD when the batch is the whole set.

    .. math:: w \leftarrow w - \eta\, g
    """
    for p, g in zip(params, grads, strict=True):
        g *= opt.lr
        p -= g


def momentum(opt: Optimizer, params, grads) -> None:
    r"""Heavy-ball momentum (Polyak 1964).

    .. math:: v \leftarrow \mu v - \eta g,\quad w \leftarrow w + v
    """
    for p, g, v in zip(params, grads, opt.buffers("v", params), strict=True):
        v *= opt.momentum
        g *= opt.lr
        v -= g
        p += v


def nesterov(opt: Optimizer, params, grads) -> None:
    r"""Nesterov momentum in the Sutskever et al. 2013 form, gradient taken at w.

    .. math:: v \leftarrow \mu v - \eta g,\quad w \leftarrow w + \mu v - \eta g
    """
    for p, g, v, tmp in zip(params, grads, opt.buffers("v", params), opt.scratch, strict=True):
        g *= opt.lr
        v *= opt.momentum
        v -= g
        np.multiply(v, opt.momentum, out=tmp)
        tmp -= g
        p += tmp


def rmsprop(opt: Optimizer, params, grads) -> None:
    r"""RMSprop (Tieleman & Hinton 2012).

    .. math:: s \leftarrow \rho s + (1-\rho) g^2,\;
              w \leftarrow w - \eta\, g / (\sqrt{s} + \epsilon)
    """
    for p, g, s, tmp in zip(params, grads, opt.buffers("s", params), opt.scratch, strict=True):
        s *= opt.rho
        np.multiply(g, g, out=tmp)
        tmp *= 1 - opt.rho
        s += tmp
        np.sqrt(s, out=tmp)
        tmp += opt.eps
        np.divide(g, tmp, out=tmp)
        tmp *= opt.lr
        p -= tmp


def _blas(x: np.ndarray):
    """BLAS ``axpy`` and ``scal`` for a contiguous 1-D float32/float64 array, else None."""
    if x.ndim != 1 or not x.flags.c_contiguous or x.dtype.char not in "fd":
        return None
    axpy, scal = get_blas_funcs(("axpy", "scal"), (x,))
    return axpy, scal


def adam(opt: Optimizer, params, grads) -> None:
    r"""Adam with bias correction (Kingma & Ba 2015).

    .. math:: m \leftarrow \beta_1 m + (1-\beta_1) g,\; v \leftarrow \beta_2 v + (1-\beta_2) g^2,\;
              w \leftarrow w - \eta \frac{m / (1-\beta_1^t)}{\sqrt{v / (1-\beta_2^t)} + \epsilon}

    Computed as the algebraically identical
    :math:`w \leftarrow w - \eta \frac{\sqrt{c_2}}{c_1} \frac{m}{\sqrt{v} + \epsilon \sqrt{c_2}}`
    with :math:`c_k = 1-\beta_k^t`, which saves one pass over the parameters; on the training
    loop's flat buffers the scaled additions are single BLAS ``axpy`` / ``scal`` calls.
    """
    b1, b2, t = opt.beta1, opt.beta2, opt.t
    sqrt_c2 = math.sqrt(1 - b2**t)
    step = opt.lr * sqrt_c2 / (1 - b1**t)
    eps = opt.eps * sqrt_c2
    ms, vs = opt.buffers("m", params), opt.buffers("v", params)
    for p, g, m, v, tmp in zip(params, grads, ms, vs, opt.scratch, strict=True):
        blas = _blas(p) if p.dtype == g.dtype and g.flags.c_contiguous else None
        np.multiply(g, g, out=tmp)
        if blas is not None:  # in place: f2py overwrites a contiguous y of the right type
            axpy, scal = blas
            scal(b1, m)
            axpy(g, m, a=1 - b1)
            scal(b2, v)
            axpy(tmp, v, a=1 - b2)
        else:
            m *= b1
            m += (1 - b1) * g
            v *= b2
            tmp *= 1 - b2
            v += tmp
        np.sqrt(v, out=tmp)
        tmp += eps
        np.divide(m, tmp, out=tmp)
        if blas is not None:
            blas[0](tmp, p, a=-step)
        else:
            tmp *= step
            p -= tmp


OPTIMIZERS: dict[str, Callable[[Optimizer, list, list], None]] = {
    "gd": sgd,
    "sgd": sgd,
    "momentum": momentum,
    "nesterov": nesterov,
    "rmsprop": rmsprop,
    "adam": adam,
}


def make_optimizer(rule: str, lr: float, **kwargs) -> Optimizer:
    """An `Optimizer` for `rule` (a key of `OPTIMIZERS`); unknown names raise ValueError."""
    lookup(OPTIMIZERS, rule, "optimizer")
    if lr <= 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    return Optimizer(rule=rule, lr=lr, **kwargs)


# --- learning-rate schedules: epoch (0-based), base lr -> lr -----------------------------------


def constant(epoch: int, lr: float, epochs: int, **_) -> float:
    return lr


def step_decay(epoch: int, lr: float, epochs: int, *, step_size: int = 10, gamma: float = 0.5,
               **_) -> float:
    r""".. math:: \eta_e = \eta_0 \gamma^{\lfloor e / k \rfloor}"""
    return lr * gamma ** (epoch // step_size)


def cosine(epoch: int, lr: float, epochs: int, *, lr_min: float = 0.0, **_) -> float:
    r"""Cosine annealing (Loshchilov & Hutter 2017), one half period over the run.

    .. math:: \eta_e = \eta_{min} + \tfrac12(\eta_0 - \eta_{min})(1 + \cos(\pi e / E))
    """
    return lr_min + 0.5 * (lr - lr_min) * (1 + math.cos(math.pi * epoch / max(epochs, 1)))


SCHEDULES: dict[str, Callable[..., float]] = {
    "constant": constant,
    "step": step_decay,
    "cosine": cosine,
}
