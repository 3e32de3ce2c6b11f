"""The evaluation suites: fixed, versioned single-SKU scenarios every agent is scored on.

:data:`SUITE_SPECS` registers every suite (``deadstock evaluate --list-suites``): its
scenarios, the market it is played in (``standard``: parameters known; ``learning``: the
elasticity and demand level drawn from a prior each episode, see :mod:`envs.learning`) and
its reference (what 100 % is). The standard suite is described below; the learning suite
reuses the same profiles and SKU shapes with a prior around each estimate.

A :class:`Scenario` is one SKU (a one-row :class:`~simulator.demand.Catalog`), a horizon and
a rule profile. The suite spans elasticity, cover (full-price expected demand over the
horizon divided by the stock), horizon (4-26 weeks), cost ratio (unit cost / list price),
stock (10-5,000 units), rule sets (none; a ladder with markdown-only; all rules), coupons on
and off, and Poisson or negative-binomial noise. Every scenario is exact for the DP (no
reference-price memory, no fatigue), so its optimum is known.

Rule profiles share one action grid per profile, so one PPO policy serves every SKU of a
profile (conditioned on the SKU's descriptors): see :data:`RULE_PROFILES`.

Changing any scenario or profile changes what the numbers mean: bump the suite's version
(:data:`SUITE_VERSION`, :data:`LEARNING_SUITE_VERSION`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Literal

import numpy as np

from envs.config import RulesConfig
from ingest.errors import ConfigError
from simulator.demand import Catalog

_LADDER = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7)

#: The rule sets of the suite, by name. Each is one action grid (one PPO policy per profile).
RULE_PROFILES: dict[str, RulesConfig] = {
    # No rule: any depth 0-70 % every week, no coupons.
    "none": RulesConfig(),
    # No rule, with coupons of 10 or 20 % on top of the shelf discount.
    "coupons": RulesConfig(coupon_levels=(0.0, 0.1, 0.2)),
    # A discount ladder and no price increase after a markdown.
    "markdown": RulesConfig(discount_levels=_LADDER, markdown_only=True),
    # Every rule at once (sell-through as a penalty so the DP stays exact and comparable).
    "all": RulesConfig(
        discount_levels=_LADDER,
        coupon_levels=(0.0, 0.1),
        max_discount=0.5,
        min_weeks_between_changes=2,
        markdown_only=True,
        margin_floor=0.0,
        no_touch_before_exit_weeks=1,
        coupon_budget_weeks=4,
        sell_through_target=0.6,
        sell_through_mode="penalty",
        sell_through_penalty_per_unit=0.2,
    ),
}

#: Coupon lift assumed where coupons are on: demand x exp(COUPON_COEF * coupon depth).
#: Stronger than the price effect at small depths, so coupons are worth using (an assumption,
#: as the design notes: the Complete Journey data show no estimable coupon effect).
COUPON_COEF = 3.0

Noise = Literal["poisson", "nb"]


@dataclass(frozen=True)
class Scenario:
    """One fixed single-SKU test case of the suite.

    Parameters
    ----------
    name : str
        Unique, readable id (used as the row key in every table and MLflow metric).
    profile : str
        Key of :data:`RULE_PROFILES`: the rules and action grid in force.
    elasticity : float
        Log-log price elasticity (< 0).
    cover : float
        Full-price expected demand over the horizon divided by the initial stock
        (< 1: the stock will not sell out at list price).
    horizon_weeks : int
        Weeks from the start to the exit week (4-26).
    cost_ratio : float
        Unit cost as a share of the list price.
    initial_stock : int
        Units on hand at the start.
    noise : {"poisson", "nb"}
        Demand noise; ``"nb"`` uses ``dispersion``.
    dispersion : float
        Negative-binomial overdispersion (ignored for Poisson).
    salvage_ratio : float
        Salvage value of a leftover unit as a share of list price.
    holding_ratio : float
        Holding cost per unit-week as a share of list price.
    elasticity_se : float
        Standard error of the elasticity estimate: the prior's sd in the learning market
        (0 = known; ignored by the standard market).
    level_se : float
        Standard error of ``log(base_demand)``: the prior's sd of the log demand level in
        the learning market (0 = known).
    ref_sensitivity : float
        Reference-price sensitivity ``gamma`` (demand x ``(p / R)^-gamma``; 0 = no memory;
        the memory market only).
    ref_memory : float
        Share of the reference price carried to the next week (``R' = m R + (1 - m) p``).
    fatigue_rate : float
        Promotion fatigue added per discounted week (demand x ``1 - F``; 0 = off).
    fatigue_decay : float
        Share of the fatigue carried to the next week.
    """

    name: str
    profile: str
    elasticity: float
    cover: float
    horizon_weeks: int
    cost_ratio: float
    initial_stock: int
    noise: Noise = "poisson"
    dispersion: float = 0.0
    salvage_ratio: float = 0.0
    holding_ratio: float = 0.0
    elasticity_se: float = 0.0
    level_se: float = 0.0
    ref_sensitivity: float = 0.0
    ref_memory: float = 0.0
    fatigue_rate: float = 0.0
    fatigue_decay: float = 0.0

    def __post_init__(self) -> None:
        where = f"scenario {self.name!r}"
        if self.profile not in RULE_PROFILES:
            raise ConfigError(
                f"{where}: profile {self.profile!r} is unknown; expected one of "
                f"{sorted(RULE_PROFILES)}"
            )
        if not self.elasticity < 0:
            raise ConfigError(f"{where}: elasticity = {self.elasticity}; expected < 0")
        if not self.cover > 0:
            raise ConfigError(f"{where}: cover = {self.cover}; expected > 0")
        if not 1 <= self.horizon_weeks <= 52:
            raise ConfigError(f"{where}: horizon_weeks = {self.horizon_weeks}; expected 1-52")
        if not 0 <= self.cost_ratio < 1:
            raise ConfigError(f"{where}: cost_ratio = {self.cost_ratio}; expected [0, 1)")
        if self.initial_stock < 1:
            raise ConfigError(f"{where}: initial_stock = {self.initial_stock}; expected >= 1")
        if self.noise not in ("poisson", "nb"):
            raise ConfigError(f"{where}: noise = {self.noise!r}; expected 'poisson' or 'nb'")
        if self.noise == "nb" and not self.dispersion > 0:
            raise ConfigError(f"{where}: noise 'nb' needs dispersion > 0")
        if self.elasticity_se < 0 or self.level_se < 0:
            raise ConfigError(f"{where}: elasticity_se and level_se must be >= 0")
        if self.ref_sensitivity < 0:
            raise ConfigError(f"{where}: ref_sensitivity = {self.ref_sensitivity}; expected >= 0")
        for name in ("ref_memory", "fatigue_rate", "fatigue_decay"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"{where}: {name} = {getattr(self, name)}; expected [0, 1)")

    @property
    def rules(self) -> RulesConfig:
        """The business rules of this scenario's profile."""
        return RULE_PROFILES[self.profile]

    @property
    def coupons(self) -> bool:
        """True when the profile allows coupons."""
        return self.rules.n_coupons > 1

    @property
    def base_demand(self) -> float:
        """Full-price expected weekly demand implied by ``cover``."""
        return self.cover * self.initial_stock / self.horizon_weeks

    def catalog(self) -> Catalog:
        """The scenario's SKU as a one-row catalog (list price 1)."""
        return Catalog.build(
            n_skus=1,
            sku=[self.name],
            category="suite",
            list_price=1.0,
            unit_cost=self.cost_ratio,
            base_demand=self.base_demand,
            elasticity=self.elasticity,
            coupon_coef=COUPON_COEF if self.coupons else 0.0,
            dispersion=self.dispersion if self.noise == "nb" else 0.0,
            salvage_value_per_unit=self.salvage_ratio,
            holding_cost_per_unit_week=self.holding_ratio,
            initial_stock=float(self.initial_stock),
            elasticity_se=self.elasticity_se,
            base_demand_se=self.level_se,
            ref_price_sensitivity=self.ref_sensitivity,
            ref_price_memory=self.ref_memory,
            fatigue_rate=self.fatigue_rate,
            fatigue_decay=self.fatigue_decay,
        )


def _s(
    name: str,
    profile: str,
    elasticity: float,
    cover: float,
    horizon: int,
    cost: float,
    stock: int,
    dispersion: float = 0.0,
    salvage: float = 0.0,
    holding: float = 0.0,
) -> Scenario:
    return Scenario(
        name=name,
        profile=profile,
        elasticity=elasticity,
        cover=cover,
        horizon_weeks=horizon,
        cost_ratio=cost,
        initial_stock=stock,
        noise="nb" if dispersion > 0 else "poisson",
        dispersion=dispersion,
        salvage_ratio=salvage,
        holding_ratio=holding,
    )


# fmt: off
_STANDARD: tuple[Scenario, ...] = (
    #   name                 profile     elast cover  h  cost  stock  disp  salv  hold
    _s("none-base",          "none",     -2.0, 0.6, 12, 0.40,   200),
    _s("none-inelastic",     "none",     -1.2, 0.5, 12, 0.40,   200),
    _s("none-elastic",       "none",     -3.5, 0.4,  8, 0.50,   500),
    _s("none-big-nb",        "none",     -2.5, 0.7, 26, 0.30,  5000, 0.3),
    _s("none-tiny-short",    "none",     -1.8, 0.6,  4, 0.45,    10),
    _s("none-lowcover-nb",   "none",     -2.0, 0.3, 16, 0.30,  1000, 0.5, 0.10),
    _s("none-fullcover",     "none",     -3.0, 1.2,  6, 0.20,    50),
    _s("none-long-hold",     "none",     -1.8, 0.5, 20, 0.40,  2000, 0.2, 0.00, 0.005),
    _s("cpn-base",           "coupons",  -2.0, 0.6, 12, 0.40,   200),
    _s("cpn-inelastic",      "coupons",  -1.0, 0.5, 10, 0.30,   300),
    _s("cpn-elastic-nb",     "coupons",  -3.0, 0.4,  8, 0.50,   800, 0.3),
    _s("cpn-big",            "coupons",  -2.2, 0.7, 26, 0.35,  5000),
    _s("cpn-tiny",           "coupons",  -1.5, 0.5,  4, 0.50,    10),
    _s("cpn-highcost",       "coupons",  -2.5, 0.5, 14, 0.55,   400, 0.2),
    _s("cpn-salvage",        "coupons",  -1.8, 0.4, 18, 0.40,  1500, 0.0, 0.25),
    _s("cpn-fullcover",      "coupons",  -2.0, 1.1,  6, 0.30,   100),
    _s("md-base",            "markdown", -2.0, 0.6, 12, 0.40,   200),
    _s("md-inelastic",       "markdown", -1.2, 0.5, 16, 0.35,   600),
    _s("md-elastic",         "markdown", -3.5, 0.5,  8, 0.50,   300),
    _s("md-big-nb",          "markdown", -2.5, 0.6, 26, 0.30,  5000, 0.3),
    _s("md-tiny",            "markdown", -2.0, 0.7,  4, 0.50,    10),
    _s("md-lowcover",        "markdown", -2.2, 0.3, 20, 0.35,  1000, 0.5),
    _s("md-fullcover",       "markdown", -3.0, 1.3, 10, 0.25,    80),
    _s("md-hold-salv",       "markdown", -1.8, 0.5, 14, 0.40,  2500, 0.0, 0.20, 0.004),
    _s("all-base",           "all",      -2.0, 0.6, 12, 0.40,   200),
    _s("all-inelastic",      "all",      -1.2, 0.5, 16, 0.35,   500),
    _s("all-elastic-nb",     "all",      -3.5, 0.4,  8, 0.50,   300, 0.3),
    _s("all-big",            "all",      -2.5, 0.6, 26, 0.30,  2000),
    _s("all-tiny",           "all",      -2.0, 0.7,  5, 0.50,    10),
    _s("all-lowcover",       "all",      -2.2, 0.3, 20, 0.35,  1000, 0.4),
    _s("all-highcost",       "all",      -2.8, 0.5, 10, 0.60,   150),
    _s("all-fullcover",      "all",      -3.0, 1.2,  8, 0.25,    60),
)
# fmt: on


# Unknown demand: each episode draws the true elasticity and demand level from the prior
# N(elasticity, elasticity_se) x N(log base demand, level_se) on the learning env's grid;
# cover is that of the estimate. Priors as wide as a fit on a few months of one SKU gives.
def _l(
    name: str,
    profile: str,
    elasticity: float,
    elasticity_se: float,
    level_se: float,
    cover: float,
    horizon: int,
    cost: float,
    stock: int,
    dispersion: float = 0.0,
    salvage: float = 0.0,
    holding: float = 0.0,
) -> Scenario:
    return replace(
        _s(name, profile, elasticity, cover, horizon, cost, stock, dispersion, salvage, holding),
        elasticity_se=elasticity_se,
        level_se=level_se,
    )


# fmt: off
_LEARNING: tuple[Scenario, ...] = (
    #   name                   profile     elast  se   lvl_se cover  h  cost stock  disp salv  hold
    _l("learn-none-base",      "none",     -2.0, 0.6, 0.3,   0.6, 12, 0.40,  200),
    _l("learn-none-wide",      "none",     -2.0, 0.8, 0.5,   0.5, 12, 0.40,  300),
    _l("learn-none-inelastic", "none",     -1.3, 0.5, 0.3,   0.5, 12, 0.35,  200),
    _l("learn-none-elastic-nb", "none",    -3.0, 0.7, 0.4,   0.4,  8, 0.50,  300, 0.3),
    _l("learn-none-long-hold", "none",     -2.0, 0.6, 0.4,   0.5, 20, 0.40,  500, 0.0, 0.00, 0.004),
    _l("learn-none-short",     "none",     -2.2, 0.7, 0.4,   0.6,  6, 0.45,   60),
    _l("learn-md-base",        "markdown", -2.0, 0.6, 0.3,   0.6, 12, 0.40,  200),
    _l("learn-md-wide",        "markdown", -2.0, 0.8, 0.5,   0.5, 12, 0.40,  300),
    _l("learn-md-inelastic",   "markdown", -1.3, 0.5, 0.3,   0.5, 14, 0.35,  400, 0.0, 0.20),
    _l("learn-md-elastic-nb",  "markdown", -3.0, 0.7, 0.4,   0.4,  8, 0.50,  300, 0.3),
    _l("learn-md-long-hold",   "markdown", -1.8, 0.6, 0.4,   0.5, 20, 0.40,  600, 0.0, 0.00, 0.004),
    _l("learn-md-lowcover",    "markdown", -2.2, 0.6, 0.5,   0.3, 16, 0.35,  500),
)
# fmt: on


@dataclass(frozen=True)
class CategoryScenario(Scenario):
    """A category of SKUs under a shared weekly promotion limit (the budget market,
    :mod:`envs.budget`): at most ``max_promoted`` of ``members`` on promotion in any week.

    The inherited fields are the first member's, under the category's ``name``; every member
    shares its profile and horizon. :meth:`catalog` holds one row per member.

    Parameters
    ----------
    members : tuple of Scenario
        The category's SKUs (single-SKU scenarios, names unique).
    max_promoted : int
        The limit ``K``, ``1 <= K < len(members)`` (else it could not bind).
    """

    members: tuple[Scenario, ...] = ()
    max_promoted: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        where = f"scenario {self.name!r}"
        if len(self.members) < 2:
            raise ConfigError(f"{where}: a category needs >= 2 members; got {len(self.members)}")
        if len({m.name for m in self.members}) != len(self.members):
            raise ConfigError(f"{where}: member names must be unique")
        odd = [
            m.name
            for m in self.members
            if (m.profile, m.horizon_weeks) != (self.profile, self.horizon_weeks)
        ]
        if odd:
            raise ConfigError(f"{where}: members {odd} differ in profile or horizon")
        if not 1 <= self.max_promoted < len(self.members):
            raise ConfigError(
                f"{where}: max_promoted = {self.max_promoted}; expected 1..{len(self.members) - 1}"
            )

    def catalog(self) -> Catalog:
        """The members as one catalog (row ``i`` = member ``i``)."""
        parts = [m.catalog() for m in self.members]
        return Catalog(
            **{f.name: np.concatenate([getattr(c, f.name) for c in parts]) for f in fields(Catalog)}
        )


def _category(name: str, max_promoted: int, *members: Scenario) -> CategoryScenario:
    named = tuple(replace(m, name=f"{name}/{m.name}") for m in members)
    first = {f.name: getattr(named[0], f.name) for f in fields(Scenario)}
    return CategoryScenario(**{**first, "name": name}, members=named, max_promoted=max_promoted)


# Small categories whose SKUs together want more promotion weeks than the limit leaves:
# overstocked elastic SKUs (cover under 1) next to slower or less elastic ones.
# fmt: off
_BUDGET: tuple[CategoryScenario, ...] = (
    #                                       name  profile    elast cover  h  cost stock disp salv
    _category("cat3-k1", 1,             _s("a", "none",     -3.0, 0.5, 10, 0.40, 120),
                                        _s("b", "none",     -2.5, 0.6, 10, 0.35, 150),
                                        _s("c", "none",     -1.6, 0.7, 10, 0.40, 100)),
    _category("cat4-k1", 1,             _s("a", "none",     -3.0, 0.4, 12, 0.40, 150),
                                        _s("b", "none",     -2.5, 0.5, 12, 0.35, 200),
                                        _s("c", "none",     -3.5, 0.5, 12, 0.45, 100),
                                        _s("d", "none",     -2.0, 0.6, 12, 0.30, 120)),
    _category("cat4-k2", 2,             _s("a", "none",     -3.0, 0.4, 12, 0.40, 150),
                                        _s("b", "none",     -2.5, 0.5, 12, 0.35, 200),
                                        _s("c", "none",     -3.5, 0.5, 12, 0.45, 100),
                                        _s("d", "none",     -2.0, 0.6, 12, 0.30, 120)),
    _category("cat3-k1-cpn", 1,         _s("a", "coupons",  -2.5, 0.5,  8, 0.40, 100),
                                        _s("b", "coupons",  -2.0, 0.6,  8, 0.35, 120),
                                        _s("c", "coupons",  -3.0, 0.4,  8, 0.45,  80)),
    _category("cat5-k2-cpn-nb", 2,      _s("a", "coupons",  -2.5, 0.5, 10, 0.40, 120, 0.3),
                                        _s("b", "coupons",  -2.0, 0.6, 10, 0.35, 150, 0.2),
                                        _s("c", "coupons",  -3.0, 0.4, 10, 0.45, 100, 0.3),
                                        _s("d", "coupons",  -1.5, 0.7, 10, 0.30,  80),
                                        _s("e", "coupons",  -3.5, 0.5, 10, 0.50, 100)),
    _category("cat4-k1-salv", 1,        _s("a", "none",     -2.2, 0.4, 12, 0.40, 200, 0.0, 0.25),
                                        _s("b", "none",     -3.0, 0.5, 12, 0.35, 150),
                                        _s("c", "none",     -1.8, 0.5, 12, 0.40, 150, 0.0, 0.20),
                                        _s("d", "none",     -2.8, 0.6, 12, 0.45, 100)),
)
# fmt: on


# Demand with memory: reference-price memory and promotion fatigue on (simulator.market):
# demand x (p / R)^-gamma x (1 - F), R' = m R + (1 - m) p, F' = decay F + rate [discounted].
# Ranges: gamma 0.5-2.0 (reference-price effects of the order of the price elasticity, as
# grocery studies report; 0 = none), weekly memory m 0.6-0.8 (a half-life of 1.4-3 weeks),
# fatigue 0-0.08 per discounted week decaying by 0.5-0.8 (at most 15-27 % of demand lost
# after a long run of discounts). Wide enough that a discount that lifts demand today lowers
# the reference price, and with it the demand of the weeks after.
# The "all" profile is left out: its rule state times the memory grid is too large for the
# augmented-state DP's table (agents.dp_memory.MAX_Q_CELLS).
def _m(
    name: str,
    profile: str,
    elasticity: float,
    cover: float,
    horizon: int,
    cost: float,
    stock: int,
    gamma: float,
    memory: float,
    fatigue_rate: float,
    fatigue_decay: float,
    dispersion: float = 0.0,
    salvage: float = 0.0,
    holding: float = 0.0,
) -> Scenario:
    return replace(
        _s(name, profile, elasticity, cover, horizon, cost, stock, dispersion, salvage, holding),
        ref_sensitivity=gamma,
        ref_memory=memory,
        fatigue_rate=fatigue_rate,
        fatigue_decay=fatigue_decay,
    )


# fmt: off
_MEMORY: tuple[Scenario, ...] = (
    #   name                  profile     elast cover  h  cost stock gamma mem  f_rate f_dec disp salv  hold
    _m("mem-none-base",       "none",     -2.0, 0.6, 12, 0.40, 200, 1.5, 0.7, 0.05, 0.6),
    _m("mem-none-refonly",    "none",     -2.0, 0.5, 12, 0.40, 200, 2.0, 0.8, 0.00, 0.0),
    _m("mem-none-fatigue",    "none",     -2.5, 0.5, 10, 0.45, 150, 0.5, 0.6, 0.08, 0.7),
    _m("mem-none-inelastic",  "none",     -1.3, 0.5, 12, 0.35, 200, 1.0, 0.7, 0.05, 0.6),
    _m("mem-none-elastic-nb", "none",     -2.5, 0.4,  8, 0.50, 300, 1.5, 0.6, 0.05, 0.5, 0.3),
    _m("mem-none-long-hold",  "none",     -1.8, 0.5, 16, 0.40, 300, 1.0, 0.8, 0.03, 0.8, 0.0, 0.00, 0.004),
    _m("mem-cpn-base",        "coupons",  -2.0, 0.6, 12, 0.40, 200, 1.5, 0.7, 0.05, 0.6),
    _m("mem-cpn-strong",      "coupons",  -2.2, 0.5, 10, 0.35, 300, 2.0, 0.8, 0.08, 0.7),
    _m("mem-md-base",         "markdown", -2.0, 0.6, 12, 0.40, 200, 1.5, 0.7, 0.05, 0.6),
    _m("mem-md-inelastic",    "markdown", -1.3, 0.5, 14, 0.35, 300, 1.0, 0.7, 0.05, 0.6, 0.0, 0.20),
    _m("mem-md-elastic-nb",   "markdown", -3.0, 0.4,  8, 0.50, 300, 2.0, 0.6, 0.08, 0.5, 0.3),
    _m("mem-md-lowcover",     "markdown", -2.2, 0.3, 16, 0.35, 300, 1.0, 0.8, 0.03, 0.8),
)
# fmt: on

REFERENCES: tuple[str, ...] = ("dp", "oracle", "augmented_dp", "lagrangian_bound")
"""What 100 % can mean in a row's ``pct_of_reference``: the exact DP (known parameters), the
DP that knows each episode's drawn truth (``oracle``), the DP on a state augmented with
demand memory (``augmented_dp``), or the dual bound of a shared budget
(``lagrangian_bound``)."""


@dataclass(frozen=True)
class SuiteSpec:
    """A versioned evaluation suite: its scenarios, the market they are played in, and what
    100 % means.

    Parameters
    ----------
    name : str
        The name commands take (``--suite``).
    version : str
        Bumped whenever a scenario, the market or the reference changes (``standard-v1``).
    description : str
        One line for ``deadstock evaluate --list-suites``.
    market : str
        Key of the evaluation market (``experiments.markets.MARKETS``): how scenarios are
        played, which agents apply and what the reference is.
    reference : str
        One of :data:`REFERENCES`.
    scenarios : tuple of Scenario
    belief_grid : int
        Points per axis of the prior grid (learning market only; 0 elsewhere).
    memory_grid : tuple of int
        (reference-price, fatigue) points of the augmented-state DP's grid (memory market
        only; ``()`` elsewhere).
    policy_prefix : str
        Prefix of the PPO policy keys of this suite (``<prefix><profile>``: folder names of a
        training run and keys of its step budgets), so one folder can hold policies of
        several markets without mixing them.
    """

    name: str
    version: str
    description: str
    market: str
    reference: str
    scenarios: tuple[Scenario, ...]
    belief_grid: int = 0
    policy_prefix: str = ""
    memory_grid: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.reference not in REFERENCES:
            raise ConfigError(
                f"suite {self.name!r}: reference {self.reference!r}; expected one of {REFERENCES}"
            )
        names = [s.name for s in self.scenarios]
        if not names or len(set(names)) != len(names):
            raise ConfigError(f"suite {self.name!r}: scenario names must be unique, non-empty")

    @property
    def profiles(self) -> tuple[str, ...]:
        """Rule profiles the suite's scenarios use, in :data:`RULE_PROFILES` order."""
        used = {s.profile for s in self.scenarios}
        return tuple(p for p in RULE_PROFILES if p in used)

    def policy_key(self, profile: str) -> str:
        """The PPO policy key of a rule profile in this suite."""
        return f"{self.policy_prefix}{profile}"


SUITE_VERSION = "standard-v1"
LEARNING_SUITE_VERSION = "learning-v1"
BUDGET_SUITE_VERSION = "budget-v1"
_LEARNING_GRID = 9
MEMORY_SUITE_VERSION = "memory-v1"
_MEMORY_GRID = (13, 7)

SUITE_SPECS: dict[str, SuiteSpec] = {
    spec.name: spec
    for spec in (
        SuiteSpec(
            "standard",
            SUITE_VERSION,
            "32 DP-exact single-SKU scenarios over 4 rule profiles, parameters known",
            market="standard",
            reference="dp",
            scenarios=_STANDARD,
        ),
        SuiteSpec(
            "smoke",
            SUITE_VERSION,
            "4 scenarios of the standard suite (one per rule profile), for quick checks",
            market="standard",
            reference="dp",
            scenarios=(_STANDARD[0], _STANDARD[8], _STANDARD[16], _STANDARD[24]),
        ),
        SuiteSpec(
            "learning",
            LEARNING_SUITE_VERSION,
            "12 scenarios with unknown elasticity and demand level (drawn from a 9 x 9 prior "
            "grid each episode), the policy sees the posterior",
            market="learning",
            reference="oracle",
            scenarios=_LEARNING,
            belief_grid=_LEARNING_GRID,
            policy_prefix="learning-",
        ),
        SuiteSpec(
            "learning-smoke",
            LEARNING_SUITE_VERSION,
            "2 scenarios of the learning suite (one per rule profile), for quick checks",
            market="learning",
            reference="oracle",
            scenarios=(_LEARNING[0], _LEARNING[6]),
            belief_grid=_LEARNING_GRID,
            policy_prefix="learning-",
        ),
        SuiteSpec(
            "budget",
            BUDGET_SUITE_VERSION,
            "6 categories of 3-5 SKUs, at most K SKUs on promotion per week (shared limit)",
            market="budget",
            reference="lagrangian_bound",
            scenarios=_BUDGET,
            policy_prefix="budget-",
        ),
        SuiteSpec(
            "budget-smoke",
            BUDGET_SUITE_VERSION,
            "1 category of the budget suite (3 SKUs, 1 promotion slot), for quick checks",
            market="budget",
            reference="lagrangian_bound",
            scenarios=_BUDGET[:1],
            policy_prefix="budget-",
        ),
        SuiteSpec(
            "memory",
            MEMORY_SUITE_VERSION,
            "12 scenarios with reference-price memory and promotion fatigue over 3 rule "
            "profiles; 100 % = the DP on a 13 x 7 (reference price, fatigue) grid",
            market="memory",
            reference="augmented_dp",
            scenarios=_MEMORY,
            policy_prefix="memory-",
            memory_grid=_MEMORY_GRID,
        ),
        SuiteSpec(
            "memory-smoke",
            MEMORY_SUITE_VERSION,
            "2 scenarios of the memory suite (no rule; markdown ladder), for quick checks",
            market="memory",
            reference="augmented_dp",
            scenarios=(_MEMORY[0], _MEMORY[8]),
            policy_prefix="memory-",
            memory_grid=_MEMORY_GRID,
        ),
    )
}
"""Every suite by name. A new suite (and, with a new market in ``experiments.markets``, a new
kind of market) is one entry here; the evaluation loop does not change."""

SUITES: dict[str, tuple[Scenario, ...]] = {k: v.scenarios for k, v in SUITE_SPECS.items()}


def get_spec(name: str = "standard") -> SuiteSpec:
    """The :class:`SuiteSpec` of suite ``name``.

    Raises
    ------
    ConfigError
        When the suite is unknown.
    """
    if name not in SUITE_SPECS:
        raise ConfigError(f"suite {name!r} is unknown; expected one of {sorted(SUITE_SPECS)}")
    return SUITE_SPECS[name]


def get_suite(name: str = "standard") -> tuple[Scenario, ...]:
    """The scenarios of suite ``name`` (see :data:`SUITE_SPECS`).

    Raises
    ------
    ConfigError
        When the suite is unknown.
    """
    return get_spec(name).scenarios


def policy_keys() -> tuple[str, ...]:
    """Every PPO policy key of every suite (training step budgets are keyed by them)."""
    keys: dict[str, None] = {}
    for spec in SUITE_SPECS.values():
        for profile in spec.profiles:
            keys[spec.policy_key(profile)] = None
    return tuple(keys)


def scenarios_by_profile(scenarios: tuple[Scenario, ...]) -> dict[str, list[Scenario]]:
    """Group scenarios by rule profile (profile order of :data:`RULE_PROFILES`)."""
    out: dict[str, list[Scenario]] = {}
    for profile in RULE_PROFILES:
        group = [s for s in scenarios if s.profile == profile]
        if group:
            out[profile] = group
    return out


SALVAGE_SHARE = 0.5
"""Share of training SKUs with a salvage value."""
HOLDING_SHARE = 0.7
"""Share of training SKUs that pay a holding cost (the main job charges one on every SKU)."""


def training_catalog(
    n_skus: int,
    rng: np.random.Generator,
    *,
    profile: str = "none",
    horizon_range: tuple[int, int] = (4, 26),
) -> Catalog:
    """A synthetic catalog spanning the suite's ranges, for training one policy per profile.

    Elasticity ~ U(-4, -0.8); cover ~ U(0.2, 1.4) over a reference horizon drawn uniformly
    from ``horizon_range`` (the env draws each episode's horizon independently, so the cover
    a policy sees spreads around the drawn one, wider at the extremes); cost
    ratio ~ U(0.15, 0.7); stock log-uniform on 10-5,000; salvage ratio U(0, 0.3) for
    :data:`SALVAGE_SHARE` of the SKUs, else 0; holding ratio U(0, 0.006) for
    :data:`HOLDING_SHARE`, else 0; half the SKUs Poisson, half negative binomial with
    dispersion ~ U(0.1, 0.6). Coupon lift :data:`COUPON_COEF` where the profile has coupons.

    Parameters
    ----------
    n_skus : int
    rng : numpy.random.Generator
        The only source of randomness.
    profile : str
        Key of :data:`RULE_PROFILES`.
    horizon_range : tuple of int
        (shortest, longest) reference horizon of the cover.
    """
    if profile not in RULE_PROFILES:
        raise ConfigError(
            f"profile {profile!r} is unknown; expected one of {sorted(RULE_PROFILES)}"
        )
    if n_skus < 1:
        raise ConfigError(f"n_skus = {n_skus}; expected >= 1")
    n = int(n_skus)
    stock = np.round(np.exp(rng.uniform(np.log(10.0), np.log(5000.0), n)))
    cover = rng.uniform(0.2, 1.4, n)
    nb = rng.random(n) < 0.5
    coupons = RULE_PROFILES[profile].n_coupons > 1
    horizon = rng.integers(horizon_range[0], horizon_range[1] + 1, n)
    return Catalog.build(
        n_skus=n,
        sku=np.array([f"train{i}" for i in range(n)], dtype=object),
        category="train",
        list_price=1.0,
        unit_cost=rng.uniform(0.15, 0.7, n),
        base_demand=cover * stock / horizon,
        elasticity=rng.uniform(-4.0, -0.8, n),
        coupon_coef=COUPON_COEF if coupons else 0.0,
        dispersion=np.where(nb, rng.uniform(0.1, 0.6, n), 0.0),
        salvage_value_per_unit=np.where(
            rng.random(n) < SALVAGE_SHARE, rng.uniform(0.0, 0.3, n), 0.0
        ),
        holding_cost_per_unit_week=np.where(
            rng.random(n) < HOLDING_SHARE, rng.uniform(0.0, 0.006, n), 0.0
        ),
        initial_stock=stock,
    )


PRIOR_ELASTICITY_SE = (0.3, 0.9)
"""Range of the training SKUs' elasticity standard errors in the learning market."""
PRIOR_LEVEL_SE = (0.15, 0.6)
"""Range of the training SKUs' log-level standard errors in the learning market."""


def learning_training_catalog(
    n_skus: int,
    rng: np.random.Generator,
    *,
    profile: str = "none",
    horizon_range: tuple[int, int] = (4, 26),
) -> Catalog:
    """:func:`training_catalog` with a prior around each SKU's parameters, for the learning
    market: ``elasticity_se ~ U`` :data:`PRIOR_ELASTICITY_SE`, ``base_demand_se ~ U``
    :data:`PRIOR_LEVEL_SE` (drawn after the rest, from the same ``rng``)."""
    cat = training_catalog(n_skus, rng, profile=profile, horizon_range=horizon_range)
    return cat.replace(
        elasticity_se=rng.uniform(*PRIOR_ELASTICITY_SE, cat.n_skus),
        base_demand_se=rng.uniform(*PRIOR_LEVEL_SE, cat.n_skus),
    )


MEMORY_SENSITIVITY = (0.0, 2.5)
"""Range of the training SKUs' reference-price sensitivity in the memory market."""
MEMORY_WEIGHT = (0.4, 0.9)
"""Range of the training SKUs' weekly reference-price memory."""
FATIGUE_SHARE = 0.7
"""Share of the memory market's training SKUs with promotion fatigue."""
FATIGUE_RATE = (0.0, 0.1)
FATIGUE_DECAY = (0.4, 0.85)


def memory_training_catalog(
    n_skus: int,
    rng: np.random.Generator,
    *,
    profile: str = "none",
    horizon_range: tuple[int, int] = (4, 26),
) -> Catalog:
    """:func:`training_catalog` with demand memory, for the memory market: reference-price
    sensitivity ``~ U`` :data:`MEMORY_SENSITIVITY`, memory ``~ U`` :data:`MEMORY_WEIGHT`, and
    for :data:`FATIGUE_SHARE` of the SKUs a fatigue rate ``~ U`` :data:`FATIGUE_RATE` decaying
    by ``U`` :data:`FATIGUE_DECAY` (drawn after the rest, from the same ``rng``)."""
    cat = training_catalog(n_skus, rng, profile=profile, horizon_range=horizon_range)
    n = cat.n_skus
    tired = rng.random(n) < FATIGUE_SHARE
    return cat.replace(
        ref_price_sensitivity=rng.uniform(*MEMORY_SENSITIVITY, n),
        ref_price_memory=rng.uniform(*MEMORY_WEIGHT, n),
        fatigue_rate=np.where(tired, rng.uniform(*FATIGUE_RATE, n), 0.0),
        fatigue_decay=rng.uniform(*FATIGUE_DECAY, n),
    )


BUDGET_STOCK = (50.0, 500.0)
"""Range (log-uniform) of the budget market's training SKUs' stock: SKUs of one category are
of comparable size, so which of them gets a slot is not settled by size alone."""


def budget_training_catalog(
    n_skus: int,
    rng: np.random.Generator,
    *,
    profile: str = "none",
    horizon_range: tuple[int, int] = (8, 12),
) -> Catalog:
    """:func:`training_catalog` for the budget market: the reference horizon over the budget
    suite's range and stock log-uniform on :data:`BUDGET_STOCK` (demand scaled with it, so
    the cover is unchanged; drawn after the rest, from the same ``rng``)."""
    cat = training_catalog(n_skus, rng, profile=profile, horizon_range=horizon_range)
    lo, hi = np.log(BUDGET_STOCK)
    stock = np.round(np.exp(rng.uniform(float(lo), float(hi), cat.n_skus)))
    ratio = stock / np.asarray(cat.initial_stock, float)
    return cat.replace(initial_stock=stock, base_demand=np.asarray(cat.base_demand) * ratio)


_TRAINING_CATALOGS = {
    "learning": learning_training_catalog,
    "memory": memory_training_catalog,
    "budget": budget_training_catalog,
}


def catalog_fn_for(spec: SuiteSpec, profile: str):
    """``(n_skus, rng) -> Catalog``: the synthetic training catalog of a suite's profile."""
    make = _TRAINING_CATALOGS.get(spec.market, training_catalog)

    def build(n: int, rng: np.random.Generator) -> Catalog:
        return make(n, rng, profile=profile)

    return build
