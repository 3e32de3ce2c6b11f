"""The memory fit recovers a known reference-price sensitivity and fatigue rate from a panel
simulated with them, flags what a panel without price variation cannot identify, and
refuses bad input with a clear error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ingest.errors import DataError
from simulator.memory_fit import MemoryFitConfig, fit_memory, memory_features

WEEKS = 52


def _panel(
    gamma: float, rate: float, memory: float, *, n_skus: int = 200, seed: int = 0, vary=True
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sku = np.repeat(np.arange(n_skus), WEEKS)
    promo = rng.random(sku.size) < (0.3 if vary else 0.0)
    discount = np.where(promo, rng.uniform(0.1, 0.4, sku.size), 0.0)
    log_p, log_r, count = memory_features(sku, discount, memory, 4)
    level = np.exp(rng.normal(1.0, 0.5, n_skus))[sku]
    week_effect = 0.2 * np.sin(2 * np.pi * np.tile(np.arange(WEEKS), n_skus) / WEEKS)
    lam = level * np.exp(week_effect + (-2.0 - gamma) * log_p + gamma * log_r - rate * count)
    return pd.DataFrame(
        {
            "sku": sku,
            "week": np.tile(np.arange(WEEKS), n_skus),
            "category": np.where(sku < n_skus // 2, "a", "b"),
            "units": rng.poisson(lam).astype(float),
            "discount_depth": discount,
        }
    )


@pytest.mark.slow
def test_recovers_known_memory_and_fatigue():
    fit = fit_memory(_panel(gamma=1.2, rate=0.08, memory=0.7)).set_index("category")
    assert set(fit.index) == {"(all)", "a", "b"}
    row = fit.loc["(all)"]
    # the memory is weakly identified by 200 SKU-years: the profile likelihood lands near it
    assert row["memory"] in (0.6, 0.7, 0.8)
    assert abs(row["gamma"] - 1.2) < 3 * row["gamma_se"] and row["gamma_se"] < 0.3
    assert abs(row["fatigue_rate"] - 0.08) < 3 * row["fatigue_rate_se"]
    assert abs(row["elasticity"] + 2.0) < 0.15
    assert not row["gamma_assumed"] and not row["fatigue_assumed"]


@pytest.mark.slow
def test_no_memory_reads_zero_within_its_error():
    row = fit_memory(_panel(gamma=0.0, rate=0.0, memory=0.7, n_skus=120, seed=1)).iloc[0]
    assert abs(row["gamma_estimate"]) < 3 * row["gamma_se"]
    assert abs(row["fatigue_rate_estimate"]) < 3 * row["fatigue_rate_se"]


def test_constant_prices_leave_memory_assumed():
    panel = _panel(gamma=1.0, rate=0.05, memory=0.7, n_skus=60, vary=False)
    fit = fit_memory(panel, MemoryFitConfig(max_iter=5))
    assert fit["gamma_assumed"].all() and fit["fatigue_assumed"].all()
    assert (fit["gamma"] == 0).all() and (fit["fatigue_rate"] == 0).all()


def test_bad_panels_are_data_errors():
    panel = _panel(gamma=1.0, rate=0.0, memory=0.7, n_skus=4)
    with pytest.raises(DataError, match="discount_depth"):
        fit_memory(panel.assign(discount_depth=1.5))
    with pytest.raises(DataError, match="missing column"):
        fit_memory(panel.drop(columns=["category"]))
