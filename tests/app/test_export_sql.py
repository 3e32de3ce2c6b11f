"""SQL exports of a run: held until the run publishes, then one transaction with the swap."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import create_engine, inspect

from app.exports import deferred_sql, read_table, write_tables
from app.pipeline_config import ExportConfig


def _tables(key: str, n: int = 30_000) -> dict[str, pd.DataFrame]:
    # More rows than one to_sql chunk (10,000), so a per-chunk commit would show.
    return {
        "schedules": pd.DataFrame({"plan_key": key, "sku": [f"s{i}" for i in range(n)]}),
        "sku_summary": pd.DataFrame({"plan_key": key, "sku": ["s0"], "risk": [0.5]}),
    }


def _tables_in(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_deferred_tables_are_written_only_at_commit_and_in_one_transaction(tmp_path):
    url = f"sqlite:///{tmp_path / 'plans.db'}"
    cfg = ExportConfig(format="sql", sql_url=url)
    with deferred_sql() as pending:
        names = write_tables(_tables("K1"), tmp_path, cfg)
        assert names == {"schedules": "deadstock_schedules", "sku_summary": "deadstock_sku_summary"}
        assert _tables_in(url) == set()  # held, not written

        def swap_fails() -> None:
            raise OSError("the folder swap failed")

        with pytest.raises(OSError, match="swap"):
            pending.commit(before_commit=swap_fails)
        assert _tables_in(url) == set()  # every insert rolled back

        swapped = []
        pending.commit(before_commit=lambda: swapped.append(True))
    assert swapped == [True]
    assert len(read_table("schedules", tmp_path, cfg)) == 30_000
    assert len(read_table("sku_summary", tmp_path, cfg)) == 1


def test_outside_a_run_sql_is_written_at_once_and_files_are_never_deferred(tmp_path):
    url = f"sqlite:///{tmp_path / 'plans.db'}"
    write_tables(_tables("K1", 5), tmp_path, ExportConfig(format="sql", sql_url=url))
    assert "deadstock_schedules" in _tables_in(url)
    with deferred_sql() as pending:
        write_tables(_tables("K2", 5), tmp_path / "files", ExportConfig(format="csv"))
        assert (tmp_path / "files" / "schedules.csv").is_file()
        assert pending.tables == {}
        calls = []
        assert pending.commit(before_commit=lambda: calls.append(1)) == {}
        assert calls == [1]  # the swap still happens without SQL
