"""Pricing while learning: the markdown game with unknown demand parameters.

``DeadStock/MarkdownLearning-v0`` (:class:`MarkdownLearningEnv`, one SKU) and its batched form
:class:`LearningMarkdownEnv` (the one PPO trains on and the ``learning`` suites evaluate
in) play the markdown game of :mod:`envs.markdown` with one difference: at the start of
every episode the SKU's true price elasticity and demand level are drawn from a prior built
from the catalog's estimate and standard errors (``elasticity`` +- ``elasticity_se``,
``log(base_demand)`` +- ``base_demand_se``), on the discrete grid of
:class:`envs.belief.BeliefGrid`. The market runs on the truth; the policy never sees it.

What the policy sees instead is the exact posterior on the grid, updated by the env after
every week from the units sold with the market's own likelihood
(:func:`envs.belief.log_likelihood`, censored at the stock when the SKU sells out):

- the observation's ``elasticity`` field reads the posterior mean elasticity, and
  ``demand_cover`` uses the posterior-mean demand level (``base_demand * exp(E[log level
  offset])``);
- :data:`envs.belief.BELIEF_FIELDS` are appended: the posterior sd of the elasticity, the
  mean and sd of the log level offset, their correlation and the normalized entropy;
- :meth:`LearningMarkdownEnv.policy_context` carries a catalog with the posterior-mean
  parameters and the posterior itself (``context.belief``); the true grid point
  (``context.truth``) only when :attr:`LearningMarkdownEnv.reveal_truth` is set, which only
  the oracle's evaluation does.

Everything else (the rules as masks, rewards, episode end, the evaluation mode with common
random numbers) is the batched env's. In evaluation mode the truth of slot ``i``'s ``k``-th
episode is drawn from uniforms keyed by ``(seed, slot, episode)``, like its demand, so every
policy plays the same truths on the same demand paths.

Version history: ``DeadStock/MarkdownLearning-v0``: first version (17 + 5 observation fields,
a 9 x 9 grid by default).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.batched import BatchedMarkdownEnv
from envs.belief import (
    BELIEF_HIGH,
    BELIEF_LOW,
    BeliefGrid,
    BeliefState,
    belief_features,
    log_likelihood,
    moment_basis,
    normalize,
    summarize,
)
from envs.config import DecisionState
from envs.context import PolicyContext
from envs.core import WeekOutcome
from envs.markdown import DEFAULT_SKU, EnvConfig
from envs.observation import (
    ELASTICITY_SCALE,
    OBS_HIGH,
    OBS_LOW,
    OBS_NAMES,
    assemble_observation,
)
from ingest.errors import ConfigError
from simulator.demand import Catalog
from simulator.market import MarketState, expected_demand

DEFAULT_PRIOR_SE = {"elasticity_se": 0.5, "base_demand_se": 0.3}
"""The prior's standard errors of ``DeadStock/MarkdownLearning-v0``'s default SKU
(:data:`envs.markdown.DEFAULT_SKU`, whose catalog has none)."""

DEFAULT_GRID_POINTS = 9
"""Grid points per axis of the learning env's prior (81 points)."""

TRUTH_STREAM = 3
"""Spawn-key tag of the truth draws in evaluation mode (the batched env's demand uniforms
use tag 2), so truths and demand come from independent streams of the same seed."""

_I_ELASTICITY = OBS_NAMES.index("elasticity")


def learning_observation_space() -> spaces.Box:
    """The learning env's observation space: the standard fields, then the belief fields."""
    low = np.concatenate([OBS_LOW, BELIEF_LOW]).astype(np.float32)
    high = np.concatenate([OBS_HIGH, BELIEF_HIGH]).astype(np.float32)
    return spaces.Box(low, high, dtype=np.float32)


