"""A small basket world with planted household segments: each segment buys mostly from its
own two categories, and how busy a household is does not depend on its segment."""

from __future__ import annotations

import numpy as np
import pandas as pd

N_SEGMENTS = 4
N_CATEGORIES = 8
SKUS_PER_CATEGORY = 25
HOUSEHOLDS_PER_SEGMENT = 80
N_WEEKS = 26
CUTOFF = 13
OWN_SHARE = 0.9  # share of a household's lines in its segment's categories


def planted_world(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """Baskets, products and each household's segment."""
    rng = np.random.default_rng(seed)
    n_h = N_SEGMENTS * HOUSEHOLDS_PER_SEGMENT
    segment = np.repeat(np.arange(N_SEGMENTS), HOUSEHOLDS_PER_SEGMENT)
    activity = rng.uniform(0.3, 2.5, n_h)  # lines per week
    n_skus = N_CATEGORIES * SKUS_PER_CATEGORY
    sku_cat = np.repeat(np.arange(N_CATEGORIES), SKUS_PER_CATEGORY)
    rows = []
    for w in range(1, N_WEEKS + 1):
        n_lines = rng.poisson(activity)
        hh = np.repeat(np.arange(n_h), n_lines)
        own = rng.random(hh.size) < OWN_SHARE
        cat = np.where(
            own,
            2 * segment[hh] + rng.integers(0, 2, hh.size),
            rng.integers(0, N_CATEGORIES, hh.size),
        )
        sku = cat * SKUS_PER_CATEGORY + rng.integers(0, SKUS_PER_CATEGORY, hh.size)
        rows.append(pd.DataFrame({"h": hh, "sku": sku, "week": w}))
    lines = pd.concat(rows, ignore_index=True)
    baskets = pd.DataFrame(
        {
            "household_id": [f"H{h:04d}" for h in lines["h"]],
            "basket_id": [f"B{w}-{h}" for w, h in zip(lines["week"], lines["h"], strict=True)],
            "sku": [f"S{s:04d}" for s in lines["sku"]],
            "week": lines["week"].astype(np.int64),
            "units": 1.0,
            "revenue": 2.0,
        }
    )
    products = pd.DataFrame(
        {
            "sku": [f"S{s:04d}" for s in range(n_skus)],
            "category": [f"C{c}" for c in sku_cat],
        }
    )
    seg = pd.Series(segment, index=[f"H{h:04d}" for h in range(n_h)])
    return baskets, products, seg
