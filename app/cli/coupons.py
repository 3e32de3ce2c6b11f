"""``deadstock coupons ...``: who should get a coupon for an at-risk SKU.

Commands
--------
- ``coupons evaluate --data SOURCE [--out OUT]``: the time-split comparison of the
  targeting models (recall@k and NDCG@k with bootstrap intervals, per cutoff, all at-risk
  SKUs and the cold end, and the recorded coupon redemptions where the data has them),
  printed and logged to MLflow; ``--out`` writes the JSON rows ``{model, baseline, cutoff, k,
  recall, recall_ci, ndcg, ndcg_ci, n_skus, subset}``.
- ``coupons target --data SOURCE --plan RUN_OUTPUT [--out FILE]``: the target households of
  every coupon in a run's schedules (``coupon_targets``: sku, household, rank, score, week,
  expected_reach).

Settings are ``[coupons]`` of a pipeline file (:class:`~targeting.config.TargetingConfig`),
the at-risk selection its ``[risk]`` and ``[selection]``; flags override them.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
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

log = logging.getLogger(__name__)
TARGETING = "targeting.config:TargetingConfig"


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help=DATA_HELP)
    p.add_argument("--config", help=CONFIG_HELP)
    config_arg(p, "--k", config=TARGETING, key="k", type=int, help="households per coupon")
    config_arg(
        p, "--models", config=TARGETING, key="models", help="comma-separated targeting models"
    )
    config_arg(
        p,
        "--model",
        config=TARGETING,
        key="model",
        help="model of the target lists ('auto': best recall@k on the split)",
    )
    config_arg(
        p, "--cutoffs", config=TARGETING, key="cutoffs", help="comma-separated cutoff weeks",
        none="the two latest that fit",
    )  # fmt: skip
    config_arg(p, "--seed", config=TARGETING, key="seed", type=int, help=SEED_HELP)
    p.add_argument(
        "--quick",
        action="store_true",
        help="the run's quick preset for the at-risk selection (logistic regression only)",
    )


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    cutoffs = comma_list(args.cutoffs)
    return {
        "data": args.data,
        "coupons.k": args.k,
        "coupons.models": comma_list(args.models),
        "coupons.model": args.model,
        "coupons.cutoffs": tuple(int(c) for c in cutoffs) if cutoffs is not None else None,
        "coupons.seed": args.seed,
    }


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``coupons`` command group."""
    _, sub = add_group(
        subparsers, "coupons", help="coupon targeting from household baskets: evaluate, target"
    )
    p = add_command(
        sub,
        "evaluate",
        help="compare the targeting models on a time split",
        description="Fit every targeting model with the baskets up to each cutoff, rank "
        "households for the SKUs at risk there, and score the rankings against who bought "
        "each SKU in the next 13 weeks: recall@k and NDCG@k with bootstrap intervals over "
        "SKUs, for all at-risk SKUs and the cold end, and against recorded coupon redemptions.",
    )
    _common(p)
    p.add_argument("--out", help="write the evaluation rows as JSON to this file")
    p.add_argument("--plots", help="folder for the plot and the per-SKU table")
    p.add_argument("--no-track", action="store_true", help=NO_TRACK_HELP)
    p.set_defaults(func=cmd_evaluate, tracked=True)

    p = add_command(
        sub,
        "target",
        help="target households for the coupons of a run's plan",
        description="For every SKU whose recommended schedule uses a coupon, the top-k "
        "households by the chosen model fitted on all baskets, with scores and the expected "
        "reach (the share of the SKU's next-13-week buyers a list of k covers, from the time "
        "split).",
    )
    _common(p)
    p.add_argument("--plan", required=True, help="output folder of a `deadstock run`")
    p.add_argument("--out", help="output .csv or .parquet file (default: PLAN/coupon_targets.csv)")
    p.set_defaults(func=cmd_target)


def _config(args: argparse.Namespace):
    from app.pipeline_config import PipelineConfig

    return build(PipelineConfig, args, _flags(args), quick=args.quick)


