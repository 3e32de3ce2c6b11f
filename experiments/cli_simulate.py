"""``deadstock simulate``: play a fixed discount policy on a fitted catalog.

Example::

    deadstock simulate --catalog catalog.parquet --policy fixed:0.3 --weeks 12 --n-runs 200
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``simulate`` command."""
    p = subparsers.add_parser(
        "simulate",
        help="simulate a fixed discount on a catalog: sell-through, profit, leftover with CIs",
    )
    p.add_argument("--catalog", required=True, help="catalog file from 'deadstock demand fit'")
    p.add_argument(
        "--policy",
        default="fixed:0.3",
        help="fixed:D (discount depth D every week) or fixed:D:C (plus coupon depth C)",
    )
    p.add_argument("--weeks", type=int, default=12, help="horizon; the last week is the exit")
    p.add_argument("--n-runs", type=int, default=200, help="simulated episodes per SKU")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument(
        "--uncertain",
        action="store_true",
        help="draw each episode's parameters from their fitted uncertainty",
    )
    p.add_argument("--sku", action="append", default=[], help="simulate only this SKU (repeatable)")
    p.add_argument("--out", default=None, help="write per-SKU results (.csv or .parquet)")
    p.set_defaults(func=cmd_simulate)


def cmd_simulate(args: argparse.Namespace) -> int:
    from experiments.demand_runs import SimulateConfig, run_simulation
    from ingest.io import write_frame_atomic

    config = SimulateConfig(
        catalog=args.catalog,
        policy=args.policy,
        weeks=args.weeks,
        n_runs=args.n_runs,
        seed=args.seed,
        uncertain=args.uncertain,
        skus=tuple(args.sku),
    )
    summary = run_simulation(config)
    print(summary.to_text())
    if args.out:
        path = write_frame_atomic(summary.per_sku, args.out)
        print(f"per-SKU results: {path}")
    return 0
