"""Hopfield network with Hebbian storage and "dream" unlearning (numpy only).

Hopfield, Feinstein & Palmer (1983, Nature 304:158) and Crick & Mitchison (1983, Nature 304:111)
proposed that REM sleep *removes* unwanted memories: start the network from noise (a dream),
let it fall into whatever attractor is nearest, and weaken that attractor with a small
anti-Hebbian step. Most random starts end in spurious attractors (mixtures, spin-glass states),
so these are unlearned most; stored memories become more accessible. Too much unlearning
erodes the memories as well and the network breaks down (van Hemmen et al. 1990).

This module owns the maths and the measurements:

- storage: `random_patterns`, `hebb_weights`; dynamics: `relax` (asynchronous sign updates in a
  seeded random order, many states at once), `energy`;
- unlearning: `unlearn_step` (pure), `dream`, `sleep`;
- measurements: `recall` (overlap from noisy cues), `census` (where random starts end),
  `stable_fraction`; and `unlearning_curves`, the load x dreams grid an experiment plots, with
  `dreams_for` placing the dream counts of every load on one epsilon * D / P axis.

Conventions: neurons are +-1, couplings symmetric with zero diagonal, no thresholds. A neuron
keeps its state when its field is zero. Couplings carry the 1/N of the Hebb rule, and so does
each unlearning step, so ``epsilon`` is measured in units of one stored pattern: HFP's
``T_ij = sum xi_i xi_j`` with ``dT_ij = -epsilon s_i s_j`` gives exactly the same dynamics
(the sign of a field does not change when all couplings are scaled by 1/N).

Measured (N=100, 5 networks; N=32, 20 networks): the dream axis scales as epsilon * D / P, the
weight unlearned over the weight stored. Recall from 10%-noisy cues is perfect from ~0.25 to
~1.1 at every load up to 0.25 N; random starts reach memories most often near 0.5; the
memories break down at ~1.1-1.25 (N=100) or ~1.0-1.1 (N=32), sharply for small epsilon.
Unlearning shrinks the spurious states' total basin while their number grows: the landscape
beside the memories fragments into many shallow minima.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurosim.plasticity import rules
from neurosim.validation import require, require_fraction, require_non_negative

TIE = 1e-9  # |field| below this counts as zero (state kept): incremental field updates leave
#             ~1e-15 residues where the exact Hebbian field is 0 (it is a multiple of 1/N)
SPURIOUS = -1  # census label of a fixed point that is no stored memory (nor its negation)
NONCONVERGED = -2  # census label of a start still changing after the sweep cap


@dataclass(frozen=True)
class HopfieldParams:
    """Network size, unlearning rate and measurement settings of the dream-unlearning curves."""

    n_neurons: int = 100  # N; Hebbian capacity ~0.138 N patterns (Amit, Gutfreund & Sompolinsky)
    epsilon: float = 0.01  # unlearning per dream, in units of one stored pattern (HFP 1983: 0.01)
    max_sweeps: int = 100  # asynchronous sweeps before a state counts as non-converged; from a
    #                        random start at N=100 relaxation takes ~5-10 sweeps
    cue_flip: float = 0.1  # fraction of a pattern's bits flipped in a recall cue
    n_cues: int = 10  # noisy cues per stored pattern in a recall test
    n_starts: int = 2000  # random starts in an attractor census
    memory_overlap: float = 0.9  # |m| from which a fixed point counts as a memory's retrieval
    #                              state: AGS retrieval states have m ~0.97 at 0.138 N,
    #                              symmetric 3-mixtures 0.5, spin-glass states ~0

    def __post_init__(self):
        require(self.n_neurons >= 2, f"n_neurons must be >= 2, got {self.n_neurons}")
        require_non_negative("epsilon", self.epsilon)
        require(self.max_sweeps >= 1, f"max_sweeps must be >= 1, got {self.max_sweeps}")
        require_fraction("cue_flip", self.cue_flip, open_right=False)
        require(self.n_cues >= 1, f"n_cues must be >= 1, got {self.n_cues}")
        require(self.n_starts >= 1, f"n_starts must be >= 1, got {self.n_starts}")
        require(0 < self.memory_overlap <= 1,
                f"memory_overlap must be in (0, 1], got {self.memory_overlap}")


# --- storage and dynamics ----------------------------------------------------------------------


def random_states(n_states: int, n_neurons: int, rng: np.random.Generator) -> np.ndarray:
    """Independent unbiased +-1 states, ndarray of shape (n_states, n_neurons), float."""
    return rng.choice(np.array([-1.0, 1.0]), size=(n_states, n_neurons))


random_patterns = random_states  # the stored memories are random states too (P of them)


def hebb_weights(patterns: np.ndarray) -> np.ndarray:
    r"""Hebbian couplings storing `patterns` (Hopfield 1982).

    .. math:: W_{ij} = \frac{1}{N} \sum_{\mu=1}^{P} \xi_i^\mu \xi_j^\mu,\quad W_{ii} = 0

    Parameters
    ----------
    patterns : ndarray of shape (n_patterns, n_neurons)
        Rows of +-1.

    Returns
    -------
    ndarray of shape (n_neurons, n_neurons), symmetric, zero diagonal.
    """
    xi = np.asarray(patterns, dtype=float)
    return rules.hopfield(None, xi, xi)


def energy(W: np.ndarray, S: np.ndarray) -> np.ndarray:
    r"""Hopfield energy of each state; asynchronous dynamics never increase it.

    .. math:: E(s) = -\tfrac{1}{2} \sum_{ij} W_{ij} s_i s_j

    Parameters
    ----------
    W : ndarray of shape (n_neurons, n_neurons)
    S : ndarray of shape (n_neurons,) or (n_states, n_neurons)

    Returns
    -------
    float ndarray of shape S.shape[:-1]
    """
    S = np.asarray(S, dtype=float)
    return -0.5 * np.einsum("...i,ij,...j->...", S, W, S)


def relax(W: np.ndarray, S: np.ndarray, rng: np.random.Generator,
          max_sweeps: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Asynchronous zero-temperature dynamics until a fixed point or `max_sweeps` sweeps.

    .. math:: s_i \leftarrow \operatorname{sign}\Big(\sum_j W_{ij} s_j\Big)
              \quad\text{(one neuron at a time; } s_i \text{ kept when the field is 0)}

    Each sweep visits every neuron once in a fresh random order drawn from `rng`; all states of
    a batch share that order (each still follows exact sequential dynamics). A state has
    converged after a sweep that changed nothing. With symmetric couplings and a zero diagonal
    every flip lowers the energy, so only the cap can stop a state short of a fixed point.

    Parameters
    ----------
    W : ndarray of shape (n_neurons, n_neurons)
    S : ndarray of shape (n_neurons,) or (n_states, n_neurons)
        Start states, +-1. Not modified.
    rng : numpy.random.Generator
        Draws one permutation per sweep (same draws for one state or a batch of one).
    max_sweeps : int

    Returns
    -------
    S_final : ndarray of shape S.shape
    converged : bool ndarray of shape S.shape[:-1]
    n_sweeps : int ndarray of shape S.shape[:-1]
        Sweeps run, the final sweep that changed nothing included; `max_sweeps` if not converged.
    """
    W = np.asarray(W, dtype=float)
    S = np.array(S, dtype=float)  # a copy: the caller's starts stay as they were
    if S.ndim == 1:
        s, conv, sweeps = _relax_one(W, S, rng, max_sweeps)
        return s, np.array(conv), np.array(sweeps)
    return _relax_batch(W, S, rng, max_sweeps)


