"""Risk-model benchmarks: Complete Journey backtests and scoring throughput.

Measures
--------
1. Complete Journey, default label, train at week 26 and test at week 39: every model and the
   baselines with bootstrap 95 % CIs, and the wall time of the full backtest (features,
   labels, four models, baselines, bootstrap) -- the goal is <= 3 min on 2 cores.
2. The same with ``price_change_features=False`` (what the switch costs in AUC).
3. The alternative labels (``any_sale``, ``sales_drop``) on the same fold.
4. Scoring 1 M synthetic SKUs with a trained model: risk and tier, and risk, tier and the top
   3 drivers (goal <= 30 s); and feature building throughput on a 20,000-SKU synthetic
   panel.

Writes ``docs/benchmarks/risk.md`` and ``docs/benchmarks/risk_cj.json``.

Run::

    .venv/bin/python benchmarks/bench_risk.py            # everything (about 15-25 min)
    .venv/bin/python benchmarks/bench_risk.py --only scoring
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

from ingest.dataset import Dataset  # noqa: E402
from ingest.io import write_text_atomic  # noqa: E402
from ingest.panel import build_panel  # noqa: E402
from risk_model.backtest import BacktestConfig, format_table, run_backtest  # noqa: E402
from risk_model.features import FeatureConfig, build_features  # noqa: E402
from risk_model.labels import LabelConfig  # noqa: E402
from risk_model.scoring import RiskConfig, score_frame, train_and_score  # noqa: E402
from simulator.synthetic import SyntheticConfig, generate_world  # noqa: E402

OUT_MD = ROOT / "docs" / "benchmarks" / "risk.md"
OUT_JSON = ROOT / "docs" / "benchmarks" / "risk_cj.json"


def _stage(text: str) -> None:
    print(f"[bench-risk] {text}", file=sys.stderr, flush=True)


def cj_backtests(n_jobs: int) -> dict[str, Any]:
    from ingest.loader import load
    from ingest.panel import load_panel

    t0 = time.perf_counter()
    ds = load("completejourney")
    panel = load_panel(ds)
    t_load = time.perf_counter() - t0
    runs: dict[str, Any] = {"load_and_panel_seconds": t_load, "fingerprint": ds.fingerprint}
    plans = [
        ("default", LabelConfig(), FeatureConfig()),
        ("default_no_price_change", LabelConfig(), FeatureConfig(price_change_features=False)),
        ("any_sale", LabelConfig(kind="any_sale"), FeatureConfig()),
        ("sales_drop", LabelConfig(kind="sales_drop"), FeatureConfig()),
    ]
    for name, label, feats in plans:
        _stage(f"Complete Journey backtest: {name}")
        cfg = BacktestConfig(label=label, features=feats, n_jobs=n_jobs)
        t = time.perf_counter()
        result = run_backtest(ds, panel, cfg)
        seconds = time.perf_counter() - t
        print(format_table(result.rows), file=sys.stderr)
        runs[name] = {
            "seconds": seconds,
            "noise_floor": result.noise_floor,
            "info": {k: v for k, v in result.info.items() if k != "calibration"},
            "calibration": result.info["calibration"],
            "rows": result.rows,
        }
    return runs


def scaled_features(feats: pd.DataFrame, n_skus: int) -> pd.DataFrame:
    """``n_skus`` rows of features for a scoring benchmark: ``feats``'s rows repeated, each
    value scaled by a uniform 0.9-1.1 draw (seed 0), indexed ``B0``, ``B1``, ..."""
    reps = int(np.ceil(n_skus / len(feats)))
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        np.tile(feats.to_numpy(), (reps, 1))[:n_skus]
        * rng.uniform(0.9, 1.1, (n_skus, feats.shape[1])),
        columns=feats.columns,
        index=pd.Index([f"B{i}" for i in range(n_skus)], name="sku"),
    )


def scoring(n_skus: int, n_jobs: int, driver_rows: int) -> dict[str, Any]:
    _stage("synthetic world for training (3,000 SKUs)")
    w = generate_world(SyntheticConfig(n_skus=3000, n_weeks=60, seed=5, dead_share=0.3))
    ds = Dataset(tables=dict(w.tables), source="synthetic", fingerprint="bench")
    panel = build_panel(ds)
    out: dict[str, Any] = {"n_skus": n_skus}
    for kind in ("xgb", "ens"):
        result = train_and_score(ds, panel, RiskConfig(models=(kind,), n_jobs=n_jobs))
        feats = result.features
        big = scaled_features(feats, n_skus)
        _stage(f"scoring {n_skus:,} SKUs with {kind}")
        t = time.perf_counter()
        risk = result.model.predict_proba(big)[:, 1]
        result.model.tier(risk)
        t_risk = time.perf_counter() - t
        part = big.iloc[:driver_rows]
        _stage(f"scoring with drivers: {len(part):,} SKUs with {kind}")
        t = time.perf_counter()
        scores = score_frame(result.model, part, 3)
        t_full = time.perf_counter() - t
        out[kind] = {
            "risk_and_tier_seconds": t_risk,
            "driver_rows": int(len(scores)),
            "with_drivers_seconds": t_full,
            "with_drivers_per_million_seconds": t_full * 1e6 / len(scores),
        }
    _stage("feature building throughput (20,000-SKU synthetic world)")
    w = generate_world(SyntheticConfig(n_skus=20_000, n_weeks=60, seed=6))
    ds = Dataset(tables=dict(w.tables), source="synthetic", fingerprint="bench2")
    t = time.perf_counter()
    panel = build_panel(ds)
    t_panel = time.perf_counter() - t
    t = time.perf_counter()
    feats = build_features(panel, 60, products=ds.products)
    t_feat = time.perf_counter() - t
    out["features"] = {
        "n_skus": int(len(feats)),
        "panel_seconds": t_panel,
        "features_seconds": t_feat,
        "per_million_skus_seconds": (t_panel + t_feat) * 1e6 / len(feats),
    }
    return out


def _ci(r: dict[str, Any], key: str) -> str:
    lo, hi = r[f"{key}_ci"]
    return f"{r[key]:.3f} [{lo:.3f}, {hi:.3f}]"


def render(cj: dict[str, Any] | None, sc: dict[str, Any] | None) -> str:
    lines = [
        "# Risk model benchmarks",
        "",
        "Produced by `.venv/bin/python benchmarks/bench_risk.py` (raw numbers in "
        "`docs/benchmarks/risk_cj.json`).",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores shared with other jobs while "
        "it ran (times are noisy and pessimistic), Python {0}.".format(platform.python_version()),
        "",
    ]
    if cj:
        d = cj["default"]
        lines += [
            "## Complete Journey backtest (train cutoff 26, test cutoff 39)",
            "",
            f"- Load and panel (cached): {cj['load_and_panel_seconds']:.1f} s.",
            f"- Full default-label backtest (features at 3 training cutoffs and the test "
            f"cutoff, LR, RF, XGBoost, ensemble, two baselines, 200 bootstrap resamples): "
            f"**{d['seconds']:.0f} s** (goal <= 180 s).",
            "",
        ]
        for name, run in cj.items():
            if not isinstance(run, dict) or "rows" not in run:
                continue
            lines += [
                f"### {name} ({run['seconds']:.0f} s; noise floor {run['noise_floor']:.4f}; "
                f"calibration chosen: {run['calibration']})",
                "",
                "| model | ROC-AUC [95% CI] | PR-AUC [95% CI] | F1 [95% CI] | precision | recall "
                "| accuracy | Brier | base rate | n | n_pos |",
                "|---|---|---|---|---|---|---|---|---|---|---|",
            ]
            for r in run["rows"]:
                lines.append(
                    f"| {r['model']} | {_ci(r, 'roc_auc')} | {_ci(r, 'pr_auc')} | {_ci(r, 'f1')} "
                    f"| {r['precision']:.3f} | {r['recall']:.3f} | {r['accuracy']:.3f} "
                    f"| {r['brier']:.4f} | {r['base_rate']:.3f} | {r['n']} | {r['n_pos']} |"
                )
            lines.append("")
    if sc:
        lines += [
            f"## Scoring {sc['n_skus']:,} synthetic SKUs (goal <= 30 s)",
            "",
            "Feature rows of a trained 3,000-SKU synthetic world tiled to the target size with "
            "+-10 % jitter; the model is trained on that world.",
            "",
            "| model | risk + tier, 1 M SKUs | with top-3 drivers: measured | per 1 M SKUs |",
            "|---|---|---|---|",
        ]
        for kind in ("xgb", "ens"):
            r = sc[kind]
            lines.append(
                f"| {kind} | {r['risk_and_tier_seconds']:.1f} s | {r['with_drivers_seconds']:.1f} s "
                f"for {r['driver_rows']:,} SKUs | {r['with_drivers_per_million_seconds']:.0f} s "
                "(extrapolated) |"
            )
        f = sc["features"]
        lines += [
            "",
            f"Feature building: panel {f['panel_seconds']:.1f} s + features "
            f"{f['features_seconds']:.1f} s for {f['n_skus']:,} SKUs x 60 weeks, i.e. about "
            f"{f['per_million_skus_seconds']:.0f} s per million SKUs (linear extrapolation; a "
            "million-SKU panel needs several GB, so it is built in partitions of SKUs).",
            "",
        ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("cj", "scoring"), help="run one part")
    parser.add_argument("--n-skus", type=int, default=1_000_000, help="SKUs to score")
    parser.add_argument("--n-jobs", type=int, default=2, help="threads for RF/XGBoost")
    parser.add_argument(
        "--driver-rows", type=int, default=100_000, help="SKUs scored with drivers (timed)"
    )
    args = parser.parse_args()
    previous: dict[str, Any] = {}
    if OUT_JSON.is_file():
        previous = json.loads(OUT_JSON.read_text(encoding="utf-8"))
    cj = previous.get("cj")
    sc = previous.get("scoring")
    if args.only in (None, "cj"):
        cj = cj_backtests(args.n_jobs)
    if args.only in (None, "scoring"):
        sc = scoring(args.n_skus, args.n_jobs, args.driver_rows)
    write_text_atomic(OUT_JSON, json.dumps({"cj": cj, "scoring": sc}, indent=2) + "\n")
    write_text_atomic(OUT_MD, render(cj, sc) + "\n")
    print(f"wrote {OUT_MD} and {OUT_JSON}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
