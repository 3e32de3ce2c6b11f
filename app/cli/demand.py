"""``deadstock demand fit``: fit each SKU's demand from a data source into a catalog file.

Example::

    deadstock demand fit --data completejourney --out catalog.parquet
"""

from __future__ import annotations

import argparse

from app.cli.data import SOURCE_HELP


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demand`` command group."""
    demand = subparsers.add_parser("demand", help="fit the demand model into a SKU catalog")
    sub = demand.add_subparsers(dest="demand_command", metavar="DEMAND_COMMAND")
    demand.set_defaults(func=lambda _args: demand.print_help() or 0)

    p = sub.add_parser(
        "fit",
        help="fit elasticities, lifts, seasonality and noise per SKU; write the catalog",
        description=(
            "Fit a negative-binomial GLM of weekly units on price, coupons, display, mailer, "
            "category seasonality and SKU effects; shrink elasticities towards the category "
            "(empirical Bayes); write one row per SKU. Terms the data cannot identify are "
            "documented priors flagged *_assumed."
        ),
    )
    p.add_argument("--data", default="completejourney", help=SOURCE_HELP)
    p.add_argument("--out", required=True, help="catalog file (.parquet or .csv)")
    p.add_argument("--max-skus", type=int, default=None, help="fit only the N best sellers")
    p.add_argument(
        "--distribution", choices=("negbin", "poisson"), default="negbin", help="count model"
    )
    p.add_argument(
        "--pooling",
        choices=("eb", "none", "global"),
        default="eb",
        help="eb: shrink to the category (default); none: raw per SKU; global: one elasticity",
    )
    p.add_argument(
        "--coupons",
        choices=("auto", "prior"),
        default="prior",
        help="prior (default): the documented prior, flagged coupon_assumed; auto: fit where "
        "identifiable (biased upwards when coupons are only seen in weeks that sold)",
    )
    p.add_argument("--n-harmonics", type=int, default=2, help="Fourier pairs of the season")
    p.add_argument("--no-track", action="store_true", help="do not log to MLflow")
    p.set_defaults(func=cmd_fit, tracked=True)


def cmd_fit(args: argparse.Namespace) -> int:
    from app.demand import DemandFitConfig, run_demand_fit
    from simulator.fit import FitConfig

    config = DemandFitConfig(
        source=args.data,
        out=args.out,
        fit=FitConfig(
            distribution=args.distribution,
            pooling=args.pooling,
            coupons=args.coupons,
            n_harmonics=args.n_harmonics,
        ),
        max_skus=args.max_skus,
        track=not args.no_track,
    )
    outcome = run_demand_fit(config)
    d = outcome.result.diagnostics
    print(
        f"catalog: {outcome.out} ({int(d['fit/n_skus']):,} SKUs, "
        f"{int(d['fit/n_categories']):,} categories)\n"
        f"elasticity median {d['fit/elasticity_median']:.2f} "
        f"(raw {d['fit/elasticity_raw_median']:.2f}); "
        f"{d['fit/share_elasticity_assumed']:.1%} assumed (price never varied)\n"
        f"coupon lift fitted for {d['fit/share_coupon_fitted']:.1%} of SKUs, display "
        f"{d['fit/share_display_fitted']:.1%}, mailer {d['fit/share_mailer_fitted']:.1%} "
        "(the rest: documented priors, flagged *_assumed)\n"
        f"NB dispersion median {d['fit/dispersion_median']:.2f}; in-sample WMAPE "
        f"{d['fit/wmape_in_sample']:.3f}; converged: {bool(d['fit/converged'])}"
    )
    for note in outcome.result.notes:
        print(f"note: {note}")
    if outcome.run_id:
        print(f"mlflow run: {outcome.run_id}")
    print(f"plots: {', '.join(str(p) for p in outcome.plots)}")
    return 0