def _relax_one(W, s, rng, max_sweeps):
    """One state: jump straight to the next unstable neuron in the sweep order (same result as
    visiting every neuron, ~10x faster in Python when few neurons flip)."""
    WT = np.ascontiguousarray(W.T)  # WT[i] = column i: how flipping s_i moves every field
    h = W @ s
    n = len(s)
    for sweep in range(1, max_sweeps + 1):
        order = rng.permutation(n)
        k, flips = 0, 0
        while k < n:
            rest = order[k:]
            unstable = np.flatnonzero(s[rest] * h[rest] < -TIE)
            if unstable.size == 0:
                break
            j = k + unstable[0]
            i = order[j]
            s[i] = -s[i]
            h += (2.0 * s[i]) * WT[i]
            k, flips = j + 1, flips + 1
        if flips == 0:
            return s, True, sweep
    return s, False, max_sweeps


def _relax_batch(W, S, rng, max_sweeps):
    """Many states: one neuron at a time for the whole batch, fields updated incrementally;
    converged states leave the batch after each sweep."""
    WT = np.ascontiguousarray(W.T)
    H = S @ W.T  # H[b, i]: field on neuron i in state b
    n_states, n = S.shape
    converged = np.zeros(n_states, dtype=bool)
    n_sweeps = np.full(n_states, max_sweeps)
    active = np.arange(n_states)
    for sweep in range(1, max_sweeps + 1):
        if active.size == 0:
            break
        order = rng.permutation(n)
        Sa, Ha = S[active], H[active]
        changed = np.zeros(active.size, dtype=bool)
        for i in order:
            flip = np.flatnonzero(Sa[:, i] * Ha[:, i] < -TIE)
            if flip.size:
                Sa[flip, i] = -Sa[flip, i]
                Ha[flip] += (2.0 * Sa[flip, i])[:, None] * WT[i]
                changed[flip] = True
        S[active], H[active] = Sa, Ha
        done = active[~changed]
        converged[done] = True
        n_sweeps[done] = sweep
        active = active[changed]
    return S, converged, n_sweeps


