"""PSI and KS per feature, the calibration table, and the paired champion/challenger rule."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from monitoring.calibration import calibration_check
from monitoring.challenger import PromotionRule, paired_comparison
from monitoring.drift import feature_drift, ks_test, psi, psi_edges
from monitoring.thresholds import MonitorThresholds


def test_identical_samples_have_zero_psi_and_no_flag() -> None:
    x = np.random.default_rng(0).gamma(2.0, 1.0, 400)
    assert psi(x, x) == 0.0
    frame = pd.DataFrame({"a": x, "b": np.zeros_like(x)})
    drift = feature_drift(frame, frame.copy())
    assert (drift["psi"] == 0).all()
    assert not drift["drifted"].any()
    assert ks_test(x, x) == (0.0, 1.0)


def test_a_shifted_sample_is_flagged_and_an_unshifted_one_is_not() -> None:
    rng = np.random.default_rng(1)
    ref = pd.DataFrame({"vel": rng.normal(0, 1, 500), "same": rng.normal(0, 1, 500)})
    cur = pd.DataFrame({"vel": rng.normal(1.0, 1, 500), "same": rng.normal(0, 1, 500)})
    drift = feature_drift(ref, cur).set_index("feature")
    assert drift.loc["vel", "drifted"]
    assert drift.loc["vel", "psi"] > 0.25 and drift.loc["vel", "ks_pvalue"] < 1e-6
    assert not drift.loc["same", "drifted"]


def test_psi_matches_a_hand_computation() -> None:
    ref = np.array([0.0, 0.0, 1.0, 1.0])
    cur = np.array([0.0, 1.0, 1.0, 1.0])
    # one inner edge at the reference's median 0.5: shares (1/2, 1/2) against (1/4, 3/4)
    assert psi_edges(ref, 2).tolist() == [0.5]
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert psi(ref, cur, n_bins=2) == pytest.approx(expected, abs=1e-12)


def test_a_mass_of_zeros_merges_bins_and_an_empty_bin_stays_finite() -> None:
    ref = np.r_[np.zeros(80), np.arange(1, 21)]
    assert psi_edges(ref, 10).size < 9  # tied quantiles merged
    cur = np.zeros(50)
    assert np.isfinite(psi(ref, cur)) and psi(ref, cur) > 0


def test_drift_rows_per_category_only_for_large_enough_groups() -> None:
    rng = np.random.default_rng(2)
    n = 120
    groups = pd.Series(["A"] * 60 + ["B"] * 50 + ["C"] * 10, index=[f"s{i}" for i in range(n)])
    ref = pd.DataFrame({"vel": rng.gamma(2.0, 2.0, n)}, index=groups.index)
    cur = ref.copy()
    cur.loc[groups == "A", "vel"] *= 0.5
    drift = feature_drift(
        ref, cur, reference_groups=groups, current_groups=groups, thresholds=MonitorThresholds()
    ).set_index("scope")
    assert set(drift.index) == {"all", "A", "B"}  # C has 10 < 20 SKUs
    assert drift.loc["A", "drifted"] and not drift.loc["B", "drifted"]
    assert drift.loc["B", "psi"] == 0.0


def test_calibration_of_calibrated_and_of_miscalibrated_scores() -> None:
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 0.5, 20_000)
    y = (rng.random(p.size) < p).astype(int)
    good = calibration_check(p, y, threshold=0.4)
    assert good.ece < 0.02 and not good.crossed
    assert good.table["n"].sum() == p.size and len(good.table) == 10
    assert good.precision == pytest.approx(y[p >= 0.4].mean())
    bad = calibration_check(np.minimum(p * 2, 1), y, threshold=0.4)
    assert bad.crossed and bad.ece > 0.1


def test_paired_rule_promotes_a_better_challenger_and_keeps_a_worse_one() -> None:
    rng = np.random.default_rng(4)
    champ = rng.gamma(2.0, 1.0, 300)
    rule = PromotionRule(margin=0.02, n_bootstrap=500)
    better = paired_comparison("m", "loss", champ, champ * 0.8, rule)
    assert better.promote and better.ci_low > 0.02
    worse = paired_comparison("m", "loss", champ, champ * 1.1, rule)
    assert not worse.promote and worse.improvement < 0
    same = paired_comparison("m", "loss", champ, champ.copy(), rule)
    assert same.improvement == 0.0 and same.ci_low == 0.0 and not same.promote
    first = paired_comparison("m", "loss", None, champ, rule)
    assert first.promote and "no champion" in first.reason
    assert first.to_dict()["improvement"] is None
