"""What-ifs for one SKU: a pricing team's question ("clear by week 8 with at most 30 % off?").

:func:`what_if` simulates one SKU's schedule, capped by the question
(:func:`constrain_schedule`), against doing nothing, through :mod:`planning.outcomes`, so
every week goes through :func:`simulator.market.step`. The command that reads the files and
draws the plot is :mod:`app.whatif`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from envs.config import RulesConfig
from ingest.errors import ConfigError, DataError
from ingest.panel import MAX_DISCOUNT_DEPTH
from planning.outcomes import (
    Outcome,
    SimulationSettings,
    paired_ci,
    simulate_schedule,
)
from planning.schedule import Schedule
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
    n_episodes : int or None
        Simulated episodes; ``None`` = the run's (or :data:`planning.outcomes.DEFAULT_N_EPISODES`).
    seed : int or None
        The run's seed, from which the simulation seed is derived as in the run
        (:func:`planning.outcomes.simulation_seed`); ``None`` = the run's (or 0).
    ci_level : float or None
        Level of the CIs; ``None`` = the run's (or 95 %).
    draw_parameters : bool or None
        Draw every episode's parameters from the fitted uncertainty; ``None`` = the run's
        setting (or :data:`planning.outcomes.DEFAULT_DRAW_PARAMETERS`, yes).

    With every option left at ``None`` and the run's settings given to :meth:`settings`, a
    what-if of a SKU under the run's plan gives exactly that SKU's numbers in the run's
    ``sku_summary``.
    """

    sku: str
    max_discount: float | None = None
    exit_week: int | None = None
    n_episodes: int | None = None
    seed: int | None = None
    ci_level: float | None = None
    draw_parameters: bool | None = None

    def __post_init__(self) -> None:
        if self.max_discount is not None and not 0.0 <= self.max_discount < MAX_DISCOUNT_DEPTH:
            raise ConfigError(
                f"--max-discount {self.max_discount}: expected [0, {MAX_DISCOUNT_DEPTH})"
            )
        if self.exit_week is not None and self.exit_week < 1:
            raise ConfigError(f"--exit-week {self.exit_week}: expected >= 1")
        if self.n_episodes is not None and self.n_episodes < 2:
            raise ConfigError(f"n_episodes = {self.n_episodes}: expected >= 2")
        if self.seed is not None and self.seed < 0:
            raise ConfigError(f"seed = {self.seed}: expected >= 0")

    def settings(self, run: SimulationSettings | None = None) -> SimulationSettings:
        """The simulation settings: this question's options where given, else ``run``'s (the
        settings of the run whose plan is replayed), else the defaults."""
        base = run or SimulationSettings()
        return SimulationSettings(
            seed=base.seed if self.seed is None else self.seed,
            n_episodes=base.n_episodes if self.n_episodes is None else self.n_episodes,
            draw_parameters=(
                base.draw_parameters if self.draw_parameters is None else self.draw_parameters
            ),
            ci_level=base.ci_level if self.ci_level is None else self.ci_level,
        )


WHAT_IF_METRICS = (
    "profit",
    "units_sold",
    "sell_through",
    "leftover_units",
    "revenue",
    "margin_given_away",
    "holding_cost",
    "dead_stock_value",
)
"""The rows of the what-if's summary table."""


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
    run: SimulationSettings | None = None,
) -> tuple[Outcome, Outcome | None, pd.DataFrame]:
    """Simulate one SKU's schedule under the what-if's caps, and doing nothing beside it.

    The settings are ``cfg.settings(run)``; the SKU's random numbers are its own (keyed by its
    id, :mod:`planning.outcomes`), so the numbers equal the SKU's in a run with those settings.

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
    settings = cfg.settings(run)
    kw = dict(
        n_episodes=settings.n_episodes,
        seed=settings.simulation_seed,
        ci_level=settings.ci_level,
        draw_parameters=settings.draw_parameters,
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
    for name in WHAT_IF_METRICS:
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