# --- unlearning ----------------------------------------------------------------------------------


def unlearn_step(W: np.ndarray, s: np.ndarray, epsilon: float) -> np.ndarray:
    r"""Weaken the attractor `s`: one anti-Hebbian step (Hopfield, Feinstein & Palmer 1983).

    .. math:: W_{ij} \leftarrow W_{ij} - \frac{\epsilon}{N} s_i s_j \quad (i \ne j),
              \qquad W_{ii} = 0

    Parameters
    ----------
    W : ndarray of shape (n_neurons, n_neurons)
    s : ndarray of shape (n_neurons,)
        The state the dream relaxed to.
    epsilon : float
        In units of one stored pattern (a Hebbian pattern adds 1/N to the same entries).

    Returns
    -------
    ndarray of shape (n_neurons, n_neurons), a new array.
    """
    return W + rules.hopfield(W, s, s, eta=-epsilon)


def dream(W: np.ndarray, rng: np.random.Generator, epsilon: float,
          max_sweeps: int = 100) -> tuple[np.ndarray, np.ndarray, bool]:
    """One dream: a random start, relaxed, then unlearned.

    A start still changing at the cap is unlearned where it stopped (it is what the dream
    reached); the flag says so.

    Returns
    -------
    W : ndarray of shape (n_neurons, n_neurons)
    s : ndarray of shape (n_neurons,), the state unlearned
    converged : bool
    """
    start = random_states(1, len(W), rng)[0]
    s, converged, _ = relax(W, start, rng, max_sweeps)
    return unlearn_step(W, s, epsilon), s, bool(converged)


def sleep(W: np.ndarray, n_dreams: int, rng: np.random.Generator, epsilon: float,
          max_sweeps: int = 100) -> tuple[np.ndarray, int]:
    """`n_dreams` dreams in sequence, each under the couplings the previous one left.

    Returns
    -------
    W : ndarray of shape (n_neurons, n_neurons)
    n_nonconverged : int
        Dreams cut off by the sweep cap (0 in every run measured so far).
    """
    W = np.asarray(W, dtype=float)
    stuck = 0
    for _ in range(n_dreams):
        W, _, converged = dream(W, rng, epsilon, max_sweeps)
        stuck += not converged
    return W, stuck


