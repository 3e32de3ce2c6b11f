"""The planted shift of a synthetic world: one category's demand scaled after a week, the
history before it and the other categories' level untouched."""

from __future__ import annotations

import pytest

from ingest.errors import ConfigError
from simulator.synthetic import SyntheticConfig, generate_world

BASE = {"n_skus": 80, "n_weeks": 30, "seed": 3, "with_interactions": False}


def test_the_shift_changes_only_the_category_after_the_week() -> None:
    plain = generate_world(SyntheticConfig(**BASE)).tables["sales"]
    shifted = generate_world(
        SyntheticConfig(**BASE, shift_category="CAT01", shift_after_week=20, shift_factor=0.25)
    ).tables["sales"]
    products = generate_world(SyntheticConfig(**BASE)).tables["products"]
    in_cat = set(products.loc[products["category"] == "CAT01", "sku"])

    def units(frame, cat: bool, after: bool) -> float:
        rows = frame[frame["sku"].isin(in_cat) == cat]
        rows = rows[(rows["week"] > 20) == after]
        return float(rows["units"].sum())

    # the history before the shift is the same world's; after it, one random stream serves
    # every SKU, so the other categories' draws move, but not their level
    for cat in (False, True):
        assert units(shifted, cat=cat, after=False) == units(plain, cat=cat, after=False)
    other = units(shifted, cat=False, after=True) / units(plain, cat=False, after=True)
    assert other == pytest.approx(1.0, abs=0.1)
    assert units(shifted, cat=True, after=True) < 0.5 * units(plain, cat=True, after=True)


def test_an_unknown_shift_category_is_refused() -> None:
    with pytest.raises(ConfigError, match="shift_category"):
        generate_world(SyntheticConfig(**BASE, shift_category="NOPE", shift_after_week=10))
