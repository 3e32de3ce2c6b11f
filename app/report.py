"""The run report: Markdown plus PNG plots in the output folder (and logged to MLflow by the
pipeline).

It shows how many SKUs were scored, established, selected and planned; the ROI of the
recommended schedules against doing nothing as a reconciliation whose lines add up to the
profit difference (:func:`roi_summary`); each plan's gain over doing nothing; what to check
(prices below cost, SKUs no price sells); the risk distribution; and the schedules of the
SKUs where the plan changes the outcome most. Every number and every error bar is computed
here from the simulated outcomes (paired per SKU by common random numbers), never copied
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
from planning.outcomes import Outcome, mean_ci

ROI_LINES: tuple[tuple[str, str, int], ...] = (
    # (label, total, sign): line = sign * (recommended - doing nothing), per episode
    ("extra sales at list price", "sales_at_list", 1),
    ("discount given away", "discount_given", -1),
    ("coupon cost", "coupon_cost", -1),
    ("refunds on returns", "refunds", -1),
    ("cost of goods of the extra units sold", "cogs", -1),
    ("holding cost saved", "holding_cost", -1),
    ("salvage value of the leftovers", "salvage", 1),
    ("write-off avoided (leftover stock at cost)", "writeoff", -1),
)
"""The lines of the ROI reconciliation. From :mod:`simulator.market`'s profit::

    profit  = revenue - coupon cost - refunds - cogs - holding + salvage - write-off
    revenue = sales at list price - discount given away

so, episode by episode, the lines add up to the profit difference exactly (up to floating
point). Cost of goods and write-off always cancel (every unit is either sold or written off
at cost): avoiding dead stock is worth what the extra units sell for, not their cost."""

ROI_TOTAL = ("profit vs doing nothing", "profit", 1)
ROI_MEMO: tuple[tuple[str, str, str, int], ...] = (
    # (label, total, unit, sign): shown below the total, not part of the sum
    ("dead stock avoided (units)", "leftover_units", "units", -1),
    ("dead stock avoided (value at cost)", "dead_stock_value", "currency", -1),
    ("margin given away (discount + coupon)", "margin_given_away", "currency", 1),
)

LOW_RISK = 0.3
"""Risk below which a SKU sold below cost is counted separately."""


def roi_per_episode(recommended: Outcome, nothing: Outcome) -> dict[str, np.ndarray]:
    """Every ROI line, the total and the memo items per episode (summed over SKUs), keyed by
    their total's name."""
    out: dict[str, np.ndarray] = {}
    for _, key, sign in (*ROI_LINES, ROI_TOTAL):
        out[key] = sign * (recommended.totals[key] - nothing.totals[key]).sum(axis=0)
    for _, key, _, sign in ROI_MEMO:
        out[key] = sign * (recommended.totals[key] - nothing.totals[key]).sum(axis=0)
    return out


def cents_adding_up(values: Sequence[float], total: float) -> list[float]:
    """``values`` rounded to cents so that they add up to ``total`` rounded to cents
    (largest-remainder rounding: the cents lost or gained by rounding each value go to the
    values whose rounding moved them most)."""
    cents = np.asarray(values, dtype=float) * 100.0
    floor = np.floor(cents)
    short = int(round(round(total * 100.0) - floor.sum()))
    order = np.argsort(-(cents - floor), kind="stable")
    out = floor.copy()
    if short > 0:
        out[order[:short]] += 1.0
    elif short < 0:
        out[order[::-1][:-short]] -= 1.0
    return [float(c) / 100.0 + 0.0 for c in out]


def roi_summary(recommended: Outcome, nothing: Outcome) -> pd.DataFrame:
    """ROI of the recommended schedules against doing nothing, over all at-risk SKUs.

    Columns ``item, key, unit, part, mean, ci_low, ci_high, shown``: every row a paired mean
    difference (common random numbers per SKU) with its CI. ``part`` is ``"line"`` for the
    lines of :data:`ROI_LINES` (they add up to the ``"total"`` row episode by episode) and
    ``"memo"`` for the items shown beside it. ``shown`` is the mean as printed: money in
    cents, the lines rounded so that they add up to the printed total exactly.
    """
    per_episode = roi_per_episode(recommended, nothing)
    rows = []
    specs = [(label, key, "currency", sign, "line") for label, key, sign in ROI_LINES]
    specs.append((ROI_TOTAL[0], ROI_TOTAL[1], "currency", 1, "total"))
    specs += [(label, key, unit, sign, "memo") for label, key, unit, sign in ROI_MEMO]
    for label, key, unit, _, part in specs:
        x = per_episode[key]
        lo, hi = mean_ci(x, recommended.ci_level)
        rows.append({"item": label, "key": key, "unit": unit, "part": part,
                     "mean": float(x.mean()), "ci_low": float(lo), "ci_high": float(hi)})  # fmt: skip
    frame = pd.DataFrame(rows)
    is_line = (frame["part"] == "line").to_numpy()
    total = float(frame.loc[frame["part"] == "total", "mean"].iloc[0])
    shown = np.round(frame["mean"].to_numpy(float), 2) + 0.0
    shown[is_line] = cents_adding_up(frame.loc[is_line, "mean"].tolist(), total)
    frame["shown"] = shown
    return frame


