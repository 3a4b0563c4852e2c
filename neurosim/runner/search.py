"""Hyper-parameter search with Optuna (``pip install 'neurosim[search]'``): every trial is an
ordinary run directory inside a search directory, and the study is stored beside them
(``study.db``, SQLite through Optuna's RDBStorage) so that a search resumes.

    python -m neurosim.run digits --search --quick val_fraction=0.2 \\
        lr=1e-4:1e-1:log batch_size=16:128 optimizer=adam,momentum \\
        --objective val_accuracy --trials 30
    python -m neurosim.run --config tune.toml --search         # a [search] table in the file
    python -m neurosim.run --resume runs/digits/<UTC time>-search-<hash> --trials 50

The space, with ``--search`` on the command line: ``key=LOW:HIGH`` (uniform), ``key=LOW:HIGH:log``
(log-uniform), ``key=LOW:HIGH:STEP`` (on a grid of STEP), ``key=a,b,c`` (one of the values);
an integer field draws integers. Every other ``key=value`` fixes the config as in a single run.
In a TOML config file (the command line adds to and overrides it)::

    experiment = "digits"
    val_fraction = 0.2
    [search]
    objective = "val_accuracy"      # a dotted path into metrics.json
    direction = "maximize"          # default: minimize for loss/error/mse/mae names
    trials = 30                     # default 20
    sampler = "tpe"                 # or "random"
    [search.space]
    lr = {low = 1e-4, high = 0.1, log = true}
    batch_size = {low = 16, high = 128, step = 16}
    optimizer = ["adam", "momentum"]

The objective is a dotted path into metrics.json, e.g.
``conditions.sleep.val_final_accuracy_mean``; a name containing ``test`` is refused: tune on a
validation split, score the winner on the test set once.

How a trial's run ends decides how the study records it (nothing stops the study):

- COMPLETED with a finite objective: a COMPLETE trial with that value;
- DIVERGED, or COMPLETED with a NaN/missing-in-value objective (null in metrics.json): PRUNED.
  Optuna's TPE ranks pruned trials after every complete one, so the sampler learns to avoid the
  region without an invented "worst" number distorting its model or the history plot;
- FAILED (an exception): FAIL, which samplers ignore (a crash says nothing about the values);
- INTERRUPTED, or never started because the search was stopped: FAIL, and not counted towards
  ``trials``: a resumed search runs that many more;
- values the config rejects (a check across fields): REJECTED, PRUNED, nothing runs.

A COMPLETED trial whose metrics.json lacks the objective stops the search (exit 2): the name
is wrong, and every trial would fail alike. Each trial's user attributes hold its ``run``
folder, ``status`` and ``error``; summary.csv has one row per trial (values, status, objective
``value``, every metric) and history.png Optuna's optimisation-history plot.
"""

from __future__ import annotations

import json
import math
import re
import signal
import sys
import types
import typing
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from neurosim import experiments
from neurosim.runner import signals
from neurosim.runner.config import ConfigError, closest, field_hint, short
from neurosim.runner.contract import jsonable
from neurosim.runner.executors import Executor, choose_executor, drive
from neurosim.runner.plan import (
    PLAN,
    STOP,
    SUMMARY,
    Job,
    Row,
    build_specs,
    config_file_values,
    load_plan,
    locked,
    make_sweep_dir,
    mark_ended,
    new_plan,
    read_row,
    short_text,
    value_text,
)
from neurosim.runner.rundir import save_figure, write_bytes, write_json
from neurosim.runner.single import EXIT_FAILED, EXIT_OK, EXIT_USAGE, RunSpec, check_writable
from neurosim.runner.summary import Progress, leaves, write_summary

STUDY, HISTORY, STUDY_NAME = "study.db", "history.png", "neurosim"
DEFAULT_TRIALS = 20
SAMPLERS = ("tpe", "random")
SEARCH_KEYS = {"objective", "direction", "trials", "sampler", "space"}

#: Objective names minimised unless --direction says otherwise.
MINIMISED = re.compile(r"(loss|error|mse|mae|rmse)")

#: Run statuses that use up a trial (an interrupted or never-started one does not).
#: REJECTED: the config refused the trial's values (a cross-field check), so nothing ran.
COUNTED = ("COMPLETED", "DIVERGED", "FAILED", "REJECTED")


