"""Synthetic canonical tables of any size, generated and written block by block.

:mod:`simulator.synthetic` builds a rich world with known truth in memory (a few hundred
thousand SKUs at most). This module is the load generator for the scale benchmarks: tens of
millions of SKUs, written straight into a partitioned folder
(:class:`ingest.partitioned.PartitionedWriter`) one block of :data:`GEN_BLOCK_SKUS` SKUs at a
time, so memory is bounded by a block whatever the size.

The market is deliberately simple and vectorized: each SKU has a category, a list price, a
unit cost, a base demand and a price elasticity; a category has a weekly season; about one
week in five is a discount week of 10-40 %; weekly units are Poisson with mean
``base * season * (1 - depth) ** elasticity``, capped by stock (one receipt at launch).
Weeks are ``1 .. n_weeks``; ``sales`` holds the weeks with a sale, ``stock`` every week.
Block ``b`` draws from ``SeedSequence(seed).spawn`` child ``b``, so the same seed gives the
same tables whatever reads them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from ingest.errors import ConfigError
from ingest.partitioned import PartitionedWriter

log = logging.getLogger(__name__)

#: SKUs per generated block (and per written file): the RNG streams are keyed by block.
GEN_BLOCK_SKUS = 250_000
N_CATEGORIES = 1_000
CATEGORIES_PER_DEPARTMENT = 50
DISCOUNT_WEEK_SHARE = 0.2
DISCOUNT_DEPTHS = (0.1, 0.2, 0.3, 0.4)
#: Weeks of average demand received at launch: most SKUs sell through, some do not.
STOCK_WEEKS = (4.0, 20.0)


def sku_id(index: np.ndarray) -> np.ndarray:
    """Text SKU ids that sort like their index (``B00000042``)."""
    return np.char.add("B", np.char.zfill(index.astype(str), 8)).astype(object)


def _season(seed: int, n_weeks: int) -> np.ndarray:
    """Weekly multiplier per category, shape ``(N_CATEGORIES, n_weeks)``, mean about 1."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    amp = rng.uniform(0.0, 0.4, N_CATEGORIES)[:, None]
    phase = rng.uniform(0.0, 2 * np.pi, N_CATEGORIES)[:, None]
    weeks = np.arange(n_weeks)[None, :]
    return 1.0 + amp * np.sin(2 * np.pi * weeks / 52.0 + phase)


def generate_blocks(
    n_skus: int, n_weeks: int, seed: int = 0
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]]:
    """Yield ``(products, sales, stock)`` for each block of SKUs, in SKU order."""
    if n_skus < 1 or n_weeks < 1:
        raise ConfigError(f"n_skus {n_skus} and n_weeks {n_weeks}: both must be at least 1")
    season = _season(seed, n_weeks)
    n_blocks = -(-n_skus // GEN_BLOCK_SKUS)
    children = np.random.SeedSequence(seed).spawn(n_blocks)
    for b, child in enumerate(children):
        rng = np.random.default_rng(child)
        idx = np.arange(b * GEN_BLOCK_SKUS, min(n_skus, (b + 1) * GEN_BLOCK_SKUS))
        n = len(idx)
        sku = sku_id(idx)
        cat = rng.integers(0, N_CATEGORIES, n)
        price = np.round(rng.lognormal(1.2, 0.6, n), 2) + 0.49
        cost = np.round(price * rng.uniform(0.4, 0.8, n), 2)
        base = rng.lognormal(0.5, 1.0, n)
        elasticity = -rng.uniform(1.0, 3.5, n)
        stock0 = np.ceil(base * rng.uniform(*STOCK_WEEKS, n))
        discounted = rng.random((n, n_weeks)) < DISCOUNT_WEEK_SHARE
        depth = np.where(discounted, rng.choice(DISCOUNT_DEPTHS, (n, n_weeks)), 0.0)
        mean = base[:, None] * season[cat] * (1.0 - depth) ** elasticity[:, None]
        demand = rng.poisson(mean).astype(float)
        units = np.empty_like(demand)
        left = stock0.copy()
        on_hand = np.empty_like(demand)
        for w in range(n_weeks):  # stock caps sales: a sold-out SKU sells nothing more
            units[:, w] = np.minimum(demand[:, w], left)
            left -= units[:, w]
            on_hand[:, w] = left
        products = pd.DataFrame(
            {
                "sku": sku,
                "category": np.char.add("C", cat.astype(str)).astype(object),
                "department": np.char.add("D", (cat // CATEGORIES_PER_DEPARTMENT).astype(str)),
                "brand": np.where(rng.random(n) < 0.2, "Private", "National"),
                "list_price": price,
                "unit_cost": cost,
                "launch_week": np.ones(n, dtype=np.int64),
            }
        )
        rows, cols = np.nonzero(units > 0)
        u = units[rows, cols]
        d = depth[rows, cols]
        gross = u * price[rows]
        sales = pd.DataFrame(
            {
                "sku": sku[rows],
                "week": cols + 1,
                "units": u,
                "revenue": np.round(gross * (1.0 - d), 2),
                "discount_amount": np.round(gross * d, 2),
            }
        )
        stock = pd.DataFrame(
            {
                "sku": np.repeat(sku, n_weeks),
                "week": np.tile(np.arange(1, n_weeks + 1), n),
                "on_hand": on_hand.ravel(),
            }
        )
        yield products, sales, stock


def write_bulk(
    out: str | os.PathLike[str], n_skus: int, n_weeks: int, seed: int = 0, *, progress: bool = True
) -> dict[str, int]:
    """Generate and write a partitioned source of ``n_skus`` x ``n_weeks``; rows per table.

    The folder is written beside ``out`` and swapped in at the end, so a killed run leaves a
    previous ``out`` whole.
    """
    with PartitionedWriter(Path(out)) as writer:
        for products, sales, stock in generate_blocks(n_skus, n_weeks, seed):
            writer.write("products", products)
            writer.write("sales", sales)
            writer.write("stock", stock)
            if progress:
                log.info("%s/%s SKUs written", f"{writer.rows['products']:,}", f"{n_skus:,}")
        rows = dict(writer.rows)
    return rows
