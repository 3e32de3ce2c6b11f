"""``deadstock risk ...``: backtest, train and apply the dead-stock risk model.

Commands
--------
- ``risk backtest --data SOURCE [--label ...] [--out rows.json]``: a time-split backtest of
  every model and the baselines, printed as a table; ``--out`` writes rows with the keys
  ``model, label, train_cutoff, test_cutoff, roc_auc, roc_auc_ci, pr_auc, pr_auc_ci, f1,
  precision, recall, accuracy, brier, base_rate, n, n_pos``.
- ``risk train --data SOURCE``: train at the latest labelled cutoff, register the champion as
  ``deadstock-risk@champion``.
- ``risk score --data SOURCE --out FILE``: one row per SKU (sku, risk, tier, top drivers)
  from the registered champion (or a model trained on the spot when none is registered).

``backtest`` and ``train`` take ``--config FILE``: a TOML file of
:class:`~risk_model.backtest.BacktestConfig` / :class:`~risk_model.scoring.RiskConfig` keys
(the shared ones: ``models``, ``train_offsets``, ``threshold``, ``seed``, ... and the tables
``[label]``, ``[features]`` and the models' hyperparameters ``[lr]``, ``[rf]``, ``[xgb]``),
such as the ``best_risk.toml`` a risk sweep writes. The flags override it; both are built by
the config loader.
"""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

from app.cli.common import (
    CONFIG_HELP,
    DATA_HELP,
    NO_TRACK_HELP,
    SEED_HELP,
    add_command,
    add_group,
    build,
    comma_list,
    config_arg,
)
from ingest.io import write_frame_atomic, write_text_atomic
from risk_model.labels import LABEL_KINDS

log = logging.getLogger(__name__)
BACKTEST = "risk_model.backtest:BacktestConfig"
RISK = "risk_model.scoring:RiskConfig"


