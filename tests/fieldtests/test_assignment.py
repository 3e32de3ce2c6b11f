"""Stratified assignment: balanced within one unit per stratum, seeded, every SKU once."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fieldtests.assignment import (
    POOLED,
    assign,
    codes_of,
    min_stratum_size,
    random_assignments,
    stratum_labels,
)
from ingest.errors import DataError


@pytest.fixture(scope="module")
def units() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 257
    return pd.DataFrame(
        {
            "sku": [f"S{i:04d}" for i in range(n)],
            "category": rng.choice(["a", "b", "c", "d"], n, p=[0.4, 0.3, 0.28, 0.02]),
            "tier": rng.choice(["high", "medium"], n),
        }
    )


def test_each_stratum_is_balanced_within_one_unit(units):
    table = assign(units, seed=1)
    counts = table.groupby("stratum")["arm"].value_counts().unstack(fill_value=0)
    assert ((counts["treatment"] - counts["control"]).abs() <= 1).all()
    assert counts.min().min() >= 2  # every arm of every stratum can give a variance


def test_every_sku_once_and_seeded(units):
    a, b, c = assign(units, seed=1), assign(units, seed=1), assign(units, seed=2)
    assert list(a["sku"]) == list(units["sku"]) and a["sku"].is_unique
    assert a.equals(b)
    assert not a["arm"].equals(c["arm"])


def test_small_strata_are_pooled(units):
    labels = stratum_labels(units["category"], units["tier"])
    sizes = pd.Series(labels).value_counts()
    assert sizes.min() >= min_stratum_size(0.5)
    raw = (units["category"] + " / " + units["tier"]).to_numpy()
    raw_sizes = pd.Series(raw).value_counts()
    small = raw_sizes.index[raw_sizes < min_stratum_size(0.5)]
    assert len(small) > 0  # the fixture has a tiny category
    assert POOLED in sizes.index or len(sizes) < raw_sizes.size
    for lab in small:
        assert lab not in sizes.index  # pooled away
    kept = labels == raw
    assert (pd.Series(raw[kept]).value_counts() >= min_stratum_size(0.5)).all()


def test_many_assignments_keep_the_share_exactly_on_average():
    codes = np.repeat([0, 1, 2], [5, 7, 9])
    treat = random_assignments(codes, 4000, np.random.default_rng(3), share=0.5)
    per = np.stack([treat[:, codes == h].sum(axis=1) for h in range(3)], axis=1)
    assert set(np.unique(per[:, 0])) == {2, 3}  # 5 SKUs -> 2 or 3
    assert np.unique(per[:, 1]).tolist() == [3, 4]
    assert abs(treat.mean() - 0.5) < 0.01
    # every unit is treated about half the time: the order within a stratum is random
    assert np.abs(treat.mean(axis=0) - 0.5).max() < 0.05


def test_bad_units_are_refused(units):
    with pytest.raises(DataError, match="appears more than once"):
        assign(pd.concat([units, units.iloc[:1]]), seed=0)
    with pytest.raises(DataError, match="'tier' is missing"):
        assign(units.drop(columns="tier"), seed=0)
    assert codes_of(np.array(["b", "a", "b"])).tolist() == [1, 0, 1]
