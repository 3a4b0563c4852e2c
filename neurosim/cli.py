"""The command line: ``python -m neurosim.run <experiment> [key=value ...]`` (or ``neurosim``).

The only module that parses argv and ``key=value`` text: it turns them into Python values and
calls the runner (`neurosim.runner`), which a research script calls the same way. Every problem
a user can cause ends in one line on stderr and exit status 2, with no run directory left
behind; a diverged run exits 3; an interrupted one 128 + the signal (130, 143).

Examples
--------
    python -m neurosim.run list
    python -m neurosim.run digits --help              # every key: type, default, meaning
    python -m neurosim.run digits --quick
    python -m neurosim.run xor lr=2.0 epochs=3000 --seed 1
    python -m neurosim.run digits seed=0,1,2          # a sweep: one run each + summary.csv
    python -m neurosim.run sleep_replay conditions=[sequential,sleep]
    python -m neurosim.run mnist --config experiments/mnist.toml data_dir=~/data/mnist
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from neurosim import experiments
from neurosim.runner import search as search_api
from neurosim.runner import signals
from neurosim.runner import sweep as sweep_api
from neurosim.runner.config import (
    ConfigError,
    closest,
    describe,
    field_hint,
    flatten,
    is_list_hint,
    load_toml,
    parse_overrides,
    parse_value,
    rejoin,
    short,
    split_top_level,
)
from neurosim.runner.executors import Dask, Executor, LocalProcesses
from neurosim.runner.plan import (
    PRESET_KEY,
    build_specs,
    check_presets,
    check_seed,
    load_plan,
    preset_notes,
    presets,
    value_text,
)
from neurosim.runner.search import Choice, Range, Settings, Space, make_base, space_from_toml
from neurosim.runner.single import (
    EXIT_OK,
    EXIT_USAGE,
    USER_ERRORS,
    Outcome,
    RunSpec,
    check_writable,
    fmt,
    run_one,
    summary_lines,
)

#: The longest error line printed; a longer message is cut (a value may be 100 KB).
MAX_ERROR = 400

#: A run's folder is announced when the experiment starts its work (its data loaded) or once
#: the run has lasted this long (seconds), whichever is first: a run refused while loading its
#: data removes its folder and prints nothing about it; the end-of-run lines name it anyway.
ANNOUNCE_AFTER_S = 5.0

#: ``--executor NAME``: the class that runs the jobs.
EXECUTORS: dict[str, Callable[..., Executor]] = {"process": LocalProcesses, "dask": Dask}

#: Options that take a run directory or a sweep directory and little else.
ALONE = {"rerun": ("out",), "resume": ("workers", "executor", "scheduler", "trials")}
SEARCH_ONLY = ("objective", "direction", "trials", "sampler")
SWEEP_OPTIONS = ("seeds", "executor", "scheduler")


# --- argument parsing --------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as for every other user error
        raise ConfigError(message)


def make_parser() -> argparse.ArgumentParser:
    """The parser; an option not given is absent from the namespace (no default to guess
    from), so which options a command line gave is known exactly."""
    p = _Parser(
        prog="python -m neurosim.run",
        description="Run a neurosim experiment; each run gets its own directory.",
        epilog="'list' names every experiment; 'NAME --help' lists the keys of one.",
        add_help=False, argument_default=argparse.SUPPRESS,
    )
    p.add_argument("experiment", nargs="?", help="experiment name, 'list', or 'show NAME'")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="config overrides parsed as TOML; a,b,c sweeps over values")
    p.add_argument("-h", "--help", action="store_true", help="this help, or an experiment's keys")
    p.add_argument("--config", metavar="FILE.toml", help="TOML file of config values")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--out", metavar="DIR", help="parent of run directories (default runs)")
    p.add_argument("--quick", action="store_true", help="a fast smoke-test version of the run")
    p.add_argument("-m", "--multirun", action="store_true",
                   help="accepted for Hydra habits; a comma-separated value always sweeps")
    s = p.add_argument_group("sweeps and searches (docs/sweeps.md)")
    s.add_argument("--seeds", type=int, metavar="N", help="sweep over seeds 0..N-1")
    s.add_argument("--workers", type=int, metavar="N",
                   help="parallel jobs of a sweep (default: cores, at most the jobs)")
    s.add_argument("--executor", choices=tuple(EXECUTORS),
                   help="local processes (default) or a Dask LocalCluster (neurosim[dask])")
    s.add_argument("--scheduler", metavar="ADDRESS",
                   help="run a sweep on a running Dask cluster, e.g. tcp://host:8786")
    s.add_argument("--resume", metavar="SWEEP_DIR",
                   help="run the jobs of a sweep (or the trials of a search) not COMPLETED")
    s.add_argument("--rerun", metavar="RUN_DIR",
                   help="repeat a run from its config.json and compare the metrics")
    s.add_argument("--search", action="store_true",
                   help="Optuna search (neurosim[search]): key=LOW:HIGH[:log], key=a,b,c")
    s.add_argument("--objective", metavar="METRIC",
                   help="search: the validation metric to optimise (dotted path in metrics.json)")
    s.add_argument("--direction", choices=("maximize", "minimize"),
                   help="search: default minimize for loss/error/mse/mae names, else maximize")
    s.add_argument("--trials", type=int, metavar="N", help="search: trials in all (default 20)")
    s.add_argument("--sampler", choices=("tpe", "random"), help="search: Optuna sampler (tpe)")
    return p


def _get(args: argparse.Namespace, name: str, default: Any = None) -> Any:
    return getattr(args, name, default)


def check_list_values(module: Any, overrides: Mapping[str, list[Any]]) -> None:
    """``hidden=64,32`` on a list field is ambiguous (two layers, or a sweep?): refuse it."""
    for key, values in overrides.items():
        if len(values) < 2 or any(isinstance(v, list) for v in values):
            continue
        try:
            hint = field_hint(module.Config, key)
        except KeyError:
            continue  # unknown keys are reported when the config is built
        if is_list_hint(hint):
            joined = ",".join(map(str, values))
            raise ConfigError(
                f"{key}={joined} is ambiguous: write {key}=[{joined}] for one list, or "
                f"{key}=" + ",".join(f"[{v}]" for v in values) + " to sweep over lists"
            )


def _name_and_file(args: argparse.Namespace) -> tuple[str, dict[str, Any], Any]:
    """The experiment's name, the config file's values (dotted) and the file's seed."""
    name = _get(args, "experiment")
    overrides = list(_get(args, "overrides", []))
    if name is not None and "=" in name:  # `--config F.toml lr=0.1`: no name, only overrides
        overrides.insert(0, name)
        name = None
    args.overrides = overrides
    file_values: dict[str, Any] = {}
    config = _get(args, "config")
    if config:  # a [search] table is the search's, not the config's
        file_values = flatten({k: v for k, v in load_toml(config).items() if k != "search"})
        file_name = file_values.pop("experiment", None)
        if name is None:
            name = file_name
        elif file_name is not None and file_name != name:
            raise ConfigError(f"{config} is a config for '{file_name}', not '{name}'")
    if name is None:
        raise ConfigError("name an experiment (see: python -m neurosim.run list)")
    experiments.get(name)
    return name, file_values, file_values.pop("seed", None)


