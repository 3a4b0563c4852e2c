"""Shared by the benchmark scripts: describe the machine, write a section of docs/benchmarks.md.

Each benchmark owns one section of the page, between ``<!-- NAME:start -->`` and
``<!-- NAME:end -->``; running it again replaces that section and leaves the others alone.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
from importlib import metadata
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md"

HEADER = """# Benchmarks

Speed is measured by the scripts in `experiments/benchmarks/`, never by timed tests. Each script
runs neurosim and its peers side by side in one process, alternating between them, and reports
the median of the repeats and the ratio against neurosim on the same workload. Each section below
is rewritten by the script named in it; the machine it ran on is described in the section.
"""


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> str:
    """One line describing where the numbers were measured."""
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    versions = []
    for pkg in ("numpy", "torch", "scikit-learn", "brian2"):
        try:
            versions.append(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            pass
    return (f"{cpu_model()}, {os.cpu_count()} cores{mem}; {platform.system()} "
            f"{platform.release()}; Python {platform.python_version()}; " + ", ".join(versions)
            + f"; measured {dt.date.today().isoformat()}")


def write_section(name: str, body: str, doc: Path = DOC) -> None:
    """Replace (or append) the section `name` of the benchmarks page with `body`."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = doc.read_text() if doc.exists() else HEADER
    block = f"{start}\n{body.strip()}\n{end}"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    tmp = doc.with_name(f".{doc.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, doc)


def table(header: list[str], rows: list[list[object]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
