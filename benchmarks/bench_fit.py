"""Holdout forecast on Complete Journey: fit on weeks <= 40, forecast weeks 41-53.

Compares weekly-unit WMAPE (sum |y - yhat| / sum y over every SKU-week of the holdout) of
- the fitted model (NB GLM, EB-shrunk elasticities, category season and promotions), at the
  holdout's own prices, displays and mailers;
- a pooled constant-elasticity model (one elasticity for all SKUs, SKU levels, no season);
- seasonal-naive with a 13-week season (the last 13 fit weeks repeated; a 52-week
  seasonal-naive needs a year before the holdout, which 53 weeks of data do not have);
- the SKU's mean of the last 13 fit weeks (flat).
Also writes the CJ elasticity distribution by department and the plots in docs/img/.

Run: ``.venv/bin/python benchmarks/bench_fit.py [--max-skus N]``; prints markdown.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from experiments.data_stage import DataStageConfig, run_data_stage  # noqa: E402
from simulator.fit import FitConfig, fit_catalog, predict_units  # noqa: E402

CUTOFF = 40


def wmape(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.sum(np.abs(y - p)) / np.sum(y))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-skus", type=int, default=None, help="best sellers only")
    args = ap.parse_args()
    t0 = time.perf_counter()
    data = run_data_stage(DataStageConfig(source="completejourney", out_dir=None))
    panel = data.panel
    if args.max_skus:
        top = panel.groupby("sku")["units"].sum().nlargest(args.max_skus).index
        panel = panel[panel["sku"].isin(top)]
    t_load = time.perf_counter() - t0
    train = panel[panel["week"] <= CUTOFF]
    test = panel[panel["week"] > CUTOFF]
    t0 = time.perf_counter()
    fitted = fit_catalog(train, FitConfig(), products=data.dataset.products)
    t_fit = time.perf_counter() - t0
    pooled = fit_catalog(train, FitConfig(pooling="global", n_harmonics=0))
    test = test[test["sku"].isin(set(fitted.catalog.sku))].sort_values(["sku", "week"])
    y = test["units"].to_numpy(float)
    p_fit = predict_units(fitted.catalog, test)
    p_pool = predict_units(pooled.catalog, test, promotions=False)
    last13 = train[train["week"] > CUTOFF - 13]
    flat = last13.groupby("sku")["units"].mean()
    p_flat = flat.reindex(test["sku"]).fillna(0).to_numpy()
    lag = last13.set_index(["sku", "week"])["units"]
    key = pd.MultiIndex.from_arrays(
        [test["sku"], CUTOFF - 13 + (test["week"].to_numpy() - CUTOFF - 1) % 13 + 1]
    )
    p_snaive = lag.reindex(key).fillna(0).to_numpy()
    rows = [
        ("fitted NB GLM, EB elasticities, season, promotions", wmape(y, p_fit)),
        ("pooled constant elasticity (SKU levels, one elasticity)", wmape(y, p_pool)),
        ("seasonal-naive (last 13 fit weeks repeated)", wmape(y, p_snaive)),
        ("mean of the last 13 fit weeks", wmape(y, p_flat)),
    ]
    n_skus = test["sku"].nunique()
    print(
        f"## Holdout on Complete Journey (fit weeks <= {CUTOFF}, forecast {CUTOFF + 1}-"
        f"{int(test['week'].max())})\n"
    )
    print(
        f"{n_skus:,} SKUs, {len(test):,} SKU-weeks, {y.sum():,.0f} units; data load "
        f"{t_load:.0f} s, fit {t_fit:.1f} s (2 shared cores, noisy).\n"
    )
    print("| model | WMAPE |\n|---|---|")
    for name, v in rows:
        print(f"| {name} | {v:.3f} |")

    # full-data fit: the elasticity distribution by department
    full = fit_catalog(panel, FitConfig(), products=data.dataset.products)
    est = full.estimates
    d = full.diagnostics
    print(f"\n## Elasticities on all {len(est):,} SKUs (all 53 weeks)\n")
    print(
        f"median {d['fit/elasticity_median']:.2f} (raw per-SKU MLE "
        f"{d['fit/elasticity_raw_median']:.2f}); {d['fit/share_elasticity_assumed']:.1%} "
        f"assumed; coupon fitted for {d['fit/share_coupon_fitted']:.1%} of SKUs, display "
        f"{d['fit/share_display_fitted']:.1%}, mailer {d['fit/share_mailer_fitted']:.1%}; "
        f"NB dispersion median {d['fit/dispersion_median']:.2f}.\n"
    )
    by = (
        est.groupby("department")
        .agg(
            n_skus=("sku", "size"),
            median=("elasticity", "median"),
            q25=("elasticity", lambda s: s.quantile(0.25)),
            q75=("elasticity", lambda s: s.quantile(0.75)),
            raw_median=("elasticity_raw", "median"),
            assumed=("elasticity_assumed", "mean"),
        )
        .sort_values("n_skus", ascending=False)
    )
    print("| department | SKUs | median | IQR | raw median | assumed |\n|---|---|---|---|---|---|")
    for dep, r in by.head(15).iterrows():
        print(
            f"| {dep} | {r.n_skus:,} | {r['median']:.2f} | {r.q25:.2f} .. {r.q75:.2f} | "
            f"{r.raw_median:.2f} | {r.assumed:.0%} |"
        )
    img = ROOT / "docs" / "img"
    img.mkdir(parents=True, exist_ok=True)
    top = by.head(12).index
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.boxplot(
        [est.loc[est.department == g, "elasticity"] for g in top],
        orientation="horizontal",
        showfliers=False,
    )
    ax.set_yticks(range(1, len(top) + 1), list(top))
    ax.set_xlabel("elasticity in (1 - discount), EB-shrunk")
    ax.set_title("Complete Journey: fitted elasticities by department")
    fig.tight_layout()
    fig.savefig(img / "cj_elasticity_by_department.png", dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar([r[0].split(" (")[0].split(",")[0] for r in rows], [r[1] for r in rows])
    ax.set_ylabel("WMAPE, weeks 41-53 (lower is better)")
    ax.tick_params(axis="x", rotation=20)
    fig.tight_layout()
    fig.savefig(img / "cj_holdout_wmape.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
