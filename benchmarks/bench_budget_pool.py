"""What the budget market's training pool costs to solve, with one multiplier or one per week.

``agents.budget_ppo.solve_pool`` solves every training category's Lagrangian relaxation before
PPO trains (``PPOConfig.budget_pool`` categories, 128 by default). With ``budget_prior =
"lagrangian_weekly"`` (the budget market's default) it adds the weekly multipliers
(``POOL_WEEKLY_ITERATIONS`` subgradient steps of every SKU's DP). This times both on the
training catalog of each rule profile, with the budget market's training settings, and
reports the weekly prices' shape (mean multiplier per week over the pool's categories).

Usage::

    .venv/bin/python benchmarks/bench_budget_pool.py               # 32 categories per profile
    .venv/bin/python benchmarks/bench_budget_pool.py --categories 128

Writes ``docs/benchmarks/budget_pool.md`` (``--doc``).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from agents.budget_ppo import POOL_WEEKLY_ITERATIONS, solve_pool  # noqa: E402
from agents.ppo import POOL_SEED_KEY, _child_seeds  # noqa: E402
from benchmarks._docpage import machine_line, markdown_table  # noqa: E402
from experiments.suite import RULE_PROFILES, catalog_fn_for, get_spec  # noqa: E402
from experiments.train import TrainConfig, ppo_for_profile  # noqa: E402
from ingest.io import write_text_atomic  # noqa: E402


def time_pool(profile: str, n_categories: int, seed: int) -> tuple[list[dict], np.ndarray]:
    """CPU seconds of the pool of ``profile`` with each prior, and the weekly multipliers."""
    spec = get_spec("budget")
    ppo = ppo_for_profile(TrainConfig(suite="budget"), spec.policy_key(profile))
    # drawn as train_ppo draws it: the pool is its first categories
    catalog = catalog_fn_for(spec, profile)(
        ppo.n_catalog_skus, np.random.default_rng(_child_seeds(seed)[1])
    )
    rows, weekly_lam = [], np.empty(0)
    for weekly in (False, True):
        rng = np.random.default_rng(np.random.SeedSequence([seed, POOL_SEED_KEY]))
        c0 = time.process_time()
        pool = solve_pool(
            catalog,
            RULE_PROFILES[profile],
            n_categories=n_categories,
            n_skus=ppo.budget_skus,
            max_promoted=ppo.budget_slots,
            horizon_weeks=ppo.horizon_range[1],
            rng=rng,
            weekly=weekly,
        )
        cpu = time.process_time() - c0
        lam = pool.prior.multipliers[:: ppo.budget_skus]  # one row per category
        rows.append(
            {
                "profile": profile,
                "prior": "lagrangian_weekly" if weekly else "lagrangian",
                "categories": n_categories,
                "cpu_s": cpu,
                "cpu_s_per_category": cpu / n_categories,
                "binding": int((lam.reshape(n_categories, -1).max(axis=1) > 0).sum()),
            }
        )
        if weekly:
            weekly_lam = lam
    return rows, weekly_lam


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--categories", type=int, default=32, help="per profile")
    parser.add_argument("--seed", type=int, default=0, help="the training run's seed")
    parser.add_argument("--doc", default=str(ROOT / "docs" / "benchmarks" / "budget_pool.md"))
    args = parser.parse_args(argv)
    if args.categories < 1:
        raise SystemExit(f"bench_budget_pool.py --categories {args.categories}: expected >= 1")
    rows, shapes = [], {}
    for profile in get_spec("budget").profiles:
        print(f"bench_budget_pool: {profile}", file=sys.stderr)
        got, lam = time_pool(profile, args.categories, args.seed)
        rows += got
        binding = lam[(lam > 0).any(axis=1)]
        shapes[profile] = (binding if len(binding) else lam).mean(axis=0)
    table = pd.DataFrame(rows)
    weeks = pd.DataFrame(
        {"week": np.arange(1, len(next(iter(shapes.values()))) + 1)}
        | {f"{p}_mean_multiplier": v for p, v in shapes.items()}
    )
    lines = [
        "# Solving the budget market's training pool",
        "",
        f"Produced by `benchmarks/bench_budget_pool.py {shlex.join(argv or sys.argv[1:])}`; "
        f"{machine_line()}.",
        "",
        "CPU seconds of `agents.budget_ppo.solve_pool` on the training catalog of each rule "
        "profile (the budget market's training settings: categories of 4 SKUs, `K` in {1, 2}, "
        f"12 weeks; the first categories of training seed {args.seed}'s pool), with one multiplier per category "
        "(bisection) and with the weekly multipliers added "
        f"(`POOL_WEEKLY_ITERATIONS = {POOL_WEEKLY_ITERATIONS}` subgradient steps). "
        "`binding`: categories where the limit binds. A training run solves "
        "`PPOConfig.budget_pool` (128) categories per profile before it trains.",
        "",
        markdown_table(table),
        "",
        "Mean weekly multiplier over the categories where the limit binds (week 1 first): the "
        "price of a slot by week, what one multiplier for all weeks averages away.",
        "",
        markdown_table(weeks, floats=3),
        "",
    ]
    text = "\n".join(lines)
    write_text_atomic(Path(args.doc), text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
