"""``deadstock data ...``: make, check, describe, convert and clean datasets.

Commands
--------
- ``data synth --n-skus N --weeks W --seed S --out DIR``: a synthetic world with known truth.
- ``data validate --data SOURCE``: exit 0 and a summary when the data is usable, 2 and every
  problem when it is not.
- ``data describe --data SOURCE``: tables, row counts, SKUs, weeks, missing-value shares.
- ``data convert --data SOURCE --out TARGET``: write a source to a folder or a SQL database.
- ``data clean --data SOURCE --out DIR``: cleaned tables, the cleaning report and the panel.
- ``data synth --partitioned ...``: the same world as a partitioned folder
  (``sales/week=W/part-K.parquet``; truth in ``truth.parquet``).
- ``data synth-bulk --n-skus N --weeks W --seed S --out DIR``: a simple synthetic source of
  any size (tens of millions of SKUs), generated and written block by block, partitioned.
- ``data partition --data SOURCE --out DIR``: any source rewritten as a partitioned folder.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from app.cli.common import DATA_HELP, SEED_HELP, add_command, add_group
from ingest.clean import clean
from ingest.dataset import Dataset
from ingest.describe import format_summary, summarize
from ingest.errors import ConfigError
from ingest.io import write_frame_atomic
from ingest.loader import check_target, load, save
from ingest.panel import build_panel
from ingest.partitioned import DEFAULT_SHARD_SKUS, write_partitioned
from ingest.validate import DataValidationError

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` command group."""
    _, sub = add_group(
        subparsers, "data", help="make, validate, describe, convert and clean datasets"
    )

    p = add_command(
        sub,
        "synth",
        help="write a synthetic world (canonical tables + truth)",
        description="Write a synthetic world: the canonical tables (products, sales, stock) "
        "and its true demand parameters, to test the pipeline on known truth.",
    )
    p.add_argument("--n-skus", type=int, default=200, help="number of SKUs")
    p.add_argument("--weeks", type=int, default=52, help="number of weeks of history")
    p.add_argument("--seed", type=int, default=0, help=SEED_HELP)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--format", choices=("csv", "parquet"), default="csv", help="file format")
    p.add_argument("--baskets", action="store_true", help="also write household baskets")
    p.add_argument(
        "--partitioned",
        action="store_true",
        help="write a folder of Parquet files per table, weekly tables partitioned by week",
    )
    p.set_defaults(func=cmd_synth)

    p = add_command(
        sub,
        "synth-bulk",
        help="write a large simple synthetic source, partitioned, block by block",
        description="Generate a simple synthetic source of any size (products, sales, stock) "
        "and write it partitioned by week, one block of SKUs at a time: memory stays bounded "
        "by a block, so tens of millions of SKUs fit. No truth file; see simulator/bulk.py.",
    )
    p.add_argument("--n-skus", type=int, default=1_000_000, help="number of SKUs")
    p.add_argument("--weeks", type=int, default=12, help="number of weeks of history")
    p.add_argument("--seed", type=int, default=0, help=SEED_HELP)
    p.add_argument("--out", required=True, help="output folder (replaced atomically)")
    p.set_defaults(func=cmd_synth_bulk)

    p = add_command(
        sub,
        "partition",
        help="rewrite a source as a partitioned folder of Parquet files",
        description="Load a source and write it as a folder of Parquet files per table, the "
        "weekly tables partitioned by week (sales/week=W/part-K.parquet), which the loader "
        "reads back and the scale job streams.",
    )
    p.add_argument("--data", required=True, help=DATA_HELP)
    p.add_argument("--out", required=True, help="output folder (replaced atomically)")
    p.add_argument(
        "--block-skus",
        type=int,
        default=DEFAULT_SHARD_SKUS,
        help="SKUs per file (default %(default)s)",
    )
    p.set_defaults(func=cmd_partition)

    p = add_command(
        sub,
        "validate",
        help="check a source; exit 0 if usable, 2 with every problem",
        description="Load and check a source against the canonical schema: exit 0 and a "
        "summary when it is usable, exit 2 and every problem (file, column, rows) when not.",
    )
    p.add_argument("--data", required=True, help=DATA_HELP)
    p.set_defaults(func=cmd_validate)

    p = add_command(sub, "describe", help="tables, row counts, SKUs, weeks, missing shares")
    p.add_argument("--data", required=True, help=DATA_HELP)
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=cmd_describe)

    p = add_command(sub, "convert", help="write a source to a folder or a SQL database")
    p.add_argument("--data", required=True, help=DATA_HELP)
    p.add_argument(
        "--out", required=True, help="output folder or SQLAlchemy URL (tables are replaced)"
    )
    p.add_argument("--format", choices=("csv", "parquet"), default="parquet", help="folder format")
    p.set_defaults(func=cmd_convert)

    p = add_command(sub, "clean", help="write cleaned tables, the cleaning report and the panel")
    p.add_argument("--data", required=True, help=DATA_HELP)
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=cmd_clean)