# --- measurements --------------------------------------------------------------------------------


def flip_bits(patterns: np.ndarray, fraction: float, n_copies: int,
              rng: np.random.Generator) -> np.ndarray:
    """Noisy cues: `n_copies` of each pattern with exactly round(fraction * N) bits flipped.

    Returns
    -------
    ndarray of shape (n_patterns, n_copies, n_neurons)
    """
    xi = np.asarray(patterns, dtype=float)
    n_pat, n = xi.shape
    cues = np.repeat(xi[:, None, :], n_copies, axis=1)
    k = int(round(fraction * n))
    # the first k of a random permutation per cue: k distinct bits
    idx = np.argsort(rng.random((n_pat, n_copies, n)), axis=-1)[..., :k]
    np.put_along_axis(cues, idx, -np.take_along_axis(cues, idx, axis=-1), axis=-1)
    return cues


def overlaps(patterns: np.ndarray, S: np.ndarray) -> np.ndarray:
    r"""Overlap of each state with each pattern.

    .. math:: m^\mu(s) = \frac{1}{N} \sum_i \xi_i^\mu s_i

    Returns
    -------
    ndarray of shape S.shape[:-1] + (n_patterns,)
    """
    xi = np.asarray(patterns, dtype=float)
    return np.asarray(S, dtype=float) @ xi.T / xi.shape[1]


def recall(W: np.ndarray, patterns: np.ndarray, rng: np.random.Generator, cue_flip: float = 0.1,
           n_cues: int = 10, max_sweeps: int = 100) -> dict[str, np.ndarray]:
    """Relax noisy cues of every pattern; measure how close each ends to its own pattern.

    Returns
    -------
    dict with ``overlap`` (n_patterns, n_cues), m of the final state with the cued pattern
    (signed: -1 is the negation), and ``converged`` (n_patterns, n_cues).
    """
    xi = np.asarray(patterns, dtype=float)
    cues = flip_bits(xi, cue_flip, n_cues, rng)
    n_pat, _, n = cues.shape
    S, conv, _ = relax(W, cues.reshape(-1, n), rng, max_sweeps)
    S = S.reshape(n_pat, n_cues, n)
    return {"overlap": np.einsum("pcn,pn->pc", S, xi) / n,
            "converged": conv.reshape(n_pat, n_cues)}


def classify(patterns: np.ndarray, S: np.ndarray, converged: np.ndarray,
             memory_overlap: float = 0.9) -> np.ndarray:
    """Label final states: index of the memory retrieved (either sign), `SPURIOUS` or
    `NONCONVERGED`.

    Parameters
    ----------
    patterns : ndarray of shape (n_patterns, n_neurons)
    S : ndarray of shape (n_states, n_neurons)
    converged : bool ndarray of shape (n_states,)
    memory_overlap : float
        A fixed point with |m^mu| >= this counts as memory mu (1.0: exact memories only).

    Returns
    -------
    int ndarray of shape (n_states,)
    """
    m = np.abs(overlaps(patterns, S))
    best = np.argmax(m, axis=1)
    hit = np.take_along_axis(m, best[:, None], axis=1)[:, 0] >= memory_overlap - 1e-12
    labels = np.where(hit, best, SPURIOUS)
    return np.where(converged, labels, NONCONVERGED)


