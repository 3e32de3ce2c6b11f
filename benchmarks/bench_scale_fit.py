"""Time the demand fit on the local and the Ray engine (one task per category group).

Generates a synthetic world (``simulator.synthetic.generate_world``, seed 0), builds its
panel and fits it with ``map_tasks`` = ``LocalEngine().run_tasks`` and then
``RayEngine().run_tasks`` (a local Ray with ``--cpus`` CPUs, started before the clock; or
the Ray this process already runs). Reports the wall time and the driver's CPU time of each
and the largest elasticity difference between the two fits (0: the same arrays). Ray's
workers' CPU time is not the driver's, so the driver's CPU time on Ray shows what the driver
itself still does (panel preparation, shrinkage, commercial fields).

Run ``nice -n 10 .venv/bin/python benchmarks/bench_scale_fit.py [--skus 20000] [--weeks 52]
[--categories 40] [--cpus 2]``; it writes section ``fit`` of ``docs/benchmarks/scale.md`` and
the figures to ``docs/benchmarks/scale_fit.json`` (``--no-write``: print only;
``--from-json``: write the section again from that file's figures, measuring nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._docpage import machine_line, write_section  # noqa: E402

PAGE = ROOT / "docs" / "benchmarks" / "scale.md"
RESULTS = ROOT / "docs" / "benchmarks" / "scale_fit.json"
TITLE = "Scale: engines, partitioned sources and sweeps"
SECTION = "fit"
ENGINES = ("local", "ray")


def bench(skus: int, weeks: int, categories: int, cpus: int) -> dict[str, Any]:
    """Fit one synthetic world on both engines.

    Returns
    -------
    dict
        The world's size, per engine ``wall_s``, ``cpu_s`` (the driver's) and the load
        average after its fit, ``ray_start_s``, the machine (``cpu_cores``, ``machine``),
        ``max_abs_elasticity_diff`` (Ray - local) and ``elasticities`` (per engine, for a
        caller that checks the difference).
    """
    from app.engine import LocalEngine, RayEngine
    from ingest.dataset import Dataset
    from ingest.panel import build_panel
    from simulator.fit import FitConfig, fit_catalog
    from simulator.synthetic import SyntheticConfig, generate_world

    world = generate_world(
        SyntheticConfig(
            n_skus=skus, n_weeks=weeks, n_categories=categories, seed=0, with_baskets=False
        )
    )
    panel = build_panel(Dataset(tables=world.tables, source="synthetic", fingerprint="bench"))
    t0 = time.perf_counter()
    ray_engine = RayEngine(None, num_cpus=cpus)
    ray_start_s = time.perf_counter() - t0
    import ray

    ray_cpus = int(ray.cluster_resources().get("CPU", 0))
    out: dict[str, Any] = {
        "skus": skus,
        "weeks": weeks,
        "categories": categories,
        "panel_rows": len(panel),
        "ray_cpus": ray_cpus,
        "ray_start_s": ray_start_s,
        "cpu_cores": os.cpu_count(),
        "machine": machine_line(),
        "engines": {},
        "elasticities": {},
    }
    for name, engine in (("local", LocalEngine()), ("ray", ray_engine)):
        t0, c0 = time.perf_counter(), time.process_time()
        fit = fit_catalog(panel, FitConfig(), map_tasks=engine.run_tasks)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        out["engines"][name] = {"wall_s": wall, "cpu_s": cpu, "load": os.getloadavg()[0]}
        out["elasticities"][name] = np.asarray(fit.catalog.elasticity, float)
        print(f"{name}: {wall:.1f} s wall, {cpu:.1f} s driver CPU", file=sys.stderr)
    diff = out["elasticities"]["ray"] - out["elasticities"]["local"]
    out["max_abs_elasticity_diff"] = float(np.max(np.abs(diff))) if diff.size else 0.0
    return out


def section(result: dict[str, Any], command: str) -> str:
    """The page section of a :func:`bench` result."""
    rows = [
        f"| {name} | {e['wall_s']:.1f} | {e['cpu_s']:.1f} | {e['load']:.1f} |"
        for name, e in result["engines"].items()
    ]
    local, ray = result["engines"]["local"], result["engines"]["ray"]
    diff = result["max_abs_elasticity_diff"]
    load = max(e["load"] for e in result["engines"].values())
    cores = result.get("cpu_cores") or os.cpu_count() or 1
    loaded = (
        f"The load average reached {load:.1f} on {cores} cores: each fit got a share "
        "of the cores, so the wall times say as much about the other jobs as about the "
        "engines, and even CPU times run high on oversubscribed cores."
        if load > cores
        else "The machine was not overloaded (load average at most the core count)."
    )
    same = "the same elasticities" if diff == 0 else f"elasticities {diff:.2g} apart at most"
    return "\n".join(
        [
            "## The demand fit on the engines",
            "",
            f"`{command}`: a synthetic world of {result['skus']:,} SKUs x {result['weeks']} "
            f"weeks in {result['categories']} categories (seed 0), {result['panel_rows']:,} "
            "panel rows; each category group's GLM one task, the shrinkage in the driver; Ray "
            f"local with {result['ray_cpus']} CPUs, started before the clock "
            f"({result['ray_start_s']:.1f} s).",
            "",
            f"Machine: {result.get('machine') or machine_line()}; run with `nice -n 10` beside other jobs, so wall "
            "times are inflated; the load average (1 min) after each fit is in the table. "
            "Figures also in `docs/benchmarks/scale_fit.json`.",
            "",
            "| engine | wall s | driver CPU s | load avg |",
            "|---|---|---|---|",
            *rows,
            "",
            f"- Both engines give {same} (largest |Ray - local| = {diff:.3g}).",
            f"- The driver keeps {ray['cpu_s']:.1f} s of CPU on Ray against {local['cpu_s']:.1f} s "
            "locally (panel preparation, shrinkage, commercial fields); the groups' GLMs run on "
            "the workers, so on a cluster the fit scales with the workers up to one per "
            "category group.",
            f"- Ray / local wall time = {ray['wall_s'] / local['wall_s']:.2f}. " + loaded,
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--skus", type=int, default=20_000)
    p.add_argument("--weeks", type=int, default=52)
    p.add_argument("--categories", type=int, default=40)
    p.add_argument("--cpus", type=int, default=2)
    p.add_argument("--page", type=Path, default=PAGE, help="the page whose section is written")
    p.add_argument("--json", type=Path, default=RESULTS, help="where the figures go")
    p.add_argument("--no-write", action="store_true", help="print, do not write the files")
    p.add_argument(
        "--from-json",
        action="store_true",
        help="measure nothing: write the section again from the figures in --json",
    )
    args = p.parse_args(argv)
    if args.from_json:
        record = json.loads(args.json.read_text(encoding="utf-8"))
        body = section(record, record["command"])
        print(body)
        if not args.no_write:
            write_section(args.page, SECTION, body, title=TITLE)
        return 0
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    started = not ray.is_initialized()
    try:
        result = bench(args.skus, args.weeks, args.categories, args.cpus)
    finally:
        if started and ray.is_initialized():
            ray.shutdown()
    command = (
        f"benchmarks/bench_scale_fit.py --skus {args.skus} --weeks {args.weeks} "
        f"--categories {args.categories} --cpus {args.cpus}"
    )
    body = section(result, command)
    print(body)
    if not args.no_write:
        from ingest.io import write_text_atomic

        record = {k: v for k, v in result.items() if k != "elasticities"}
        record["command"] = command
        write_text_atomic(args.json, json.dumps(record, indent=1) + "\n")
        write_section(args.page, SECTION, body, title=TITLE)
        print(f"wrote {args.page} and {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
