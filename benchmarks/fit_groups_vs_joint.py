"""The demand fit by category group against one joint Newton fit of every group.

The fit runs each category group's GLM as its own task (``simulator.fit.fit_by_group``);
the joint fit (``simulator.glm.fit_with_dispersion`` over all groups at once, the fit's
code path before the groups became tasks) should give the same estimates up to Newton's
tolerance: the groups share no parameter, only the joint fit's stopping test. Prints the
largest absolute differences of the catalog's elasticities, levels, lifts and dispersions.

Run: ``.venv/bin/python benchmarks/fit_groups_vs_joint.py [--source synthetic|completejourney]
[--max-skus N] [--weeks 104]`` (``--weeks``: of the synthetic world).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import simulator.fit as fit_module  # noqa: E402
from simulator.glm import (  # noqa: E402
    GLMResult,
    fit_sku_group_glm,
    fit_with_dispersion,
    moment_dispersion,
)

FIELDS = (
    "elasticity", "elasticity_se", "base_demand", "base_demand_se", "season",
    "coupon_coef", "display_coef", "mailer_coef", "dispersion",
)  # fmt: skip


def joint(y, x, z, sku, group_of_sku, *, n_groups, map_tasks, **kw: Any) -> GLMResult:  # noqa: ANN001
    """The joint fit, with :func:`simulator.fit.fit_by_group`'s signature."""
    return fit_with_dispersion(
        y,
        x,
        z,
        sku,
        group_of_sku,
        n_groups=n_groups,
        negative_binomial=kw.pop("negative_binomial"),
        **kw,
    )


def polished(y, x, z, sku, group_of_sku, *, n_groups, map_tasks, **kw: Any) -> GLMResult:  # noqa: ANN001
    """The joint fit with every Newton solve restarted from its result until the largest
    parameter change is below 1e-10: a reference as close to the exact optimum as the
    arithmetic allows (each restart takes at least two Newton steps)."""
    negbin, start = kw.pop("negative_binomial"), kw.pop("start")
    args = (y, x, z, sku, group_of_sku)

    def solve(alpha: np.ndarray | None, first: GLMResult | None) -> GLMResult:
        res = fit_sku_group_glm(*args, n_groups=n_groups, alpha=alpha, start=first, **kw)
        for _ in range(50):
            nxt = fit_sku_group_glm(*args, n_groups=n_groups, alpha=alpha, start=res, **kw)
            step = max(
                float(np.max(np.abs(nxt.intercept - res.intercept))),
                float(np.max(np.abs(nxt.slope - res.slope))),
                float(np.max(np.abs(nxt.theta - res.theta), initial=0.0)),
            )
            res = nxt
            if step < 1e-10:
                break
        return res

    fixed = kw.get("fixed_slope")
    free = 1.0 - np.asarray(fixed, float)
    k = z.shape[1]
    n_params = np.bincount(group_of_sku, weights=1.0 + free, minlength=n_groups) + k
    res = solve(start.alpha if start is not None and negbin else None, start)
    for _ in range(2 if negbin else 0):
        alpha = moment_dispersion(res.y_filled, res.mu, group_of_sku[sku], n_groups, n_params)
        res = solve(alpha, res)
    return res


PAIRS: tuple[tuple[str, str], ...] = (
    ("per-group", "joint"),
    ("per-group", "exact"),
    ("joint", "exact"),
)
"""The fits compared, each pair a column of the table."""


def panel_of(source: str, max_skus: int | None, weeks: int = 104):  # noqa: ANN201
    if source == "synthetic":
        from ingest.dataset import Dataset
        from ingest.panel import build_panel
        from simulator.synthetic import SyntheticConfig, generate_world

        world = generate_world(SyntheticConfig(n_skus=max_skus or 2000, n_weeks=weeks, seed=0))
        return build_panel(Dataset(tables=world.tables, source="synthetic", fingerprint="b")), None
    from app.data import DataStageConfig, run_data_stage

    data = run_data_stage(DataStageConfig(source=source, out_dir=None))
    panel = data.panel
    if max_skus:
        top = panel.groupby("sku")["units"].sum().nlargest(max_skus).index
        panel = panel[panel["sku"].isin(top)]
    return panel, data.dataset.products


def fits_of(panel, products, pooling: str) -> dict[str, Any]:  # noqa: ANN001
    """The catalog fitted three ways: ``per-group`` (the fit as it is), ``joint`` and
    ``exact`` (:func:`joint`, :func:`polished` in place of ``fit_by_group``, restored after)."""
    cfg = fit_module.FitConfig(pooling=pooling)
    fits = {"per-group": fit_module.fit_catalog(panel, cfg, products=products)}
    per_group = fit_module.fit_by_group
    try:
        for name, path in (("joint", joint), ("exact", polished)):
            fit_module.fit_by_group = path  # type: ignore[assignment]
            fits[name] = fit_module.fit_catalog(panel, cfg, products=products)
    finally:
        fit_module.fit_by_group = per_group
    return fits


def differences(fits: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per field (:data:`FIELDS` and ``elasticity_raw``), per pair (``"p - q"``, see
    :data:`PAIRS`): the largest absolute difference (``base_demand``: also ``"... rel."``,
    the largest relative one)."""
    out: dict[str, dict[str, float]] = {}
    for name in (*FIELDS, "elasticity_raw"):
        row: dict[str, float] = {}
        for p, q in PAIRS:
            if name == "elasticity_raw":
                u = fits[p].estimates[name].to_numpy(float)
                v = fits[q].estimates[name].to_numpy(float)
            else:
                u = np.asarray(getattr(fits[p].catalog, name), float)
                v = np.asarray(getattr(fits[q].catalog, name), float)
            row[f"{p} - {q}"] = float(np.nanmax(np.abs(u - v)))
            if name == "base_demand":  # levels span orders of magnitude: also relative
                row[f"{p} - {q} rel."] = float(np.nanmax(np.abs(u / v - 1.0)))
        out[name] = row
    return out


def table(diffs: dict[str, dict[str, float]]) -> str:
    """:func:`differences` as the Markdown table the script prints."""
    lines = [
        "| field | " + " | ".join(f"{p} - {q}" for p, q in PAIRS) + " |",
        "|---|---|---|---|",
    ]
    for name, row in diffs.items():
        cells = []
        for p, q in PAIRS:
            cell = f"{row[f'{p} - {q}']:.2g}"
            if f"{p} - {q} rel." in row:
                cell += f" ({row[f'{p} - {q} rel.']:.2g} rel.)"
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", default="synthetic")
    ap.add_argument("--max-skus", type=int, default=None)
    ap.add_argument("--weeks", type=int, default=104, help="weeks of a synthetic world")
    ap.add_argument("--pooling", default="eb")
    args = ap.parse_args(argv)
    panel, products = panel_of(args.source, args.max_skus, args.weeks)
    fits = fits_of(panel, products, args.pooling)
    by_group = fits["per-group"]
    print(
        f"source {args.source}: {by_group.catalog.n_skus} SKUs, "
        f"{by_group.categories.shape[0]} categories, pooling {args.pooling}"
    )
    print(
        "Newton iterations (most of any group / joint):",
        by_group.diagnostics["fit/newton_iterations"],
        fits["joint"].diagnostics["fit/newton_iterations"],
    )
    print(table(differences(fits)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
