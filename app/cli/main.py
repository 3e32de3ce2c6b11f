"""The ``deadstock`` command line: a thin shell over the pipeline's stage functions.

Each command group lives in its own module that exposes ``register(subparsers)``; the module
adds its sub-parser and sets ``func`` (a callable taking the parsed namespace and returning an
exit code). No command holds logic of its own.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from ingest.errors import DeadstockError

# Command-group modules, in the order their commands appear in ``deadstock --help``.
COMMAND_MODULES: tuple[str, ...] = (
    "app.cli.run",
    "app.cli.data",
    "app.cli.risk",
    "app.cli.ui",
    "app.cli.demand",
    "app.cli.simulate",
    "app.cli.agents",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every registered command group."""
    parser = argparse.ArgumentParser(
        prog="deadstock",
        description=(
            "Discount optimizer against dead stock: risk scores, a fitted market simulator, "
            "masked PPO and the exact DP optimum, tracked in MLflow."
        ),
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        if getattr(args, "tracked", False) and not (
            getattr(args, "no_log", False) or getattr(args, "no_track", False)
        ):
            # Before any work: a bad MLflow store must not surface after the results.
            from experiments.tracking import check_store

            check_store()
        return int(args.func(args) or 0)
    except DeadstockError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
