"""``deadstock compare``: the leaderboard across MLflow runs.

Training runs (``deadstock train``) and evaluation runs (``deadstock evaluate``) both log
``eval/median_pct_of_dp``, ``eval/worst_pct_of_dp``, ``eval/mean_pct_of_dp`` and
``eval/violations``, and are tagged ``agent``, ``seed`` and ``suite_version``. This module
reads them back with ``mlflow.search_runs`` and aggregates per agent: the mean over runs
(training seeds) with a 95 % CI across runs.

Pipeline runs (``deadstock run``, tagged ``kind=pipeline``) are compared plan by plan
(:func:`search_pipelines`): each plan's expected total profit over the run's at-risk SKUs and
its gain against doing nothing on the same simulated episodes, with the run's CIs
(``plan/<name>/...`` metrics, see :mod:`app.run_record`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from experiments import tracking
from experiments.suite import SUITE_VERSION
from ingest.errors import ConfigError
from ingest.io import write_figure_atomic

METRICS = ("median_pct_of_dp", "worst_pct_of_dp", "mean_pct_of_dp", "violations")


@dataclass(frozen=True)
class CompareConfig:
    """Which runs to compare.

    Parameters
    ----------
    experiment : str
        MLflow experiment.
    suite_version : str or None
        Only runs of this suite version (``None`` = any; mixing versions mixes scenarios).
    agents : tuple of str
        Only these agents (empty = all).
    max_pipeline_runs : int
        How many of the latest finished pipeline runs to list.
    """

    experiment: str = tracking.DEFAULT_EXPERIMENT
    suite_version: str | None = SUITE_VERSION
    agents: tuple[str, ...] = ()
    max_pipeline_runs: int = 5

    def __post_init__(self) -> None:
        if self.max_pipeline_runs < 0:
            raise ConfigError(f"max_pipeline_runs = {self.max_pipeline_runs}: expected >= 0")


def search(config: CompareConfig) -> pd.DataFrame:
    """One row per finished run with evaluation metrics: ``run_id, run_name, agent, seed,
    suite_version`` and :data:`METRICS`."""
    tracking.setup(config.experiment)
    filters = ["attributes.status = 'FINISHED'"]
    if config.suite_version:
        filters.append(f"tags.suite_version = '{config.suite_version}'")
    runs = mlflow.search_runs(
        experiment_names=[config.experiment],
        filter_string=" and ".join(filters),
        output_format="pandas",
    )
    assert isinstance(runs, pd.DataFrame)
    cols = [f"metrics.eval/{m}" for m in METRICS]
    if runs.empty or cols[0] not in runs.columns:
        return pd.DataFrame(columns=["run_id", "run_name", "agent", "seed", *METRICS])
    runs = runs[runs[cols[0]].notna()]
    out = pd.DataFrame(
        {
            "run_id": runs["run_id"],
            "run_name": runs.get("tags.mlflow.runName"),
            "agent": runs.get("tags.agent"),
            "seed": runs.get("tags.seed"),
            "suite_version": runs.get("tags.suite_version"),
            **{m: runs.get(f"metrics.eval/{m}") for m in METRICS},
        }
    )
    if config.agents:
        out = out[out["agent"].isin(config.agents)]
    # A seed evaluated twice (by its training run and by `deadstock evaluate`) counts once:
    # the latest run wins (search_runs returns the newest first).
    out = out.drop_duplicates(subset=["agent", "seed", "suite_version"], keep="first")
    return out.reset_index(drop=True)


def _ci(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    if x.size < 2:
        return float("nan")
    return float(stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))


def across_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Per agent: number of runs, mean and 95 % CI across runs of each metric; best first."""
    rows: list[dict[str, Any]] = []
    for agent, grp in runs.groupby("agent", sort=False):
        row: dict[str, Any] = {"agent": agent, "n_runs": len(grp)}
        for m in METRICS:
            x = grp[m].to_numpy(float)
            row[m] = float(np.nanmean(x)) if x.size else float("nan")
            if m != "violations":
                row[f"{m}_ci"] = _ci(x)
            else:
                row[m] = float(np.nansum(x))
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    return frame.sort_values("median_pct_of_dp", ascending=False, ignore_index=True)


