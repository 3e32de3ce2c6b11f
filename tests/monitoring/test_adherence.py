"""Plan adherence: executed against approved net prices, only where the price was seen."""

from __future__ import annotations

import pandas as pd
import pytest

from monitoring.adherence import adherence_check
from monitoring.thresholds import MonitorThresholds


def _panel() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sku": ["a", "a", "b", "b", "c"],
            "week": [41, 42, 41, 42, 41],
            "effective_price": [9.0, 9.95, 5.0, 4.0, 3.0],
            "price_observed": [True, True, True, False, True],
        }
    )


def test_adherence_counts_only_observed_weeks_within_the_tolerance() -> None:
    plan = pd.DataFrame(
        {"sku": ["a", "a", "b", "b"], "week": [41, 42, 41, 42], "net_price": [9.0, 10.0, 4.0, 4.0]}
    )
    check = adherence_check(plan, _panel(), MonitorThresholds(price_tolerance=0.01))
    # a/41 exact, a/42 0.5 % off (adheres), b/41 25 % off, b/42 not observed, c not planned
    assert check.n_observed == 3 and check.n_unobserved == 1
    assert check.share == pytest.approx(2 / 3)
    assert check.crossed  # 2/3 < 0.9
    assert check.table.set_index(["sku", "week"]).loc[("b", 41), "gap"] == pytest.approx(0.25)


def test_adherence_refuses_schedules_without_prices() -> None:
    from ingest.errors import DataError

    with pytest.raises(DataError, match="net_price"):
        adherence_check(pd.DataFrame({"sku": ["a"], "week": [41]}), _panel())