def policy_comparison(outcomes: Mapping[str, Outcome]) -> pd.DataFrame:
    """Per plan: its gain over doing nothing (paired CI), the extra units it sells (paired
    CI), its sell-through, total profit, leftover units and margin given away."""
    none = outcomes["no_markdown"]
    rows = []
    for name, out in outcomes.items():
        gain = (out.totals["profit"] - none.totals["profit"]).sum(axis=0)
        extra = (out.totals["units_sold"] - none.totals["units_sold"]).sum(axis=0)
        g_lo, g_hi = mean_ci(gain, out.ci_level)
        u_lo, u_hi = mean_ci(extra, out.ci_level)
        sold = out.totals["units_sold"].sum(axis=0)
        stock = sold + out.totals["leftover_units"].sum(axis=0)
        st = np.divide(sold, stock, out=np.zeros_like(sold), where=stock > 0)
        rows.append(
            {
                "policy": name,
                "schedule": out.schedule.name,
                "profit_vs_none": float(gain.mean()),
                "profit_vs_none_ci_low": float(g_lo),
                "profit_vs_none_ci_high": float(g_hi),
                "extra_units_sold": float(extra.mean()),
                "extra_units_ci_low": float(u_lo),
                "extra_units_ci_high": float(u_hi),
                "sell_through": float(st.mean()),
                "profit": out.portfolio("profit")[0],
                "leftover_units": out.portfolio("leftover_units")[0],
                "margin_given_away": out.portfolio("margin_given_away")[0],
            }
        )
    return pd.DataFrame(rows)


@dataclass
class ReportInputs:
    """Everything the report shows (built by the pipeline).

    ``scores`` are every scored SKU (with ``established`` where the risk stage gives it);
    ``summary`` is the ``sku_summary`` table of the planned SKUs.
    """

    scores: pd.DataFrame
    selected: Sequence[str]
    selection_rule: str
    outcomes: Mapping[str, Outcome]
    catalog_frame: pd.DataFrame
    stock_assumption: str
    simulation: str
    horizon_weeks: int
    stages: pd.DataFrame
    ci_level: float = 0.95
    summary: pd.DataFrame | None = None
    currency: str = "USD"
    exports: Mapping[str, str] = field(default_factory=dict)
    notes: Sequence[str] = ()
    title: str = "deadstock run report"
    top_n: int = 6
    recommendation: Sequence[str] = ()
    """The per-SKU choice in lines: wins per planner, the gain over the best single
    planner, the value of weekly re-planning (:meth:`planning.recommend.Recommendation.
    describe`)."""


def _savefig(fig: Figure, target: Path) -> Path:
    return write_figure_atomic(fig, target)


def _established(scores: pd.DataFrame) -> pd.DataFrame:
    if "established" not in scores.columns:
        return scores
    return scores[scores["established"].astype(bool)]


def plot_risk_distribution(inp: ReportInputs, target: Path) -> Path:
    """Histogram of the established SKUs' risk scores, the selected SKUs highlighted; the
    share selected with a Wilson CI in the title."""
    est = _established(inp.scores)
    risk = est["risk"].astype(float).to_numpy()
    sel = est["sku"].astype(str).isin(set(map(str, inp.selected))).to_numpy()
    n, k = len(risk), int(sel.sum())
    z = stats.norm.ppf(0.5 + inp.ci_level / 2)
    p = k / n if n else 0.0
    centre = (p + z * z / (2 * n)) / (1 + z * z / n) if n else 0.0
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n) if n else 0.0
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    bins = np.linspace(0, 1, 41).tolist()
    ax.hist(risk[~sel], bins=bins, alpha=0.7, label="established, not selected")
    ax.hist(risk[sel], bins=bins, alpha=0.8, label="selected (at risk)")
    ax.set_yscale("log")
    ax.set_xlabel("dead-stock risk score")
    ax.set_ylabel("established SKUs (log scale)")
    ax.set_title(
        f"{n:,} established SKUs; {k:,} selected = {p:.1%} "
        f"[{max(centre - half, 0):.1%}, {centre + half:.1%}] ({inp.ci_level:.0%} Wilson CI)",
        fontsize=9,
    )
    ax.legend()
    fig.tight_layout()
    return _savefig(fig, target)


