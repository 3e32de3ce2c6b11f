"""``deadstock simulate``: play a fixed discount policy on a fitted catalog, or a what-if for
one SKU of a run.

Example::

    deadstock simulate --catalog catalog.parquet --policy fixed:0.3 --horizon-weeks 12 \
        --episodes 200

What-if for one SKU of a ``deadstock run`` (its recommended schedule, capped)::

    deadstock simulate --sku 1007604 --max-discount 0.4 --exit-week 8 [--rules FILE]
        [--schedule FILE] [--catalog outputs/run/catalog.parquet] [--plot whatif.png]

The settings are :class:`app.demand.SimulateConfig` (fixed policy) or
:class:`planning.whatif.WhatIfConfig` (what-if); ``--config`` reads them from a TOML file and
the flags override it.
"""

from __future__ import annotations

import argparse
import logging

from app.cli.common import CONFIG_HELP, SEED_HELP, add_command, build, config_arg
from app.config import field_default

log = logging.getLogger(__name__)
SIMULATE = "app.demand:SimulateConfig"
WHAT_IF = "planning.whatif:WhatIfConfig"
#: The catalog a what-if reads when none is given: the one ``deadstock run`` exports.
RUN_CATALOG = "outputs/run/catalog.parquet"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``simulate`` command."""
    p = add_command(
        subparsers,
        "simulate",
        help="simulate a fixed discount on a catalog: sell-through, profit, leftover with CIs",
        description=(
            "Simulate a fixed discount policy on every SKU of a catalog (from 'deadstock "
            "demand fit' or 'deadstock run'), or, for one --sku, a what-if of its recommended "
            "schedule under caps, against doing nothing, with a plot."
        ),
    )
    p.add_argument(
        "--catalog",
        help=f"catalog file from 'deadstock demand fit' (what-if default: {RUN_CATALOG}, "
        "written by 'deadstock run')",
    )
    p.add_argument("--config", help=CONFIG_HELP)
    config_arg(
        p,
        "--policy",
        config=SIMULATE,
        key="policy",
        help="fixed:D (discount depth D every week) or fixed:D:C (plus coupon depth C); for a "
        "what-if, an explicit --policy replaces the run's schedule",
    )
    config_arg(
        p,
        "--horizon-weeks",
        config=SIMULATE,
        key="horizon_weeks",
        type=int,
        help="plan length; the last week is the exit",
    )
    config_arg(
        p,
        "--episodes",
        config=SIMULATE,
        key="n_episodes",
        also={"what-if": (WHAT_IF, "n_episodes")},
        type=int,
        none="the run's",
        help="simulated episodes per SKU",
    )
    config_arg(p, "--seed", config=SIMULATE, key="seed", type=int, help=SEED_HELP)
    config_arg(
        p,
        "--draw-parameters",
        config=SIMULATE,
        key="draw_parameters",
        also={"what-if": (WHAT_IF, "draw_parameters")},
        action=argparse.BooleanOptionalAction,
        none="the run's",
        help="draw each episode's parameters from their fitted uncertainty (as the run does)",
    )
    p.add_argument("--sku", action="append", default=[], help="simulate only this SKU (repeatable)")
    p.add_argument("--out", help="write per-SKU results (.csv or .parquet)")
    # What-if for one SKU (planning.whatif): the recommended or a given schedule.
    w = p.add_argument_group(
        "what-if (one --sku)",
        "simulate one SKU's recommended schedule (the run's schedules file beside the "
        "catalog) or --schedule FILE, under caps, against doing nothing; saves a plot",
    )
    config_arg(
        w,
        "--max-discount",
        config=WHAT_IF,
        key="max_discount",
        type=float,
        none="no cap",
        help="cap every week's discount",
    )
    config_arg(
        w,
        "--exit-week",
        config=WHAT_IF,
        key="exit_week",
        type=int,
        none="the schedule's last week",
        help="exit (write-off) after this week",
    )
    w.add_argument("--rules", help="business rules TOML (RulesConfig fields, or a plan's [rules])")
    w.add_argument("--schedule", help="schedule file: sku, week, discount[, coupon]")
    w.add_argument("--plot", help="plot PNG (default: whatif_<sku>.png)")
    p.set_defaults(func=cmd_simulate)


def _what_if_requested(args: argparse.Namespace) -> bool:
    options = (args.max_discount, args.exit_week, args.rules, args.schedule, args.plot)
    return any(v is not None for v in options) or (args.catalog is None and len(args.sku) == 1)


def cmd_what_if(args: argparse.Namespace) -> int:
    from app.demand import SimulateConfig
    from app.whatif import what_if_command
    from ingest.errors import ConfigError
    from planning.whatif import WhatIfConfig

    if len(args.sku) != 1:
        raise ConfigError("the what-if options need exactly one --sku")
    flags = {
        "sku": args.sku[0],
        "max_discount": args.max_discount,
        "exit_week": args.exit_week,
        "n_episodes": args.episodes,
        "seed": args.seed,
        "draw_parameters": args.draw_parameters,
    }
    cfg = build(WhatIfConfig, args, flags)
    # Without a schedule file, the what-if plays the fixed policy of a plain simulate.
    text = what_if_command(
        args.catalog or RUN_CATALOG,
        cfg,
        schedule_path=args.schedule,
        rules_path=args.rules,
        plot_path=args.plot,
        policy=args.policy,
        weeks=args.horizon_weeks or field_default(SimulateConfig, "horizon_weeks"),
    )
    print(text)
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from app.demand import SimulateConfig, run_simulation
    from ingest.errors import ConfigError
    from ingest.io import write_frame_atomic

    if _what_if_requested(args):
        return cmd_what_if(args)
    if args.catalog is None and args.config is None:
        raise ConfigError("--catalog is required (a catalog file from 'deadstock demand fit')")
    flags = {
        "catalog": args.catalog,
        "policy": args.policy,
        "horizon_weeks": args.horizon_weeks,
        "n_episodes": args.episodes,
        "seed": args.seed,
        "draw_parameters": args.draw_parameters,
        "skus": tuple(args.sku) or None,
    }
    summary = run_simulation(build(SimulateConfig, args, flags))
    print(summary.to_text())
    if args.out:
        path = write_frame_atomic(summary.per_sku, args.out)
        print(f"per-SKU results: {path}")
    return 0
