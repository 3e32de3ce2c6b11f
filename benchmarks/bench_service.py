"""The service's speed: the SKU list under 20 concurrent clients, what-ifs, and the import of
a million-SKU plan into PostgreSQL.

Run: ``.venv/bin/python benchmarks/bench_service.py [--skus 100000] [--import-skus 1000000]``;
writes ``docs/benchmarks/service.md``. Goals (issue 14, 2 cores):

- SKU list over 100 k SKUs, one page of 100 with a category filter and a sort by risk:
  p95 <= 50 ms with 20 concurrent clients;
- what-if for one SKU with 500 paired paths: p95 <= 1 s; for a category of 200 SKUs: <= 10 s;
- import of a 1 M-SKU x 12-week plan into PostgreSQL: <= 2 min.

The plans are synthetic run folders in the pipeline's export format (``sku_summary``,
``schedules`` and ``catalog`` as Parquet), 200 SKUs per category, made here because a real
run of 1 M SKUs would take hours; the API, the database and the simulations are the real
ones. Requests go over HTTP to ``deadstock serve --workers 2`` (uvicorn) in a child process.
PostgreSQL is a throwaway server started like the tests start theirs (``tests/pg.py``), or
``--pg-url``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

PAGE = ROOT / "docs" / "benchmarks" / "service.md"
COMMAND = ".venv/bin/python benchmarks/bench_service.py"
HORIZON = 12
SKUS_PER_CATEGORY = 200
LADDER = np.array([0.0, 0.1, 0.2, 0.3, 0.5, 0.7])
WEEK_ONE = "2027-01-04"
THINK_MS = 1000.0
"""Mean think time of the realistic list setting: a person reads a page before the next."""
THINK_REQUESTS = 10
PARTS = ("list", "whatif", "import")
CURRENCY = "USD"


# ------------------------------------------------------------------------------ synthetic plan
def write_plan(folder: Path, n_skus: int, seed: int = 0) -> Path:
    """A run output folder with ``n_skus`` SKUs (200 per category) and a 12-week plan."""
    from service.db.models import SUMMARY_FLOATS
    from simulator.demand import SEASON_PERIOD, Catalog

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    n = n_skus
    sku = np.array([f"S{i:07d}" for i in range(n)], dtype=object)
    cat_id = np.arange(n) // SKUS_PER_CATEGORY
    category = np.array([f"CAT{c:05d}" for c in cat_id], dtype=object)
    n_cat = int(cat_id.max()) + 1
    # one season per category (the fit pools it), so the catalog file stays compact
    season_cat = 1 + 0.2 * np.sin(
        2 * np.pi * (np.arange(SEASON_PERIOD)[None, :] / SEASON_PERIOD + rng.random((n_cat, 1)))
    )
    price = np.round(rng.uniform(1, 20, n), 2)
    cat = Catalog.build(
        n_skus=n,
        sku=sku,
        category=category,
        list_price=price,
        unit_cost=np.round(price * rng.uniform(0.4, 0.8, n), 2),
        base_demand=rng.gamma(2.0, 1.5, n),
        base_demand_se=0.2,
        season=season_cat[cat_id],
        elasticity=-rng.uniform(0.8, 3.5, n),
        elasticity_se=0.3,
        dispersion=0.3,
        holding_cost_per_unit_week=np.round(price * 0.004, 4),
        initial_stock=np.ceil(rng.uniform(5, 120, n)),
    )
    cat.to_frame().to_parquet(folder / "catalog.parquet", index=False)
    plan_key = f"bench{n:08d}s{seed}"
    risk = rng.beta(2, 5, n)
    description = np.array([f"Product {i}" for i in range(n)], dtype=object)
    summary = pd.DataFrame(
        {"plan_key": plan_key, "sku": sku, "category": category, "description": description}
    )
    summary["tier"] = np.where(risk > 0.5, "high", np.where(risk > 0.25, "medium", "low"))
    summary["top_drivers"] = "velocity_13 (+1.2); weeks_since_sale (+0.8)"
    summary["recommended_policy"] = np.where(rng.random(n) < 0.7, "ppo", "certainty_equiv")
    summary["best_heuristic"] = "certainty_equiv"
    for col in SUMMARY_FLOATS:
        summary[col] = rng.normal(0, 10, n)
    summary["risk"] = risk
    summary["list_price"], summary["unit_cost"] = cat.list_price, cat.unit_cost
    summary["initial_stock"] = cat.initial_stock
    lo, hi = summary["profit_vs_none"] - 2, summary["profit_vs_none"] + 2
    summary["profit_vs_none_ci_low"], summary["profit_vs_none_ci_high"] = lo, hi
    summary.to_parquet(folder / "sku_summary.parquet", index=False)
    # markdown-only plans on the ladder: a few steps down over the weeks
    steps = np.sort(rng.integers(0, len(LADDER), (n, HORIZON)), axis=1)
    week_start = pd.date_range(WEEK_ONE, periods=HORIZON, freq="7D").strftime("%Y-%m-%d")
    sched = pd.DataFrame(
        {
            "plan_key": plan_key,
            "sku": np.repeat(sku, HORIZON),
            "description": np.repeat(description, HORIZON),
            "week": np.tile(np.arange(1, HORIZON + 1), n),
            "week_start": np.tile(week_start.to_numpy(dtype=object), n),
            "discount": LADDER[steps].ravel(),
            "coupon": 0.0,
            "net_price": np.round(np.repeat(price, HORIZON) * (1 - LADDER[steps].ravel()), 2),
            "currency": CURRENCY,
            "expected_units": rng.gamma(2, 1, n * HORIZON),
            "expected_revenue": rng.gamma(2, 5, n * HORIZON),
            "expected_margin": rng.normal(1, 2, n * HORIZON),
            "expected_stock_left": rng.uniform(0, 100, n * HORIZON),
        }
    )
    sched.to_parquet(folder / "schedules.parquet", index=False)
    return folder


# ------------------------------------------------------------------------------ helpers
def percentiles(values: list[float]) -> dict[str, float]:
    a = np.asarray(values) * 1000
    return {"n": len(a), "p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)),
            "p99": float(np.percentile(a, 99)), "max": float(a.max())}  # fmt: skip


def import_plan(db_url: str, folder: Path) -> dict[str, float]:
    """Read the run folder and import it; seconds of each part."""
    from service import library, plans
    from service.db.engine import open_database

    db = open_database(db_url)
    t0 = time.perf_counter()
    run = library.read_run_folder(folder)
    t1 = time.perf_counter()
    with db.session() as s:
        plan, created = plans.import_run(s, run, user=None)
        s.commit()
    t2 = time.perf_counter()
    db.dispose()
    assert created
    return {"read_s": t1 - t0, "write_s": t2 - t1, "total_s": t2 - t0, "plan_id": plan.id}


def make_token(db_url: str) -> str:
    from service.db.engine import open_database
    from service.users import add_user

    db = open_database(db_url)
    with db.session() as s:
        _, token = add_user(s, f"bench-{time.time_ns()}", "pricing_lead")
        s.commit()
    db.dispose()
    return token


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process and its live child processes (uvicorn's workers)
    have used so far, from ``/proc``."""
    total = 0.0
    for p in (pid, *_children(pid)):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