def _out(args: argparse.Namespace) -> Path:
    out = _get(args, "out", "runs")
    if not out.strip():
        raise ConfigError("--out must name a directory, got an empty string")
    return Path(out).expanduser()


def resolve(args: argparse.Namespace, argv: list[str]) -> list[RunSpec]:
    """The runs a command line asks for, every config built (and checked) from values."""
    name, file_values, file_seed = _name_and_file(args)
    module = experiments.get(name)
    overrides = parse_overrides(args.overrides)
    check_list_values(module, overrides)
    seeds = overrides.pop("seed", None)
    n_seeds = _get(args, "seeds")
    given_seed = _get(args, "seed")
    if n_seeds is not None:
        if n_seeds < 1:
            raise ConfigError(f"--seeds must be >= 1, got {n_seeds}")
        if seeds is not None or given_seed is not None:
            raise ConfigError("give the seeds once: --seeds N, --seed N or seed=...")
        seeds = list(range(n_seeds))
    elif seeds is None:
        seeds = [given_seed if given_seed is not None else (file_seed or 0)]
    elif given_seed is not None:
        raise ConfigError("give the seed once: either --seed N or seed=...")
    seeds = [check_seed(s) for s in seeds]
    fixed = {k: v[0] for k, v in overrides.items() if len(v) == 1}
    grid = {k: v for k, v in overrides.items() if len(v) > 1}
    return build_specs(name, values=fixed, grid=grid, seeds=seeds,
                       quick=bool(_get(args, "quick", False)), file_values=file_values,
                       out=_out(args), argv=argv, label_seed=n_seeds is not None)


