"""Simulating fixed weekly plans: expected outcomes with confidence intervals, paired per SKU.

An exported schedule is a fixed plan of weekly discount and coupon depths that the price
system executes. Its expected outcomes are those of the *open-loop* plan, and they come from
simulation: every week of every episode goes through :func:`simulator.market.step` (no market
arithmetic here).

Common random numbers, per SKU
------------------------------
Every random number a SKU sees is fixed by ``(seed, SKU, episode, week, draw)`` and by
nothing else (:mod:`planning.random_keys`):

- demand is drawn by inverse CDF (:class:`envs.crn.QuantileSampler`, the batched env's
  evaluation mode) from uniforms keyed by ``(seed, SKU, episode, week)``, so a plan that
  prices higher in a week sees the same demand *quantile* as one that prices lower (the
  negative-binomial mixing draw, which no plan changes, by an exact keyed rejection method:
  :class:`planning.random_keys.KeyedSampler`);
- with ``draw_parameters`` the episode's parameters (:meth:`simulator.demand.Catalog.sample`)
  come from normals keyed by ``(seed, SKU, episode)``.

A SKU is keyed by a stable hash of its id, not by its position. So a SKU's numbers depend
neither on its neighbours, nor on how the catalog is chunked or ordered or filtered, nor on
the plans of the other SKUs: two identical plans for a SKU give a difference of exactly zero,
whatever the rest of the catalog does; the what-if of one SKU reproduces its row of the run's
summary; and a (SKU, plan) pair simulated once serves every schedule that contains it
(:func:`simulate_schedules` simulates each distinct pair once).

Defaults
--------
The run, the what-if and ``deadstock simulate`` share one default: :data:`DEFAULT_N_EPISODES`
episodes with parameters drawn from the fit's uncertainty, and the simulation seed derived
from the run's seed by :func:`simulation_seed`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ingest.errors import ConfigError, DataError
from planning.random_keys import KeyedNormals, KeyedSampler, row_keys, sku_keys
from planning.schedule import Schedule
from simulator.demand import Catalog
from simulator.market import initial_state, step

DEFAULT_N_EPISODES = 500
"""Simulated episodes per SKU and plan, unless a caller says otherwise (the run's
``evaluation.n_episodes`` default, the what-if's and ``deadstock simulate``'s)."""

DEFAULT_DRAW_PARAMETERS = True
"""Draw every episode's demand parameters from the fit's uncertainty by default, so the CIs
carry the fit's uncertainty and not only the demand noise."""

DEFAULT_CI_LEVEL = 0.95

_SIMULATION_STREAM = 0x5EED_0C0E
"""Spawn key that separates a run's simulation seed from its other seeds."""

# Rows (SKU-plan pairs x episodes) simulated at once; bounds memory (the season array is
# rows x 52). Chunking changes nothing in the numbers (every draw is keyed).
_CHUNK_ROWS = 100_000

