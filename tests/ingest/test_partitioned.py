"""Partitioned Parquet sources: read whole or streamed, they give the same panel as one file;
a bad partition is refused naming its file, column, value and what was expected."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest.dataset import Dataset
from ingest.errors import DataError
from ingest.loader import load
from ingest.panel import build_panel
from ingest.partitioned import (
    PartitionedWriter,
    is_partitioned,
    iter_shards,
    stream_panel,
    write_partitioned,
)
from simulator.synthetic import SyntheticConfig, generate_world, write_world

SHARD = 8  # SKUs per streamed shard: several shards, the last one short


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> tuple[Path, Path]:
    """The same synthetic world as one Parquet file per table and partitioned by week."""
    root = tmp_path_factory.mktemp("part")
    world = generate_world(SyntheticConfig(n_skus=30, n_weeks=10, seed=5))
    write_world(world, root / "one", fmt="parquet")
    (root / "one" / "truth.parquet").unlink()
    dataset = Dataset(tables=world.tables, source="synthetic", fingerprint="")
    write_partitioned(dataset, root / "parted", block_skus=16)
    return root / "one", root / "parted"


def test_layout_is_hive_partitioned_by_week(sources):
    one, parted = sources
    assert is_partitioned(parted) and not is_partitioned(one)
    weeks = sorted(int(p.name.split("=")[1]) for p in (parted / "sales").iterdir())
    assert weeks == sorted(pd.read_parquet(one / "sales.parquet")["week"].unique().tolist())
    assert len(list((parted / "sales").glob("week=*/part-*.parquet"))) > len(weeks)
    assert (parted / "products").is_dir()


def test_partitioned_source_gives_the_same_panel_as_one_file(sources):
    one, parted = sources
    whole = build_panel(load(one))
    assert len(whole) > 150
    pd.testing.assert_frame_equal(build_panel(load(parted)), whole)
    streamed = [panel for _, panel in stream_panel(parted, shard_skus=SHARD)]
    assert len(streamed) == 4  # 30 SKUs in shards of 8
    pd.testing.assert_frame_equal(pd.concat(streamed, ignore_index=True), whole)


def test_shards_hold_only_their_skus(sources):
    _, parted = sources
    shards = list(iter_shards(parted, shard_skus=SHARD))
    seen = [set(s.products["sku"]) for s in shards]
    assert sum(len(s) for s in seen) == 30 and len(set().union(*seen)) == 30
    for shard, skus in zip(shards, seen, strict=True):
        assert set(shard.sales["sku"]) <= skus


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def _one_sales_file(folder: Path) -> Path:
    return sorted((folder / "sales").glob("week=3/part-*.parquet"))[0]


def _refused(folder: Path) -> list[str]:
    """The messages of loading ``folder`` whole and streamed: both must refuse it."""
    messages = []
    with pytest.raises(DataError) as whole:
        load(folder)
    messages.append(str(whole.value))
    with pytest.raises(DataError) as streamed:
        list(iter_shards(folder, shard_skus=SHARD))
    messages.append(str(streamed.value))
    return messages


def test_wrong_column_type_names_file_column_value(sources, tmp_path):
    bad = _copy(sources[1], tmp_path / "bad")
    path = _one_sales_file(bad)
    table = pq.read_table(path)
    units = table["units"].to_pylist()
    units[0] = "lots"
    i = table.column_names.index("units")
    pq.write_table(table.set_column(i, "units", pa.array([str(u) for u in units])), path)
    for message in _refused(bad):
        assert str(path) in message and "'units'" in message and "lots" in message
        assert "number" in message


def test_missing_column_names_the_file(sources, tmp_path):
    bad = _copy(sources[1], tmp_path / "bad")
    path = _one_sales_file(bad)
    pq.write_table(pq.read_table(path).drop(["units"]), path)
    for message in _refused(bad):
        assert str(path) in message and "required column 'units' is missing" in message


def test_week_folder_that_is_not_an_integer(sources, tmp_path):
    bad = _copy(sources[1], tmp_path / "bad")
    (bad / "sales" / "week=3").rename(bad / "sales" / "week=three")
    for message in _refused(bad):
        assert "week=three" in message and "'week'" in message
        assert "integer partition value" in message


def test_sku_ids_stored_as_numbers_are_refused_for_streaming(tmp_path):
    products = pd.DataFrame({"sku": [1, 2], "category": ["a", "a"], "department": ["d", "d"]})
    sales = pd.DataFrame({"sku": [1, 2], "week": [1, 1], "units": [1.0, 2.0],
                          "revenue": [1.0, 2.0]})  # fmt: skip
    (tmp_path / "src" / "sales" / "week=1").mkdir(parents=True)
    products.to_parquet(tmp_path / "src" / "products.parquet")
    sales.drop(columns="week").to_parquet(tmp_path / "src" / "sales" / "week=1" / "p.parquet")
    assert len(load(tmp_path / "src").sales) == 2  # the in-memory path reads them
    with pytest.raises(DataError, match="text \\(string\\) ids"):
        list(iter_shards(tmp_path / "src"))


def test_same_key_in_two_files_is_a_duplicate(sources, tmp_path):
    bad = _copy(sources[1], tmp_path / "bad")
    path = _one_sales_file(bad)
    pq.write_table(pq.read_table(path), path.with_name("part-copy.parquet"))
    for message in _refused(bad):
        assert "duplicate keys" in message


def test_a_failed_write_leaves_the_previous_folder_whole(sources, tmp_path):
    out = _copy(sources[1], tmp_path / "out")
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    with pytest.raises(RuntimeError), PartitionedWriter(out) as writer:
        writer.write("products", pd.DataFrame({"sku": ["x"], "category": ["c"],
                                               "department": ["d"]}))  # fmt: skip
        raise RuntimeError("killed")
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert not list(tmp_path.glob(".out.*"))
