"""A shared promotion limit: every agent of the ``budget`` suite against the Lagrangian bound.

Writes ``docs/benchmarks/budget.md`` and the "Shared budget" results of ``docs/agents.md``.

Usage::

    .venv/bin/python benchmarks/bench_budget.py                    # 2,000 paths per category
    .venv/bin/python benchmarks/bench_budget.py --episodes 200 --suite budget-smoke

Every agent plays the same demand paths per category (common random numbers), so the paired
difference of two agents on a category has a CI from the per-path differences; the suite
mean's CI adds the categories' variances (independent paths). The bound is not a policy, so
an agent's own % of it has the (wider) CI of its per-path totals.

No PPO is trained: a policy for the category that sees the remaining promotion slots is not
built yet (``docs/agents.md``, "Shared budget").
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from agents.lagrangian import weekly_bound  # noqa: E402
from benchmarks._docpage import markdown_table, write_section  # noqa: E402
from experiments import agent_plots  # noqa: E402
from experiments.evaluate import (  # noqa: E402
    EvalConfig,
    baseline_factories,
    leaderboard,
    prepare,
    score,
    score_agent,
)
from experiments.suite import get_spec  # noqa: E402
from ingest.io import write_frame_atomic, write_text_atomic  # noqa: E402

PLAN = "lagrangian"
"""The agent every other one is paired with."""


def run(suite: str, episodes: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Rows of every agent, paired differences to :data:`PLAN`, and per-category facts."""
    config = EvalConfig(suite=suite, n_episodes=episodes, seed=seed)
    t0 = time.perf_counter()
    prep = prepare(config, progress=True)
    solve_s = time.perf_counter() - t0
    totals: dict[str, list[pd.DataFrame]] = {}
    rows = [score(p.reference_totals, p, agent="lagrangian_bound") for p in prep]
    for label, factory in baseline_factories(suite).items():
        keep: list[pd.DataFrame] = []
        rows += score_agent(prep, factory, agent=label, n_episodes=episodes, keep=keep)
        totals[label] = keep
    pairs = []
    for label in totals:
        if label == PLAN:
            continue
        for i, p in enumerate(prep):
            d = totals[PLAN][i]["objective"].to_numpy(float) - totals[label][i][
                "objective"
            ].to_numpy(float)
            v = p.reference_value
            half = stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size)
            pairs.append(
                {
                    "scenario": p.scenario.name,
                    "agent": label,
                    "plan_minus_agent_pct": 100 * d.mean() / v,
                    "ci": 100 * half / v,
                    "var": (100 * d.std(ddof=1) / v) ** 2 / d.size,
                }
            )
    weekly = []
    for p in prep:
        s = p.scenario
        weekly.append(
            weekly_bound(
                s.catalog(), s.rules, s.horizon_weeks, s.max_promoted, p.solution.multiplier
            )[0]
        )
    plan_mean = {
        p.scenario.name: float(totals[PLAN][i]["objective"].mean()) for i, p in enumerate(prep)
    }
    facts = pd.DataFrame(
        [
            {
                "scenario": p.scenario.name,
                "skus": len(p.scenario.members),
                "max_promoted": p.scenario.max_promoted,
                "horizon": p.scenario.horizon_weeks,
                "multiplier": p.solution.multiplier,
                "bound": p.solution.dual_value,
                "unconstrained": p.solution.unconstrained_value,
                "limit_costs_pct": 100
                * (1 - p.solution.dual_value / p.solution.unconstrained_value),
                "weekly_bound": weekly[i],
                f"{PLAN}_pct_of_weekly": 100 * plan_mean[p.scenario.name] / weekly[i],
            }
            for i, p in enumerate(prep)
        ]
    )
    facts.attrs["solve_s"] = solve_s
    return pd.DataFrame(rows), pd.DataFrame(pairs), facts


