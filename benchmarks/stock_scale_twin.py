"""What a policy that cannot see the stock's size gives away on the small-stock scenarios.

PPO's observation (``envs/observation.py``) describes the stock only relative to its start
(``stock_ratio``) and to demand (``demand_cover``, ``last_sales_rate``): a SKU with 10 units
and its twin with 1,000 units and 100 times the demand look the same. The exact DP does see
the units, and with few of them the best plan differs (each unit's sale is a coin flip, not
a share of a flow). This script measures how much: for every scenario of the standard suite
with at most ``--max-stock`` units, it solves the DP of the ``K``-times-larger twin (stock
and demand times ``K``, everything else equal), plays the twin's optimal action at the
matching state (``K`` times the units) on the real scenario and scores it exactly with
:func:`agents.dp.evaluate_exact`, as a percentage of the real scenario's DP optimum. ``K =
1`` is the DP itself (100 %, a check of the mapping).

No simulation and no training: every figure is exact. Writes the section ``stock-scale-twin``
of ``docs/benchmarks/ppo_standard_scale.md``::

    .venv/bin/python benchmarks/stock_scale_twin.py
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from agents.dp import evaluate_exact, solve  # noqa: E402
from benchmarks._docpage import markdown_table, write_section  # noqa: E402
from experiments.suite import get_suite  # noqa: E402

log = logging.getLogger("stock_scale_twin")

PAGE = ROOT / "docs" / "benchmarks" / "ppo_standard_scale.md"
TITLE = "PPO on the standard suite: the stock's size"


def twin_policy(twin, scale: int):
    """``(context, masks) -> actions`` on the real scenario's DP grid: the ``scale``-times
    larger twin's optimal action at ``scale`` times the units (same weeks and rule state)."""

    def act(ctx, masks: np.ndarray) -> np.ndarray:
        # the rules' masks do not depend on the units on hand, so the twin's action is
        # allowed here too (evaluate_exact checks every action against the masks)
        d = ctx.decision
        state = replace(
            d,
            stock=np.asarray(d.stock, float) * scale,
            initial_stock=np.asarray(d.initial_stock, float) * scale,
        )
        return twin.policy(state)

    return act


def measure(max_stock: int, scales: tuple[int, ...]) -> pd.DataFrame:
    if max_stock < 1:
        raise SystemExit(f"--max-stock = {max_stock}; expected >= 1 (units)")
    if not scales or min(scales) < 1:
        raise SystemExit(f"--scales = {list(scales)}; expected whole numbers >= 1")
    rows = []
    for sc in get_suite("standard"):
        if sc.initial_stock > max_stock:
            continue
        cat, rules, h = sc.catalog(), sc.rules, sc.horizon_weeks
        best = solve(cat, rules, horizon_weeks=h).value
        row = {"scenario": sc.name, "stock": sc.initial_stock, "weeks": h, "dp": round(best, 4)}
        for k in scales:
            twin_cat = cat.replace(
                base_demand=cat.base_demand * k, initial_stock=cat.initial_stock * k
            )
            twin = solve(twin_cat, rules, horizon_weeks=h)
            value = evaluate_exact(cat, rules, h, twin_policy(twin, k))
            row[f"x{k}"] = round(100.0 * value / best, 2)
        log.info("%s: %s", sc.name, {k: v for k, v in row.items() if k.startswith("x")})
        rows.append(row)
    if not rows:
        smallest = min(sc.initial_stock for sc in get_suite("standard"))
        raise SystemExit(
            f"--max-stock = {max_stock}: no scenario of the standard suite has that few units "
            f"(the smallest has {smallest})"
        )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--max-stock", type=int, default=100, help="scenarios with at most this many units"
    )
    ap.add_argument("--scales", type=int, nargs="+", default=[1, 3, 10, 30, 100])
    ap.add_argument("--page", type=Path, default=PAGE)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    table = measure(args.max_stock, tuple(args.scales))
    cols = ", ".join(f"x{k}" for k in args.scales)
    body = (
        "## The larger twin's optimal plan, played on the small stock (exact, % of the DP)\n\n"
        "```\n.venv/bin/python benchmarks/stock_scale_twin.py\n```\n\n"
        f"Columns {cols}: the DP policy of the twin with that many times the units and the "
        "demand, played at the matching state of the scenario itself; `dp`: the scenario's "
        "optimum (currency, list price 1).\n\n" + markdown_table(table) + "\n"
    )
    write_section(args.page, "stock-scale-twin", body, title=TITLE)
    print(table.to_string(index=False))
    print(f"wrote {args.page}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
