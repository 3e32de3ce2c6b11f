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

import numpy as np
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from simulator.fit import FitConfig, fit_catalog  # noqa: E402
from simulator.forecast import predict_units  # noqa: E402
from simulator.panel_prep import usual_depth  # noqa: E402

NPZ_COLUMNS = (
    "week", "units", "discount_depth", "coupon_depth", "display", "mailer", "list_price",
    "unit_cost", "price_observed",
)  # fmt: skip

CUTOFF = 40


def wmape(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.sum(np.abs(y - p)) / np.sum(y))


def load_cj() -> tuple[pd.DataFrame, pd.DataFrame | None]:
    from app.data import DataStageConfig, run_data_stage

    data = run_data_stage(DataStageConfig(source="completejourney", out_dir=None))
    return data.panel, data.dataset.products


def save_npz(panel: pd.DataFrame, path: str) -> None:
    """The panel's fit columns as a NumPy archive (to rerun the benchmark on a machine that
    has NumPy and pandas but not the data loader's dependencies)."""
    arrays = {c: panel[c].to_numpy() for c in NPZ_COLUMNS}
    for c in ("sku", "category", "department"):
        codes, names = pd.factorize(panel[c].astype(str))
        arrays[c + "_code"], arrays[c + "_names"] = codes, np.asarray(names, dtype=str)
    np.savez_compressed(path, **arrays)


def load_npz(path: str) -> pd.DataFrame:
    z = np.load(path)
    cols = {c: z[c] for c in NPZ_COLUMNS}
    for c in ("sku", "category", "department"):
        cols[c] = z[c + "_names"][z[c + "_code"]]
    return pd.DataFrame(cols)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-skus", type=int, default=None, help="best sellers only")
    ap.add_argument("--panel-npz", default=None, help="read the panel from save_npz's file")
    ap.add_argument("--dump-npz", default=None, help="write the panel to this .npz and stop")
    ap.add_argument("--img-dir", default=str(ROOT / "docs" / "img"), help="where plots go")
    args = ap.parse_args()
    t0 = time.perf_counter()
    if args.panel_npz:
        panel, products = load_npz(args.panel_npz), None
    else:
        panel, products = load_cj()
    if args.dump_npz:
        save_npz(panel, args.dump_npz)
        return
    if args.max_skus:
        top = panel.groupby("sku")["units"].sum().nlargest(args.max_skus).index
        panel = panel[panel["sku"].isin(top)]
    t_load = time.perf_counter() - t0
    train = panel[panel["week"] <= CUTOFF]
    test = panel[panel["week"] > CUTOFF]
    t0 = time.perf_counter()
    fitted = fit_catalog(train, FitConfig(), products=products)
    t_fit = time.perf_counter() - t0
    pooled = fit_catalog(train, FitConfig(pooling="global", n_harmonics=0))
    test = test[test["sku"].isin(set(fitted.catalog.sku))].sort_values(["sku", "week"])
    y = test["units"].to_numpy(float)
    # the forecast must not peek at the holdout's prices (a price is only seen in weeks that
    # sold): every holdout week is priced at the SKU's usual depth from the fit weeks, with
    # the retailer's planned displays and mailers
    planned = test.assign(
        discount_depth=np.minimum(
            usual_depth(train).reindex(test["sku"]).fillna(0.0).to_numpy(),
            FitConfig().max_fit_depth,  # the depth the fit saw near-free sales at
        )
    )
    p_fit = predict_units(fitted.catalog, planned)
    p_fit_nopromo = predict_units(fitted.catalog, planned, promotions=False)
    recorded = test.assign(
        discount_depth=np.minimum(test["discount_depth"].to_numpy(), FitConfig().max_fit_depth)
    )
    p_fit_recorded = predict_units(fitted.catalog, recorded)
    p_pool = predict_units(pooled.catalog, planned, promotions=False)
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
        ("same, without display/mailer in the forecast", wmape(y, p_fit_nopromo)),
        ("same, at the panel's recorded holdout prices (peeks)", wmape(y, p_fit_recorded)),
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
    full = fit_catalog(panel, FitConfig(), products=products)
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
            f"| {dep} | {int(r.n_skus):,} | {r['median']:.2f} | {r.q25:.2f} .. {r.q75:.2f} | "
            f"{r.raw_median:.2f} | {r.assumed:.0%} |"
        )
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("\n(matplotlib not installed: plots skipped)")
        return
    img = Path(args.img_dir)
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
    labels = ["fitted", "no promo", "recorded px", "pooled", "s-naive", "13-wk mean"]
    ax.bar(labels, [r[1] for r in rows])
    ax.set_ylabel("WMAPE, weeks 41-53 (lower is better)")
    ax.tick_params(axis="x", rotation=20)
    fig.tight_layout()
    fig.savefig(img / "cj_holdout_wmape.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
