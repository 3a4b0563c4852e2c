"""The research script of docs/guide.md's library section runs as written: it is read from the
fenced block marked ``python research-script`` and executed, so the guide and the library
cannot drift apart."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guide.md"
#: what a research script may import: the library, never the runner
LIBRARY = {"numpy", "neurosim.ann", "neurosim.snn", "neurosim.sleep", "neurosim.plots",
           "neurosim.data"}


def research_script() -> str:
    blocks = re.findall(r"```python research-script\n(.*?)```", GUIDE.read_text(), re.S)
    assert len(blocks) == 1, "docs/guide.md needs exactly one ```python research-script block"
    return blocks[0]


def test_the_script_imports_the_library_only_and_stays_short():
    tree = ast.parse(research_script())
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            modules |= ({f"{node.module}.{a.name}" for a in node.names}
                        if node.module == "neurosim" else {node.module})
    assert modules <= LIBRARY, modules - LIBRARY
    code = [line for line in research_script().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]
    assert len(code) <= 30, len(code)


@pytest.fixture
def restore_brian2():
    """The script picks Brian2's numpy target; give the next test the target it had."""
    import brian2 as b2

    target = b2.prefs.codegen.target
    yield
    b2.prefs.codegen.target = target


def test_the_research_script_runs_as_written(tmp_path, monkeypatch, restore_brian2):
    monkeypatch.chdir(tmp_path)  # the script saves its figure in the working directory
    space: dict = {"__name__": "research_script"}
    exec(compile(research_script(), str(GUIDE), "exec"), space)
    history, run, slept, fig = (space[k] for k in ("history", "run", "slept", "fig"))
    assert history.status == "COMPLETED" and history.n_epochs == 5
    assert history.epochs["accuracy"][-1] > 0.9  # 5 epochs of Adam on digits
    assert run.output.shape == (50, 50, 10)  # steps x samples x classes
    assert 0.5 < space["spiking_accuracy"] <= 1.0  # the converted MLP classifies
    assert space["wta"].weights.shape == (64, 4)
    assert slept.finite and slept.layer_counts[1] > 0  # the hidden layer replayed
    loss_ax, raster_ax = fig.axes[:2]
    np.testing.assert_array_equal(loss_ax.lines[0].get_ydata(), history.epochs["loss"])
    assert len(raster_ax.lines[0].get_xdata()) == slept.layer_counts[1]
    assert (tmp_path / "research.png").stat().st_size > 0


def test_plots_take_the_library_types():
    """Before: loss_curve rejected the History that train returns and raster needed the
    arrays of a Spikes taken apart."""
    from neurosim import plots
    from neurosim.ann import History
    from neurosim.spikes import Spikes

    history = History()
    history.log(loss=1.0, accuracy=0.5)
    history.log(loss=0.5, accuracy=0.75)
    fig, axes = plots.figure(3)
    line = plots.loss_curve(axes[0, 0], history)
    np.testing.assert_array_equal(line.get_xdata(), [1, 2])
    np.testing.assert_array_equal(line.get_ydata(), [1.0, 0.5])
    dots = plots.raster(axes[0, 1], Spikes([0, 2], [0.1, 0.2], t_stop=0.5, n_neurons=3))
    np.testing.assert_array_equal(dots.get_xdata(), [0.1, 0.2])
    assert axes[0, 1].get_ylim() == (-0.5, 2.5) and axes[0, 1].get_xlim() == (0, 0.5)
    dense = np.zeros((4, 2), bool)
    dense[3, 1] = True
    dots = plots.raster(axes[0, 2], dense, dt_s=0.001, t_unit="ms")
    np.testing.assert_allclose(dots.get_xdata(), [3.0])  # step 3 of 1 ms
    assert axes[0, 2].get_xlabel() == "time (ms)"
    with pytest.raises(ValueError, match="2-D dense raster"):
        plots.raster(axes[0, 2], np.zeros(3))