def census(W: np.ndarray, patterns: np.ndarray, rng: np.random.Generator, n_starts: int = 2000,
           max_sweeps: int = 100, memory_overlap: float = 0.9) -> dict:
    """Where random starts end: the attractor census of HFP 1983.

    Returns
    -------
    dict with
    ``labels`` : int ndarray of shape (n_starts,), see `classify`;
    ``memory_share``, ``spurious_share``, ``nonconverged_share`` : fractions of the starts;
    ``exact_share`` : fraction ending exactly on a memory or its negation;
    ``memory_basins`` : ndarray of shape (n_patterns,), share of starts reaching each memory;
    ``n_spurious`` : distinct spurious fixed points reached (s and -s counted once);
    ``n_memories_reached`` : memories reached from at least one start.
    """
    xi = np.asarray(patterns, dtype=float)
    starts = random_states(n_starts, xi.shape[1], rng)
    S, conv, _ = relax(W, starts, rng, max_sweeps)
    labels = classify(xi, S, conv, memory_overlap)
    spurious = S[labels == SPURIOUS]
    canonical = (spurious * spurious[:, :1]).astype(np.int8)  # s ~ -s: first neuron set to +1
    n_spurious = len(np.unique(canonical, axis=0)) if len(canonical) else 0
    exact = np.isclose(np.abs(overlaps(xi, S)).max(axis=1), 1.0) & conv
    basins = np.bincount(labels[labels >= 0], minlength=len(xi)) / n_starts
    return {
        "labels": labels,
        "memory_share": float(np.mean(labels >= 0)),
        "spurious_share": float(np.mean(labels == SPURIOUS)),
        "nonconverged_share": float(np.mean(labels == NONCONVERGED)),
        "exact_share": float(np.mean(exact)),
        "memory_basins": basins,
        "n_spurious": int(n_spurious),
        "n_memories_reached": int(np.count_nonzero(basins)),
    }


def stable_fraction(W: np.ndarray, patterns: np.ndarray) -> float:
    r"""Fraction of stored patterns that are exact fixed points of the dynamics.

    .. math:: \xi^\mu \text{ stable} \iff \xi_i^\mu \sum_j W_{ij} \xi_j^\mu \ge 0 \;\; \forall i
    """
    xi = np.asarray(patterns, dtype=float)
    return float(np.mean(np.all(xi * (xi @ W.T) >= -TIE, axis=1)))


# --- the curves of the dream_unlearning experiment ---------------------------------------------

CURVES = ("recall_overlap", "recall_success", "stable_fraction", "memory_share",
          "spurious_share", "nonconverged_share", "exact_share", "n_spurious",
          "memories_reached", "memory_basin_cv", "recall_nonconverged", "dreams_nonconverged")


def dreams_for(unlearned, n_patterns, epsilon: float) -> np.ndarray:
    r"""Dream counts that unlearn the weight `unlearned` (in stored patterns) per pattern stored.

    .. math:: D = \operatorname{round}(x P / \epsilon)

    the dream axis on which loads compare (module docstring: the curves line up against
    :math:`x = \epsilon D / P`).

    Parameters
    ----------
    unlearned : sequence of float >= 0, the values of x
    n_patterns : int or sequence of int, P per load
    epsilon : float > 0

    Returns
    -------
    int ndarray of shape (n_loads, n_x), or (n_x,) for a scalar `n_patterns`
    """
    require(epsilon > 0, f"epsilon must be > 0 to reach an unlearned weight, got {epsilon}")
    x = np.asarray(unlearned, dtype=float)
    P = np.asarray(n_patterns, dtype=float)
    return np.rint(np.multiply.outer(P, x) / epsilon).astype(int)


