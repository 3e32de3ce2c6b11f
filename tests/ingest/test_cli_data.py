"""The ``deadstock data`` commands and the data stage, end to end on synthetic data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from app.cli.main import main
from app.data import DataStageConfig, run_data_stage
from ingest.errors import ConfigError
from ingest.panel import PANEL_COLUMNS


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("world")
    assert main(["data", "synth", "--n-skus", "12", "--weeks", "16", "--seed", "3",
                 "--out", str(out), "--baskets"]) == 0  # fmt: skip
    return out


def test_done_when_synth_validates_and_missing_units_fails(world, tmp_path):
    ok = cli("data", "validate", "--data", str(world))
    assert ok.returncode == 0, ok.stderr
    assert "OK:" in ok.stdout and "sales" in ok.stdout
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in world.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    sales = pd.read_csv(broken / "sales.csv")
    sales.drop(columns="units").to_csv(broken / "sales.csv", index=False)
    bad = cli("data", "validate", "--data", str(broken))
    assert bad.returncode == 2
    assert "'units'" in bad.stderr and str(broken / "sales.csv") in bad.stderr
    assert "Traceback" not in bad.stdout + bad.stderr


def test_synth_is_deterministic(world, tmp_path):
    assert main(["data", "synth", "--n-skus", "12", "--weeks", "16", "--seed", "3",
                 "--out", str(tmp_path), "--baskets"]) == 0  # fmt: skip
    for name in ("products.csv", "sales.csv", "truth.csv"):
        assert (tmp_path / name).read_bytes() == (world / name).read_bytes()


def test_describe_text_and_json(world, capsys):
    assert main(["data", "describe", "--data", str(world)]) == 0
    text = capsys.readouterr().out
    assert "products" in text and "12 SKUs" in text and "weeks 1-16" in text
    assert main(["data", "describe", "--data", str(world), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["tables"]["products"]["rows"] == 12
    assert set(info["tables"]["sales"]["missing_share"]) >= {"units", "revenue"}


def test_convert_to_sqlite_and_back(world, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    assert main(["data", "convert", "--data", str(world), "--out", url]) == 0
    assert main(["data", "validate", "--data", url]) == 0
    assert "OK:" in capsys.readouterr().out


def test_clean_writes_tables_report_and_panel(world, tmp_path):
    assert main(["data", "clean", "--data", str(world), "--out", str(tmp_path / "c")]) == 0
    report = json.loads((tmp_path / "c" / "cleaning_report.json").read_text())
    assert report["rows_in"]["sales"] == report["rows_out"]["sales"]
    panel = pd.read_parquet(tmp_path / "c" / "panel.parquet")
    assert tuple(panel.columns) == PANEL_COLUMNS and panel["sku"].nunique() == 12
    assert (tmp_path / "c" / "tables" / "sales.parquet").is_file()


def test_user_errors_exit_2_without_traceback(tmp_path, capsys):
    assert main(["data", "validate", "--data", str(tmp_path / "missing")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["data", "synth", "--n-skus", "0", "--out", str(tmp_path)]) == 2


def test_data_stage_full_and_quick(world, tmp_path, cache_dir):
    result = run_data_stage(DataStageConfig(source=str(world), out_dir=str(tmp_path / "r")))
    assert result.panel["sku"].nunique() == 12
    assert {p.name for p in result.paths} == {
        "cleaning_report.json", "cleaning_report.txt", "data_summary.txt"
    }  # fmt: skip
    quick = run_data_stage(
        DataStageConfig(source=str(world), out_dir=None, quick=True, quick_n_skus=3)
    )
    assert quick.panel["sku"].nunique() == 3 and quick.paths == []
    top3 = result.panel.groupby("sku")["units"].sum().nlargest(3).index
    assert set(quick.panel["sku"]) == set(top3)
    with pytest.raises(ConfigError, match="quick_n_skus"):
        DataStageConfig(quick_n_skus=0)
