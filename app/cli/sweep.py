"""``deadstock sweep --config sweep.toml``: a thin shell over :mod:`experiments.sweep` (a Ray
Tune search with ASHA early stopping over PPO settings or one risk model's hyperparameters,
tracked in MLflow)."""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path
from typing import Any

from app.cli.common import CONFIG_HELP, add_command, build, config_arg

SWEEP = "experiments.sweep_config:SweepConfig"


def register(subparsers: Any) -> None:
    """Add the ``sweep`` command."""
    p = add_command(
        subparsers,
        "sweep",
        help="hyperparameter sweep of PPO or a risk model with Ray Tune (ASHA), into MLflow",
        description=(
            'Search PPO settings (target = "ppo") or one risk model\'s hyperparameters '
            '(target = "risk") with Ray Tune: a PPO trial trains in chunks of steps and '
            "reports its %% of the DP on the suite after each chunk; a risk trial runs "
            "time-split backtest folds and reports its mean PR-AUC (ROC-AUC, Brier) after "
            "each fold; ASHA stops the trials that trail. Every trial is an MLflow run under "
            "one parent run; the sweep prints the table of trials and writes the best one as "
            "a `deadstock train --config` file, or a `deadstock risk --config` file and a "
            "plan's [risk] section. Ray: RAY_ADDRESS for a cluster, else a local Ray on this "
            "machine's cores."
        ),
    )
    p.add_argument(
        "--config",
        required=True,
        help=f"{CONFIG_HELP}: SweepConfig keys, [space], [asha], fixed PPO keys under [ppo] "
        "or fixed risk keys under [risk] (see docs/scale.md, examples/sweep_ppo.toml, "
        "examples/sweep_risk.toml)",
    )
    config_arg(p, "--seed", config=SWEEP, key="seed", type=int, help="search and training seed")
    config_arg(p, "--samples", config=SWEEP, key="num_samples", type=int, help="trials to draw")
    config_arg(p, "--experiment", config=SWEEP, key="experiment", help="MLflow experiment")
    p.add_argument(
        "--out",
        default="runs/sweep",
        help="trial table (trials.csv, trials.md), best config (best_train.toml; risk: "
        "best_risk.toml, best_plan.toml), Ray's records",
    )
    p.set_defaults(func=_sweep, uses_torch=True, tracked=True)


def _sweep(args: argparse.Namespace) -> int:
    from app.engine import ray_running
    from experiments.sweep import markdown_table, run_sweep
    from experiments.sweep_config import SweepConfig

    config = build(
        SweepConfig,
        args,
        {"seed": args.seed, "num_samples": args.samples, "experiment": args.experiment},
    )
    outcome = run_sweep(config, Path(args.out), ray_session=partial(ray_running, who="sweep"))
    print(markdown_table(outcome.trials.drop(columns=["run_id"])), end="")
    best = f"best: {outcome.best['trial']} ({config.metric} {outcome.best[config.metric]:.4g})"
    if config.target == "ppo":
        print(f"{best}; train it with: deadstock train --config {outcome.best_config}")
    else:
        print(
            f"{best}; use it with: deadstock risk train --data {config.data} --config "
            f"{outcome.best_config} (a plan's [risk] section: {outcome.best_plan})"
        )
    print(f"parent MLflow run {outcome.parent_run_id} in experiment {config.experiment!r}")
    return 0