# Per-episode totals kept for every SKU (arrays of shape (n_skus, n_episodes)).
TOTALS = (
    "units_sold",
    "sales_at_list",
    "discount_given",
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
"""Per-episode totals. ``sales_at_list`` = units sold x list price; ``discount_given`` and
``coupon_cost`` are what the discount and the coupon gave away of it (their sum is
``margin_given_away``); so ``revenue - coupon_cost = sales_at_list - margin_given_away``, and
``profit = revenue - coupon_cost - refunds - cogs - holding_cost + salvage - writeoff``
(:mod:`simulator.market`)."""

_WEEKLY = ("units", "revenue", "margin", "stock_left")
_WEEKLY_SD = ("units", "stock_left")


def simulation_seed(run_seed: int) -> int:
    """The seed of the simulated outcomes of a run with seed ``run_seed``.

    ``deadstock run`` simulates its plans with it, and the what-if derives its own the same
    way, so the same SKU and plan give the same numbers in both.
    """
    if int(run_seed) < 0:
        raise ConfigError(f"seed = {run_seed}: expected >= 0")
    seq = np.random.SeedSequence([int(run_seed), _SIMULATION_STREAM])
    return int(seq.generate_state(1, np.uint64)[0])


@dataclass(frozen=True)
class SimulationSettings:
    """How plans are simulated: stated in every output, shared by the run and the what-if.

    Parameters
    ----------
    seed : int
        The run's seed; the simulation seed is :func:`simulation_seed` of it.
    n_episodes : int
        Simulated episodes per SKU and plan.
    draw_parameters : bool
        Draw every episode's demand parameters from the fit's uncertainty.
    ci_level : float
        Level of every CI.
    """

    seed: int = 0
    n_episodes: int = DEFAULT_N_EPISODES
    draw_parameters: bool = DEFAULT_DRAW_PARAMETERS
    ci_level: float = DEFAULT_CI_LEVEL

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise ConfigError(f"seed = {self.seed}: expected >= 0")
        if self.n_episodes < 2:
            raise ConfigError(f"n_episodes = {self.n_episodes}: expected >= 2 (a CI needs two)")
        if not 0.5 <= self.ci_level < 1.0:
            raise ConfigError(f"ci_level = {self.ci_level}: expected [0.5, 1)")

    @property
    def simulation_seed(self) -> int:
        return simulation_seed(self.seed)

    def describe(self) -> str:
        """One line for the outputs, e.g. ``"500 episodes per SKU and plan, parameters drawn
        from the fit's uncertainty, seed 0, 95 % CIs"``."""
        params = (
            "parameters drawn from the fit's uncertainty"
            if self.draw_parameters
            else "parameters at their point estimates"
        )
        return (
            f"{self.n_episodes} episodes per SKU and plan, {params}, seed {self.seed}, "
            f"{self.ci_level:.0%} CIs"
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "seed": self.seed,
            "n_episodes": self.n_episodes,
            "draw_parameters": self.draw_parameters,
            "ci_level": self.ci_level,
        }


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


@dataclass
class _Rows:
    """Simulated rows (one per distinct SKU-plan pair): totals and weekly sums."""

    totals: dict[str, np.ndarray]
    weekly_sum: dict[str, np.ndarray]
    weekly_sq: dict[str, np.ndarray]
    paths: dict[str, np.ndarray] | None


def _simulate_rows(
    catalog: Catalog,
    keys: np.ndarray,
    disc: np.ndarray,
    coup: np.ndarray,
    *,
    n_episodes: int,
    seed: int,
    draw_parameters: bool,
    keep_paths: bool,
) -> _Rows:
    """Simulate row ``i`` of ``catalog`` under plan ``disc[i], coup[i]`` with the random
    numbers of SKU key ``keys[i]``, for ``n_episodes`` episodes."""
    n, h = disc.shape
    totals = {k: np.zeros((n, n_episodes)) for k in TOTALS}
    weekly = {k: np.zeros((n, h)) for k in _WEEKLY}
    weekly_sq = {k: np.zeros((n, h)) for k in _WEEKLY_SD}
    paths = {k: np.zeros((n_episodes, h)) for k in _WEEKLY_SD} if keep_paths else None
    row_chunk = min(n, _CHUNK_ROWS)
    for s0 in range(0, n, row_chunk):
        s1 = min(n, s0 + row_chunk)
        m = s1 - s0
        ep_chunk = max(1, min(n_episodes, _CHUNK_ROWS // m))
        base: Catalog | None = None
        for e0 in range(0, n_episodes, ep_chunk):
            e1 = min(n_episodes, e0 + ep_chunk)
            k = e1 - e0
            if base is None or base.n_skus != m * k:
                base = catalog.take(np.tile(np.arange(s0, s1), k))
            # rows are episode-major: row e * m + i is episode e0 + e of SKU s0 + i
            rkeys = row_keys(seed, keys[s0:s1], np.arange(e0, e1))
            cat = base.sample(KeyedNormals(rkeys).as_generator()) if draw_parameters else base
            sampler = KeyedSampler(rkeys)
            state = initial_state(cat)
            stock0 = state.stock.copy()
            d_rows = np.tile(disc[s0:s1], (k, 1))
            c_rows = np.tile(coup[s0:s1], (k, 1))
            acc = {name: np.zeros(m * k) for name in TOTALS}
            for t in range(h):
                sampler.start_week(t)
                d, c = d_rows[:, t], c_rows[:, t]
                state, r = step(cat, state, d, c, sampler.as_generator(), exit_now=t == h - 1)
                at_list = r.units_sold * cat.list_price
                for name, val in (
                    ("units_sold", r.units_sold),
                    ("sales_at_list", at_list),
                    ("discount_given", at_list * d),
                    ("revenue", r.revenue),
                    ("coupon_cost", r.coupon_cost),
                    ("refunds", r.refunds),
                    ("cogs", r.cogs),
                    ("holding_cost", r.holding_cost),
                    ("salvage", r.salvage),
                    ("writeoff", r.writeoff),
                    ("profit", r.profit),
                    ("margin_given_away", at_list * (d + c)),
                ):
                    acc[name] += val
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
    return _Rows(totals, weekly, weekly_sq, paths)


def _outcome(
    schedule: Schedule, rows: _Rows, index: np.ndarray, n_episodes: int, ci_level: float
) -> Outcome:
    """The outcome of ``schedule`` whose SKU ``i`` was simulated as row ``index[i]``."""
    totals = {name: rows.totals[name][index] for name in TOTALS}
    mean = {key: rows.weekly_sum[key][index] / n_episodes for key in _WEEKLY}
    sd = {
        key: np.sqrt(np.maximum(rows.weekly_sq[key][index] / n_episodes - mean[key] ** 2, 0.0))
        for key in _WEEKLY_SD
    }
    return Outcome(schedule, totals, mean, sd, rows.paths, ci_level)


def _check(catalog: Catalog, schedule: Schedule, n_episodes: int) -> None:
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


def simulate_schedules(
    catalog: Catalog,
    schedules: Mapping[str, Schedule],
    *,
    n_episodes: int = DEFAULT_N_EPISODES,
    seed: int,
    ci_level: float = DEFAULT_CI_LEVEL,
    draw_parameters: bool = DEFAULT_DRAW_PARAMETERS,
) -> dict[str, Outcome]:
    """Simulate several schedules of the same SKUs on common random numbers per SKU.

    Each distinct (SKU, weekly plan) pair is simulated once and shared by every schedule
    that contains it: its numbers would be the same anyway (see the module docstring).

    Parameters
    ----------
    catalog : Catalog
        The SKUs, in every schedule's order.
    schedules : mapping of str to Schedule
    n_episodes, seed, ci_level, draw_parameters
        As in :func:`simulate_schedule`.

    Returns
    -------
    dict of str to Outcome
        One outcome per schedule, under the same keys.
    """
    for sched in schedules.values():
        _check(catalog, sched, n_episodes)
    keys = sku_keys(catalog.sku)
    n = catalog.n_skus
    out: dict[str, Outcome] = {}
    horizons = sorted({s.horizon for s in schedules.values()})
    for h in horizons:
        names = [k for k, s in schedules.items() if s.horizon == h]
        # (SKU index, discounts, coupons) of every schedule's rows; + 0.0 turns -0.0 into 0.0
        stacked = np.concatenate(
            [
                np.column_stack(
                    [
                        np.arange(n),
                        np.asarray(schedules[k].discount, dtype=float) + 0.0,
                        np.asarray(schedules[k].coupon, dtype=float) + 0.0,
                    ]
                )  # fmt: skip
                for k in names
            ]
        )
        unique, inverse = np.unique(stacked, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        sku_index = unique[:, 0].astype(np.int64)
        rows = _simulate_rows(
            catalog.take(sku_index),
            keys[sku_index],
            unique[:, 1 : h + 1],
            unique[:, h + 1 :],
            n_episodes=n_episodes,
            seed=seed,
            draw_parameters=draw_parameters,
            keep_paths=False,
        )
        for j, name in enumerate(names):
            index = inverse[j * n : (j + 1) * n]
            out[name] = _outcome(schedules[name], rows, index, n_episodes, ci_level)
    return {k: out[k] for k in schedules}


#: The signature of :func:`simulate_schedules`: what a caller may put in its place to
#: simulate elsewhere or block by block (the numbers of a SKU are keyed by its id, so any
#: split of the SKUs gives the same ones; see :func:`concat_outcomes`).
SimulateFn = Callable[..., dict[str, Outcome]]


def concat_outcomes(parts: Sequence[Outcome]) -> Outcome:
    """The outcomes of consecutive blocks of SKUs of one schedule, as one (in block order).

    Every per-SKU array is concatenated along the SKU axis; paths (one SKU only) are not
    kept.
    """
    if not parts:
        raise DataError("no outcomes to concatenate")
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    sched = Schedule(
        sku=np.concatenate([np.asarray(p.schedule.sku, dtype=object) for p in parts]),
        discount=np.concatenate([np.asarray(p.schedule.discount) for p in parts]),
        coupon=np.concatenate([np.asarray(p.schedule.coupon) for p in parts]),
        name=first.schedule.name,
    )

    def cat(field: str) -> dict[str, np.ndarray]:
        return {
            k: np.concatenate([getattr(p, field)[k] for p in parts]) for k in getattr(first, field)
        }

    return Outcome(sched, cat("totals"), cat("weekly_mean"), cat("weekly_sd"), None, first.ci_level)


def simulate_schedule(
    catalog: Catalog,
    schedule: Schedule,
    *,
    n_episodes: int = DEFAULT_N_EPISODES,
    seed: int,
    ci_level: float = DEFAULT_CI_LEVEL,
    draw_parameters: bool = DEFAULT_DRAW_PARAMETERS,
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
        Seed of the draws (see :func:`simulation_seed`). A SKU's random numbers depend only on
        the seed, its id, the episode and the week (see the module docstring).
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
    _check(catalog, schedule, n_episodes)
    if keep_paths and catalog.n_skus != 1:
        raise ConfigError("keep_paths is for one SKU; simulate one SKU at a time")
    rows = _simulate_rows(
        catalog,
        sku_keys(catalog.sku),
        np.asarray(schedule.discount, dtype=float),
        np.asarray(schedule.coupon, dtype=float),
        n_episodes=n_episodes,
        seed=seed,
        draw_parameters=draw_parameters,
        keep_paths=keep_paths,
    )
    return _outcome(schedule, rows, np.arange(catalog.n_skus), n_episodes, ci_level)
