"""``deadstock run``: the main job, end to end (a thin shell over
:func:`app.pipeline.run_pipeline`).

``deadstock run [--data SOURCE] [--config FILE] [--out DIR] [--quick]`` loads the data,
scores the risk, picks the at-risk SKUs, fits their demand, gets a policy, simulates it
against the baselines and writes the schedules, SKU summary, alerts, new-product flags and the
report. It prints where they went and where the MLflow runs are.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from app.config import load_config


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``run`` command."""
    p = subparsers.add_parser(
        "run",
        help="run the main job: risk, demand fit, policy, schedules, alerts, report",
        description=(
            "Run the main job end to end under one MLflow parent run (a nested run per "
            "stage). Defaults: Complete Journey and a local MLflow store (./mlflow.db)."
        ),
    )
    p.add_argument("--data", default=None, help="data source (default: completejourney)")
    p.add_argument("--config", default=None, help="TOML config file (see docs/pipeline.md)")
    p.add_argument("--out", default=None, help="output folder (default: outputs/run)")
    p.add_argument("--quick", action="store_true", help="a smaller run with the same stages")
    p.add_argument("--seed", type=int, default=None, help="the run's seed (default 0)")
    p.add_argument(
        "--export-format",
        choices=("csv", "parquet", "sql"),
        default=None,
        help="how the tables are written (default csv)",
    )
    p.add_argument("--sql-url", default=None, help="SQLAlchemy URL for --export-format sql")
    p.add_argument(
        "--policy",
        choices=("auto", "champion", "train"),
        default=None,
        help="load the registered champion when it fits (auto), require it, or train",
    )
    p.set_defaults(func=cmd_run, tracked=True)


def cmd_run(args: argparse.Namespace) -> int:
    from app.pipeline import run_pipeline

    cfg = load_config(
        args.config,
        data=args.data,
        out_dir=args.out,
        seed=args.seed,
        quick=True if args.quick else None,
    )
    if args.export_format or args.sql_url:
        fmt = args.export_format or ("sql" if args.sql_url else cfg.export.format)
        url = args.sql_url or cfg.export.sql_url
        cfg = replace(cfg, export=replace(cfg.export, format=fmt, sql_url=url))
    if args.policy:
        cfg = replace(cfg, policy=replace(cfg.policy, source=args.policy))
    result = run_pipeline(cfg)
    print()
    print(result.stage_table().to_string(index=False))
    print()
    print("ROI of the recommended schedules against doing nothing (95 % CI):")
    for key in (
        "leftover_units",
        "dead_stock_value",
        "margin_given_away",
        "holding_cost",
        "profit",
    ):
        m = result.roi[f"roi/{key}"]
        lo, hi = result.roi[f"roi/{key}_ci_low"], result.roi[f"roi/{key}_ci_high"]
        print(f"  {_ROI_LABEL[key]:<36} {m:>14,.2f}  [{lo:,.2f}, {hi:,.2f}]")
    print()
    print(f"stock assumption: {result.stock_assumption}")
    for name, where in result.exports.items():
        print(f"{name:<18} -> {where}")
    print(f"{'alerts (Markdown)':<18} -> {len(result.alerts)} files in {cfg.out_dir}/alerts")
    print(f"{'report':<18} -> {result.report_path}")
    from experiments.tracking import tracking_uri

    print(f"{'MLflow run':<18} -> {result.run_id} in {tracking_uri()} (deadstock ui)")
    return 0


_ROI_LABEL = {
    "leftover_units": "dead stock avoided (units)",
    "dead_stock_value": "dead stock avoided (value at cost)",
    "margin_given_away": "margin given away",
    "holding_cost": "holding cost saved",
    "profit": "profit vs doing nothing",
}