def top_gain_skus(rec: Outcome, none: Outcome, n: int) -> np.ndarray:
    """Indices of the ``n`` SKUs whose recommended plan gains most over doing nothing
    (expected profit difference), largest first; SKUs the plan leaves at full price, whose
    gain is exactly zero, are never among them."""
    gain = (rec.totals["profit"] - none.totals["profit"]).mean(axis=1)
    changed = np.flatnonzero(
        np.asarray(rec.schedule.discount).any(axis=1) | np.asarray(rec.schedule.coupon).any(axis=1)
    )
    order = changed[np.argsort(-gain[changed], kind="stable")]
    return order[:n]


def plot_top_schedules(inp: ReportInputs, target: Path) -> Path:
    """Discount and expected stock left per week for the SKUs where the plan gains most over
    doing nothing (stock under the plan solid, under doing nothing dashed; bands are CIs of
    the mean)."""
    rec, none = inp.outcomes["recommended"], inp.outcomes["no_markdown"]
    sku = np.asarray(rec.schedule.sku, dtype=str)
    order = top_gain_skus(rec, none, inp.top_n)
    gain = (rec.totals["profit"] - none.totals["profit"]).mean(axis=1)
    desc = {}
    if inp.summary is not None and "description" in inp.summary.columns:
        desc = dict(zip(inp.summary["sku"].astype(str), inp.summary["description"], strict=False))
    h = rec.schedule.horizon
    weeks = np.arange(1, h + 1)
    z = stats.norm.ppf(0.5 + inp.ci_level / 2)
    fig = Figure(figsize=(7, 6))
    ax0, ax1 = fig.subplots(2, 1, sharex=True)
    for j, i in enumerate(order):
        colour = f"C{j % 10}"
        what = str(desc.get(sku[i], ""))[:28]
        label = f"{sku[i]} {what} (+{gain[i]:,.2f} {inp.currency})"
        ax0.step(
            weeks,
            np.asarray(rec.schedule.discount)[i] * 100,
            where="mid",
            label=label,
            color=colour,
        )
        stock0 = float(inp.catalog_frame["initial_stock"].iloc[i]) or 1.0
        m = rec.weekly_mean["stock_left"][i] / stock0
        half = z * rec.weekly_sd["stock_left"][i] / np.sqrt(rec.n_episodes) / stock0
        ax1.plot(weeks, m, marker=".", color=colour)
        ax1.fill_between(weeks, m - half, m + half, alpha=0.2, color=colour)
        ax1.plot(weeks, none.weekly_mean["stock_left"][i] / stock0, "--", color=colour)
    ax0.set_ylabel("discount (%)")
    if len(order):
        ax0.legend(fontsize=7, loc="upper left")
    ax0.set_title(
        f"The {len(order)} SKUs where the plan gains most over doing nothing "
        f"(expected profit difference)",
        fontsize=9,
    )
    ax1.set_ylabel("expected stock left / initial")
    ax1.set_xticks(weeks)
    ax1.set_xlabel(
        f"plan week (exit at week {h}); solid = plan, dashed = doing nothing; "
        f"band = {inp.ci_level:.0%} CI"
    )
    fig.tight_layout()
    return _savefig(fig, target)


def plot_policy_comparison(
    table: pd.DataFrame, target: Path, ci_level: float, currency: str = "USD"
) -> Path:
    """Each plan's gain over doing nothing: profit and units sold, with paired CIs."""
    rows = table[table["policy"] != "no_markdown"].reset_index(drop=True)
    fig = Figure(figsize=(9, 4))
    ax0, ax1 = fig.subplots(1, 2)
    x = np.arange(len(rows))
    names = rows["policy"].tolist()
    labels = [
        f"{n}\n({s})" if n in ("recommended", "best_heuristic") else n
        for n, s in zip(names, rows["schedule"], strict=True)
    ]
    for ax, col, lo, hi, title in (
        (ax0, "profit_vs_none", "profit_vs_none_ci_low", "profit_vs_none_ci_high",
         f"profit gain over doing nothing ({currency})"),
        (ax1, "extra_units_sold", "extra_units_ci_low", "extra_units_ci_high",
         "extra units sold over doing nothing"),
    ):  # fmt: skip
        m = rows[col].to_numpy(float)
        err = np.vstack([m - rows[lo].to_numpy(float), rows[hi].to_numpy(float) - m])
        colours = ["C0" if n == "recommended" else "C7" for n in names]
        ax.bar(x, m, yerr=err, capsize=4, color=colours)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=7)
        ax.set_title(f"{title}\n{ci_level:.0%} paired CI", fontsize=9)
    fig.tight_layout()
    return _savefig(fig, target)