@contextlib.contextmanager
def serving(db_url: str, work: Path, workers: int) -> Iterator[tuple[str, int]]:
    """``deadstock serve --workers N --no-access-log`` on a free port in a child process;
    yields its base URL and pid (the workers are its children)."""
    import httpx

    from tests.pg import free_port

    port = free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    log = open(work / f"serve-{port}.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--db", db_url,
         "--workers", str(workers), "--no-access-log"],
        cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        for _ in range(600):
            try:
                httpx.get(f"{base}/health", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        yield base, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def bench_list(
    base: str,
    token: str,
    plan_id: int,
    n_cats: int,
    clients: int,
    per_client: int,
    think_ms: float,
    server_pid: int,
) -> dict[str, float]:
    """``clients`` concurrent users (:mod:`loadgen`, a separate process on keep-alive
    connections), each ``per_client`` requests of one page of 100 SKUs of a random category
    sorted by risk, back to back or after a think time; latencies, throughput, and the CPU
    the server and the client each spent per request."""

    def run(n_clients: int, n: int, think: float, seed: int) -> dict:
        cmd = [sys.executable, str(ROOT / "benchmarks" / "loadgen.py"), base, token,
               str(plan_id), str(n_cats), "--clients", str(n_clients), "--requests", str(n),
               "--think-ms", str(think), "--seed", str(seed)]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=1800)
        return json.loads(done.stdout)

    run(2, 20, 0.0, 99)  # warm up: first queries compile, caches fill
    cpu0 = cpu_seconds(server_pid)
    r = run(clients, per_client, think_ms, 0)
    server_cpu = cpu_seconds(server_pid) - cpu0
    out = percentiles(r["latencies_s"])
    out["req_per_s"] = out["n"] / r["wall_s"]
    out["errors"] = len(r["errors"])
    out["server_cpu_ms"] = server_cpu * 1000 / out["n"]
    out["client_cpu_ms"] = r["client_cpu_s"] * 1000 / out["n"]
    out["distinct"] = r["distinct"]
    return out


