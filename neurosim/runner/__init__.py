"""The runner: everything between an experiment and the command line, in layers that import
one way only (DESIGN.md §1)::

    sweep, search          many runs: a sweep directory, Optuna studies, resume, rerun
    plan, executors,       the runs of a sweep built from values; where jobs run (local
    summary                processes, Dask); summary.csv / summary.png
    single                 one run: run_one(RunSpec) -> Outcome, exit codes
    config, rundir         configs from values / TOML; the run directory and its writes
    contract, signals      what an experiment gets and returns; signals -> statuses

Experiments import `neurosim.runner.contract` (and `signals`) only; the library imports none of
it. This package imports nothing itself, so ``import neurosim.runner.contract`` stays light.
"""
