"""The recommended plan, chosen per SKU among candidate planners, without a winner's curse.

Each candidate planner (the exact DP, PPO, the heuristics, doing nothing) gives a fixed
weekly plan for every SKU. The recommendation takes, SKU by SKU, the plan that did best, and
reports what it is worth on paths it was *not* chosen on:

1. **Selection.** Every plan is simulated on the *selection paths* (the simulation seed
   :func:`selection_seed` of the run's seed) with common random numbers per SKU
   (:func:`planning.outcomes.simulate_schedules`): identical plans tie exactly.
2. **Choice per SKU** (:func:`choose`). The candidates are ranked by mean profit on the
   selection paths; a tie (identical plans give exactly the same mean) goes to the *default*
   planner (the DP, optimal for a DP-exact market), then to the plan with fewer depth changes
   (the simpler one), then to the candidates' order. The default planner keeps the SKU unless
   a challenger beats its plan on the selection paths with a paired CI that excludes zero:
   a challenger that is ahead by noise alone does not displace the optimum.
3. **Evaluation.** Every plan and the per-SKU choice are simulated again on the *evaluation
   paths* (the run's simulation seed, :func:`planning.outcomes.simulation_seed`, independent
   of the selection seed), and every figure the outputs show comes from them: the chosen
   plan's outcomes, its margin over the runner-up (the best other plan on the selection paths
   that differs from the chosen one), and the portfolio gain of the per-SKU choice over the
   best single planner (the one with the highest portfolio profit on the selection paths).
   Choosing the maximum of noisy estimates biases that maximum upwards (the winner's curse);
   fresh paths remove the bias.

A candidate may be unavailable for some SKUs (the DP where the market is not DP-exact, for
instance); it is then never chosen for them and cannot be the best *single* planner.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ingest.errors import ConfigError, DataError
from planning.outcomes import Outcome, SimulateFn, mean_ci, simulate_schedules
from planning.schedule import Schedule
from simulator.demand import Catalog

log = logging.getLogger(__name__)

_SELECTION_STREAM = 0x5E1E_C7ED
"""Spawn key that separates a run's selection seed from its simulation seed."""

RECOMMENDED_NAME = "per_sku"
"""Name of the per-SKU choice's schedule (each SKU's row is one candidate's plan)."""


def selection_seed(run_seed: int) -> int:
    """The seed of the selection paths of a run with seed ``run_seed`` (never the seed of its
    evaluation paths, :func:`planning.outcomes.simulation_seed`)."""
    if int(run_seed) < 0:
        raise ConfigError(f"seed = {run_seed}: expected >= 0")
    seq = np.random.SeedSequence([int(run_seed), _SELECTION_STREAM])
    return int(seq.generate_state(1, np.uint64)[0])


@dataclass
class Candidates:
    """The candidate plans of the same SKUs.

    Parameters
    ----------
    plans : mapping of str to Schedule
        One plan per planner, each covering every SKU of the catalog in order. The order is
        the last tie-break.
    available : mapping of str to ndarray of bool of shape (n_skus,)
        SKUs a planner may be chosen for (a planner absent from it: every SKU).
    default : str or None
        The planner that keeps a SKU unless a challenger beats it significantly (the DP).
    complete : collection of str or None
        The planners whose plan is their own for every SKU, among which the best single
        planner is found (None: those available for every SKU). A planner may be complete
        without being available everywhere: where every plan is doing nothing (no demand at
        any price), only doing nothing is a candidate, yet every planner's plan is its own.
    """

    plans: Mapping[str, Schedule]
    available: Mapping[str, np.ndarray] = field(default_factory=dict)
    default: str | None = None
    complete: Collection[str] | None = None

    def __post_init__(self) -> None:
        if not self.plans:
            raise ConfigError("the per-SKU choice needs at least one candidate plan")
        unknown = sorted((set(self.available) | set(self.complete or ())) - set(self.plans))
        if unknown or (self.default is not None and self.default not in self.plans):
            raise ConfigError(
                f"candidates {unknown or [self.default]} have no plan; plans: {list(self.plans)}"
            )

    @property
    def names(self) -> list[str]:
        return list(self.plans)

    def availability(self, n_skus: int) -> np.ndarray:
        """Shape ``(n_candidates, n_skus)``: may planner ``c`` be chosen for SKU ``i``."""
        out = np.ones((len(self.plans), n_skus), dtype=bool)
        for c, name in enumerate(self.plans):
            if name in self.available:
                out[c] = np.asarray(self.available[name], dtype=bool)
        if not out.any(axis=0).all():
            bad = int(np.flatnonzero(~out.any(axis=0))[0])
            raise DataError(f"SKU #{bad} has no available candidate plan")
        return out


