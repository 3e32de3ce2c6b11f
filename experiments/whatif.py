"""Simulating weekly schedules: expected outcomes with confidence intervals, and what-ifs.

An exported schedule is a fixed plan of weekly discount and coupon depths that the price
system executes. Its expected outcomes are therefore those of the *open-loop* plan, and they
come from simulation: every week of every episode goes through :func:`simulator.market.step`
(no market arithmetic here). Several schedules simulated with the same seed share their random
numbers, so differences between them (policy minus doing nothing) have tight, paired CIs.

:func:`what_if` answers a pricing team's question for one SKU ("clear by week 8 with at most
30 % off?") and :func:`plot_what_if` draws its stock, price and sales over the weeks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from envs.config import RulesConfig
from ingest.errors import ConfigError, DataError
from ingest.io import atomic_path
from simulator.demand import Catalog
from simulator.market import initial_state, step

# Rows (SKU x episode) simulated at once; bounds memory (the season array is rows x 52).
_CHUNK_ROWS = 100_000

# Per-episode totals kept for every SKU (arrays of shape (n_skus, n_episodes)).
TOTALS = (
    "units_sold",
    "revenue",
    "coupon_cost",
    "refunds",
    "cogs",
    "holding_cost",
    "salvage",
    "writeoff",
    "profit",
    "margin_given_away",
    "leftover_units",
    "sell_through",
    "dead_stock_value",
)


@dataclass(frozen=True)
class Schedule:
    """A weekly plan for ``n_skus`` SKUs over ``horizon`` weeks.

    Parameters
    ----------
    sku : ndarray of str, shape (n_skus,)
    discount : ndarray of float, shape (n_skus, horizon)
        Discount depth per week as a share of list price.
    coupon : ndarray of float, shape (n_skus, horizon)
        Coupon depth per week as a share of list price.
    name : str
        Which policy produced it (``"ppo"``, ``"no_markdown"``, ...).
    """

    sku: np.ndarray
    discount: np.ndarray
    coupon: np.ndarray
    name: str = "schedule"

    def __post_init__(self) -> None:
        d, c = np.asarray(self.discount), np.asarray(self.coupon)
        if d.ndim != 2 or d.shape != c.shape or d.shape[0] != len(self.sku):
            raise DataError(
                f"schedule {self.name!r}: discount {d.shape} and coupon {c.shape} must both be "
                f"(n_skus={len(self.sku)}, horizon)"
            )
        if np.any(~np.isfinite(d)) or np.any(d < 0) or np.any(c < 0) or np.any(d + c >= 0.95):
            raise DataError(
                f"schedule {self.name!r}: depths must be finite, >= 0, with discount + coupon "
                f"< 0.95; got discount in [{d.min()}, {d.max()}], coupon in [{c.min()}, {c.max()}]"
            )

    @property
    def horizon(self) -> int:
        return int(np.asarray(self.discount).shape[1])

    @classmethod
    def constant(
        cls, sku: np.ndarray, horizon: int, discount: float = 0.0, name: str = ""
    ) -> Schedule:
        n = len(sku)
        return cls(
            sku=np.asarray(sku, dtype=object),
            discount=np.full((n, horizon), float(discount)),
            coupon=np.zeros((n, horizon)),
            name=name or f"fixed:{discount:g}",
        )

    def to_frame(self) -> pd.DataFrame:
        """Long format: one row per (sku, week) with ``week`` 1..horizon."""
        n, h = np.asarray(self.discount).shape
        return pd.DataFrame(
            {
                "sku": np.repeat(np.asarray(self.sku, dtype=object), h),
                "week": np.tile(np.arange(1, h + 1), n),
                "discount": np.asarray(self.discount, dtype=float).ravel(),
                "coupon": np.asarray(self.coupon, dtype=float).ravel(),
            }
        )

    @classmethod
    def from_frame(
        cls, frame: pd.DataFrame, *, name: str = "schedule", source: str = "schedule"
    ) -> Schedule:
        """Inverse of :meth:`to_frame` (``coupon`` optional); weeks must be 1..H for every SKU."""
        for col in ("sku", "week", "discount"):
            if col not in frame.columns:
                raise DataError(
                    f"{source}: column {col!r} is missing; expected sku, week, discount"
                )
        f = frame.copy()
        if "coupon" not in f.columns:
            f["coupon"] = 0.0
        f["sku"] = f["sku"].astype(str)
        try:
            f["week"] = pd.to_numeric(f["week"]).astype(int)
            f["discount"] = pd.to_numeric(f["discount"]).astype(float)
            f["coupon"] = pd.to_numeric(f["coupon"]).astype(float)
        except (ValueError, TypeError) as err:
            raise DataError(
                f"{source}: week, discount and coupon must be numbers ({err})"
            ) from None
        f = f.sort_values(["sku", "week"])
        skus = f["sku"].unique()
        h = int(f["week"].max())
        counts = f.groupby("sku")["week"].nunique()
        if (counts != h).any() or int(f["week"].min()) != 1 or len(f) != len(skus) * h:
            bad = counts[counts != h].index[:3].tolist()
            raise DataError(
                f"{source}: every SKU needs weeks 1..{h} exactly once; check SKU(s) {bad}"
            )
        return cls(
            sku=np.asarray(skus, dtype=object),
            discount=f["discount"].to_numpy().reshape(len(skus), h),
            coupon=f["coupon"].to_numpy().reshape(len(skus), h),
            name=name,
        )


@dataclass
class Outcome:
    """Simulated outcomes of one schedule.

    Attributes
    ----------
    schedule : Schedule
    totals : dict of str to ndarray of shape (n_skus, n_episodes)
        Per-episode totals over the horizon (see :data:`TOTALS`).
    weekly_mean : dict of str to ndarray of shape (n_skus, horizon)
        Mean per week of ``units``, ``revenue``, ``margin`` (revenue - coupon cost - refunds -
        cost of goods sold) and ``stock_left``.
    weekly_sd : dict of str to ndarray of shape (n_skus, horizon)
        Standard deviation across episodes per week of ``units`` and ``stock_left``.
    paths : dict of str to ndarray of shape (n_episodes, horizon) or None
        Every episode's ``units`` and ``stock_left`` (only when simulated with
        ``keep_paths=True``, for one SKU).
    ci_level : float
    """

    schedule: Schedule
    totals: dict[str, np.ndarray]
    weekly_mean: dict[str, np.ndarray]
    weekly_sd: dict[str, np.ndarray]
    paths: dict[str, np.ndarray] | None
    ci_level: float

    @property
    def n_episodes(self) -> int:
        return int(self.totals["profit"].shape[1])

    def sku_mean(self, name: str) -> np.ndarray:
        return self.totals[name].mean(axis=1)

    def sku_ci(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Per-SKU CI of the mean of ``name``."""
        return mean_ci(self.totals[name], self.ci_level, axis=1)

    def portfolio(self, name: str) -> tuple[float, float, float]:
        """Mean and CI of the total of ``name`` over all SKUs (one sample per episode)."""
        per_episode = self.totals[name].sum(axis=0)
        lo, hi = mean_ci(per_episode, self.ci_level)
        return float(per_episode.mean()), float(lo), float(hi)