# --- the space ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Range:
    """A number drawn from [low, high]: log-uniform with ``log``, on a grid with ``step``;
    an integer when the config field is an integer."""

    low: float
    high: float
    log: bool = False
    step: float | None = None

    def check(self, key: str) -> Range:
        for name in ("low", "high", "step"):
            v = getattr(self, name)
            if name != "step" or v is not None:
                if not (isinstance(v, int | float) and not isinstance(v, bool)
                        and math.isfinite(v)):
                    raise ConfigError(f"search range {key}: {name} must be a number, got "
                                      f"{short(v)}")
        if not self.low < self.high:
            raise ConfigError(f"search range {key}: low ({self.low}) must be < high "
                              f"({self.high})")
        if self.log and self.low <= 0:
            raise ConfigError(f"search range {key}: a log range needs low > 0, got {self.low}")
        if self.log and self.step is not None:
            raise ConfigError(f"search range {key}: give log or step, not both")
        if self.step is not None and self.step <= 0:
            raise ConfigError(f"search range {key}: step must be > 0, got {self.step}")
        return self

    def describe(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "log": self.log, "step": self.step}


@dataclass(frozen=True)
class Choice:
    """One of `choices` (any config values: numbers, strings, lists)."""

    choices: tuple[Any, ...]

    def encoded(self) -> list[Any]:
        """What Optuna stores: the value itself when it is a scalar, else its JSON text."""
        return [c if c is None or isinstance(c, bool | int | float | str)
                else json.dumps(c) for c in self.choices]

    def decode(self, value: Any) -> Any:
        return self.choices[self.encoded().index(value)]

    def describe(self) -> dict[str, Any]:
        return {"choices": list(self.choices)}


Space = dict[str, Range | Choice]


def space_from_toml(table: Mapping[str, Any], prefix: str = "") -> Space:
    """``[search.space]``: ``key = {low, high[, log][, step]}`` or ``key = [choices]``;
    nested tables name nested keys (``[search.space.snn] n_exc = [100, 400]``)."""
    space: Space = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, list):
            if len(value) < 1:
                raise ConfigError(f"search.space.{name}: an empty list of choices")
            space[name] = Choice(tuple(value))
        elif isinstance(value, Mapping) and "low" in value:
            unknown = set(value) - {"low", "high", "log", "step"}
            if unknown or "high" not in value:
                raise ConfigError(f"search.space.{name}: a range is {{low, high[, log][, step]}}"
                                  f", got keys {', '.join(sorted(value))}")
            space[name] = Range(value["low"], value["high"], bool(value.get("log", False)),
                                value.get("step")).check(name)
        elif isinstance(value, Mapping):
            space.update(space_from_toml(value, f"{name}."))
        else:
            raise ConfigError(f"search.space.{name}: give {{low = ..., high = ...}} or a list "
                              f"of choices, got {short(value)}")
    return space


def space_from_json(described: Mapping[str, Mapping[str, Any]]) -> Space:
    return {k: Choice(tuple(d["choices"])) if "choices" in d
            else Range(d["low"], d["high"], d["log"], d["step"]) for k, d in described.items()}


# --- settings ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    objective: str
    direction: str
    trials: int
    sampler: str

    @staticmethod
    def make(objective: str | None, direction: str | None, trials: int | None,
             sampler: str | None) -> Settings:
        if not objective or not isinstance(objective, str):
            raise ConfigError("name the metric to optimise: --objective val_accuracy (a dotted "
                              "path into metrics.json, e.g. conditions.sleep.val_accuracy)")
        if "test" in objective.lower():
            raise ConfigError(f"the objective '{objective}' is a test metric: tune on a "
                              "validation metric (e.g. val_accuracy, with val_fraction > 0) and "
                              "score the winner on the test set once")
        if direction is None:
            last = objective.rsplit(".", 1)[-1].lower()
            direction = "minimize" if MINIMISED.search(last) else "maximize"
        if direction not in ("maximize", "minimize"):
            raise ConfigError(f"direction must be maximize or minimize, got {short(direction)}")
        trials = DEFAULT_TRIALS if trials is None else trials
        if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
            raise ConfigError(f"trials must be an integer >= 1, got {short(trials)}")
        sampler = sampler or "tpe"
        if sampler not in SAMPLERS:
            raise ConfigError(f"unknown sampler {short(sampler)}; choose from "
                              f"{', '.join(SAMPLERS)}")
        return Settings(objective, direction, trials, sampler)


