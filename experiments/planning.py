"""From a closed-loop policy to a fixed weekly plan, and bulk plan exports.

The policy (PPO or a heuristic) is closed-loop: it reacts to the stock it sees. A price system
executes a fixed weekly plan, so the exported schedule is the policy's *typical* plan: it is
played for :data:`PLAN_EPISODES` simulated episodes and each week takes the lower median of the
depths it chose (a median of non-decreasing paths is non-decreasing, and lies on the ladder).
That plan is replayed once through :func:`agents.rollout.rollout` as a fixed-plan policy that
snaps each week to the nearest allowed action, so the exported plan obeys every rule. Its
expected outcomes are then simulated open-loop (:func:`experiments.plan_outcomes.simulate_schedule`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from agents.policy import Policy, PolicyContext, nearest_allowed
from envs.config import RulesConfig
from experiments.plan_outcomes import Schedule, simulate_schedule
from ingest.errors import DataError
from simulator.demand import Catalog

PLAN_EPISODES = 64
"""Closed-loop episodes a policy is played for to find its typical plan."""


class FixedPlanPolicy(Policy):
    """Plays a fixed weekly plan, snapping each week to the nearest allowed action."""

    requires_context = True

    def __init__(self, discount: np.ndarray, coupon: np.ndarray, rules: RulesConfig, name: str):
        self.discount = np.asarray(discount, dtype=float)
        self.coupon = np.asarray(coupon, dtype=float)
        self.rules = rules
        self.name = name

    def act(
        self, observations: np.ndarray, masks: np.ndarray, context: PolicyContext | None = None
    ) -> np.ndarray:
        ctx = self._need_context(context)
        h = self.discount.shape[1]
        t = np.clip(ctx.horizon_weeks - ctx.decision.weeks_left, 0, h - 1)
        rows = np.arange(len(t)) % self.discount.shape[0]
        ladder = np.asarray(self.rules.discount_levels)
        coupons = np.asarray(self.rules.coupon_levels)
        di = np.abs(ladder[None, :] - self.discount[rows, t][:, None]).argmin(axis=1)
        ci = np.abs(coupons[None, :] - self.coupon[rows, t][:, None]).argmin(axis=1)
        return nearest_allowed(self.rules, masks, di, ci)


def plan_of(
    policy: Policy,
    catalog: Catalog,
    rules: RulesConfig,
    horizon: int,
    *,
    seed: int,
    n_episodes: int = PLAN_EPISODES,
) -> tuple[Schedule, float]:
    """The policy's typical fixed plan (see the module docstring) and its closed-loop mean
    objective over ``n_episodes`` (total over SKUs)."""
    from agents.rollout import rollout

    res = rollout(policy, catalog, rules, horizon, n_episodes=n_episodes, seed=seed)
    d = np.quantile(res.schedule["discount"], 0.5, axis=0, method="lower")
    c = np.quantile(res.schedule["coupon"], 0.5, axis=0, method="lower")
    closed_loop = float(res.objective.sum(axis=1).mean())
    if n_episodes > 1:
        # A median plan need not obey the path-dependent rules; replay it through the masks.
        # (One episode's path is already a plan the rules allowed.)
        fixed = FixedPlanPolicy(d, c, rules, policy.name)
        snapped = rollout(fixed, catalog, rules, horizon, n_episodes=1, seed=seed)
        d, c = snapped.schedule["discount"][0], snapped.schedule["coupon"][0]
    sched = Schedule(
        sku=np.asarray(catalog.sku, dtype=object), discount=d, coupon=c, name=policy.name
    )
    return sched, closed_loop


def export_schedules_bulk(
    policy: Policy,
    catalog: Catalog,
    rules: RulesConfig,
    horizon: int,
    target: str | Path,
    *,
    plan_key: str,
    plan_episodes: int = 4,
    n_episodes: int = 8,
    seed: int = 0,
    chunk_skus: int = 50_000,
    progress: bool = True,
) -> int:
    """Plan and simulate the schedules of a large catalog chunk by chunk and write the
    ``schedules`` table to ``target`` (``.parquet`` or ``.csv``, atomically).

    Memory stays bounded by ``chunk_skus``; returns the number of rows written. Each chunk
    gets its own child seeds from ``seed``: same arguments, same numbers.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from experiments.exports import schedules_table
    from ingest.io import atomic_path

    target = Path(target)
    suffix = target.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise DataError(f"bulk export target {str(target)!r}: expected .parquet or .csv")
    n = catalog.n_skus
    starts = list(range(0, n, chunk_skus))
    seeds = np.random.SeedSequence(seed).generate_state(2 * len(starts)).tolist()
    rows = 0
    with atomic_path(target) as tmp:
        writer = None
        try:
            for k, s0 in enumerate(starts):
                part = catalog.take(np.arange(s0, min(n, s0 + chunk_skus)))
                sched, _ = plan_of(
                    policy, part, rules, horizon, seed=int(seeds[2 * k]), n_episodes=plan_episodes
                )
                out = simulate_schedule(
                    part, sched, n_episodes=n_episodes, seed=int(seeds[2 * k + 1])
                )
                frame = schedules_table(out, plan_key)
                rows += len(frame)
                if suffix == ".parquet":
                    table = pa.Table.from_pandas(frame, preserve_index=False)
                    if writer is None:
                        writer = pq.ParquetWriter(str(tmp), table.schema)
                    writer.write_table(table)
                else:
                    frame.to_csv(tmp, mode="a", header=k == 0, index=False)
                if progress:
                    print(
                        f"[export] {min(n, s0 + chunk_skus):,}/{n:,} SKUs planned and simulated",
                        file=sys.stderr,
                        flush=True,
                    )
        finally:
            if writer is not None:
                writer.close()
    return rows
