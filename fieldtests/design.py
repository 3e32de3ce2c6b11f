"""The design of a field test: who gets the plan, and how likely the test is to see its effect.

:func:`design_test` takes the SKUs of a run (the fitted catalog, the recommended schedule,
each SKU's category and risk tier) and a :class:`DesignConfig`, and returns a
:class:`Design`:

- the assignment table: one row per SKU with its stratum and arm
  (:func:`fieldtests.assignment.assign`), plus what the analysis needs to read the outcomes
  (stock at the start of the test, unit cost, list price, the test's weeks);
- the power at the minimum detectable effect (``mde``, relative to the control arm's mean),
  simulated in the fitted market for each estimator (difference in means, CUPED,
  stratified) and by the formula (:func:`fieldtests.power.analytic_power`), and the power at
  the plan's own simulated effect;
- the power curve over effects from 0 to 2.5 x ``mde``;
- the SKUs a test needs for the MDE at the asked power (formula, with CUPED's variance), said
  plainly when the plan has fewer.

Control is configurable: ``"none"`` (no markdown, list price every week) or
``"best_heuristic"`` (the run's best heuristic, re-planned with
:func:`planning.from_policy.plan_of` under the given rules).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from agents.baselines import default_baselines
from envs.config import RulesConfig
from fieldtests.assignment import assign, codes_of
from fieldtests.metrics import metric
from fieldtests.power import (
    ESTIMATORS,
    PotentialOutcomes,
    analytic_power,
    required_units,
    simulate_potential_outcomes,
    simulated_tests,
)
from ingest.errors import ConfigError, DataError
from planning.from_policy import plan_of
from planning.schedule import Schedule
from simulator.demand import Catalog

logger = logging.getLogger(__name__)

CONTROLS = ("none", "best_heuristic")
CURVE_SPAN = 2.5
"""The power curve runs from no effect to this many MDEs."""
CURVE_POINTS = 11
ASSIGNMENT_COLUMNS = (
    "sku", "category", "tier", "stratum", "arm", "initial_stock", "list_price", "unit_cost",
    "test_start_week", "test_weeks", "pre_weeks", "treatment_share",
)  # fmt: skip


@dataclass(frozen=True)
class DesignConfig:
    """Settings of a test design.

    Parameters
    ----------
    metric : str
        Primary metric: ``profit``, ``sell_through`` or ``dead_stock``.
    mde : float
        Minimum detectable effect, relative to the control arm's mean (0.05 = 5 %).
    alpha : float
        Two-sided significance level.
    power : float
        Power wanted at the MDE.
    weeks : int or None
        Test weeks (the first ``weeks`` of the plan); None = the plan's horizon.
    pre_weeks : int or None
        Pre-period weeks for the CUPED covariate; None = ``weeks``.
    control : str
        ``"none"`` or ``"best_heuristic"``.
    share : float
        Share of SKUs treated.
    seed : int
        Seed of the assignment and of every simulation.
    n_sims : int
        Simulated tests per effect.
    n_episodes : int
        Simulated episodes per SKU and plan (the worlds the simulated tests draw from).
    draw_parameters : bool
        Draw each episode's demand parameters from the fit's uncertainty.
    """

    metric: str = "profit"
    mde: float = 0.05
    alpha: float = 0.05
    power: float = 0.8
    weeks: int | None = None
    pre_weeks: int | None = None
    control: str = "none"
    share: float = 0.5
    seed: int = 0
    n_sims: int = 1000
    n_episodes: int = 200
    draw_parameters: bool = True

    def __post_init__(self) -> None:
        metric(self.metric)
        checks = (
            ("mde", self.mde > 0, "> 0 (a relative effect, 0.05 = 5 %)"),
            ("alpha", 0 < self.alpha < 0.5, "in (0, 0.5)"),
            ("power", 0 < self.power < 1, "in (0, 1)"),
            ("weeks", self.weeks is None or self.weeks >= 1, ">= 1"),
            ("pre_weeks", self.pre_weeks is None or self.pre_weeks >= 1, ">= 1"),
            ("control", self.control in CONTROLS, f"one of {', '.join(CONTROLS)}"),
            ("share", 0 < self.share < 1, "in (0, 1)"),
            ("seed", self.seed >= 0, ">= 0"),
            ("n_sims", self.n_sims >= 10, ">= 10"),
            ("n_episodes", self.n_episodes >= 2, ">= 2"),
        )
        for name, ok, expected in checks:
            if not ok:
                raise ConfigError(f"{name} = {getattr(self, name)!r}: expected {expected}")


@dataclass
class Design:
    """A designed test (see the module docstring)."""

    config: DesignConfig
    assignment: pd.DataFrame
    control_name: str
    treatment_name: str
    weeks: int
    control_mean: float
    plan_effect: float
    mde_abs: float
    sigma: float
    rho: float
    power_at_mde: dict[str, float]
    power_at_plan: dict[str, float]
    analytic: dict[str, float]
    curve: pd.DataFrame
    needed_units: dict[str, float]
    notes: list[str] = field(default_factory=list)

    @property
    def n_units(self) -> int:
        return len(self.assignment)

    def metrics(self) -> dict[str, float]:
        """Flat metrics for MLflow (``design/...``)."""
        out = {
            "design/n_skus": float(self.n_units),
            "design/n_treatment": float((self.assignment["arm"] == "treatment").sum()),
            "design/n_strata": float(self.assignment["stratum"].nunique()),
            "design/control_mean": self.control_mean,
            "design/plan_effect": self.plan_effect,
            "design/mde_abs": self.mde_abs,
            "design/sigma": self.sigma,
            "design/rho_covariate": self.rho,
        }
        for k, v in self.power_at_mde.items():
            out[f"design/power_at_mde/{k}"] = v
        for k, v in self.power_at_plan.items():
            out[f"design/power_at_plan/{k}"] = v
        for k, v in self.analytic.items():
            out[f"design/analytic_power/{k}"] = v
        for k, v in self.needed_units.items():
            out[f"design/needed_skus/{k}"] = v
        return out

    def params(self) -> dict[str, object]:
        return {**asdict(self.config), "control_plan": self.control_name,
                "treatment_plan": self.treatment_name, "test_weeks": self.weeks}  # fmt: skip


def control_schedule(
    catalog: Catalog,
    kind: str,
    horizon: int,
    *,
    heuristic: str | None = None,
    rules: RulesConfig | None = None,
    seed: int = 0,
) -> Schedule:
    """The control plan: no markdown, or the named heuristic's typical plan."""
    if kind == "none":
        return Schedule.constant(catalog.sku, horizon, 0.0, name="no_markdown")
    if kind != "best_heuristic":
        raise ConfigError(f"control = {kind!r}: expected one of {', '.join(CONTROLS)}")
    policies = {p.name: p for p in default_baselines(include_dp=False)}
    if heuristic not in policies:
        raise DataError(
            f"best heuristic {heuristic!r}: expected one of {', '.join(sorted(policies))} "
            "(the run's sku_summary 'best_heuristic' column)"
        )
    sched, _ = plan_of(policies[heuristic], catalog, rules or RulesConfig(), horizon, seed=seed)
    return sched


