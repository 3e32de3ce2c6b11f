"""The scale job from a partitioned source at 1 M, 3 M and 10 M synthetic SKUs x 12 weeks.

Each size runs in its own process (so its peak memory is its own) through four stages:

1. write: :func:`simulator.bulk.write_bulk` generates the tables block by block into a
   partitioned folder (``sales/week=W/part-K.parquet``, ``stock/week=W/...``, ``products/``);
2. aggregate: :func:`app.streaming.stream_aggregates` streams it by shard of 250 k SKUs
   (every file validated) into per-SKU aggregates;
3. catalog: :func:`app.streaming.category_elasticity` pools one elasticity per category;
4. plan+export: :func:`app.streaming.export_sharded` builds a catalog per shard of 1 M SKUs
   and plans it with the weeks-of-cover heuristic through
   :func:`app.exports.export_schedules_bulk` (local engine, 12-week horizon, one simulation
   episode), one Parquet file per shard, swapped in atomically.

Peak memory is the process's resident set (a sampler thread every 0.2 s for each stage,
``getrusage`` for the whole). Writes section ``data`` of ``docs/benchmarks/scale.md`` after
each size (so a size that is still running does not hold back the others) and the plot
``docs/img/scale_time_memory.png``.

    nice -n 10 .venv/bin/python benchmarks/bench_scale_data.py --sizes 1000000 3000000 10000000
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PAGE = ROOT / "docs" / "benchmarks" / "scale.md"
TITLE = "Scale: engines, partitioned sources and sweeps"
PLOT = ROOT / "docs" / "img" / "scale_time_memory.png"
RESULTS = ROOT / "docs" / "benchmarks" / "scale_data.json"
STAGES = ("write", "aggregate", "catalog", "export")
WEEKS = 12
HORIZON = 12
EXPORT_SHARD_SKUS = 1_000_000
MEMORY_GOAL_GB = 8.0
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
#: One size's measurements (JSON-ready; a stage not reached has no keys).
Record = dict[str, Any]


class PeakRSS:
    """Highest resident set size seen by a sampler thread while the block runs."""

    def __init__(self, every_s: float = 0.2) -> None:
        self.every_s = every_s
        self.peak = 0
        self._stop = threading.Event()

    @staticmethod
    def now() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * _PAGE_BYTES

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.peak = max(self.peak, self.now())

    def __enter__(self) -> PeakRSS:
        self.peak = self.now()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.now())


def run_one(n_skus: int, seed: int, work: Path) -> Record:
    """All four stages for one size, in this process; returns the measurements."""
    from agents.baselines import WeeksOfCover
    from app.pipeline_config import DEFAULT_RULES
    from app.streaming import category_elasticity, export_sharded, stream_aggregates
    from simulator.bulk import write_bulk

    src, out = work / "source", work / "export"
    rec: Record = {"n_skus": n_skus, "load_start": os.getloadavg()[0]}
    t_all = time.perf_counter()

    def stage(name: str, fn):
        t0, c0 = time.perf_counter(), time.process_time()
        with PeakRSS() as rss:
            value = fn()
        rec[f"{name}_s"] = time.perf_counter() - t0
        # CPU seconds of every thread of the process: the cost on a core, which other jobs
        # on a shared machine inflate far less than the wall time.
        rec[f"{name}_cpu_s"] = time.process_time() - c0
        rec[f"{name}_peak_gb"] = rss.peak / 1e9
        print(f"[{n_skus:,}] {name}: {rec[f'{name}_s']:.1f} s, peak {rss.peak / 1e9:.2f} GB",
              file=sys.stderr, flush=True)  # fmt: skip
        return value

    rows = stage("write", lambda: write_bulk(src, n_skus, WEEKS, seed, progress=False))
    rec["sales_rows"] = rows["sales"]
    rec["stock_rows"] = rows["stock"]
    rec["source_mb"] = sum(p.stat().st_size for p in src.rglob("*.parquet")) / 1e6
    aggs = stage("aggregate", lambda: stream_aggregates(src))
    elasticity = stage("catalog", lambda: category_elasticity(aggs))

    def export() -> int:
        written = 0
        for _done, rows in export_sharded(
            WeeksOfCover(), aggs, elasticity, DEFAULT_RULES, HORIZON, out,
            plan_key="scale", shard_skus=EXPORT_SHARD_SKUS, n_episodes=1, seed=seed,
        ):  # fmt: skip
            written = rows
        return written

    rec["export_rows"] = stage("export", export)
    rec["total_s"] = time.perf_counter() - t_all
    rec["total_cpu_s"] = sum(float(rec[f"{s}_cpu_s"]) for s in STAGES)
    rec["peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
    rec["load_end"] = os.getloadavg()[0]
    return rec


def _plot(records: list[Record]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ingest.io import write_figure_atomic

    def series(key: str, scale: float = 1.0) -> tuple[list[float], list[float]]:
        done = [r for r in records if r.get(key) is not None]
        return [float(r["n_skus"]) / 1e6 for r in done], [float(r[key]) / scale for r in done]

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for s in STAGES:
        a.plot(*series(f"{s}_s", 60.0), "o-", label=s)
    a.plot(*series("total_s", 60.0), "k^-", label="total (complete runs)")
    a.plot(*series("total_cpu_s", 60.0), "k^:", label="total CPU time")
    a.set(xlabel="SKUs (millions, x 12 weeks)", ylabel="wall time (min)", title="Time")
    a.legend()
    b.plot(*series("peak_gb"), "ko-", label="process peak (stages reached)")
    for s in STAGES:
        b.plot(*series(f"{s}_peak_gb"), ".--", label=s)
    b.axhline(MEMORY_GOAL_GB, color="r", lw=0.8, label="8 GB goal")
    b.set(xlabel="SKUs (millions, x 12 weeks)", ylabel="peak RSS (GB)", title="Memory")
    b.legend()
    fig.suptitle("Partitioned source -> streamed aggregates -> plan and export (2 shared cores)")
    fig.tight_layout()
    write_figure_atomic(fig, PLOT, dpi=110)
    plt.close(fig)


def _num(value: Any, fmt: str, unit: str = "") -> str:
    """``value`` formatted, or a dash when it was not measured."""
    return "-" if value is None else f"{float(value):{fmt}}{unit}"


def _div(value: Any, by: float) -> float | None:
    return None if value is None else float(value) / by


_STAGE_LINE = re.compile(r"^\[([\d,]+)\] (\w+): ([\d.]+) s, peak ([\d.]+) GB$")


def records_from_log(log: Path, complete: list[Record]) -> list[Record]:
    """Sizes of a run's log that did not finish, rebuilt from its stage lines (marked
    ``partial`` with the stage that was running), after the ``complete`` ones."""
    done = {int(r["n_skus"]) for r in complete}
    found: dict[int, Record] = {}
    for line in log.read_text(encoding="utf-8").splitlines():
        m = _STAGE_LINE.match(line.strip())
        if m is None:
            continue
        n = int(m.group(1).replace(",", ""))
        rec = found.setdefault(n, {"n_skus": n})
        rec[f"{m.group(2)}_s"] = float(m.group(3))
        rec[f"{m.group(2)}_peak_gb"] = float(m.group(4))
    partial = []
    for n, rec in found.items():
        if n in done:
            continue
        missing = [s for s in STAGES if f"{s}_s" not in rec]
        rec["partial"] = missing[0] if missing else "the end"
        peaks = [float(rec[f"{s}_peak_gb"]) for s in STAGES if f"{s}_peak_gb" in rec]
        rec["peak_gb"] = max(peaks) if peaks else None
        rec["load_end"] = os.getloadavg()[0]
        partial.append(rec)
    return sorted([*complete, *partial], key=lambda r: int(r["n_skus"]))


def _section(records: list[Record], pending: list[int]) -> str:
    from benchmarks._docpage import machine_line

    lines = [
        "## Streaming a partitioned source: 1 M, 3 M and 10 M SKUs x 12 weeks",
        "",
        f"Machine: {machine_line()}. Run with `nice -n 10` beside other work; the load "
        "average (1 min) at the start and end of each size is shown. Script: "
        "`benchmarks/bench_scale_data.py` (stages in its docstring; one process per size).",
        "",
        "| SKUs | sales rows | source | write | aggregate | catalog | plan+export | total "
        "| peak RSS | per SKU | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        lines.append(
            f"| {int(r['n_skus']):,} | {_num(r.get('sales_rows'), ',.0f')} "
            f"| {_num(r.get('source_mb'), ',.0f', ' MB')} | "
            + " | ".join(_num(r.get(f"{s}_s"), ",.0f", " s") for s in STAGES)
            + f" | {_num(_div(r.get('total_s'), 60.0), ',.1f', ' min')} "
            f"| {_num(r.get('peak_gb'), '.2f', ' GB')} "
            f"| {_num(_div(r.get('total_s'), int(r['n_skus']) / 1e6), ',.0f', ' us')} "
            f"| {_num(r.get('load_start'), '.1f')} / {_num(r.get('load_end'), '.1f')} |"
        )
    lines += ["", "Cost per SKU by stage (microseconds of wall time per SKU):", "",
              "| SKUs | " + " | ".join(STAGES) + " |", "|---|" + "---|" * len(STAGES)]  # fmt: skip
    for r in records:
        n = int(r["n_skus"])
        lines.append(
            f"| {n:,} | "
            + " | ".join(_num(_div(r.get(f"{s}_s"), n / 1e6), ",.0f") for s in STAGES)
            + " |"
        )
    lines += ["", "CPU cost per SKU by stage (microseconds of CPU time of the process, all its "
              "threads, per SKU; what the sizing model uses, as other jobs on the machine "
              "inflate it far less than the wall time):", "",
              "| SKUs | " + " | ".join(STAGES) + " | total |", "|---|" + "---|" * (len(STAGES) + 1)]  # fmt: skip
    for r in records:
        n = int(r["n_skus"])
        lines.append(
            f"| {n:,} | "
            + " | ".join(_num(_div(r.get(f"{s}_cpu_s"), n / 1e6), ",.0f") for s in STAGES)
            + f" | {_num(_div(r.get('total_cpu_s'), n / 1e6), ',.0f')} |"
        )
    lines += ["", "Peak RSS by stage (GB):", "", "| SKUs | " + " | ".join(STAGES) + " |",
              "|---|" + "---|" * len(STAGES)]  # fmt: skip
    for r in records:
        lines.append(
            f"| {int(r['n_skus']):,} | "
            + " | ".join(_num(r.get(f"{s}_peak_gb"), ".2f") for s in STAGES)
            + " |"
        )
    partial = [r for r in records if r.get("partial")]
    if partial:
        lines += ["", "A dash is a stage not reached: "
                  + "; ".join(f"the {int(r['n_skus']):,}-SKU run was stopped during "
                              f"{r['partial']}" for r in partial)
                  + " (the session's time ran out). Its figures come from the stage lines of "
                  "the run's log (`--from-log`); its load is the load when the section was "
                  "written."]  # fmt: skip
    if pending:
        lines += ["", "Not measured in this run: " + ", ".join(f"{n:,}" for n in pending)
                  + " SKUs (the run was stopped before they finished)."]  # fmt: skip
    lines += ["", "![time and memory against SKUs](../img/scale_time_memory.png)"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 3_000_000, 10_000_000])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--one", type=int, help=argparse.SUPPRESS)
    p.add_argument("--work", help="scratch folder (default: a temporary one per size)")
    p.add_argument(
        "--from-log",
        help="rewrite the section and plot from the saved results plus the stage lines of "
        "this log (sizes a stopped run did not finish)",
    )
    args = p.parse_args(argv)
    if args.one is not None:
        with tempfile.TemporaryDirectory(prefix="scale-", dir=args.work) as tmp:
            print(json.dumps(run_one(args.one, args.seed, Path(tmp))))
        return 0
    from benchmarks._docpage import write_section
    from ingest.io import write_text_atomic

    if args.from_log:
        complete = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else []
        rebuilt = records_from_log(Path(args.from_log), complete)
        _plot(rebuilt)
        write_section(PAGE, "data", _section(rebuilt, []), title=TITLE)
        print(f"wrote {PAGE} from {args.from_log}", file=sys.stderr)
        return 0

    records: list[Record] = []
    for k, n in enumerate(args.sizes):
        cmd = [sys.executable, __file__, "--one", str(n), "--seed", str(args.seed)]
        if args.work:
            cmd += ["--work", args.work]
        done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True)
        records.append(json.loads(done.stdout.strip().splitlines()[-1]))
        records.sort(key=lambda r: int(r["n_skus"]))
        write_text_atomic(RESULTS, json.dumps(records, indent=1) + "\n")
        _plot(records)
        write_section(PAGE, "data", _section(records, args.sizes[k + 1 :]), title=TITLE)
        print(f"wrote {PAGE} ({n:,} SKUs done)", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