def cmd_synth(args: argparse.Namespace) -> int:
    from simulator.synthetic import SyntheticConfig, generate_world, write_world

    if args.n_skus < 1 or args.weeks < 1:
        raise ConfigError(
            f"--n-skus {args.n_skus} and --weeks {args.weeks}: both must be at least 1"
        )
    config = SyntheticConfig(
        n_skus=args.n_skus, n_weeks=args.weeks, seed=args.seed, with_baskets=args.baskets
    )
    log.info("[data] generating %d SKUs x %d weeks", args.n_skus, args.weeks)
    world = generate_world(config)
    if args.partitioned:
        dataset = Dataset(tables=world.tables, source="synthetic", fingerprint="")
        out = write_partitioned(dataset, args.out)
        truth = write_frame_atomic(world.truth, out / "truth.parquet")
        print(out)
        print(truth)
        return 0
    paths = write_world(world, args.out, fmt=args.format)
    for path in paths:
        print(path)
    return 0


def cmd_synth_bulk(args: argparse.Namespace) -> int:
    from simulator.bulk import write_bulk

    log.info("[data] generating %s SKUs x %d weeks, partitioned", f"{args.n_skus:,}", args.weeks)
    rows = write_bulk(args.out, args.n_skus, args.weeks, args.seed)
    print(f"wrote {args.out}: " + ", ".join(f"{n} {r:,} rows" for n, r in rows.items()))
    return 0


def cmd_partition(args: argparse.Namespace) -> int:
    if args.block_skus < 1:
        raise ConfigError(f"--block-skus {args.block_skus}: expected at least 1")
    check_target(args.out)  # before the (possibly long) load
    dataset = load(args.data)
    out = write_partitioned(dataset, args.out, block_skus=args.block_skus)
    print(f"wrote {len(dataset.tables)} tables to {out} (partitioned)")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    try:
        dataset = load(args.data)
    except DataValidationError as err:
        print(f"INVALID: {len(err.problems)} problem(s) in {err.source}", file=sys.stderr)
        for problem in err.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    print(f"OK: {dataset.source} is usable")
    print(format_summary(dataset))
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    dataset = load(args.data)
    if args.json:
        print(json.dumps(summarize(dataset), indent=2))
    else:
        print(format_summary(dataset))
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    check_target(args.out)  # before the (possibly long) load
    dataset = load(args.data)
    shown = save(dataset, args.out, fmt=args.format)
    print(f"wrote {len(dataset.tables)} tables to {shown}")
    return 0


def cmd_clean(args: argparse.Namespace) -> int:
    dataset = load(args.data)
    cleaned, report = clean(dataset)
    out = Path(args.out)
    save(cleaned, out / "tables", fmt="parquet")
    report.write(out)
    write_frame_atomic(build_panel(cleaned), out / "panel.parquet")
    print(report.to_text())
    print(f"wrote {out / 'tables'}, {out / 'cleaning_report.json'}, {out / 'panel.parquet'}")
    return 0
