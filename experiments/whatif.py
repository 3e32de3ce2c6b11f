"""What-ifs for one SKU: a pricing team's question ("clear by week 8 with at most 30 % off?").

:func:`what_if` simulates one SKU's schedule, capped by the question, against doing nothing
(through :mod:`experiments.plan_outcomes`, so every week goes through
:func:`simulator.market.step`); :func:`plot_what_if` draws its stock, price and sales over the
weeks; :func:`what_if_command` is what ``deadstock simulate --sku ...`` runs.

The plan simulation itself (:class:`Schedule`, :class:`Outcome`, :func:`simulate_schedule`,
:func:`mean_ci`, :func:`paired_ci`) lives in :mod:`experiments.plan_outcomes` and is
re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from envs.config import RulesConfig
from experiments.plan_outcomes import (  # noqa: F401 - re-exported
    TOTALS,
    Outcome,
    Schedule,
    mean_ci,
    paired_ci,
    simulate_schedule,
)
from ingest.errors import ConfigError, DataError
from ingest.io import atomic_path
from simulator.demand import Catalog


@dataclass(frozen=True)
class WhatIfConfig:
    """A what-if question for one SKU.

    Parameters
    ----------
    sku : str
        The SKU to simulate.
    max_discount : float or None
        Cap every week's discount at this depth (coupons are capped so discount + coupon
        stays under the cap too).
    exit_week : int or None
        Stop the plan after this many weeks (the exit week, when leftovers are written off).
    n_episodes : int
        Simulated episodes.
    seed : int
        Seed of the demand draws.
    ci_level : float
        Level of the CIs.
    draw_parameters : bool
        Draw every episode's parameters from the fitted uncertainty.
    """

    sku: str
    max_discount: float | None = None
    exit_week: int | None = None
    n_episodes: int = 2000
    seed: int = 0
    ci_level: float = 0.95
    draw_parameters: bool = True

    def __post_init__(self) -> None:
        if self.max_discount is not None and not 0.0 <= self.max_discount < 0.95:
            raise ConfigError(f"--max-discount {self.max_discount}: expected [0, 0.95)")
        if self.exit_week is not None and self.exit_week < 1:
            raise ConfigError(f"--exit-week {self.exit_week}: expected >= 1")
        if self.n_episodes < 2:
            raise ConfigError(f"n_episodes = {self.n_episodes}: expected >= 2")


def constrain_schedule(
    schedule: Schedule, cfg: WhatIfConfig, rules: RulesConfig | None = None
) -> Schedule:
    """Apply a what-if's caps to a schedule: the exit week cuts it short; the max discount
    (from ``cfg`` or ``rules.max_discount``, the tighter) caps every week's depths, snapped
    down to the rules' discount ladder when rules are given."""
    d = np.asarray(schedule.discount, dtype=float).copy()
    c = np.asarray(schedule.coupon, dtype=float).copy()
    if cfg.exit_week is not None:
        if cfg.exit_week > d.shape[1]:
            raise ConfigError(
                f"--exit-week {cfg.exit_week} is past the schedule's {d.shape[1]} weeks; "
                f"give a week in 1..{d.shape[1]} or a longer --schedule"
            )
        d, c = d[:, : cfg.exit_week], c[:, : cfg.exit_week]
    caps = [x for x in (cfg.max_discount, rules.max_discount if rules else None) if x is not None]
    if caps:
        cap = min(caps)
        d = np.minimum(d, cap)
        c = np.minimum(c, np.maximum(cap - d, 0.0))
    if rules is not None:
        ladder = np.asarray(rules.discount_levels)
        d = ladder[np.searchsorted(ladder, d + 1e-9, side="right") - 1]
        cl = np.asarray(rules.coupon_levels)
        c = cl[np.searchsorted(cl, c + 1e-9, side="right") - 1]
    return Schedule(sku=schedule.sku, discount=d, coupon=c, name=schedule.name)