def _aligned_units(catalog: Catalog, units: pd.DataFrame, treatment: Schedule) -> pd.DataFrame:
    skus = np.asarray(catalog.sku, dtype=str)
    if not np.array_equal(np.asarray(treatment.sku, dtype=str), skus):
        raise DataError("the plan's SKUs do not match the catalog's SKUs in order")
    frame = units.assign(sku=units["sku"].astype(str)).drop_duplicates("sku").set_index("sku")
    missing = [s for s in skus if s not in frame.index]
    if missing:
        raise DataError(
            f"{len(missing)} planned SKUs have no category and tier (e.g. {missing[:3]}); "
            "expected one row per planned SKU in the run's sku_summary"
        )
    out = frame.loc[skus, ["category", "tier"]].reset_index()
    out["tier"] = out["tier"].fillna("unknown").astype(str)
    out["category"] = out["category"].fillna("unknown").astype(str)
    return out


def _seeds(seed: int) -> tuple[int, int, int]:
    a, b, c = (int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(3))
    return a, b, c


def design_test(
    catalog: Catalog,
    units: pd.DataFrame,
    treatment: Schedule,
    control: Schedule,
    config: DesignConfig,
    *,
    start_week: int,
) -> Design:
    """Assign the SKUs of ``catalog`` and size the test (see the module docstring).

    Parameters
    ----------
    catalog : Catalog
        The fitted SKUs, in the plans' order.
    units : DataFrame
        ``sku``, ``category``, ``tier`` per SKU (the run's ``sku_summary``).
    treatment, control : Schedule
    config : DesignConfig
    start_week : int
        Data week of the test's first week (written into the assignment for the analysis);
        0 = the last ``weeks`` weeks of the data the analysis reads.
    """
    cfg = config
    weeks = cfg.weeks or treatment.horizon
    pre_weeks = cfg.pre_weeks or weeks
    if weeks > treatment.horizon or weeks > control.horizon:
        raise ConfigError(
            f"weeks = {weeks}: expected at most the plan's horizon ({treatment.horizon})"
        )
    seed_assign, seed_sim, seed_tests = _seeds(cfg.seed)
    table = assign(_aligned_units(catalog, units, treatment), seed=seed_assign, share=cfg.share)
    table["initial_stock"] = np.asarray(catalog.initial_stock, dtype=float)
    table["list_price"] = np.asarray(catalog.list_price, dtype=float)
    table["unit_cost"] = np.asarray(catalog.unit_cost, dtype=float)
    table["test_start_week"] = int(start_week)
    table["test_weeks"] = int(weeks)
    table["pre_weeks"] = int(pre_weeks)
    table["treatment_share"] = cfg.share
    po = simulate_potential_outcomes(
        catalog, treatment, control, metric_name=cfg.metric, weeks=weeks, pre_weeks=pre_weeks,
        n_episodes=cfg.n_episodes, seed=seed_sim, draw_parameters=cfg.draw_parameters,
    )  # fmt: skip
    return _size(cfg, table[list(ASSIGNMENT_COLUMNS)], po, seed_tests, weeks, treatment, control)


