"""Time the demand fit on the local and the Ray engine (one task per category group).

Generates a synthetic world (``simulator.synthetic.generate_world``), builds its panel and
fits it with ``map_tasks`` = ``LocalEngine().run_tasks`` and then ``RayEngine().run_tasks``
(a local Ray with ``--cpus`` CPUs). Prints wall time and the driver's CPU time of each, and
checks that both give the same elasticities. Ray's workers' CPU time is not the driver's, so
the driver's CPU time on Ray shows what the driver itself still does (panel preparation,
shrinkage, commercial fields).

Run: ``.venv/bin/python benchmarks/bench_scale_fit.py [--skus 20000] [--weeks 52]
[--categories 40] [--cpus 2]``; prints markdown.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.engine import LocalEngine, make_engine  # noqa: E402
from ingest.dataset import Dataset  # noqa: E402
from ingest.panel import build_panel  # noqa: E402
from simulator.fit import FitConfig, fit_catalog  # noqa: E402
from simulator.synthetic import SyntheticConfig, generate_world  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skus", type=int, default=20_000)
    ap.add_argument("--weeks", type=int, default=52)
    ap.add_argument("--categories", type=int, default=40)
    ap.add_argument("--cpus", type=int, default=2)
    args = ap.parse_args()
    world = generate_world(
        SyntheticConfig(
            n_skus=args.skus,
            n_weeks=args.weeks,
            n_categories=args.categories,
            seed=0,
            with_baskets=False,
        )
    )
    panel = build_panel(Dataset(tables=world.tables, source="synthetic", fingerprint="bench"))
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    engines = {"local": LocalEngine(), "ray": make_engine("ray")}
    print(f"{args.skus:,} SKUs x {args.weeks} weeks, {args.categories} categories, "
          f"{len(panel):,} panel rows, Ray with {args.cpus} CPUs")  # fmt: skip
    print("| engine | wall s | driver CPU s |")
    print("|---|---|---|")
    fits = {}
    for name, engine in engines.items():
        t0, c0 = time.perf_counter(), time.process_time()
        fits[name] = fit_catalog(panel, FitConfig(), map_tasks=engine.run_tasks)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"| {name} | {wall:.1f} | {cpu:.1f} |")
    same = np.array_equal(fits["local"].catalog.elasticity, fits["ray"].catalog.elasticity)
    print(f"same elasticities on both engines: {same}")
    ray.shutdown()


if __name__ == "__main__":
    main()
