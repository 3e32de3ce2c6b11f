"""CPU time of one block of the bulk export (``app.exports._export_block``): plan, simulate,
table and write ``--n-skus`` synthetic SKUs x 12 weeks with a PPO policy, on one core.

Run ``.venv/bin/python benchmarks/profile_bulk_block.py [--n-skus 50000] [--profile]``. It
prints the CPU time (``time.process_time``) of each stage of the block and the SHA-256 of the
part file (the same seed must give the same digest before and after a speed-up). The catalog is
``benchmarks/bench_pipeline.py``'s; the policy a PPO trained here for ``--train-steps`` steps
(the network is the one the export uses; its quality is not what this measures).
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-skus", type=int, default=50_000)
    p.add_argument("--train-steps", type=int, default=2048)
    p.add_argument("--plan-episodes", type=int, default=1)
    p.add_argument("--episodes", type=int, default=8)
    p.add_argument("--repeat", type=int, default=1, help="time the block this many times")
    p.add_argument("--profile", action="store_true", help="print the cProfile top 30")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from agents.ppo import PPOConfig, PPOPolicy, train_ppo
    from app import exports as ex
    from app.pipeline_config import DEFAULT_RULES
    from benchmarks.bench_pipeline import _catalog
    from planning.from_policy import plan_of
    from planning.outcomes import simulate_schedule, simulation_seed
    from planning.schedule import rounded_depths
    from simulator.demand import Catalog

    train_cat = _catalog(2000, np.random.default_rng(1), Catalog)
    res = train_ppo(
        PPOConfig(
            total_timesteps=args.train_steps, horizon_range=(12, 12), checkpoint_every=0, seed=0
        ),
        DEFAULT_RULES,
        train_cat,
    )
    policy = PPOPolicy(res.model, name="ppo")
    cat = _catalog(args.n_skus, np.random.default_rng(0), Catalog)
    (s0, s1, plan_seed) = ex.bulk_blocks(cat.n_skus, cat.n_skus, 0)[0]
    with tempfile.TemporaryDirectory() as tmp:
        shared = ex._BulkShared(
            policy=policy,
            rules=DEFAULT_RULES,
            horizon=12,
            plan_key="bench",
            plan_episodes=args.plan_episodes,
            n_episodes=args.episodes,
            sim_seed=simulation_seed(0),
            ctx=None,
            staging=tmp,
            suffix=".parquet",
        )
        block = ex._BulkBlock(0, cat, plan_seed)
        for _ in range(args.repeat):
            t = time.process_time()
            sched, _ = plan_of(
                policy, cat, DEFAULT_RULES, 12, seed=plan_seed, n_episodes=args.plan_episodes
            )
            t_plan = time.process_time() - t
            t = time.process_time()
            out = simulate_schedule(
                cat, rounded_depths(sched), n_episodes=args.episodes, seed=shared.sim_seed
            )
            t_sim = time.process_time() - t
            t = time.process_time()
            ex.schedules_table(out, "bench", cat, None)
            t_table = time.process_time() - t
            t = time.process_time()
            prof = cProfile.Profile() if args.profile else None
            if prof is not None:
                prof.enable()
            path, _ = ex._export_block(shared, block)
            if prof is not None:
                prof.disable()
            t_block = time.process_time() - t
            digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            print(
                f"{args.n_skus:,} SKUs CPU: plan {t_plan:.2f} s, simulate {t_sim:.2f} s, "
                f"table {t_table:.2f} s; whole block {t_block:.2f} s; part sha256 {digest[:16]}"
            )
        if prof is not None:
            pstats.Stats(prof).sort_stats("cumulative").print_stats(35)
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
