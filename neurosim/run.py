"""``python -m neurosim.run``: the command line's entry point (`neurosim.cli` does the work).

Run from the folder that holds the checkout, a checkout named ``neurosim`` would otherwise
shadow the package: Python puts the working directory first on ``sys.path`` and takes the
checkout's root (no ``__init__.py``) for a namespace package ``neurosim``, so that the TOML
folder ``experiments/`` came in as ``neurosim.experiments`` (an AttributeError on
``EXPERIMENTS``). `_unshadow` puts the real package first before anything else is imported.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path


def _stop_before_start(signum: int, frame) -> None:
    """Ctrl-C or SIGTERM while the command line is still importing (a second or more on a
    loaded machine): nothing is written yet, so say so in one line and exit 128 + signal,
    instead of Python's KeyboardInterrupt traceback from deep inside an import."""
    os.write(2, b"neurosim: interrupted\n")
    os._exit(128 + signum)


if __name__ == "__main__":  # `neurosim.runner.signals` takes over once the runner is imported
    for _s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(_s, _stop_before_start)


def _unshadow() -> None:
    """Make ``neurosim`` the package this file belongs to, not a namespace package that a
    folder in the working directory made of the same name."""
    package = sys.modules.get("neurosim")
    if package is None or getattr(package, "__file__", None) is not None:
        return  # a regular package: nothing shadows it
    here = Path(__file__).resolve().parent
    for name in [m for m in sys.modules if m == "neurosim" or m.startswith("neurosim.")]:
        if sys.modules[name] is not sys.modules.get("__main__"):
            del sys.modules[name]
    sys.path.insert(0, str(here.parent))


_unshadow()

from neurosim.cli import cli, main  # noqa: E402  (after the guard above)

__all__ = ["cli", "main"]

if __name__ == "__main__":
    cli()
