"""``deadstock data ...``: make, check, describe, convert and clean datasets.

Commands
--------
- ``data synth --n-skus N --weeks W --seed S --out DIR``: a synthetic world with known truth.
- ``data validate SOURCE``: exit 0 and a summary when the data is usable, 2 and every
  problem when it is not.
- ``data describe SOURCE``: tables, row counts, SKUs, weeks, missing-value shares.
- ``data convert SOURCE TARGET``: write a source to a folder or a SQL database.
- ``data clean SOURCE --out DIR``: cleaned tables, the cleaning report and the weekly panel.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ingest.clean import clean
from ingest.describe import format_summary, summarize
from ingest.errors import ConfigError
from ingest.io import write_frame_atomic
from ingest.loader import check_target, load, save
from ingest.panel import build_panel
from ingest.validate import DataValidationError

SOURCE_HELP = "'completejourney', a folder of <table>.csv/.parquet files, or a SQLAlchemy URL"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` command group."""
    data = subparsers.add_parser("data", help="make, validate, describe and convert datasets")
    sub = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND")
    data.set_defaults(func=lambda _args: _print_help(data))

    p = sub.add_parser("synth", help="write a synthetic world (canonical tables + truth)")
    p.add_argument("--n-skus", type=int, default=200, help="number of SKUs (default 200)")
    p.add_argument("--weeks", type=int, default=52, help="number of weeks (default 52)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--format", choices=("csv", "parquet"), default="csv", help="file format")
    p.add_argument("--baskets", action="store_true", help="also write household baskets")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("validate", help="check a source; exit 0 if usable, 2 with the problems")
    p.add_argument("source", help=SOURCE_HELP)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("describe", help="tables, row counts, SKUs, weeks, missing shares")
    p.add_argument("source", help=SOURCE_HELP)
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=cmd_describe)

    p = sub.add_parser("convert", help="write a source to a folder or a SQL database")
    p.add_argument("source", help=SOURCE_HELP)
    p.add_argument("target", help="output folder or SQLAlchemy URL (tables are replaced)")
    p.add_argument("--format", choices=("csv", "parquet"), default="parquet", help="folder format")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("clean", help="write cleaned tables, the cleaning report and the panel")
    p.add_argument("source", help=SOURCE_HELP)
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=cmd_clean)


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from simulator.synthetic import SyntheticConfig, generate_world, write_world

    if args.n_skus < 1 or args.weeks < 1:
        raise ConfigError(
            f"--n-skus {args.n_skus} and --weeks {args.weeks}: both must be at least 1"
        )
    config = SyntheticConfig(
        n_skus=args.n_skus, n_weeks=args.weeks, seed=args.seed, with_baskets=args.baskets
    )
    print(f"[data] generating {args.n_skus} SKUs x {args.weeks} weeks", file=sys.stderr)
    world = generate_world(config)
    paths = write_world(world, args.out, fmt=args.format)
    for path in paths:
        print(path)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    try:
        dataset = load(args.source)
    except DataValidationError as err:
        print(f"INVALID: {len(err.problems)} problem(s) in {err.source}", file=sys.stderr)
        for problem in err.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    print(f"OK: {dataset.source} is usable")
    print(format_summary(dataset))
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    dataset = load(args.source)
    if args.json:
        print(json.dumps(summarize(dataset), indent=2))
    else:
        print(format_summary(dataset))
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    check_target(args.target)  # before the (possibly long) load
    dataset = load(args.source)
    shown = save(dataset, args.target, fmt=args.format)
    print(f"wrote {len(dataset.tables)} tables to {shown}")
    return 0


def cmd_clean(args: argparse.Namespace) -> int:
    dataset = load(args.source)
    cleaned, report = clean(dataset)
    out = Path(args.out)
    save(cleaned, out / "tables", fmt="parquet")
    report.write(out)
    write_frame_atomic(build_panel(cleaned), out / "panel.parquet")
    print(report.to_text())
    print(f"wrote {out / 'tables'}, {out / 'cleaning_report.json'}, {out / 'panel.parquet'}")
    return 0
