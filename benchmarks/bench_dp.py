"""DP solve time: 2,000 units x 26 weeks x 8 depths, without rules and with rule sets.

Run ``.venv/bin/python benchmarks/bench_dp.py`` (about half a minute); it writes its
section of ``docs/benchmarks/dp.md``. Goals from issue 5: <= 20 ms without rules, <= 0.5 s
with the markdown-only rule.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.dp import solve  # noqa: E402
from benchmarks._docpage import machine_line, write_section  # noqa: E402
from envs.config import RulesConfig  # noqa: E402
from simulator.demand import Catalog  # noqa: E402

PAGE = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "dp.md"

RULE_SETS: dict[str, tuple[RulesConfig, float | None]] = {
    "no rules": (RulesConfig(), 0.020),
    "markdown-only": (RulesConfig(markdown_only=True), 0.5),
    "markdown-only + min 3 weeks between changes": (
        RulesConfig(markdown_only=True, min_weeks_between_changes=3),
        None,
    ),
    "all switches (2 coupon levels, budget 4, floor, no-touch, hard sell-through)": (
        RulesConfig(
            coupon_levels=(0.0, 0.1),
            coupon_budget_weeks=4,
            markdown_only=True,
            min_weeks_between_changes=2,
            margin_floor=0.0,
            no_touch_after_launch_weeks=2,
            no_touch_before_exit_weeks=2,
            sell_through_target=0.9,
            sell_through_mode="hard",
        ),
        None,
    ),
}


def sku(units: int, weeks: int, dispersion: float) -> Catalog:
    """A SKU with twice the stock its full-price demand would sell over the horizon."""
    return Catalog.build(
        n_skus=1,
        base_demand=units / (2.0 * weeks),
        initial_stock=units,
        elasticity=-2.5,
        unit_cost=0.4,
        coupon_coef=2.0,
        dispersion=dispersion,
        holding_cost_per_unit_week=0.002,
        salvage_value_per_unit=0.1,
        season=1.0 + 0.2 * np.sin(np.arange(52) / 52 * 2 * np.pi),
    )


def minor_faults() -> int:
    """Minor page faults of this process so far (-1 where the OS does not say)."""
    try:
        import resource
    except ImportError:  # not on Unix
        return -1
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)


def time_solve(
    cat: Catalog, rules: RulesConfig, weeks: int, repeats: int, budget_s: float = 10.0
) -> tuple[float, float, float, int, int, float]:
    """Time up to ``repeats`` solves after a warm-up (fewer once ``budget_s`` is spent).

    Returns the median wall time, best wall time, median CPU time of this process (less
    sensitive to other work on a shared machine), the number of states and of solves, and
    the minor page faults per timed solve (freshly mapped memory touched; NaN if unknown).
    """
    sol = solve(cat, rules, weeks)
    wall: list[float] = []
    cpu: list[float] = []
    faults0 = minor_faults()
    start = time.perf_counter()
    while len(wall) < repeats and (len(wall) < 3 or time.perf_counter() - start < budget_s):
        t0, c0 = time.perf_counter(), time.process_time()
        solve(cat, rules, weeks)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    faults = (minor_faults() - faults0) / len(wall) if faults0 >= 0 else float("nan")
    states = int(sol.values[1:].size)
    return (
        float(np.median(wall)),
        float(np.min(wall)),
        float(np.median(cpu)),
        states,
        len(wall),
        faults,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--units", type=int, default=2000, help="initial stock (units)")
    parser.add_argument("--weeks", type=int, default=26, help="horizon in weeks")
    parser.add_argument("--repeats", type=int, default=15, help="timed solves per case")
    parser.add_argument("--page", type=Path, default=PAGE, help="markdown page to update")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    rows = []
    for dist, alpha in (("Poisson", 0.0), ("neg. binomial (alpha 0.3)", 0.3)):
        cat = sku(args.units, args.weeks, alpha)
        for name, (rules, goal) in RULE_SETS.items():
            med, best, cpu, states, n, faults = time_solve(cat, rules, args.weeks, args.repeats)
            print(
                f"[bench_dp] {dist:26s} {name[:40]:40s} median {med * 1e3:8.1f} ms "
                f"(cpu {cpu * 1e3:.1f} ms, {n} solves)",
                file=sys.stderr,
            )
            goal_s = ""
            if goal is not None:
                walls = "met" if best <= goal else "missed"
                cpus = "met" if cpu <= goal else "missed"
                goal_s = f"<= {goal * 1e3:g} ms: best wall {walls}, CPU {cpus}"
            rows.append(
                f"| {dist} | {name} | {rules.n_actions} | {states:,} | {med * 1e3:.1f} | "
                f"{best * 1e3:.1f} | {cpu * 1e3:.1f} | {n} | {faults:,.0f} | {goal_s} |"
            )
    body = "\n".join(
        [
            "## DP solve time",
            "",
            f"One SKU, {args.units:,} units x {args.weeks} weeks x 8 depths (the default ladder "
            f"0, 10, ..., 70 %), timed over up to {args.repeats} solves after a warm-up (at "
            f"least 3; fewer once 10 s are spent). Wall times on a shared machine swing with "
            f"other work (1-minute load average {load_before:.1f} before and "
            f"{os.getloadavg()[0]:.1f} after these runs); the CPU time of the process is the steadier figure, and the goal column "
            f"judges both. States = weeks x stock levels x the rule states "
            f"the active rules need. Page faults: minor faults of the process per timed "
            f"solve (fresh memory touched; the DP's work-array pool keeps them near 0).",
            "",
            "| demand | rules | actions | states | median wall ms | best wall ms | "
            "median CPU ms | solves | page faults per solve | goal (issue 5) |",
            "|---|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"Machine: {machine_line()}.",
            "",
            f"Produced by `.venv/bin/python benchmarks/bench_dp.py` "
            f"(`--units {args.units} --weeks {args.weeks} --repeats {args.repeats}`).",
        ]
    )
    write_section(args.page, "bench_dp", body, title="The exact DP: solve time and baselines")
    print(f"[bench_dp] wrote {args.page}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
