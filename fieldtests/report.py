"""Markdown reports and plots of a test design and a test analysis.

Figures are drawn on :class:`matplotlib.figure.Figure` (no backend is selected here); the
caller saves them beside the report.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fieldtests.analysis import SMD_LIMIT, Analysis
from fieldtests.design import Design
from fieldtests.metrics import METRICS, metric
from fieldtests.power import ESTIMATORS

ESTIMATOR_LABELS = {
    "difference": "difference in means",
    "cuped": "CUPED",
    "stratified": "post-stratified",
    "stratified_cuped": "post-stratified CUPED",
}


def _fmt(x: float, digits: int = 2) -> str:
    return f"{x:,.{digits}f}" if np.isfinite(x) else "n/a"


def _table(frame: pd.DataFrame, digits: int = 3) -> str:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for rec in frame.to_dict(orient="records"):
        cells = [
            _fmt(v, digits) if isinstance(v, float) else str(v) for v in (rec[c] for c in cols)
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def power_curve_figure(design: Design):
    """Power against the effect (relative to the control mean), simulated per estimator and
    by the formula, with the MDE and the wanted power marked."""
    from matplotlib.figure import Figure

    c = design.curve
    fig = Figure(figsize=(7, 4.2))
    ax = fig.add_subplot()
    x = 100 * c["relative_effect"]
    for k in ESTIMATORS:
        ax.plot(x, c[f"power_{k}"], marker="o", ms=3, label=f"simulated, {ESTIMATOR_LABELS[k]}")
    ax.plot(x, c["power_formula"], ls="--", color="grey", label="formula (t-test)")
    ax.plot(x, c["power_formula_cuped"], ls=":", color="black", label="formula with CUPED")
    ax.axvline(100 * design.config.mde, color="red", lw=0.8)
    ax.axhline(design.config.power, color="red", lw=0.8, ls="--")
    ax.set(
        xlabel=f"effect on {design.config.metric} (% of the control mean)",
        ylabel="power",
        ylim=(0, 1.02),
        title=f"Power of {design.n_units} SKUs, {design.weeks} weeks",
    )
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def design_markdown(design: Design, *, plot: str = "power_curve.png") -> str:
    """The design report."""
    cfg = design.config
    m = metric(cfg.metric)
    a = design.assignment
    n_t = int((a["arm"] == "treatment").sum())
    start = int(a["test_start_week"].iloc[0])
    rel_plan = design.plan_effect / abs(design.control_mean)
    power = pd.DataFrame(
        {
            "estimator": [ESTIMATOR_LABELS[k] for k in ESTIMATORS],
            "power at the MDE (simulated)": [design.power_at_mde[k] for k in ESTIMATORS],
            "power at the plan's effect (simulated)": [design.power_at_plan[k] for k in ESTIMATORS],
        }
    )
    strata = (
        a.groupby("stratum")["arm"].value_counts().unstack(fill_value=0).reset_index()
        .rename(columns={"stratum": "stratum (category / tier)"})
    )  # fmt: skip
    lines = [
        f"# Field test design: {design.treatment_name} against {design.control_name}",
        "",
        f"- SKUs: {len(a):,} ({n_t:,} treatment, {len(a) - n_t:,} control) in "
        f"{a['stratum'].nunique()} strata (category x risk tier), seed {cfg.seed}",
        f"- test weeks: {design.weeks} ("
        + (f"data weeks {start}..{start + design.weeks - 1}" if start else "the data's last")
        + "); "
        f"pre-period for CUPED: {int(a['pre_weeks'].iloc[0])} weeks before",
        f"- primary metric: {m.name} ({m.label}); control mean {_fmt(design.control_mean)}",
        f"- minimum detectable effect: {cfg.mde:.1%} of the control mean = "
        f"{_fmt(design.mde_abs)} per SKU; alpha {cfg.alpha:g}, power wanted {cfg.power:.0%}",
        f"- the plan's own simulated effect: {_fmt(design.plan_effect)} per SKU "
        f"({rel_plan:+.1%} of the control mean)",
        f"- outcome sd across SKUs and episodes {_fmt(design.sigma)}; the CUPED covariates "
        f"({', '.join(m.covariates)}) explain R² = {design.rho**2:.2f} of it",
        "",
        f"## Power ({cfg.n_sims:,} simulated tests per effect in the fitted market)",
        "",
        _table(power),
        "",
        f"Formula (statsmodels `TTestIndPower`, i.i.d. units): {design.analytic['difference']:.3f} "
        f"without covariates, {design.analytic['cuped']:.3f} with CUPED's variance "
        "(the simulation also counts the strata and the SKUs' real distribution).",
        "",
        f"SKUs needed for {cfg.power:.0%} power at the MDE (formula): "
        f"{_fmt(design.needed_units['cuped'], 0)} with CUPED, "
        f"{_fmt(design.needed_units['difference'], 0)} without; the plan has {len(a):,}.",
        "",
    ]
    for note in design.notes:
        lines += [f"**Note:** {note}", ""]
    lines += [
        f"![power curve]({plot})",
        "",
        "## Assignment per stratum",
        "",
        _table(strata),
        "",
        "How: each stratum's SKUs in random order, the first half (rounded at random) to "
        "treatment; treatment = the recommended plan, control = "
        f"{'no markdown' if cfg.control == 'none' else 'the best heuristic'}. Power: "
        f"{cfg.n_episodes} paired episodes per SKU simulated under both plans "
        "(common random numbers); each simulated test takes one episode per SKU and a fresh "
        "assignment.",
    ]
    return "\n".join(lines) + "\n"


def effects_figure(analysis: Analysis):
    """Every metric's effect (relative to the control mean) with its CI, per estimator."""
    from matplotlib.figure import Figure

    e = analysis.effects
    fig = Figure(figsize=(7, 1 + 0.35 * len(e)))
    ax = fig.add_subplot()
    labels, y = [], np.arange(len(e))[::-1]
    for i, r in enumerate(e.to_dict("records")):
        scale = abs(float(r["control_mean"])) or 1.0
        eff, lo, hi = (100 * float(r[k]) / scale for k in ("effect", "ci_low", "ci_high"))
        ax.errorbar(eff, y[i], xerr=[[eff - lo], [hi - eff]], fmt="o", ms=4,
                    color=f"C{list(METRICS).index(str(r['metric']))}")  # fmt: skip
        labels.append(f"{r['metric']}: {ESTIMATOR_LABELS[str(r['estimator'])]}")
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_yticks(y, labels, fontsize=7)
    ax.set(xlabel=f"effect, % of the control mean ({analysis.level:.0%} CI)")
    fig.tight_layout()
    return fig


