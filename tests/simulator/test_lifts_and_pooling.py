"""The fit's parts that are their own functions: when a promotion lift counts as
identified, the coupon's cap, and where each category's elasticity prior comes from."""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import pytest

from ingest.panel import MAX_DISCOUNT_DEPTH
from simulator.lifts import lift_identified, promotion_columns
from simulator.shrinkage import pool_elasticities

RULE = {"min_promo_weeks": 20, "max_lift_se": 1.0}


@pytest.mark.parametrize("term", ["coupon", "display", "mailer"])
def test_a_lift_needs_enough_weeks_and_a_small_error(term):
    weeks = np.array([19, 20, 20, 50])
    se = np.array([0.1, 0.1, 1.01, 1.0])
    fitted = lift_identified(term, weeks, se, **RULE, fit_coupons=True)
    np.testing.assert_array_equal(fitted, [False, True, False, True])
    asked_not = lift_identified(term, weeks, se, **RULE, fit_coupons=False)
    # only the coupon, which a panel sees in selling weeks only, waits to be asked for
    np.testing.assert_array_equal(asked_not, fitted & (term != "coupon"))


def test_promotion_columns_cap_the_coupon_and_fill_missing_ones():
    frame = pd.DataFrame({"coupon_depth": [0.0, 0.5, 1.4], "display": [0.0, 1.0, 0.2]})
    promo = promotion_columns(frame)
    np.testing.assert_array_equal(promo["coupon"], [0.0, 0.5, MAX_DISCOUNT_DEPTH])
    np.testing.assert_array_equal(promo["display"], [0.0, 1.0, 0.2])
    np.testing.assert_array_equal(promo["mailer"], np.zeros(3))


def test_small_categories_borrow_their_departments_prior():
    rng = np.random.default_rng(0)
    # category 0: 12 SKUs around -2 (department 0); category 1: 2 SKUs around -1, also in
    # department 0; category 2: no identified SKU, alone in department 1
    cat_code = np.r_[np.zeros(12, int), np.ones(2, int), np.full(3, 2)]
    dep_code = np.r_[np.zeros(14, int), np.ones(3, int)]
    raw = np.r_[rng.normal(-2.0, 0.3, 12), -1.0, -1.1, np.full(3, np.nan)]
    raw_se = np.r_[np.full(14, 0.2), np.full(3, np.nan)]
    identified = np.r_[np.ones(14, bool), np.zeros(3, bool)]
    pool = partial(
        pool_elasticities,
        raw,
        raw_se,
        identified,
        cat_code,
        dep_code,
        3,
        2,
        prior_mean=-1.0,
        prior_se=1.0,
        tau_prior_skus=30.0,
        min_group_skus=5,
    )
    pooled = pool()
    assert list(pooled.level) == ["category", "department", "global"]
    # the small category is pulled to its department (mostly category 0), not to its own -1
    assert pooled.mean[1] < -1.7 and pooled.post[12] < -1.1
    # no identified SKU: the category mean, weight 1, the prior's spread as the error
    np.testing.assert_array_equal(pooled.post[14:], np.full(3, pooled.mean[2]))
    np.testing.assert_array_equal(pooled.weight[14:], np.ones(3))
    assert np.all(pooled.post_se[14:] >= pooled.tau[2])
    raw_kept = pool(shrink_raw=False)
    np.testing.assert_array_equal(raw_kept.post[:14], raw[:14])
    np.testing.assert_array_equal(raw_kept.weight[:14], np.zeros(14))