def _size(cfg, table, po: PotentialOutcomes, seed, weeks, treatment, control) -> Design:
    m = metric(cfg.metric)
    control_mean = float(po.control.mean())
    if control_mean == 0:
        raise DataError(
            f"metric {cfg.metric!r} has mean 0 under control, so a relative MDE means nothing; "
            "pick another --metric"
        )
    sign = 1.0 if m.higher_is_better else -1.0
    mde_abs = sign * cfg.mde * abs(control_mean)
    rel = np.unique(np.append(np.linspace(0, CURVE_SPAN * cfg.mde, CURVE_POINTS), cfg.mde))
    shifts: list[float | None] = [None, *(sign * r * abs(control_mean) for r in rel)]
    codes = codes_of(table["stratum"].to_numpy())
    sims = simulated_tests(
        po, codes, shifts=shifts, n_tests=cfg.n_sims, seed=seed, share=cfg.share,
        level=1 - cfg.alpha,
    )  # fmt: skip
    n_t = int((table["arm"] == "treatment").sum())
    n_c = len(table) - n_t
    sigma, rho = po.sigma, po.rho
    rows = []
    for r, sim in zip(rel, sims[1:], strict=True):
        delta = sign * r * abs(control_mean)
        row = {"relative_effect": r, "effect": delta}
        row.update({f"power_{k}": v for k, v in sim.power(cfg.alpha).items()})
        row["power_formula"] = analytic_power(delta, sigma, n_t, n_c, cfg.alpha)
        row["power_formula_cuped"] = analytic_power(delta, sigma, n_t, n_c, cfg.alpha, rho)
        rows.append(row)
    curve = pd.DataFrame(rows)
    at = curve.loc[np.isclose(curve["relative_effect"], cfg.mde)].iloc[0]
    power_at_mde = {k: float(at[f"power_{k}"]) for k in ESTIMATORS}
    analytic = {"difference": float(at["power_formula"]), "cuped": float(at["power_formula_cuped"])}
    needed = {
        "difference": required_units(mde_abs, sigma, cfg.alpha, cfg.power, 0.0, cfg.share),
        "cuped": required_units(mde_abs, sigma, cfg.alpha, cfg.power, rho, cfg.share),
    }
    notes = []
    if max(power_at_mde.values()) < cfg.power:
        notes.append(
            f"the plan's {len(table)} SKUs give at most {max(power_at_mde.values()):.0%} power "
            f"at the MDE ({cfg.mde:.0%}); the formula says about {needed['cuped']:,.0f} SKUs "
            f"are needed for {cfg.power:.0%} with CUPED ({needed['difference']:,.0f} without)"
        )
    return Design(
        config=cfg, assignment=table, control_name=control.name, treatment_name=treatment.name,
        weeks=weeks, control_mean=control_mean, plan_effect=po.effect, mde_abs=mde_abs,
        sigma=sigma, rho=rho, power_at_mde=power_at_mde,
        power_at_plan=sims[0].power(cfg.alpha), analytic=analytic, curve=curve,
        needed_units=needed, notes=notes,
    )  # fmt: skip
