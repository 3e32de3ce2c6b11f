"""The analysis of a field test: outcomes from the data, effects with CIs, guardrails, checks.

:func:`observed_outcomes` reads each assigned SKU's test weeks and pre-period from a sales
table (the canonical ``sales`` table: ``sku, week, units, revenue, discount_amount,
coupon_amount``) and computes every metric of :mod:`fieldtests.metrics`. A SKU with no sales
row in a week sold nothing that week.

:func:`analyze` then reports, per metric, the effect (treatment - control, per SKU) by
difference in means, CUPED (pre-period covariate) and post-stratification (the design's
strata); the guardrails (margin given away, sell-through); the balance of pre-period
covariates (standardized mean differences, flagged above :data:`SMD_LIMIT`); and the
sample-ratio-mismatch check against the designed treatment share.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from fieldtests.assignment import CONTROL, TREATMENT, codes_of
from fieldtests.estimators import (
    SampleRatio,
    cuped,
    diff_in_means,
    sample_ratio_mismatch,
    standardized_mean_difference,
    stratified,
    stratified_cuped,
)
from fieldtests.metrics import GUARDRAILS, METRICS, covariate_matrix, covariates, observed
from ingest.errors import DataError

SMD_LIMIT = 0.1
"""Absolute standardized mean difference above which a covariate is called imbalanced."""
ASSIGNMENT_NEEDS = ("sku", "arm", "stratum", "initial_stock", "unit_cost", "test_start_week",
                    "test_weeks", "pre_weeks", "treatment_share")  # fmt: skip
SALES_NEEDS = ("sku", "week", "units", "revenue")
BALANCE_COVARIATES = ("pre_units", "pre_revenue", "initial_stock", "list_price")


def check_assignment(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """The assignment table with its columns and values checked (``source`` names it)."""
    missing = [c for c in ASSIGNMENT_NEEDS if c not in frame.columns]
    if missing:
        raise DataError(
            f"{source}: column(s) {missing} missing; expected the table written by "
            "'deadstock abtest design' ({})".format(", ".join(ASSIGNMENT_NEEDS))
        )
    out = frame.assign(sku=frame["sku"].astype(str))
    bad = sorted(set(out["arm"].astype(str)) - {TREATMENT, CONTROL})
    if bad:
        raise DataError(f"{source}: column 'arm' holds {bad}; expected 'treatment' or 'control'")
    if out["sku"].duplicated().any():
        raise DataError(f"{source}: SKU {out.loc[out['sku'].duplicated(), 'sku'].iloc[0]!r} "
                        "appears twice; expected each SKU once")  # fmt: skip
    for col in ("test_start_week", "test_weeks", "pre_weeks", "treatment_share"):
        if out[col].nunique() != 1:
            raise DataError(f"{source}: column {col!r} must hold one value; got several")
    if (pd.to_numeric(out["initial_stock"], errors="coerce").fillna(-1) < 0).any():
        raise DataError(f"{source}: column 'initial_stock' must be numbers >= 0")
    return out


@dataclass(frozen=True)
class Window:
    """The test's weeks ``start .. start + weeks - 1`` and the pre-period before them."""

    start: int
    weeks: int
    pre_weeks: int

    @property
    def end(self) -> int:
        return self.start + self.weeks - 1


