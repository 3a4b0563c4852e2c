r"""The class-incremental protocol of the sleep experiment, as library code.

Tadros, Krishnan, Ramyaa & Bazhenov (2022), Nat. Commun. 13:7742, on sklearn digits: 5 tasks of
2 classes ({0,1}, {2,3}, ...), learnt one after another by one network with 10 outputs. After
every task the network is scored by 10-way argmax on the samples of every task, giving the
accuracy matrix ``acc[k, j]`` (after task k, on task j). Conditions (`CONDITIONS`), each driven
by its own `np.random.Generator`:

- ``sequential``: plain fine-tuning on each task in turn (catastrophic forgetting);
- ``sleep``: sequential plus one SRC sleep phase (`neurosim.sleep.src`) after every task;
- ``rehearsal``: a small buffer of earlier samples is trained on with every new task;
- ``rehearsal_sleep``: both;
- ``joint``: one network trained on all tasks at once (the upper bound; one row).

The network (the digits reference, docs/sleep.md): [64, 256, 256, 10], no biases, ReLU hidden
and output, the released code's squared error on one-hot targets (``dlt_mse``), dropout 0.25,
SGD lr 0.1 momentum 0.5 with one optimiser for all tasks, batch 10, 10 epochs per task; sleep
after task k lasts ``sleep_steps + (k - 1) * sleep_steps_per_task`` steps.

Evaluation sets are passed by name (``{"validation": (X, y)}`` while tuning,
``{"test": (X, y)}`` once at the end), so a search never sees the test set.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
from threadpoolctl import threadpool_limits

from neurosim.ann import LOSSES, MLP, History, Optimizer, make_optimizer, train
from neurosim.ann.functions import UNIFORM_SCALE
from neurosim.data import one_hot, task_classes
from neurosim.sleep.src import (
    TUNED_BETA,
    SleepParams,
    SleepResult,
    dropout_units,
    sleep_network,
)
from neurosim.validation import (
    require,
    require_choice,
    require_fraction,
    require_non_negative,
    require_positive,
)

__all__ = [
    "CONDITIONS",
    "DLT_MSE",
    "INITS",
    "REFERENCE_SLEEP",
    "ConditionResult",
    "ProtocolConfig",
    "evaluate_tasks",
    "make_network",
    "make_optimizer_for",
    "rehearsal_buffer",
    "run_condition",
    "sleep_steps",
]


#: The released code's squared error (DeepLearnToolbox): `neurosim.ann.functions.dlt_mse`, a
#: ReLU output whose gradient is not gated by the ReLU, so an output silenced for a new class
#: still learns.
DLT_MSE = LOSSES["dlt_mse"]

#: Losses a config can name: the released code's (`DLT_MSE`) or the package's mean squared
#: error over samples and outputs (gradient 2/(n k) (a - y), gated by the ReLU).
LOSS_CHOICES = ("dlt_mse", "mse")

#: What the sleep parameters act on (`ProtocolConfig.sleep_units`).
SLEEP_UNITS = ("network", "released")

#: Weight initialisations (`neurosim.ann.INITIALISERS`): ``uniform`` in [-init_scale,
#: init_scale] (the released MNIST code: 0.01), or the MLP's ``he`` and ``xavier``.
INITS = ("he", "xavier", "uniform")


#: The sleep parameters a 45-trial random search on another numpy port of the released code
#: reported for digits (0.412 +- 0.038 there). Here (validation, 5 replicates, one optimiser per
#: condition; docs/sleep.md): 0.356 +- 0.089 with the released code's +-0.01 initialisation,
#: 0.361 +- 0.024 with +-0.02.
REFERENCE_SLEEP = SleepParams(max_rate_hz=35.0, inc=0.00282, dec=0.00325,
                              beta=(10.40, 1.062, 1.005), alpha_scale=77.1, mask=4)


# --- config ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProtocolConfig:
    """Network, training and sleep schedule of the class-incremental protocol."""

    hidden: tuple[int, ...] = (256, 256)  # hidden layer sizes (the digits reference)
    classes_per_task: int = 2  # 10 digits -> 5 tasks
    epochs: int = 10  # per task (and for joint training)
    batch_size: int = 10  # mini-batch size
    lr: float = 0.1  # SGD step
    momentum: float = 0.5  # heavy-ball momentum (0: plain SGD)
    dropout: float = 0.25  # hidden units silenced while training
    loss: str = "dlt_mse"  # dlt_mse (the released code's, see DLT_MSE) or mse
    init: str = "uniform"  # uniform (+-init_scale; the released code), he or xavier
    init_scale: float = 0.02  # released MNIST code: 0.01; 0.02 picked with the sleep params
    dtype: str = "float64"  # of the network; the released code runs in double
    keep_optimizer: bool = True  # one optimiser for all tasks: momentum crosses tasks and sleep
    sleep_steps: int = 600  # length of the sleep phase after the first task
    sleep_steps_per_task: int = 200  # added per later task: T_k = 600 + 200 (k - 1)
    rehearsal_fraction: float = 0.03  # of each finished class's samples kept in the buffer
    undecided: str = "wrong"  # a sample with all outputs 0 is wrong, or "first": class 0
    # (the released code's max(), which flatters task 0 of a silenced network)
    sleep_units: str = "network"  # weights the sleep values act on: network (this MLP's), or
    # released (the released code's non-inverted dropout: W / (1 - dropout) after a dropout
    # layer; `neurosim.sleep.src.dropout_units`), for the released code's values
    sleep: SleepParams = field(default_factory=SleepParams)  # the SRC phase

    def __post_init__(self):
        require(len(self.hidden) >= 1 and all(int(h) == h and h >= 1 for h in self.hidden),
                f"hidden must be >= 1 positive layer sizes, got {self.hidden}")
        require(int(self.classes_per_task) == self.classes_per_task
                and self.classes_per_task >= 1,
                f"classes_per_task must be an integer >= 1, got {self.classes_per_task}")
        require(int(self.epochs) == self.epochs and self.epochs >= 1,
                f"epochs must be an integer >= 1, got {self.epochs}")
        require(int(self.batch_size) == self.batch_size and self.batch_size >= 1,
                f"batch_size must be an integer >= 1, got {self.batch_size}")
        for name in ("lr", "init_scale", "rehearsal_fraction"):
            value = getattr(self, name)
            require(bool(np.isfinite(value)), f"{name} must be a finite number, got {value}")
        require_positive("lr", self.lr)
        require_fraction("momentum", self.momentum)
        require_fraction("dropout", self.dropout)
        require_choice("loss", self.loss, LOSS_CHOICES)
        require_choice("init", self.init, INITS)
        require_positive("init_scale", self.init_scale)
        require_choice("dtype", self.dtype, ("float32", "float64"))
        require_choice("undecided", self.undecided, ("wrong", "first"))
        require_choice("sleep_units", self.sleep_units, SLEEP_UNITS)
        require(int(self.sleep_steps) == self.sleep_steps and self.sleep_steps >= 1,
                f"sleep_steps must be an integer >= 1, got {self.sleep_steps}")
        require_non_negative("sleep_steps_per_task", self.sleep_steps_per_task)
        require(0 < self.rehearsal_fraction <= 1,
                f"rehearsal_fraction must be in (0, 1], got {self.rehearsal_fraction}")
        object.__setattr__(self, "sleep", protocol_sleep(self.sleep, self.hidden))
        require(len(self.sleep.beta) == len(self.hidden) + 1,
                f"sleep.beta needs {len(self.hidden) + 1} values (one per layer), "
                f"got {len(self.sleep.beta)}")
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))


def protocol_sleep(sleep: SleepParams, hidden) -> SleepParams:
    """`sleep` with its beta written out for the protocol's network (so config.json records
    the values used): empty (`SleepParams`' default) becomes `TUNED_BETA`, but only for the
    tuned depth of three layers. For another depth the protocol asks for sleep.beta rather
    than guess: its results are held against references that untuned thresholds would not
    reach, where a research script may take `SleepParams`' per-depth defaults."""
    if sleep.beta or len(hidden) + 1 != len(TUNED_BETA):
        return sleep
    return replace(sleep, beta=TUNED_BETA)


def sleep_steps(cfg: ProtocolConfig, k: int) -> int:
    """Length of the sleep phase after task `k` (counted from 1)."""
    return int(cfg.sleep_steps + (k - 1) * cfg.sleep_steps_per_task)


# --- pieces ------------------------------------------------------------------------------------


def make_network(cfg: ProtocolConfig, n_inputs: int, n_outputs: int,
                 rng: np.random.Generator) -> MLP:
    """The bias-free ReLU network of the protocol, initialised from `rng`.

    ``init="uniform"``: `neurosim.ann.functions.uniform` draws +-UNIFORM_SCALE, rescaled to
    +-init_scale (the same draws for every scale).
    """
    sizes = [n_inputs, *cfg.hidden, n_outputs]
    net = MLP(sizes, "relu", "relu", bias=False, init=cfg.init, dtype=cfg.dtype,
              dropout=cfg.dropout, rng=rng)
    if cfg.init == "uniform" and cfg.init_scale != UNIFORM_SCALE:
        for W in net.weights:
            W *= cfg.init_scale / UNIFORM_SCALE
    return net


def make_optimizer_for(cfg: ProtocolConfig):
    """The protocol's SGD with heavy-ball momentum, as an `neurosim.ann.Optimizer` that keeps
    its velocity from one `train_on` call to the next."""
    return make_optimizer("momentum", cfg.lr, momentum=cfg.momentum)


def train_on(net: MLP, X: np.ndarray, y: np.ndarray, cfg: ProtocolConfig,
             rng: np.random.Generator, optimizer=None) -> History:
    """Train `net` in place on (X, integer labels y) with the protocol's settings.

    `optimizer` (from `make_optimizer_for`) carries its state across calls; None makes a
    fresh one.
    """
    targets = one_hot(y, net.sizes[-1], dtype=cfg.dtype)
    opt = make_optimizer_for(cfg) if optimizer is None else optimizer
    return train(net, X, targets, loss=cfg.loss, optimizer=opt, epochs=cfg.epochs,
                 batch_size=cfg.batch_size, rng=rng)


def evaluate_tasks(net: MLP, X: np.ndarray, y: np.ndarray, groups: list[tuple[int, ...]],
                   undecided: str = "wrong") -> tuple[np.ndarray, float, float]:
    """10-way argmax accuracy on the samples of each task.

    Parameters
    ----------
    undecided : {"wrong", "first"}
        A sample whose outputs are all zero counts as wrong, or (``first``) as the lowest
        class, like the released code's ``max``; that flatters task 0 of a silenced network.

    Returns
    -------
    per_task : ndarray of shape (n_tasks,)
    overall : float
        Accuracy over all of `X`.
    undecided_fraction : float
        Fraction of samples whose outputs are all zero.
    """
    out = net.forward(X)
    silent = out.max(axis=1) <= 0
    correct = out.argmax(axis=1) == y
    if undecided == "wrong":
        correct &= ~silent
    per_task = np.array([correct[np.isin(y, g)].mean() for g in groups])
    return per_task, float(correct.mean()), float(silent.mean())


def rehearsal_buffer(y: np.ndarray, classes: tuple[int, ...], fraction: float,
                     rng: np.random.Generator) -> np.ndarray:
    """Indices into `y` of the samples kept from a finished task: `fraction` of each of its
    classes (at least one per class), drawn without replacement."""
    keep = []
    for c in classes:
        idx = np.flatnonzero(y == c)
        n = max(1, int(round(fraction * idx.size)))
        keep.append(rng.choice(idx, size=min(n, idx.size), replace=False))
    return np.sort(np.concatenate(keep))


# --- the protocol ------------------------------------------------------------------------------


@dataclass
class ConditionResult:
    """One condition's run through the tasks.

    Attributes
    ----------
    condition : str
    accuracy : dict of str -> ndarray of shape (n_rows, n_tasks)
        Per evaluation set: ``acc[k, j]`` after task k (after its sleep, if any) on task j;
        one row for ``joint``. Rows not reached (a diverged run) are NaN.
    pre_sleep : dict of str -> ndarray of shape (n_tasks, n_tasks), or None
        The same, measured just before each sleep phase (sleep conditions only).
    final : dict of str -> float
        10-way accuracy on the whole evaluation set after the last row (NaN if not reached).
    undecided : dict of str -> float
        Fraction of that set with all outputs zero at the end (see `evaluate_tasks`).
    train_seconds, sleep_seconds : list of float
        Wall time of each task's training and sleep phase.
    sleeps : list of SleepResult
        One per sleep phase: spikes per layer, scales, silent layers.
    histories : list of History
        One per training call (per task; one for ``joint``): the loss per epoch.
    weight_changes : list of list of ndarray, or None
        With ``record_weights=True``: per sleep phase, per layer, the weights' change
        (after - before), float32.
    weights_before : list of list of ndarray, or None
        With ``record_weights=True``: the weights going into each sleep phase, float32.
    optimizer : Optimizer or None
        The condition's optimiser after the last task (``keep_optimizer``): its step count
        ``t`` and momentum buffers.
    status : str
        ``COMPLETED``, or ``DIVERGED`` when training or sleep gave NaN/inf weights (the run
        stops; what was measured is kept).
    net : MLP
        The final network.
    """

    condition: str
    accuracy: dict[str, np.ndarray]
    pre_sleep: dict[str, np.ndarray] | None
    final: dict[str, float]
    undecided: dict[str, float]
    train_seconds: list[float]
    sleep_seconds: list[float]
    sleeps: list[SleepResult]
    status: str
    net: MLP
    histories: list[History] = field(default_factory=list)
    weight_changes: list[list[np.ndarray]] | None = None
    weights_before: list[list[np.ndarray]] | None = None
    optimizer: Optimizer | None = None


def _tasks(y: np.ndarray, cfg: ProtocolConfig) -> list[tuple[int, ...]]:
    return task_classes(y, cfg.classes_per_task)


def run_condition(
    condition: str,
    X_train: np.ndarray,
    y_train: np.ndarray,
    eval_sets: Mapping[str, tuple[np.ndarray, np.ndarray]],
    cfg: ProtocolConfig,
    rng: np.random.Generator,
    *,
    image_shape: tuple[int, int] | None = (8, 8),
    n_outputs: int | None = None,
    engine: str | None = None,
    record_weights: bool = False,
    blas_threads: int | None = 1,
) -> ConditionResult:
    """Run one condition of the protocol.

    One optimiser (`make_optimizer_for`) serves every task of the condition, so its momentum
    carries across tasks and sleep phases as in the released code (``cfg.keep_optimizer``;
    false: a fresh one per task).

    Parameters
    ----------
    condition : str
        A key of `CONDITIONS`.
    X_train : ndarray of shape (n, n_inputs), values in [0, 1]
    y_train : ndarray of shape (n,) of int classes
    eval_sets : mapping of name -> (X, y)
        Scored after every task: pass the validation split while tuning, the test split once.
    cfg : ProtocolConfig
    rng : numpy.random.Generator
        This condition's own generator: initial weights, batches, dropout, buffer, sleep input.
    image_shape : (rows, cols), optional
        Of one input, for the sleep input window.
    n_outputs : int, optional
        Output units (default: number of classes in `y_train`).
    engine : str, optional
        Sleep engine (``numpy`` or ``brian2``); default ``cfg.sleep.engine``.
    record_weights : bool
        Keep each sleep phase's weights before and their change (`ConditionResult`).
    blas_threads : int or None
        BLAS threads for everything in the condition (scoring too; training and sleep hold
        one thread by themselves); None leaves BLAS alone. Two threads on a loaded 2-core
        machine were several times slower on these small matrices, with the same results.
    """
    threads = (threadpool_limits(limits=blas_threads) if blas_threads is not None
               else contextlib.nullcontext())
    with threads:
        return _run_condition(condition, X_train, y_train, eval_sets, cfg, rng, image_shape,
                              n_outputs, engine, record_weights)


def _run_condition(condition, X_train, y_train, eval_sets, cfg, rng, image_shape, n_outputs,
                   engine, record_weights) -> ConditionResult:
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition '{condition}'; choose from {', '.join(CONDITIONS)}")
    use_sleep, use_buffer, joint = CONDITIONS[condition]
    X_train = np.asarray(X_train, dtype=cfg.dtype)
    y_train = np.asarray(y_train, dtype=np.int64)
    groups = _tasks(y_train, cfg)
    n_tasks = len(groups)
    n_out = int(n_outputs) if n_outputs is not None else int(y_train.max()) + 1
    net = make_network(cfg, X_train.shape[1], n_out, rng)
    optimizer = make_optimizer_for(cfg)
    n_rows = 1 if joint else n_tasks
    acc = {name: np.full((n_rows, n_tasks), np.nan) for name in eval_sets}
    pre = {name: np.full((n_tasks, n_tasks), np.nan) for name in eval_sets} if use_sleep else None
    final, undecided = dict.fromkeys(eval_sets, np.nan), dict.fromkeys(eval_sets, np.nan)
    train_s, sleep_s, sleeps, histories, status = [], [], [], [], "COMPLETED"
    changes: list[list[np.ndarray]] | None = [] if record_weights and use_sleep else None
    befores: list[list[np.ndarray]] | None = [] if record_weights and use_sleep else None
    eval_sets = {name: (np.asarray(X, cfg.dtype), np.asarray(y)) for name, (X, y)
                 in eval_sets.items()}

    def score(into: dict, row: int) -> None:
        for name, (X, y) in eval_sets.items():
            per_task, overall, und = evaluate_tasks(net, X, y, groups, cfg.undecided)
            into[name][row] = per_task
            if into is acc:
                final[name], undecided[name] = overall, und

    def fit(X: np.ndarray, y: np.ndarray) -> str:
        t0 = time.perf_counter()
        hist = train_on(net, X, y, cfg, rng, optimizer if cfg.keep_optimizer else None)
        train_s.append(time.perf_counter() - t0)
        histories.append(hist)
        return hist.status

    def result() -> ConditionResult:
        return ConditionResult(condition, acc, pre, final, undecided, train_s, sleep_s, sleeps,
                               status, net, histories, changes, befores,
                               optimizer if cfg.keep_optimizer else None)

    if joint:
        status = fit(X_train, y_train)
        if status == "COMPLETED":
            score(acc, 0)
        return result()

    buffer = np.empty(0, dtype=np.int64)
    seen = np.zeros(len(y_train), dtype=bool)
    for k, group in enumerate(groups):
        task = np.isin(y_train, group)
        seen |= task
        idx = np.flatnonzero(task)
        if use_buffer and buffer.size:
            idx = np.concatenate([idx, buffer])
        status = fit(X_train[idx], y_train[idx])
        if status != "COMPLETED":
            break
        if use_sleep:
            score(pre, k)
            before = [W.copy() for W in net.weights] if record_weights else None
            t0 = time.perf_counter()
            units = (dropout_units(len(net.weights), cfg.dropout)
                     if cfg.sleep_units == "released" else None)
            slept = sleep_network(net, X_train[seen], sleep_steps(cfg, k + 1), cfg.sleep, rng,
                                  image_shape=image_shape, engine=engine, units=units)
            sleep_s.append(time.perf_counter() - t0)
            sleeps.append(slept)
            if not slept.finite:
                status = "DIVERGED"
                break
            if before is not None:
                befores.append([W.astype(np.float32) for W in before])
                changes.append([(W - B).astype(np.float32)
                                for W, B in zip(net.weights, before, strict=True)])
        score(acc, k)
        if use_buffer:
            new = rehearsal_buffer(y_train, group, cfg.rehearsal_fraction, rng)
            buffer = np.concatenate([buffer, new])
    return result()


#: condition -> (sleep after each task, rehearsal buffer, joint training)
CONDITIONS: dict[str, tuple[bool, bool, bool]] = {
    "sequential": (False, False, False),
    "sleep": (True, False, False),
    "rehearsal": (False, True, False),
    "rehearsal_sleep": (True, True, False),
    "joint": (False, False, True),
}
