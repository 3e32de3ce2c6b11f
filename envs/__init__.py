"""Gymnasium environments over the market simulator, with business rules as action masks.

Importing this package registers:

* ``DeadStock/Markdown-v0``: :class:`envs.markdown.MarkdownEnv` with the default
  :class:`~envs.markdown.EnvConfig` (no rules, no coupons, 12 weeks).
* ``DeadStock/MarkdownRules-v0``: the same env with :data:`RULES_V0` (a typical rule set and
  a coupon) and ``invalid_action="hold"``.
* ``DeadStock/MarkdownLearning-v0``: :class:`envs.learning.MarkdownLearningEnv`, the SKU's
  elasticity and demand level unknown (drawn from a prior grid each episode; the policy sees
  the posterior).

Use :func:`make_env` to build one from a config with the time limit set from its horizon.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from envs.config import RulesConfig
from envs.markdown import EnvConfig, MarkdownEnv

MARKDOWN_ID = "DeadStock/Markdown-v0"
MARKDOWN_RULES_ID = "DeadStock/MarkdownRules-v0"

RULES_V0 = RulesConfig(
    discount_levels=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7),
    coupon_levels=(0.0, 0.1),
    max_discount=0.6,
    min_weeks_between_changes=2,
    markdown_only=True,
    margin_floor=-0.2,
    no_touch_before_exit_weeks=1,
    sell_through_target=0.8,
    sell_through_mode="penalty",
    coupon_budget_weeks=3,
)
"""The rule set of ``DeadStock/MarkdownRules-v0``: ladder to 60 %, a coupon of 10 % for at
most 3 weeks, two weeks between changes, markdown only, net price at least 80 % of cost,
no change in the exit week, 80 % sell-through target with a penalty."""

MARKDOWN_LEARNING_ID = "DeadStock/MarkdownLearning-v0"

ENV_IDS: tuple[str, ...] = (MARKDOWN_ID, MARKDOWN_RULES_ID, MARKDOWN_LEARNING_ID)


def _register() -> None:
    default = EnvConfig()
    specs: dict[str, dict[str, Any]] = {
        MARKDOWN_ID: {},
        MARKDOWN_RULES_ID: {"config": EnvConfig(rules=RULES_V0, invalid_action="hold")},
    }
    for env_id, kwargs in specs.items():
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point="envs.markdown:MarkdownEnv",
                max_episode_steps=default.max_horizon_weeks,
                kwargs=kwargs,
            )
    if MARKDOWN_LEARNING_ID not in gym.registry:
        gym.register(
            id=MARKDOWN_LEARNING_ID,
            entry_point="envs.learning:MarkdownLearningEnv",
            max_episode_steps=default.max_horizon_weeks,
        )


def make_env(config: EnvConfig | None = None, **kwargs: Any) -> gym.Env:
    """``gymnasium.make("DeadStock/Markdown-v0")`` for ``config``, with
    ``max_episode_steps`` set to its (longest) horizon.

    Extra keyword arguments go to :func:`gymnasium.make` (e.g. ``render_mode``).
    """
    config = config if config is not None else EnvConfig()
    return gym.make(
        MARKDOWN_ID, config=config, max_episode_steps=config.max_horizon_weeks, **kwargs
    )


_register()

__all__ = [
    "ENV_IDS",
    "MARKDOWN_ID",
    "MARKDOWN_LEARNING_ID",
    "MARKDOWN_RULES_ID",
    "RULES_V0",
    "EnvConfig",
    "MarkdownEnv",
    "make_env",
]