def bench_whatif(base: str, token: str, plan_id: int, n_requests: int, episodes: int):
    import httpx

    headers = {"Authorization": f"Bearer {token}"}
    lat = []
    with httpx.Client(base_url=base, headers=headers, timeout=120) as c:
        for i in range(n_requests + 1):
            body = {"skus": [f"S{i * 7:07d}"], "policy": "recommended", "n_episodes": episodes}
            t = time.perf_counter()
            r = c.post(f"/plans/{plan_id}/whatif", json=body)
            dt = time.perf_counter() - t
            assert r.status_code == 200, r.text
            if i:  # the first request loads the plan's catalog
                lat.append(dt)
    return percentiles(lat)


def bench_category(base: str, token: str, plan_id: int, repeats: int, episodes: int):
    import httpx

    headers = {"Authorization": f"Bearer {token}"}
    walls = []
    with httpx.Client(base_url=base, headers=headers, timeout=120) as c:
        for k in range(repeats):
            body = {"category": f"CAT{k:05d}", "policy": "recommended", "n_episodes": episodes}
            t = time.perf_counter()
            r = c.post(f"/plans/{plan_id}/whatif/tasks", json=body)
            assert r.status_code == 202, r.text
            task = r.json()
            while task["status"] in ("queued", "running"):
                time.sleep(0.05)
                task = c.get(f"/whatif/tasks/{task['id']}").json()
            assert task["status"] == "succeeded", task
            assert task["total"] == SKUS_PER_CATEGORY
            walls.append(time.perf_counter() - t)
    return {"n": repeats, "best_s": min(walls), "max_s": max(walls)}


@contextlib.contextmanager
def postgres(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from tests.pg import bin_dir, fresh_database, running_server

    binaries = bin_dir()
    if binaries is None:
        raise SystemExit("no PostgreSQL binaries: install Debian's postgresql or give --pg-url")
    with running_server(binaries) as server:
        yield fresh_database(server)


# ------------------------------------------------------------------------------ main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skus", type=int, default=100_000, help="SKUs of the served plan")
    parser.add_argument("--import-skus", type=int, default=1_000_000, help="SKUs imported")
    parser.add_argument("--clients", type=int, default=20, help="concurrent list clients")
    parser.add_argument("--requests", type=int, default=25, help="list requests per client")
    parser.add_argument("--think-ms", type=float, default=THINK_MS,
                        help="mean think time of the second list setting")  # fmt: skip
    parser.add_argument("--workers", type=int, default=2, help="API processes served")
    parser.add_argument("--episodes", type=int, default=500, help="what-if paired paths")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"comma-separated parts to run, of {', '.join(PARTS)} (the page "
                        "is written only when all run)")  # fmt: skip
    parser.add_argument("--pg-url", default=None, help="PostgreSQL URL (default: start one)")
    parser.add_argument("--no-page", action="store_true", help="print, do not write the page")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    if not parts <= set(PARTS):
        parser.error(f"--parts: expected some of {PARTS}")
    from _docpage import machine_line, write_section

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    load_before = os.getloadavg()[0]
    results: dict[str, dict] = {}
    with (
        tempfile.TemporaryDirectory(prefix="deadstock-bench-svc-") as tmp,
        postgres(args.pg_url) as pg_url,
    ):
        work = Path(tmp)
        print(f"[bench] writing a {args.skus:,}-SKU plan", file=sys.stderr)
        small = write_plan(work / "plan-small", args.skus)
        n_cats = args.skus // SKUS_PER_CATEGORY
        backends = (("sqlite", f"sqlite:///{work / 'service.db'}"), ("postgres", pg_url))
        for backend, url in backends if parts & {"list", "whatif"} else ():
            print(f"[bench] {backend}: import and serve", file=sys.stderr)
            results[f"import_small_{backend}"] = imp = import_plan(url, small)
            token = make_token(url)
            with serving(url, work, args.workers) as (base, pid):
                for name, think in (("list", 0.0), ("list_think", args.think_ms)):
                    if "list" not in parts:
                        break
                    print(f"[bench] {backend}: SKU list, {args.clients} clients, think time "
                          f"{think:.0f} ms", file=sys.stderr)  # fmt: skip
                    n = args.requests if think == 0 else THINK_REQUESTS
                    results[f"{name}_{backend}"] = bench_list(
                        base, token, imp["plan_id"], n_cats, args.clients, n, think, pid
                    )
                if backend == "sqlite" and "whatif" in parts:
                    print("[bench] what-if, one SKU and a category", file=sys.stderr)
                    results["whatif_one"] = bench_whatif(base, token, imp["plan_id"], 20,
                                                         args.episodes)  # fmt: skip
                    results["whatif_category"] = bench_category(base, token, imp["plan_id"], 3,
                                                                args.episodes)  # fmt: skip
        if "import" in parts:
            print(f"[bench] writing a {args.import_skus:,}-SKU plan", file=sys.stderr)
            big = write_plan(work / "plan-big", args.import_skus, seed=1)
            print("[bench] importing it into PostgreSQL", file=sys.stderr)
            results["import_big"] = import_plan(pg_url, big)
    load_after = os.getloadavg()[0]
    if parts != set(PARTS):
        print(json.dumps(results, indent=1, default=str))
        return
    body = page(args, results, load_before, load_after, machine_line())
    if not args.no_page:
        write_section(PAGE, "service", body, title="Service benchmarks")
    print(body)