def plot_roi(roi: pd.DataFrame, target: Path, ci_level: float, currency: str = "USD") -> Path:
    """The ROI reconciliation as a waterfall: each line's paired mean against doing nothing
    (with its CI), ending at the profit difference."""
    lines = roi[roi["part"] == "line"].reset_index(drop=True)
    total = roi[roi["part"] == "total"].iloc[0]
    fig = Figure(figsize=(7.5, 5))
    ax = fig.subplots()
    m = lines["mean"].to_numpy(float)
    left = np.concatenate([[0.0], np.cumsum(m)[:-1]])
    y = np.arange(len(lines) + 1)[::-1]
    colours = ["C2" if v >= 0 else "C3" for v in m]
    ax.barh(y[:-1], m, left=left, color=colours)
    err = np.vstack([m - lines["ci_low"].to_numpy(float), lines["ci_high"].to_numpy(float) - m])
    ax.errorbar(left + m, y[:-1], xerr=err, fmt="none", ecolor="black", capsize=3, linewidth=0.8)
    ax.barh(y[-1:], [total["mean"]], color="C0")
    ax.errorbar(
        [total["mean"]],
        y[-1:],
        xerr=[[total["mean"] - total["ci_low"]], [total["ci_high"] - total["mean"]]],
        fmt="none",
        ecolor="black",
        capsize=3,
    )
    ax.set_yticks(y, [*lines["item"], total["item"]], fontsize=8)
    ax.axvline(0, color="black", linewidth=0.8)
    units = roi[roi["key"] == "leftover_units"].iloc[0]
    ax.set_title(
        f"Recommended schedules vs doing nothing ({ci_level:.0%} paired CI);\n"
        f"the lines add up to the profit. Dead stock avoided: {units['mean']:,.0f} units\n"
        f"[{units['ci_low']:,.0f}, {units['ci_high']:,.0f}]",
        fontsize=9,
    )
    ax.set_xlabel(f"{currency}, all at-risk SKUs over the plan")
    fig.tight_layout()
    return _savefig(fig, target)


