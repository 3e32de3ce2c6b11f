"""The paired comparisons of champion and challenger: identical models are kept with an
improvement of exactly 0, a clear gain clears the margin, and the policy's relative profit
gain stays finite when profits have mixed signs."""

from __future__ import annotations

import numpy as np
import pytest

from ingest.errors import DataError
from monitoring.challenger import PromotionRule, paired_comparison, paired_gain_comparison

RULE = PromotionRule(margin=0.02, n_bootstrap=500)


def test_identical_profits_are_kept_with_exactly_zero_gain():
    profit = np.random.default_rng(0).normal(-50, 80, size=200)
    c = paired_gain_comparison("policy", "profit", profit, profit.copy(), RULE)
    assert (c.improvement, c.ci_low, c.ci_high, c.promote) == (0.0, 0.0, 0.0, False)


def test_a_clear_profit_gain_is_promoted_and_a_loss_kept():
    rng = np.random.default_rng(1)
    champ = rng.normal(-50, 80, size=300)  # mixed signs, summing near zero in resamples
    better = champ + np.abs(champ) * 0.2 + rng.normal(0, 1, size=300)
    up = paired_gain_comparison("policy", "profit", champ, better, RULE)
    assert up.promote and up.ci_low > RULE.margin
    assert up.improvement == pytest.approx(0.2, abs=0.02)
    assert up.ci_high < 0.3  # finite and tight: the scale is the summed absolute profit
    down = paired_gain_comparison("policy", "profit", better, champ, RULE)
    assert not down.promote and down.ci_high < 0


def test_no_champion_promotes_and_mismatched_skus_are_refused():
    assert paired_gain_comparison("policy", "profit", None, np.ones(3), RULE).promote
    with pytest.raises(DataError, match="same SKUs"):
        paired_gain_comparison("policy", "profit", np.ones(3), np.ones(4), RULE)


def test_loss_comparison_reads_lower_as_better():
    loss = np.random.default_rng(2).gamma(2.0, 1.0, size=300)
    assert paired_comparison("demand", "abs_error", loss, 0.8 * loss, RULE).promote
    assert not paired_comparison("demand", "abs_error", loss, 1.1 * loss, RULE).promote
