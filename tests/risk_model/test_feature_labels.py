"""Every risk feature has a plain-English label for the people reading the drivers."""

from __future__ import annotations

from risk_model.feature_labels import DRIVER_LABELS, driver_label
from risk_model.features import FEATURE_GROUPS


def test_every_feature_has_a_label():
    names = [n for group in FEATURE_GROUPS.values() for n in group]
    missing = [n for n in names if n not in DRIVER_LABELS]
    assert not missing
    assert driver_label("gap_surprise").startswith("how unusual the current gap")
    assert driver_label("ptype_ratio_4_13") == "product type sales trend (last 4 weeks vs last 13)"
    assert driver_label("brand_new_feature") == "brand new feature"
    assert all("_" not in label for label in DRIVER_LABELS.values())
