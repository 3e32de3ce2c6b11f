"""Library code logs instead of printing and sets no global state: no ``print``, no writes to
``sys.stdout``/``sys.stderr``, no pyplot or ``matplotlib.use``, no ``torch.set_num_threads``.
Only entry points (``app/cli``, ``benchmarks``, the tests) may do those."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ("agents", "app", "envs", "experiments", "ingest", "planning", "risk_model", "service")
LIBRARY += ("simulator",)
ENTRY_POINTS = ("app/cli",)
# The progress helper hands stderr to tqdm (bars go to stderr, never stdout).
STREAM_ALLOWED = {"ingest/progress.py"}
# A Ray Tune trial runs in a worker process of its own: its trainable is that process's entry
# point, the one place that can set the worker's torch threads.
THREADS_ALLOWED = {"experiments/sweep.py"}


def _modules() -> list[Path]:
    out = []
    for package in LIBRARY:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if not rel.startswith(ENTRY_POINTS):
                out.append(path)
    return out


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def offences(source: str, rel: str) -> list[str]:
    """What a module does that only an entry point may do, one line per offence."""
    found = []
    for node in ast.walk(ast.parse(source)):
        where = f"{rel}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name == "print":
                found.append(f"{where}: print() (log through logging.getLogger(__name__))")
            threads = name.endswith("set_num_threads") and rel not in THREADS_ALLOWED
            if threads or name == "matplotlib.use":
                found.append(f"{where}: {name}() sets global state (entry points only)")
        if isinstance(node, ast.Attribute) and _dotted(node) in ("sys.stderr", "sys.stdout"):
            if rel not in STREAM_ALLOWED:
                found.append(f"{where}: {_dotted(node)} (log, or use ingest.progress)")
        if isinstance(node, ast.ImportFrom | ast.Import):
            names = [a.name for a in node.names]
            module = node.module if isinstance(node, ast.ImportFrom) else ""
            if (
                module == "matplotlib.pyplot"
                or "matplotlib.pyplot" in names
                or (module == "matplotlib" and "pyplot" in names)
            ):
                found.append(f"{where}: pyplot (draw on matplotlib.figure.Figure)")
    return found


def test_the_check_finds_each_offence():
    bad = (
        "import sys\nimport matplotlib.pyplot as plt\nimport matplotlib\nimport torch\n"
        "print('x')\nsys.stderr.write('x')\nmatplotlib.use('Agg')\ntorch.set_num_threads(1)\n"
    )
    assert len(offences(bad, "x.py")) == 5
    assert offences("import logging\nlogging.getLogger(__name__).info('x')\n", "x.py") == []


def test_library_modules_have_no_entry_point_side_effects():
    modules = _modules()
    assert len(modules) > 50  # the scan sees the packages
    found = [
        line
        for path in modules
        for line in offences(path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix())
    ]
    assert found == []