def make_executor(args: argparse.Namespace) -> Executor:
    kind, scheduler, workers = (_get(args, k) for k in ("executor", "scheduler", "workers"))
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if scheduler:
        if kind not in (None, "dask"):
            raise ConfigError(f"--scheduler sends the jobs to Dask: drop --executor {kind}")
        return Dask(workers, scheduler)
    return EXECUTORS[kind or "process"](workers)


# --- the search space, as text -----------------------------------------------------------------


def parse_range(key: str, text: str) -> Range | None:
    """``LOW:HIGH``, ``LOW:HIGH:log`` or ``LOW:HIGH:STEP`` -> a Range; anything else None."""
    parts = [p.strip() for p in text.split(":")]
    if len(parts) not in (2, 3):
        return None
    low, high = parse_value(parts[0]), parse_value(parts[1])
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high)):
        return None
    log, step = False, None
    if len(parts) == 3:
        if parts[2] == "log":
            log = True
        else:
            step = parse_value(parts[2])
            if not isinstance(step, int | float) or isinstance(step, bool):
                raise ConfigError(f"search range {key}={text}: the third part is 'log' or a "
                                  f"step, got {short(parts[2])}")
    return Range(low, high, log, step).check(key)


def split_space(items: Sequence[str]) -> tuple[Space, list[str]]:
    """Command-line items -> (the space, the ``key=value`` items that fix the config)."""
    space: Space = {}
    fixed: list[str] = []
    for item in rejoin(items):
        key, eq, text = item.partition("=")
        key = key.strip()
        if not eq or not key:
            fixed.append(item)  # parse_overrides names the problem
            continue
        found = parse_range(key, text)
        if found is None:
            parts = split_top_level(text)
            if len(parts) > 1:
                found = Choice(tuple(parse_value(p.strip()) for p in parts))
        if found is None:
            fixed.append(item)
        else:
            space[key] = found
    return space, fixed


def run_search(args: argparse.Namespace, argv: list[str]) -> int:
    """``NAME --search key=LOW:HIGH ...``: the space and settings from text, then the API."""
    if _get(args, "seeds") is not None:
        raise ConfigError("a search runs one seed per trial: use --seed N, not --seeds")
    search_api.require_optuna()
    name, file_values, file_seed = _name_and_file(args)
    space, fixed_items = split_space(args.overrides)
    table: dict[str, Any] = {}
    if _get(args, "config"):
        table = load_toml(args.config).get("search", {})
        if not isinstance(table, Mapping):
            raise ConfigError(f"{args.config}: [search] must be a table")
        unknown = set(table) - search_api.SEARCH_KEYS
        if unknown:
            raise ConfigError(f"{args.config}: unknown key search.{sorted(unknown)[0]}; "
                              f"{closest(sorted(unknown)[0], search_api.SEARCH_KEYS)}")
    space = {**space_from_toml(table.get("space", {})), **space}
    trials = _get(args, "trials")
    settings = Settings.make(_get(args, "objective") or table.get("objective"),
                             _get(args, "direction") or table.get("direction"),
                             trials if trials is not None else table.get("trials"),
                             _get(args, "sampler") or table.get("sampler"))
    overrides = parse_overrides(fixed_items)
    if "seed" in overrides:
        raise ConfigError("a search runs every trial with one seed: use --seed N")
    check_list_values(experiments.get(name), overrides)
    seed = _get(args, "seed")
    seed = check_seed(seed if seed is not None else (file_seed or 0))
    base = make_base(name, values={k: v[0] for k, v in overrides.items()},
                     file_values=file_values, quick=bool(_get(args, "quick", False)),
                     seed=seed, out=_out(args))
    _, code, problems = search_api.start_search(base, space, settings, make_executor(args),
                                                argv)
    if problems:
        print(error_line(ConfigError(f"{problems[0]}; the search stopped")), file=sys.stderr)
    return code


# --- what the terminal shows -------------------------------------------------------------------


