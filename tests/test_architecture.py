"""The import contract's part that import-linter does not check: no module takes another
module's private names (``from simulator.panel_prep import _price_observed``). The layers and
the absence of circles are checked by ``lint-imports`` (``[tool.importlinter]`` in
``pyproject.toml``), which ``make test`` runs before pytest."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "ingest",
    "risk_model",
    "simulator",
    "targeting",
    "envs",
    "agents",
    "planning",
    "fieldtests",
    "monitoring",
    "experiments",
    "app",
    "service",
)


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def private_imports(path: Path) -> list[str]:
    """``"module: from other import _name"`` for every private name taken from another
    module of the project."""
    here = _module_name(path)
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
            continue
        if node.module.split(".")[0] not in PACKAGES or node.module == here:
            continue
        for alias in node.names:
            if alias.name.startswith("_") and not alias.name.startswith("__"):
                found.append(f"{here}: from {node.module} import {alias.name}")
    return found


def test_the_package_list_matches_pyproject():
    import tomllib

    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert set(cfg["tool"]["importlinter"]["root_packages"]) == set(PACKAGES)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_another_modules_private_names(path):
    assert private_imports(path) == []


def test_the_check_finds_a_private_import(tmp_path, monkeypatch):
    pkg = tmp_path / "app"
    pkg.mkdir()
    bad = pkg / "bad.py"
    bad.write_text("from simulator.fit import _stage\nfrom app.bad import _own\n")
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    assert private_imports(bad) == ["app.bad: from simulator.fit import _stage"]


def _layers_from_pyproject() -> list[set[str]]:
    import tomllib

    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (contract,) = [c for c in cfg["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    return [{p.strip() for p in layer.split("|")} for layer in contract["layers"]]


def _layers_from_table(path: Path, heading: str) -> list[set[str]]:
    """The packages of a Markdown table's rows under ``heading``, grouped by layer number."""
    text = path.read_text(encoding="utf-8")
    section = text[text.index(heading) :]
    rows: dict[str, set[str]] = {}
    for line in section.splitlines()[1:]:
        if line.startswith("#"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].isdigit():
            rows.setdefault(cells[0], set()).add(cells[1].strip("`/"))
    return [rows[k] for k in sorted(rows, key=int, reverse=True)]


@pytest.mark.parametrize(
    ("doc", "heading"), [("README.md", "## Layout"), ("docs/architecture.md", "## The layers")]
)
def test_the_documented_layers_are_the_checked_ones(doc, heading):
    assert _layers_from_table(ROOT / doc, heading) == _layers_from_pyproject()