def _common(p: argparse.ArgumentParser, config: str) -> None:
    p.add_argument("--data", required=True, help=DATA_HELP)
    p.add_argument(
        "--config",
        help=f"{CONFIG_HELP}: risk settings, [label], [features], hyperparameters under [lr], "
        "[rf], [xgb] (a sweep's best_risk.toml; see docs/risk_model.md)",
    )
    config_arg(
        p, "--label", config=config, key="label.kind", choices=LABEL_KINDS, help="label definition"
    )
    config_arg(
        p,
        "--horizon",
        config=config,
        key="label.horizon_weeks",
        type=int,
        help="weeks the label's outcome is read over",
    )
    config_arg(p, "--models", config=config, key="models", help="comma-separated model kinds")
    p.add_argument(
        "--no-price-change-features",
        action="store_true",
        help="drop recent price-change features (no circularity with the retailer's markdowns)",
    )
    config_arg(
        p,
        "--threshold",
        config=config,
        key="threshold",
        choices=("f1", "cost"),
        help="threshold rule",
    )
    config_arg(
        p,
        "--cost-ratio",
        config=config,
        key="cost_ratio",
        type=float,
        help="cost of a missed dead SKU vs a needless markdown",
    )
    config_arg(p, "--seed", config=config, key="seed", type=int, help=SEED_HELP)
    config_arg(
        p, "--n-jobs", config=config, key="n_jobs", type=int, help="threads for RF / XGBoost"
    )


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "label.kind": args.label,
        "label.horizon_weeks": args.horizon,
        "models": comma_list(args.models),
        "features.price_change_features": False if args.no_price_change_features else None,
        "threshold": args.threshold,
        "cost_ratio": args.cost_ratio,
        "seed": args.seed,
        "n_jobs": args.n_jobs,
    }


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``risk`` command group."""
    _, sub = add_group(subparsers, "risk", help="dead-stock risk scores: backtest, train, score")

    p = add_command(
        sub,
        "backtest",
        help="time-split backtest of every model with baselines",
        description="Train at --train-cutoff, test at --test-cutoff (labels never overlap), "
        "and report ROC-AUC, PR-AUC, F1, Brier and more with bootstrap CIs, for every model "
        "and two baselines (weeks since the last sale; the noise floor).",
    )
    _common(p, BACKTEST)
    config_arg(
        p,
        "--train-cutoff",
        config=BACKTEST,
        key="train_cutoff",
        type=int,
        help="training cutoff week",
    )
    config_arg(
        p, "--test-cutoff", config=BACKTEST, key="test_cutoff", type=int, help="test cutoff week"
    )
    config_arg(
        p, "--bootstrap", config=BACKTEST, key="n_bootstrap", type=int, help="resamples for CIs"
    )
    p.add_argument("--out", help="write the rows as JSON to this file")
    p.add_argument("--plots", help="also write ROC/PR/calibration/importance PNGs here")
    p.add_argument("--no-track", action="store_true", help=NO_TRACK_HELP)
    p.set_defaults(func=cmd_backtest, tracked=True)

    p = add_command(
        sub,
        "train",
        help="train, pick the champion, register deadstock-risk",
        description="Train every model at the latest labelled cutoff, pick the champion on "
        "validation PR-AUC, log it to MLflow and register it as deadstock-risk@champion.",
    )
    _common(p, RISK)
    p.add_argument("--out", help="also write the scores to this .csv/.parquet file")
    p.add_argument("--no-register", action="store_true", help="log but do not register")
    p.set_defaults(func=cmd_train, tracked=True)

    p = add_command(
        sub,
        "score",
        help="score every SKU at the last week of the data",
        description="Score every SKU at the last week of the data with the registered "
        "champion (or a model trained on the spot when none is registered).",
    )
    p.add_argument("--data", required=True, help=DATA_HELP)
    p.add_argument("--out", required=True, help="output .csv or .parquet file")
    p.add_argument(
        "--model", help="MLflow model URI (default: the registered models:/deadstock-risk@champion)"
    )
    p.add_argument("--top", type=int, default=10, help="rows to print")
    p.set_defaults(func=cmd_score, tracked=True)


def _load(source: str):
    from ingest.loader import load
    from ingest.panel import load_panel

    dataset = load(source)
    return dataset, load_panel(dataset)


def cmd_backtest(args: argparse.Namespace) -> int:
    from risk_model.backtest import BacktestConfig, format_table, json_rows

    flags = {
        **_flags(args),
        "train_cutoff": args.train_cutoff,
        "test_cutoff": args.test_cutoff,
        "n_bootstrap": args.bootstrap,
    }
    cfg = build(BacktestConfig, args, flags)
    dataset, panel = _load(args.data)
    if args.no_track:
        from risk_model.backtest import plot_backtest, run_backtest

        result = run_backtest(dataset, panel, cfg)
        if args.plots:
            plot_backtest(result, args.plots)
    else:
        from experiments.risk_runs import backtest_run

        result, run_id = backtest_run(dataset, panel, cfg, out_dir=args.plots)
        log.info("[risk] logged MLflow run %s", run_id)
    rows = json_rows(result)
    print(format_table(rows))
    print(f"noise floor (share dead by chance at the recent rate): {result.noise_floor:.4f}")
    if args.out:
        write_text_atomic(args.out, json.dumps(rows, indent=2) + "\n")
        log.info("wrote %s", args.out)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from experiments.risk_runs import train_run
    from risk_model.scoring import RiskConfig

    cfg = build(RiskConfig, args, _flags(args))
    dataset, panel = _load(args.data)
    result, run_id, version = train_run(dataset, panel, cfg, register=not args.no_register)
    for kind, v in result.validation.items():
        mark = "*" if kind == result.champion else " "
        print(
            f"{mark} {kind:<4} validation ROC-AUC {v['roc_auc']:.3f}  PR-AUC {v['pr_auc']:.3f}  "
            f"Brier {v['brier']:.4f}  calibration {v['calibration']}"
        )
    where = (
        f"registered deadstock-risk version {version} (@champion)" if version else "not registered"
    )
    print(f"champion: {result.champion}; run {run_id}; {where}")
    if args.out:
        write_frame_atomic(result.scores, args.out)
        print(f"wrote {len(result.scores)} scores to {args.out}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from experiments.risk_runs import CHAMPION_URI, load_champion
    from ingest.errors import DataError
    from risk_model.features import build_features

    dataset, panel = _load(args.data)
    uri = args.model or CHAMPION_URI
    try:
        model = load_champion(uri)
    except DataError:
        if args.model:
            raise
        model = None
    if model is None:
        from risk_model.scoring import RiskConfig, train_and_score

        log.warning(
            "[risk] no registered champion: training one on this data (not registered; "
            "run `deadstock risk train` to register)"
        )
        scores = train_and_score(dataset, panel, RiskConfig()).scores
    else:
        cutoff = int(panel["week"].max())
        feats = build_features(
            panel, cutoff, products=dataset.products, baskets=dataset.get("baskets")
        )
        from risk_model.scoring import add_established

        scores = add_established(model.predict(feats.reset_index()), panel, cutoff)
    write_frame_atomic(scores, args.out)
    counts = scores.loc[scores["established"], "tier"].value_counts().to_dict()
    print(scores.head(args.top).to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print(
        f"wrote {len(scores)} SKUs to {args.out}; of the {int(scores['established'].sum())} "
        f"established ones: high {counts.get('high', 0)}, medium {counts.get('medium', 0)}, "
        f"low {counts.get('low', 0)} (the others' risk is an extrapolation)"
    )
    return 0
