"""``deadstock abtest ...``: design and analyse a field test (A/B) of a run's plan.

Commands
--------
- ``abtest design --plan RUN_OUTPUT [--metric profit|sell_through|dead_stock] [--mde 0.05]
  [--alpha 0.05] [--power 0.8] [--weeks N] [--control none|best_heuristic] [--seed S]
  [--out DIR]``: the assignment table, the power by simulation (CUPED, checked against the
  formula), the SKUs needed; a report with the power curve; an MLflow run.
- ``abtest analyze --assignment FILE --data SOURCE [--out DIR]``: effects with CIs per
  metric (difference, CUPED, stratified), guardrails, balance and sample-ratio checks; a
  report with plots; an MLflow run.

The logic is :mod:`app.abtest` over :mod:`fieldtests`.
"""

from __future__ import annotations

import argparse
import logging

from app.cli.common import DATA_HELP, NO_TRACK_HELP, SEED_HELP, add_command, add_group

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``abtest`` command group."""
    _, sub = add_group(
        subparsers,
        "abtest",
        help="design and analyse a field test (A/B) of a run's plan",
        description="Design a field test of a run's recommended plan (stratified assignment, "
        "power by simulation with CUPED) and analyse its outcomes from a data source.",
    )
    p = add_command(
        sub,
        "design",
        help="assign SKUs to treatment and control and size the test",
        description="Assign the run's SKUs to treatment (the recommended plan) and control, "
        "stratified by category and risk tier; simulate the test's power in the fitted "
        "market (with CUPED) and check it against the formula; say how many SKUs the MDE "
        "needs. Writes the assignment table and a report with the power curve.",
    )
    p.add_argument("--plan", required=True, help="output folder of 'deadstock run'")
    p.add_argument(
        "--metric", default="profit", choices=("profit", "sell_through", "dead_stock"),
        help="primary metric",
    )  # fmt: skip
    p.add_argument("--mde", type=float, default=0.05,
                   help="minimum detectable effect, share of the control mean")  # fmt: skip
    p.add_argument("--alpha", type=float, default=0.05, help="two-sided significance level")
    p.add_argument("--power", type=float, default=0.8, help="power wanted at the MDE")
    p.add_argument("--weeks", type=int, help="test weeks (default: the plan's horizon)")
    p.add_argument(
        "--control", default="none", choices=("none", "best_heuristic"),
        help="control arm: no markdown, or the run's best heuristic",
    )  # fmt: skip
    p.add_argument("--start-week", type=int,
                   help="data week of the test's first week (default: the week after the "
                   "run's data)")  # fmt: skip
    p.add_argument("--sims", type=int, default=1000, help="simulated tests per effect")
    p.add_argument("--episodes", type=int, default=200,
                   help="simulated episodes per SKU and plan")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help=SEED_HELP)
    p.add_argument("--format", choices=("csv", "parquet"), default="csv",
                   help="assignment table format")  # fmt: skip
    p.add_argument("--out", default="outputs/abtest/design", help="output folder")
    p.add_argument("--no-track", action="store_true", help=NO_TRACK_HELP)
    p.set_defaults(func=cmd_design, tracked=True)

    p = add_command(
        sub,
        "analyze",
        help="effects with CIs, guardrails, balance and sample-ratio checks",
        description="Read the test weeks' outcomes of an assignment from a data source and "
        "report per metric the effect with its CI (difference in means, CUPED, stratified), "
        "the guardrails (margin given away, sell-through), the balance of pre-period "
        "covariates and a sample-ratio-mismatch check.",
    )
    p.add_argument("--assignment", required=True,
                   help="assignment table from 'deadstock abtest design'")  # fmt: skip
    p.add_argument("--data", required=True, help=DATA_HELP)
    p.add_argument("--level", type=float, default=0.95, help="CI level")
    p.add_argument("--out", default="outputs/abtest/analysis", help="output folder")
    p.add_argument("--no-track", action="store_true", help=NO_TRACK_HELP)
    p.set_defaults(func=cmd_analyze, tracked=True)


def cmd_design(args: argparse.Namespace) -> int:
    from app.abtest import run_design
    from fieldtests.design import DesignConfig

    cfg = DesignConfig(
        metric=args.metric, mde=args.mde, alpha=args.alpha, power=args.power, weeks=args.weeks,
        control=args.control, seed=args.seed, n_sims=args.sims, n_episodes=args.episodes,
    )  # fmt: skip
    design, files, run_id = run_design(
        args.plan, cfg, args.out, start_week=args.start_week, fmt=args.format,
        track=not args.no_track,
    )  # fmt: skip
    n_t = int((design.assignment["arm"] == "treatment").sum())
    best = max(design.power_at_mde, key=lambda k: design.power_at_mde[k])
    print(
        f"{design.n_units} SKUs ({n_t} treatment), {design.assignment['stratum'].nunique()} "
        f"strata, {design.weeks} weeks; {cfg.metric}: control mean "
        f"{design.control_mean:,.2f}, MDE {cfg.mde:.1%} = {design.mde_abs:,.2f} per SKU"
    )
    print(
        "power at the MDE (simulated): "
        + ", ".join(f"{k} {v:.2f}" for k, v in design.power_at_mde.items())
        + f"; formula {design.analytic['difference']:.2f} (CUPED {design.analytic['cuped']:.2f})"
    )
    print(f"power at the plan's own effect ({design.plan_effect:,.2f} per SKU): "
          f"{design.power_at_plan[best]:.2f} ({best})")  # fmt: skip
    print(f"SKUs needed for {cfg.power:.0%} power (formula, CUPED): "
          f"{design.needed_units['cuped']:,.0f}")  # fmt: skip
    for note in design.notes:
        print(f"note: {note}")
    for f in files:
        print(f)
    if run_id:
        print(f"mlflow run: {run_id}")
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from app.abtest import run_analysis

    analysis, files, run_id = run_analysis(
        args.assignment, args.data, args.out, level=args.level, track=not args.no_track
    )
    s = analysis.srm
    print(f"{len(analysis.outcomes)} SKUs; sample ratio p = {s.p_value:.3g}"
          + (" (MISMATCH)" if s.flagged else ""))  # fmt: skip
    e = analysis.effects
    for r in e[e["estimator"] == "stratified_cuped"].itertuples(index=False):
        print(f"{r.metric}: {r.effect:+,.4g} per SKU [{r.ci_low:+,.4g}, {r.ci_high:+,.4g}] "
              f"({r.relative:+.1%} of control), p = {r.p_value:.3g}")  # fmt: skip
    for f in files:
        print(f)
    if run_id:
        print(f"mlflow run: {run_id}")
    return 0