def what_if(
    catalog: Catalog,
    schedule: Schedule,
    cfg: WhatIfConfig,
    *,
    rules: RulesConfig | None = None,
    baseline: bool = True,
) -> tuple[Outcome, Outcome | None, pd.DataFrame]:
    """Simulate one SKU's schedule under the what-if's caps, and doing nothing beside it.

    Returns the schedule's outcome, the no-markdown outcome (``None`` when ``baseline`` is
    false) and a summary table (metric, mean, CI low, CI high, and the paired difference
    against doing nothing).
    """
    idx = np.flatnonzero(np.asarray(catalog.sku, dtype=str) == str(cfg.sku))
    if idx.size == 0:
        raise DataError(
            f"SKU {cfg.sku!r} is not in the catalog ({catalog.n_skus} SKUs, e.g. "
            f"{[str(s) for s in catalog.sku[:3]]})"
        )
    srow = np.flatnonzero(np.asarray(schedule.sku, dtype=str) == str(cfg.sku))
    if srow.size == 0:
        raise DataError(f"SKU {cfg.sku!r} has no schedule")
    one = catalog.take(idx[:1])
    sched = constrain_schedule(
        Schedule(
            sku=one.sku,
            discount=np.asarray(schedule.discount)[srow[:1]],
            coupon=np.asarray(schedule.coupon)[srow[:1]],
            name=schedule.name,
        ),
        cfg,
        rules,
    )
    kw = dict(
        n_episodes=cfg.n_episodes,
        seed=cfg.seed,
        ci_level=cfg.ci_level,
        draw_parameters=cfg.draw_parameters,
        keep_paths=True,
    )
    out = simulate_schedule(one, sched, **kw)  # type: ignore[arg-type]
    base = None
    if baseline:
        base = simulate_schedule(
            one,
            Schedule.constant(one.sku, sched.horizon, 0.0, "no_markdown"),
            **kw,  # type: ignore[arg-type]
        )
    rows = []
    for name in (
        "profit",
        "units_sold",
        "sell_through",
        "leftover_units",
        "revenue",
        "margin_given_away",
        "holding_cost",
        "dead_stock_value",
    ):
        lo, hi = out.sku_ci(name)
        row = {
            "metric": name,
            "mean": float(out.sku_mean(name)[0]),
            "ci_low": float(lo[0]),
            "ci_high": float(hi[0]),
        }
        if base is not None:
            dm, dlo, dhi = paired_ci(out, base, name)
            row.update({"vs_no_markdown": dm, "vs_ci_low": dlo, "vs_ci_high": dhi})
        rows.append(row)
    return out, base, pd.DataFrame(rows)