def suite_pairs(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per agent: the plan's suite-mean lead over it (points of the bound) with its 95 % CI,
    and the categories where the plan is ahead beyond the CI."""
    out = []
    for label, g in pairs.groupby("agent", sort=False):
        n = len(g)
        out.append(
            {
                "agent": label,
                f"{PLAN}_minus_agent": float(g["plan_minus_agent_pct"].mean()),
                "ci": float(1.96 * np.sqrt(g["var"].sum()) / n),
                "plan_ahead": int((g["plan_minus_agent_pct"] - g["ci"] > 0).sum()),
                "n_scenarios": n,
            }
        )
    return pd.DataFrame(out)


def render(
    rows: pd.DataFrame,
    pairs: pd.DataFrame,
    facts: pd.DataFrame,
    header: list[str],
    *,
    doc: Path,
    agents_doc: Path,
    img: Path,
) -> str:
    """Write the benchmark page and the results part of the agents doc's budget section."""
    board = leaderboard(rows)
    img.mkdir(parents=True, exist_ok=True)
    agent_plots.leaderboard_bars(board, img / "budget_leaderboard.png", reference="bound")
    per = rows.pivot_table(index="scenario", columns="agent", values="pct_of_reference", sort=False)
    ci = rows[rows["agent"] == PLAN].set_index("scenario")["pct_of_reference_ci"]
    per.insert(0, f"{PLAN}_ci", ci)
    per = per.reset_index()[
        [
            "scenario",
            PLAN,
            f"{PLAN}_ci",
            *[c for c in board["agent"] if c not in (PLAN, "lagrangian_bound")],
        ]
    ]
    mean_plan = float(board.set_index("agent").loc[PLAN, "mean_pct"])
    body = [
        *header,
        "",
        "### The categories and what the limit costs",
        "",
        "`bound` is the Lagrangian dual value with one multiplier (100 %), `unconstrained` "
        "the SKUs' own DPs without the limit, `limit_costs_pct` how much lower the bound is; "
        "`weekly_bound` a tighter bound with one multiplier per week "
        "(`agents.lagrangian.weekly_bound`, 40 projected subgradient steps from the single "
        "multiplier), and the Lagrangian plan's % of it: the part of the plan's gap to 100 % "
        "that is the single multiplier's looseness, not the plan's.",
        "",
        markdown_table(facts),
        "",
        "### Leaderboard (% of the Lagrangian bound)",
        "",
        markdown_table(board),
        "",
        "![leaderboard](../img/budget_leaderboard.png)",
        "",
        "### Per category (% of the bound)",
        "",
        f"`{PLAN}_ci`: the 95 % CI of the plan's own % (per-path totals; the bound is exact).",
        "",
        markdown_table(per),
        "",
        "### The Lagrangian plan against each agent (same paths)",
        "",
        f"Suite mean of `{PLAN}` minus the agent (points of the bound), with the paired 95 % "
        "CI, and the categories where the plan is ahead beyond its CI:",
        "",
        markdown_table(suite_pairs(pairs)),
        "",
        f"Stretch target of the issue (PPO within 2 % of the bound on average): no PPO was "
        f"trained. The non-learning Lagrangian plan itself reaches {mean_plan:.2f} % on "
        f"average, {'within' if mean_plan >= 98 else 'not within'} 2 % of the bound.",
        "",
    ]
    text = "# A shared promotion limit: agents against the Lagrangian bound\n\n" + "\n".join(body)
    write_text_atomic(doc, text)
    section = "\n".join(line.replace("../img/", "img/") for line in body)
    write_section(agents_doc, "budget-report", section, title="Agents")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--suite", default="budget")
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench_budget"))
    parser.add_argument("--doc", default=str(ROOT / "docs" / "benchmarks" / "budget.md"))
    parser.add_argument("--agents-doc", default=str(ROOT / "docs" / "agents.md"))
    parser.add_argument("--img", default=str(ROOT / "docs" / "img"))
    parser.add_argument("--note", default="", help="a line about the machine's load")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    spec = get_spec(args.suite)
    t0 = time.perf_counter()
    rows, pairs, facts = run(args.suite, args.episodes, args.seed)
    wall = time.perf_counter() - t0
    write_frame_atomic(rows, out / "rows.csv")
    write_frame_atomic(pairs, out / "pairs.csv")
    write_frame_atomic(facts, out / "facts.csv")
    header = [
        f"Produced by `benchmarks/bench_budget.py {' '.join(argv or sys.argv[1:])}` on "
        f"{platform.node() or 'unknown host'} ({os.cpu_count()} CPUs), suite `{spec.name}` "
        f"({spec.version}), {args.episodes} CRN demand paths per category, seed {args.seed}.",
        "",
        args.note,
        "",
        f"Wall time: {wall:.0f} s, of which {facts.attrs['solve_s']:.0f} s solving the "
        f"Lagrangian relaxations (bisection, every SKU's DP per step).",
    ]
    print(
        render(
            rows,
            pairs,
            facts,
            header,
            doc=Path(args.doc),
            agents_doc=Path(args.agents_doc),
            img=Path(args.img),
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
