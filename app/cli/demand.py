"""``deadstock demand fit``: fit each SKU's demand from a data source into a catalog file.

Example::

    deadstock demand fit --data completejourney --out catalog.parquet

The settings are :class:`app.demand.DemandFitConfig` (the fit's in ``[fit]``, its stock
assumption in ``[fit.stock]``, the same defaults as ``deadstock run``'s); ``--config`` reads
them from a TOML file and the flags override it.
"""

from __future__ import annotations

import argparse

from app.cli.common import (
    CONFIG_HELP,
    DATA_HELP,
    NO_TRACK_HELP,
    add_command,
    add_group,
    build,
    config_arg,
)

FIT = "app.demand:DemandFitConfig"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demand`` command group."""
    _, sub = add_group(subparsers, "demand", help="fit the demand model into a SKU catalog")

    p = add_command(
        sub,
        "fit",
        help="fit elasticities, lifts, seasonality and noise per SKU; write the catalog",
        description=(
            "Fit a negative-binomial GLM of weekly units on price, coupons, display, mailer, "
            "category seasonality and SKU effects; shrink elasticities towards the category "
            "(empirical Bayes); write one row per SKU. Terms the data cannot identify are "
            "documented priors flagged *_assumed. Stock, holding cost and salvage follow the "
            "stock assumption ([fit.stock]) where the source has no stock table."
        ),
    )
    config_arg(p, "--data", config=FIT, key="data", help=DATA_HELP)
    config_arg(p, "--out", config=FIT, key="out", help="catalog file (.parquet or .csv)")
    p.add_argument("--config", help=CONFIG_HELP)
    config_arg(
        p,
        "--max-skus",
        config=FIT,
        key="max_skus",
        type=int,
        none="all",
        help="fit only the N best sellers",
    )
    config_arg(
        p,
        "--distribution",
        config=FIT,
        key="fit.distribution",
        choices=("negbin", "poisson"),
        help="count model",
    )
    config_arg(
        p,
        "--pooling",
        config=FIT,
        key="fit.pooling",
        choices=("eb", "none", "global"),
        help="eb: shrink to the category; none: raw per SKU; global: one elasticity",
    )
    config_arg(
        p,
        "--coupons",
        config=FIT,
        key="fit.coupons",
        choices=("auto", "prior"),
        help="prior: the documented prior, flagged coupon_assumed; auto: fit where "
        "identifiable (biased upwards when coupons are only seen in weeks that sold)",
    )
    config_arg(
        p,
        "--n-harmonics",
        config=FIT,
        key="fit.n_harmonics",
        type=int,
        help="Fourier pairs of the season",
    )
    p.add_argument("--no-track", action="store_true", help=NO_TRACK_HELP)
    p.set_defaults(func=cmd_fit, tracked=True)


def cmd_fit(args: argparse.Namespace) -> int:
    from app.demand import DemandFitConfig, run_demand_fit

    flags = {
        "data": args.data,
        "out": args.out,
        "max_skus": args.max_skus,
        "fit.distribution": args.distribution,
        "fit.pooling": args.pooling,
        "fit.coupons": args.coupons,
        "fit.n_harmonics": args.n_harmonics,
        "track": False if args.no_track else None,
    }
    outcome = run_demand_fit(build(DemandFitConfig, args, flags))
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
