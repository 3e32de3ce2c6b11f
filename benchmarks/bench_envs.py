"""Batched-env throughput with action masks: SKU-weeks per second at 1,024 and 4,096 slots.

Run ``.venv/bin/python benchmarks/bench_envs.py`` (under a minute); it writes its section of
``docs/benchmarks/envs.md`` (``--no-write`` only prints). Issue 5's goal: >= 2 M SKU-weeks/s
on 2 cores, masks included.

What is timed is what a MaskablePPO rollout asks of the env per step: ``action_masks()`` and
``step(actions)`` (market step, rule state, rewards, observations, auto-reset of finished
slots with their terminal observations). Choosing the actions (a random masked policy here)
is not timed. The bare :func:`simulator.market.step` on the same slots is timed alongside, as
the floor the env cannot beat. Training-style settings: SKUs drawn from a 500-SKU catalog,
horizons drawn from 4..26 weeks, half the SKUs with negative-binomial noise.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._docpage import machine_line, write_section  # noqa: E402
from envs import RULES_V0  # noqa: E402
from envs.batched import BatchedMarkdownEnv  # noqa: E402
from envs.config import RulesConfig  # noqa: E402
from envs.markdown import EnvConfig  # noqa: E402
from simulator import market  # noqa: E402
from simulator.demand import Catalog  # noqa: E402

PAGE = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "envs.md"
GOAL = 2.0e6

RULE_SETS: dict[str, RulesConfig] = {
    "no rules (8 depths)": RulesConfig(),
    "DeadStock/MarkdownRules-v0 rules (8 depths x 2 coupons, 6 rules)": RULES_V0,
}


def source_catalog(n_skus: int = 500, seed: int = 0) -> Catalog:
    """A varied catalog: elasticities, covers, costs, seasons; half negative binomial."""
    rng = np.random.default_rng(seed)
    list_price = rng.uniform(2, 30, n_skus)
    return Catalog.build(
        n_skus=n_skus,
        list_price=list_price,
        unit_cost=list_price * rng.uniform(0.3, 0.8, n_skus),
        base_demand=rng.lognormal(1.0, 1.0, n_skus),
        elasticity=-rng.uniform(0.8, 4.0, n_skus),
        coupon_coef=rng.uniform(0.5, 3.0, n_skus),
        dispersion=np.where(np.arange(n_skus) % 2 == 0, 0.0, rng.uniform(0.1, 0.6, n_skus)),
        initial_stock=rng.integers(5, 500, n_skus).astype(float),
        salvage_value_per_unit=list_price * 0.1,
        holding_cost_per_unit_week=0.01,
        season=rng.uniform(0.7, 1.3, (n_skus, 52)),
        start_week=rng.integers(0, 52, n_skus),
    )


def time_env(
    rules: RulesConfig, n_slots: int, steps: int, repeats: int
) -> tuple[float, float, float]:
    """SKU-weeks/s of ``action_masks() + step()`` over ``repeats`` runs: best and median by
    the wall clock, and best by this process's CPU time (what an idle core would give)."""
    config = EnvConfig(rules=rules, catalog=source_catalog(), horizon_range=(4, 26))
    env = BatchedMarkdownEnv(config, n_slots, seed=0)
    obs = env.reset()
    rng = np.random.default_rng(1)
    rates, cpu_rates = [], []
    for r in range(repeats + 1):  # the first run warms up
        elapsed = cpu = 0.0
        for _ in range(steps):
            t0, c0 = time.perf_counter(), time.process_time()
            masks = env.action_masks()
            elapsed += time.perf_counter() - t0
            cpu += time.process_time() - c0
            actions = np.argmax(np.where(masks, rng.random(masks.shape), -1.0), axis=1)
            t0, c0 = time.perf_counter(), time.process_time()
            env.step_async(actions)
            obs, _, _, _ = env.step_wait()
            elapsed += time.perf_counter() - t0
            cpu += time.process_time() - c0
        if r:
            rates.append(n_slots * steps / elapsed)
            cpu_rates.append(n_slots * steps / max(cpu, 1e-9))
    del obs
    env.close()
    return max(rates), float(np.median(rates)), max(cpu_rates)


