"""A shared promotion limit: every agent of the ``budget`` suite against the Lagrangian bound.

Writes ``docs/benchmarks/budget.md`` and the "Shared budget" results of ``docs/agents.md``.

Usage::

    .venv/bin/python benchmarks/bench_budget.py                    # 2,000 paths per category
    .venv/bin/python benchmarks/bench_budget.py --episodes 200 --suite budget-smoke

Every agent plays the same demand paths per category (common random numbers), so the paired
difference of two agents on a category has a CI from the per-path differences; the suite
mean's CI adds the categories' variances (independent paths). The bound is not a policy, so
an agent's own % of it has the (wider) CI of its per-path totals.

PPO: one masked-PPO policy per rule profile of the suite, trained here with ONE training seed
(``--train-seed``) for ``--train-steps`` SKU decisions per profile in the sequential allocation
env (:mod:`envs.budget_seq`), with a learning curve every ``--curve-every`` steps on the
suite's categories; ``--model DIR`` plays the policies of an earlier run instead
(``<DIR>/budget-<profile>/model.zip``, as ``deadstock train --suite budget`` writes);
``--train-steps 0`` plays no PPO.

    nice -n 10 .venv/bin/python benchmarks/bench_budget.py --train-steps 400000

``--train-seeds 0 1 2 3 4 --jobs 2`` trains two seeds at a time, one process each.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from scipy import stats  # noqa: E402

from agents.lagrangian import solve_weekly  # noqa: E402
from agents.policy import Policy  # noqa: E402
from agents.ppo import PPOConfig, PPOPolicy, train_ppo  # noqa: E402
from benchmarks._docpage import markdown_table, write_section  # noqa: E402
from benchmarks.bench_ppo_suite import seed_list, shown_command  # noqa: E402
from experiments import agent_plots  # noqa: E402
from experiments.curves import CurveCallback  # noqa: E402
from experiments.evaluate import (  # noqa: E402
    EvalConfig,
    baseline_factories,
    leaderboard,
    ppo_factory,
    prepare,
    score,
    score_agent,
    seed_summary,
)
from experiments.policy_model import load_policies  # noqa: E402
from experiments.suite import RULE_PROFILES, catalog_fn_for, get_spec  # noqa: E402
from experiments.train import TrainConfig, ppo_for_profile  # noqa: E402
from ingest.errors import ConfigError  # noqa: E402
from ingest.io import write_frame_atomic, write_text_atomic  # noqa: E402

PLAN = "lagrangian"
"""The agent every other one is paired with."""
WEEKLY = "lagrangian_weekly"
"""The plan with one multiplier per week (:func:`agents.lagrangian.solve_weekly`): the
strongest planner, and PPO's prior; the PPO rows and the single plan are paired with it too."""
PLANS = (PLAN, WEEKLY)


def _learns(label: str) -> bool:
    """True for a PPO row (``ppo``, ``ppo_raw``, ``ppo/s<seed>``, ``ppo_raw/s<seed>``)."""
    return label.split("/")[0] in ("ppo", "ppo_raw")


def train_policies(
    suite: str,
    steps: int,
    seed: int,
    out: Path,
    curve_every: int,
    curve_episodes: int,
    overrides: dict | None = None,
) -> tuple[dict[str, Policy], pd.DataFrame, dict[str, float]]:
    """One PPO policy per profile of ``suite`` (one training seed), its learning curve and
    training seconds; an existing checkpoint under ``out/<key>`` is resumed."""
    spec = get_spec(suite)
    keys = [spec.policy_key(p) for p in spec.profiles]
    config = TrainConfig(
        suite=suite,
        ppo=replace(PPOConfig(seed=seed), **(overrides or {})),
        ppo_given=tuple(overrides or {}),  # a --set value is kept even at the default
        timesteps=dict.fromkeys(keys, steps),
        log_model=False,
        curve_episodes=max(curve_episodes, 2),
    )
    policies: dict[str, Policy] = {}
    curve: list[dict] = []
    seconds: dict[str, float] = {}
    for profile in spec.profiles:
        key = spec.policy_key(profile)
        names = tuple(s.name for s in spec.scenarios if s.profile == profile)
        prep = prepare(EvalConfig(suite=suite, n_episodes=curve_episodes, scenarios=names))
        cb = CurveCallback(
            key, prep, curve_every, curve_episodes, curve, log_to_mlflow=False, suite=suite
        )
        result = train_ppo(
            ppo_for_profile(config, key),
            RULE_PROFILES[profile],
            checkpoint_dir=out / key,
            callbacks=[cb],
            catalog_fn=catalog_fn_for(spec, profile),
        )
        policies[key] = PPOPolicy(result.model)
        seconds[key] = result.wall_seconds - cb.eval_seconds
    return policies, pd.DataFrame(curve), seconds


