"""``DeadStock/Markdown-v0``: one SKU, weekly discount and coupon decisions until exit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.config import RulesConfig
from envs.core import WEEK_TERMS, play_week, reward_scale
from envs.observation import OBS_HIGH, OBS_LOW, build_observation
from envs.rules import action_mask, hold_actions, initial_decision_state, violated_rules
from ingest.errors import ConfigError, DataError, DeadstockError
from simulator.demand import Catalog
from simulator.market import initial_state

DEFAULT_SKU: Mapping[str, Any] = {
    "sku": "demo",
    "list_price": 10.0,
    "unit_cost": 5.0,
    "base_demand": 8.0,
    "elasticity": -2.5,
    "initial_stock": 150.0,
    "salvage_value_per_unit": 2.0,
    "holding_cost_per_unit_week": 0.02,
}
"""The SKU played when :class:`EnvConfig` names neither a catalog nor parameters: 150 units
that sell 8 a week at list price over a 12-week horizon (cover about 0.64)."""


class RuleViolationError(DeadstockError):
    """An action that the business rules mask was passed to ``step``."""


@dataclass(frozen=True)
class EnvConfig:
    """Configuration of the markdown environments (single-SKU and batched).

    Parameters
    ----------
    horizon_weeks : int
        Weeks from the start of an episode to its exit week (inclusive).
    rules : RulesConfig
        The business rules, the discount ladder and the coupon levels.
    catalog : Catalog or None
        Source of SKUs: each episode plays one SKU drawn uniformly from it. Excludes
        ``sku_params``.
    sku_params : mapping or None
        Explicit parameters of the one SKU to play (any fields of
        :meth:`simulator.demand.Catalog.build`). When both this and ``catalog`` are ``None``,
        :data:`DEFAULT_SKU` is played.
    draw_parameters : bool
        Draw the SKU's parameters from their fitted uncertainty at every reset
        (:meth:`Catalog.sample`): robust training on markets around the estimate.
    horizon_range : tuple of int or None
        ``(low, high)``: draw each episode's horizon uniformly from ``low..high`` (training one
        policy for every horizon). ``None`` = always ``horizon_weeks``.
    normalize_reward : bool
        Divide rewards by the initial stock value ``initial_stock * list_price``; otherwise
        rewards are in currency.
    end_on_sellout : bool
        End the episode when the stock runs out before exit (every later reward would be 0).
    invalid_action : {"raise", "hold"}
        What ``step`` does with an action the rules mask: ``"raise"`` a
        :class:`RuleViolationError` naming the rules, or play the *hold* action (current
        depth, no coupon) instead and report ``info["violation"] = True`` with the rules in
        ``info["rules_broken"]``. Either way no rule is ever broken in the simulated market.
    """

    horizon_weeks: int = 12
    rules: RulesConfig = field(default_factory=RulesConfig)
    catalog: Catalog | None = field(default=None, compare=False, repr=False)
    sku_params: Mapping[str, Any] | None = field(default=None, compare=False)
    draw_parameters: bool = False
    horizon_range: tuple[int, int] | None = None
    normalize_reward: bool = True
    end_on_sellout: bool = True
    invalid_action: Literal["raise", "hold"] = "raise"

    def __post_init__(self) -> None:
        if int(self.horizon_weeks) < 1:
            raise ConfigError(f"env.horizon_weeks = {self.horizon_weeks}: expected >= 1")
        if not isinstance(self.rules, RulesConfig):
            raise ConfigError(f"env.rules must be a RulesConfig, got {type(self.rules).__name__}")
        if self.catalog is not None and self.sku_params is not None:
            raise ConfigError("env: give either catalog or sku_params, not both")
        if self.catalog is not None and self.catalog.n_skus == 0:
            raise ConfigError("env.catalog holds no SKUs; expected at least one")
        if self.horizon_range is not None:
            lo, hi = self.horizon_range
            if not 1 <= int(lo) <= int(hi):
                raise ConfigError(
                    f"env.horizon_range = {self.horizon_range}: expected (low, high) "
                    f"with 1 <= low <= high"
                )
        if self.invalid_action not in ("raise", "hold"):
            raise ConfigError(
                f"env.invalid_action = {self.invalid_action!r}: expected 'raise' or 'hold'"
            )
        if self.sku_params is not None:
            try:
                Catalog.build(n_skus=1, **dict(self.sku_params))
            except DataError as err:
                raise ConfigError(f"env.sku_params: {err}") from None

    @property
    def max_horizon_weeks(self) -> int:
        """The longest episode (the time limit set at registration)."""
        return int(self.horizon_range[1] if self.horizon_range else self.horizon_weeks)

    def source_catalog(self) -> Catalog:
        """The catalog SKUs are drawn from (built from ``sku_params`` when given)."""
        if self.catalog is not None:
            return self.catalog
        params = DEFAULT_SKU if self.sku_params is None else self.sku_params
        return Catalog.build(n_skus=1, **dict(params))


def _rules_broken(names: dict[str, np.ndarray], row: int = 0) -> list[str]:
    return [k for k, v in names.items() if v[row]]


class MarkdownEnv(gym.Env[np.ndarray, np.int64]):
    """Clear one SKU's stock by its exit week, choosing a discount and a coupon every week.

    ## Description

    A retailer holds ``initial_stock`` units of a SKU that must be gone by the exit week. Each
    week the agent picks a shelf discount from the ladder and a coupon depth; the market
    simulator (:func:`simulator.market.step`) draws that week's demand around
    ``base_demand * season * (1 - d) ** elasticity * exp(coupon_coef * c) * ...`` and sells
    ``min(demand, stock)``. Business rules (:mod:`envs.rules`) mask the actions a pricing team
    may not take; the mask is in ``info["action_mask"]`` and :meth:`action_masks`.

    ## Action Space

    ``Discrete(n_discounts * n_coupons)``: action ``a`` means discount
    ``discount_levels[a // n_coupons]`` and coupon ``coupon_levels[a % n_coupons]`` (shares
    of list price). The discount persists as the price in force; the coupon lasts a week. With
    the default rules: 8 actions, discounts 0 %, 10 %, ..., 70 %, no coupons.

    ## Observation Space

    ``Box(OBS_LOW, OBS_HIGH, (17,), float32)``, see :mod:`envs.observation`:

    | Num | Observation        | Min | Max | Meaning                                       |
    |-----|--------------------|-----|-----|-----------------------------------------------|
    | 0   | weeks_left_frac    | 0   | 1   | weeks left / horizon                          |
    | 1   | weeks_left_26      | 0   | 4   | weeks left / 26                               |
    | 2   | stock_ratio        | 0   | 1   | stock / initial stock                         |
    | 3   | depth              | 0   | 1   | discount in force                             |
    | 4   | weeks_since_change | 0   | 1   | min(weeks since last change, 13) / 13         |
    | 5   | last_sales_rate    | 0   | 10  | last week's sales / (initial stock / horizon) |
    | 6   | ref_price          | 0   | 2   | reference price / list price                  |
    | 7   | fatigue            | 0   | 1   | promotion fatigue                             |
    | 8   | elasticity         | -3  | 0   | elasticity / 4                                |
    | 9   | demand_cover       | 0   | 5   | full-price demand over weeks left / stock     |
    | 10  | cost_ratio         | 0   | 2   | unit cost / list price                        |
    | 11  | salvage_ratio      | 0   | 2   | salvage value / list price                    |
    | 12  | risk_score         | 0   | 1   | dead-stock risk (0 if not scored)             |
    | 13  | season_now         | 0   | 5   | seasonal factor this week                     |
    | 14  | season_ahead       | 0   | 5   | mean seasonal factor over the weeks left      |
    | 15  | coupon_lift        | 0   | 3   | coupon_coef * deepest coupon                  |
    | 16  | coupon_weeks_share | 0   | 1   | coupon budget left / weeks left               |

    ## Rewards

    The week's profit from :func:`simulator.market.step` (revenue - coupon cost - refunds -
    cost of goods sold - holding cost, plus salvage and minus write-off of the leftover at the
    exit week), minus the sell-through penalty at exit (penalty mode), divided by the initial
    stock value ``initial_stock * list_price`` (``normalize_reward``). Every term is in
    ``info`` in currency (``revenue``, ``coupon_cost``, ``refunds``, ``cogs``,
    ``holding_cost``, ``salvage``, ``writeoff``, ``profit``, ``exit_penalty``,
    ``objective = profit - exit_penalty``, ``margin_given_away``), with ``units_sold``,
    ``units_returned``, ``lost_sales``, ``discount``, ``coupon``, ``stock_left``.

    ## Starting State

    A SKU drawn uniformly from the catalog (``self.np_random``), its parameters optionally
    drawn from their uncertainty; its full stock, no discount in force, reference price at
    list, no fatigue, the whole coupon budget. ``reset(options={"sku_index": i})`` picks SKU
    ``i``; ``options={"horizon_weeks": h}`` sets the horizon of that episode.

    ## Episode End

    Terminates after the exit week (``horizon_weeks`` steps) or when the stock runs out
    (``end_on_sellout``). The exit week is part of the dynamics (leftover stock is salvaged
    and written off), hence a termination; the registered ``max_episode_steps`` equals the
    horizon and is only a safety net.

    ## Arguments

    ``gymnasium.make("DeadStock/Markdown-v0", config=EnvConfig(...))`` or any
    :class:`EnvConfig` field as a keyword, e.g. ``horizon_weeks=8``. A masked action passed to
    ``step`` raises :class:`RuleViolationError` (``invalid_action="raise"``, the default) or
    is replaced by the hold action and reported (``"hold"``).
    ``DeadStock/MarkdownRules-v0`` is the same env with a typical rule set and coupons (see
    :data:`envs.RULES_V0`) and ``invalid_action="hold"``.

    ## Version History

    * v0: initial version.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        config: EnvConfig | None = None,
        render_mode: str | None = None,
        **config_fields: Any,
    ) -> None:
        base = config if config is not None else EnvConfig()
        try:
            self.config = replace(base, **config_fields) if config_fields else base
        except TypeError as err:
            raise ConfigError(f"MarkdownEnv: {err}; expected EnvConfig fields") from None
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ConfigError(f"render_mode = {render_mode!r}: expected None or 'ansi'")
        self.render_mode = render_mode
        self.rules = self.config.rules
        self.source = self.config.source_catalog()
        self.action_space = spaces.Discrete(self.rules.n_actions)
        self.observation_space = spaces.Box(OBS_LOW, OBS_HIGH, dtype=np.float32)
        self._catalog: Catalog | None = None
        self._done = True

    # ------------------------------------------------------------------ gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        cfg = self.config
        n_source = self.source.n_skus
        if "sku_index" in options:
            index = int(options["sku_index"])
            if not 0 <= index < n_source:
                raise ConfigError(f"reset option sku_index = {index}: expected 0..{n_source - 1}")
        else:
            # a one-SKU source draws nothing, so the demand stream matches the batched env's
            index = int(self.np_random.integers(n_source)) if n_source > 1 else 0
        catalog = self.source.take([index])
        if cfg.draw_parameters:
            catalog = catalog.sample(self.np_random)
        if "horizon_weeks" in options:
            horizon = int(options["horizon_weeks"])
            if horizon < 1:
                raise ConfigError(f"reset option horizon_weeks = {horizon}: expected >= 1")
        elif cfg.horizon_range is not None:
            horizon = int(self.np_random.integers(cfg.horizon_range[0], cfg.horizon_range[1] + 1))
        else:
            horizon = int(cfg.horizon_weeks)
        self._catalog = catalog
        self._horizon = horizon
        self._decision = initial_decision_state(catalog, horizon, self.rules)
        self._market = initial_state(catalog)
        self._scale = reward_scale(catalog) if cfg.normalize_reward else np.ones(1, dtype=float)
        self._last_sold = np.zeros(1)
        self._done = False
        self._mask = action_mask(self.rules, self._decision, catalog)
        info = {
            "action_mask": self._mask[0].copy(),
            "sku": str(catalog.sku[0]),
            "horizon_weeks": horizon,
            "reward_scale": float(self._scale[0]),
        }
        return self._observation(), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._done or self._catalog is None:
            raise DeadstockError("the episode is over (or never started): call reset() first")
        a = np.asarray(action).reshape(-1)
        if a.size != 1 or not self.action_space.contains(np.int64(a[0])):
            raise RuleViolationError(
                f"action {action!r} is not in the action space Discrete({self.rules.n_actions})"
            )
        chosen = np.array([int(a[0])], dtype=np.int64)
        violation = not bool(self._mask[0, chosen[0]])
        broken: list[str] = []
        if violation:
            broken = _rules_broken(
                violated_rules(self.rules, self._decision, chosen, self._catalog)
            )
            d, c = self.rules.depths(chosen)
            if self.config.invalid_action == "raise":
                raise RuleViolationError(
                    f"action {int(chosen[0])} (discount {d[0]:.0%}, coupon {c[0]:.0%}) "
                    f"breaks rule(s) {broken or ['(combined)']}; pick an action with "
                    f"action_masks()[a] True, or make the env with invalid_action='hold'"
                )
            chosen = np.array([self._hold_action()], dtype=np.int64)
        out = play_week(
            self._catalog,
            self.rules,
            self._decision,
            self._market,
            chosen,
            self.np_random,
            scale=self._scale,
            end_on_sellout=self.config.end_on_sellout,
        )
        self._decision, self._market = out.decision, out.market
        self._last_sold = out.result.units_sold
        terminated = bool(out.terminated[0])
        self._done = terminated
        self._mask = action_mask(self.rules, self._decision, self._catalog)
        info: dict[str, Any] = {name: float(out.term(name)[0]) for name in WEEK_TERMS}
        info.update(
            action=int(chosen[0]),
            discount=float(out.discount[0]),
            coupon=float(out.coupon[0]),
            stock_left=float(out.result.stock_after[0]),
            weeks_left=int(self._decision.weeks_left[0]),
            violation=violation,
            rules_broken=broken,
            action_mask=self._mask[0].copy(),
        )
        return self._observation(), float(out.reward[0]), terminated, False, info

    def action_masks(self) -> np.ndarray:
        """Allowed actions now, bool of shape ``(n_actions,)`` (sb3-contrib's interface)."""
        if self._catalog is None:
            raise DeadstockError("call reset() before action_masks()")
        return self._mask[0].copy()

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self._catalog is None:
            return None
        dec = self._decision
        depth = self.rules.discount_levels[int(dec.depth_index[0])]
        return (
            f"sku {self._catalog.sku[0]}: {int(dec.weeks_left[0])} weeks left, "
            f"stock {dec.stock[0]:.0f}/{dec.initial_stock[0]:.0f}, discount {depth:.0%}"
        )

    # ------------------------------------------------------------------ helpers
    def _hold_action(self) -> int:
        return int(hold_actions(self.rules, self._decision)[0])

    def _observation(self) -> np.ndarray:
        assert self._catalog is not None
        obs = build_observation(
            self._catalog,
            self._decision,
            self._market,
            self.rules,
            horizon_weeks=self._horizon,
            last_units_sold=self._last_sold,
        )
        return obs[0]
