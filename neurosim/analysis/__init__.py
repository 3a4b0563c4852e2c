"""Analysis of what networks did: statistics over repeated runs and draws (`stats`).

Numpy only; the spike-train statistics through Elephant live in `neurosim.snn.activity`, the
damage models in `neurosim.lesion`.
"""

from neurosim.analysis.stats import mean_sd, summary

__all__ = ["mean_sd", "summary"]