def _load(source: str):
    """The source and its panel; a source without household baskets is refused before the
    panel is built."""
    from ingest.loader import load
    from ingest.panel import load_panel
    from targeting.interactions import baskets_of

    dataset = load(source)
    baskets_of(dataset)
    return dataset, load_panel(dataset)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from app.coupons import evaluate_coupons
    from targeting.evaluate import interval
    from targeting.report import format_table, plot_recall

    cfg = _config(args)
    dataset, panel = _load(args.data)
    ev = evaluate_coupons(dataset, panel, cfg)
    split = ev.split
    for subset in ("all", "cold"):
        print(f"\n{subset} at-risk SKUs:")
        print(format_table(split.rows, subset))
    for d in split.differences:
        lo, hi = interval(d["difference_ci"])
        print(
            f"{d['model']} - {d['other']} on {d['metric']} at cutoff {d['cutoff']} "
            f"({d['subset']}, {d['n_skus']} SKUs): {d['difference']:+.3f} [{lo:+.3f}, {hi:+.3f}], "
            f"{d['relative']:+.1%} relative"
        )
    for r in split.redemptions:
        if r["k"] == cfg.coupons.k:
            lo, hi = interval(r["recall_ci"])
            print(
                f"redemptions at cutoff {r['cutoff']}: {r['model']} recall@{r['k']} "
                f"{r['recall']:.3f} [{lo:.3f}, {hi:.3f}] ({r['n_coupons']} coupons, "
                f"{r['n_redemptions']} redemptions by {r['n_redeemers']} households)"
            )
    seconds = ", ".join(f"{m} {s:.1f} s" for m, s in split.seconds().items())
    print(
        f"chosen: {split.chosen}; best baseline: {split.best_baseline}; best learned model: "
        f"{split.best_learned}; fit+score at the latest cutoff: {seconds}"
    )
    if args.plots:
        plot_recall(split.rows, Path(args.plots) / "coupons_recall_at_k.png")
        write_frame_atomic(split.per_sku, Path(args.plots) / "coupons_per_sku.csv")
        at_risk = {str(c): skus for c, skus in ev.at_risk.items()}
        write_text_atomic(Path(args.plots) / "coupons_at_risk.json", json.dumps(at_risk) + "\n")
    if not args.no_track:
        from experiments.coupon_runs import log_evaluation

        run_id = log_evaluation(
            split,
            cfg.coupons,
            data_source=dataset.source,
            data_fingerprint=dataset.fingerprint,
            out_dir=args.plots,
        )
        log.info("[coupons] logged MLflow run %s", run_id)
    if args.out:
        write_text_atomic(args.out, json.dumps(split.rows, indent=2) + "\n")
        log.info("wrote %s", args.out)
    return 0


def cmd_target(args: argparse.Namespace) -> int:
    import pandas as pd

    from app.coupons import COUPON_TARGET_COLUMNS, coupon_targets, read_plan_schedules
    from targeting.interactions import baskets_of
    from targeting.timesplit import run_time_split

    cfg = _config(args)
    schedules = read_plan_schedules(args.plan)
    out = args.out or str(Path(args.plan) / "coupon_targets.csv")
    dataset, panel = _load(args.data)
    skus = sorted(schedules.loc[schedules["coupon"].astype(float) > 0, "sku"].unique())
    if not skus:
        print(f"no schedule in {args.plan} uses a coupon: no targets")
        write_frame_atomic(pd.DataFrame(columns=list(COUPON_TARGET_COLUMNS)), out)
        return 0
    # The reach of a list comes from the time split on these SKUs at the latest cutoff.
    tc = cfg.coupons
    last = int(baskets_of(dataset)["week"].max())
    cutoff = tc.default_cutoffs(last)[-1]
    split = run_time_split(baskets_of(dataset), {cutoff: skus}, tc, products=dataset.products)
    targets = coupon_targets(dataset, schedules, tc, split.per_sku, split.chosen)
    write_frame_atomic(targets, out)
    reach = targets.drop_duplicates("sku")["expected_reach"]
    print(
        f"wrote {len(targets):,} targets for {targets['sku'].nunique()} SKUs with coupons to "
        f"{out} (model {split.chosen}, k = {tc.k}, expected reach {reach.mean():.1%} on average)"
    )
    return 0