def _md_table(frame: pd.DataFrame, floatfmt: str = "{:,.2f}") -> str:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False):
        cells = [floatfmt.format(v) if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def counts_lines(inp: ReportInputs) -> list[str]:
    """How many SKUs were scored, established (by tier), selected and planned."""
    scores = inp.scores
    est = _established(scores)
    tiers = est["tier"].astype(str).value_counts() if "tier" in est.columns else pd.Series()
    by_tier = ", ".join(f"{tiers.get(t, 0):,} {t}" for t in ("high", "medium", "low"))
    lines = [f"- SKUs scored: {len(scores):,} (every SKU with sales history)"]
    if "established" in scores.columns:
        lines.append(
            f"- Established SKUs (the risk label applies: enough recent sales to speak of "
            f"dead stock): {len(est):,}, by tier {by_tier}; the other {len(scores) - len(est):,} "
            "scored SKU(s) get no tier (their score is an extrapolation)"
        )
    lines.append(
        f"- At-risk SKUs selected and planned: {len(inp.selected):,} ({inp.selection_rule})"
    )
    return lines


def checks_lines(inp: ReportInputs) -> list[str]:
    """What to check before executing the plan: SKUs sold below unit cost, SKUs no price
    sells."""
    s = inp.summary
    if s is None or s.empty:
        return []
    below = s["weeks_below_cost"].astype(int) > 0
    low = below & (s["risk"].astype(float) < LOW_RISK)
    no_demand = s["no_demand_at_any_price"].astype(bool)
    lines = [
        f"- **Net price below unit cost:** {int(below.sum()):,} of {len(s):,} planned SKUs in "
        f"some weeks, {int(low.sum()):,} of them with risk below {LOW_RISK:g}. Each is flagged "
        "in `sku_summary` (`weeks_below_cost`, `min_net_price`) and in the alerts; the "
        "business rule `[rules] margin_floor` forbids such prices when set (docs/pipeline.md).",
        f"- **No demand at any price:** {int(no_demand.sum()):,} SKU(s) would sell (almost) "
        "nothing even at the deepest allowed discount: no markdown is recommended for them "
        '("no demand at any price: consider another channel").',
    ]
    return lines


def _recommendation_lines(inp: ReportInputs) -> list[str]:
    if not inp.recommendation:
        return []
    return [
        "## Which planner each SKU gets",
        "",
        "Each SKU gets the plan that did best on one set of simulated paths (the DP's unless "
        "another plan beats it there with a CI above zero); every figure here and in "
        "`sku_summary` (`recommended_by`, `profit_vs_runner_up`) comes from another, "
        "independent set of paths, so the choice does not flatter itself.",
        "",
        *[f"- {line}" for line in inp.recommendation],
        "",
    ]


def write_report(inp: ReportInputs, out_dir: str | Path) -> tuple[Path, dict[str, float]]:
    """Write ``report.md`` and its PNGs under ``out_dir/report``.

    Returns the report's path and the headline figures (for MLflow metrics): ``roi/<key>``
    (the printed values, so the lines add up to ``roi/profit``), with ``_ci_low`` and
    ``_ci_high``, and per plan ``policy/<name>/profit_vs_none`` and ``sell_through``.
    """
    folder = Path(out_dir) / "report"
    rec, none = inp.outcomes["recommended"], inp.outcomes["no_markdown"]
    roi = roi_summary(rec, none)
    comp = policy_comparison(inp.outcomes)
    plot_risk_distribution(inp, folder / "risk_distribution.png")
    plot_top_schedules(inp, folder / "top_schedules.png")
    plot_policy_comparison(comp, folder / "policy_comparison.png", inp.ci_level, inp.currency)
    plot_roi(roi, folder / "roi.png", inp.ci_level, inp.currency)
    cur = inp.currency

    def roi_rows(part: str) -> pd.DataFrame:
        r = roi[roi["part"] == part]
        return pd.DataFrame(
            {
                "item": r["item"],
                "unit": [cur if u == "currency" else u for u in r["unit"]],
                "mean": r["shown"].astype(float),
                "CI": [
                    f"[{lo:,.2f}, {hi:,.2f}]"
                    for lo, hi in zip(r["ci_low"], r["ci_high"], strict=True)
                ],  # fmt: skip
            }
        )

    total_md = roi_rows("total")
    total_md["item"] = [f"**= {item}**" for item in total_md["item"]]
    roi_md = pd.concat([roi_rows("line"), total_md], ignore_index=True)
    comp_md = comp.assign(
        gain_CI=[
            f"[{lo:,.2f}, {hi:,.2f}]"
            for lo, hi in zip(comp["profit_vs_none_ci_low"], comp["profit_vs_none_ci_high"],
                              strict=True)
        ]  # fmt: skip
    )[["policy", "schedule", "profit_vs_none", "gain_CI", "extra_units_sold", "sell_through",
       "leftover_units", "margin_given_away"]]  # fmt: skip
    lines = [
        f"# {inp.title}",
        "",
        *counts_lines(inp),
        f"- Plan: {inp.horizon_weeks} weeks, exit (write-off of leftovers) at week "
        f"{inp.horizon_weeks}; money in {cur}",
        f"- **Stock assumption:** {inp.stock_assumption}",
        f"- Expected values: means of {inp.simulation}, through the market simulator; "
        "differences are paired per SKU (common random numbers), so a SKU whose plan is "
        "doing nothing shows a difference of exactly zero",
        *checks_lines(inp),
        *[f"- {note}" for note in inp.notes],
        "",
        "## ROI of the recommended schedules against doing nothing",
        "",
        "Each line is the paired mean difference (recommended minus doing nothing) with its "
        "CI; the lines add up to the profit difference, episode by episode. The cost of goods "
        "of the extra units sold and the write-off avoided cancel: every unit is sold or "
        "written off at cost, so dead stock avoided is worth what the extra units sell for.",
        "",
        _md_table(roi_md),
        "",
        _md_table(roi_rows("memo")),
        "",
        "![ROI](roi.png)",
        "",
        *_recommendation_lines(inp),
        "## Each plan against doing nothing",
        "",
        _md_table(comp_md),
        "",
        "![policies](policy_comparison.png)",
        "",
        "## Risk distribution",
        "",
        "![risk](risk_distribution.png)",
        "",
        "## Where the plan changes the outcome most",
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
        headline[f"roi/{r['key']}"] = float(r["shown"])
        headline[f"roi/{r['key']}_ci_low"] = float(r["ci_low"])
        headline[f"roi/{r['key']}_ci_high"] = float(r["ci_high"])
    for r in comp.to_dict("records"):
        headline[f"policy/{r['policy']}/profit_vs_none"] = float(r["profit_vs_none"])
        headline[f"policy/{r['policy']}/sell_through"] = float(r["sell_through"])
    return path, headline