def unlearning_curves(loads, dream_counts, n_networks: int, p: HopfieldParams,
                      rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Recall and attractor census over networks x loads x numbers of dreams.

    Each network draws max(P) patterns once; a load stores the first P = round(load * N) of
    them (so loads share patterns: smoother curves). Per load the dreams run in one sequence and
    are measured at each of the (sorted) `dream_counts`: one list for every load, or one row
    per load (from `dreams_for`: the same unlearned weight at every load). Dreams and
    measurements draw from separate generators, and every measurement of one network and load
    reuses the same cues, census starts and update orders, so the curves along the dream axis
    differ only through the couplings; the couplings after D dreams do not depend on which
    counts are measured.

    Parameters
    ----------
    loads : sequence of float, P / N
    dream_counts : sequence of int >= 0, non-decreasing; or ndarray of shape (n_loads, n_dreams)
        with one such row per load
    n_networks : int
        Independent networks (pattern sets, dream sequences).
    p : HopfieldParams
    rng : numpy.random.Generator
        Source of every child generator.

    Returns
    -------
    dict with ``loads`` (n_loads,) as realised (P/N), ``n_patterns`` (n_loads,),
    ``dream_counts`` as given ((n_dreams,) or (n_loads, n_dreams)), and for each name in
    `CURVES` an ndarray of shape (n_networks, n_loads, n_dreams):
    ``recall_overlap`` mean m over patterns and cues; ``recall_success`` fraction of cues ending
    with m >= p.memory_overlap; ``stable_fraction`` see `stable_fraction`; census shares and
    counts see `census` (``memories_reached`` as a fraction of P); ``memory_basin_cv`` the
    spread of the memories' basin shares, sd / mean over the P memories (HFP: unlearning makes
    memories more equally accessible; NaN where no memory is reached); ``recall_nonconverged``
    fraction of the cues cut off by the sweep cap; ``dreams_nonconverged`` dreams cut off by
    the sweep cap so far.
    """
    dream_counts = np.asarray(dream_counts, dtype=int)
    require(dream_counts.ndim in (1, 2) and dream_counts.size > 0,
            "dream_counts must be a 1-d list or one row per load")
    require(bool(np.all(dream_counts >= 0)) and bool(np.all(np.diff(dream_counts) >= 0)),
            f"dream_counts must be non-negative and non-decreasing, got {dream_counts.tolist()}")
    require(n_networks >= 1, f"n_networks must be >= 1, got {n_networks}")
    n = p.n_neurons
    n_patterns = np.array([int(round(a * n)) for a in loads])
    require(bool(np.all(n_patterns >= 1)), f"every load must store >= 1 pattern at N={n}")
    require(dream_counts.ndim == 1 or dream_counts.shape[0] == len(n_patterns),
            f"dream_counts has {dream_counts.shape[0]} rows for {len(n_patterns)} loads")
    per_load = np.broadcast_to(dream_counts, (len(n_patterns), dream_counts.shape[-1]))
    shape = (n_networks, len(n_patterns), per_load.shape[1])
    out = {name: np.zeros(shape) for name in CURVES}
    for net, net_rng in enumerate(rng.spawn(n_networks)):
        pattern_rng, *load_rngs = net_rng.spawn(1 + len(n_patterns))
        all_patterns = random_patterns(int(n_patterns.max()), n, pattern_rng)
        for a, (n_pat, load_rng) in enumerate(zip(n_patterns, load_rngs, strict=True)):
            xi = all_patterns[:n_pat]
            dream_rng, measure_rng = load_rng.spawn(2)
            measure_seed = measure_rng.integers(2**63)
            W, done, stuck = hebb_weights(xi), 0, 0
            for d, target in enumerate(per_load[a]):
                W, more = sleep(W, int(target) - done, dream_rng, p.epsilon, p.max_sweeps)
                done, stuck = int(target), stuck + more
                m_rng = np.random.default_rng(measure_seed)
                rec = recall(W, xi, m_rng, p.cue_flip, p.n_cues, p.max_sweeps)
                cen = census(W, xi, m_rng, p.n_starts, p.max_sweeps, p.memory_overlap)
                at = (net, a, d)
                out["recall_overlap"][at] = rec["overlap"].mean()
                out["recall_success"][at] = np.mean(rec["overlap"] >= p.memory_overlap - 1e-12)
                out["recall_nonconverged"][at] = 1.0 - rec["converged"].mean()
                out["stable_fraction"][at] = stable_fraction(W, xi)
                for name in ("memory_share", "spurious_share", "nonconverged_share",
                             "exact_share", "n_spurious"):
                    out[name][at] = cen[name]
                out["memories_reached"][at] = cen["n_memories_reached"] / n_pat
                basins = cen["memory_basins"]
                out["memory_basin_cv"][at] = (basins.std() / basins.mean() if basins.any()
                                              else np.nan)
                out["dreams_nonconverged"][at] = stuck
    out["loads"] = n_patterns / n
    out["n_patterns"] = n_patterns
    out["dream_counts"] = dream_counts
    return out
