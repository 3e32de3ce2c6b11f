"""What targeting changes in a run's plans: coupon use and expected profit with and without it.

Takes the output folder of a ``deadstock run`` (its fitted ``catalog.parquet``) and the data,
estimates each SKU's expected reach as ``deadstock coupons target`` does (the time split at
the latest cutoff over these SKUs: the share of a SKU's next-13-week buyers a list of k
households covers), and plans every SKU with the exact DP three ways, simulated on the same
random numbers per SKU, at the fitted point estimates (the market each plan was made for;
drawing parameters from their uncertainty would mix in how robust each plan is):

- ``untargeted``: the model before reach: a coupon reaches every shopper (``coupon_reach =
  1``), planned and simulated so;
- ``targeted, planned as untargeted``: the same plans when the coupon in fact reaches only
  the target list (``coupon_reach = expected reach``);
- ``targeted``: planned and simulated with ``coupon_reach = expected reach``.

The coupon lift cannot be identified from the data (docs/simulator.md), and at the fit's
prior (a coupon of depth c lifts demand as a discount of depth 0.5 c would) a coupon is never
worth its cost, so no plan uses one. ``--coupon-share`` replaces the prior's share (``coupon_coef
= share * -elasticity``) to show what targeting changes where a coupon would pay: an
assumption swept, not a fit.

Run::

    .venv/bin/python benchmarks/coupons_reach.py --run outputs/run --config plan.toml \\
        [--coupon-share 0.5 1.5 3] [--episodes 500] [--out docs/benchmarks/coupons_reach.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agents.baselines import DPPolicy  # noqa: E402
from app.config import load_config  # noqa: E402
from app.coupons import reach_array  # noqa: E402
from app.pipeline_config import PipelineConfig  # noqa: E402
from ingest.io import write_text_atomic  # noqa: E402
from ingest.loader import load  # noqa: E402
from planning.from_policy import plan_of  # noqa: E402
from planning.outcomes import simulate_schedules  # noqa: E402
from simulator.demand import Catalog, read_catalog  # noqa: E402
from targeting.interactions import baskets_of, build_interactions  # noqa: E402
from targeting.targets import expected_reach, past_buyers  # noqa: E402
from targeting.timesplit import run_time_split  # noqa: E402


def reach_by_sku(cfg: PipelineConfig, skus: list[str]) -> dict[str, float]:
    """Expected reach of a k-household list per SKU (the chosen model on the time split)."""
    dataset = load(cfg.data)
    baskets = baskets_of(dataset)
    tc = cfg.coupons
    last = int(baskets["week"].max())
    split = run_time_split(
        baskets, {tc.default_cutoffs(last)[-1]: skus}, tc, products=dataset.products
    )
    inter = build_interactions(baskets, last, dataset.products)
    values = expected_reach(split.per_sku, split.chosen, tc.k, past_buyers(inter, skus))
    print(f"reach from model {split.chosen} at k = {tc.k}", file=sys.stderr)
    return dict(zip(skus, values.tolist(), strict=True))


def compare(cfg: PipelineConfig, catalog: Catalog, reach: np.ndarray, episodes: int, seed: int):
    """The three plans' coupon use and simulated profit (see the module docstring)."""
    targeted = catalog.replace(coupon_reach=reach)
    horizon = cfg.horizon_weeks
    plan_full, _ = plan_of(DPPolicy(max_cached=4096), catalog, cfg.rules, horizon, seed=seed)
    plan_tgt, _ = plan_of(DPPolicy(max_cached=4096), targeted, cfg.rules, horizon, seed=seed)
    sims = {
        "untargeted": simulate_schedules(
            catalog, {"p": plan_full}, n_episodes=episodes, seed=seed, draw_parameters=False
        )["p"],
        **simulate_schedules(
            targeted,
            {"targeted, planned as untargeted": plan_full, "targeted": plan_tgt},
            n_episodes=episodes,
            seed=seed,
            draw_parameters=False,
        ),
    }
    plans = {"untargeted": plan_full, "targeted, planned as untargeted": plan_full}
    plans["targeted"] = plan_tgt
    rows = []
    for name, out in sims.items():
        coupon = np.asarray(plans[name].coupon, dtype=float)
        profit = out.totals["profit"].sum(axis=0)  # over SKUs, per episode
        rows.append(
            {
                "plan": name,
                "skus_with_a_coupon": int((coupon > 0).any(axis=1).sum()),
                "coupon_weeks_share": float((coupon > 0).mean()),
                "expected_profit": float(profit.mean()),
                "profit_se": float(profit.std(ddof=1) / np.sqrt(profit.size)),
                "coupon_cost": float(out.totals["coupon_cost"].sum(axis=0).mean()),
                "sell_through": float(
                    out.totals["units_sold"].sum(axis=0).mean() / catalog.initial_stock.sum()
                ),
            }
        )
    gain = sims["targeted"].totals["profit"].sum(axis=0) - sims[
        "targeted, planned as untargeted"
    ].totals["profit"].sum(axis=0)
    return rows, gain


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="output folder of a run with coupons")
    parser.add_argument("--config", help="the run's TOML config (its [rules])")
    parser.add_argument("--episodes", type=int, default=500)
    parser.add_argument(
        "--coupon-share", type=float, nargs="+", default=[0.5, 1.5, 3.0],
        help="coupon lift as this share of -elasticity (0.5 = the fit's prior)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args()

    cfg = load_config(PipelineConfig, args.config)
    catalog = read_catalog(Path(args.run) / "catalog.parquet")
    skus = [str(s) for s in catalog.sku]
    reach = reach_array(catalog.sku, reach_by_sku(cfg, skus))
    summary: dict[str, object] = {
        "n_skus": catalog.n_skus,
        "horizon_weeks": cfg.horizon_weeks,
        "coupon_levels": list(cfg.rules.coupon_levels),
        "k": cfg.coupons.k,
        "reach_mean": float(reach.mean()),
        "reach_range": [float(reach.min()), float(reach.max())],
        "by_coupon_share": [],
    }
    for share in args.coupon_share:
        cat = catalog.replace(coupon_coef=share * -catalog.elasticity)
        rows, gain = compare(cfg, cat, reach, args.episodes, args.seed)
        summary["by_coupon_share"].append(  # type: ignore[attr-defined]
            {
                "coupon_share": share,
                "rows": rows,
                "replanning_gain_mean": float(gain.mean()),
                "replanning_gain_se": float(gain.std(ddof=1) / np.sqrt(gain.size)),
            }
        )
    print(json.dumps(summary, indent=2))
    if args.out:
        write_text_atomic(args.out, json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
