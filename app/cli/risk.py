"""``deadstock risk ...``: backtest, train and apply the dead-stock risk model.

Commands
--------
- ``risk backtest --data SOURCE [--label ...] [--json OUT]``: a time-split backtest of every
  model and the baselines, printed as a table; ``--json`` writes rows with the keys
  ``model, label, train_cutoff, test_cutoff, roc_auc, roc_auc_ci, pr_auc, pr_auc_ci, f1,
  precision, recall, accuracy, brier, base_rate, n, n_pos``.
- ``risk train --data SOURCE``: train at the latest labelled cutoff, register the champion as
  ``deadstock-risk@champion``.
- ``risk score --data SOURCE --out FILE``: one row per SKU (sku, risk, tier, top drivers)
  from the registered champion (or a model trained on the spot when none is registered).
"""

from __future__ import annotations

import argparse
import json
import sys

from ingest.errors import ConfigError
from ingest.io import write_frame_atomic, write_text_atomic
from risk_model.backtest import BacktestConfig, format_table, json_rows
from risk_model.features import FeatureConfig
from risk_model.labels import LABEL_KINDS, LabelConfig
from risk_model.models import MODEL_KINDS

SOURCE_HELP = "'completejourney', a folder of <table>.csv/.parquet files, or a SQLAlchemy URL"


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help=SOURCE_HELP)
    p.add_argument(
        "--label", choices=LABEL_KINDS, default="default", help="label definition (default)"
    )
    p.add_argument("--horizon", type=int, default=13, help="weeks the outcome is read over")
    p.add_argument(
        "--models",
        default=",".join(MODEL_KINDS),
        help=f"comma-separated model kinds among {', '.join(MODEL_KINDS)}",
    )
    p.add_argument(
        "--no-price-change-features",
        action="store_true",
        help="drop recent price-change features (no circularity with the retailer's markdowns)",
    )
    p.add_argument("--threshold", choices=("f1", "cost"), default="f1", help="threshold rule")
    p.add_argument(
        "--cost-ratio",
        type=float,
        default=5.0,
        help="cost of a missed dead SKU vs a needless markdown",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--n-jobs", type=int, default=1, help="threads for random forest / XGBoost")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``risk`` command group."""
    risk = subparsers.add_parser("risk", help="dead-stock risk scores: backtest, train, score")
    sub = risk.add_subparsers(dest="risk_command", metavar="RISK_COMMAND")
    risk.set_defaults(func=lambda _args: (risk.print_help(), 0)[1])

    p = sub.add_parser("backtest", help="time-split backtest of every model with baselines")
    _common(p)
    p.add_argument("--train-cutoff", type=int, default=26, help="training cutoff week")
    p.add_argument("--test-cutoff", type=int, default=39, help="test cutoff week")
    p.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples for CIs")
    p.add_argument("--json", dest="json_out", help="write the rows as JSON to this file")
    p.add_argument("--plots", help="also write ROC/PR/calibration/importance PNGs here")
    p.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")
    p.set_defaults(func=cmd_backtest, tracked=True)

    p = sub.add_parser("train", help="train, pick the champion, register deadstock-risk")
    _common(p)
    p.add_argument("--out", help="also write the scores to this .csv/.parquet file")
    p.add_argument("--no-register", action="store_true", help="log but do not register")
    p.set_defaults(func=cmd_train, tracked=True)

    p = sub.add_parser("score", help="score every SKU at the last week of the data")
    p.add_argument("--data", required=True, help=SOURCE_HELP)
    p.add_argument("--out", required=True, help="output .csv or .parquet file")
    p.add_argument(
        "--model-uri",
        default=None,
        help="MLflow model to use (default models:/deadstock-risk@champion)",
    )
    p.add_argument("--top", type=int, default=10, help="rows to print (default 10)")
    p.set_defaults(func=cmd_score, tracked=True)


def _label(args: argparse.Namespace) -> LabelConfig:
    return LabelConfig(kind=args.label, horizon_weeks=args.horizon)


def _models(args: argparse.Namespace) -> tuple[str, ...]:
    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    bad = [m for m in models if m not in MODEL_KINDS]
    if bad or not models:
        raise ConfigError(f"--models {args.models!r}: expected some of {', '.join(MODEL_KINDS)}")
    return models


def _load(source: str):
    from ingest.loader import load
    from ingest.panel import load_panel

    dataset = load(source)
    return dataset, load_panel(dataset)


def cmd_backtest(args: argparse.Namespace) -> int:
    cfg = BacktestConfig(
        label=_label(args),
        features=FeatureConfig(price_change_features=not args.no_price_change_features),
        train_cutoff=args.train_cutoff,
        test_cutoff=args.test_cutoff,
        models=_models(args),
        threshold=args.threshold,
        cost_ratio=args.cost_ratio,
        n_bootstrap=args.bootstrap,
        seed=args.seed,
        n_jobs=args.n_jobs,
    )
    dataset, panel = _load(args.data)
    if args.no_mlflow:
        from risk_model.backtest import plot_backtest, run_backtest

        result = run_backtest(dataset, panel, cfg)
        if args.plots:
            plot_backtest(result, args.plots)
    else:
        from experiments.risk_runs import backtest_run

        result, run_id = backtest_run(dataset, panel, cfg, out_dir=args.plots)
        print(f"[risk] logged MLflow run {run_id}", file=sys.stderr)
    rows = json_rows(result)
    print(format_table(rows))
    print(f"noise floor (share dead by chance at the recent rate): {result.noise_floor:.4f}")
    if args.json_out:
        write_text_atomic(args.json_out, json.dumps(rows, indent=2) + "\n")
        print(f"wrote {args.json_out}", file=sys.stderr)
    return 0


def _risk_config(args: argparse.Namespace):
    from risk_model.scoring import RiskConfig

    return RiskConfig(
        label=_label(args),
        features=FeatureConfig(price_change_features=not args.no_price_change_features),
        models=_models(args),
        threshold=args.threshold,
        cost_ratio=args.cost_ratio,
        seed=args.seed,
        n_jobs=args.n_jobs,
    )


def cmd_train(args: argparse.Namespace) -> int:
    from experiments.risk_runs import train_run

    cfg = _risk_config(args)
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
    uri = args.model_uri or CHAMPION_URI
    try:
        model = load_champion(uri)
    except DataError:
        if args.model_uri:
            raise
        model = None
    if model is None:
        from risk_model.scoring import RiskConfig, train_and_score

        print(
            "[risk] no registered champion: training one on this data (not registered; "
            "run `deadstock risk train` to register)",
            file=sys.stderr,
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