@dataclass
class Choice:
    """The per-SKU choice and what it is worth on the evaluation paths.

    Attributes
    ----------
    names : list of str
        The candidates, in their order.
    recommended_by : ndarray of str of shape (n_skus,)
        The planner whose plan each SKU gets.
    runner_up : ndarray of str of shape (n_skus,)
        The best other plan on the selection paths that differs from the chosen one (``""``
        when every available plan is identical to it).
    margin, margin_ci_low, margin_ci_high : ndarray of shape (n_skus,)
        Mean profit of the chosen plan minus the runner-up's on the evaluation paths, with its
        paired CI (0 where there is no runner-up).
    selection_mean : ndarray of shape (n_candidates, n_skus)
        Mean profit of every plan on the selection paths (what the choice saw).
    outcomes : dict of str to Outcome
        Every candidate's plan and the choice (:data:`RECOMMENDED_NAME`) on the evaluation
        paths.
    best_single : str
        The single planner with the highest portfolio profit on the selection paths, among
        the complete ones (:class:`Candidates`).
    gain_vs_best_single : tuple of float
        Mean and CI of the portfolio profit of the choice minus the best single planner's, on
        the evaluation paths.
    selection_seed, evaluation_seed : int
    """

    names: list[str]
    recommended_by: np.ndarray
    runner_up: np.ndarray
    margin: np.ndarray
    margin_ci_low: np.ndarray
    margin_ci_high: np.ndarray
    selection_mean: np.ndarray
    outcomes: dict[str, Outcome]
    best_single: str
    gain_vs_best_single: tuple[float, float, float]
    selection_seed: int
    evaluation_seed: int

    @property
    def recommended(self) -> Outcome:
        return self.outcomes[RECOMMENDED_NAME]

    def wins(self) -> dict[str, int]:
        """SKUs each candidate won (every candidate, zeros included, in their order)."""
        return {n: int((self.recommended_by == n).sum()) for n in self.names}

    def metrics(self) -> dict[str, float]:
        """Flat metrics for MLflow: wins per planner and the gain over the best single one."""
        out = {f"recommend/wins/{n}": float(v) for n, v in self.wins().items()}
        m, lo, hi = self.gain_vs_best_single
        out.update(
            {
                "recommend/gain_vs_best_single": m,
                "recommend/gain_vs_best_single_ci_low": lo,
                "recommend/gain_vs_best_single_ci_high": hi,
            }
        )
        return out

    def describe(self, currency: str = "") -> list[str]:
        """Plain lines for the log, the report and the CLI."""
        n = len(self.recommended_by)
        wins = ", ".join(f"{k} {v:,}" for k, v in self.wins().items() if v)
        m, lo, hi = self.gain_vs_best_single
        unit = f" {currency}" if currency else ""
        return [
            f"SKUs won per planner (of {n:,}): {wins}",
            f"per-SKU choice vs the best single planner ({self.best_single}): {m:+,.2f}{unit} "
            f"[{lo:+,.2f}, {hi:+,.2f}], on paths independent of the choice's",
        ]


def _n_changes(schedule: Schedule) -> np.ndarray:
    """Weeks in which a SKU's discount or coupon differs from the week before."""
    d, c = np.asarray(schedule.discount), np.asarray(schedule.coupon)
    return (np.diff(d, axis=1) != 0).sum(axis=1) + (np.diff(c, axis=1) != 0).sum(axis=1)


def _identical(plans: Sequence[Schedule]) -> np.ndarray:
    """Shape ``(n_candidates, n_candidates, n_skus)``: are two plans the same for a SKU."""
    d = np.stack([np.asarray(p.discount, float) for p in plans])
    c = np.stack([np.asarray(p.coupon, float) for p in plans])
    same_d = (d[:, None] == d[None, :]).all(axis=3)
    same_c = (c[:, None] == c[None, :]).all(axis=3)
    return same_d & same_c


def _rank(
    mean: np.ndarray, allowed: np.ndarray, changes: np.ndarray, default: int | None
) -> np.ndarray:
    """Candidate order per SKU (best first), shape ``(n_candidates, n_skus)``; unavailable
    candidates last. Keys: mean profit (higher first), then the default planner, then fewer
    changes, then the candidates' order."""
    n_c, n = mean.shape
    is_default = np.zeros((n_c, n), dtype=bool)
    if default is not None:
        is_default[default] = True
    position = np.broadcast_to(np.arange(n_c)[:, None], (n_c, n))
    score = np.where(allowed, -mean, np.inf)
    # np.lexsort sorts by the last key first
    return np.lexsort((position, changes, ~is_default, score, ~allowed), axis=0)