def page(args, r: dict, load_before: float, load_after: float, machine: str) -> str:
    def met(ok: bool) -> str:
        return "yes" if ok else "**no**"

    lines = [
        "## REST API and database",
        "",
        f"Produced by `{COMMAND}`; synthetic plans of {args.skus:,} and {args.import_skus:,} "
        f"SKUs x {HORIZON} weeks, {SKUS_PER_CATEGORY} SKUs per category, served over HTTP by "
        f"`deadstock serve --workers {args.workers} --no-access-log` (uvicorn, {args.workers} "
        "worker processes); the list's load comes from `benchmarks/loadgen.py`, a separate "
        "process (asyncio, one keep-alive connection per client, requests pre-built, answers "
        "checked by scanning bytes) on the same 2 cores. Each request asks for a random "
        "category's first page, so only repeats can come from the servers' page caches "
        "(each worker has its own): the distinct pages are given. The goal is for the closed "
        "loop; the think-time setting is the realistic one (people read a page before asking "
        "for the next). CPU per request counts all server processes. Times in ms unless "
        "marked.",
        "",
        "| measurement | p50 | p95 | p99 | goal | met |",
        "|---|---|---|---|---|---|",
    ]
    for backend in ("sqlite", "postgres"):
        for name, setting in (
            ("list", f"{args.clients} concurrent clients back to back (closed loop)"),
            ("list_think", f"{args.clients} concurrent users, {args.think_ms:.0f} ms mean "
             "think time between requests"),
        ):  # fmt: skip
            x = r[f"{name}_{backend}"]
            lines.append(
                f"| SKU list on {backend}: page of 100, category filter, sort by risk, "
                f"{setting} ({x['n']} requests for {x['distinct']} distinct pages, "
                f"{x['req_per_s']:.0f} req/s, {x['errors']} "
                f"errors; CPU per request: server {x['server_cpu_ms']:.1f} ms, load generator "
                f"{x['client_cpu_ms']:.1f} ms) | {x['p50']:.1f} | {x['p95']:.1f} | "
                f"{x['p99']:.1f} | p95 <= 50 | {met(x['p95'] <= 50)} |"
            )
    w = r["whatif_one"]
    lines.append(
        f"| what-if, one SKU, {args.episodes} paired paths ({w['n']} requests) | "
        f"{w['p50']:.0f} | {w['p95']:.0f} | {w['p99']:.0f} | p95 <= 1000 | "
        f"{met(w['p95'] <= 1000)} |"
    )
    c = r["whatif_category"]
    lines.append(
        f"| what-if task, a category of {SKUS_PER_CATEGORY} SKUs, {args.episodes} paired paths "
        f"(best and worst of {c['n']}, submit to result) | {c['best_s']:.2f} s | "
        f"{c['max_s']:.2f} s | | <= 10 s | {met(c['max_s'] <= 10)} |"
    )
    b = r["import_big"]
    lines += [
        "",
        "| import | read the run folder s | write to the database s | total s | goal | met |",
        "|---|---|---|---|---|---|",
    ]
    for backend in ("sqlite", "postgres"):
        x = r[f"import_small_{backend}"]
        lines.append(
            f"| {args.skus:,} SKUs into {backend} | {x['read_s']:.1f} | {x['write_s']:.1f} | "
            f"{x['total_s']:.1f} | | |"
        )
    lines.append(
        f"| {args.import_skus:,} SKUs x {HORIZON} weeks into PostgreSQL | {b['read_s']:.1f} | "
        f"{b['write_s']:.1f} | {b['total_s']:.1f} | <= 120 s | {met(b['total_s'] <= 120)} |"
    )
    lines += [
        "",
        f"Machine: {machine}. Load average (1 min) {load_before:.1f} before and "
        f"{load_after:.1f} after: above 2 means other work shared the 2 cores and the times "
        "are inflated.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