def observed_outcomes(
    sales: pd.DataFrame, assignment: pd.DataFrame, *, source: str, data_source: str
) -> pd.DataFrame:
    """Per assigned SKU: arm, stratum, every metric, guardrail and pre-period covariate."""
    a = check_assignment(assignment, source)
    missing = [c for c in SALES_NEEDS if c not in sales.columns]
    if missing:
        raise DataError(f"{data_source}: sales table lacks column(s) {missing}")
    w = Window(int(a["test_start_week"].iloc[0]), int(a["test_weeks"].iloc[0]),
               int(a["pre_weeks"].iloc[0]))  # fmt: skip
    s = sales.assign(sku=sales["sku"].astype(str))
    last = int(s["week"].max()) if len(s) else 0
    if w.start == 0:  # the design did not know the run's last week: the data's last weeks
        w = Window(last - w.weeks + 1, w.weeks, w.pre_weeks)
    if last < w.end:
        raise DataError(
            f"{data_source}: the data ends at week {last}, but the test in {source} runs weeks "
            f"{w.start}..{w.end}; expected data through week {w.end}"
        )
    known = set(s["sku"])
    absent = [k for k in a["sku"] if k not in known]
    if len(absent) == len(a) or len(absent) > len(a) // 2:
        raise DataError(
            f"{source} does not match {data_source}: {len(absent)} of {len(a)} assigned SKUs "
            f"never sell in the data (e.g. {absent[:3]}); expected the SKUs of the test"
        )
    for col in ("discount_amount", "coupon_amount"):
        if col not in s.columns:
            s[col] = 0.0
    cols = ["units", "revenue", "discount_amount", "coupon_amount"]
    test = s[(s["week"] >= w.start) & (s["week"] <= w.end)].groupby("sku")[cols].sum()
    pre = (
        s[(s["week"] >= w.start - w.pre_weeks) & (s["week"] < w.start)]
        .groupby("sku")[["units", "revenue"]]
        .sum()
    )
    test = test.reindex(a["sku"]).fillna(0.0)
    pre = pre.reindex(a["sku"]).fillna(0.0)
    stock = a["initial_stock"].to_numpy(float)
    metrics = observed(
        test["units"].to_numpy(), test["revenue"].to_numpy(),
        test["discount_amount"].to_numpy(), test["coupon_amount"].to_numpy(),
        stock, a["unit_cost"].to_numpy(float),
    )  # fmt: skip
    cov = covariates(pre["units"].to_numpy(), pre["revenue"].to_numpy(), stock,
                     a["unit_cost"].to_numpy(float))  # fmt: skip
    out = a[["sku", "arm", "stratum"]].reset_index(drop=True)
    out["test_start_week"] = w.start
    out = pd.concat([out, metrics], axis=1)
    for name, values in cov.items():
        out[name] = values
    if "list_price" in a.columns:
        out["list_price"] = a["list_price"].to_numpy(float)
    return out


@dataclass
class Analysis:
    """Effects, guardrails and checks of one test (see the module docstring)."""

    outcomes: pd.DataFrame
    effects: pd.DataFrame
    guardrails: pd.DataFrame
    balance: pd.DataFrame
    srm: SampleRatio
    level: float

    def metrics(self) -> dict[str, float]:
        """Flat metrics for MLflow (``analysis/...``)."""
        out = {"analysis/n_skus": float(len(self.outcomes)), "analysis/srm_p": self.srm.p_value}
        for r in self.effects.to_dict("records"):
            for f in ("effect", "ci_low", "ci_high", "p_value"):
                out[f"analysis/{r['metric']}/{r['estimator']}/{f}"] = float(r[f])
        for c, smd in zip(self.balance["covariate"], self.balance["smd"], strict=True):
            out[f"analysis/balance_smd/{c}"] = float(smd)
        return out


def _row(name, estimator, est, control_mean) -> dict[str, object]:
    effect = float(est.effect[0])
    return {
        "metric": name, "estimator": estimator, "effect": effect,
        "ci_low": float(est.low[0]), "ci_high": float(est.high[0]),
        "p_value": float(est.p_value[0]), "control_mean": control_mean,
        "relative": effect / abs(control_mean) if control_mean else float("nan"),
    }  # fmt: skip


def analyze(outcomes: pd.DataFrame, *, share: float = 0.5, level: float = 0.95) -> Analysis:
    """Analyse the per-SKU outcomes of :func:`observed_outcomes`."""
    treat = (outcomes["arm"] == TREATMENT).to_numpy()
    codes = codes_of(outcomes["stratum"].to_numpy())
    rows = []
    for m in METRICS.values():
        y = outcomes[m.name].to_numpy(float)
        cm = float(y[~treat].mean())
        rows.append(_row(m.name, "difference", diff_in_means(y, treat, level), cm))
        x = covariate_matrix({c: outcomes[c].to_numpy(float) for c in m.covariates}, m)
        rows.append(_row(m.name, "cuped", cuped(y, x[None], treat, level), cm))
        rows.append(_row(m.name, "stratified", stratified(y, treat, codes, level), cm))
        est = stratified_cuped(y, x[None], treat, codes, level)
        rows.append(_row(m.name, "stratified_cuped", est, cm))
    guard = []
    for g in GUARDRAILS:
        y = outcomes[g].to_numpy(float)
        guard.append(_row(g, "difference", diff_in_means(y, treat, level), float(y[~treat].mean())))
    balance = []
    for c in BALANCE_COVARIATES:
        if c in outcomes.columns:
            x = outcomes[c].to_numpy(float)
            smd = standardized_mean_difference(x, treat)
            balance.append({"covariate": c, "mean_treatment": float(x[treat].mean()),
                            "mean_control": float(x[~treat].mean()), "smd": smd,
                            "imbalanced": abs(smd) > SMD_LIMIT})  # fmt: skip
    srm = sample_ratio_mismatch(int(treat.sum()), int((~treat).sum()), share)
    return Analysis(outcomes, pd.DataFrame(rows), pd.DataFrame(guard), pd.DataFrame(balance),
                    srm, level)  # fmt: skip
