"""Every accepted configuration either runs or is refused up front (Hypothesis).

For every experiment, values drawn for its config keys — ordinary ones and edge values (zero,
negative, tiny, NaN, infinities, empty lists, unknown names) — either run in quick mode (exit 0,
or 3 for a run that diverged) or are refused with one line and exit status 2, leaving no folder
behind. Never a traceback, never a FAILED run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import tempfile
import types
import typing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurosim import experiments, run
from neurosim.runner.config import ConfigError, build, describe, field_hint
from tests.helpers import write_fake_mnist

#: keys whose drawn values would only measure something else: the compiled Brian2 targets
#: (minutes of compiling; covered by their own tests) and folders of data
NOT_DRAWN = {"backend", "data_dir"}

#: examples per experiment in the run-level property (quick runs take 0.2-8 s each)
EXAMPLES = {"stdp_digits": 3, "stdp_song2000": 3, "mnist": 3}
EXAMPLES_DEFAULT = 6


def _strip_optional(hint: Any) -> tuple[Any, bool]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0], True
    return hint, False


def values_for(hint: Any, base: Any) -> st.SearchStrategy:
    """Ordinary values (half of the draws) and edge values for a field of type `hint` whose
    usual value is `base`."""
    hint, optional = _strip_optional(hint)
    origin = typing.get_origin(hint)
    if hint is bool:
        ordinary: list[Any] = [True, False]
        edges: list[Any] = []
    elif hint is int:
        b = int(base or 1)
        ordinary, edges = [b, max(b // 2, 1), 2 * b, 2], [0, 1, -1]
    elif hint is float:
        b = float(base) if base else 1.0
        ordinary, edges = [b, b / 2, 2 * b], [0.0, -1.0, 1e-9, math.nan, math.inf, -math.inf]
    elif hint is str:
        ordinary, edges = [base], ["bogus", ""]
    elif origin is typing.Literal:
        ordinary, edges = list(typing.get_args(hint)), ["bogus"]
    elif origin in (tuple, list):
        item = typing.get_args(hint)[0] if typing.get_args(hint) else int
        b = list(base) if base else [1]
        if item is int:
            ordinary, edges = [b, [max(x // 2, 1) for x in b]], [[], [0], [-1] * len(b)]
        else:
            ordinary, edges = [b, [x * 2 for x in b]], [[], [math.nan] * len(b)]
    else:
        raise AssertionError(f"no strategy for {hint}")
    if optional:
        edges.append(None)
    strategy = st.sampled_from(ordinary)
    return st.one_of(strategy, st.sampled_from(edges)) if edges else strategy


def toml(value: Any) -> str:
    """A value as it is typed on the command line (TOML)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return {math.inf: "inf", -math.inf: "-inf"}.get(value, "nan" if value != value
                                                       else repr(value))
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    return str(value)


def draws(name: str) -> st.SearchStrategy[dict[str, Any]]:
    module = experiments.get(name)
    quick = getattr(module, "QUICK", {})
    docs = [d for d in describe(module.Config) if d.key not in NOT_DRAWN]
    strategies = {d.key: values_for(field_hint(module.Config, d.key), quick.get(d.key, d.default))
                  for d in docs}
    keys = st.lists(st.sampled_from(sorted(strategies)), min_size=1, max_size=2, unique=True)
    return keys.flatmap(lambda ks: st.fixed_dictionaries({k: strategies[k] for k in ks}))


ALL = list(experiments.EXPERIMENTS)


@pytest.mark.parametrize("name", ALL)
def test_any_values_build_a_config_or_are_refused(name):
    module = experiments.get(name)

    @settings(max_examples=150, deadline=None, derandomize=True)
    @given(values=draws(name))
    def check(values):
        try:
            cfg = build(module.Config, values)
        except ConfigError as exc:
            assert "\n" not in str(exc) and len(str(exc)) < 400
            return
        assert dataclasses.is_dataclass(cfg)

    check()


def _main(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run.main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory) -> Path:
    return write_fake_mnist(tmp_path_factory.mktemp("mnist"))


#: The experiments whose drawn quick runs take 5-30 s each: `slow`, out of the fast subset.
SLOW_DRAWN = {"brain_vs_ann", "sleep_replay", "stdp_digits", "dream_unlearning"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_DRAWN
                                  else n for n in ALL])
def test_drawn_configs_run_in_quick_mode_or_exit_2_with_one_line(name, mnist_dir):
    keys = {d.key for d in describe(experiments.get(name).Config)}
    data = [f"data_dir={mnist_dir}"] if "data_dir" in keys else []

    @settings(max_examples=EXAMPLES.get(name, EXAMPLES_DEFAULT), deadline=None,
              derandomize=True, suppress_health_check=[HealthCheck.too_slow])
    @given(values=draws(name))
    def check(values):
        out = Path(tempfile.mkdtemp(prefix="neurosim-prop-"))
        argv = [name, "--quick", *data, *(f"{k}={toml(v)}" for k, v in values.items()),
                "--out", str(out)]
        code, stdout, stderr = _main(argv)
        runs = [p for p in out.rglob("meta.json")]
        if code == 2:
            assert len(stderr.strip().splitlines()) == 1, stderr
            assert stderr.startswith("neurosim: error: ")
            assert not runs, f"exit 2 left {runs}"
            return
        assert code in (0, 3), (argv, code, stdout, stderr)
        assert len(runs) == 1
        status = {0: "COMPLETED", 3: "DIVERGED"}[code]
        assert f'"status": "{status}"' in runs[0].read_text()

    check()
