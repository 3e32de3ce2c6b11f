"""Market-step throughput: SKU-weeks per second of :func:`simulator.market.step` with
negative-binomial noise, coupons and the reference price on, at 1,024 and 4,096 SKUs, and the
speed-up over stepping the same SKUs one at a time (n = 1 catalogs) in a Python loop.

Run: ``.venv/bin/python benchmarks/bench_market.py``; prints a markdown table
(docs/benchmarks/simulator.md holds its output).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simulator.demand import Catalog  # noqa: E402
from simulator.market import initial_state, step  # noqa: E402


def make_catalog(n: int, seed: int = 0) -> Catalog:
    rng = np.random.default_rng(seed)
    return Catalog.build(
        n_skus=n,
        base_demand=rng.uniform(1, 20, n),
        elasticity=-rng.uniform(0.5, 3, n),
        coupon_coef=rng.uniform(0.5, 2, n),
        dispersion=rng.uniform(0.1, 0.6, n),
        ref_price_sensitivity=0.5,
        ref_price_memory=0.7,
        season=rng.uniform(0.7, 1.3, (n, 52)),
        initial_stock=1e6,
        holding_cost_per_unit_week=0.01,
    )


def vectorized(cat: Catalog, weeks: int, seed: int = 1) -> float:
    rng = np.random.default_rng(seed)
    n = cat.n_skus
    d = np.full(n, 0.2)
    c = np.full(n, 0.05)
    state = initial_state(cat)
    t0 = time.perf_counter()
    for _ in range(weeks):
        state, _ = step(cat, state, d, c, rng)
    return time.perf_counter() - t0


def loop(cat: Catalog, weeks: int, seed: int = 1) -> float:
    rng = np.random.default_rng(seed)
    singles = [cat.take([i]) for i in range(cat.n_skus)]
    states = [initial_state(s) for s in singles]
    t0 = time.perf_counter()
    for _ in range(weeks):
        for i, s in enumerate(singles):
            states[i], _ = step(s, states[i], 0.2, 0.05, rng)
    return time.perf_counter() - t0


def main() -> None:
    print("| SKUs | weeks | vectorized SKU-weeks/s | one-at-a-time SKU-weeks/s | speed-up |")
    print("|---|---|---|---|---|")
    for n in (1024, 4096):
        cat = make_catalog(n)
        weeks = 200
        vectorized(cat, 5)
        best = min(vectorized(cat, weeks) for _ in range(3))
        rate = n * weeks / best
        loop_weeks = 2
        t_loop = loop(cat, loop_weeks)
        loop_rate = n * loop_weeks / t_loop
        print(
            f"| {n:,} | {weeks} | {rate / 1e6:.2f} M | {loop_rate / 1e3:.1f} k | "
            f"{rate / loop_rate:,.0f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
