"""docs/data.md documents every canonical column and every panel column."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.panel import PANEL_COLUMNS
from ingest.schema import TABLES

DOC = (Path(__file__).parents[2] / "docs" / "data.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("table", sorted(TABLES))
def test_every_schema_column_is_documented(table):
    spec = TABLES[table]
    assert f"### `{table}`" in DOC
    section = DOC.split(f"### `{table}`", 1)[1].split("\n### ", 1)[0]
    for column in spec.columns:
        assert f"| `{column.name}` | {column.dtype} | {column.unit} |" in section, column.name


def test_every_panel_column_is_documented():
    section = DOC.split("## The weekly panel", 1)[1]
    for column in PANEL_COLUMNS:
        assert f"`{column}`" in section, column
