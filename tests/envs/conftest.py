"""Small catalogs shared by the env tests."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.demand import Catalog


def make_catalog(n_skus: int = 12, seed: int = 0) -> Catalog:
    """A varied little catalog: elasticities, covers, cost ratios, ages and seasons differ."""
    rng = np.random.default_rng(seed)
    season = 1.0 + 0.3 * np.sin(np.linspace(0, 2 * np.pi, 52))[None, :] * rng.uniform(
        0, 1, (n_skus, 1)
    )
    list_price = rng.uniform(5, 20, n_skus)
    return Catalog.build(
        n_skus=n_skus,
        list_price=list_price,
        unit_cost=rng.uniform(0.3, 1.1, n_skus) * list_price,  # some sell below cost
        base_demand=rng.uniform(1, 12, n_skus),
        elasticity=rng.uniform(-4.0, -0.8, n_skus),
        elasticity_se=0.2,
        coupon_coef=rng.uniform(0.5, 3.0, n_skus),
        dispersion=np.where(np.arange(n_skus) % 2 == 0, 0.0, 0.4),
        return_rate=0.03,
        initial_stock=rng.integers(5, 150, n_skus).astype(float),
        salvage_value_per_unit=1.0,
        holding_cost_per_unit_week=0.01,
        age_weeks=rng.integers(0, 8, n_skus),
        start_week=rng.integers(0, 52, n_skus),
        season=season,
        risk_score=np.where(np.arange(n_skus) % 3 == 0, np.nan, 0.5),
    )


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return make_catalog()
