"""``deadstock train``, ``deadstock evaluate`` and ``deadstock compare``: thin shells over
:mod:`experiments.train`, :mod:`experiments.evaluate` and :mod:`experiments.compare`."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from app.cli.common import (
    CONFIG_HELP,
    NO_TRACK_HELP,
    SEED_HELP,
    add_command,
    build,
    comma_list,
    config_arg,
)
from ingest.errors import ConfigError
from ingest.io import write_text_atomic

log = logging.getLogger(__name__)
TRAIN = "experiments.train:TrainConfig"
EVAL = "experiments.evaluate:EvalConfig"
DEFAULT_AGENTS = "ppo,dp,prior,fluid,fixed,none"
"""``--agents`` of ``evaluate`` on a standard-market suite when not given (elsewhere: all)."""


def register(subparsers: Any) -> None:
    """Add the ``train``, ``evaluate`` and ``compare`` commands."""
    p = add_command(
        subparsers,
        "train",
        help="train the masked-PPO policy (one per rule profile), evaluate it, log to MLflow",
        description=(
            "Train one masked-PPO policy per rule profile on synthetic SKUs, evaluate it on the "
            "suite against the DP optimum, and log metrics, plots and the pyfunc model "
            "(registered as deadstock-policy) to MLflow. Rerun with the same --out to resume."
        ),
    )
    p.add_argument(
        "--config", help=f"{CONFIG_HELP}: TrainConfig keys, PPO keys under [ppo], [timesteps]"
    )
    config_arg(p, "--seed", config=TRAIN, key="ppo.seed", type=int, help="training seed")
    config_arg(
        p,
        "--device",
        config=TRAIN,
        key="ppo.device",
        help="torch device: cpu, cuda, cuda:N, or auto (CUDA when a GPU is visible)",
    )
    config_arg(
        p,
        "--suite",
        config=TRAIN,
        key="suite",
        help="suite whose market the policies train in and are evaluated on (see evaluate "
        "--list-suites)",
    )
    p.add_argument(
        "--keep-snapshots",
        action="store_const",
        const=True,
        default=None,
        help="keep every checkpoint of each policy (<out>/<profile>/snapshots); evaluate "
        "--model <out> then also plays ppo_snap, the guard choosing per SKU among the late "
        "snapshots",
    )
    p.add_argument(
        "--members",
        type=int,
        default=None,
        help="networks trained per policy, each from a seed of its own (default 1); with two "
        "or more, evaluate --model <out> also plays ppo_ens, the guard choosing per SKU among "
        "them",
    )
    p.add_argument("--out", default="runs/ppo", help="checkpoints and models")
    p.set_defaults(func=_train, uses_torch=True, tracked=True)

    e = add_command(
        subparsers,
        "evaluate",
        help="evaluate agents on the suite with common random numbers; print the leaderboard",
        description=(
            "Evaluate agents on the scenario suite, every agent on the same demand paths "
            "(common random numbers), against the exact DP optimum; print the leaderboard "
            "(median and worst % of the DP) and log it to MLflow."
        ),
    )
    e.add_argument("--config", help=f"{CONFIG_HELP}: EvalConfig keys")
    e.add_argument(
        "--agents",
        default=None,
        help=f"comma-separated agent names, or 'all' (every agent of the suite, ppo when --model "
        f"is given). Standard suites: ppo, dp, prior, fluid, fixed, none, ladder, cover, myopic "
        f"(default {DEFAULT_AGENTS}); learning suites: ppo, oracle, dp_ce, dp_resolve, thompson, qmdp, lookahead, "
        f"prior, fluid, none, ladder, cover, myopic (default all); memory suites: ppo, "
        f"augmented_dp, dp_blind, prior, fluid, myopic, cover, ladder, none (default all)",
    )
    e.add_argument(
        "--list-suites", action="store_true", help="print the suites, one line each, and exit"
    )
    e.add_argument(
        "--model",
        action="append",
        default=[],
        help="PPO source: a train --out folder, a model.zip or models:/... (repeat per seed)",
    )
    config_arg(e, "--suite", config=EVAL, key="suite", help="suite name (see --list-suites)")
    config_arg(
        e, "--episodes", config=EVAL, key="n_episodes", type=int, help="demand paths per scenario"
    )
    config_arg(e, "--seed", config=EVAL, key="seed", type=int, help=f"{SEED_HELP} of the paths")
    e.add_argument("--out", help="write the per-scenario rows as JSON here")
    e.add_argument("--no-track", action="store_true", help=NO_TRACK_HELP)
    e.add_argument("--experiment", default="deadstock", help="MLflow experiment")
    e.set_defaults(func=_evaluate, uses_torch=True, tracked=True)

    c = add_command(
        subparsers,
        "compare",
        help="leaderboard across MLflow runs (mean ± CI)",
        description="Read the evaluation metrics of finished MLflow runs and print one "
        "leaderboard across them (mean and CI over seeds), optionally as a bar chart.",
    )
    c.add_argument("--experiment", default="deadstock", help="MLflow experiment")
    c.add_argument("--agents", default="", help="comma-separated agents to keep (all when empty)")
    c.add_argument("--suite-version", help="only runs of this suite version (default: current)")
    c.add_argument("--plot", help="save a bar chart of the leaderboard to this PNG")
    c.set_defaults(func=_compare, tracked=True)


def _train(args: argparse.Namespace) -> int:
    from experiments.evaluate import format_leaderboard, leaderboard
    from experiments.train import TrainConfig, train

    config = build(
        TrainConfig,
        args,
        {
            "ppo.seed": args.seed,
            "ppo.device": args.device,
            "suite": args.suite,
            "keep_snapshots": args.keep_snapshots,
            "members": args.members,
        },
    )
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
        reference_agent,
        seed_summary,
        select_agents,
        suite_lines,
    )
    from experiments.policy_model import load_members, load_policies, load_snapshots
    from experiments.suite import get_spec

    if args.list_suites:
        print("\n".join(suite_lines()))
        return 0
    base_config = build(EvalConfig, args, {"suite": args.suite})
    spec = get_spec(base_config.suite)
    given = args.agents or (DEFAULT_AGENTS if spec.market == "standard" else "all")
    names = select_agents(list(comma_list(given) or ()), base_config.suite)
    if "all" in (comma_list(given) or ()) and not args.model:
        names = [n for n in names if n != "ppo"]
    reference = reference_agent(base_config.suite)
    agents: dict[str, PolicyFactory] = {}
    seeds: dict[str, int | None] = {}
    base = baseline_factories(base_config.suite)
    scenarios: tuple[str, ...] = ()
    for name in names:
        if name == "ppo":
            if not args.model:
                raise ConfigError("--agents includes ppo: give its policy with --model")
            covered = None
            for i, source in enumerate(args.model):
                label = "ppo" if len(args.model) == 1 else f"ppo/{i}"
                policies = load_policies(source)
                agents[label] = ppo_factory(policies, base_config.suite)
                seeds[label] = i
                # kept snapshots (train --keep-snapshots): the guard choosing among them too
                snapshots = load_snapshots(source) if spec.market != "budget" else {}
                if snapshots:
                    snap = label.replace("ppo", "ppo_snap", 1)
                    agents[snap] = ppo_factory(policies, base_config.suite, alternatives=snapshots)
                    seeds[snap] = i
                # ensemble members (train --members): the guard choosing among them
                members = load_members(source) if spec.market != "budget" else {}
                if members:
                    ens = label.replace("ppo", "ppo_ens", 1)
                    agents[ens] = ppo_factory(policies, base_config.suite, alternatives=members)
                    seeds[ens] = i
                have = {p for p in spec.profiles if spec.policy_key(p) in policies}
                covered = have if covered is None else covered & have
            scenarios = tuple(s.name for s in spec.scenarios if s.profile in (covered or set()))
            if not scenarios:
                raise ConfigError(
                    f"--model holds no policy for any profile of {base_config.suite!r} "
                    f"(keys {[spec.policy_key(p) for p in spec.profiles]})"
                )
            if len(scenarios) < len(spec.scenarios):
                log.warning(
                    "evaluate: PPO covers profiles %s; %d scenario(s) of other profiles skipped",
                    sorted(covered or ()),
                    len(spec.scenarios) - len(scenarios),
                )
        elif name != reference:
            agents[name] = base[name]
    flags = {
        "suite": args.suite,
        "n_episodes": args.episodes,
        "seed": args.seed,
        "scenarios": scenarios or None,
    }
    config = build(EvalConfig, args, flags)
    rows = evaluate_suite(config, agents, seeds=seeds)
    if reference not in names:
        rows = rows[rows["agent"] != reference].reset_index(drop=True)
    board = leaderboard(rows)
    print(f"suite {config.suite} ({spec.version}): % of the {reference}")
    print(format_leaderboard(board))
    summary = seed_summary(rows)
    if len(args.model) > 1 and not summary.empty:
        for r in summary.to_dict(orient="records"):
            print(
                f"{r['agent']} over {r['n_seeds']} seeds: median {r['median_pct']:.2f} "
                f"± {r['median_pct_ci']:.2f}, worst {r['worst_pct']:.2f} ± {r['worst_pct_ci']:.2f}"
            )
    if args.out:
        write_text_atomic(args.out, json.dumps(json_rows(rows), indent=1))
        log.info("rows written to %s", args.out)
    if not args.no_track:
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

    agents = comma_list(args.agents) or ()
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
        log.info("plot written to %s", plot(board, args.plot))
    return 0
