"""The demand fit: recovery of known elasticities on synthetic worlds, priors flagged as
assumed, stock-out censoring, clear errors on bad panels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ingest.dataset import Dataset
from ingest.errors import ConfigError, DataError
from ingest.panel import build_panel
from simulator.demand import Catalog
from simulator.fit import FitConfig, fit_catalog
from simulator.forecast import predict_units
from simulator.glm import censored_mean, fit_sku_group_glm
from simulator.market import initial_state, step
from simulator.panel_prep import stockout_weeks
from simulator.synthetic import SyntheticConfig, generate_world

# An informative world: two years, ~15 units a week, discount episodes in ~30 % of weeks,
# 10 % dying SKUs, a gentle demand drift. On the default world (one year, ~4 units a week)
# the median error is about 0.25 and coverage about 0.86 (see docs/simulator.md).
RECOVERY_WORLD = SyntheticConfig(
    n_skus=400,
    n_weeks=104,
    seed=0,
    base_demand_median=15.0,
    discount_start_prob=0.3,
    dead_share=0.1,
    drift_sd=0.04,
)


def _panel(world) -> pd.DataFrame:
    return build_panel(Dataset(tables=world.tables, source="synthetic", fingerprint="t"))


@pytest.fixture(scope="module")
def recovery():
    world = generate_world(RECOVERY_WORLD)
    panel = _panel(world)
    return world, panel, fit_catalog(panel, FitConfig())


def _errors(world, result):
    est = result.estimates
    truth = world.truth.set_index("sku").loc[est["sku"].to_numpy()]
    err = est["elasticity"].to_numpy() - truth["elasticity"].to_numpy()
    return est, err


def test_elasticities_recovered_within_015_for_sellers(recovery):
    world, _, result = recovery
    est, err = _errors(world, result)
    sellers = est["n_selling_weeks"].to_numpy() >= 20
    assert sellers.sum() > 300
    assert np.median(np.abs(err[sellers])) <= 0.15


def test_90pct_intervals_cover_truth_85_to_95pct(recovery):
    world, _, result = recovery
    est, err = _errors(world, result)
    covered = np.abs(err) <= 1.6449 * est["elasticity_se"].to_numpy()
    assert 0.85 <= covered.mean() <= 0.95


def test_shrinkage_beats_raw_estimates(recovery):
    world, _, result = recovery
    est, err = _errors(world, result)
    truth = world.truth.set_index("sku").loc[est["sku"].to_numpy()]["elasticity"].to_numpy()
    raw_err = est["elasticity_raw"].to_numpy() - truth
    ok = np.isfinite(raw_err)
    assert np.mean(err[ok] ** 2) < np.mean(raw_err[ok] ** 2)


def test_lifts_and_noise_near_truth(recovery):
    world, _, result = recovery
    cat = result.catalog
    truth = world.truth.set_index("sku").loc[cat.sku]
    # display and mailer are pooled per category: compare with the SKU truths' mean
    assert abs(np.median(cat.display_coef) - truth["display_coef"].mean()) < 0.1
    assert abs(np.median(cat.mailer_coef) - truth["mailer_coef"].mean()) < 0.1
    assert not cat.display_assumed.any()
    assert 0.05 < np.median(cat.dispersion) < 0.6  # truth ~0.3 plus the drift


def test_catalog_fields_and_flags(recovery):
    world, panel, result = recovery
    cat = result.catalog
    assert cat.n_skus == panel["sku"].nunique()
    assert np.all(cat.elasticity <= 0)
    assert np.all(cat.elasticity_se > 0)
    assert np.allclose(cat.season.mean(axis=1), 1.0)
    # the world has a stock table: initial stock is the last on-hand level
    last = panel.sort_values("week").groupby("sku")["on_hand"].last()
    assert np.allclose(cat.initial_stock, last.loc[cat.sku].to_numpy())
    assert np.all(cat.start_week == RECOVERY_WORLD.n_weeks % 52)
    assert set(result.estimates.columns) >= {"elasticity_raw", "shrinkage_weight"}
    assert result.diagnostics["fit/converged"] == 1.0


def test_predictions_match_recent_level(recovery):
    world, panel, result = recovery
    recent = panel[panel["week"] > panel["week"].max() - 8]
    pred = predict_units(result.catalog, recent)
    assert np.isfinite(pred).all()
    assert 0.85 < pred.sum() / recent["units"].sum() < 1.15
    # SKUs that died start their plan near today's (near-zero) level, not their history's
    est = result.estimates.set_index("sku")
    dead = world.truth.loc[world.truth["goes_dead"], "sku"]
    dead = [s for s in dead if est.loc[s, "n_selling_weeks"] > 20]
    assert np.median(est.loc[dead, "recent_level_ratio"]) < 0.5


def _flat_panel(n_weeks: int = 30, vary: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows = []
    for s in range(12):
        for w in range(1, n_weeks + 1):
            depth = 0.3 if (vary and s < 10 and w % 5 == 0) else 0.0
            mu = 5.0 * (1 - depth) ** -2.0
            rows.append(
                {
                    "sku": f"K{s:02d}",
                    "week": w,
                    "category": "C",
                    "department": "D",
                    "units": float(rng.poisson(mu)),
                    "discount_depth": depth,
                    "list_price": 2.0,
                }
            )
    return pd.DataFrame(rows)


def test_unvarying_price_gets_flagged_prior_not_a_fit():
    result = fit_catalog(_flat_panel(), FitConfig(n_harmonics=0))
    cat = result.catalog
    flat = np.isin(cat.sku, ["K10", "K11"])
    assert cat.elasticity_assumed[flat].all() and not cat.elasticity_assumed[~flat].any()
    # the prior is the category's mean with the category's spread as its uncertainty
    assert np.allclose(cat.elasticity[flat], result.categories["elasticity_mean"].iloc[0])
    assert np.all(cat.elasticity_se[flat] > 0)
    assert np.isnan(result.estimates.set_index("sku").loc["K10", "elasticity_raw"])
    # no coupons/promotions in this panel: all lifts are priors, flagged
    assert cat.coupon_assumed.all() and cat.display_assumed.all() and cat.mailer_assumed.all()
    assert np.allclose(cat.coupon_coef, 0.5 * -cat.elasticity)
    # no stock, no costs: the assumptions are stated
    assert any("weeks of cover" in n for n in result.notes)
    assert any("unit_cost assumed" in n for n in result.notes)


def test_coupon_prior_mode_never_fits_coupons(recovery):
    _, panel, _ = recovery
    sub = panel[panel["sku"].isin(panel["sku"].unique()[:60])]
    result = fit_catalog(sub, FitConfig(coupons="prior"))
    assert result.catalog.coupon_assumed.all()


def test_same_panel_same_catalog():
    a = fit_catalog(_flat_panel(), FitConfig(n_harmonics=0)).catalog.to_frame()
    b = fit_catalog(_flat_panel(), FitConfig(n_harmonics=0)).catalog.to_frame()
    pd.testing.assert_frame_equal(a, b)


def test_skus_without_sales_are_left_out_with_a_note():
    panel = _flat_panel()
    panel.loc[panel["sku"] == "K03", "units"] = 0.0
    result = fit_catalog(panel, FitConfig(n_harmonics=0))
    assert "K03" not in set(result.catalog.sku)
    assert any("sold nothing" in n for n in result.notes)


@pytest.mark.parametrize(
    ("column", "value", "needle"),
    [("units", -1.0, "'units'"), ("discount_depth", 1.5, "'discount_depth'")],
)
def test_bad_panel_values_name_the_column(column, value, needle):
    panel = _flat_panel()
    panel.loc[3, column] = value
    with pytest.raises(DataError, match=needle):
        fit_catalog(panel)


def test_missing_column_and_empty_panel():
    with pytest.raises(DataError, match="discount_depth"):
        fit_catalog(_flat_panel().drop(columns="discount_depth"))
    with pytest.raises(DataError, match="no rows"):
        fit_catalog(_flat_panel().iloc[:0])


def test_config_validation_names_the_field():
    with pytest.raises(ConfigError, match="fit.pooling"):
        FitConfig(pooling="bayes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="fit.cost_share"):
        FitConfig(cost_share=1.5)


def test_global_pooling_gives_one_elasticity():
    result = fit_catalog(_flat_panel(), FitConfig(pooling="global", n_harmonics=0))
    el = result.catalog.elasticity
    assert np.allclose(el, el[0]) and -2.6 < el[0] < -1.4


def test_censored_mean_matches_brute_force():
    k = np.arange(0, 400)
    for mu, alpha, s in [(3.0, 0.0, 5), (8.0, 0.5, 4), (1.0, 2.0, 2)]:
        if alpha == 0:
            pmf = stats.poisson.pmf(k, mu)
        else:
            r = 1 / alpha
            pmf = stats.nbinom.pmf(k, r, r / (r + mu))
        tail = k >= s
        expect = np.sum(k[tail] * pmf[tail]) / np.sum(pmf[tail])
        got = censored_mean(np.array([s]), np.array([mu]), np.array([alpha]))[0]
        assert got == pytest.approx(expect, rel=1e-6)


def test_stockouts_are_detected_and_corrected():
    """Demand above stock is censored; the EM fit recovers the uncensored slope."""
    n_skus, n_weeks = 200, 60
    rng = np.random.default_rng(11)
    cat = Catalog.build(n_skus=n_skus, base_demand=6.0, elasticity=-2.5, initial_stock=0.0)
    state = initial_state(cat)
    rows = []
    for w in range(1, n_weeks + 1):
        d = np.where(rng.random(n_skus) < 0.3, 0.4, 0.0)
        state.stock = np.full(n_skus, 14.0)  # tight stock: deep discounts sell out
        state, res = step(cat, state, d, 0.0, rng)
        for i in range(n_skus):
            rows.append((f"S{i:03d}", w, res.units_sold[i], d[i], res.stock_after[i]))
    panel = pd.DataFrame(rows, columns=["sku", "week", "units", "discount_depth", "on_hand"])
    panel = panel.assign(category="C", list_price=1.0)
    censored = stockout_weeks(panel)
    assert censored.sum() > 100
    assert np.all(panel.loc[censored, "on_hand"] == 0)
    fit = fit_catalog(panel, FitConfig(n_harmonics=0, distribution="poisson"))
    naive = fit_catalog(
        panel.drop(columns="on_hand"), FitConfig(n_harmonics=0, distribution="poisson")
    )
    assert abs(np.median(fit.catalog.elasticity) + 2.5) < 0.15
    assert np.median(naive.catalog.elasticity) > -2.2  # censoring flattens the response


def test_glm_recovers_slopes_and_group_terms():
    rng = np.random.default_rng(5)
    n_skus, n_weeks, n_groups = 300, 52, 3
    group = rng.integers(0, n_groups, n_skus)
    a = rng.normal(1.5, 0.3, n_skus)
    b = rng.normal(-1.5, 0.3, n_skus)
    theta = np.array([[0.3], [-0.2], [0.5]])
    sku = np.repeat(np.arange(n_skus), n_weeks)
    x = np.log1p(-rng.choice([0.0, 0.0, 0.2, 0.4], sku.size))
    z = (rng.random(sku.size) < 0.2).astype(float)[:, None]
    y = rng.poisson(np.exp(a[sku] + b[sku] * x + z[:, 0] * theta[group[sku], 0])).astype(float)
    res = fit_sku_group_glm(y, x, z, sku, group, n_groups=n_groups)
    assert res.converged
    assert abs(np.mean(res.slope - b)) < 0.05
    assert np.allclose(res.theta, theta, atol=0.08)
    covered = np.abs(res.slope - b) <= 1.6449 * np.sqrt(res.cov[:, 1, 1])
    assert 0.85 <= covered.mean() <= 0.95
