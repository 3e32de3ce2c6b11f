"""A tiny ``deadstock run`` output over a synthetic world, for the field-test tests.

The files are those a run writes (``catalog.parquet``, ``schedules.csv``,
``sku_summary.csv``, ``data/data_summary.txt``), built from the world's *true* parameters so that the effect a test
should find is known: the recommended plan is a markdown ladder (10 points every 2 weeks,
at most 50 %), the stock is the run's assumption (8 weeks of cover).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fieldtests.synthetic import current_catalog
from planning.schedule import Schedule
from simulator.synthetic import SyntheticConfig, SyntheticWorld, generate_world

WEEKS_OF_COVER = 8
LADDER_STEP, LADDER_EVERY, LADDER_MAX = 0.1, 2, 0.5


def ladder(skus: np.ndarray, horizon: int) -> Schedule:
    """The markdown ladder every SKU gets as its recommended plan."""
    depth = np.minimum(LADDER_STEP * (np.arange(horizon) // LADDER_EVERY), LADDER_MAX)
    n = len(skus)
    return Schedule(np.asarray(skus, dtype=object), np.tile(depth, (n, 1)),
                    np.zeros((n, horizon)), name="ladder")  # fmt: skip


def tiny_run(
    folder: Path,
    *,
    n_skus: int = 300,
    n_weeks: int = 30,
    horizon: int = 6,
    seed: int = 0,
    max_planned: int | None = None,
) -> SyntheticWorld:
    """Write a run output for the established, living SKUs of a new world into ``folder``."""
    world = generate_world(SyntheticConfig(n_skus=n_skus, n_weeks=n_weeks, seed=seed))
    t = world.truth
    keep = (~t["goes_dead"].astype(bool)) & (t["launch_week"] < n_weeks - 12)
    index = np.flatnonzero(keep.to_numpy())[:max_planned]
    velocity = t["base_demand_end"].to_numpy()[index]
    stock = np.maximum(np.round(WEEKS_OF_COVER * velocity), 2.0)
    catalog = current_catalog(world).take(index).replace(initial_stock=stock)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    # as a run writes it: the design reads the run's last data week from this line
    (folder / "data" / "data_summary.txt").write_text(
        f"panel: {n_skus * n_weeks} rows, {n_skus} SKUs, weeks 1-{n_weeks}\n"
    )
    catalog.to_frame().to_parquet(folder / "catalog.parquet")
    ladder(catalog.sku, horizon).to_frame().assign(plan_key="P1").to_csv(
        folder / "schedules.csv", index=False
    )
    tier = np.where(velocity < np.median(velocity), "high", "medium")
    pd.DataFrame({"sku": catalog.sku, "category": catalog.category, "tier": tier,
                  "risk": np.where(tier == "high", 0.6, 0.3),
                  "best_heuristic": "ladder_10pt_2w"}).to_csv(
        folder / "sku_summary.csv", index=False
    )  # fmt: skip
    return world
