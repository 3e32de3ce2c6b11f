"""Risk features of a partitioned source, built shard by shard of SKUs.

:func:`stream_features` walks :func:`ingest.partitioned.stream_panel` and computes
:func:`~risk_model.features.build_features` on each shard's panel, so memory is bounded by
a shard, not by the source. Only the features of a SKU's own history are kept
(:data:`PER_SKU_FEATURES`: sales, price level and change, stock, interactions); they equal
the whole-source features exactly. Features that compare a SKU with its category,
department, manufacturer or product line (the ``product`` group and
``price_rel_category``) need every SKU of the group at once and are left out: a shard
would see only part of a group.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pandas as pd

from ingest.partitioned import DEFAULT_SHARD_SKUS, stream_panel
from risk_model.features import FEATURE_GROUPS, FeatureConfig, build_features

log = logging.getLogger(__name__)

#: Features that depend on one SKU's rows only, in :data:`FEATURE_GROUPS` order.
PER_SKU_FEATURES: tuple[str, ...] = tuple(
    name
    for group, names in FEATURE_GROUPS.items()
    if group not in ("product", "buyers")
    for name in names
    if name != "price_rel_category"
)


def iter_features(
    source: str | os.PathLike[str],
    cutoff: int,
    config: FeatureConfig | None = None,
    *,
    shard_skus: int = DEFAULT_SHARD_SKUS,
) -> Iterator[pd.DataFrame]:
    """Yield the per-SKU features (:data:`PER_SKU_FEATURES` present) of each shard."""
    for shard, panel in stream_panel(source, shard_skus=shard_skus):
        feats = build_features(panel, cutoff, config, products=shard.products)
        yield feats[[c for c in PER_SKU_FEATURES if c in feats.columns]]


def stream_features(
    source: str | os.PathLike[str],
    cutoff: int,
    config: FeatureConfig | None = None,
    *,
    shard_skus: int = DEFAULT_SHARD_SKUS,
) -> pd.DataFrame:
    """All shards' per-SKU features in one frame indexed by ``sku`` (one small row per SKU)."""
    return pd.concat(list(iter_features(source, cutoff, config, shard_skus=shard_skus)))