def format_table(board: pd.DataFrame) -> str:
    """Fixed-width text of :func:`across_runs`."""
    if board.empty:
        return "no finished runs with evaluation metrics"
    lines = [
        f"{'agent':<16}{'runs':>5}{'median %DP':>18}{'worst %DP':>18}{'mean %DP':>18}"
        f"{'violations':>11}"
    ]

    def cell(r: dict[Any, Any], m: str) -> str:
        ci = r.get(f"{m}_ci", float("nan"))
        text = f"{r[m]:.2f}" + (f" ± {ci:.2f}" if ci == ci else "")
        return f"{text:>18}"

    for r in board.to_dict(orient="records"):
        lines.append(
            f"{r['agent']:<16}{int(r['n_runs']):>5}"
            + cell(r, "median_pct_of_dp")
            + cell(r, "worst_pct_of_dp")
            + cell(r, "mean_pct_of_dp")
            + f"{int(r['violations']):>11d}"
        )
    return "\n".join(lines)


def plot(board: pd.DataFrame, path: str | Path) -> Path:
    """Bars of the median and worst % of DP per agent with CI whiskers across runs."""
    if board.empty:
        raise ConfigError("nothing to plot: no finished runs with evaluation metrics")
    fig = Figure(figsize=(7, 3.4))
    ax = fig.subplots()
    x = np.arange(len(board))
    for off, m, label in ((-0.2, "median_pct_of_dp", "median"), (0.2, "worst_pct_of_dp", "worst")):
        err = board[f"{m}_ci"].fillna(0).to_numpy()
        ax.bar(x + off, board[m], width=0.4, yerr=err, capsize=3, label=f"{label} scenario")
    ax.set_xticks(x, [f"{a} (n={n})" for a, n in zip(board["agent"], board["n_runs"], strict=True)])
    ax.axhline(100, color="k", lw=1)
    ax.set_ylim(max(0.0, float(board["worst_pct_of_dp"].min()) - 5), 101)
    ax.set_ylabel("% of DP optimum")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return write_figure_atomic(fig, path, bbox_inches="tight")


PIPELINE_COLUMNS = ("run_id", "run_name", "data_source", "mode", "plan", "recommended",
                    "profit", "profit_ci_low", "profit_ci_high",
                    "gain_vs_none", "gain_vs_none_ci_low", "gain_vs_none_ci_high")  # fmt: skip
_PLAN_VALUES = PIPELINE_COLUMNS[6:]


def search_pipelines(config: CompareConfig) -> pd.DataFrame:
    """One row per plan of each of the latest finished pipeline runs (newest first):
    :data:`PIPELINE_COLUMNS`."""
    tracking.setup(config.experiment)
    runs = mlflow.search_runs(
        experiment_names=[config.experiment],
        filter_string="attributes.status = 'FINISHED' and tags.kind = 'pipeline'",
        max_results=max(config.max_pipeline_runs, 1),
        order_by=["attributes.start_time DESC"],
        output_format="list",
    )
    rows = []
    for run in runs[: config.max_pipeline_runs]:
        metrics, tags = run.data.metrics, run.data.tags
        names = [n for n in tags.get("plan.names", "").split(",") if n]
        for plan in names:
            values = {k: metrics.get(f"plan/{plan}/{k}", float("nan")) for k in _PLAN_VALUES}
            rows.append(
                {
                    "run_id": run.info.run_id,
                    "run_name": run.info.run_name,
                    "data_source": tags.get("data_source", ""),
                    "mode": tags.get("mode", ""),
                    "plan": plan,
                    "recommended": plan == tags.get("plan.recommended"),
                    **values,
                }
            )
    return pd.DataFrame(rows, columns=list(PIPELINE_COLUMNS))


def format_pipelines(frame: pd.DataFrame) -> str:
    """Fixed-width text of :func:`search_pipelines`: one block per run, best plan first."""
    if frame.empty:
        return "no finished pipeline runs with plan metrics"

    def cell(m: float, lo: float, hi: float, sign: str = "") -> str:
        return f"{m:{sign},.0f} [{lo:{sign},.0f}, {hi:{sign},.0f}]"

    lines = ["Pipeline runs: expected total profit of each plan over the run's at-risk SKUs, and "
             "its gain vs doing nothing (paired, CI)"]  # fmt: skip
    for run_id, grp in frame.groupby("run_id", sort=False):
        first = grp.iloc[0]
        lines += ["", f"{first['run_name']} ({first['mode']}, {first['data_source']}, {run_id})"]
        lines.append(f"  {'plan':<20}{'profit':>30}{'gain vs doing nothing':>32}")
        for r in grp.sort_values("gain_vs_none", ascending=False).to_dict(orient="records"):
            mark = " *" if r["recommended"] else ""
            lines.append(
                f"  {r['plan'] + mark:<20}"
                f"{cell(r['profit'], r['profit_ci_low'], r['profit_ci_high']):>30}"
                f"{cell(r['gain_vs_none'], r['gain_vs_none_ci_low'], r['gain_vs_none_ci_high'], '+'):>32}"
            )
    lines += ["", "* the run's recommended plan"]
    return "\n".join(lines)
