"""The scale job's streaming steps: per-SKU aggregates by shard, and the sharded export."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from agents.baselines import WeeksOfCover
from app.pipeline_config import DEFAULT_RULES
from app.streaming import (
    ELASTICITY_RANGE,
    category_elasticity,
    export_sharded,
    shard_aggregates,
    stream_aggregates,
)
from ingest.loader import load
from simulator.bulk import write_bulk

N_SKUS = 900


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    out = tmp_path_factory.mktemp("bulk") / "src"
    rows = write_bulk(out, N_SKUS, 8, seed=4, progress=False)
    assert rows["products"] == N_SKUS and rows["stock"] == N_SKUS * 8
    return out


def test_streamed_aggregates_equal_the_whole_tables(source):
    streamed = stream_aggregates(source, shard_skus=250)
    whole = load(source)
    expected = shard_aggregates(whole.products, whole.sales, whole.get("stock"), 8)
    pd.testing.assert_frame_equal(streamed, expected)
    assert streamed["sku"].is_monotonic_increasing and len(streamed) == N_SKUS
    assert streamed["full_units"].sum() + streamed["disc_units"].sum() == pytest.approx(
        whole.sales["units"].sum()
    )


def test_pooled_elasticity_is_negative_and_bounded(source):
    e = category_elasticity(stream_aggregates(source, shard_skus=400))
    assert e.between(*ELASTICITY_RANGE).all()
    # discounts raise sales in the generator, so most categories show a negative slope
    assert (e < -0.6).mean() > 0.5


def _export(source, out, seed=0, policy=None):
    aggs = stream_aggregates(source, shard_skus=400)
    e = category_elasticity(aggs)
    steps = list(export_sharded(policy or WeeksOfCover(), aggs, e, DEFAULT_RULES, 6, out,
                                plan_key="t", shard_skus=350, n_episodes=1, seed=seed))  # fmt: skip
    return steps


def test_sharded_export_is_complete_and_repeatable(source, tmp_path):
    steps = _export(source, tmp_path / "a")
    assert [s[0] for s in steps] == [350, 700, 900]
    files = sorted((tmp_path / "a").glob("part-*.parquet"))
    assert len(files) == 3
    table = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    assert len(table) == steps[-1][1] == N_SKUS * 6
    _export(source, tmp_path / "b")
    for f in files:
        pd.testing.assert_frame_equal(pd.read_parquet(f), pd.read_parquet(tmp_path / "b" / f.name))


class _Broken(WeeksOfCover):
    """Fails on the second shard, as a killed worker would."""

    def act(self, observations, masks, context=None):
        if len(masks) < 350:  # the last shard holds fewer SKUs
            raise RuntimeError("worker lost")
        return super().act(observations, masks, context)


def test_a_failed_export_leaves_the_previous_one_whole(source, tmp_path):
    _export(source, tmp_path / "out")
    before = {f.name: f.read_bytes() for f in (tmp_path / "out").iterdir()}
    with pytest.raises(RuntimeError, match="worker lost"):
        _export(source, tmp_path / "out", seed=1, policy=_Broken())
    after = {f.name: f.read_bytes() for f in (tmp_path / "out").iterdir()}
    assert after == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]
    assert np.all([len(v) > 0 for v in after.values()])
