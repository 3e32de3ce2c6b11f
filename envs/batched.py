"""A batched markdown env: N SKU slots stepped at once, as a stable-baselines3 ``VecEnv``.

Every slot plays the single-SKU game of :class:`envs.markdown.MarkdownEnv`; all slots go
through ONE call of :func:`envs.core.play_week` (hence one :func:`simulator.market.step`)
per step. The slots' SKUs live in one slot :class:`~simulator.demand.Catalog`; when a slot's
episode ends, a new SKU is drawn from the source catalog into it (``Catalog.assign``) and the
slot starts again, with the final observation in ``infos[i]["terminal_observation"]`` as SB3
expects. :meth:`BatchedMarkdownEnv.action_masks` gives the ``(N, n_actions)`` masks that
sb3-contrib's ``MaskablePPO`` reads through ``env_method("action_masks")``.

Two modes:

* **training** (``fixed_skus=False``): each slot draws its SKU uniformly from the source
  (optionally its parameters from their uncertainty, and its horizon from
  ``config.horizon_range``).
* **evaluation** (``fixed_skus=True``): slot ``i`` always plays SKU ``i % n_skus`` for
  ``config.horizon_weeks``; demand is drawn by :class:`envs.crn.QuantileSampler` from
  uniforms keyed by ``(seed, slot, episode)``, so the same seed gives every policy the same
  luck (common random numbers), and :meth:`episode_totals` returns one row per finished
  episode. :meth:`evaluate` plays a policy for a number of episodes per slot.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices

from envs.config import DecisionState, RulesConfig
from envs.context import PolicyContext
from envs.core import WEEK_TERMS, WeekOutcome, play_week, reward_scale
from envs.crn import N_DRAWS, QuantileSampler
from envs.markdown import EnvConfig, RuleViolationError
from envs.observation import (
    OBS_DIM,
    OBS_HIGH,
    OBS_LOW,
    assemble_observation,
    season_cumsum,
    sku_features,
    static_observation,
)
from envs.rules import action_mask, hold_actions, initial_decision_state, violated_rules
from ingest.errors import ConfigError, DeadstockError
from simulator.demand import Catalog
from simulator.market import MarketState, initial_state

TOTAL_COLUMNS: tuple[str, ...] = (
    "slot",
    "sku_index",
    "sku",
    "episode",
    "horizon_weeks",
    "weeks_played",
    "initial_stock",
    "leftover_units",
    "sell_through",
    "violations",
    "reward",
    *WEEK_TERMS,
)
"""Columns of :meth:`BatchedMarkdownEnv.episode_totals` (terms summed over the episode)."""


_NO_INFO: MappingProxyType[str, Any] = MappingProxyType({})
"""The info of a slot whose episode goes on: empty and read-only (shared by all such slots)."""

ActFn = Callable[[np.ndarray, np.ndarray, PolicyContext], np.ndarray]


START_TABLE_MAX_ROWS = 250_000
"""Largest (source SKUs x horizons) table of episode-start observations the batched env
precomputes (about 17 MB); beyond it, starting slots' observations are assembled each step."""

_DECISION_FIELDS = tuple(f.name for f in fields(DecisionState))
_MARKET_FIELDS = tuple(f.name for f in fields(MarketState))


def _assign_rows(dst: Any, slots: np.ndarray, src: Any, index: np.ndarray) -> None:
    """``dst``'s rows ``slots`` = ``src``'s rows ``index``, for every field of a state."""
    names = _DECISION_FIELDS if isinstance(dst, DecisionState) else _MARKET_FIELDS
    for name in names:
        getattr(dst, name)[slots] = getattr(src, name)[index]


class InProcessVecEnv(VecEnv):
    """A VecEnv whose slots all live in this process as arrays: attributes are the env's
    own, ``env_method("action_masks")`` slices the masks, and nothing is wrapped. The
    batched env and the sequential budget env share these, as SB3 asks for them."""

    def action_masks(self) -> np.ndarray:
        """Allowed actions per slot, shape ``(num_envs, n_actions)``."""
        raise NotImplementedError

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self, attr_name, value)

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        idx = list(self._get_indices(indices))
        if method_name == "action_masks":
            return list(self.action_masks()[idx])
        result = getattr(self, method_name)(*method_args, **method_kwargs)
        return [result for _ in idx]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]