class LearningMarkdownEnv(BatchedMarkdownEnv):
    """The batched markdown env with each SKU's elasticity and demand level unknown.

    Parameters
    ----------
    config : EnvConfig or None
        As for :class:`~envs.batched.BatchedMarkdownEnv`; the source catalog's
        ``elasticity`` and ``base_demand`` are the estimates, ``elasticity_se`` and
        ``base_demand_se`` the prior's standard deviations. ``draw_parameters`` must be off
        (this env draws the parameters itself).
    n_slots, seed, fixed_skus, record_episodes
        As for :class:`~envs.batched.BatchedMarkdownEnv`.
    grid : BeliefGrid or int
        The prior's grid (or its points per axis).
    """

    def __init__(
        self,
        config: EnvConfig | None = None,
        n_slots: int | None = None,
        *,
        seed: int | None = None,
        fixed_skus: bool = False,
        record_episodes: bool | None = None,
        grid: BeliefGrid | int = DEFAULT_GRID_POINTS,
    ) -> None:
        config = config if config is not None else EnvConfig()
        if config.draw_parameters:
            raise ConfigError(
                "draw_parameters = True: the learning env draws the parameters from its own "
                "prior grid; switch draw_parameters off"
            )
        self.grid = grid if isinstance(grid, BeliefGrid) else BeliefGrid(int(grid))
        super().__init__(
            config, n_slots, seed=seed, fixed_skus=fixed_skus, record_episodes=record_episodes
        )
        self.observation_space = learning_observation_space()
        # the first observation depends on the slot's posterior: never read the base table
        self._start_table = None
        self.reveal_truth = False
        self.week_units_sold = np.zeros(self.n_slots)
        src = self.source
        self._src_points_e, self._src_points_l = self.grid.points(
            src.elasticity, src.elasticity_se, src.base_demand_se
        )
        self._src_basis = moment_basis(self._src_points_e, self._src_points_l)
        prior = np.broadcast_to(self.grid.prior, self._src_points_e.shape)
        log_prior = np.broadcast_to(self.grid.log_prior, prior.shape)
        # the posterior summary at an episode's start is the prior's, once per source SKU
        self._src_summary = summarize(
            prior,
            self._src_points_e,
            self._src_points_l,
            log_weights=log_prior,
            basis=self._src_basis,
        )

    # ------------------------------------------------------------------ episodes
    def reset(self) -> np.ndarray:
        n, g = self.n_slots, self.grid.n_points
        self._truth = np.zeros(n, dtype=np.int64)
        self._log_post = np.tile(self.grid.log_prior, (n, 1))
        self._weights = np.tile(self.grid.prior, (n, 1))
        self._points_e = np.zeros((n, g))
        self._points_l = np.zeros((n, g))
        self._basis = np.zeros((n, self._src_basis.shape[1], g))
        self._est_base = np.zeros(n)
        self._summary = {k: np.zeros(n) for k in self._src_summary}
        return super().reset()

    def _start_episodes(self, slots: np.ndarray) -> None:
        super()._start_episodes(slots)
        index = self._sku_index[slots]
        if self.fixed_skus:
            u = np.empty(slots.size)
            for j, slot in enumerate(slots.tolist()):
                key = (TRUTH_STREAM, slot, int(self._episode[slot]))
                gen = np.random.default_rng(np.random.SeedSequence(self._entropy, spawn_key=key))
                u[j] = gen.random()
        else:
            u = self._sku_rng.random(slots.size)
        truth = self.grid.draw(u)
        src = self.source
        self._truth[slots] = truth
        self._log_post[slots] = self.grid.log_prior
        self._weights[slots] = self.grid.prior
        self._points_e[slots] = self._src_points_e[index]
        self._points_l[slots] = self._src_points_l[index]
        self._basis[slots] = self._src_basis[index]
        self._est_base[slots] = src.base_demand[index]
        for name, values in self._src_summary.items():
            self._summary[name][slots] = values[index]
        # the market plays the truth
        self._catalog.elasticity[slots] = self._src_points_e[index, truth]
        self._catalog.base_demand[slots] = src.base_demand[index] * np.exp(
            self._src_points_l[index, truth]
        )

    # ------------------------------------------------------------------ learning
    def _after_week(
        self, actions: np.ndarray, decision: DecisionState, market: MarketState, out: WeekOutcome
    ) -> None:
        """Bayes' rule on the grid with this week's sales."""
        self.week_units_sold = np.array(out.result.units_sold, dtype=float)
        self._log_post, self._weights = normalize(
            self._log_post
            + log_likelihood(
                self.grid_demand(actions, market),
                out.result.units_sold,
                market.stock,
                self._catalog.dispersion,
            )
        )
        self._summary = summarize(
            self._weights,
            self._points_e,
            self._points_l,
            log_weights=self._log_post,
            basis=self._basis,
        )

    def grid_demand(self, actions: np.ndarray, market: MarketState) -> np.ndarray:
        """Expected demand of the week at every grid point of every slot, ``(n, G)``: the
        market's :func:`~simulator.market.expected_demand` at the estimate's level with no
        price effect, times each point's level offset and price effect."""
        d, c = self.rules.depths(np.asarray(actions, np.int64))
        flat = replace(self._catalog)  # shallow: only the two arrays below differ
        flat.elasticity = np.zeros(self.n_slots)
        flat.base_demand = self._est_base
        unit = expected_demand(
            flat, market.week, d, c, ref_price=market.ref_price, fatigue=market.fatigue
        )
        log_price = np.log1p(-d)[:, None]
        return unit[:, None] * np.exp(self._points_l + self._points_e * log_price)

    def belief(self) -> BeliefState:
        """The slots' posterior (arrays are the env's own: read, do not modify)."""
        return BeliefState(
            grid=self.grid,
            points_e=self._points_e,
            points_l=self._points_l,
            log_posterior=self._log_post,
            elasticity_se=self.source.elasticity_se[self._sku_index],
            level_se=self.source.base_demand_se[self._sku_index],
            estimate_elasticity=self.source.elasticity[self._sku_index],
            estimate_base_demand=self._est_base.copy(),
        )

    def _moments(self) -> dict[str, np.ndarray]:
        """The posterior summary of every slot (kept up to date by the env)."""
        return self._summary

    def belief_catalog(self) -> Catalog:
        """The slot catalog with the posterior-mean elasticity and demand level in place of
        the truth (what every policy but the oracle plans with)."""
        m = self._moments()
        out = replace(self._catalog)
        out.elasticity = m["elasticity_mean"]
        out.base_demand = self._est_base * np.exp(m["level_mean"])
        return out

    # ------------------------------------------------------------------ what policies see
    def _observe(self, slots: np.ndarray | None = None) -> np.ndarray:
        rows = np.arange(self.n_slots) if slots is None else slots
        m = self._moments()
        mean_e = m["elasticity_mean"][rows]
        static = np.array(self._static_obs[rows], dtype=np.float32)
        static[:, _I_ELASTICITY] = np.clip(
            mean_e / ELASTICITY_SCALE, OBS_LOW[_I_ELASTICITY], OBS_HIGH[_I_ELASTICITY]
        )
        decision = self._decision if slots is None else self._decision.take(slots)
        market = self._market if slots is None else self._market.take(slots)
        obs = assemble_observation(
            self._est_base[rows] * np.exp(m["level_mean"][rows]),
            self._src_season_cum,
            None,
            decision,
            market,
            self.rules,
            horizon_weeks=self._horizon[rows],
            last_units_sold=self._last_sold[rows],
            season_rows=self._sku_index[rows],
            static_obs=static,
        )
        extra = belief_features({k: v[rows] for k, v in m.items()})
        return np.concatenate([obs, extra], axis=1)

    def policy_context(self) -> PolicyContext:
        """The slots' state with the posterior-mean catalog and the posterior
        (``context.truth`` is filled only while :attr:`reveal_truth` is set)."""
        ctx = super().policy_context()
        ctx.catalog = self.belief_catalog()
        ctx.belief = self.belief()
        if self.reveal_truth:
            ctx.truth = self._truth.copy()
        return ctx

    def true_catalog(self) -> Catalog:
        """A copy of the slots' true parameters (for tests and the oracle's checks)."""
        return self._catalog.take(np.arange(self.n_slots))


