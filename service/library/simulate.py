"""Simulated outcomes: what-ifs over one or many SKUs and the alternatives beside a
SKU's recommended schedule, on paired paths (:mod:`planning`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ingest.errors import ConfigError
from service.library.rules import make_schedule, rules_to_dict, rules_with, take_skus

logger = logging.getLogger(__name__)

OUTCOME_METRICS = ("profit", "units_sold", "sell_through", "leftover_units", "revenue",
                   "margin_given_away", "holding_cost", "dead_stock_value")  # fmt: skip


def _metric_rows(out: Any, base: Any, i: int) -> dict[str, dict[str, float]]:
    """Per metric of SKU row ``i``: mean and CI, and the paired difference to ``base``."""
    from planning.outcomes import mean_ci

    rows = {}
    for name in OUTCOME_METRICS:
        lo, hi = out.sku_ci(name)
        row = {"mean": float(out.sku_mean(name)[i]), "ci_low": float(lo[i]),
               "ci_high": float(hi[i])}  # fmt: skip
        if base is not None:
            diff = out.totals[name][i] - base.totals[name][i]
            dlo, dhi = mean_ci(diff, out.ci_level)
            row.update(vs_no_markdown=float(diff.mean()), vs_ci_low=float(dlo),
                       vs_ci_high=float(dhi))  # fmt: skip
        rows[name] = row
    return rows


@dataclass(frozen=True)
class SimSettings:
    """How a request simulates: episodes, seed, CI level, parameter draws, and the prior grid
    of the QMDP alternative (the plan's ``evaluation.qmdp_grid``; 0 = none)."""

    n_episodes: int
    seed: int = 0
    ci_level: float = 0.95
    draw_parameters: bool = True
    qmdp_grid: int = 0


def alternatives(
    catalog_one: Any,
    rules_values: dict[str, Any],
    recommended: tuple[np.ndarray, np.ndarray, str],
    sim: SimSettings,
) -> list[dict[str, Any]]:
    """One SKU's recommended schedule beside doing nothing, every heuristic, the exact DP and
    (when the parameters are drawn and ``sim.qmdp_grid`` is set, as in the main job) QMDP,
    each simulated on the same paths (paired) with outcomes and CIs.

    The heuristics' and the DP's plans come from :func:`planning.from_policy.plan_of` (their
    typical fixed plan under the plan's rules), QMDP's from
    :func:`planning.from_policy.qmdp_plan`. Where the DP is not exact for the SKU
    (reference-price memory, fatigue) its entry, and QMDP's, say why instead of approximating.
    """
    from agents.baselines import DPPolicy, default_baselines
    from agents.dp import DPNotExactError
    from planning.from_policy import QMDP_NAME, plan_of, qmdp_plan
    from planning.outcomes import simulate_schedule, simulation_seed
    from planning.schedule import Schedule

    rules = rules_with(rules_values, None)
    sku = [str(catalog_one.sku[0])]
    d, c, name = recommended
    h = d.shape[-1]
    plans: list[tuple[str, Any]] = [
        ("recommended", make_schedule(sku, d[None, :], c[None, :], name))
    ]
    plans.append(("no_markdown", Schedule.constant(catalog_one.sku, h, 0.0, "no_markdown")))
    notes: dict[str, str] = {}
    policies = [p for p in default_baselines(include_dp=False) if p.name != "no_markdown"]
    for policy in [*policies, DPPolicy()]:
        try:
            sched, _ = plan_of(policy, catalog_one, rules, h, seed=sim.seed)
        except DPNotExactError as err:
            notes[policy.name] = f"the exact DP does not apply to this SKU: {err}"
            continue
        plans.append((policy.name, sched))
    if sim.draw_parameters and sim.qmdp_grid:
        hedged = qmdp_plan(catalog_one, rules, h, seed=sim.seed, grid_points=sim.qmdp_grid)
        if hedged.exact[0]:
            plans.append((QMDP_NAME, hedged.schedule))
        else:
            notes[QMDP_NAME] = (
                "QMDP does not apply to this SKU: the exact DP cannot solve its prior grid"
            )
    # The run's seed derivation (planning.outcomes.simulation_seed), so a SKU's numbers here
    # equal its row of the run's sku_summary and the one-SKU what-if.
    kw = dict(n_episodes=sim.n_episodes, seed=simulation_seed(sim.seed), ci_level=sim.ci_level,
              draw_parameters=sim.draw_parameters)  # fmt: skip
    outs = {label: simulate_schedule(catalog_one, s, **kw) for label, s in plans}  # type: ignore[arg-type]
    base = outs["no_markdown"]
    result = []
    for label, s in plans:
        result.append(
            {
                "policy": label,
                "schedule_name": s.name,
                "available": True,
                "note": "",
                "discount": np.asarray(s.discount)[0].tolist(),
                "coupon": np.asarray(s.coupon)[0].tolist(),
                "outcomes": _metric_rows(outs[label], base, 0),
            }
        )
    for label, why in notes.items():
        result.append({"policy": label, "schedule_name": label, "available": False,
                       "note": why, "discount": [], "coupon": [], "outcomes": {}})  # fmt: skip
    return result


@dataclass
class WhatIfRequest:
    """A what-if over one or several SKUs of a plan (all depths as shares of list price)."""

    skus: list[str]
    discount: np.ndarray
    coupon: np.ndarray
    name: str
    max_discount: float | None = None
    exit_week: int | None = None
    coupons: bool = True
    rule_overrides: dict[str, Any] | None = None


def what_if(
    catalog: Any,
    rules_values: dict[str, Any],
    req: WhatIfRequest,
    sim: SimSettings,
    *,
    chunk_skus: int = 25,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Simulate a what-if against doing nothing on paired paths.

    One SKU goes through :func:`planning.whatif.what_if` (with its weekly paths for a chart);
    several go through :func:`planning.whatif.constrain_schedule` and
    :func:`planning.outcomes.simulate_schedule` in chunks of ``chunk_skus`` SKUs, so
    ``progress(done, total)`` can be reported between chunks. The portfolio totals are
    per-episode sums over SKUs (one sample per episode), so their CIs need no independence
    assumption.
    """
    from planning.outcomes import mean_ci, simulate_schedule, simulation_seed
    from planning.schedule import Schedule
    from planning.whatif import WhatIfConfig, constrain_schedule
    from planning.whatif import what_if as one_sku_what_if

    rules = rules_with(rules_values, req.rule_overrides)
    coupon = req.coupon if req.coupons else np.zeros_like(req.coupon)
    cfg = WhatIfConfig(
        sku=req.skus[0],
        max_discount=req.max_discount,
        exit_week=req.exit_week,
        n_episodes=sim.n_episodes,
        seed=sim.seed,
        ci_level=sim.ci_level,
        draw_parameters=sim.draw_parameters,
    )
    sub = take_skus(catalog, req.skus)
    sched = make_schedule(req.skus, req.discount, coupon, req.name)
    n = len(req.skus)
    rows: list[dict[str, Any]] = []
    weekly: dict[str, Any] | None = None
    per_episode = {k: np.zeros(sim.n_episodes) for k in OUTCOME_METRICS}
    per_episode_base = {k: np.zeros(sim.n_episodes) for k in OUTCOME_METRICS}
    if n == 1:
        out, base, _ = one_sku_what_if(sub, sched, cfg, rules=rules)
        assert base is not None
        parts = [(out, base, 0)]
        assert out.paths is not None
        weekly = {
            key: {
                "mean": out.paths[key].mean(axis=0).tolist(),
                "p05": np.percentile(out.paths[key], 5, axis=0).tolist(),
                "p95": np.percentile(out.paths[key], 95, axis=0).tolist(),
            }
            for key in ("units", "stock_left")
        }
    else:
        parts = []
        capped = constrain_schedule(sched, cfg, rules)
        kw = dict(n_episodes=sim.n_episodes, seed=simulation_seed(sim.seed),
                  ci_level=sim.ci_level, draw_parameters=sim.draw_parameters)  # fmt: skip
        for s0 in range(0, n, chunk_skus):
            if cancelled is not None and cancelled():
                raise ConfigError("what-if cancelled")
            idx = np.arange(s0, min(n, s0 + chunk_skus))
            part = sub.take(idx)
            psched = make_schedule(
                [req.skus[i] for i in idx],
                np.asarray(capped.discount)[idx],
                np.asarray(capped.coupon)[idx],
                capped.name,
            )
            out = simulate_schedule(part, psched, **kw)  # type: ignore[arg-type]
            base = simulate_schedule(
                part,
                Schedule.constant(part.sku, psched.horizon, 0.0, "no_markdown"),
                **kw,  # type: ignore[arg-type]
            )
            parts.append((out, base, s0))
            if progress is not None:
                progress(int(idx[-1]) + 1, n)
    for out, base, s0 in parts:
        for k in OUTCOME_METRICS:
            per_episode[k] += out.totals[k].sum(axis=0)
            per_episode_base[k] += base.totals[k].sum(axis=0)
        d_all, c_all = np.asarray(out.schedule.discount), np.asarray(out.schedule.coupon)
        for i in range(out.totals["profit"].shape[0]):
            rows.append(
                {
                    "sku": req.skus[s0 + i],
                    "discount": d_all[i].tolist(),
                    "coupon": c_all[i].tolist(),
                    "outcomes": _metric_rows(out, base, i),
                }
            )
    totals = {}
    for k in OUTCOME_METRICS:
        if k == "sell_through":
            continue  # a sum of shares means nothing
        lo, hi = mean_ci(per_episode[k], sim.ci_level)
        diff = per_episode[k] - per_episode_base[k]
        dlo, dhi = mean_ci(diff, sim.ci_level)
        totals[k] = {"mean": float(per_episode[k].mean()), "ci_low": float(lo),
                     "ci_high": float(hi), "vs_no_markdown": float(diff.mean()),
                     "vs_ci_low": float(dlo), "vs_ci_high": float(dhi)}  # fmt: skip
    if progress is not None and n == 1:
        progress(1, 1)
    return {
        "n_episodes": sim.n_episodes,
        "seed": sim.seed,
        "ci_level": sim.ci_level,
        "rules": rules_to_dict(rules),
        "skus": rows,
        "totals": totals,
        "weekly": weekly,
    }