class BatchedMarkdownEnv(InProcessVecEnv):
    """N markdown episodes stepped together through one market step (an SB3 ``VecEnv``).

    Parameters
    ----------
    config : EnvConfig or None
        The game, the rules and the SKU source (``config.catalog`` / ``sku_params``).
    n_slots : int or None
        Number of slots. Training: required. Evaluation: a multiple of the source's
        ``n_skus`` (default ``n_skus``); slot ``i`` plays SKU ``i % n_skus``.
    seed : int or None
        Seed applied at the next :meth:`reset` (like :meth:`seed`). ``None``: fresh entropy
        from the operating system (never the global NumPy RNG).
    fixed_skus : bool
        Evaluation mode (fixed SKUs, fixed horizon, common random numbers, episode log).
    record_episodes : bool or None
        Keep a row of totals per finished episode (:meth:`episode_totals`). Default: on in
        evaluation mode, off in training (the log would grow without bound).
    """

    def __init__(
        self,
        config: EnvConfig | None = None,
        n_slots: int | None = None,
        *,
        seed: int | None = None,
        fixed_skus: bool = False,
        record_episodes: bool | None = None,
    ) -> None:
        self.config = config if config is not None else EnvConfig()
        self.rules: RulesConfig = self.config.rules
        self.source = self.config.source_catalog()
        m = self.source.n_skus
        if fixed_skus:
            n_slots = m if n_slots is None else int(n_slots)
            if n_slots < m or n_slots % m:
                raise ConfigError(
                    f"n_slots = {n_slots}: in evaluation mode it must be a positive multiple "
                    f"of the catalog's {m} SKUs (slot i plays SKU i % {m})"
                )
        elif n_slots is None or int(n_slots) < 1:
            raise ConfigError(f"n_slots = {n_slots}: expected a positive number of slots")
        self.n_slots = int(n_slots)
        self.fixed_skus = fixed_skus
        self.record_episodes = fixed_skus if record_episodes is None else record_episodes
        self.render_mode = None
        super().__init__(
            self.n_slots,
            spaces.Box(OBS_LOW, OBS_HIGH, dtype=np.float32),
            spaces.Discrete(self.rules.n_actions),
        )
        self._pending_seed: int | None = seed
        self._started = False
        self.choose_index: Callable[[np.ndarray], np.ndarray] | None = None
        """In training: ``slots -> source rows`` for the slots starting an episode, instead of
        a uniform draw (the sequential budget env keeps a category's SKUs together)."""
        self._actions: np.ndarray | None = None
        self._sampler = QuantileSampler()
        self._log: list[dict[str, np.ndarray]] = []
        # per-SKU quantities of the source, gathered into slots at each episode start
        self._src_season_cum = season_cumsum(self.source)
        self._src_static = sku_features(self.source, self.rules)
        self._src_static_obs = static_observation(self._src_static)
        self._src_decision = initial_decision_state(
            self.source, self.config.horizon_weeks, self.rules
        )
        self._src_market = initial_state(self.source)
        self._src_scale = (
            reward_scale(self.source)
            if self.config.normalize_reward
            else np.ones(self.source.n_skus)
        )
        self._start_table = self._start_observations()
        # catalog fields that differ between source SKUs: only these change when a slot
        # restarts with a SKU of the source (the others hold the same value in every slot)
        self._varying_fields = tuple(
            f.name
            for f in fields(Catalog)
            if not np.array_equal(
                getattr(self.source, f.name), getattr(self.source, f.name)[:1].repeat(m, axis=0)
            )
        )

    def _start_observations(self) -> tuple[int, np.ndarray] | None:
        """Observation of every (source SKU, horizon) at its episode start, as
        ``(lowest horizon, float32 array (n_horizons, n_skus, OBS_DIM))``, or None when too big.

        An episode starts from the source SKU's initial state with its horizon, so its first
        observation depends on nothing else (unless parameters are drawn); finished slots read
        it here instead of assembling it. Built with :func:`assemble_observation` on exactly
        the states :meth:`_start_episodes` sets, so the rows are the same numbers.
        """
        cfg, m = self.config, self.source.n_skus
        lo, hi = cfg.horizon_range if cfg.horizon_range is not None else (cfg.horizon_weeks,) * 2
        n_h = hi - lo + 1
        if cfg.draw_parameters or n_h * m > START_TABLE_MAX_ROWS:
            return None
        horizons = np.repeat(np.arange(lo, hi + 1, dtype=np.int64), m)
        rows = np.tile(np.arange(m), n_h)
        decision = self._src_decision.take(rows)
        decision.weeks_left = horizons.copy()
        obs = assemble_observation(
            self.source.base_demand[rows],
            self._src_season_cum,
            None,
            decision,
            self._src_market.take(rows),
            self.rules,
            horizon_weeks=horizons,
            last_units_sold=np.zeros(rows.size),
            season_rows=rows,
            static_obs=self._src_static_obs[rows],
        )
        return lo, obs.reshape(n_h, m, OBS_DIM)

    # ------------------------------------------------------------------ seeding and reset
    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Set the seed used at the next :meth:`reset` (one seed for all slots; slots get
        independent streams from it)."""
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**63))  # type: ignore[operator]
        self._pending_seed = int(seed)
        return [self._pending_seed] * self.n_slots

    def reset(self) -> np.ndarray:
        """Start a new episode in every slot; returns observations ``(n_slots, obs_dim)``.

        A seed set by the constructor or :meth:`seed` is applied here (then consumed); without
        one the random streams continue (or start from fresh entropy the first time).
        """
        if self._pending_seed is not None or not self._started:
            root = np.random.SeedSequence(self._pending_seed)
            # the market stream is the root's own, as gymnasium's np_random(seed) is, so one
            # slot with one SKU replays MarkdownEnv exactly; SKU draws use a child stream
            self._market_rng = np.random.default_rng(root)
            self._sku_rng = np.random.default_rng(root.spawn(1)[0])
            self._entropy = root.entropy
            self._pending_seed = None
        self._log = []
        n = self.n_slots
        self._catalog = self.source.take(np.arange(n) % self.source.n_skus)
        # per slot: the clipped descriptor columns of its observation (seasons are read from
        # the source's table through self._sku_index)
        self._static_obs = np.zeros((n, OBS_DIM), dtype=np.float32)
        self._decision = initial_decision_state(
            self._catalog, self.config.horizon_weeks, self.rules
        )
        self._market = initial_state(self._catalog)
        self._horizon = np.full(n, self.config.horizon_weeks, dtype=np.int64)
        self._scale = np.ones(n)
        self._last_sold = np.zeros(n)
        self._sku_index = np.zeros(n, dtype=np.int64)
        self._episode = np.full(n, -1, dtype=np.int64)
        # one row per term: restarting slots zero one column block instead of 16 arrays
        self._acc_rows = np.zeros((len(WEEK_TERMS) + 1, n))
        self._acc = dict(zip((*WEEK_TERMS, "reward"), self._acc_rows, strict=True))
        self._ep_len = np.zeros(n, dtype=np.int64)
        self._violations = np.zeros(n, dtype=np.int64)
        self._uniforms = np.zeros((n, self.config.horizon_weeks, N_DRAWS))
        self._episode_start = np.ones(n, dtype=bool)
        self._start_episodes(np.arange(n))
        self._started = True
        self._row_start = np.arange(n) * self.rules.n_actions
        self._mask = action_mask(self.rules, self._decision, self._catalog)
        self.reset_infos = [{} for _ in range(n)]
        return self._observe()

    def _start_episodes(self, slots: np.ndarray) -> None:
        """Draw (or, in evaluation, replay) a SKU into each of ``slots`` and start it."""
        k = slots.size
        m = self.source.n_skus
        cfg = self.config
        self._episode[slots] += 1
        drawn: Catalog | None = None  # parameters drawn from their uncertainty, if asked
        if self.fixed_skus:
            index = slots % m
            horizons = np.full(k, cfg.horizon_weeks, dtype=np.int64)
            if cfg.draw_parameters:
                drawn = self.source.take(index)
            for j, slot in enumerate(slots.tolist()):
                key = (2, slot, int(self._episode[slot]))
                gen = np.random.default_rng(np.random.SeedSequence(self._entropy, spawn_key=key))
                self._uniforms[slot] = gen.random((cfg.horizon_weeks, N_DRAWS))
                if drawn is not None:
                    one = self.source.take([index[j]]).sample(gen)
                    drawn.assign(np.array([j]), one, np.zeros(1, dtype=np.int64))
        else:
            if self.choose_index is not None:
                index = np.asarray(self.choose_index(slots), dtype=np.int64)
            elif m > 1:
                index = self._sku_rng.integers(m, size=k)
            else:
                index = np.zeros(k, dtype=np.int64)
            if cfg.draw_parameters:
                drawn = self.source.take(index).sample(self._sku_rng)
            if cfg.horizon_range is not None:
                lo, hi = cfg.horizon_range
                horizons = self._sku_rng.integers(lo, hi + 1, size=k)
            else:
                horizons = np.full(k, cfg.horizon_weeks, dtype=np.int64)
        if drawn is None:
            for name in self._varying_fields:
                getattr(self._catalog, name)[slots] = getattr(self.source, name)[index]
            self._static_obs[slots] = self._src_static_obs[index]
        else:
            # drawn parameters change the descriptors (elasticity, coupon lift), not the
            # stock, the season or the reward scale
            self._catalog.assign(slots, drawn, np.arange(k))
            self._static_obs[slots] = static_observation(sku_features(drawn, self.rules))
        _assign_rows(self._decision, slots, self._src_decision, index)
        self._decision.weeks_left[slots] = horizons
        _assign_rows(self._market, slots, self._src_market, index)
        self._horizon[slots] = horizons
        self._sku_index[slots] = index
        self._scale[slots] = self._src_scale[index]
        self._last_sold[slots] = 0.0
        self._acc_rows[:, slots] = 0.0
        self._ep_len[slots] = 0
        self._violations[slots] = 0
        self._episode_start[slots] = True

    # ------------------------------------------------------------------ stepping
    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        if not self._started or self._actions is None:
            raise DeadstockError("call reset() before step()")
        a = self._actions.reshape(-1).astype(np.int64)
        self._actions = None
        n = self.n_slots
        if a.shape != (n,) or a.min() < 0 or a.max() >= self.rules.n_actions:
            raise RuleViolationError(
                f"actions must be {n} integers in [0, {self.rules.n_actions}); got shape "
                f"{a.shape}, range [{a.min(initial=0)}, {a.max(initial=0)}]"
            )
        # mask[i, a[i]] through the flat mask (cheaper than a 2-D fancy index)
        violation = ~self._mask.reshape(-1).take(self._row_start + a)
        if violation.any():
            a = self._handle_violations(a, violation)
        if self.fixed_skus:
            week_index = np.minimum(
                self._horizon - self._decision.weeks_left, self._uniforms.shape[1] - 1
            )
            self._sampler.uniforms = self._uniforms[np.arange(n), week_index]
            rng = self._sampler.as_generator()
        else:
            rng = self._market_rng
        out = play_week(
            self._catalog,
            self.rules,
            self._decision,
            self._market,
            a,
            rng,
            scale=self._scale,
            end_on_sellout=self.config.end_on_sellout,
        )
        self._after_week(a, self._decision, self._market, out)
        self._decision, self._market = out.decision, out.market
        self._last_sold = np.array(out.result.units_sold, dtype=float)
        for name in WEEK_TERMS:
            self._acc[name] += out.term(name)
        self._acc["reward"] += out.reward
        self._ep_len += 1
        self._violations += violation
        self._episode_start[:] = False

        done = out.terminated
        # one shared read-only empty info for the slots still running (building thousands
        # of dicts a step costs as much as the market step); finished slots get their own
        infos: list[dict[str, Any]] = [_NO_INFO] * n  # type: ignore[list-item]
        # every slot's observation before restarting the finished ones: their rows are the
        # terminal observations, the other rows do not change when the finished slots restart
        obs = self._observe()
        if done.any():
            slots = np.flatnonzero(done)
            terminal = obs[slots]
            if self.record_episodes:
                self._record(slots)
            ep_r = self._acc["reward"][slots].tolist()
            ep_l = self._ep_len[slots].tolist()
            for slot, last_obs, r, length in zip(
                slots.tolist(), list(terminal), ep_r, ep_l, strict=True
            ):
                infos[slot] = {
                    "terminal_observation": last_obs,
                    "TimeLimit.truncated": False,
                    "episode": {"r": r, "l": length},
                }
            self._start_episodes(slots)
            if self._start_table is not None:
                lo, table = self._start_table
                obs[slots] = table[self._horizon[slots] - lo, self._sku_index[slots]]
            else:
                obs[slots] = self._observe(slots)
        self._mask = action_mask(self.rules, self._decision, self._catalog)
        rewards = out.reward.astype(np.float32)
        return obs, rewards, done.copy(), infos

    def _after_week(
        self, actions: np.ndarray, decision: DecisionState, market: MarketState, out: WeekOutcome
    ) -> None:
        """Hook for variants that learn from a week's outcome before the next observation
        (the learning env updates its posterior here); called before finished slots restart,
        with the rules' and the market's states the week was played from."""

    def _handle_violations(self, a: np.ndarray, violation: np.ndarray) -> np.ndarray:
        bad = np.flatnonzero(violation)
        if self.config.invalid_action == "raise":
            i = int(bad[0])
            sub_dec = self._decision.take(np.array([i]))
            broken = violated_rules(self.rules, sub_dec, a[[i]], self._catalog.take([i]))
            names = [k for k, v in broken.items() if v[0]] or ["(combined)"]
            raise RuleViolationError(
                f"slot {i}: action {int(a[i])} breaks rule(s) {names} ({bad.size} slot(s) "
                f"chose masked actions); pick actions allowed by action_masks(), or build the "
                f"env with invalid_action='hold'"
            )
        return np.where(violation, hold_actions(self.rules, self._decision), a)

    def _observe(self, slots: np.ndarray | None = None) -> np.ndarray:
        """Observations of all slots, or of ``slots`` only."""
        if slots is None:
            return assemble_observation(
                self._catalog.base_demand,
                self._src_season_cum,
                None,
                self._decision,
                self._market,
                self.rules,
                horizon_weeks=self._horizon,
                last_units_sold=self._last_sold,
                season_rows=self._sku_index,
                static_obs=self._static_obs,
            )
        return assemble_observation(
            self._catalog.base_demand[slots],
            self._src_season_cum,
            None,
            self._decision.take(slots),
            self._market.take(slots),
            self.rules,
            horizon_weeks=self._horizon[slots],
            last_units_sold=self._last_sold[slots],
            season_rows=self._sku_index[slots],
            static_obs=self._static_obs[slots],
        )

    def _record(self, slots: np.ndarray) -> None:
        initial = self._decision.initial_stock[slots]
        left = self._decision.stock[slots]
        row: dict[str, np.ndarray] = {
            "slot": slots.copy(),
            "sku_index": self._sku_index[slots].copy(),
            "sku": self._catalog.sku[slots].astype(str),
            "episode": self._episode[slots].copy(),
            "horizon_weeks": self._horizon[slots].copy(),
            "weeks_played": self._ep_len[slots].copy(),
            "initial_stock": initial.copy(),
            "leftover_units": left.copy(),
            "sell_through": np.where(initial > 0, 1.0 - left / np.maximum(initial, 1e-12), 1.0),
            "violations": self._violations[slots].copy(),
        }
        for name, acc in self._acc.items():
            row[name] = acc[slots].copy()
        self._log.append(row)

    # ------------------------------------------------------------------ masks and context
    def action_masks(self) -> np.ndarray:
        """Allowed actions per slot, bool ``(n_slots, n_actions)`` (MaskablePPO's interface)."""
        if not self._started:
            raise DeadstockError("call reset() before action_masks()")
        return self._mask.copy()

    def policy_context(self) -> PolicyContext:
        """The slots' catalog, rule state and market state (for heuristics and the DP)."""
        if not self._started:
            raise DeadstockError("call reset() before policy_context()")
        return PolicyContext(
            catalog=self._catalog,
            decision=self._decision,
            market=self._market,
            rules=self.rules,
            horizon_weeks=self._horizon.copy(),
            episode_start=self._episode_start.copy(),
        )

    @property
    def sku_index(self) -> np.ndarray:
        """The source row each slot plays in its current episode, shape ``(n_slots,)``."""
        return self._sku_index.copy()

    @property
    def slot_horizon_weeks(self) -> np.ndarray:
        """Each slot's horizon in its current episode, shape ``(n_slots,)``."""
        return self._horizon.copy()

    # ------------------------------------------------------------------ evaluation
    def episode_totals(self) -> pd.DataFrame:
        """One row per finished episode (see :data:`TOTAL_COLUMNS`), in finishing order."""
        if not self._log:
            return pd.DataFrame({c: [] for c in TOTAL_COLUMNS})
        data = {c: np.concatenate([row[c] for row in self._log]) for c in TOTAL_COLUMNS}
        return pd.DataFrame(data)

    def evaluate(self, act: ActFn, episodes_per_slot: int = 1) -> pd.DataFrame:
        """Play ``act`` from a fresh :meth:`reset` until every slot has finished
        ``episodes_per_slot`` episodes; return their totals sorted by slot and episode.

        ``act(observations, masks, context) -> actions`` (a :class:`agents.policy.Policy`'s
        ``act`` works: its context is a :class:`~envs.context.PolicyContext`). With the same
        seed (set it with :meth:`seed` before each call) every policy sees the same demand
        luck.
        """
        if episodes_per_slot < 1:
            raise ConfigError(f"episodes_per_slot = {episodes_per_slot}: expected >= 1")
        if not self.record_episodes:
            raise ConfigError("evaluate() needs record_episodes=True (or fixed_skus=True)")
        obs = self.reset()
        while int(self._episode.min()) < episodes_per_slot:
            actions = np.asarray(act(obs, self.action_masks(), self.policy_context()))
            self.step_async(actions)
            obs, _, _, _ = self.step_wait()
        totals = self.episode_totals()
        totals = totals[totals["episode"] < episodes_per_slot]
        return totals.sort_values(["slot", "episode"], ignore_index=True)

    # ------------------------------------------------------------------ VecEnv plumbing
    def close(self) -> None:
        self._log = []
