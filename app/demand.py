"""Runners for the demand model: fit a catalog from a data source (tracked in MLflow) and
simulate a fixed policy on a catalog with confidence intervals.

``deadstock demand fit`` and ``deadstock simulate`` are thin shells over
:func:`run_demand_fit` and :func:`run_simulation`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from experiments import tracking
from ingest.errors import ConfigError, DataError
from ingest.io import write_figure_atomic, write_frame_atomic
from planning.outcomes import (
    DEFAULT_DRAW_PARAMETERS,
    DEFAULT_N_EPISODES,
    SimulationSettings,
    mean_ci,
    simulate_schedule,
    simulation_seed,
)
from planning.schedule import Schedule, parse_policy
from simulator.demand import read_catalog
from simulator.fit import FitConfig, FitResult, fit_catalog
from simulator.forecast import predict_units

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemandFitConfig:
    """``deadstock demand fit``: where the data comes from, where the catalog goes.

    Parameters
    ----------
    data : str
        ``"completejourney"``, a folder of table files, or a SQLAlchemy URL.
    out : str
        Catalog file (``.parquet`` or ``.csv``), one row per SKU (``Catalog.to_frame``).
    fit : FitConfig
        How the model is fitted, and the stock assumption (``fit.stock``, the same default
        as ``deadstock run``'s).
    max_skus : int or None
        Keep only the best-selling ``max_skus`` SKUs (for quick runs); ``None`` keeps all.
    track : bool
        Log the run to MLflow.
    plots_dir : str or None
        Folder for the plots (default: beside ``out``).
    """

    data: str = "completejourney"
    out: str = "catalog.parquet"
    fit: FitConfig = field(default_factory=FitConfig)
    max_skus: int | None = None
    track: bool = True
    plots_dir: str | None = None

    def __post_init__(self) -> None:
        if Path(self.out).suffix.lower() not in (".parquet", ".csv"):
            raise ConfigError(f"out = {self.out!r}: expected a .parquet or .csv file")
        if self.max_skus is not None and self.max_skus < 1:
            raise ConfigError(f"max_skus = {self.max_skus}: expected >= 1")


@dataclass
class DemandFitOutcome:
    """What :func:`run_demand_fit` produced."""

    result: FitResult
    out: Path
    plots: list[Path]
    run_id: str | None


def top_skus(panel: pd.DataFrame, n: int) -> pd.DataFrame:
    """The panel rows of the ``n`` SKUs with the most units."""
    units = panel.groupby("sku", sort=False)["units"].sum()
    keep = units.sort_values(ascending=False, kind="stable").index[:n]
    return panel[panel["sku"].isin(keep)].reset_index(drop=True)


def plot_elasticities(result: FitResult, path: Path, max_groups: int = 20) -> Path:
    """Box plot of the fitted elasticities by department (the largest ``max_groups``)."""
    est = result.estimates
    group = "department" if est["department"].nunique() > 1 else "category"
    order = est[group].value_counts().index[:max_groups]
    data = [est.loc[est[group] == g, "elasticity"].to_numpy() for g in order]
    fig = Figure(figsize=(8, 0.35 * len(order) + 1.5))
    ax = fig.subplots()
    ax.boxplot(data, orientation="horizontal", showfliers=False)
    ax.set_yticks(
        range(1, len(order) + 1), [f"{g} ({len(d)})" for g, d in zip(order, data, strict=True)]
    )
    ax.axvline(float(np.median(est["elasticity"])), color="grey", ls="--", lw=1)
    ax.set_xlabel("elasticity (log-log in 1 - discount), shrunk")
    ax.set_title(f"Fitted elasticities by {group} (n SKUs)")
    fig.tight_layout()
    return write_figure_atomic(fig, path)


def plot_predicted_vs_actual(
    result: FitResult, panel: pd.DataFrame, path: Path, max_points: int = 20000
) -> Path:
    """Predicted against actual weekly units (log scales), and per-SKU totals."""
    pred = predict_units(result.catalog, panel)
    ok = np.isfinite(pred)
    y, p = panel["units"].to_numpy(dtype=float)[ok], pred[ok]
    sku = panel["sku"].astype(str).to_numpy()[ok]
    fig = Figure(figsize=(10, 4.5))
    axes = fig.subplots(1, 2)
    rng = np.random.default_rng(0)  # only picks which points to draw
    idx = rng.choice(len(y), size=min(max_points, len(y)), replace=False)
    axes[0].scatter(p[idx] + 0.1, y[idx] + 0.1, s=2, alpha=0.2)
    axes[0].set(xscale="log", yscale="log", xlabel="predicted units + 0.1", ylabel="actual + 0.1")
    axes[0].set_title("SKU-weeks")
    tot = pd.DataFrame({"sku": sku, "y": y, "p": p}).groupby("sku")[["y", "p"]].sum()
    axes[1].scatter(tot["p"] + 0.1, tot["y"] + 0.1, s=4, alpha=0.4)
    lim = [0.1, float(max(tot["y"].max(), tot["p"].max())) + 1]
    for ax in axes:
        ax.plot(lim, lim, color="grey", lw=1)
    axes[1].set(xscale="log", yscale="log", xlabel="predicted total", ylabel="actual total")
    axes[1].set_title("per SKU, whole panel")
    fig.tight_layout()
    return write_figure_atomic(fig, path)


def run_demand_fit(config: DemandFitConfig) -> DemandFitOutcome:
    """Load the source, build the panel, fit the catalog, write it, log the run.

    Returns
    -------
    DemandFitOutcome
    """
    from app.data import DataStageConfig, run_data_stage

    data = run_data_stage(DataStageConfig(source=config.data, out_dir=None))
    panel = data.panel
    if config.max_skus is not None:
        panel = top_skus(panel, config.max_skus)
    log.info("fitting %s SKUs over %s SKU-weeks", f"{panel['sku'].nunique():,}", f"{len(panel):,}")
    result = fit_catalog(panel, config.fit, products=data.dataset.products)
    out = write_frame_atomic(result.catalog.to_frame(), config.out)
    log.info("wrote %s SKUs to %s", f"{result.catalog.n_skus:,}", out)
    plots_dir = Path(config.plots_dir) if config.plots_dir else out.parent / f"{out.stem}_plots"
    plots = [
        plot_elasticities(result, plots_dir / "elasticities_by_group.png"),
        plot_predicted_vs_actual(result, panel, plots_dir / "predicted_vs_actual.png"),
    ]
    run_id = None
    if config.track:
        name = tracking.run_name("demand-fit", Path(str(config.data)).name or "source")
        with tracking.start_run(
            name,
            tags={"stage": "demand_fit", "source": data.dataset.source},
            config=config,
            data_fingerprint=data.dataset.fingerprint,
        ) as run:
            import mlflow

            tracking.log_metrics(result.diagnostics)
            for p in plots:
                mlflow.log_artifact(str(p), artifact_path="plots")
            mlflow.log_artifact(str(out), artifact_path="catalog")
            mlflow.log_text(result.categories.to_csv(index=False), "fit/categories.csv")
            mlflow.log_text("\n".join(result.notes) + "\n", "fit/notes.txt")
            run_id = run.info.run_id
    return DemandFitOutcome(result, out, plots, run_id)


# ---------------------------------------------------------------------------- simulate
@dataclass(frozen=True)
class SimulateConfig:
    """``deadstock simulate``: play a fixed policy on a catalog.

    Parameters
    ----------
    catalog : str
        Catalog file written by ``deadstock demand fit`` (``.parquet`` or ``.csv``).
    policy : str
        ``fixed:D`` (discount depth ``D`` every week, e.g. ``fixed:0.3``), optionally
        ``fixed:D:C`` with a coupon depth ``C``.
    horizon_weeks : int
        Horizon; the last week is the exit week (leftover stock salvaged and written off).
    n_episodes : int
        Simulated episodes per SKU (the run's default).
    seed : int
        The seed a run would have: the draws use :func:`planning.outcomes.simulation_seed`
        of it, as the run and the what-if do, so a SKU gets the same numbers here.
    draw_parameters : bool
        Draw every episode's parameters from the catalog's fitted uncertainty
        (``Catalog.sample``) instead of using the point estimates (the run's default).
    skus : tuple of str
        Simulate only these SKUs (empty = all).
    ci_level : float
        Level of the confidence intervals.
    """

    catalog: str
    policy: str = "fixed:0.3"
    horizon_weeks: int = 12
    n_episodes: int = DEFAULT_N_EPISODES
    seed: int = 0
    draw_parameters: bool = DEFAULT_DRAW_PARAMETERS
    skus: tuple[str, ...] = ()
    ci_level: float = 0.95

    def __post_init__(self) -> None:
        if self.horizon_weeks < 1:
            raise ConfigError(f"horizon_weeks = {self.horizon_weeks}: expected >= 1")
        if self.n_episodes < 2:
            raise ConfigError(
                f"n_episodes = {self.n_episodes}: expected >= 2 (a CI needs two episodes)"
            )
        if not 0.5 <= self.ci_level < 1:
            raise ConfigError(f"ci_level = {self.ci_level}: expected in [0.5, 1)")
        parse_policy(self.policy)


@dataclass
class SimulationSummary:
    """Outcome of :func:`run_simulation`: per-SKU and portfolio means with CIs."""

    per_sku: pd.DataFrame
    portfolio: dict[str, tuple[float, float, float]]
    config: SimulateConfig

    def to_text(self) -> str:
        c = self.config
        settings = SimulationSettings(c.seed, c.n_episodes, c.draw_parameters, c.ci_level)
        head = (
            f"policy {c.policy}, {c.horizon_weeks} weeks; {len(self.per_sku)} SKU(s); "
            f"{settings.describe()}"
        )
        lines = [head]
        for key, label in (
            ("sell_through", "sell-through (share of stock)"),
            ("profit", "profit"),
            ("leftover_units", "leftover units"),
            ("units_sold", "units sold"),
        ):
            m, lo, hi = self.portfolio[key]
            lines.append(f"  {label:<30} {m:>14,.3f}   [{lo:,.3f}, {hi:,.3f}]")
        return "\n".join(lines)


def run_simulation(config: SimulateConfig) -> SimulationSummary:
    """Simulate ``config.policy`` on the catalog through :func:`simulator.market.step`."""
    catalog = read_catalog(config.catalog)
    if config.skus:
        index = pd.Series(np.arange(catalog.n_skus), index=pd.Index(catalog.sku.astype(str)))
        missing = [s for s in config.skus if s not in index.index]
        if missing:
            raise DataError(
                f"--sku {missing[:5]} not in catalog {config.catalog!r} "
                f"({catalog.n_skus} SKUs, e.g. {list(index.index[:3])})"
            )
        catalog = catalog.take(index.loc[list(config.skus)].to_numpy())
    d, c = parse_policy(config.policy)
    n = catalog.n_skus
    schedule = Schedule(
        sku=np.asarray(catalog.sku, dtype=object),
        discount=np.full((n, config.horizon_weeks), d),
        coupon=np.full((n, config.horizon_weeks), c),
        name=config.policy,
    )
    outcome = simulate_schedule(
        catalog,
        schedule,
        n_episodes=config.n_episodes,
        seed=simulation_seed(config.seed),
        ci_level=config.ci_level,
        draw_parameters=config.draw_parameters,
    )
    per_sku = pd.DataFrame({"sku": catalog.sku.astype(str)})
    for key in ("sell_through", "profit", "leftover_units", "units_sold"):
        lo, hi = outcome.sku_ci(key)
        per_sku[key] = outcome.sku_mean(key)
        per_sku[f"{key}_ci_low"] = lo
        per_sku[f"{key}_ci_high"] = hi
    portfolio = {key: outcome.portfolio(key) for key in ("profit", "leftover_units", "units_sold")}
    # portfolio sell-through: total sold over total stock, per episode
    stock = float(np.sum(catalog.initial_stock))
    per_episode = outcome.totals["units_sold"].sum(axis=0) / max(stock, 1e-12)
    lo, hi = mean_ci(per_episode, config.ci_level)
    portfolio["sell_through"] = (float(per_episode.mean()), float(lo), float(hi))
    return SimulationSummary(per_sku, portfolio, config)