def require_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise ConfigError("--search needs Optuna: pip install 'neurosim[search]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def distributions(module: Any, space: Space) -> dict[str, Any]:
    """Optuna distributions of the space: integers for int fields, floats otherwise."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    out: dict[str, Any] = {}
    for key, dim in space.items():
        if isinstance(dim, Choice):
            out[key] = CategoricalDistribution(dim.encoded())
            continue
        try:
            hint = field_hint(module.Config, key)
        except KeyError:
            hint = float  # an unknown key: resolve() names it when the corners are checked
        if typing.get_origin(hint) in (typing.Union, types.UnionType):  # int | None
            args = set(typing.get_args(hint)) - {type(None)}
            hint = args.pop() if len(args) == 1 else float
        if hint is int:
            ints = [v for v in (dim.low, dim.high, dim.step) if v is not None]
            if not all(float(v).is_integer() for v in ints):
                raise ConfigError(f"search range {key}: {key} is an integer, give integer "
                                  "bounds and step")
            out[key] = IntDistribution(int(dim.low), int(dim.high), log=dim.log,
                                       step=int(dim.step or 1))
        else:
            out[key] = FloatDistribution(float(dim.low), float(dim.high), log=dim.log,
                                         step=None if dim.step is None else float(dim.step))
    return out


# --- one search --------------------------------------------------------------------------------


class Search:
    """A search in its directory: the plan, the study, the trials' rows."""

    def __init__(self, sweep_dir: Path, plan: dict[str, Any]):
        if not isinstance(plan.get("base"), dict):  # written before the runner/ package
            raise ConfigError(f"{sweep_dir}: this search was made by an older neurosim (its "
                              f"{PLAN} has no 'base' values); start a new search")
        self.dir, self.plan, self.base = sweep_dir, plan, plan["base"]
        self.problems: list[str] = []
        s = plan["search"]
        self.settings = Settings(s["objective"], s["direction"], s["trials"], s["sampler"])
        self.space = space_from_json(s["space"])
        self.module = experiments.get(plan["experiment"])
        self.dists = distributions(self.module, self.space)

    def trial_spec(self, params: Mapping[str, Any], parent: Path | None = None) -> RunSpec:
        return trial_spec(self.base, params, self.plan["argv"], parent)

    def storage_url(self) -> str:
        from sqlalchemy.engine import URL

        return URL.create("sqlite", database=str((self.dir / STUDY).resolve())).render_as_string()

    def open_study(self) -> Any:
        optuna = require_optuna()
        storage = optuna.storages.RDBStorage(self.storage_url())
        study = optuna.create_study(storage=storage, study_name=STUDY_NAME,
                                    direction=self.settings.direction, load_if_exists=True)
        seed = int(self.base["seed"]) + len(study.get_trials(deepcopy=False))
        sampler = (optuna.samplers.RandomSampler(seed=seed) if self.settings.sampler == "random"
                   else optuna.samplers.TPESampler(seed=seed))
        return optuna.load_study(study_name=STUDY_NAME, storage=storage, sampler=sampler)

    def params(self, trial: Any) -> dict[str, Any]:
        """A trial's values as config values (choices decoded)."""
        return {k: self.space[k].decode(v) if isinstance(self.space[k], Choice) else v
                for k, v in trial.params.items() if k in self.space}

    def value_of(self, row: Row) -> tuple[str, float | None, str | None]:
        """(Optuna state, objective value, why) for a trial's row; see the module docstring."""
        if row.status == "COMPLETED":
            flat = leaves(row.metrics)
            name = self.settings.objective
            if name not in flat:
                numeric = [k for k, v in flat.items() if isinstance(v, int | float)]
                return "MISSING", None, (f"objective '{name}' is not in metrics.json; "
                                         f"{closest(name, numeric)}")
            value = flat[name]
            if isinstance(value, int | float) and not isinstance(value, bool) \
                    and math.isfinite(value):
                return "COMPLETE", float(value), None
            return "PRUNED", None, f"objective {name} is {value!r}"
        if row.status == "DIVERGED":
            return "PRUNED", None, None
        return "FAIL", None, None

    def rows(self, study: Any) -> tuple[list[Row], dict[str, dict[str, Any]]]:
        """One row per trial that ran (from its run directory), and each one's value."""
        rows, extra = [], {}
        for t in study.get_trials(deepcopy=False):
            run = t.user_attrs.get("run")
            if not run:
                continue
            row = read_row(self.dir / run, self.params(t))
            if t.user_attrs.get("status") == "REJECTED":
                row.status = "REJECTED"
            elif row.status == "PENDING":
                continue  # never started (the search was stopped first)
            row.error = row.error or t.user_attrs.get("error")
            rows.append(row)
            extra[run] = {"value": t.value if t.state.name == "COMPLETE" else None,
                          "trial_state": t.state.name}
        return rows, extra

    def write_outputs(self, study: Any) -> Path | None:
        rows, extra = self.rows(study)
        write_summary(self.dir, rows, list(self.space), extra)
        return history_figure(study, self.dir / HISTORY, self.settings.objective)

    def run(self, pool: Executor) -> int:
        """Ask, run and tell until `trials` trials have been used up; returns the exit status."""
        from optuna.trial import TrialState

        study = self.open_study()
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            study.tell(t.number, state=TrialState.FAIL)  # left by a search that was killed
        counted = sum(t.user_attrs.get("status") in COUNTED
                      for t in study.get_trials(deepcopy=False))
        target = self.settings.trials
        progress = Progress(target, min(counted, target), "search", None)
        width = max(3, len(str(target - 1)))
        live: dict[str, Any] = {}
        stop_file = self.dir / STOP
        problems = self.problems = []
        state = {"counted": counted}

        def next_job() -> Job | None:
            while not problems and state["counted"] + len(live) < target:
                trial = study.ask(self.dists)
                params = self.params(trial)
                run = f"trial-{trial.number:0{width}d}"
                trial.set_user_attr("run", run)
                try:
                    spec = self.trial_spec(params, self.dir / run)
                except ConfigError as exc:  # e.g. snapshot_s must divide duration_s
                    trial.set_user_attr("status", "REJECTED")
                    trial.set_user_attr("error", short_text(str(exc), 500))
                    study.tell(trial, state=TrialState.PRUNED)  # a bad region, as DIVERGED
                    state["counted"] += 1
                    progress.update(Row(run, params, "REJECTED", error=str(exc)))
                    continue
                live[run] = trial
                return Job(run, params, spec)
            return None

        def finish(job: Job, row: Row) -> bool:
            trial = live.pop(job.run)
            kind, value, why = self.value_of(row)
            trial.set_user_attr("status", row.status)
            if row.error or why:
                trial.set_user_attr("error", short_text(row.error or why or "", 500))
            if kind == "COMPLETE":
                study.tell(trial, value)
            else:
                study.tell(trial, state=TrialState.PRUNED if kind == "PRUNED"
                           else TrialState.FAIL)
            if row.status in COUNTED:
                state["counted"] += 1
            if row.output.strip():
                (self.dir / "logs").mkdir(exist_ok=True)
                write_bytes(self.dir / "logs" / f"{job.run}.log", row.output.encode())
            shown = f"  {self.settings.objective} {value:.6g}" if value is not None else ""
            progress.update(row if row.error or not why else replace(row, error=why), shown)
            rows, extra = self.rows(study)
            write_summary(self.dir, rows, list(self.space), extra)
            if kind == "MISSING":
                problems.append(f"{why} (trial {job.run})")
            elif row.user_error:
                problems.append(f"{row.error} (trial {job.run})")
            return not problems

        try:
            stop = drive(pool, next_job, finish, stop_file)
        finally:
            progress.close()
        pool.close()
        with signals.deferred():
            if pool.owns_workers:  # their processes are gone: a run still RUNNING never ends
                for t in study.get_trials(deepcopy=False):
                    if t.user_attrs.get("status") == "RUNNING":
                        mark_ended(self.dir / t.user_attrs["run"], "INTERRUPTED",
                              "the search stopped its worker")
            figure = self.write_outputs(study)
            stop_file.unlink(missing_ok=True)
        return self.report(study, pool, stop, problems, figure)

    def report(self, study: Any, pool: Executor, stop: int | None, problems: list[str],
               figure: Path | None) -> int:
        rows, _ = self.rows(study)
        counts = Counter(r.status for r in rows)
        print(f"search {self.dir}: " + ", ".join(f"{n} {s}" for s, n in counts.most_common()))
        best = best_trial(study)
        if best is not None:
            values = ", ".join(f"{k}={value_text(v)}" for k, v in self.params(best).items())
            print(f"best: {best.user_attrs.get('run')}  {self.settings.objective} "
                  f"{best.value:.6g}  ({values})")
            print(f"  run: {self.dir / best.user_attrs.get('run', '')}")
        print(f"summary: {self.dir / SUMMARY}" + (f"\nfigure: {figure}" if figure else ""))
        if stop is not None:
            print(f"resume: python -m neurosim.run --resume {self.dir}")
            print(f"neurosim: interrupted ({signal.Signals(stop).name}); {pool.stopped()}",
                  file=sys.stderr)
            return signals.exit_code(stop)
        if problems:
            return EXIT_USAGE  # the caller says why (`problems`), in one line
        return EXIT_OK if best is not None else EXIT_FAILED


def best_trial(study: Any) -> Any:
    try:
        return study.best_trial
    except ValueError:  # no COMPLETE trial
        return None


def history_figure(study: Any, path: Path, target: str = "Objective Value") -> Path | None:
    """Optuna's optimisation-history plot (objective per trial, best so far)."""
    if best_trial(study) is None:
        return None
    try:
        import matplotlib.pyplot as plt
        from optuna.visualization.matplotlib import plot_optimization_history

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ExperimentalWarning
            ax = plot_optimization_history(study, target_name=target)
            fig = ax.figure
            # Optuna puts the legend outside the axes, on the right: with a long dotted
            # objective it took half the figure's width; inside, below the best-value line
            ax.legend(loc="lower right", fontsize="small")
            fig.set_size_inches(7.0, 4.5)
            fig.tight_layout()
            save_figure(path, fig)
            plt.close(fig)
    except Exception as exc:  # a convenience: summary.csv holds the numbers
        print(f"neurosim: note: no {path.name} ({type(exc).__name__}: {exc})", file=sys.stderr)
        return None
    return path


def trial_spec(base: Mapping[str, Any], params: Mapping[str, Any], argv: Sequence[str],
               parent: Path | None = None) -> RunSpec:
    """The run of one trial: the search's fixed values plus the trial's, built from values
    exactly as a single run's config is."""
    (spec,) = build_specs(base["experiment"], values={**base["values"], **params},
                          file_values=base["file_values"], quick=bool(base["quick"]),
                          seeds=[int(base["seed"])], out=base["out"], argv=argv)
    if parent is not None:
        spec = replace(spec, parent=parent, exact_dir=True, label=dict(params))
    return spec


def _check_space(base: Mapping[str, Any], space: Space, argv: Sequence[str]) -> RunSpec:
    """Build the base config, and it with each end of every range and each choice, before
    any trial: a value the config rejects fails now, in one line. (Values that are fine one by
    one but not together, by a check across fields, are trials REJECTED later.)"""
    spec = trial_spec(base, {}, argv)
    for key, dim in space.items():
        for value in dim.choices if isinstance(dim, Choice) else (dim.low, dim.high):
            trial_spec(base, {key: value}, argv)
    return spec


def make_base(experiment: str, *, values: Mapping[str, Any] | None = None,
              file_values: Mapping[str, Any] | None = None, quick: bool = False,
              seed: int = 0, out: str | Path = "runs") -> dict[str, Any]:
    """What every trial shares, as JSON-able values (stored in sweep.json for a resume)."""
    return {"experiment": experiment, "values": jsonable(dict(values or {})),
            "file_values": jsonable(dict(file_values or {})), "quick": bool(quick),
            "seed": seed, "out": str(out)}


# --- entry points ------------------------------------------------------------------------------


def start_search(base: dict[str, Any], space: Space, settings: Settings, executor: Executor,
                 argv: Sequence[str]) -> tuple[Path, int, list[str]]:
    """Check everything, make the search directory, run the search; returns the directory,
    the exit status and the problems that stopped it (a missing objective, a data error)."""
    if not space:
        raise ConfigError("a search needs a space: key=LOW:HIGH[:log], key=a,b,c or a "
                          "[search.space] table")
    if "seed" in space:
        raise ConfigError("the seed is not a hyper-parameter: a search runs every trial with "
                          "--seed N")
    base_spec = _check_space(base, space, argv)
    module = experiments.get(base_spec.experiment)
    distributions(module, space)  # integer ranges on integer fields
    search = {"objective": settings.objective, "direction": settings.direction,
              "trials": settings.trials, "sampler": settings.sampler,
              "space": {k: d.describe() for k, d in space.items()}, "study": STUDY}
    plan = new_plan("search", base_spec.experiment, argv, search=search, base=base)
    require_optuna()
    check_writable(base_spec.parent)
    try:
        executor.start(settings.trials)  # before the folder: it may refuse
        sweep_dir = make_sweep_dir(base_spec.parent, "search", {"search": search, "base": base})
        write_json(sweep_dir / PLAN, plan)
        print(f"search directory: {sweep_dir} ({settings.direction} {settings.objective}, "
              f"{settings.trials} trials, {settings.sampler} sampler, {executor.capacity} at a "
              "time)", flush=True)
        with locked(sweep_dir):
            found = Search(sweep_dir, plan)
            code = found.run(executor)
            return sweep_dir, code, found.problems
    finally:
        executor.close()


def resume(sweep_dir: str | Path, *, trials: int | None = None, workers: int | None = None,
           executor: Executor | None = None) -> tuple[int, list[str]]:
    """Continue a search: trials interrupted or never started are made up for; `trials`
    raises (or lowers) the total. Returns the exit status and the problems that stopped it."""
    sweep_dir = Path(sweep_dir).expanduser()
    plan = load_plan(sweep_dir)
    if plan["kind"] != "search":
        raise ConfigError(f"{sweep_dir} is a sweep, not a search")
    if trials is not None:
        Settings.make(plan["search"]["objective"], plan["search"]["direction"], trials,
                      plan["search"]["sampler"])
        plan["search"]["trials"] = trials
    require_optuna()
    executor = choose_executor(executor, workers)
    with locked(sweep_dir):
        found = Search(sweep_dir, plan)
        write_json(sweep_dir / PLAN, plan)
        executor.start(found.settings.trials)
        try:
            (sweep_dir / STOP).unlink(missing_ok=True)
            print(f"resuming search {sweep_dir} ({found.settings.trials} trials in all)",
                  flush=True)
            return found.run(executor), found.problems
        finally:
            executor.close()


# --- from Python -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchResult:
    """A search read back from its directory."""

    sweep_dir: Path
    study: Any  # optuna.Study
    best_value: float | None
    best_params: dict[str, Any]  # config values, ready for `values=`
    best_run: Path | None
    exit_code: int = 0


def load_search(sweep_dir: str | Path, exit_code: int = 0) -> SearchResult:
    """The study of a search directory and its best trial (config values decoded)."""
    sweep_dir = Path(sweep_dir).expanduser()
    plan = load_plan(sweep_dir)
    if plan["kind"] != "search":
        raise ConfigError(f"{sweep_dir} is a sweep, not a search")
    found = Search(sweep_dir, plan)
    optuna = require_optuna()
    study = optuna.load_study(study_name=STUDY_NAME, storage=found.storage_url())
    best = best_trial(study)
    if best is None:
        return SearchResult(sweep_dir, study, None, {}, None, exit_code)
    return SearchResult(sweep_dir, study, best.value, found.params(best),
                        sweep_dir / best.user_attrs["run"], exit_code)


def search(experiment: str, space: Mapping[str, Range | Choice], objective: str, *,
           trials: int = DEFAULT_TRIALS, direction: str | None = None, sampler: str = "tpe",
           values: Mapping[str, Any] | None = None, quick: bool = False, seed: int = 0,
           config: str | Path | None = None, out: str | Path = "runs",
           workers: int | None = None, executor: Executor | None = None) -> SearchResult:
    """Search `space` for the best `objective`; every trial's config is built from values.

    Parameters
    ----------
    experiment : str
    space : mapping of dotted key to `Range` or `Choice`
    objective : str
        A dotted path into metrics.json (a validation metric, never a test one).
    trials, direction, sampler
        As ``--trials``, ``--direction``, ``--sampler``.
    values, quick, seed, config, out, workers, executor
        As for `neurosim.runner.sweep.sweep` (one seed for every trial).

    Examples
    --------
    >>> search("digits", {"lr": Range(1e-4, 1e-1, log=True), "optimizer": Choice(("adam",
    ...        "momentum"))}, "val_accuracy", trials=30, values={"val_fraction": 0.2})

    Resume (or extend) it with ``neurosim.runner.search.resume(result.sweep_dir, trials=50)``.
    Bad input, a data error or an objective missing from metrics.json raise
    `InvalidParameterError`; ``exit_code`` is the command line's (0 when some trial completed).
    """
    space = {k: d.check(k) if isinstance(d, Range) else d for k, d in space.items()}
    settings = Settings.make(objective, direction, trials, sampler)
    base = make_base(experiment, values=values, file_values=config_file_values(experiment, config),
                     quick=quick, seed=seed, out=out)
    with signals.handling():
        sweep_dir, code, problems = start_search(
            base, dict(space), settings, choose_executor(executor, workers),
            ["neurosim.runner.search.search", experiment])
    if problems:
        raise ConfigError(f"{problems[0]}; the search in {sweep_dir} stopped")
    return load_search(sweep_dir, code)
