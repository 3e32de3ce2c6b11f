"""Field tests with a known effect: the test weeks of a synthetic world, plans applied.

A synthetic world (:mod:`simulator.synthetic`) knows every SKU's true demand parameters
(:func:`current_catalog`: ``world.catalog`` positioned at the end of its history, with the
base demand each SKU has then). :func:`simulate_test_weeks` plays
the test that an assignment describes: each assigned SKU runs the plan of its arm for the
test weeks in the true market (one draw of the world, :func:`planning.outcomes.simulate_schedule`
at the true parameters), and the weeks' sales are appended to the world's ``sales`` table,
so ``deadstock abtest analyze`` reads them from an ordinary data source.

:func:`true_effects` is what the analysis should find: per metric, the mean over the
assigned SKUs of the expected difference between the two plans, simulated on many paired
episodes in the same true market with the metrics' data definitions
(:func:`fieldtests.metrics.observed`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fieldtests.analysis import check_assignment
from fieldtests.assignment import CONTROL, TREATMENT
from fieldtests.metrics import METRICS, observed_arrays
from fieldtests.power import truncate
from ingest.errors import DataError
from planning.outcomes import Outcome, simulate_schedule, simulate_schedules
from planning.schedule import Schedule
from simulator.demand import Catalog
from simulator.synthetic import SyntheticWorld

TRUTH_EPISODES = 2000
"""Paired episodes behind a true effect (its simulation error is then far below a test's)."""


def current_catalog(world: SyntheticWorld) -> Catalog:
    """The world's true parameters *now*: ``world.catalog`` holds the nominal base demand
    (before the SKU's health), so a dying SKU would sell as if healthy; its base demand here
    is the one at the end of the history (``truth.base_demand_end``), held for the test
    weeks."""
    t = world.truth.set_index(world.truth["sku"].astype(str))
    skus = np.asarray(world.catalog.sku, dtype=str)
    return world.catalog.replace(base_demand=t.loc[skus, "base_demand_end"].to_numpy(float))


def true_catalog(world_catalog: Catalog, assignment: pd.DataFrame) -> Catalog:
    """The true parameters of the assigned SKUs, in the assignment's order, with the stock the
    test starts from (the assignment's ``initial_stock``)."""
    a = check_assignment(assignment, "assignment")
    index = pd.Index(np.asarray(world_catalog.sku, dtype=str))
    pos = index.get_indexer(a["sku"])
    if (pos < 0).any():
        raise DataError(
            f"{int((pos < 0).sum())} assigned SKUs are not in the world (e.g. "
            f"{a['sku'][pos < 0].tolist()[:3]})"
        )
    return world_catalog.take(pos).replace(initial_stock=a["initial_stock"].to_numpy(float))


def applied_schedule(assignment: pd.DataFrame, treatment: Schedule, control: Schedule) -> Schedule:
    """One schedule of the assigned SKUs: each SKU's arm's plan, over the test weeks."""
    a = check_assignment(assignment, "assignment")
    weeks = int(a["test_weeks"].iloc[0])
    t, c = truncate(treatment, weeks), truncate(control, weeks)
    rows = {}
    for plan in (t, c):
        idx = pd.Index(np.asarray(plan.sku, dtype=str)).get_indexer(a["sku"])
        if (idx < 0).any():
            raise DataError(f"plan {plan.name!r} lacks assigned SKUs (e.g. "
                            f"{a['sku'][idx < 0].tolist()[:3]})")  # fmt: skip
        rows[plan.name] = idx
    treated = (a["arm"] == TREATMENT).to_numpy()[:, None]
    pick = lambda f: np.where(treated, f(t)[rows[t.name]], f(c)[rows[c.name]])  # noqa: E731
    return Schedule(
        sku=a["sku"].to_numpy(dtype=object),
        discount=pick(lambda s: np.asarray(s.discount, float)),
        coupon=pick(lambda s: np.asarray(s.coupon, float)),
        name="applied",
    )


def _metrics_of(outcome: Outcome, catalog: Catalog) -> dict[str, np.ndarray]:
    """The data definitions of the metrics on simulated totals (SKUs x episodes)."""
    tot = outcome.totals
    return observed_arrays(
        tot["units_sold"],
        tot["revenue"],
        tot["margin_given_away"] - tot["coupon_cost"],
        tot["coupon_cost"],
        np.asarray(catalog.initial_stock, float)[:, None],
        np.asarray(catalog.unit_cost, float)[:, None],
    )


def true_effects(
    world_catalog: Catalog,
    assignment: pd.DataFrame,
    treatment: Schedule,
    control: Schedule,
    *,
    seed: int,
    n_episodes: int = TRUTH_EPISODES,
) -> dict[str, float]:
    """Per metric and guardrail: the true mean effect per SKU of treatment vs control."""
    a = check_assignment(assignment, "assignment")
    cat = true_catalog(world_catalog, a)
    plans = {
        arm: applied_schedule(a.assign(arm=arm), treatment, control) for arm in (TREATMENT, CONTROL)
    }
    out = simulate_schedules(cat, plans, n_episodes=n_episodes, seed=seed, draw_parameters=False)
    t, c = _metrics_of(out[TREATMENT], cat), _metrics_of(out[CONTROL], cat)
    return {k: float((t[k] - c[k]).mean()) for k in [*METRICS, "margin_given_away"]}


def simulate_test_weeks(
    tables: dict[str, pd.DataFrame],
    world_catalog: Catalog,
    assignment: pd.DataFrame,
    treatment: Schedule,
    control: Schedule,
    *,
    seed: int,
) -> dict[str, pd.DataFrame]:
    """The world's ``tables`` with the test weeks' sales of the assigned SKUs appended."""
    a = check_assignment(assignment, "assignment")
    sales = tables["sales"]
    start = int(a["test_start_week"].iloc[0]) or int(sales["week"].max()) + 1
    if len(sales) and int(sales["week"].max()) >= start:
        raise DataError(
            f"the world's sales reach week {int(sales['week'].max())}; the test starts at week "
            f"{start} and must come after the history"
        )
    cat = true_catalog(world_catalog, a)
    plan = applied_schedule(a, treatment, control)
    one = simulate_schedule(cat, plan, n_episodes=1, seed=seed, draw_parameters=False)
    units = one.weekly_mean["units"]
    revenue = one.weekly_mean["revenue"]
    at_list = units * np.asarray(cat.list_price, float)[:, None]
    n, h = units.shape
    new = pd.DataFrame(
        {
            "sku": np.repeat(a["sku"].to_numpy(dtype=object), h),
            "week": np.tile(np.arange(start, start + h), n),
            "units": units.ravel(),
            "revenue": np.round(revenue, 2).ravel(),
            "discount_amount": np.round(at_list * plan.discount, 2).ravel(),
            "coupon_amount": np.round(at_list * plan.coupon, 2).ravel(),
            "returns": 0.0,
        }
    )
    new = new[new["units"] > 0]
    out = dict(tables)
    out["sales"] = pd.concat([sales, new[sales.columns.intersection(new.columns)]],
                             ignore_index=True)  # fmt: skip
    return out
