"""The optimum under the shared limit, where it can be computed, against the bounds and the plans.

The budget suite's reference is the Lagrangian bound, an upper bound on the optimum. For the
categories whose joint stock grid fits (:func:`agents.joint_dp.joint_optimum`: the 3-SKU
ones), this computes the optimum itself by an exact DP over the joint stock, and reports
how loose the bounds are and how far the plans (and PPO, with ``--model``) are from the
optimum, on the same CRN paths as ``benchmarks/bench_budget.py`` (same ``--episodes`` and
``--seed``: the plans' means here equal its table's).

Usage::

    .venv/bin/python benchmarks/bench_budget_optimum.py
    .venv/bin/python benchmarks/bench_budget_optimum.py --model 'runs/bench_budget_weekly_prior/ppo_s{seed}' --train-seeds 0 1 2 3 4

Writes ``docs/benchmarks/budget_optimum.md`` (``--doc``).
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
from scipy import stats  # noqa: E402

from agents.joint_dp import MAX_JOINT_STATES, JointDPPolicy, joint_states, solve_joint  # noqa: E402
from agents.lagrangian import solve_weekly  # noqa: E402
from benchmarks._docpage import machine_line, markdown_table  # noqa: E402
from benchmarks._models import ppo_factories  # noqa: E402
from benchmarks.bench_ppo_suite import seed_list  # noqa: E402
from experiments.evaluate import (  # noqa: E402
    EvalConfig,
    baseline_factories,
    prepare,
    score_agent,
)
from experiments.suite import get_spec  # noqa: E402
from ingest.io import write_text_atomic  # noqa: E402

PLANS = ("lagrangian", "lagrangian_weekly")


def _half(x: np.ndarray) -> float:
    """Half-width of the 95 % CI of the mean of ``x``."""
    return float(stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))


def fits(scenario, max_states: int) -> bool:
    """True when the category's joint stock grid is small enough for the exact DP."""
    return int(np.prod(joint_states(scenario.catalog()), dtype=np.int64)) <= max_states


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--suite", default="budget")
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--max-states", type=int, default=MAX_JOINT_STATES)
    parser.add_argument(
        "--model",
        default=None,
        help="also play these PPO policies; with {seed} in it, one folder per --train-seeds seed",
    )
    parser.add_argument("--train-seeds", type=seed_list, nargs="+", default=[[0]])
    parser.add_argument("--doc", default=str(ROOT / "docs" / "benchmarks" / "budget_optimum.md"))
    args = parser.parse_args(argv)
    spec = get_spec(args.suite)
    names = tuple(s.name for s in spec.scenarios if fits(s, args.max_states))
    if not names:
        raise SystemExit(
            f"bench_budget_optimum.py: no category of suite {args.suite!r} has a joint stock "
            f"grid of at most {args.max_states:,} states"
        )
    agents = {k: f for k, f in baseline_factories(args.suite).items() if k in PLANS}
    seeds = list(dict.fromkeys(x for group in args.train_seeds for x in group))
    agents.update(ppo_factories(args.model, seeds, args.suite, script="bench_budget_optimum.py"))
    prep = prepare(EvalConfig(suite=args.suite, n_episodes=args.episodes, seed=args.seed,
                              scenarios=names))  # fmt: skip
    facts, rows = [], []
    for p in prep:
        cat = p.scenario
        print(f"bench_budget_optimum: {cat.name}", file=sys.stderr)
        t0 = time.process_time()
        joint = solve_joint(cat.catalog(), cat.rules, cat.horizon_weeks, cat.max_promoted,
                            max_states=args.max_states)  # fmt: skip
        cpu = time.process_time() - t0
        best = joint.value
        weekly = solve_weekly(cat.catalog(), p.solution).bound
        bound = p.solution.dual_value
        facts.append(
            {
                "scenario": cat.name,
                "joint_states": int(np.prod(joint_states(cat.catalog()), dtype=np.int64)),
                "horizon": cat.horizon_weeks,
                "max_promoted": cat.max_promoted,
                "optimum": best,
                "bound": bound,
                "weekly_bound": weekly,
                "optimum_pct_of_bound": 100 * best / bound,
                "optimum_pct_of_weekly_bound": 100 * best / weekly,
                "solve_cpu_s": cpu,
            }
        )
        played: dict[str, np.ndarray] = {}
        optimal = {"optimum": lambda scenario, solution, j=joint: JointDPPolicy(j)}
        for label, factory in {**optimal, **agents}.items():
            kept: list[pd.DataFrame] = []
            score_agent([p], factory, agent=label, n_episodes=args.episodes, keep=kept)
            x = played[label] = kept[0]["objective"].to_numpy(float)
            d = played["optimum"] - x  # same paths
            rows.append(
                {
                    "scenario": cat.name,
                    "agent": label,
                    "mean_objective": float(x.mean()),
                    "pct_of_optimum": 100 * float(x.mean()) / best,
                    "ci": 100 * _half(x) / best,
                    "pct_of_bound": 100 * float(x.mean()) / bound,
                    "optimum_policy_minus_agent_pct": 100 * float(d.mean()) / best,
                    "paired_ci": 100 * _half(d) / best if label != "optimum" else 0.0,
                }
            )
    facts_t, rows_t = pd.DataFrame(facts), pd.DataFrame(rows)
    skipped = [s.name for s in spec.scenarios if s.name not in names]
    lines = [
        "# The optimum under the shared limit, where an exact DP reaches it",
        "",
        f"Produced by `benchmarks/bench_budget_optimum.py {shlex.join(argv or sys.argv[1:])}`; "
        f"{machine_line()}.",
        "",
        f"Suite `{spec.name}` ({spec.version}). `optimum`: the exact DP over the category's "
        "joint stock (`agents.joint_dp.joint_optimum`), the best any policy that respects the "
        "limit can do in expectation; `bound`: the suite's reference (the Lagrangian dual value "
        "with one multiplier); `weekly_bound`: one multiplier per week. Categories whose joint "
        f"grid exceeds {args.max_states:,} states are left out: {', '.join(skipped) or 'none'}.",
        "",
        markdown_table(facts_t),
        "",
        f"The optimal policy (`optimum`: the joint DP's own, `agents.joint_dp.JointDPPolicy`), "
        f"the plans and PPO (where played) on {args.episodes} CRN paths per category, seed "
        f"{args.seed} (the paths of `benchmarks/bench_budget.py` with the same options): mean "
        "objective, its % of the optimum with the 95 % CI of the per-path totals (the optimum "
        "is exact; the optimal policy's row checks that it earns its value), its % of the "
        "bound, and the optimal policy's lead over it on the same paths with the paired CI.",
        "",
        markdown_table(rows_t),
        "",
    ]
    text = "\n".join(lines)
    write_text_atomic(Path(args.doc), text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