class MarkdownLearningEnv(gym.Env):
    """``DeadStock/MarkdownLearning-v0``: one SKU whose elasticity and demand level are unknown.

    The one-slot :class:`LearningMarkdownEnv` behind a Gymnasium interface, so the scalar and
    the batched env share their dynamics.

    **Action space.** ``Discrete(n_discounts * n_coupons)``, as ``DeadStock/Markdown-v0``.

    **Observation space.** ``Box((OBS_DIM + 5,))``: the 17 fields of
    :mod:`envs.observation` (``elasticity`` and ``demand_cover`` at the posterior mean), then
    :data:`envs.belief.BELIEF_FIELDS`.

    **Rewards, episode end, invalid actions.** As ``DeadStock/Markdown-v0``.

    **Starting state.** A SKU drawn uniformly from the catalog (or the config's one SKU),
    its truth drawn from the prior grid, the posterior equal to the prior.

    **Arguments.** ``config`` (an :class:`~envs.markdown.EnvConfig`; the catalog's
    ``elasticity_se`` and ``base_demand_se`` set the prior) and ``grid`` (points per axis).

    **info.** ``action_mask``, ``units_sold`` (last week), ``belief`` (posterior mean and sd
    of the elasticity and the log level offset).
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self, config: EnvConfig | None = None, grid: int = DEFAULT_GRID_POINTS, **kwargs: Any
    ) -> None:
        if config is None:
            kwargs.setdefault("sku_params", {**DEFAULT_SKU, **DEFAULT_PRIOR_SE})
            config = EnvConfig(**kwargs)
        self.config = config
        self._venv = LearningMarkdownEnv(config, n_slots=1, seed=0, grid=grid)
        self.action_space = spaces.Discrete(config.rules.n_actions)
        self.observation_space = learning_observation_space()

    def _info(self) -> dict[str, Any]:
        m = self._venv._moments()
        return {
            "action_mask": self._venv.action_masks()[0],
            "units_sold": float(self._venv._last_sold[0]),
            "belief": {
                "elasticity_mean": float(m["elasticity_mean"][0]),
                "elasticity_sd": float(m["elasticity_sd"][0]),
                "level_mean": float(m["level_mean"][0]),
                "level_sd": float(m["level_sd"][0]),
            },
        }

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if options:
            raise ConfigError(f"MarkdownLearningEnv takes no reset options; got {sorted(options)}")
        self._venv.seed(int(self.np_random.integers(2**62)))
        obs = self._venv.reset()
        return obs[0], self._info()

    def action_masks(self) -> np.ndarray:
        """Allowed actions, bool ``(n_actions,)``."""
        return self._venv.action_masks()[0]

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self.action_space.contains(action):
            raise ConfigError(f"action {action!r} is outside {self.action_space}")
        mask = self._venv.action_masks()[0]
        self._venv.step_async(np.array([int(action)]))
        obs, reward, done, infos = self._venv.step_wait()
        info: dict[str, Any] = {"violation": not bool(mask[int(action)])}
        if done[0]:
            # the batched env has already started the next episode: report the last week
            info["units_sold"] = float(self._venv.week_units_sold[0])
            info["action_mask"] = mask
            return infos[0]["terminal_observation"], float(reward[0]), True, False, info
        info.update(self._info())
        return obs[0], float(reward[0]), False, False, info
