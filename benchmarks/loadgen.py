"""A lean HTTP load generator for the SKU list: ``clients`` concurrent users in one asyncio
process, each on its own keep-alive HTTP/1.1 connection, requesting a page of 100 SKUs of a
random category sorted by risk, one request after the other (closed loop) or with a think
time between requests.

Run by ``bench_service.py`` in a separate process so that it does not share the server's
interpreter; it writes one JSON object to stdout: each request's latency (s), the wall time,
its own CPU time (so the page can state what the client cost) and the count of bad answers.
The client speaks HTTP over raw asyncio streams instead of an HTTP library, with every
request's bytes built before the clock starts, and checks each answer by scanning bytes
(status 200, a JSON body of exactly 100 SKU items) instead of decoding its JSON: a full client
costs more CPU per request than the server's answer, and on 2 shared cores the client's CPU
is taken from the server being measured (a real client runs on its own machine). What it
still costs is measured and reported (``client_cpu_s``).

Usage: ``python benchmarks/loadgen.py URL TOKEN PLAN_ID N_CATEGORIES --clients 20
--requests 25 [--think-ms 0] [--seed 0]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from urllib.parse import urlsplit

PAGE = 100


ITEM = b'{"sku":'
"""How each SKU item of the list's JSON starts (the server writes compact JSON)."""


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])  # "HTTP/1.1 200 OK"
    at = head.lower().find(b"content-length:")
    length = int(head[at + 15 : head.index(b"\r\n", at)]) if at >= 0 else 0
    body = await reader.readexactly(length) if length else b""
    return status, body


async def _user(
    i: int, args: argparse.Namespace, lat: list[float], bad: list[str], start: asyncio.Event
) -> None:
    rng = random.Random(args.seed * 1_000_003 + i)
    url = urlsplit(args.url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    path = f"{url.path.rstrip('/')}/plans/{args.plan_id}/skus"
    head = f"Host: {url.hostname}:{url.port}\r\nAuthorization: Bearer {args.token}\r\n"
    requests = []
    for _ in range(args.requests):
        cat = f"CAT{rng.randrange(args.n_categories):05d}"
        line = f"GET {path}?category={cat}&sort=-risk&limit={PAGE} HTTP/1.1\r\n{head}\r\n"
        requests.append(line.encode())
    await start.wait()
    try:
        for req in requests:
            if args.think_ms:
                # exponential think time: users do not click in lockstep
                await asyncio.sleep(rng.expovariate(1000.0 / args.think_ms))
            t = time.perf_counter()
            if reader.at_eof():
                # the server closes a connection idle past its keep-alive timeout (uvicorn: 5
                # s), as after a long think time: open a new one, as a browser would
                writer.close()
                reader, writer = await asyncio.open_connection(url.hostname, url.port)
            writer.write(req)
            status, body = await _read_response(reader)
            lat.append(time.perf_counter() - t)
            if status != 200:
                bad.append(f"HTTP {status}")
            elif body.count(ITEM) != PAGE or not body.endswith(b"}"):
                bad.append("short page")
    finally:
        writer.close()


def _distinct_queries(args: argparse.Namespace) -> int:
    """How many different pages the run asks for (the rest can be answered from the
    server's page cache)."""
    cats = set()
    for i in range(args.clients):
        rng = random.Random(args.seed * 1_000_003 + i)
        cats.update(rng.randrange(args.n_categories) for _ in range(args.requests))
    return len(cats)


async def _run(args: argparse.Namespace) -> dict[str, object]:
    lat: list[float] = []
    bad: list[str] = []
    start = asyncio.Event()
    users = [asyncio.create_task(_user(i, args, lat, bad, start)) for i in range(args.clients)]
    await asyncio.sleep(0.2)  # every connection open before the clock starts
    cpu0, t0 = time.process_time(), time.perf_counter()
    start.set()
    await asyncio.gather(*users)
    return {
        "latencies_s": lat,
        "wall_s": time.perf_counter() - t0,
        "client_cpu_s": time.process_time() - cpu0,
        "errors": bad,
        "distinct": _distinct_queries(args),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("url", help="the API's base URL, e.g. http://127.0.0.1:8000/api/v1")
    p.add_argument("token")
    p.add_argument("plan_id", type=int)
    p.add_argument("n_categories", type=int)
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--requests", type=int, default=25, help="requests per client")
    p.add_argument("--think-ms", type=float, default=0.0, help="mean think time per request")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    out = asyncio.run(_run(args))
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