def print_list() -> None:
    width = max(map(len, experiments.EXPERIMENTS))
    for name, (_, description) in experiments.EXPERIMENTS.items():
        print(f"{name:<{width}}  {description}")


def print_keys(name: str) -> None:
    """Every key of experiment `name`: type, default and the comment beside it."""
    module = experiments.get(name)
    docs = describe(module.Config)
    print(f"{name}: {experiments.EXPERIMENTS[name][1]}")
    print(f"usage: python -m neurosim.run {name} [key=value ...] [--quick] [--seed N]\n")
    kw = max(len(d.key) for d in docs)
    tw = max(len(d.type) for d in docs)
    for d in docs:
        default = short(d.default)
        print(f"  {d.key:<{kw}}  {d.type:<{tw}}  = {default:<10}  {d.comment}")
    table, notes = presets(module), preset_notes(module)
    if table:
        check_presets(name)
        print(f"\npresets: {PRESET_KEY}=NAME sets these values under a config file, --quick "
              "and the command line:")
        for preset, values in table.items():
            print(f"  {PRESET_KEY}={preset}: {notes.get(preset, '(no note)')}")
            print(wrap_values(values, indent=" " * 4))
    quick = getattr(module, "QUICK", {})
    if quick:
        print("\n--quick sets: " + " ".join(f"{k}={fmt(v)}" for k, v in quick.items()))


def wrap_values(values: Mapping[str, Any], indent: str, width: int = 100) -> str:
    """``key=value`` items as lines of at most `width` characters (an item is not split)."""
    lines, line = [], indent
    for item in (f"{k}={value_text(v)}" for k, v in values.items()):
        if line.strip() and len(line) + 1 + len(item) > width:
            lines.append(line)
            line = indent
        line += (" " if line.strip() else "") + item
    return "\n".join([*lines, line])


def error_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if len(text) > MAX_ERROR:
        text = text[:MAX_ERROR] + f"... ({len(text) - MAX_ERROR} more characters)"
    return f"neurosim: error: {text}"


class _Announcer:
    """``run directory: PATH`` on stdout once the experiment starts its work (its first
    progress bar), or once it has run `ANNOUNCE_AFTER_S`, whichever comes first."""

    def __init__(self) -> None:
        self.timer: threading.Timer | None = None
        self.line: str | None = None
        self.lock = threading.Lock()

    def __call__(self, line: str) -> None:
        self.line = line
        self.timer = threading.Timer(ANNOUNCE_AFTER_S, self.work)
        self.timer.daemon = True
        self.timer.start()

    def work(self) -> None:
        with self.lock:
            line, self.line = self.line, None
        if line is not None:
            print(line, flush=True)

    def cancel(self) -> None:
        self.line = None
        if self.timer is not None:
            self.timer.cancel()


class _PipeSafe(io.TextIOBase):
    """stdout that survives its reader going away (``| head -1``): the first BrokenPipeError
    points the file descriptor at /dev/null and later output is dropped, so the run ends as
    it would have, with the status it records, and no traceback at exit."""

    def __init__(self, stream: Any):
        self.stream, self.broken = stream, False

    def _broke(self) -> None:
        self.broken = True
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self.stream.fileno())
            os.close(null)
        with contextlib.suppress(OSError, ValueError):
            self.stream.flush()  # what was buffered goes to /dev/null now

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                self.stream.write(text)
            except BrokenPipeError:
                self._broke()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._broke()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.stream, "encoding", "utf-8")


def _interrupted(exc: KeyboardInterrupt, done: list[Outcome]) -> int:
    """Exit status of a run stopped by a signal (one line unless the run already ended)."""
    if done:  # the run had already ended and written its status
        return done[-1].exit_code
    print("neurosim: interrupted", file=sys.stderr)
    return signals.exit_code(signals.signal_of(exc))


