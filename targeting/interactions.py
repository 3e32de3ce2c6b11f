"""The household x product interactions up to a cutoff week, from the ``baskets`` table.

A source works for targeting when it has household basket lines: the canonical ``baskets``
table (``household_id``, ``basket_id``, ``sku``, ``week``, ``units``), which the Complete
Journey loader, CSV/Parquet folders with a ``baskets`` file, SQL sources and synthetic worlds
(``with_baskets``) all provide. A source without it gets a :class:`~ingest.errors.DataError`
that says so.

What is counted
---------------
One basket line is one *purchase occasion* of a SKU by a household; the matrix counts
occasions, not units (a household buying 24 cans once is one occasion: unit counts in grocery
data are dominated by pack sizes and bulk buys, occasions by habit). Two weightings turn
counts into the confidences the factorisation fits:

- ``log`` (default): ``1 + log(count)``, which damps heavy repeat buying without using
  other rows;
- ``bm25``: BM25 over households (``K1 = 100``, ``B = 0.8``, as
  :func:`implicit.nearest_neighbours.bm25_weight` computes it): a product bought by every
  household counts for less in each household's row, a household that buys everything counts
  for less in each product's column;
- ``log``: ``1 + log(count)``, which damps heavy repeat buying without using other rows.

Only lines with ``week <= cutoff`` are read; nothing after the cutoff reaches a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ingest.dataset import Dataset
from ingest.errors import ConfigError, DataError

Weighting = Literal["bm25", "log"]
WEIGHTINGS: tuple[str, ...] = ("bm25", "log")
# BM25 constants of implicit's recommender examples: K1 large saturates slowly (repeat
# occasions keep adding confidence), B = 0.8 normalises most of a household's basket length.
BM25_K1 = 100.0
BM25_B = 0.8
BASKET_COLUMNS = ("household_id", "sku", "week")
# Columns of the products table that name a SKU's sub-category, finest first.
GROUP_COLUMNS = ("product_type", "category")


@dataclass
class Interactions:
    """Basket lines up to ``cutoff`` as integer codes, with the household and SKU indexes.

    Attributes
    ----------
    households : Index of str
        Household ids that bought anything up to the cutoff, sorted; row ``i`` of every
        matrix is ``households[i]``.
    skus : Index of str
        SKUs bought up to the cutoff, sorted; column ``j`` is ``skus[j]``.
    h, s, week : ndarray of shape (n_lines,)
        Household code, SKU code and week of every line.
    cutoff : int
        Last week read.
    groups : ndarray of int of shape (n_skus,)
        Sub-category code of each SKU (``product_type``, else ``category``; -1 unknown).
    """

    households: pd.Index
    skus: pd.Index
    h: np.ndarray
    s: np.ndarray
    week: np.ndarray
    cutoff: int
    groups: np.ndarray

    @property
    def n_households(self) -> int:
        return len(self.households)

    @property
    def n_skus(self) -> int:
        return len(self.skus)

    def counts(self) -> sp.csr_matrix:
        """Purchase occasions, households x SKUs (CSR, float)."""
        return self.weighted_lines(np.ones(len(self.h)))

    def weighted_lines(self, weights: np.ndarray) -> sp.csr_matrix:
        """Sum of ``weights`` (one per line) per household and SKU (CSR, float)."""
        m = sp.coo_matrix(
            (np.asarray(weights, dtype=float), (self.h, self.s)),
            shape=(self.n_households, self.n_skus),
        )
        return m.tocsr()

    def recency(self, half_life_weeks: float) -> sp.csr_matrix:
        """Occasions discounted by age: a line ``a`` weeks before the cutoff counts
        ``0.5 ** (a / half_life_weeks)`` (households x SKUs, CSR)."""
        age = (self.cutoff - self.week).astype(float)
        return self.weighted_lines(0.5 ** (age / half_life_weeks))

    def confidence(self, weighting: Weighting = "log") -> sp.csr_matrix:
        """The counts under ``weighting`` (see the module docstring), households x SKUs."""
        return weigh(self.counts(), weighting)

    def sku_codes(self, skus: pd.Index | pd.Series | list[str] | np.ndarray) -> np.ndarray:
        """Column of each of ``skus`` (-1 for a SKU nobody bought up to the cutoff)."""
        return np.asarray(self.skus.get_indexer(pd.Index(np.asarray(skus, dtype=str))))

    def household_codes(
        self, households: pd.Index | pd.Series | list[str] | np.ndarray
    ) -> np.ndarray:
        """Row of each of ``households`` (-1 for a household unseen up to the cutoff)."""
        index = pd.Index(np.asarray(households, dtype=str))
        return np.asarray(self.households.get_indexer(index))


def weigh(counts: sp.csr_matrix, weighting: Weighting = "log") -> sp.csr_matrix:
    """Turn a households x SKUs count matrix into confidences (see the module docstring)."""
    if weighting not in WEIGHTINGS:
        raise ConfigError(f"interaction weighting {weighting!r}; expected one of {WEIGHTINGS}")
    x = sp.csr_matrix(counts, dtype=float, copy=True)
    if weighting == "log":
        x.data = 1.0 + np.log(x.data)
        return x
    # BM25 with households as the "documents" of each product: idf over households per SKU,
    # length normalisation over each household's row.
    n_h = x.shape[0]
    df = np.bincount(x.indices, minlength=x.shape[1])
    idf = np.log(n_h) - np.log1p(df)
    row_sums = np.asarray(x.sum(axis=1)).ravel()
    length_norm = (1.0 - BM25_B) + BM25_B * row_sums / max(row_sums.mean(), 1e-12)
    rows = np.repeat(np.arange(n_h), np.diff(x.indptr))
    x.data = x.data * (BM25_K1 + 1.0) / (BM25_K1 * length_norm[rows] + x.data) * idf[x.indices]
    # idf <= 0 for a SKU bought by nearly every household: keep a small positive confidence
    # so the line still counts as a purchase.
    x.data = np.maximum(x.data, 1e-3)
    return x


def baskets_of(dataset: Dataset) -> pd.DataFrame:
    """The source's household basket lines, or a :class:`DataError` saying targeting needs
    them."""
    baskets = dataset.get("baskets")
    if baskets is None or baskets.empty:
        raise DataError(
            f"source {dataset.source!r} has no household baskets (table 'baskets' with "
            f"columns {list(BASKET_COLUMNS)}): coupon targeting learns who buys what from "
            "households, so it needs them. Complete Journey and synthetic worlds have them; "
            "for your own data add a 'baskets' table"
        )
    missing = [c for c in BASKET_COLUMNS if c not in baskets.columns]
    if missing:
        raise DataError(
            f"source {dataset.source!r}: table 'baskets' lacks column(s) {missing}; "
            f"expected {list(BASKET_COLUMNS)}"
        )
    return baskets


def sku_groups(products: pd.DataFrame | None) -> pd.Series:
    """Each SKU's sub-category (``product_type`` where known, else ``category``), indexed
    by sku; empty when there is no products table."""
    if products is None or "sku" not in products.columns:
        return pd.Series(dtype=object)
    group = pd.Series(pd.NA, index=products["sku"].astype(str), dtype=object)
    for col in reversed(GROUP_COLUMNS):  # finest last, so it wins where present
        if col in products.columns:
            values = products[col].astype("string").str.strip()
            values = values.mask(values.isin(["", "UNKNOWN"]))
            known = values.notna().to_numpy()
            group[known] = (col + ":" + values[known]).to_numpy(dtype=object)
    return group


def build_interactions(
    baskets: pd.DataFrame, cutoff: int, products: pd.DataFrame | None = None
) -> Interactions:
    """Basket lines with ``week <= cutoff`` as an :class:`Interactions`.

    Parameters
    ----------
    baskets : DataFrame
        ``household_id``, ``sku``, ``week`` (one row per basket line).
    cutoff : int
        Last week read; later lines are dropped here, before any model sees them.
    products : DataFrame, optional
        The products table, for the SKUs' sub-categories (:func:`sku_groups`).

    Raises
    ------
    DataError
        When no line falls on or before the cutoff.
    """
    week = baskets["week"].to_numpy(dtype=np.int64)
    keep = week <= int(cutoff)
    if not keep.any():
        first = int(week.min()) if week.size else None
        raise DataError(
            f"no basket line on or before cutoff week {cutoff} (the baskets start at week "
            f"{first}); choose a later cutoff"
        )
    h_codes, households = pd.factorize(baskets["household_id"].astype(str)[keep], sort=True)
    s_codes, skus = pd.factorize(baskets["sku"].astype(str)[keep], sort=True)
    groups = sku_groups(products).reindex(skus)
    g_codes, _ = pd.factorize(groups)
    return Interactions(
        households=pd.Index(households, dtype=object),
        skus=pd.Index(skus, dtype=object),
        h=h_codes.astype(np.int32),
        s=s_codes.astype(np.int32),
        week=week[keep],
        cutoff=int(cutoff),
        groups=g_codes.astype(np.int64),
    )


def buyers_between(baskets: pd.DataFrame, start: int, end: int) -> pd.DataFrame:
    """Distinct ``(sku, household_id)`` pairs with a line in weeks ``start..end`` inclusive."""
    week = baskets["week"].to_numpy(dtype=np.int64)
    rows = baskets.loc[(week >= start) & (week <= end), ["sku", "household_id"]]
    rows = rows.astype({"sku": str, "household_id": str})
    return rows.drop_duplicates().reset_index(drop=True)
