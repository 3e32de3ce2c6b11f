"""The standard evaluation suite: fixed, versioned single-SKU scenarios every agent is scored on.

A :class:`Scenario` is one SKU (a one-row :class:`~simulator.demand.Catalog`), a horizon and
a rule profile. The suite spans elasticity, cover (full-price expected demand over the
horizon divided by the stock), horizon (4-26 weeks), cost ratio (unit cost / list price),
stock (10-5,000 units), rule sets (none; a ladder with markdown-only; all rules), coupons on
and off, and Poisson or negative-binomial noise. Every scenario is exact for the DP (no
reference-price memory, no fatigue), so its optimum is known.

Rule profiles share one action grid per profile, so one PPO policy serves every SKU of a
profile (conditioned on the SKU's descriptors): see :data:`RULE_PROFILES`.

Changing any scenario or profile changes what the numbers mean: bump :data:`SUITE_VERSION`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from envs.config import RulesConfig
from ingest.errors import ConfigError
from simulator.demand import Catalog

SUITE_VERSION = "standard-v1"

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

SUITES: dict[str, tuple[Scenario, ...]] = {
    "standard": _STANDARD,
    # Four scenarios (one per profile), for smoke tests and quick checks.
    "smoke": (_STANDARD[0], _STANDARD[8], _STANDARD[16], _STANDARD[24]),
}


def get_suite(name: str = "standard") -> tuple[Scenario, ...]:
    """The scenarios of suite ``name`` (``"standard"`` or ``"smoke"``).

    Raises
    ------
    ConfigError
        When the suite is unknown.
    """
    if name not in SUITES:
        raise ConfigError(f"suite {name!r} is unknown; expected one of {sorted(SUITES)}")
    return SUITES[name]


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
