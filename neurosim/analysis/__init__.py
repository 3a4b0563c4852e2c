"""Analysis of what networks did: paired statistics across seeds (`paired`), the label-budget
protocol and its scikit-learn baselines (`budgets`), energy per inference under published
energy models (`energy`)."""
