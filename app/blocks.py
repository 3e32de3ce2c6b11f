"""Blocks of SKUs for the engine (:mod:`app.engine`): where they start and end, their seeds,
and the evaluate stage's planning over them.

The blocks are a function of the config alone (``evaluation.block_skus``), never of the
engine, and block ``k``'s seed is derived from the stage's seed and ``k``
(:func:`block_seed`): the local and the Ray engine plan the same blocks with the same random
numbers, so they give the same plans, and the simulation after them is keyed by SKU id
(:mod:`planning.random_keys`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.policy import Policy
from app.engine import Engine
from envs.config import RulesConfig
from ingest.errors import ConfigError
from planning.outcomes import Outcome, concat_outcomes, simulate_schedules
from planning.recommend import CandidatePlans, join_candidates, plan_candidates
from planning.schedule import Schedule
from simulator.demand import Catalog

logger = logging.getLogger(__name__)


def block_ranges(n_skus: int, block_skus: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of consecutive blocks of at most ``block_skus`` SKUs."""
    if block_skus < 1:
        raise ConfigError(f"block_skus = {block_skus}: expected >= 1")
    return [(s, min(n_skus, s + block_skus)) for s in range(0, n_skus, block_skus)]


def block_seed(seed: int, index: int) -> int:
    """The seed of block ``index`` of a stage with seed ``seed``.

    Block 0 keeps the stage's seed, so a catalog that fits in one block is planned exactly as
    without blocks; the others get ``SeedSequence([seed, index])``'s first word.
    """
    if index == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


@dataclass(frozen=True)
class _PlanShared:
    """What every planning block shares (sent to each worker once)."""

    learned: Policy
    heuristics: tuple[Policy, ...]
    rules: RulesConfig
    horizon: int
    qmdp_grid: int = 0


def _plan_block(shared: _PlanShared, block: tuple[Catalog, int]) -> CandidatePlans:
    catalog, seed = block
    return plan_candidates(
        catalog,
        shared.learned,
        shared.heuristics,
        shared.rules,
        shared.horizon,
        seed=seed,
        qmdp_grid=shared.qmdp_grid,
    )


def plan_candidates_in_blocks(
    engine: Engine,
    catalog: Catalog,
    learned: Policy,
    heuristics: Sequence[Policy],
    rules: RulesConfig,
    horizon: int,
    *,
    seed: int,
    block_skus: int,
    qmdp_grid: int = 0,
) -> CandidatePlans:
    """Every candidate's plan (:func:`planning.recommend.plan_candidates`, QMDP's with
    ``qmdp_grid``), made block by block on ``engine`` with the policies loaded once per
    worker, joined in catalog order."""
    ranges = block_ranges(catalog.n_skus, block_skus)
    shared = _PlanShared(learned, tuple(heuristics), rules, horizon, qmdp_grid)
    blocks = (
        (catalog.take(np.arange(s0, s1)), block_seed(seed, k)) for k, (s0, s1) in enumerate(ranges)
    )
    parts = []
    for k, part in enumerate(engine.map_blocks(_plan_block, blocks, shared)):
        parts.append(part)
        if len(ranges) > 1:
            logger.info("evaluate: planned block %d/%d on the %s engine", k + 1, len(ranges),
                        engine.name)  # fmt: skip
    return join_candidates(parts)


def _simulate_block(
    settings: dict[str, Any], block: tuple[Catalog, dict[str, Schedule]]
) -> dict[str, Outcome]:
    catalog, schedules = block
    return simulate_schedules(catalog, schedules, **settings)


def _rows(schedule: Schedule, s0: int, s1: int) -> Schedule:
    return Schedule(
        sku=np.asarray(schedule.sku, dtype=object)[s0:s1],
        discount=np.asarray(schedule.discount)[s0:s1],
        coupon=np.asarray(schedule.coupon)[s0:s1],
        name=schedule.name,
    )


def outcome_rows(outcome: Outcome, s0: int, s1: int) -> Outcome:
    """SKUs ``s0:s1`` of ``outcome`` (the inverse of
    :func:`planning.outcomes.concat_outcomes`; paths, kept for one SKU only, are not)."""

    def rows(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: np.asarray(v)[s0:s1] for k, v in arrays.items()}

    return Outcome(
        _rows(outcome.schedule, s0, s1),
        rows(outcome.totals),
        rows(outcome.weekly_mean),
        rows(outcome.weekly_sd),
        None,
        outcome.ci_level,
    )


@dataclass(frozen=True)
class BlockSimulator:
    """:func:`planning.outcomes.simulate_schedules` block by block on an engine: the same
    numbers (a SKU's random numbers are keyed by its id), the blocks of ``block_skus`` SKUs
    simulated wherever the engine runs them and their outcomes concatenated."""

    engine: Engine
    block_skus: int

    def __call__(
        self, catalog: Catalog, schedules: Mapping[str, Schedule], **settings: Any
    ) -> dict[str, Outcome]:
        ranges = block_ranges(catalog.n_skus, self.block_skus)
        blocks = (
            (catalog.take(np.arange(s0, s1)), {k: _rows(v, s0, s1) for k, v in schedules.items()})
            for s0, s1 in ranges
        )
        parts = list(self.engine.map_blocks(_simulate_block, blocks, dict(settings)))
        return {k: concat_outcomes([p[k] for p in parts]) for k in schedules}