def mean_ci(x: np.ndarray, level: float, axis: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Normal-approximation CI of the mean along ``axis`` (sample sd / sqrt(n))."""
    x = np.asarray(x, dtype=float)
    n = x.shape[axis] if axis is not None else x.size
    m = x.mean(axis=axis)
    sd = x.std(axis=axis, ddof=1) if n > 1 else np.zeros_like(m)
    half = stats.norm.ppf(0.5 + level / 2) * sd / np.sqrt(n)
    return m - half, m + half


def paired_ci(
    a: Outcome, b: Outcome, name: str, *, portfolio: bool = True
) -> tuple[float, float, float]:
    """Mean and CI of ``a - b`` for total ``name``, paired by episode (common random numbers)."""
    diff = a.totals[name] - b.totals[name]
    x = diff.sum(axis=0) if portfolio else diff
    lo, hi = mean_ci(x, a.ci_level)
    return float(x.mean()), float(lo), float(hi)


def simulate_schedule(
    catalog: Catalog,
    schedule: Schedule,
    *,
    n_episodes: int,
    seed: int,
    ci_level: float = 0.95,
    draw_parameters: bool = False,
    keep_paths: bool = False,
) -> Outcome:
    """Simulate ``schedule`` on ``catalog`` for ``n_episodes`` episodes through the market step.

    The exit week is the schedule's last week: leftover stock is then salvaged and written off.

    Parameters
    ----------
    catalog : Catalog
        The SKUs, in the schedule's order (``catalog.sku`` must equal ``schedule.sku``).
    schedule : Schedule
    n_episodes : int
        Episodes per SKU.
    seed : int
        Seed of the demand draws. The same seed gives the same numbers, and two schedules
        simulated with one seed share their random numbers chunk by chunk.
    ci_level : float
        Level of the CIs the outcome reports.
    draw_parameters : bool
        Draw every episode's parameters from the catalog's fitted uncertainty.
    keep_paths : bool
        Keep every episode's weekly path (for one SKU's what-if plot).

    Returns
    -------
    Outcome
    """
    n = catalog.n_skus
    if n != len(schedule.sku) or not np.array_equal(
        np.asarray(catalog.sku, dtype=str), np.asarray(schedule.sku, dtype=str)
    ):
        raise DataError(
            f"schedule {schedule.name!r} covers {len(schedule.sku)} SKUs that do not match the "
            f"catalog's {n} SKUs in order"
        )
    if n_episodes < 1:
        raise ConfigError(f"n_episodes = {n_episodes}: expected >= 1")
    h = schedule.horizon
    disc = np.asarray(schedule.discount, dtype=float)
    coup = np.asarray(schedule.coupon, dtype=float)
    totals = {k: np.zeros((n, n_episodes)) for k in TOTALS}
    weekly = {k: np.zeros((n, h)) for k in ("units", "revenue", "margin", "stock_left")}
    weekly_sq = {k: np.zeros((n, h)) for k in ("units", "stock_left")}
    paths = {k: np.zeros((n_episodes, h)) for k in ("units", "stock_left")} if keep_paths else None
    if keep_paths and n != 1:
        raise ConfigError("keep_paths is for one SKU; simulate one SKU at a time")

    sku_chunk = min(n, _CHUNK_ROWS) or 1
    for s0 in range(0, n, sku_chunk):
        s1 = min(n, s0 + sku_chunk)
        m = s1 - s0
        ep_chunk = max(1, min(n_episodes, _CHUNK_ROWS // m))
        base: Catalog | None = None
        for e0 in range(0, n_episodes, ep_chunk):
            e1 = min(n_episodes, e0 + ep_chunk)
            k = e1 - e0
            if base is None or base.n_skus != m * k:
                base = catalog.take(np.tile(np.arange(s0, s1), k))
            # One generator per (chunk, week): two schedules simulated with one seed share
            # their parameter draws and each week's draws, even where Poisson sampling
            # consumes a different amount of randomness for different means.
            chunk_key = [seed, s0, e0]
            cat = base.sample(np.random.default_rng(chunk_key + [0])) if draw_parameters else base
            state = initial_state(cat)
            stock0 = state.stock.copy()
            d_rows = np.tile(disc[s0:s1], (k, 1))
            c_rows = np.tile(coup[s0:s1], (k, 1))
            acc = {name: np.zeros(m * k) for name in TOTALS}
            for t in range(h):
                rng = np.random.default_rng(chunk_key + [1, t])
                state, r = step(cat, state, d_rows[:, t], c_rows[:, t], rng, exit_now=t == h - 1)
                acc["units_sold"] += r.units_sold
                acc["revenue"] += r.revenue
                acc["coupon_cost"] += r.coupon_cost
                acc["refunds"] += r.refunds
                acc["cogs"] += r.cogs
                acc["holding_cost"] += r.holding_cost
                acc["salvage"] += r.salvage
                acc["writeoff"] += r.writeoff
                acc["profit"] += r.profit
                acc["margin_given_away"] += (
                    r.units_sold * cat.list_price * (d_rows[:, t] + c_rows[:, t])
                )
                margin = r.revenue - r.coupon_cost - r.refunds - r.cogs
                for key, val in (
                    ("units", r.units_sold),
                    ("revenue", r.revenue),
                    ("margin", margin),
                    ("stock_left", r.stock_after),
                ):
                    weekly[key][s0:s1, t] += val.reshape(k, m).sum(axis=0)
                    if key in weekly_sq:
                        weekly_sq[key][s0:s1, t] += (val**2).reshape(k, m).sum(axis=0)
                if paths is not None:
                    paths["units"][e0:e1, t] = r.units_sold
                    paths["stock_left"][e0:e1, t] = r.stock_after
            acc["leftover_units"] = state.stock
            acc["sell_through"] = np.divide(
                acc["units_sold"], stock0, out=np.zeros_like(stock0), where=stock0 > 0
            )
            acc["dead_stock_value"] = state.stock * cat.unit_cost
            for name in TOTALS:
                totals[name][s0:s1, e0:e1] = acc[name].reshape(k, m).T
    for key in weekly:
        weekly[key] /= n_episodes
    weekly_sd = {
        key: np.sqrt(np.maximum(weekly_sq[key] / n_episodes - weekly[key] ** 2, 0.0))
        for key in weekly_sq
    }
    return Outcome(schedule, totals, weekly, weekly_sd, paths, ci_level)


# ---------------------------------------------------------------------------- what-if
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
