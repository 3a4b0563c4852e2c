r"""Paired statistics across seeds: is arm A better than arm B, and by how much?

Two arms run with the same seeds share their splits and draws, so their scores pair up seed by
seed; the differences :math:`d_s = a_s - b_s` carry the comparison. `compare` gives the mean
difference, a bootstrap confidence interval of it (``scipy.stats.bootstrap``, BCa), and a
paired test (``scipy.stats.ttest_rel`` or ``scipy.stats.wilcoxon``). `PairedComparison.sentence`
writes the "A beats B" sentence a report may carry, with n, the test, p and the interval, and
returns None when the interval includes 0 or the test's p is not below ``alpha`` (0.05): with
few seeds a bootstrap interval can exclude 0 on its own (n = 3 has ten distinct resamples),
so a claim needs both.

Retention (`retention`) expresses robustness as accuracy under a perturbation over clean
accuracy, per seed, so two arms with different clean accuracies are compared on one scale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from neurosim.validation import require, require_choice

#: The paired tests `compare` runs (name -> what the report calls it).
TESTS = {"t": "paired t-test", "wilcoxon": "Wilcoxon signed-rank test"}


@dataclass(frozen=True)
class PairedComparison:
    """A paired comparison of two arms on one metric over the same seeds.

    Attributes
    ----------
    a, b : str
        The arms' names; differences are ``a - b``.
    metric : str
        What was compared (e.g. ``test accuracy``).
    n : int
        Number of seeds (pairs).
    mean_a, mean_b : float
        Each arm's mean over the seeds.
    diff_mean, diff_sd : float
        Mean and sample sd (ddof=1) of the paired differences (sd NaN for n = 1).
    ci_low, ci_high : float
        Bootstrap confidence interval of the mean difference (NaN for n < 2).
    confidence : float
        Its level (0.95).
    test : str
        The paired test run (`TESTS` value), "" for n < 2.
    statistic, p_value : float
        The test's statistic and two-sided p-value (NaN where undefined).
    higher_is_better : bool
        Whether a positive difference means ``a`` did better.
    alpha : float
        The test's level: a claim also needs ``p_value < alpha``.
    """

    a: str
    b: str
    metric: str
    n: int
    mean_a: float
    mean_b: float
    diff_mean: float
    diff_sd: float
    ci_low: float
    ci_high: float
    confidence: float
    test: str
    statistic: float
    p_value: float
    higher_is_better: bool = True
    alpha: float = 0.05

    @property
    def excludes_zero(self) -> bool:
        """True when the whole confidence interval lies on one side of 0."""
        return self.n >= 2 and (self.ci_low > 0 or self.ci_high < 0)

    @property
    def winner(self) -> str | None:
        """The better arm when the interval excludes 0 and the test agrees (p < alpha); None
        otherwise."""
        if not (self.excludes_zero and self.p_value < self.alpha):
            return None
        a_higher = self.ci_low > 0
        return self.a if a_higher == self.higher_is_better else self.b

    def sentence(self, digits: int = 3) -> str | None:
        """``"A beats B on metric by d (95% CI lo to hi; paired t-test, n = 10, p = 0.002)."``

        None when the interval includes 0, p is not below alpha, or n < 2: no "beats" sentence
        may be written then. The amount is the winner's advantage (positive; for a
        lower-is-better metric, how much lower it is).
        """
        winner = self.winner
        if winner is None:
            return None
        loser = self.b if winner == self.a else self.a
        sign = 1 if (winner == self.a) == self.higher_is_better else -1
        lo, hi = sorted((sign * self.ci_low, sign * self.ci_high))
        metric = self.metric if self.higher_is_better else f"{self.metric} (lower is better)"
        return (f"{winner} beats {loser} on {metric} by {fmt(sign * self.diff_mean, digits)} "
                f"({self.confidence:.0%} CI {fmt(lo, digits)} to {fmt(hi, digits)}; "
                f"{self.evidence()}).")

    def evidence(self) -> str:
        """``"paired t-test, n = 10, p = 0.002"`` (or ``"one seed, no test"``)."""
        if self.n < 2:
            return "one seed, no test"
        p = fmt_p(self.p_value)
        return f"{self.test}, n = {self.n}, p {p if p.startswith('<') else '= ' + p}"

    def summary(self, digits: int = 3) -> str:
        """One line for any outcome: the "beats" sentence, or what was measured without one."""
        sentence = self.sentence(digits)
        if sentence is not None:
            return sentence
        if self.n < 2:
            return (f"{self.a} {fmt(self.mean_a, digits)} vs {self.b} {fmt(self.mean_b, digits)} "
                    f"on {self.metric} (one seed: no comparison is claimed).")
        why = ("includes 0" if not self.excludes_zero
               else f"excludes 0 but p is not below {self.alpha:g}")
        return (f"{self.a} vs {self.b} on {self.metric}: difference {fmt(self.diff_mean, digits)}"
                f" ({self.confidence:.0%} CI {fmt(self.ci_low, digits)} to "
                f"{fmt(self.ci_high, digits)} {why}; {self.evidence()}): no difference shown.")

    def as_dict(self) -> dict:
        """JSON-able fields (NaN -> None) for metrics.json."""
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in asdict(self).items()}


def compare(a: Sequence[float], b: Sequence[float], *, names: tuple[str, str] = ("A", "B"),
            metric: str = "score", test: str = "t", confidence: float = 0.95,
            n_resamples: int = 9999, higher_is_better: bool = True,
            alpha: float = 0.05, rng: np.random.Generator | None = None) -> PairedComparison:
    """Compare two arms' scores paired by seed.

    Parameters
    ----------
    a, b : array-like of shape (n_seeds,)
        Scores of the two arms, ``a[s]`` and ``b[s]`` from the same seed s.
    names : (str, str)
        The arms' names for sentences.
    metric : str
        What the scores are.
    test : {"t", "wilcoxon"}
        ``scipy.stats.ttest_rel`` or ``scipy.stats.wilcoxon`` (two-sided).
    confidence : float
        Level of the bootstrap interval of the mean difference.
    n_resamples : int
        Bootstrap resamples.
    higher_is_better : bool
        False for losses, errors and costs.
    alpha : float
        A claim also needs the paired test's p below this.
    rng : numpy.random.Generator, optional
        Draws the bootstrap resamples (default: seeded with 0, so a report is reproducible).

    Returns
    -------
    PairedComparison
    """
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    require(a.shape == b.shape, f"paired scores need one value per seed in each arm, got "
                                f"{a.size} and {b.size}")
    require(a.size >= 1, "paired scores: no seeds")
    require(bool(np.all(np.isfinite(a)) and np.all(np.isfinite(b))),
            "paired scores must be finite (a diverged run has no score to compare)")
    require_choice("paired test", test, TESTS)
    require(0 < confidence < 1, f"confidence must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(0) if rng is None else rng
    d = a - b
    n = int(d.size)
    nan = float("nan")
    lo = hi = statistic = p = sd = nan
    if n >= 2:
        sd = float(np.std(d, ddof=1))
        lo, hi = bootstrap_ci(d, confidence=confidence, n_resamples=n_resamples, rng=rng)
        statistic, p = paired_test(a, b, test)
    return PairedComparison(
        a=names[0], b=names[1], metric=metric, n=n, mean_a=float(a.mean()),
        mean_b=float(b.mean()), diff_mean=float(d.mean()), diff_sd=sd, ci_low=lo, ci_high=hi,
        confidence=confidence, test=TESTS[test] if n >= 2 else "", statistic=statistic,
        p_value=p, higher_is_better=higher_is_better, alpha=alpha)


def bootstrap_ci(d: np.ndarray, *, confidence: float = 0.95, n_resamples: int = 9999,
                 rng: np.random.Generator) -> tuple[float, float]:
    """BCa bootstrap interval of the mean of `d` (``scipy.stats.bootstrap``).

    Identical differences have no spread to resample: the interval is that value itself.
    """
    d = np.asarray(d, dtype=float)
    if np.ptp(d) == 0:
        return float(d[0]), float(d[0])
    res = stats.bootstrap((d,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                          method="BCa", rng=rng)
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (math.isfinite(lo) and math.isfinite(hi)):  # BCa undefined (e.g. n = 2): percentile
        res = stats.bootstrap((d,), np.mean, confidence_level=confidence,
                              n_resamples=n_resamples, method="percentile", rng=rng)
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return lo, hi


def paired_test(a: np.ndarray, b: np.ndarray, test: str = "t") -> tuple[float, float]:
    """Statistic and two-sided p-value of the paired test; (NaN, 1.0) when every pair is equal
    (no evidence of a difference), NaN p where the test is undefined."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if np.all(d == 0):
        return float("nan"), 1.0
    if test == "t":
        if np.ptp(d) == 0:  # a constant non-zero difference: t is infinite, p -> 0
            return math.copysign(math.inf, float(d[0])), 0.0
        res = stats.ttest_rel(a, b)
    else:
        res = stats.wilcoxon(a, b)
    return float(res.statistic), float(res.pvalue)


