"""``deadstock monitor`` and ``deadstock retrain``: keep the models current.

Commands
--------
- ``monitor --data SOURCE [--reference RUN_FOLDER | --reference-week N] [--out DIR]``:
  feature drift, calibration, forecast error and plan adherence of the newest weeks against
  the reference run's training data (:mod:`app.monitor`); a Markdown report with plots in
  ``--out``, metrics in MLflow. Exit 0 when every check is within its threshold, **3** when
  one crossed (named in the report and on stderr), 2 on bad input.
- ``retrain --data SOURCE``: champion/challenger retraining of the risk model, the demand
  fit and the pricing policy (:mod:`experiments.retrain_runs`); the ``champion`` alias moves
  only for a challenger better by the margin, as the run's last step.
"""

from __future__ import annotations

import argparse
import logging
import sys

from app.cli.common import DATA_HELP, NO_TRACK_HELP, SEED_HELP, add_command, comma_list

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``monitor`` and ``retrain`` commands."""
    p = add_command(
        subparsers,
        "monitor",
        help="drift, calibration, forecast error and plan adherence against a reference run",
        description="Compare the newest weeks of --data with the reference run's training "
        "data: PSI and KS per risk feature (all SKUs and per category), calibration of the "
        "risk score once labels mature, the demand model's forecast error against its holdout "
        "error, and executed against approved prices. Writes a Markdown report with plots, "
        "logs metrics to MLflow, and exits 3 when a threshold is crossed (0 otherwise).",
    )
    p.add_argument("--data", required=True, help=DATA_HELP)
    ref = p.add_mutually_exclusive_group()
    ref.add_argument(
        "--reference",
        metavar="RUN_FOLDER",
        help="a main-job output folder (outputs/run): its manifest's MLflow run gives the "
        "last training week, its schedules the approved prices (default: the risk "
        "champion's data_last_week tag)",
    )
    ref.add_argument("--reference-week", type=int, help="the reference's last training week")
    p.add_argument("--out", default="outputs/monitor", help="report folder (replaced whole)")
    p.add_argument("--quick", action="store_true", help="only the best-selling SKUs")
    p.add_argument("--psi-max", type=float, help="PSI above which a feature drifts (0.25)")
    p.add_argument("--forecast-ratio", type=float, help="new/holdout WMAPE limit (1.25)")
    p.add_argument(
        "--risk-model", default="deadstock-risk", help="registered name of the risk model"
    )
    p.add_argument("--no-track", action="store_true", help=NO_TRACK_HELP)
    p.set_defaults(func=cmd_monitor, tracked=True)

    p = add_command(
        subparsers,
        "retrain",
        help="champion/challenger retraining of the risk model, the demand fit and the policy",
        description="Train challengers on the latest data, compare each with the registered "
        "champion on the same backtest (per-SKU paired losses, bootstrap CI), and move the "
        "champion alias only for a challenger better by --margin, as the last step. The "
        "decision and its evidence are recorded on the MLflow run. The policy challenger "
        "(masked PPO) and the champion plan the same fitted catalog under the pipeline's "
        "rules and are simulated on common random numbers per SKU.",
    )
    p.add_argument("--data", required=True, help=DATA_HELP)
    p.add_argument(
        "--models", default="risk,demand,policy", help="challengers to train: risk,demand,policy"
    )
    p.add_argument("--risk-models", help="risk model kinds to fit (default: the risk config's)")
    p.add_argument("--margin", type=float, help="relative improvement the CI must clear (0.02)")
    p.add_argument(
        "--policy-steps",
        type=int,
        help="PPO training steps of the policy challenger (default 100,000)",
    )
    p.add_argument(
        "--horizon", type=int, help="plan length in weeks of the policy backtest (default 8)"
    )
    p.add_argument("--quick", action="store_true", help="only the best-selling SKUs")
    p.add_argument("--seed", type=int, default=0, help=SEED_HELP)
    p.set_defaults(func=cmd_retrain, tracked=True)


def cmd_monitor(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from app.monitor import EXIT_CROSSED, MonitorJobConfig, run_monitor_job
    from monitoring.thresholds import MonitorThresholds

    th = MonitorThresholds()
    if args.psi_max is not None:
        th = replace(th, psi_max=args.psi_max)
    if args.forecast_ratio is not None:
        th = replace(th, max_forecast_ratio=args.forecast_ratio)
    cfg = MonitorJobConfig(
        data=args.data,
        reference=args.reference,
        reference_week=args.reference_week,
        out_dir=args.out,
        quick=args.quick,
        track=not args.no_track,
        thresholds=th,
        risk_name=args.risk_model,
    )
    result, report = run_monitor_job(cfg)
    for c in result.checks:
        print(f"{c.name:<18} {c.status:<8} {c.value:8.3f}  (threshold {c.threshold:g})")
    print(f"report: {report}")
    if result.crossed:
        for c in result.crossed:
            print(f"monitor: threshold crossed: {c.name}: {c.detail}", file=sys.stderr)
        return EXIT_CROSSED
    return 0


def cmd_retrain(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from app.data import DataStageConfig, run_data_stage
    from app.pipeline_config import DEFAULT_RULES
    from experiments.retrain_runs import RetrainConfig, retrain_run
    from ingest.errors import ConfigError
    from monitoring.challenger import PromotionRule
    from risk_model.scoring import RiskConfig

    risk = RiskConfig(seed=args.seed)
    kinds = comma_list(args.risk_models)
    if kinds:
        risk = replace(risk, models=kinds)
    rule = PromotionRule(seed=args.seed)
    if args.margin is not None:
        rule = replace(rule, margin=args.margin)
    cfg = RetrainConfig(
        models=comma_list(args.models) or (),
        risk=risk,
        rule=rule,
        rules=DEFAULT_RULES,
        seed=args.seed,
    )
    if args.policy_steps is not None:
        if args.policy_steps < 1:
            raise ConfigError(f"--policy-steps = {args.policy_steps}; expected an integer >= 1")
        cfg = replace(cfg, ppo=replace(cfg.ppo, total_timesteps=args.policy_steps))
    if args.horizon is not None:
        cfg = replace(cfg, horizon_weeks=args.horizon)
    data = run_data_stage(DataStageConfig(source=args.data, out_dir=None, quick=args.quick))
    outcome = retrain_run(data.dataset, data.panel, cfg)
    for model, c in outcome.comparisons.items():
        moved = f" -> version {outcome.promoted[model]} is champion" if c.promote else ""
        print(f"{model}: {c.reason}{moved}")
    for model, why in outcome.skipped.items():
        print(f"{model}: skipped ({why})")
    print(f"MLflow run {outcome.run_id}")
    return 0
