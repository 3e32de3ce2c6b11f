"""``deadstock data synth --partitioned``, ``data synth-bulk`` and ``data partition`` write
partitioned folders that the loader reads back as the same data."""

from __future__ import annotations

import pandas as pd

from app.cli.main import main
from ingest.loader import load
from ingest.panel import build_panel
from ingest.partitioned import is_partitioned


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    keys = [c for c in ("sku", "week") if c in frame]
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def test_synth_partitioned_and_partition_round_trip(tmp_path, capsys):
    args = ["data", "synth", "--n-skus", "15", "--weeks", "9", "--seed", "1"]
    assert main([*args, "--out", str(tmp_path / "flat"), "--format", "parquet"]) == 0
    assert main([*args, "--out", str(tmp_path / "parted"), "--partitioned"]) == 0
    assert is_partitioned(tmp_path / "parted") and (tmp_path / "parted" / "truth.parquet").exists()
    assert list((tmp_path / "parted" / "sales").glob("week=9/part-*.parquet"))
    flat = load(tmp_path / "flat")
    for folder in ("parted", "again"):
        if folder == "again":
            assert main(["data", "partition", "--data", str(tmp_path / "flat"),
                         "--out", str(tmp_path / "again"), "--block-skus", "4"]) == 0  # fmt: skip
            assert "partitioned" in capsys.readouterr().out
            assert len(list((tmp_path / "again" / "sales").glob("week=1/part-*"))) == 4
        back = load(tmp_path / folder)
        for name, frame in flat.tables.items():  # the same rows, ordered by SKU and week
            pd.testing.assert_frame_equal(_sorted(back.tables[name]), _sorted(frame))
        pd.testing.assert_frame_equal(build_panel(back), build_panel(flat))


def test_synth_bulk_writes_a_source_the_loader_reads(tmp_path, capsys):
    out = tmp_path / "bulk"
    assert main(["data", "synth-bulk", "--n-skus", "300", "--weeks", "5", "--out", str(out)]) == 0
    assert "sales" in capsys.readouterr().out
    data = load(out)
    assert len(data.products) == 300 and len(data.tables["stock"]) == 1500
    assert set(data.sales["week"]) <= set(range(1, 6)) and (data.sales["units"] > 0).all()
    again = tmp_path / "again"
    assert main(["data", "synth-bulk", "--n-skus", "300", "--weeks", "5", "--out", str(again)]) == 0
    pd.testing.assert_frame_equal(_sorted(load(again).sales), _sorted(data.sales))


def test_bad_arguments_exit_2(tmp_path, capsys):
    assert main(["data", "synth-bulk", "--n-skus", "0", "--out", str(tmp_path / "x")]) == 2
    assert "n_skus 0" in capsys.readouterr().err
    code = main(["data", "partition", "--data", str(tmp_path / "nowhere"), "--out",
                 str(tmp_path / "y")])  # fmt: skip
    assert code == 2 and "not found" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
