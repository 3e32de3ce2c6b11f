"""The scale job on a partitioned source: stream, aggregate per SKU, plan and export by shard.

Three steps, each with memory bounded by a shard of SKUs plus one small row per SKU:

1. :func:`stream_aggregates` reads the source shard by shard
   (:func:`ingest.partitioned.iter_shards`, every file validated) and keeps per SKU only
   running aggregates: category, list price, unit cost, weeks on sale, units sold at full
   price and on discount (and in how many weeks), the mean discount depth of the discounted
   weeks, the last stock count.
2. :func:`category_elasticity` pools the SKUs of each category into one price elasticity
   (the ratio of mean weekly units on discount to mean weekly units at full price against
   the mean depth), and :func:`scale_catalog` turns a slice of aggregates into a
   :class:`~simulator.demand.Catalog`: base demand = full-price units per week on sale,
   stock = the last count. It is a crude catalog -- weeks without a sale carry no price, so
   the pooled elasticity is biased -- meant for the cost of the pipeline at scale, not for
   its decisions; the fitted demand model (``app.demand``) is what the main job uses.
3. :func:`export_sharded` plans and simulates the catalog shard by shard with
   :func:`app.exports.export_schedules_bulk` into ``schedules/part-<k>.parquet`` of a hidden
   folder, swapped in at the end (a failed run leaves the previous export whole). A catalog
   carries a 52-week season per SKU (416 bytes), so ten million SKUs are never one catalog.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from agents.policy import Policy
from app.exports import export_schedules_bulk
from envs.config import RulesConfig
from ingest.keys import positions
from ingest.partitioned import DEFAULT_SHARD_SKUS, iter_shards
from simulator.demand import Catalog

log = logging.getLogger(__name__)

#: Elasticity bounds of the pooled estimate (and its value with no discounted sale).
ELASTICITY_RANGE = (-4.0, -0.5)
FALLBACK_ELASTICITY = -2.0
#: Weekly holding cost as a share of the unit cost (about 15 % a year).
HOLDING_SHARE_PER_WEEK = 0.003
AGGREGATE_COLUMNS = (
    "sku", "category", "list_price", "unit_cost", "weeks_on_sale", "full_units",
    "full_weeks", "disc_units", "disc_weeks", "disc_depth_sum", "on_hand",
)  # fmt: skip


def shard_aggregates(products: pd.DataFrame, sales: pd.DataFrame, stock: pd.DataFrame | None,
                     last_week: int) -> pd.DataFrame:  # fmt: skip
    """Per-SKU aggregates of one shard (columns :data:`AGGREGATE_COLUMNS`, sorted by SKU)."""
    products = products.sort_values("sku", kind="stable").reset_index(drop=True)
    skus = products["sku"].astype("string")
    n = len(products)
    code = positions(sales["sku"], skus)
    units = sales["units"].to_numpy(dtype=float)
    gross = units * products["list_price"].to_numpy(dtype=float)[code]
    disc = sales["discount_amount"].to_numpy(dtype=float) if "discount_amount" in sales else 0.0
    depth = np.divide(disc, gross, out=np.zeros_like(gross), where=gross > 0)
    on_disc = depth > 0.0
    sold = units > 0

    def total(weights: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return np.bincount(code[mask], weights=weights[mask], minlength=n)

    ones = np.ones_like(units)
    launch = products["launch_week"].to_numpy(dtype=float)
    on_hand = np.full(n, np.nan)
    if stock is not None and len(stock):
        last = stock.sort_values("week", kind="stable").drop_duplicates("sku", keep="last")
        pos = positions(last["sku"], skus)
        on_hand[pos] = last["on_hand"].to_numpy(dtype=float)
    return pd.DataFrame(
        {
            "sku": skus.to_numpy(dtype=object),
            "category": products["category"].astype("string").to_numpy(dtype=object),
            "list_price": products["list_price"].to_numpy(dtype=float),
            "unit_cost": products["unit_cost"].to_numpy(dtype=float),
            "weeks_on_sale": np.clip(last_week - launch + 1, 1, None),
            "full_units": total(units, sold & ~on_disc),
            "full_weeks": total(ones, sold & ~on_disc),
            "disc_units": total(units, sold & on_disc),
            "disc_weeks": total(ones, sold & on_disc),
            "disc_depth_sum": total(depth, sold & on_disc),
            "on_hand": on_hand,
        }
    )


def stream_aggregates(
    source: str | os.PathLike[str], *, shard_skus: int = DEFAULT_SHARD_SKUS
) -> pd.DataFrame:
    """Per-SKU aggregates of a partitioned source, read one shard of SKUs at a time."""
    from ingest.partitioned import check_partitioned, last_week

    end = last_week(check_partitioned(source), source) or 0
    parts = [
        shard_aggregates(s.products, s.sales, s.get("stock"), end)
        for s in iter_shards(source, shard_skus)
    ]
    return pd.concat(parts, ignore_index=True)


def category_elasticity(aggs: pd.DataFrame) -> pd.Series:
    """One pooled elasticity per category from the aggregates (see the module notes)."""
    g = aggs.groupby("category", sort=True)[
        ["full_units", "full_weeks", "disc_units", "disc_weeks", "disc_depth_sum"]
    ].sum()
    full_rate = g["full_units"] / g["full_weeks"].clip(lower=1)
    disc_rate = g["disc_units"] / g["disc_weeks"].clip(lower=1)
    depth = (g["disc_depth_sum"] / g["disc_weeks"].clip(lower=1)).clip(0.01, 0.9)
    ok = (g["full_weeks"] > 0) & (g["disc_weeks"] > 0) & (full_rate > 0) & (disc_rate > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        est = np.log(disc_rate / full_rate) / np.log(1.0 - depth)
    est = est.where(ok & np.isfinite(est), FALLBACK_ELASTICITY)
    return est.clip(*ELASTICITY_RANGE).rename("elasticity")


def scale_catalog(aggs: pd.DataFrame, elasticity: pd.Series) -> Catalog:
    """A catalog of the SKUs in ``aggs`` (see the module notes for what each field is)."""
    weeks = aggs["weeks_on_sale"].to_numpy(dtype=float)
    base = (aggs["full_units"] + aggs["disc_units"]).to_numpy(dtype=float) / weeks
    stock = aggs["on_hand"].to_numpy(dtype=float)
    cost = aggs["unit_cost"].to_numpy(dtype=float)
    e = aggs["category"].map(elasticity).fillna(FALLBACK_ELASTICITY).to_numpy(dtype=float)
    return Catalog.build(
        n_skus=len(aggs),
        sku=aggs["sku"].to_numpy(dtype=object),
        category=aggs["category"].to_numpy(dtype=object),
        base_demand=np.maximum(base, 0.01),
        elasticity=e,
        list_price=aggs["list_price"].to_numpy(dtype=float),
        unit_cost=cost,
        initial_stock=np.nan_to_num(stock, nan=0.0),
        dispersion=0.3,
        holding_cost_per_unit_week=cost * HOLDING_SHARE_PER_WEEK,
    )


def export_sharded(
    policy: Policy,
    aggs: pd.DataFrame,
    elasticity: pd.Series,
    rules: RulesConfig,
    horizon: int,
    out_dir: str | os.PathLike[str],
    *,
    plan_key: str,
    shard_skus: int = 1_000_000,
    plan_episodes: int = 1,
    n_episodes: int = 4,
    seed: int = 0,
) -> Iterator[tuple[int, int]]:
    """Plan and export the schedules of ``aggs`` shard by shard into ``out_dir``.

    Yields ``(skus_done, rows_written)`` after each shard (progress). The shards are written
    into a hidden folder beside ``out_dir`` that replaces it only after the last shard, so a
    failed or killed run leaves the previous ``out_dir`` whole. Shard ``k`` is planned with
    child seed ``k`` of ``seed``: same arguments, same files.
    """
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.{os.getpid()}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    starts = range(0, len(aggs), shard_skus)
    seeds = np.random.SeedSequence(seed).generate_state(max(len(starts), 1)).tolist()
    rows = 0
    try:
        for k, s0 in enumerate(starts):
            part = aggs.iloc[s0 : s0 + shard_skus]
            rows += export_schedules_bulk(
                policy,
                scale_catalog(part, elasticity),
                rules,
                horizon,
                tmp / f"part-{k:05d}.parquet",
                plan_key=plan_key,
                plan_episodes=plan_episodes,
                n_episodes=n_episodes,
                seed=int(seeds[k]),
                progress=False,
            )
            log.info("%s/%s SKUs planned and exported", f"{s0 + len(part):,}", f"{len(aggs):,}")
            yield s0 + len(part), rows
        old = out.parent / f".{out.name}.{os.getpid()}.old"
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