def _train_seed(job: tuple) -> tuple[dict[str, Policy], pd.DataFrame, dict[str, float]]:
    """:func:`train_policies` in a worker process (one thread, as in the main process)."""
    torch.set_num_threads(1)
    return train_policies(*job)


def ppo_label(family: str, seed: int | None) -> str:
    """``ppo`` for a single training seed (``seed=None``), ``ppo/s<seed>`` for several."""
    return family if seed is None else f"{family}/s{seed}"


def run(
    suite: str,
    episodes: int,
    seed: int,
    ppo: dict[int | None, dict[str, Policy]] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Rows of every agent, paired differences to :data:`PLAN`, and per-category facts.

    ``ppo`` maps a training seed (``None`` when there is one) to its policies."""
    config = EvalConfig(suite=suite, n_episodes=episodes, seed=seed)
    t0 = time.perf_counter()
    prep = prepare(config, progress=True)
    solve_s = time.perf_counter() - t0
    totals: dict[str, list[pd.DataFrame]] = {}
    rows = [score(p.reference_totals, p, agent="lagrangian_bound") for p in prep]
    agents: dict[str, tuple[Any, int | None]] = {
        k: (f, None) for k, f in baseline_factories(suite).items()
    }
    for s, policies in (ppo or {}).items():
        # ppo: a policy on the Lagrangian prior is guarded per category by the plan
        # (agents.budget_ppo.GuardedCategoryPolicy); ppo_raw: the network alone
        agents[ppo_label("ppo", s)] = (ppo_factory(policies, suite), s)
        agents[ppo_label("ppo_raw", s)] = (ppo_factory(policies, suite, guard=False), s)
    for label, (factory, s) in agents.items():
        keep: list[pd.DataFrame] = []
        rows += score_agent(prep, factory, agent=label, n_episodes=episodes, keep=keep, seed=s)
        totals[label] = keep
    pairs = []
    for plan in (p for p in PLANS if p in totals):
        for label in totals:
            # every agent against the single plan; against the weekly one, PPO and that plan
            wanted = plan == PLAN or label == PLAN or _learns(label)
            if label == plan or not wanted:
                continue
            for i, p in enumerate(prep):
                d = totals[plan][i]["objective"].to_numpy(float) - totals[label][i][
                    "objective"
                ].to_numpy(float)
                v = p.reference_value
                half = stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size)
                pairs.append(
                    {
                        "plan": plan,
                        "scenario": p.scenario.name,
                        "agent": label,
                        "plan_minus_agent_pct": 100 * d.mean() / v,
                        "ci": 100 * half / v,
                        "var": (100 * d.std(ddof=1) / v) ** 2 / d.size,
                    }
                )
    # the weekly plan's prices (solved by its factory above, or here when it was not played)
    weekly = [solve_weekly(p.scenario.catalog(), p.solution).bound for p in prep]
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


def suite_pairs(pairs: pd.DataFrame, plan: str = PLAN) -> pd.DataFrame:
    """Per agent: ``plan``'s suite-mean lead over it (points of the bound) with its 95 % CI,
    and the categories where the plan, or the agent, is ahead beyond the CI."""
    out = []
    mine = pairs[pairs["plan"] == plan] if "plan" in pairs else pairs
    for label, g in mine.groupby("agent", sort=False):
        n = len(g)
        out.append(
            {
                "agent": label,
                f"{plan}_minus_agent": float(g["plan_minus_agent_pct"].mean()),
                "ci": float(1.96 * np.sqrt(g["var"].sum()) / n),
                "plan_ahead": int((g["plan_minus_agent_pct"] - g["ci"] > 0).sum()),
                "agent_ahead": int((g["plan_minus_agent_pct"] + g["ci"] < 0).sum()),
                "n_scenarios": n,
            }
        )
    return pd.DataFrame(out)


def weekly_lines(pairs: pd.DataFrame) -> list[str]:
    """The weekly plan paired with the single plan and PPO (empty when it was not played)."""
    if "plan" not in pairs or not (pairs["plan"] == WEEKLY).any():
        return []
    return [
        "### The weekly plan against the single plan and PPO (same paths)",
        "",
        f"The same for `{WEEKLY}` (PPO's prior when trained with `budget_prior = "
        '"lagrangian_weekly"`): a negative lead is the agent ahead of the weekly plan.',
        "",
        markdown_table(suite_pairs(pairs, WEEKLY)),
        "",
    ]


def curve_lines(curve: pd.DataFrame, n_paths: int) -> list[str]:
    """The learning-curve table (empty when no PPO was trained here)."""
    if curve.empty:
        return []
    cols = ["profile", "timesteps", "train_seconds", "pct_mean", "pct_min"]
    table = curve[(["seed"] if "seed" in curve else []) + cols]
    return [
        f"### PPO's learning curve (% of the bound on the profile's categories, {n_paths} "
        "paths each)",
        "",
        markdown_table(table),
        "",
    ]


def target_line(board: pd.DataFrame, mean_plan: float) -> str:
    """The issue's stretch target, met or missed by how much."""
    by = board.set_index("agent")
    plan = (
        f"The non-learning Lagrangian plan reaches {mean_plan:.2f} % on average, "
        f"{'within' if mean_plan >= 98 else 'not within'} 2 % of the bound."
    )
    if WEEKLY in by.index:
        weekly = float(by.loc[WEEKLY, "mean_pct"])
        plan += (
            f" With one price per week (`{WEEKLY}`) it reaches {weekly:.2f} %, "
            f"{'within' if weekly >= 98 else 'not within'} 2 % of the bound."
        )
    ppo_rows = [a for a in by.index if a == "ppo" or str(a).startswith("ppo/s")]
    if not ppo_rows:
        return f"Stretch target of the issue (PPO within 2 % of the bound on average): no PPO was played. {plan}"
    ppo = float(by.loc[ppo_rows, "mean_pct"].astype(float).mean())
    verdict = "met" if ppo >= 98 else f"missed by {98 - ppo:.2f} points"
    over = f" and {len(ppo_rows)} training seeds" if len(ppo_rows) > 1 else ""
    weekly_gap = (
        f", {ppo - float(by.loc[WEEKLY, 'mean_pct']):+.2f} against the weekly plan"
        if WEEKLY in by.index
        else ""
    )
    return (
        f"Stretch target of the issue (PPO within 2 % of the bound on average): {verdict} "
        f"(PPO {ppo:.2f} % on average over the categories{over}, {ppo - mean_plan:+.2f} "
        f"points against the Lagrangian plan{weekly_gap}). {plan}"
    )


def render(
    rows: pd.DataFrame,
    pairs: pd.DataFrame,
    facts: pd.DataFrame,
    header: list[str],
    *,
    curve: pd.DataFrame,
    curve_episodes: int = 0,
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
    seeds = seed_summary(rows)
    across = (
        [
            "### PPO across training seeds (mean ± 95 % CI across seeds)",
            "",
            markdown_table(seeds),
            "",
        ]
        if len(seeds) and int(seeds["n_seeds"].max()) > 1
        else []
    )
    body = [
        *header,
        "",
        "### The categories and what the limit costs",
        "",
        "`bound` is the Lagrangian dual value with one multiplier (100 %), `unconstrained` "
        "the SKUs' own DPs without the limit, `limit_costs_pct` how much lower the bound is; "
        "`weekly_bound` a tighter bound with one multiplier per week "
        "(`agents.lagrangian.weekly_bound`, 40 projected subgradient steps from the single "
        "multiplier; its multipliers price the `lagrangian_weekly` plan), and the Lagrangian "
        "plan's % of it: the part of the plan's gap to 100 % that is the single multiplier's "
        "looseness, not the plan's.",
        "",
        markdown_table(facts),
        "",
        "### Leaderboard (% of the Lagrangian bound)",
        "",
        markdown_table(board),
        "",
        "![leaderboard](../img/budget_leaderboard.png)",
        "",
        *across,
        "### Per category (% of the bound)",
        "",
        f"`{PLAN}_ci`: the 95 % CI of the plan's own % (per-path totals; the bound is exact).",
        "",
        markdown_table(per),
        "",
        "### The Lagrangian plan against each agent (same paths)",
        "",
        f"Suite mean of `{PLAN}` minus the agent (points of the bound), with the paired 95 % "
        "CI, and the categories where the plan (`plan_ahead`) or the agent (`agent_ahead`) is "
        "ahead beyond its CI:",
        "",
        markdown_table(suite_pairs(pairs)),
        "",
        *weekly_lines(pairs),
        *curve_lines(curve, curve_episodes),
        target_line(board, mean_plan),
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
    parser.add_argument("--train-steps", type=int, default=400_000, help="per profile; 0 = no PPO")
    parser.add_argument(
        "--train-seeds",
        type=seed_list,
        nargs="+",
        default=[[0]],
        help="training seeds, spaced or comma-separated: 0 1 2 or 0,1,2",
    )
    parser.add_argument("--curve-every", type=int, default=100_000)
    parser.add_argument("--curve-episodes", type=int, default=200)
    parser.add_argument(
        "--model",
        default=None,
        help="play the PPO policies of this folder instead of training; with {seed} in it, "
        "one folder per --train-seeds seed (runs/bench_budget/ppo_s{seed})",
    )
    parser.add_argument("--set", action="append", default=[], help="PPO override key=value")
    parser.add_argument(
        "--jobs", type=int, default=1, help="training seeds trained at once (one process each)"
    )
    args = parser.parse_args(argv)
    if args.jobs < 1:
        raise SystemExit(f"bench_budget.py --jobs {args.jobs}: expected >= 1")
    train_seeds = list(dict.fromkeys(x for group in args.train_seeds for x in group))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    spec = get_spec(args.suite)
    torch.set_num_threads(1)  # one thread trains this network size fastest (agents.ppo)
    t0 = time.perf_counter()
    ppo: dict[int | None, dict[str, Policy]] = {}
    curve: pd.DataFrame = pd.DataFrame()
    seconds: dict[str, float] = {}
    if args.model:
        several = "{seed}" in args.model and len(train_seeds) > 1
        seeds = train_seeds if "{seed}" in args.model else [None]
        try:
            ppo = {
                (s if several else None): dict(load_policies(args.model.replace("{seed}", str(s))))
                for s in seeds
            }
        except ConfigError as err:
            raise SystemExit(f"bench_budget.py --model: {err}") from None
    elif args.train_steps > 0:
        overrides = {k: json.loads(v) for k, _, v in (item.partition("=") for item in args.set)}
        curves = []
        jobs = [
            (args.suite, args.train_steps, s, out / f"ppo_s{s}", args.curve_every,
             args.curve_episodes, overrides)
            for s in train_seeds
        ]  # fmt: skip
        print(
            f"bench_budget: training seeds {train_seeds} on {args.jobs} processes", file=sys.stderr
        )
        if args.jobs > 1 and len(jobs) > 1:
            with ProcessPoolExecutor(max_workers=args.jobs) as workers:
                trained = list(workers.map(_train_seed, jobs))
        else:
            trained = [train_policies(*job) for job in jobs]
        for s, (policies, c, secs) in zip(train_seeds, trained, strict=True):
            ppo[s if len(train_seeds) > 1 else None] = policies
            curves.append(c.assign(seed=s) if len(train_seeds) > 1 else c)
            seconds.update({ppo_label(k, s if len(train_seeds) > 1 else None): v
                            for k, v in secs.items()})  # fmt: skip
        curve = pd.concat(curves, ignore_index=True)
        write_frame_atomic(curve, out / "curve.csv")
    rows, pairs, facts = run(args.suite, args.episodes, args.seed, ppo)
    wall = time.perf_counter() - t0
    write_frame_atomic(rows, out / "rows.csv")
    write_frame_atomic(pairs, out / "pairs.csv")
    write_frame_atomic(facts, out / "facts.csv")
    header = [
        f"Produced by `benchmarks/bench_budget.py {shlex.join(shown_command(argv or sys.argv[1:]))}` on "
        f"{platform.node() or 'unknown host'} ({os.cpu_count()} CPUs), suite `{spec.name}` "
        f"({spec.version}), {args.episodes} CRN demand paths per category, seed {args.seed}.",
        "",
        args.note,
        "",
        f"Wall time: {wall:.0f} s, of which {facts.attrs['solve_s']:.0f} s solving the "
        f"Lagrangian relaxations (bisection, every SKU's DP per step).",
    ]
    if ppo:
        which = (
            f"ONE training seed ({train_seeds[0]})"
            if len(train_seeds) == 1
            else f"training seeds {train_seeds} (rows `ppo/s<seed>`)"
        )
        source = f"the policies of `{args.model}` ({which})" if args.model else (
            f"{which}, {args.train_steps:,} SKU decisions per "
            f"profile; training time per policy (learning-curve evaluations left out): "
            + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items())
        )  # fmt: skip
        header += ["", f"PPO: {source}."]
    print(
        render(
            rows,
            pairs,
            facts,
            header,
            curve=curve,
            curve_episodes=args.curve_episodes,
            doc=Path(args.doc),
            agents_doc=Path(args.agents_doc),
            img=Path(args.img),
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