def outcomes_figure(analysis: Analysis, metric_name: str = "profit"):
    """Distribution of one metric per arm (per SKU)."""
    from matplotlib.figure import Figure

    o = analysis.outcomes
    fig = Figure(figsize=(6, 3.5))
    ax = fig.add_subplot()
    data = [o.loc[o["arm"] == arm, metric_name].to_numpy(float) for arm in ("control", "treatment")]
    ax.boxplot(data, tick_labels=["control", "treatment"], showmeans=True)
    ax.set(ylabel=f"{metric_name} per SKU", title=f"{metric_name} per SKU by arm")
    fig.tight_layout()
    return fig


def analysis_markdown(analysis: Analysis, *, source: str, data: str, plots: tuple[str, str]) -> str:
    """The analysis report."""
    o, s = analysis.outcomes, analysis.srm
    eff = analysis.effects.assign(estimator=analysis.effects["estimator"].map(ESTIMATOR_LABELS))
    eff = eff[["metric", "estimator", "effect", "ci_low", "ci_high", "p_value", "relative"]]
    guard = analysis.guardrails[["metric", "effect", "ci_low", "ci_high", "control_mean"]]
    srm = (
        f"sample ratio: {s.n_treatment} treatment / {s.n_control} control against a designed "
        f"share of {s.expected_share:.0%}: chi² = {s.chi2:.2f}, p = {s.p_value:.3g} -> "
        + (
            "**MISMATCH: the assignment was not executed as designed; do not trust the effects**"
            if s.flagged
            else "no mismatch"
        )  # fmt: skip
    )
    bad = analysis.balance[analysis.balance["imbalanced"]]["covariate"].tolist()
    lines = [
        "# Field test analysis",
        "",
        f"- assignment: `{source}`; data: `{data}`; {len(o):,} SKUs; test weeks from data week "
        f"{int(o['test_start_week'].iloc[0])}",
        f"- {srm}",
        "- balance of pre-period covariates: "
        + (
            f"imbalanced (|SMD| > {SMD_LIMIT}): {', '.join(bad)}"
            if bad
            else f"all |SMD| <= {SMD_LIMIT}"
        ),  # fmt: skip
        "",
        f"## Effects per SKU (treatment - control, {analysis.level:.0%} CIs)",
        "",
        _table(eff, 4),
        "",
        "`relative` is the effect as a share of the control arm's mean. The post-stratified "
        "CUPED estimate matches the stratified design; the unstratified ones are conservative.",
        "",
        f"![effects]({plots[0]})",
        "",
        "## Guardrails",
        "",
        _table(guard, 4),
        "",
        "## Balance (pre-period covariates)",
        "",
        _table(analysis.balance, 3),
        "",
        f"![profit per SKU by arm]({plots[1]})",
    ]
    return "\n".join(lines) + "\n"