def choose(
    catalog: Catalog,
    candidates: Candidates,
    *,
    n_episodes: int,
    selection_seed: int,
    evaluation_seed: int,
    draw_parameters: bool,
    ci_level: float,
    simulate: SimulateFn | None = None,
) -> Choice:
    """Choose each SKU's plan on the selection paths, report it on the evaluation paths.

    See the module docstring for the rule.

    Parameters
    ----------
    catalog : Catalog
        The SKUs, in every plan's order.
    candidates : Candidates
    n_episodes : int
        Episodes per SKU and plan, on each set of paths.
    selection_seed, evaluation_seed : int
        Simulation seeds of the two sets of paths; they must differ.
    draw_parameters : bool
        Draw every episode's demand parameters from the fit's uncertainty (both sets).
    ci_level : float
        Level of every CI, the significance rule's included.
    simulate : callable
        Simulates the plans (default :func:`planning.outcomes.simulate_schedules`, or a
        caller's block-by-block equivalent with the same numbers).

    Returns
    -------
    Choice
    """
    if int(selection_seed) == int(evaluation_seed):
        raise ConfigError(
            f"selection seed = evaluation seed = {selection_seed}: a plan chosen on the paths "
            f"it is reported on looks better than it is; use two seeds"
        )
    names = candidates.names
    plans = [candidates.plans[k] for k in names]
    n = catalog.n_skus
    allowed = candidates.availability(n)
    sim: dict[str, Any] = dict(
        n_episodes=n_episodes, draw_parameters=draw_parameters, ci_level=ci_level
    )
    log.info("per-SKU choice: %d plans x %d SKUs on the selection paths", len(names), n)
    simulate = simulate or simulate_schedules
    picked = simulate(catalog, candidates.plans, seed=selection_seed, **sim)
    profit = np.stack([picked[k].totals["profit"] for k in names])  # (c, n, episodes)
    mean = profit.mean(axis=2)
    changes = np.stack([_n_changes(p) for p in plans])
    default = names.index(candidates.default) if candidates.default is not None else None
    order = _rank(mean, allowed, changes, default)
    sku = np.arange(n)
    winner = order[0].copy()
    if default is not None:
        # The default keeps a SKU unless the best challenger's paired gain over it on the
        # selection paths has a CI above zero.
        lo, _ = mean_ci(profit[winner, sku] - profit[default, sku], ci_level, axis=1)
        keep = allowed[default] & (winner != default) & (lo <= 0)
        winner[keep] = default
    same = _identical(plans)
    runner = np.full(n, -1)
    for i in range(n):
        for c in order[:, i]:
            if allowed[c, i] and not same[c, winner[i], i]:
                runner[i] = c
                break
    composite = Schedule(
        sku=np.asarray(catalog.sku, dtype=object),
        discount=np.stack([np.asarray(plans[w].discount, float)[i] for i, w in enumerate(winner)]),
        coupon=np.stack([np.asarray(plans[w].coupon, float)[i] for i, w in enumerate(winner)]),
        name=RECOMMENDED_NAME,
    )
    log.info("per-SKU choice: every plan again on the evaluation paths")
    evaluated = simulate(
        catalog,
        {**candidates.plans, RECOMMENDED_NAME: composite},
        seed=evaluation_seed,
        **sim,
    )
    rec = evaluated[RECOMMENDED_NAME].totals["profit"]
    has_runner = runner >= 0
    other = np.stack(
        [evaluated[names[max(r, 0)]].totals["profit"][i] for i, r in enumerate(runner)]
    )
    diff = np.where(has_runner[:, None], rec - other, 0.0)
    margin_lo, margin_hi = mean_ci(diff, ci_level, axis=1)
    if candidates.complete is not None:
        everywhere = [k for k in names if k in candidates.complete]
    else:
        everywhere = [k for c, k in enumerate(names) if allowed[c].all()]
    if not everywhere:
        raise DataError("no candidate planner covers every SKU; the best single one is undefined")
    best = max(everywhere, key=lambda k: float(mean[names.index(k)].sum()))
    gain = (rec - evaluated[best].totals["profit"]).sum(axis=0)
    g_lo, g_hi = mean_ci(gain, ci_level)
    name_arr = np.asarray(names, dtype=object)
    return Choice(
        names=names,
        recommended_by=name_arr[winner],
        runner_up=np.where(has_runner, name_arr[np.maximum(runner, 0)], ""),
        margin=diff.mean(axis=1),
        margin_ci_low=np.asarray(margin_lo),
        margin_ci_high=np.asarray(margin_hi),
        selection_mean=mean,
        outcomes=evaluated,
        best_single=best,
        gain_vs_best_single=(float(gain.mean()), float(g_lo), float(g_hi)),
        selection_seed=int(selection_seed),
        evaluation_seed=int(evaluation_seed),
    )