def plot_what_if(
    catalog: Catalog, outcome: Outcome, target: str | Path, *, title: str = ""
) -> Path:
    """Save a PNG of one SKU's stock, price and sales over the weeks (mean and 90 % band)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if outcome.paths is None:
        raise ConfigError("plot_what_if needs an outcome simulated with keep_paths=True")
    sku = str(outcome.schedule.sku[0])
    i = int(np.flatnonzero(np.asarray(catalog.sku, dtype=str) == sku)[0])
    h = outcome.schedule.horizon
    weeks = np.arange(1, h + 1)
    price = catalog.list_price[i] * (1 - np.asarray(outcome.schedule.discount)[0])
    net = price - catalog.list_price[i] * np.asarray(outcome.schedule.coupon)[0]
    fig, axes = plt.subplots(3, 1, figsize=(7, 7), sharex=True)
    stock = outcome.paths["stock_left"]
    units = outcome.paths["units"]
    for ax, data, label in ((axes[0], stock, "stock left (units)"), (axes[2], units, "units sold")):
        ax.plot(weeks, data.mean(axis=0), marker="o", label="mean")
        lo, hi = np.percentile(data, [5, 95], axis=0)
        ax.fill_between(weeks, lo, hi, alpha=0.25, label="5-95 % of episodes")
        ax.set_ylabel(label)
        ax.legend(loc="best", fontsize=8)
    axes[1].step(weeks, price, where="mid", label="shelf price after discount")
    axes[1].step(weeks, net, where="mid", linestyle="--", label="net of coupon")
    axes[1].axhline(catalog.unit_cost[i], color="grey", linewidth=0.8, label="unit cost")
    axes[1].set_ylabel("price")
    axes[1].legend(loc="best", fontsize=8)
    axes[2].set_xlabel("plan week (exit at the last week)")
    p_lo, p_hi = outcome.sku_ci("profit")
    fig.suptitle(
        title
        or f"SKU {sku}: {outcome.schedule.name}, expected profit {outcome.sku_mean('profit')[0]:.2f} "
        f"[{p_lo[0]:.2f}, {p_hi[0]:.2f}] ({outcome.n_episodes} episodes)",
        fontsize=10,
    )
    fig.tight_layout()
    target = Path(target)
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return target


# ---------------------------------------------------------------------------- files (CLI)
def read_schedule(path: str | Path) -> Schedule:
    """Read a schedule file (CSV or Parquet with ``sku, week, discount[, coupon]``, e.g. the
    pipeline's ``schedules`` export; rows of other columns are ignored)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"schedule file {str(p)!r} not found")
    try:
        frame = (
            pd.read_parquet(p)
            if p.suffix.lower() == ".parquet"
            else pd.read_csv(p, dtype={"sku": str})
        )
    except Exception as err:  # noqa: BLE001 - any reader failure is the file's fault
        raise DataError(f"schedule file {str(p)!r} could not be read: {err}") from None
    if "plan_key" in frame.columns and frame["plan_key"].nunique() > 1:
        raise DataError(
            f"schedule file {str(p)!r} holds {frame['plan_key'].nunique()} plans; keep one plan_key"
        )
    return Schedule.from_frame(frame, name=p.stem, source=f"schedule file {str(p)!r}")


def read_rules(path: str | Path) -> RulesConfig:
    """Read business rules from a TOML file: :class:`~envs.config.RulesConfig` fields at the
    top level or under ``[rules]`` (so a pipeline config file works too)."""
    import tomllib

    from experiments.pipeline_config import _build

    p = Path(path)
    try:
        values = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"rules file {str(p)!r} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"rules file {str(p)!r} is not valid TOML: {err}") from None
    if isinstance(values.get("rules"), dict):
        values = values["rules"]
    return _build(RulesConfig, values, f"rules file {str(p)!r}")


def what_if_from_files(
    catalog: Catalog,
    cfg: WhatIfConfig,
    *,
    schedule_path: str | Path | None,
    rules_path: str | Path | None,
    fallback: Schedule,
    plot_path: str | Path | None,
) -> tuple[pd.DataFrame, Path | None, str]:
    """The what-if behind ``deadstock simulate --sku ...``: the given schedule file (or
    ``fallback``), capped by the options and rules, simulated against doing nothing.

    Returns the summary table, the plot's path (when asked) and a printable report.
    """
    schedule = read_schedule(schedule_path) if schedule_path else fallback
    rules = read_rules(rules_path) if rules_path else None
    out, _, table = what_if(catalog, schedule, cfg, rules=rules)
    plot = plot_what_if(catalog, out, plot_path) if plot_path else None
    d = np.asarray(out.schedule.discount)[0]
    c = np.asarray(out.schedule.coupon)[0]
    plan = ", ".join(
        f"{dd:.0%}" + (f"+{cc:.0%}c" if cc > 0 else "") for dd, cc in zip(d, c, strict=True)
    )
    lines = [
        f"what-if for SKU {cfg.sku}: {out.schedule.name} over {out.schedule.horizon} weeks "
        f"(exit at week {out.schedule.horizon})"
        + (f", max discount {cfg.max_discount:.0%}" if cfg.max_discount is not None else "")
        + (f", rules from {rules_path}" if rules_path else ""),
        f"weekly discount: {plan}",
        f"{out.n_episodes} simulated episodes; {cfg.ci_level:.0%} CIs; differences are paired "
        "against doing nothing (no discount, no coupon)",
        "",
        f"{'metric':<20}{'expected':>12}  {'CI':<24}{'vs doing nothing':>18}  CI",
    ]
    for r in table.to_dict("records"):
        lines.append(
            f"{r['metric']:<20}{r['mean']:>12,.2f}  [{r['ci_low']:,.2f}, {r['ci_high']:,.2f}]".ljust(
                58
            )
            + f"{r['vs_no_markdown']:>+14,.2f}  [{r['vs_ci_low']:+,.2f}, {r['vs_ci_high']:+,.2f}]"
        )
    if plot is not None:
        lines += ["", f"plot of stock, price and sales: {plot}"]
    return table, plot, "\n".join(lines)


def what_if_command(
    catalog_path: str | Path,
    cfg: WhatIfConfig,
    *,
    schedule_path: str | Path | None = None,
    rules_path: str | Path | None = None,
    plot_path: str | Path | None = None,
    policy: str = "fixed:0.3",
    weeks: int = 12,
) -> str:
    """``deadstock simulate --sku SKU [--max-discount D] [--exit-week W] [--rules FILE]
    [--schedule FILE]``: returns the printable report and saves the plot.

    The schedule is, in order: ``schedule_path``; else the recommended schedule exported by
    ``deadstock run`` beside the catalog (``schedules.csv`` or ``.parquet`` next to
    ``catalog.parquet`` in the run's output folder); else ``policy`` (``fixed:D[:C]``) over
    ``weeks`` weeks. The plot goes to ``plot_path`` (default ``whatif_<sku>.png``).
    """
    from experiments.demand_runs import parse_policy, read_catalog

    catalog = read_catalog(catalog_path)
    if schedule_path is None:
        folder = Path(catalog_path).parent
        found = [folder / f"schedules.{ext}" for ext in ("csv", "parquet")]
        schedule_path = next((p for p in found if p.is_file()), None)
    d, c = parse_policy(policy)
    fallback = Schedule(
        sku=np.asarray(catalog.sku, dtype=object),
        discount=np.full((catalog.n_skus, weeks), d),
        coupon=np.full((catalog.n_skus, weeks), c),
        name=policy,
    )
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in cfg.sku)
    _, _, text = what_if_from_files(
        catalog,
        cfg,
        schedule_path=schedule_path,
        rules_path=rules_path,
        fallback=fallback,
        plot_path=plot_path or f"whatif_{safe}.png",
    )
    source = f"schedule: {schedule_path}" if schedule_path else f"schedule: {policy} (fixed)"
    return f"{source}\n{text}"
