"""What blocking costs the risk scoring and the main job's export tables on the local engine.

Measures CPU time (``time.process_time``: this process only, so other jobs on a shared
machine distort it less than wall time) of

1. scoring ``--skus`` synthetic SKUs (a logistic regression trained on a 3,000-SKU synthetic
   world, its features tiled with noise) with risk, tier and top 3 drivers, in one block and
   in blocks of ``risk.block_skus`` (50,000 by default) and 10,000; and the logistic
   regression's raw score alone with scikit-learn's BLAS product and with
   :class:`risk_model.models.RowwiseLogisticRegression`'s feature-by-feature sum;
2. building the ``schedules`` and ``sku_summary`` tables of ``--table-skus`` SKUs x 12 weeks
   (random outcomes of 20 episodes; no per-SKU choice) in one block and in blocks of
   10,000 (``evaluation.block_skus``' default).

Each blocked result is checked equal to the one-block result. Prints one JSON object; writes
nothing.

Run::

    .venv/bin/python benchmarks/bench_engine_stages.py --skus 200000 --table-skus 50000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.exports import plan_tables  # noqa: E402
from app.presentation import TableContext  # noqa: E402
from benchmarks.bench_risk import scaled_features  # noqa: E402
from ingest.dataset import Dataset  # noqa: E402
from ingest.panel import build_panel  # noqa: E402
from planning.outcomes import TOTALS, Outcome  # noqa: E402
from planning.schedule import Schedule  # noqa: E402
from risk_model.models import RowwiseLogisticRegression  # noqa: E402
from risk_model.scoring import RiskConfig, score_frame, train_and_score  # noqa: E402
from simulator.demand import Catalog  # noqa: E402
from simulator.synthetic import SyntheticConfig, generate_world  # noqa: E402


def _cpu(fn: Any) -> tuple[float, Any]:
    t = time.process_time()
    out = fn()
    return time.process_time() - t, out


def scoring(n_skus: int) -> dict[str, Any]:
    w = generate_world(SyntheticConfig(n_skus=3000, n_weeks=60, seed=5, dead_share=0.3))
    ds = Dataset(tables=dict(w.tables), source="synthetic", fingerprint="bench")
    panel = build_panel(ds)
    result = train_and_score(ds, panel, RiskConfig(models=("lr",), train_offsets=(0,)))
    feats = result.features
    big = scaled_features(feats, n_skus)
    out: dict[str, Any] = {"n_skus": n_skus, "n_features": int(feats.shape[1])}
    t_one, one = _cpu(lambda: score_frame(result.model, big, 3))
    out["one_block_cpu_s"] = round(t_one, 2)
    for block in (50_000, 10_000):
        t, got = _cpu(lambda b=block: score_frame(result.model, big, 3, block_skus=b))
        pd.testing.assert_frame_equal(got, one, check_exact=True)
        out[f"blocks_of_{block}_cpu_s"] = round(t, 2)
    # the raw linear predictor: scikit-learn's BLAS product against the row-wise sum
    pipe = result.model.estimator_
    z = pipe[:-1].transform(big[list(result.model.feature_names_in_)].to_numpy(dtype=float))
    rowwise = pipe[-1]
    assert isinstance(rowwise, RowwiseLogisticRegression)
    blas = replace_class(rowwise)
    t_blas, a = _cpu(lambda: blas.decision_function(z))
    t_row, b = _cpu(lambda: rowwise.decision_function(z))
    out["decision_blas_cpu_s"] = round(t_blas, 3)
    out["decision_rowwise_cpu_s"] = round(t_row, 3)
    out["decision_max_abs_difference"] = float(np.max(np.abs(a - b)))
    return out


def replace_class(model: RowwiseLogisticRegression) -> Any:
    """The same fitted model as scikit-learn's own ``LogisticRegression``."""
    from sklearn.linear_model import LogisticRegression

    plain = LogisticRegression()
    plain.__dict__.update(model.__dict__)
    return plain


def tables(n_skus: int, horizon: int = 12, episodes: int = 20) -> dict[str, Any]:
    rng = np.random.default_rng(1)
    skus = np.array([f"T{i:07d}" for i in range(n_skus)], dtype=object)
    price = rng.uniform(1.0, 10.0, n_skus)
    cat = Catalog.build(
        n_skus=n_skus,
        sku=skus,
        base_demand=rng.lognormal(1.0, 0.8, n_skus),
        elasticity=-rng.uniform(1.0, 3.5, n_skus),
        list_price=price,
        unit_cost=price * rng.uniform(0.4, 0.8, n_skus),
        initial_stock=rng.integers(10, 200, n_skus).astype(float),
    )

    def outcome(name: str, depth: float) -> Outcome:
        sched = Schedule.constant(skus, horizon, depth, name)
        totals = {k: rng.normal(10, 3, (n_skus, episodes)) for k in TOTALS}
        weekly = {k: rng.uniform(0, 5, (n_skus, horizon)) for k in ("units", "revenue",
                                                                   "margin", "stock_left")}  # fmt: skip
        sd = {k: rng.uniform(0, 1, (n_skus, horizon)) for k in ("units", "stock_left")}
        return Outcome(sched, totals, weekly, sd, None, 0.95)

    outcomes = {
        "recommended": outcome("ppo", 0.2),
        "no_markdown": outcome("no_markdown", 0.0),
        "best_heuristic": outcome("fixed_30", 0.3),
    }
    scores = pd.DataFrame(
        {"sku": skus.astype(str), "risk": rng.uniform(0, 1, n_skus), "tier": "high",
         "driver_1": "vel_4", "driver_1_contribution": rng.normal(size=n_skus),
         "driver_1_value": rng.uniform(0, 3, n_skus)}
    )  # fmt: skip
    labels = pd.DataFrame({"sku": skus.astype(str), "description": "ITEM", "department": "D"})
    ctx = TableContext(labels=labels, week_starts=[f"2024-W{w:02d}" for w in range(1, 13)])
    out: dict[str, Any] = {"n_skus": n_skus, "horizon": horizon, "episodes": episodes}
    t_one, one = _cpu(lambda: plan_tables(cat, scores, outcomes, "K", ctx))
    out["one_block_cpu_s"] = round(t_one, 2)
    t, got = _cpu(lambda: plan_tables(cat, scores, outcomes, "K", ctx, block_skus=10_000))
    for left, right in zip(got, one, strict=True):
        pd.testing.assert_frame_equal(left, right, check_exact=True)
    out["blocks_of_10000_cpu_s"] = round(t, 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skus", type=int, default=200_000, help="SKUs scored")
    ap.add_argument("--table-skus", type=int, default=50_000, help="SKUs in the tables")
    args = ap.parse_args()
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "scoring": scoring(args.skus),
        "tables": tables(args.table_skus),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