def time_market(n_slots: int, steps: int, repeats: int) -> float:
    """Best SKU-weeks/s of the bare market step on the same kind of slots (no rules, no env)."""
    cat = source_catalog().take(np.arange(n_slots) % 500)
    cat.initial_stock[:] = 1e9  # nobody sells out: the bare step never resets
    rng = np.random.default_rng(1)
    best = 0.0
    for _ in range(repeats + 1):
        state = market.initial_state(cat)
        t0 = time.perf_counter()
        for _ in range(steps):
            state, _ = market.step(cat, state, 0.2, 0.0, rng)
        best = max(best, n_slots * steps / (time.perf_counter() - t0))
    return best


def time_get_action_masks(n_slots: int, repeats: int = 50) -> float:
    """Seconds per call of sb3-contrib's ``get_action_masks(env)`` (what MaskablePPO calls
    every step: ``np.stack`` over the per-slot rows of ``env_method("action_masks")``)."""
    from sb3_contrib.common.maskable.utils import get_action_masks

    env = BatchedMarkdownEnv(EnvConfig(rules=RULES_V0, catalog=source_catalog()), n_slots, seed=0)
    env.reset()
    get_action_masks(env)
    t0 = time.perf_counter()
    for _ in range(repeats):
        get_action_masks(env)
    return (time.perf_counter() - t0) / repeats


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--steps", type=int, default=100, help="steps per timed run")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (best and median)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--label", default="", help="where it ran, for the page")
    args = parser.parse_args(argv)

    rows = [
        "| rules | slots | env SKU-weeks/s, wall (best) | wall (median) | CPU time (best) "
        "| bare market.step, wall (best) | env / market | goal 2 M (wall) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    market_rate = {n: time_market(n, args.steps, args.repeats) for n in args.slots}
    for name, rules in RULE_SETS.items():
        for n in args.slots:
            best, median, cpu = time_env(rules, n, args.steps, args.repeats)
            ok = "met" if best >= GOAL else "**not met**"
            rows.append(
                f"| {name} | {n:,} | {best / 1e6:.2f} M | {median / 1e6:.2f} M | "
                f"{cpu / 1e6:.2f} M | {market_rate[n] / 1e6:.2f} M | "
                f"{best / market_rate[n]:.0%} | {ok} |"
            )
            print(rows[-1], file=sys.stderr, flush=True)
    import os

    stack = {n: time_get_action_masks(n) for n in args.slots}
    stack_text = ", ".join(f"{stack[n] * 1e3:.2f} ms at {n:,} slots" for n in args.slots)
    load = os.getloadavg()
    body = "\n".join(
        [
            f"## Batched env throughput{' — ' + args.label if args.label else ''}",
            "",
            "Command: `.venv/bin/python benchmarks/bench_envs.py"
            + (f" --label '{args.label}'" if args.label else "")
            + "`",
            "",
            f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
            f"{machine_line()}; load average {load[0]:.1f} at the end. "
            f"{args.repeats} timed runs of {args.steps} steps after one warm-up run.",
            "",
            *rows,
            "",
            f"sb3-contrib's `get_action_masks(env)`, which MaskablePPO calls every step, stacks "
            f"the per-slot rows of `env_method('action_masks')`: {stack_text} per call, on top "
            f"of the env's own `action_masks()` timed above (`env.action_masks()` returns the "
            f"same array without that cost).",
        ]
    )
    print(body)
    if not args.no_write:
        section = "throughput" + (
            "-" + "".join(c for c in args.label if c.isalnum()) if args.label else ""
        )
        write_section(PAGE, section, body, title="Environment benchmarks")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
