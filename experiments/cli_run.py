"""``deadstock run``: the main job.

For now it runs the data stage (load, validate, clean, build the weekly panel) and prints the
summary; the end-to-end pipeline will replace the body of :func:`cmd_run`.
"""

from __future__ import annotations

import argparse

from experiments.data_stage import DataStageConfig, run_data_stage


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``run`` command."""
    p = subparsers.add_parser("run", help="run the main job (currently: the data stage)")
    p.add_argument(
        "--data", default="completejourney", help="data source (default completejourney)"
    )
    p.add_argument("--quick", action="store_true", help="a small, fast run")
    p.add_argument("--out", default="runs/data", help="folder for the reports (default runs/data)")
    p.add_argument("--no-cache", action="store_true", help="ignore and do not write the cache")
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    config = DataStageConfig(
        source=args.data, out_dir=args.out, use_cache=not args.no_cache, quick=args.quick
    )
    result = run_data_stage(config)
    print(result.summary)
    for path in result.paths:
        print(f"wrote {path}")
    return 0
