"""The run report: Markdown plus PNG plots in the output folder (and logged to MLflow by the
pipeline).

It shows the risk distribution, the top SKUs' schedules, the recommended policy against the
baselines, and the ROI summary: dead stock avoided (units and value), margin given away,
holding cost saved and profit against doing nothing. Every number and every error bar is
computed here from the simulated outcomes (paired by common random numbers), never copied
from a claim.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from ingest.io import write_figure_atomic, write_text_atomic
from planning.outcomes import Outcome, mean_ci, paired_ci

ROI_ROWS: tuple[tuple[str, str, str, int], ...] = (
    # (label, total, unit, sign): value = sign * (recommended - no markdown)
    ("dead stock avoided (units)", "leftover_units", "units", -1),
    ("dead stock avoided (value at cost)", "dead_stock_value", "currency", -1),
    ("margin given away", "margin_given_away", "currency", 1),
    ("holding cost saved", "holding_cost", "currency", -1),
    ("profit vs doing nothing", "profit", "currency", 1),
)


def roi_summary(recommended: Outcome, nothing: Outcome) -> pd.DataFrame:
    """ROI of the recommended schedules against doing nothing, over all at-risk SKUs.

    Each row is a paired difference (common random numbers) with its CI; see
    :data:`ROI_ROWS` for the sign convention (positive = good, except margin given away).
    """
    rows = []
    for label, total, unit, sign in ROI_ROWS:
        m, lo, hi = paired_ci(recommended, nothing, total)
        lo, hi = sorted((sign * lo, sign * hi))
        rows.append({"item": label, "key": total, "unit": unit, "mean": sign * m,
                     "ci_low": lo, "ci_high": hi})  # fmt: skip
    return pd.DataFrame(rows)


def policy_comparison(outcomes: Mapping[str, Outcome]) -> pd.DataFrame:
    """Portfolio totals per policy: profit with CI, sell-through, leftover units, margin
    given away and revenue."""
    rows = []
    for name, out in outcomes.items():
        profit, lo, hi = out.portfolio("profit")
        sold = out.totals["units_sold"].sum(axis=0)
        stock = sold + out.totals["leftover_units"].sum(axis=0)
        st = np.divide(sold, stock, out=np.zeros_like(sold), where=stock > 0)
        st_lo, st_hi = mean_ci(st, out.ci_level)
        rows.append(
            {
                "policy": name,
                "schedule": out.schedule.name,
                "profit": profit,
                "profit_ci_low": lo,
                "profit_ci_high": hi,
                "sell_through": float(st.mean()),
                "sell_through_ci_low": float(st_lo),
                "sell_through_ci_high": float(st_hi),
                "leftover_units": out.portfolio("leftover_units")[0],
                "margin_given_away": out.portfolio("margin_given_away")[0],
                "revenue": out.portfolio("revenue")[0],
            }
        )
    return pd.DataFrame(rows)


@dataclass
class ReportInputs:
    """Everything the report shows (built by the pipeline)."""

    scores: pd.DataFrame
    selected: Sequence[str]
    selection_rule: str
    outcomes: Mapping[str, Outcome]
    catalog_frame: pd.DataFrame
    stock_assumption: str
    n_episodes: int
    ci_level: float
    horizon_weeks: int
    stages: pd.DataFrame
    exports: Mapping[str, str] = field(default_factory=dict)
    notes: Sequence[str] = ()
    title: str = "deadstock run report"
    top_n: int = 6


def _savefig(fig: Figure, target: Path) -> Path:
    return write_figure_atomic(fig, target)


def plot_risk_distribution(inp: ReportInputs, target: Path) -> Path:
    """Histogram of risk scores, the selected SKUs highlighted; the share selected with a
    Wilson CI in the title."""
    risk = inp.scores["risk"].astype(float).to_numpy()
    sel = inp.scores["sku"].astype(str).isin(set(map(str, inp.selected))).to_numpy()
    n, k = len(risk), int(sel.sum())
    z = stats.norm.ppf(0.5 + inp.ci_level / 2)
    p = k / n if n else 0.0
    centre = (p + z * z / (2 * n)) / (1 + z * z / n) if n else 0.0
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n) if n else 0.0
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    bins = np.linspace(0, 1, 41).tolist()
    ax.hist(risk[~sel], bins=bins, alpha=0.7, label="not selected")
    ax.hist(risk[sel], bins=bins, alpha=0.8, label="selected (at risk)")
    ax.set_yscale("log")
    ax.set_xlabel("dead-stock risk score")
    ax.set_ylabel("SKUs (log scale)")
    ax.set_title(
        f"{n:,} established SKUs scored; {k:,} selected = {p:.1%} "
        f"[{max(centre - half, 0):.1%}, {centre + half:.1%}] ({inp.ci_level:.0%} Wilson CI)",
        fontsize=9,
    )
    ax.legend()
    fig.tight_layout()
    return _savefig(fig, target)


def plot_top_schedules(inp: ReportInputs, target: Path) -> Path:
    """Discount and expected stock left per week for the riskiest SKUs (stock with the CI of
    the mean across episodes)."""
    rec = inp.outcomes["recommended"]
    sku = np.asarray(rec.schedule.sku, dtype=str)
    risk = inp.scores.assign(sku=inp.scores["sku"].astype(str)).set_index("sku")["risk"]
    order = np.argsort(-risk.reindex(sku).fillna(0).to_numpy(), kind="stable")[: inp.top_n]
    h = rec.schedule.horizon
    weeks = np.arange(1, h + 1)
    z = stats.norm.ppf(0.5 + inp.ci_level / 2)
    fig = Figure(figsize=(7, 6))
    ax0, ax1 = fig.subplots(2, 1, sharex=True)
    for i in order:
        label = f"{sku[i]} (risk {risk.get(sku[i], np.nan):.2f})"
        ax0.step(weeks, np.asarray(rec.schedule.discount)[i] * 100, where="mid", label=label)
        stock0 = float(inp.catalog_frame["initial_stock"].iloc[i]) or 1.0
        m = rec.weekly_mean["stock_left"][i] / stock0
        half = z * rec.weekly_sd["stock_left"][i] / np.sqrt(rec.n_episodes) / stock0
        ax1.plot(weeks, m, marker=".")
        ax1.fill_between(weeks, m - half, m + half, alpha=0.2)
    ax0.set_ylabel("discount (%)")
    ax0.legend(fontsize=7, loc="upper left")
    ax0.set_title(f"Recommended schedules of the {len(order)} riskiest at-risk SKUs", fontsize=9)
    ax1.set_ylabel("expected stock left / initial")
    ax1.set_xlabel(f"plan week (exit at week {h}); band = {inp.ci_level:.0%} CI of the mean")
    fig.tight_layout()
    return _savefig(fig, target)


def plot_policy_comparison(table: pd.DataFrame, target: Path, ci_level: float) -> Path:
    """Portfolio profit and sell-through per policy, with CIs."""
    fig = Figure(figsize=(9, 4))
    ax0, ax1 = fig.subplots(1, 2)
    x = np.arange(len(table))
    names = table["policy"].tolist()
    for ax, col, label in (
        (ax0, "profit", "expected profit"),
        (ax1, "sell_through", "sell-through"),
    ):
        m = table[col].to_numpy(float)
        err = np.vstack([m - table[f"{col}_ci_low"], table[f"{col}_ci_high"] - m])
        ax.bar(
            x, m, yerr=err, capsize=4, color=["C0" if n == "recommended" else "C7" for n in names]
        )
        ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
        ax.set_title(f"{label} ({ci_level:.0%} CI)", fontsize=9)
    fig.tight_layout()
    return _savefig(fig, target)


def plot_roi(roi: pd.DataFrame, target: Path, ci_level: float) -> Path:
    """The ROI items against doing nothing, as bars with paired CIs (currency items)."""
    money = roi[roi["unit"] == "currency"].reset_index(drop=True)
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    y = np.arange(len(money))
    m = money["mean"].to_numpy(float)
    err = np.vstack([m - money["ci_low"], money["ci_high"] - m])
    colours = [
        "C1" if k == "margin_given_away" else "C2" if v >= 0 else "C3"
        for k, v in zip(money["key"], m, strict=True)
    ]
    ax.barh(y, m, xerr=err, capsize=4, color=colours)
    ax.set_yticks(y, money["item"], fontsize=8)
    ax.axvline(0, color="black", linewidth=0.8)
    units = roi[roi["key"] == "leftover_units"].iloc[0]
    ax.set_title(
        f"Recommended schedules vs doing nothing ({ci_level:.0%} paired CI)\n"
        f"dead stock avoided: {units['mean']:,.0f} units "
        f"[{units['ci_low']:,.0f}, {units['ci_high']:,.0f}]; orange = cost",
        fontsize=9,
    )
    ax.set_xlabel("currency, all at-risk SKUs over the plan")
    fig.tight_layout()
    return _savefig(fig, target)


def _md_table(frame: pd.DataFrame, floatfmt: str = "{:,.2f}") -> str:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False):
        cells = [floatfmt.format(v) if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(inp: ReportInputs, out_dir: str | Path) -> tuple[Path, dict[str, float]]:
    """Write ``report.md`` and its PNGs under ``out_dir/report``.

    Returns the report's path and the headline figures (for MLflow metrics).
    """
    folder = Path(out_dir) / "report"
    rec, none = inp.outcomes["recommended"], inp.outcomes["no_markdown"]
    roi = roi_summary(rec, none)
    comp = policy_comparison(inp.outcomes)
    figs = {
        "risk": plot_risk_distribution(inp, folder / "risk_distribution.png"),
        "schedules": plot_top_schedules(inp, folder / "top_schedules.png"),
        "policies": plot_policy_comparison(comp, folder / "policy_comparison.png", inp.ci_level),
        "roi": plot_roi(roi, folder / "roi.png", inp.ci_level),
    }
    roi_md = roi.assign(
        CI=[f"[{lo:,.2f}, {hi:,.2f}]" for lo, hi in zip(roi["ci_low"], roi["ci_high"], strict=True)]
    )[["item", "unit", "mean", "CI"]]
    comp_md = comp.assign(
        profit_CI=[
            f"[{lo:,.2f}, {hi:,.2f}]"
            for lo, hi in zip(comp["profit_ci_low"], comp["profit_ci_high"], strict=True)
        ]
    )[["policy", "schedule", "profit", "profit_CI", "sell_through", "leftover_units",
       "margin_given_away"]]  # fmt: skip
    lines = [
        f"# {inp.title}",
        "",
        f"- Established SKUs scored: {len(inp.scores):,}; at-risk SKUs planned: {len(inp.selected):,} "
        f"({inp.selection_rule})",
        f"- Plan: {inp.horizon_weeks} weeks, exit (write-off of leftovers) at week "
        f"{inp.horizon_weeks}",
        f"- **Stock assumption:** {inp.stock_assumption}",
        f"- Expected values: means over {inp.n_episodes} simulated episodes per SKU through the "
        f"market simulator; intervals are {inp.ci_level:.0%} CIs, paired (common random "
        f"numbers) for differences",
        *[f"- {note}" for note in inp.notes],
        "",
        "## ROI of the recommended schedules against doing nothing",
        "",
        _md_table(roi_md),
        "",
        "![ROI](roi.png)",
        "",
        "## Recommended policy against the baselines",
        "",
        _md_table(comp_md),
        "",
        "![policies](policy_comparison.png)",
        "",
        "## Risk distribution",
        "",
        "![risk](risk_distribution.png)",
        "",
        "## Top SKUs' schedules",
        "",
        "![schedules](top_schedules.png)",
        "",
        "## Stages",
        "",
        _md_table(inp.stages, "{:,.1f}"),
        "",
    ]
    if inp.exports:
        lines += ["## Exports", ""] + [f"- `{k}`: `{v}`" for k, v in inp.exports.items()] + [""]
    path = write_text_atomic(folder / "report.md", "\n".join(lines))
    headline: dict[str, float] = {}
    for r in roi.to_dict("records"):
        for suffix, col in (("", "mean"), ("_ci_low", "ci_low"), ("_ci_high", "ci_high")):
            headline[f"roi/{r['key']}{suffix}"] = float(r[col])
    for r in comp.to_dict("records"):
        headline[f"policy/{r['policy']}/profit"] = float(r["profit"])
        headline[f"policy/{r['policy']}/sell_through"] = float(r["sell_through"])
    _ = figs
    return path, headline
