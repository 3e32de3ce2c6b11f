"""``deadstock simulate``: play a fixed discount policy on a fitted catalog.

Example::

    deadstock simulate --catalog catalog.parquet --policy fixed:0.3 --weeks 12 --n-runs 200

What-if for one SKU of a ``deadstock run`` (its recommended schedule, capped)::

    deadstock simulate --sku 1007604 --max-discount 0.4 --exit-week 8 [--rules FILE]
        [--schedule FILE] [--catalog outputs/run/catalog.parquet] [--plot whatif.png]
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``simulate`` command."""
    p = subparsers.add_parser(
        "simulate",
        help="simulate a fixed discount on a catalog: sell-through, profit, leftover with CIs",
    )
    p.add_argument(
        "--catalog",
        default=None,
        help="catalog file from 'deadstock demand fit' (what-if default: "
        "outputs/run/catalog.parquet, written by 'deadstock run')",
    )
    p.add_argument(
        "--policy",
        default=None,
        help="fixed:D (discount depth D every week) or fixed:D:C (plus coupon depth C); "
        "default fixed:0.3, or for a what-if the run's schedule beside the catalog",
    )
    p.add_argument("--weeks", type=int, default=12, help="horizon; the last week is the exit")
    p.add_argument(
        "--n-runs",
        type=int,
        default=None,
        help="simulated episodes per SKU (default 500, or for a what-if the run's)",
    )
    p.add_argument(
        "--seed", type=int, default=None, help="the run's seed (default 0, or the run's)"
    )
    p.add_argument(
        "--uncertain",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="draw each episode's parameters from their fitted uncertainty (default: yes, "
        "as in the run; --no-uncertain uses the point estimates)",
    )
    p.add_argument("--sku", action="append", default=[], help="simulate only this SKU (repeatable)")
    p.add_argument("--out", default=None, help="write per-SKU results (.csv or .parquet)")
    # What-if for one SKU (planning.whatif): the recommended or a given schedule.
    w = p.add_argument_group(
        "what-if (one --sku)",
        "simulate one SKU's recommended schedule (the run's schedules file beside the "
        "catalog) or --schedule FILE, under caps, against doing nothing; saves a plot",
    )
    w.add_argument("--max-discount", type=float, default=None, help="cap every week's discount")
    w.add_argument("--exit-week", type=int, default=None, help="exit (write-off) after this week")
    w.add_argument("--rules", default=None, help="business rules TOML (RulesConfig fields)")
    w.add_argument("--schedule", default=None, help="schedule file: sku, week, discount[, coupon]")
    w.add_argument("--plot", default=None, help="plot PNG (default whatif_<sku>.png)")
    p.set_defaults(func=cmd_simulate)


def _what_if_requested(args: argparse.Namespace) -> bool:
    options = (args.max_discount, args.exit_week, args.rules, args.schedule, args.plot)
    return any(v is not None for v in options) or (args.catalog is None and len(args.sku) == 1)


def cmd_what_if(args: argparse.Namespace) -> int:
    from app.whatif import what_if_command
    from ingest.errors import ConfigError
    from planning.whatif import WhatIfConfig

    if len(args.sku) != 1:
        raise ConfigError("the what-if options need exactly one --sku")
    cfg = WhatIfConfig(
        sku=args.sku[0],
        max_discount=args.max_discount,
        exit_week=args.exit_week,
        n_episodes=args.n_runs,
        seed=args.seed,
        draw_parameters=args.uncertain,
    )
    text = what_if_command(
        args.catalog or "outputs/run/catalog.parquet",
        cfg,
        schedule_path=args.schedule,
        rules_path=args.rules,
        plot_path=args.plot,
        policy=args.policy,
        weeks=args.weeks,
    )
    print(text)
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from app.demand import SimulateConfig, run_simulation
    from ingest.errors import ConfigError
    from ingest.io import write_frame_atomic

    if _what_if_requested(args):
        return cmd_what_if(args)
    if args.catalog is None:
        raise ConfigError("--catalog is required (a catalog file from 'deadstock demand fit')")

    given = {"policy": args.policy, "n_runs": args.n_runs, "seed": args.seed,
             "uncertain": args.uncertain}  # fmt: skip
    config = SimulateConfig(
        catalog=args.catalog,
        weeks=args.weeks,
        skus=tuple(args.sku),
        **{k: v for k, v in given.items() if v is not None},
    )
    summary = run_simulation(config)
    print(summary.to_text())
    if args.out:
        path = write_frame_atomic(summary.per_sku, args.out)
        print(f"per-SKU results: {path}")
    return 0
