"""Stratified, seeded assignment of SKUs to treatment and control.

The unit is the SKU (what a markdown applies to). Strata are category x risk tier: both move
the outcome (categories differ in price level and elasticity, tiers in how fast stock
sells), so balancing them within each stratum removes their share of the noise from the
comparison. Within a stratum the SKUs are put in random order and the first ``k_h`` go to
treatment, ``k_h`` being ``n_h * share`` rounded up or down at random, so every stratum is
balanced within one unit and the expected share is exact.

A stratum smaller than :func:`min_stratum_size` cannot give each arm the two units a
variance needs; such strata are pooled into one (and that pool, if still too small, into
the largest stratum). The same function draws one assignment (the design) or thousands (the
power simulation and the validation), from an explicit generator.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from fieldtests.estimators import MIN_PER_ARM
from ingest.errors import ConfigError, DataError

TREATMENT, CONTROL = "treatment", "control"
POOLED = "(pooled small strata)"


def min_stratum_size(share: float) -> int:
    """Smallest stratum that gives both arms :data:`MIN_PER_ARM` units at treatment share
    ``share`` (4 at 50/50)."""
    return max(2 * MIN_PER_ARM, math.ceil(MIN_PER_ARM / min(share, 1 - share)) + 1)


def stratum_labels(category: np.ndarray, tier: np.ndarray, share: float = 0.5) -> np.ndarray:
    """``"category / tier"`` per unit, small strata pooled (see the module docstring)."""
    labels = pd.Series(
        [f"{c} / {t}" for c, t in zip(np.asarray(category), np.asarray(tier), strict=True)]
    )
    size = min_stratum_size(share)
    counts = labels.value_counts()
    small = counts.index[counts < size]
    labels = labels.where(~labels.isin(small), POOLED)
    counts = labels.value_counts()
    if POOLED in counts.index and counts[POOLED] < size and len(counts) > 1:
        largest = str(counts.drop(POOLED).idxmax())
        labels = labels.replace(POOLED, largest)
    return labels.to_numpy(dtype=object)


def codes_of(labels: np.ndarray) -> np.ndarray:
    """Integer codes ``0..H-1`` of stratum labels (sorted label order)."""
    return pd.factorize(pd.Series(labels, dtype=object), sort=True)[0]


def random_assignments(
    codes: np.ndarray, n_tests: int, rng: np.random.Generator, share: float = 0.5
) -> np.ndarray:
    """``n_tests`` stratified assignments of the units with stratum ``codes``.

    Parameters
    ----------
    codes : ndarray of int of shape (n_units,)
        Stratum code per unit, ``0..H-1``.
    n_tests : int
    rng : numpy.random.Generator
    share : float
        Treatment share.

    Returns
    -------
    ndarray of bool of shape (n_tests, n_units)
        True where the unit is treated.
    """
    if not 0 < share < 1:
        raise ConfigError(f"treatment share = {share}: expected in (0, 1)")
    codes = np.asarray(codes, dtype=np.int64)
    n = codes.size
    n_strata = int(codes.max()) + 1 if n else 0
    sizes = np.bincount(codes, minlength=n_strata)
    sorted_codes = np.sort(codes)
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank_sorted = np.arange(n) - first[sorted_codes]
    # codes are integers and u < 1, so the sort groups strata and shuffles within each
    order = np.argsort(codes[None, :] + rng.random((n_tests, n)), axis=1, kind="stable")
    k = np.floor(sizes[None, :] * share + rng.random((n_tests, n_strata))).astype(np.int64)
    treat_sorted = rank_sorted[None, :] < k[:, sorted_codes]
    treat = np.empty((n_tests, n), dtype=bool)
    np.put_along_axis(treat, order, treat_sorted, axis=1)
    return treat


def assign(units: pd.DataFrame, *, seed: int, share: float = 0.5) -> pd.DataFrame:
    """One stratified assignment of ``units`` (columns ``sku``, ``category``, ``tier``).

    Returns the frame with ``stratum`` and ``arm`` (``"treatment"`` / ``"control"``) added,
    in the input order. Same seed, same table.
    """
    for col in ("sku", "category", "tier"):
        if col not in units.columns:
            raise DataError(f"assignment units: column {col!r} is missing")
    if units["sku"].duplicated().any():
        dup = units.loc[units["sku"].duplicated(), "sku"].iloc[0]
        raise DataError(f"assignment units: SKU {dup!r} appears more than once")
    if len(units) < 2 * MIN_PER_ARM:
        raise DataError(
            f"assignment units: {len(units)} SKUs; a test needs at least {2 * MIN_PER_ARM}"
        )
    labels = stratum_labels(units["category"].to_numpy(), units["tier"].to_numpy(), share)
    treat = random_assignments(codes_of(labels), 1, np.random.default_rng(seed), share)[0]
    out = units.copy()
    out["stratum"] = labels
    out["arm"] = np.where(treat, TREATMENT, CONTROL)
    return out
