"""The service's adapter over the library: the rule check of an edited schedule, paired
what-ifs over several SKUs, and the alternatives beside a recommended schedule."""

from __future__ import annotations

import numpy as np
import pytest

from service import library

RULES = {
    "discount_levels": [0.0, 0.1, 0.2, 0.3, 0.5],
    "coupon_levels": [0.0, 0.1],
    "markdown_only": True,
    "min_weeks_between_changes": 2,
    "margin_floor": None,
}


def _one(plan_catalog, i: int = 3):
    return plan_catalog.take(np.array([i]))


@pytest.mark.parametrize(
    ("discount", "rule", "week"),
    [
        ([0.0, 0.2, 0.2, 0.1], "markdown_only", 4),
        ([0.1, 0.2, 0.2, 0.2], "min_weeks_between_changes", 2),
        ([0.0, 0.25, 0.25, 0.25], "ladder", 2),
    ],
)
def test_rule_breaks_names_the_rule_and_week(plan_catalog, discount, rule, week):
    broken = library.rule_breaks(_one(plan_catalog), RULES, np.array(discount), np.zeros(4))
    assert broken and broken[0].rule == rule and broken[0].week == week
    assert f"week {week}" in broken[0].message


def test_rule_breaks_passes_a_schedule_the_rules_allow(plan_catalog):
    ok = library.rule_breaks(
        _one(plan_catalog), RULES, np.array([0.0, 0.1, 0.1, 0.3]), np.array([0.0, 0.1, 0, 0])
    )
    assert ok == []


def test_margin_floor_is_checked_per_sku(plan_catalog):
    rules = {**RULES, "margin_floor": 0.2, "min_weeks_between_changes": 0}
    # list 2.0, cost 1.0: 50 % off sells at cost, below a 20 % margin floor
    broken = library.rule_breaks(_one(plan_catalog), rules, np.array([0.0, 0.5]), np.zeros(2))
    assert broken[0].rule == "margin_floor" and broken[0].week == 2


def test_what_if_over_several_skus_is_paired_and_adds_up(plan_catalog):
    skus = [str(s) for s in plan_catalog.sku[:5]]
    h = 6
    sim = library.SimSettings(n_episodes=64, seed=3, draw_parameters=False)
    nothing = library.WhatIfRequest(skus=skus, discount=np.zeros((5, h)),
                                    coupon=np.zeros((5, h)), name="none")  # fmt: skip
    seen = []
    out = library.what_if(plan_catalog, RULES, nothing, sim, chunk_skus=2,
                          progress=lambda d, t: seen.append((d, t)))  # fmt: skip
    assert seen == [(2, 5), (4, 5), (5, 5)]
    for row in out["skus"]:
        assert row["outcomes"]["profit"]["vs_no_markdown"] == 0.0
    cut = library.WhatIfRequest(skus=skus, discount=np.full((5, h), 0.3),
                                coupon=np.zeros((5, h)), name="fixed:0.3",
                                max_discount=0.2)  # fmt: skip
    res = library.what_if(plan_catalog, RULES, cut, sim)
    assert all(max(r["discount"]) == 0.2 for r in res["skus"])
    total = res["totals"]["units_sold"]
    assert total["mean"] == pytest.approx(
        sum(r["outcomes"]["units_sold"]["mean"] for r in res["skus"])
    )
    assert total["vs_no_markdown"] > 0  # a 20 % cut sells more than doing nothing
    again = library.what_if(plan_catalog, RULES, cut, sim)
    assert again["totals"] == res["totals"]  # same seed, same numbers


def test_what_if_one_sku_has_weekly_bands(plan_catalog):
    sku = str(plan_catalog.sku[2])
    req = library.WhatIfRequest(skus=[sku], discount=np.full((1, 4), 0.1),
                                coupon=np.full((1, 4), 0.1), name="x", coupons=False)  # fmt: skip
    out = library.what_if(plan_catalog, RULES, req, library.SimSettings(n_episodes=100))
    assert out["skus"][0]["coupon"] == [0.0] * 4
    band = out["weekly"]["stock_left"]
    assert len(band["mean"]) == 4
    assert all(
        lo <= m <= hi for lo, m, hi in zip(band["p05"], band["mean"], band["p95"], strict=True)
    )


def test_alternatives_include_the_dp_and_heuristics(plan_catalog):
    one = _one(plan_catalog, 5)
    h = 5
    rec = (np.array([0.0, 0.1, 0.1, 0.2, 0.2]), np.zeros(h), "ppo")
    sim = library.SimSettings(n_episodes=60, draw_parameters=False)
    alts = library.alternatives(one, RULES, rec, sim)
    by = {a["policy"]: a for a in alts}
    assert {"recommended", "no_markdown", "dp", "best_fixed"} <= set(by)
    assert by["recommended"]["discount"] == rec[0].tolist()
    # every plan keeps the rules
    for a in alts:
        assert library.rule_breaks(one, RULES, np.array(a["discount"]), np.array(a["coupon"])) == []
    # the DP maximises expected profit; on the same paths it beats doing nothing
    assert by["dp"]["outcomes"]["profit"]["mean"] >= by["no_markdown"]["outcomes"]["profit"]["mean"]


def test_alternatives_add_qmdp_where_the_run_planned_it(plan_catalog):
    """With the parameters drawn and the plan's QMDP grid set (as in the main job), QMDP's
    hedged plan is an alternative too, within the rules; without draws it is not."""
    one = _one(plan_catalog, 5)
    rec = (np.array([0.0, 0.1, 0.1, 0.2, 0.2]), np.zeros(5), "dp")
    drawn = library.SimSettings(n_episodes=40, draw_parameters=True, qmdp_grid=3)
    by = {a["policy"]: a for a in library.alternatives(one, RULES, rec, drawn)}
    assert by["qmdp"]["available"] and len(by["qmdp"]["discount"]) == 5
    assert library.rule_breaks(one, RULES, np.array(by["qmdp"]["discount"]),
                               np.array(by["qmdp"]["coupon"])) == []  # fmt: skip
    known = library.SimSettings(n_episodes=40, draw_parameters=False, qmdp_grid=3)
    assert "qmdp" not in {a["policy"] for a in library.alternatives(one, RULES, rec, known)}
