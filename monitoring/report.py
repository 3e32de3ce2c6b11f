"""The monitoring report: a Markdown page with the verdict per check and three plots (the
drift per feature, the calibration curve, the forecast against the actual units), each file
written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ingest.io import write_figure_atomic, write_frame_atomic, write_text_atomic
from monitoring.drift import ALL_SKUS
from monitoring.monitor import MonitorResult

#: Drift rows shown in the report's table (the highest PSI first).
DRIFT_ROWS_SHOWN = 15
#: Features in the drift plot.
DRIFT_FEATURES_PLOTTED = 20


def plot_drift(result: MonitorResult, path: Path) -> Path:
    """Bar chart of the PSI per feature (all SKUs), the threshold as a line; the highest
    per-category PSI of each feature as a dot."""
    from matplotlib.figure import Figure

    overall = result.drift[result.drift["scope"] == ALL_SKUS].set_index("feature")["psi"]
    by_cat = result.drift[result.drift["scope"] != ALL_SKUS].groupby("feature")["psi"].max()
    top = (
        pd.concat([overall, by_cat.reindex(overall.index)], axis=1)
        .max(axis=1)
        .sort_values()
        .tail(DRIFT_FEATURES_PLOTTED)
    )
    fig = Figure(figsize=(7, 0.3 * len(top) + 1.5))
    ax = fig.subplots()
    ax.barh(top.index, overall.reindex(top.index).to_numpy(), label="all SKUs")
    if len(by_cat):
        ax.plot(by_cat.reindex(top.index).to_numpy(), top.index, "o", label="worst category")
    ax.axvline(result.thresholds.psi_max, color="red", linestyle="--", label="threshold")
    ax.set(xlabel="PSI", title=f"Feature drift: week {result.last_week} vs {result.reference_week}")
    ax.legend(loc="lower right")
    return write_figure_atomic(fig, path, bbox_inches="tight")


def plot_calibration(result: MonitorResult, path: Path) -> Path | None:
    """Observed dead-stock rate against mean predicted risk per decile (None when skipped)."""
    from matplotlib.figure import Figure

    cal = result.calibration
    if cal is None:
        return None
    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    t = cal.table
    top = float(max(t["predicted"].max(), t["observed"].max(), 0.05)) * 1.1
    ax.plot([0, top], [0, top], color="grey", linestyle=":")
    ax.plot(t["predicted"], t["observed"], "o-")
    for n, x, y in zip(t["n"], t["predicted"], t["observed"], strict=True):
        ax.annotate(str(n), (x, y), fontsize=7)
    ax.set(
        xlabel="mean predicted risk (decile)",
        ylabel="observed dead-stock rate",
        title=f"Calibration (ECE {cal.ece:.3f}, n = {cal.n:,})",
    )
    return write_figure_atomic(fig, path, bbox_inches="tight")


def plot_forecast(result: MonitorResult, path: Path) -> Path | None:
    """Actual against forecast units per new week."""
    from matplotlib.figure import Figure

    fc = result.forecast
    if fc is None:
        return None
    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    ax.plot(fc.by_week["week"], fc.by_week["units"], "o-", label="actual")
    ax.plot(fc.by_week["week"], fc.by_week["forecast"], "s--", label="forecast")
    ax.set(
        xlabel="week",
        ylabel="units (monitored SKUs)",
        title=f"Forecast: WMAPE {fc.new_wmape:.3f} vs holdout {fc.holdout_wmape:.3f}",
    )
    ax.legend()
    return write_figure_atomic(fig, path, bbox_inches="tight")


def _table(frame: pd.DataFrame, floats: int = 3) -> str:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for rec in frame.to_dict(orient="records"):
        cells = [
            f"{v:.{floats}f}" if isinstance(v, float | np.floating) else str(v)
            for v in rec.values()
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_markdown(result: MonitorResult, plots: dict[str, Path | None], title: str) -> str:
    """The report's Markdown (plots linked by file name, beside the report)."""
    crossed = result.crossed
    verdict = (
        "**Crossed: " + ", ".join(c.name for c in crossed) + "** (exit code 3)"
        if crossed
        else "All checks within their thresholds (exit code 0)."
    )
    checks = pd.DataFrame(
        [
            {"check": c.name, "status": c.status, "value": c.value, "threshold": c.threshold}
            for c in result.checks
        ]
    )
    lines = [
        f"# {title}",
        "",
        f"Weeks {result.reference_week + 1}-{result.last_week} against the reference run's "
        f"training data (weeks up to {result.reference_week}).",
        "",
        verdict,
        "",
        _table(checks),
        "",
    ]
    lines += [f"- **{c.name}** ({c.status}): {c.detail}" for c in result.checks]
    lines += ["", "## Feature drift", ""]
    shown = result.drift.sort_values("psi", ascending=False).head(DRIFT_ROWS_SHOWN)
    shown = shown.assign(ks_pvalue=[f"{p:.1e}" for p in shown["ks_pvalue"]])
    lines += [
        f"The {DRIFT_ROWS_SHOWN} highest PSIs (all rows in `drift.csv`); a row drifts when its "
        "PSI is above the threshold and its KS p-value below the Bonferroni-corrected level.",
        "",
        _table(shown.drop(columns=["n_ref", "n_cur"])),
        "",
    ]
    for name in ("drift", "calibration", "forecast"):
        path = plots.get(name)
        if path is not None:
            lines.append(f"![{name}]({path.name})")
    if result.calibration is not None:
        lines += ["", "## Calibration by score decile", "", _table(result.calibration.table)]
    if result.forecast is not None:
        lines += ["", "## Forecast error by category", "", _table(result.forecast.by_category)]
    return "\n".join(lines) + "\n"


def write_report(result: MonitorResult, out_dir: str | Path, *, title: str = "Monitoring") -> Path:
    """Write ``report.md``, ``drift.csv`` and the plots into ``out_dir``; returns the report."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plots = {
        "drift": plot_drift(result, out / "drift.png"),
        "calibration": plot_calibration(result, out / "calibration.png"),
        "forecast": plot_forecast(result, out / "forecast.png"),
    }
    write_frame_atomic(result.drift, out / "drift.csv")
    return write_text_atomic(out / "report.md", render_markdown(result, plots, title))
