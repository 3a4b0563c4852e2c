"""Analysis of what networks did: summary statistics over repeated runs and draws (`stats`),
paired comparisons of two arms across seeds (`paired`), the label-budget protocol and its
scikit-learn baselines (`budgets`), energy per inference under published energy models
(`energy`), and synchrony against stimulus-preserving surrogates (`synchrony`, Elephant).

Only `stats` is imported here (numpy only); the others load scikit-learn, SciPy or Elephant
when imported. The damage models live in `neurosim.lesion`.
"""

from neurosim.analysis.stats import mean_sd, summary

__all__ = ["mean_sd", "summary"]
