"""``deadstock run``: the main job, end to end (a thin shell over
:func:`app.pipeline.run_pipeline`).

``deadstock run [--data SOURCE] [--config plan.toml] [--out DIR] [--quick] [--engine ray]
[--ray-mode data]`` loads the data, scores the risk, picks the at-risk SKUs, fits their
demand, gets a policy, simulates it against the baselines and writes the schedules, SKU
summary, alerts, new-product flags and the report. It prints where they went and where the MLflow runs are.
"""

from __future__ import annotations

import argparse

from app.cli.common import CONFIG_HELP, DATA_HELP, SEED_HELP, add_command, build, config_arg

RUN = "app.pipeline_config:PipelineConfig"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``run`` command."""
    p = add_command(
        subparsers,
        "run",
        help="run the main job: risk, demand fit, policy, schedules, alerts, report",
        description=(
            "Run the main job end to end under one MLflow parent run (a nested run per "
            "stage). Every setting is in the config (--config plan.toml, see docs/config.md); "
            "the flags below override it. Defaults: Complete Journey and a local MLflow store "
            "(./mlflow.db)."
        ),
    )
    config_arg(p, "--data", config=RUN, key="data", help=DATA_HELP)
    p.add_argument("--config", help=CONFIG_HELP)
    config_arg(p, "--out", config=RUN, key="out_dir", help="output folder")
    p.add_argument(
        "--quick",
        action="store_true",
        help="a smaller run with the same stages: the quick preset (fewer SKUs, episodes, "
        "training steps, risk models) under the file's values",
    )
    config_arg(p, "--seed", config=RUN, key="seed", type=int, help=f"{SEED_HELP} of the run")
    config_arg(p, "--experiment", config=RUN, key="experiment", help="MLflow experiment")
    config_arg(
        p,
        "--export-format",
        config=RUN,
        key="export.format",
        choices=("csv", "parquet", "sql"),
        help="how the tables are written",
    )
    p.add_argument("--sql-url", help="SQLAlchemy URL of the export (implies --export-format sql)")
    config_arg(
        p,
        "--policy-source",
        config=RUN,
        key="policy.source",
        choices=("auto", "champion", "train"),
        help="load the registered champion when it fits (auto), require it, or train",
    )
    config_arg(
        p,
        "--engine",
        config=RUN,
        key="engine",
        choices=("local", "ray"),
        help="where the heavy stages run: this process, or Ray (the cluster at $RAY_ADDRESS, "
        "else a local Ray with the machine's cores); same seed, same outputs",
    )
    config_arg(
        p,
        "--ray-mode",
        config=RUN,
        key="ray_mode",
        choices=("tasks", "data"),
        help="with --engine ray: blocks of SKUs as Ray tasks, or as Ray Data map_batches over "
        "an actor pool (the policy loaded once per actor; needs 2+ CPUs); same outputs",
    )
    p.set_defaults(func=cmd_run, uses_torch=True, tracked=True)


def cmd_run(args: argparse.Namespace) -> int:
    from app.pipeline import run_pipeline
    from app.pipeline_config import PipelineConfig

    fmt = args.export_format or ("sql" if args.sql_url else None)
    flags = {
        "data": args.data,
        "out_dir": args.out,
        "seed": args.seed,
        "experiment": args.experiment,
        "export.format": fmt,
        "export.sql_url": args.sql_url,
        "policy.source": args.policy_source,
        "engine": args.engine,
        "ray_mode": args.ray_mode,
    }
    cfg = build(PipelineConfig, args, flags, quick=args.quick)
    result = run_pipeline(cfg)
    print()
    print(result.stage_table().to_string(index=False))
    print()
    print_roi(result.roi, cfg.export.currency, cfg.evaluation.ci_level)
    print()
    if result.recommendation:
        print(f"Recommended plan, chosen per SKU ({cfg.evaluation.ci_level:.0%} CIs):")
        for line in result.recommendation:
            print(f"  {line}")
        print()
    print(f"stock assumption: {result.stock_assumption}")
    for name, where in result.exports.items():
        print(f"{name:<18} -> {where}")
    print(f"{'alerts (Markdown)':<18} -> {len(result.alerts)} files in {cfg.out_dir}/alerts")
    print(f"{'report':<18} -> {result.report_path}")
    from experiments.tracking import tracking_uri

    print(f"{'MLflow run':<18} -> {result.run_id} in {tracking_uri()} (deadstock ui)")
    return 0


def print_roi(roi: dict[str, float], currency: str, ci_level: float) -> None:
    """The ROI reconciliation: its lines add up to the profit line (values as in the report)."""
    from app.report import ROI_LINES, ROI_MEMO, ROI_TOTAL

    def line(label: str, key: str) -> None:
        m, lo, hi = roi[f"roi/{key}"], roi[f"roi/{key}_ci_low"], roi[f"roi/{key}_ci_high"]
        print(f"  {label:<44} {m:>14,.2f}  [{lo:,.2f}, {hi:,.2f}]")

    print(
        f"ROI of the recommended schedules against doing nothing ({currency}, paired means, "
        f"{ci_level:.0%} CI); the lines add up to the profit:"
    )
    for label, key, _ in ROI_LINES:
        line(label, key)
    print(f"  {'':<44} {'-' * 14}")
    line(f"= {ROI_TOTAL[0]}", ROI_TOTAL[1])
    print("  memo (not in the sum):")
    for label, key, _, _ in ROI_MEMO:
        line(label, key)
