"""Every baseline as a percentage of the exact DP optimum, on a grid of configurations.

Grid: elasticity x stock cover x horizon x rule profile; every value is exact (DP policy
evaluation, no simulation noise). Run ``.venv/bin/python benchmarks/baselines_table.py``
(about a minute); it writes its section of ``docs/benchmarks/dp.md`` and the per-config
values to ``docs/benchmarks/dp_baselines.csv``.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.baselines import default_baselines  # noqa: E402
from agents.dp import evaluate_exact, solve  # noqa: E402
from benchmarks._docpage import machine_line, write_section  # noqa: E402
from envs.config import RulesConfig  # noqa: E402
from ingest.io import write_frame_atomic  # noqa: E402
from simulator.demand import Catalog  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "benchmarks" / "dp.md"
CSV = ROOT / "docs" / "benchmarks" / "dp_baselines.csv"

PROFILES: dict[str, RulesConfig] = {
    "none": RulesConfig(),
    "markdown": RulesConfig(markdown_only=True, min_weeks_between_changes=2),
    "strict": RulesConfig(
        markdown_only=True,
        min_weeks_between_changes=3,
        max_discount=0.5,
        no_touch_before_exit_weeks=1,
        sell_through_target=0.8,
        sell_through_penalty_per_unit=0.3,
    ),
}


def sku(elasticity: float, cover: float, weeks: int, units: int) -> Catalog:
    """``cover`` = stock / expected full-price demand over the horizon (> 1: too much)."""
    return Catalog.build(
        n_skus=1,
        base_demand=units / (cover * weeks),
        initial_stock=units,
        elasticity=elasticity,
        unit_cost=0.3,
        salvage_value_per_unit=0.05,
        holding_cost_per_unit_week=0.002,
        dispersion=0.2,
        season=1.0 + 0.25 * np.sin(np.arange(52) / 52 * 2 * np.pi),
    )


def run_grid(
    elasticities: Sequence[float],
    covers: Sequence[float],
    horizons: Sequence[int],
    profiles: Sequence[str],
    units: int,
) -> pd.DataFrame:
    """Exact value of the DP and of every baseline on each configuration (long frame)."""
    rows = []
    grid = list(itertools.product(profiles, elasticities, covers, horizons))
    for i, (profile, el, cover, weeks) in enumerate(grid, 1):
        rules, cat = PROFILES[profile], sku(el, cover, weeks, units)
        optimum = solve(cat, rules, weeks).value
        print(
            f"[baselines_table] {i}/{len(grid)} {profile} el={el} cover={cover} H={weeks}",
            file=sys.stderr,
        )
        for policy in default_baselines(include_dp=False):
            value = evaluate_exact(cat, rules, weeks, policy)
            rows.append(
                dict(
                    profile=profile,
                    elasticity=el,
                    cover=cover,
                    horizon_weeks=weeks,
                    baseline=policy.name,
                    value=value,
                    dp_value=optimum,
                    pct_of_dp=100.0 * value / optimum if optimum > 0 else np.nan,
                    regret_pct_stock_value=100.0 * (optimum - value) / (units * 1.0),
                )
            )
    return pd.DataFrame(rows)


def render(frame: pd.DataFrame) -> str:
    """Markdown tables: mean % of DP by rule profile, worst case, and by cover."""
    order = list(dict.fromkeys(frame["baseline"]))
    by_profile = frame.pivot_table(
        index="baseline", columns="profile", values="pct_of_dp", aggfunc="mean"
    ).reindex(order)
    overall = frame.groupby("baseline")["pct_of_dp"].agg(["mean", "min"]).reindex(order)
    regret = frame.groupby("baseline")["regret_pct_stock_value"].mean().reindex(order)
    by_cover = frame.pivot_table(
        index="baseline", columns="cover", values="pct_of_dp", aggfunc="mean"
    ).reindex(order)
    profiles = [p for p in PROFILES if p in by_profile.columns]
    covers = list(by_cover.columns)
    lines = [
        "| baseline | mean % of DP | worst % | "
        + " | ".join(f"{p} rules" for p in profiles)
        + " | mean regret, % of initial stock value |",
        "|---|" + "---|" * (3 + len(profiles)),
    ]
    for name in order:
        cells = " | ".join(f"{by_profile.loc[name, p]:.1f}" for p in profiles)
        lines.append(
            f"| `{name}` | {overall.loc[name, 'mean']:.1f} | {overall.loc[name, 'min']:.1f} | "
            f"{cells} | {regret.loc[name]:.2f} |"
        )
    lines += [
        "",
        "Mean % of DP by stock cover (stock / full-price demand over the horizon):",
        "",
        "| baseline | " + " | ".join(f"cover {c:g}" for c in covers) + " |",
        "|---|" + "---|" * len(covers),
    ]
    for name in order:
        lines.append(
            f"| `{name}` | " + " | ".join(f"{by_cover.loc[name, c]:.1f}" for c in covers) + " |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--units", type=int, default=300, help="initial stock per SKU")
    parser.add_argument("--elasticities", type=float, nargs="+", default=[-1.5, -2.5, -3.5])
    parser.add_argument("--covers", type=float, nargs="+", default=[0.7, 1.5, 3.0])
    parser.add_argument("--horizons", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--profiles", nargs="+", default=list(PROFILES), choices=list(PROFILES))
    parser.add_argument("--page", type=Path, default=PAGE)
    parser.add_argument("--csv", type=Path, default=CSV)
    args = parser.parse_args(argv)
    frame = run_grid(args.elasticities, args.covers, args.horizons, args.profiles, args.units)
    write_frame_atomic(frame, args.csv)
    n_cfg = len(frame) // frame["baseline"].nunique()
    n_pos = int(
        (
            frame.groupby(["profile", "elasticity", "cover", "horizon_weeks"])["dp_value"].first()
            > 0
        ).sum()
    )
    body = "\n".join(
        [
            "## Baselines as a percentage of the DP optimum",
            "",
            f"{n_cfg} configurations: elasticity {args.elasticities} x cover {args.covers} x "
            f"horizon {args.horizons} weeks x rule profiles {args.profiles}; "
            f"{args.units} units, list price 1, unit cost 0.3, salvage 0.05, holding 0.002 "
            f"per unit-week, negative-binomial demand (alpha 0.2), a mild season. Every value "
            f"is exact (DP policy evaluation), so the table has no simulation noise. "
            f"% of DP is value / optimum ({n_pos} of {n_cfg} configurations have a positive "
            f"optimum; the others are left out of the % columns); regret is (optimum - "
            f"value) / initial stock value. Rule profiles: `none`; `markdown` = markdown-only, "
            f">= 2 weeks between changes; `strict` = markdown-only, >= 3 weeks, max 50 %, "
            f"freeze in the exit week, 80 % sell-through target with a 0.3 penalty per unit "
            f"short.",
            "",
            render(frame),
            "",
            f"Per-configuration values: `docs/benchmarks/{args.csv.name}`. Machine: "
            f"{machine_line()}.",
            "",
            "Produced by `.venv/bin/python benchmarks/baselines_table.py`.",
        ]
    )
    write_section(
        args.page, "baselines_table", body, title="The exact DP: solve time and baselines"
    )
    print(f"[baselines_table] wrote {args.page} and {args.csv}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