def main(argv: Sequence[str] | None = None, restore_signals: bool = True) -> int:
    """Run the command line `argv` (default ``sys.argv[1:]``); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    done: list[Outcome] = []
    original, safe = sys.stdout, _PipeSafe(sys.stdout)
    sys.stdout = safe
    try:
        with signals.handling(restore=restore_signals):
            try:
                return _main(argv, done)
            except USER_ERRORS as exc:
                print(error_line(exc), file=sys.stderr)
                return EXIT_USAGE
            except Exception as exc:  # a Ctrl-C that surfaced as an ImportError (interrupt_behind)
                behind = signals.interrupt_behind(exc)
                if behind is None:
                    raise
                return _interrupted(behind, done)
            except KeyboardInterrupt as exc:
                return _interrupted(exc, done)
    finally:
        safe.flush()
        sys.stdout = original
        if safe.broken and done:
            print(f"neurosim: note: the output was closed early (broken pipe); the run went on "
                  f"and ended {done[-1].status}: {done[-1].run_dir}", file=sys.stderr)


def _main(argv: list[str], done: list[Outcome]) -> int:
    args = make_parser().parse_intermixed_args(argv)
    given = set(vars(args))
    if _get(args, "experiment") == "show" and _get(args, "overrides"):
        args.experiment = args.overrides.pop(0)
        args.help = True
    if _get(args, "help"):
        name = _get(args, "experiment")
        if name and "=" not in name:
            print_keys(name)
        else:
            make_parser().print_help()
        return EXIT_OK
    if _get(args, "experiment") == "list":
        print_list()
        return EXIT_OK
    full_argv = ["python -m neurosim.run", *argv]
    for flag, keep in ALONE.items():
        if flag in given:
            extra = sorted(given - {flag, *keep})
            if extra:
                shown = ["an experiment" if k == "experiment" else "key=value"
                         if k == "overrides" else "--" + k.replace("_", "-") for k in extra]
                allowed = ", ".join("--" + k for k in keep)
                raise ConfigError(f"--{flag} takes a directory and only {allowed}; drop "
                                  f"{', '.join(shown)}")
    if "rerun" in given:
        return sweep_api.rerun(args.rerun, _out(args), full_argv)
    if "resume" in given:
        return _resume(args)
    if "search" not in given:
        only = [f"--{k}" for k in SEARCH_ONLY if k in given]
        if only:
            raise ConfigError(f"{', '.join(only)} {'is' if len(only) == 1 else 'are'} for "
                              "searches: add --search")
    else:
        return run_search(args, full_argv)
    specs = resolve(args, full_argv)
    if len(specs) > 1 or any(k in given for k in SWEEP_OPTIONS):
        result = sweep_api.run_specs(specs, make_executor(args))
        if result.error:
            print(error_line(ConfigError(result.error)), file=sys.stderr)
        return result.exit_code
    if "workers" in given:
        make_executor(args)  # --workers 0 is refused even when nothing is swept
    (spec,) = specs
    check_writable(spec.parent)
    module = experiments.get(spec.experiment)
    announce = _Announcer()
    try:
        outcome = run_one(spec, say=announce, on_work=announce.work)
    finally:
        announce.cancel()
    done.append(outcome)
    print("\n".join(summary_lines(outcome, module)))
    return outcome.exit_code


def _resume(args: argparse.Namespace) -> int:
    sweep_dir = Path(args.resume).expanduser()
    plan = load_plan(sweep_dir)
    executor = make_executor(args)
    if plan["kind"] == "search":
        code, problems = search_api.resume(sweep_dir, trials=_get(args, "trials"),
                                           executor=executor)
        if problems:
            print(error_line(ConfigError(f"{problems[0]}; the search stopped")),
                  file=sys.stderr)
        return code
    if _get(args, "trials") is not None:
        raise ConfigError("--trials is for searches; this is a sweep")
    result = sweep_api.resume(sweep_dir, executor=executor,
                              argv=["python -m neurosim.run", "--resume", str(sweep_dir)])
    if result.error:
        print(error_line(ConfigError(result.error)), file=sys.stderr)
    return result.exit_code


def cli() -> None:
    """The console script ``neurosim`` and ``python -m neurosim.run``.

    The run's status is written and final: from here to the process's end a signal changes
    nothing (ignored, not left to the default action during interpreter shutdown, which would
    kill the process with another exit status than the one meta.json implies). After a
    signal that cut an import short the process ends without Python's shutdown, whose
    clean-up of the half-initialised C extension could abort it (`signals.import_cut`).
    """
    code = main(restore_signals=False)
    for s in signals.SIGNALS:
        signal.signal(s, signal.SIG_IGN)
    if signals.import_cut():  # a half-initialised C extension may abort the shutdown
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
