"""How the Ray engine's ``data`` mode should hand its blocks to Ray Data: a dataset of block
indices with the blocks' object-store refs given to the actors (what ``app/engine.py`` does),
or a dataset of the pickled blocks (``ray.data.from_items`` of bytes).

Run ``nice -n 10 .venv/bin/python benchmarks/bench_ray_data_inputs.py [--n-skus 400000]
[--block-skus 100000]``; it prints, for each form, the driver's CPU time to build the input
and the wall time of a ``map_batches`` whose function only reads the block (so the figures
are the hand-over's cost, not the work's). Both forms run on a local Ray with 2 CPUs (one
actor) and their results are checked to be the same.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _skus(shared: Any, block: Any) -> int:
    return int(block.n_skus) + int(shared)


class _FromBytes:
    """The pickled-blocks form's callable class (the same work as ``_skus``)."""

    def __init__(self, shared_box: list[Any]) -> None:
        import ray

        self._shared = ray.get(shared_box[0])

    def __call__(self, batch: Any) -> Any:
        import pickle

        import pyarrow as pa

        out = [_skus(self._shared, pickle.loads(b)) for b in batch.column("block").to_pylist()]
        return pa.table({"k": batch.column("k"), "out": pa.array(out, pa.int64())})


def bench(n_skus: int, block_skus: int) -> list[str]:
    import pickle

    import ray

    from app.engine import RayEngine, _quiet_ray_data
    from benchmarks.bench_pipeline import _catalog
    from simulator.demand import Catalog

    engine = RayEngine(None, num_cpus=2, mode="data")
    ray_data = _quiet_ray_data()
    catalog = _catalog(n_skus, np.random.default_rng(0), Catalog)
    starts = range(0, n_skus, block_skus)
    lines = []

    # warm-up: Ray Data's first dataset imports and starts more than later ones do
    list(engine.map_blocks(_skus, (catalog.take(np.arange(2)) for _ in range(2)), 0))

    # 1. indices + refs (app/engine.py): the blocks are put in the object store as they are cut
    c0, t0 = time.process_time(), time.perf_counter()
    refs_out = list(
        engine.map_blocks(
            _skus, (catalog.take(np.arange(s, min(s + block_skus, n_skus))) for s in starts), 0
        )
    )
    lines.append(
        f"indices + refs: driver CPU {time.process_time() - c0:.2f} s, "
        f"wall {time.perf_counter() - t0:.2f} s"
    )

    # 2. the pickled blocks as the dataset's rows
    c0, t0 = time.process_time(), time.perf_counter()
    items = [
        {"k": k, "block": pickle.dumps(catalog.take(np.arange(s, min(s + block_skus, n_skus))))}
        for k, s in enumerate(starts)
    ]
    ds = ray_data.from_items(items, override_num_blocks=len(items))
    del items
    ds.context.enable_progress_bars = False
    ds.context.execution_options.preserve_order = True
    ds = ds.map_batches(
        _FromBytes,
        fn_constructor_args=([ray.put(0)],),
        batch_size=1,
        batch_format="pyarrow",
        concurrency=1,
        num_cpus=1,
    )
    bytes_out = [row["out"] for row in ds.iter_rows()]
    lines.append(
        f"pickled blocks: driver CPU {time.process_time() - c0:.2f} s, "
        f"wall {time.perf_counter() - t0:.2f} s"
    )
    if refs_out != bytes_out:
        raise SystemExit(f"the two forms differ: {refs_out} != {bytes_out}")
    lines.append(
        f"{len(refs_out)} blocks of up to {block_skus:,} SKUs ({n_skus:,} SKUs), same results; "
        f"load avg {os.getloadavg()[0]:.1f}"
    )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-skus", type=int, default=400_000)
    p.add_argument("--block-skus", type=int, default=100_000)
    args = p.parse_args(argv)
    for line in bench(args.n_skus, args.block_skus):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