def retention(perturbed: Sequence[float], clean: Sequence[float]) -> np.ndarray:
    """Accuracy under a perturbation over clean accuracy, seed by seed (robustness on one scale
    for arms with different clean accuracies)."""
    perturbed = np.asarray(perturbed, dtype=float)
    clean = np.asarray(clean, dtype=float)
    require(perturbed.shape == clean.shape, "retention needs one clean score per perturbed one")
    require(bool(np.all(clean > 0)), "retention needs clean scores > 0")
    return perturbed / clean


def fmt(x: float, digits: int = 3) -> str:
    """A number as people write it, to `digits` significant digits: 0.112, 0.0012, 130, 1234,
    and an exponent only outside [1e-4, 1e6) (1.3e-05)."""
    if not math.isfinite(x):
        return "n/a"
    if x == 0:
        return "0"
    if not 1e-4 <= abs(x) < 1e6:
        return f"{x:.{digits - 1}e}"
    decimals = max(digits - 1 - math.floor(math.log10(abs(x))), 0)
    text = f"{x:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def fmt_p(p: float) -> str:
    """A p-value: 0.03, 0.0012, or "< 1e-6" (written "p < 1e-6" in sentences)."""
    if not math.isfinite(p):
        return "n/a"
    if p < 1e-6:
        return "< 1e-6"
    return f"{p:.2g}"
