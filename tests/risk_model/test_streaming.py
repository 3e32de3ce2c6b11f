"""Risk features streamed shard by shard equal the whole-panel features of those columns."""

from __future__ import annotations

import pandas as pd

from ingest.dataset import Dataset
from ingest.loader import load
from ingest.panel import build_panel
from ingest.partitioned import write_partitioned
from risk_model.features import build_features
from risk_model.streaming import PER_SKU_FEATURES, stream_features
from simulator.synthetic import SyntheticConfig, generate_world


def test_streamed_features_equal_whole_panel_features(tmp_path):
    world = generate_world(SyntheticConfig(n_skus=24, n_weeks=16, seed=2))
    dataset = Dataset(tables=world.tables, source="synthetic", fingerprint="")
    write_partitioned(dataset, tmp_path / "parted", block_skus=10)
    whole = load(tmp_path / "parted")
    cutoff = 14
    expected = build_features(build_panel(whole), cutoff, products=whole.products)
    streamed = stream_features(tmp_path / "parted", cutoff, shard_skus=9)
    assert list(streamed.columns) == [c for c in PER_SKU_FEATURES if c in expected.columns]
    assert {"vel_4", "weeks_since_last_sale", "disc_share_13", "weeks_of_cover"} <= set(
        streamed.columns
    )
    assert "price_rel_category" not in streamed and "cat_vel_rank" not in streamed
    assert streamed["vel_13"].gt(0).any()
    pd.testing.assert_frame_equal(streamed, expected[streamed.columns])
