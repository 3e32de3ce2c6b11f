"""``deadstock train``, ``deadstock evaluate`` and ``deadstock compare``: thin shells over
:mod:`experiments.train`, :mod:`experiments.evaluate` and :mod:`experiments.compare`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ingest.errors import ConfigError
from ingest.io import write_text_atomic


def register(subparsers: Any) -> None:
    """Add the ``train``, ``evaluate`` and ``compare`` commands."""
    p = subparsers.add_parser(
        "train",
        help="train the masked-PPO policy (one per rule profile), evaluate it, log to MLflow",
        description=(
            "Train one masked-PPO policy per rule profile on synthetic SKUs, evaluate it on the "
            "suite against the DP optimum, and log metrics, plots and the pyfunc model "
            "(registered as deadstock-policy) to MLflow. Rerun with the same --out to resume."
        ),
    )
    p.add_argument("--config", help="TOML file: TrainConfig keys, PPO keys under [ppo]")
    p.add_argument("--seed", type=int, help="training seed (overrides [ppo] seed)")
    p.add_argument("--out", default="runs/ppo", help="checkpoints and models (default runs/ppo)")
    p.set_defaults(func=_train, tracked=True)

    e = subparsers.add_parser(
        "evaluate",
        help="evaluate agents on the suite with common random numbers; print the leaderboard",
    )
    e.add_argument(
        "--agents",
        default="ppo,dp,fluid,fixed,none",
        help="comma-separated: ppo, dp, fluid, fixed, none, ladder, cover, myopic",
    )
    e.add_argument(
        "--model",
        action="append",
        default=[],
        help="PPO source: a train --out folder, a model.zip or models:/... (repeat per seed)",
    )
    e.add_argument("--suite", default="standard", help="suite name (standard or smoke)")
    e.add_argument("--episodes", type=int, default=2000, help="demand paths per scenario")
    e.add_argument("--seed", type=int, default=2026, help="seed of the demand paths")
    e.add_argument("--json", dest="json_out", help="write the per-scenario rows as JSON here")
    e.add_argument("--no-log", action="store_true", help="do not log the results to MLflow")
    e.add_argument("--experiment", default="deadstock", help="MLflow experiment")
    e.set_defaults(func=_evaluate, tracked=True)

    c = subparsers.add_parser("compare", help="leaderboard across MLflow runs (mean ± CI)")
    c.add_argument("--experiment", default="deadstock", help="MLflow experiment")
    c.add_argument("--agents", default="", help="comma-separated agents to keep (default all)")
    c.add_argument(
        "--suite-version", default=None, help="only runs of this suite version (default current)"
    )
    c.add_argument("--plot", help="save a bar chart of the leaderboard to this PNG")
    c.set_defaults(func=_compare, tracked=True)


def _train(args: argparse.Namespace) -> int:
    from experiments.evaluate import format_leaderboard, leaderboard
    from experiments.train import load_config, train

    config = load_config(args.config, seed=args.seed)
    outcome = train(config, Path(args.out))
    if not outcome.rows.empty:
        print(format_leaderboard(leaderboard(outcome.rows)))
    print(f"run {outcome.run_id}; models in {outcome.out_dir}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from experiments.evaluate import (
        EvalConfig,
        PolicyFactory,
        baseline_factories,
        evaluate_suite,
        format_leaderboard,
        json_rows,
        leaderboard,
        log_rows,
        ppo_factory,
        seed_summary,
        select_agents,
    )
    from experiments.policy_model import load_policies
    from experiments.suite import get_suite

    names = select_agents([a.strip() for a in args.agents.split(",") if a.strip()])
    agents: dict[str, PolicyFactory] = {}
    seeds: dict[str, int | None] = {}
    base = baseline_factories()
    scenarios: tuple[str, ...] = ()
    for name in names:
        if name == "ppo":
            if not args.model:
                raise ConfigError("--agents includes ppo: give its policy with --model")
            covered = None
            for i, source in enumerate(args.model):
                label = "ppo" if len(args.model) == 1 else f"ppo/{i}"
                policies = load_policies(source)
                agents[label] = ppo_factory(policies)
                seeds[label] = i
                have = set(policies)
                covered = have if covered is None else covered & have
            suite = get_suite(args.suite)
            scenarios = tuple(s.name for s in suite if s.profile in (covered or set()))
            if not scenarios:
                raise ConfigError(f"--model holds no policy for any profile of {args.suite!r}")
            if len(scenarios) < len(suite):
                print(
                    f"evaluate: PPO covers profiles {sorted(covered or ())}; "
                    f"{len(suite) - len(scenarios)} scenario(s) of other profiles skipped",
                    file=sys.stderr,
                )
        elif name != "dp":
            agents[name] = base[name]
    config = EvalConfig(
        suite=args.suite, n_episodes=args.episodes, seed=args.seed, scenarios=scenarios
    )
    rows = evaluate_suite(config, agents, seeds=seeds)
    if "dp" not in names:
        rows = rows[rows["agent"] != "dp"].reset_index(drop=True)
    board = leaderboard(rows)
    print(format_leaderboard(board))
    summary = seed_summary(rows)
    if len(args.model) > 1 and not summary.empty:
        for r in summary.to_dict(orient="records"):
            print(
                f"{r['agent']} over {r['n_seeds']} seeds: median {r['median_pct']:.2f} "
                f"± {r['median_pct_ci']:.2f}, worst {r['worst_pct']:.2f} ± {r['worst_pct_ci']:.2f}"
            )
    if args.json_out:
        write_text_atomic(args.json_out, json.dumps(json_rows(rows), indent=1))
        print(f"rows written to {args.json_out}", file=sys.stderr)
    if not args.no_log:
        log_rows(rows, config, experiment=args.experiment, source=",".join(args.model) or None)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from experiments.compare import (
        CompareConfig,
        across_runs,
        format_pipelines,
        format_table,
        plot,
        search,
        search_pipelines,
    )
    from experiments.suite import SUITE_VERSION

    agents = tuple(a.strip() for a in args.agents.split(",") if a.strip())
    config = CompareConfig(
        experiment=args.experiment,
        suite_version=args.suite_version or SUITE_VERSION,
        agents=agents,
    )
    board = across_runs(search(config))
    pipelines = search_pipelines(config)
    if not board.empty or pipelines.empty:
        print(format_table(board))
    if not pipelines.empty:
        print(("\n" if not board.empty else "") + format_pipelines(pipelines))
    if args.plot:
        print(f"plot written to {plot(board, args.plot)}", file=sys.stderr)
    return 0
