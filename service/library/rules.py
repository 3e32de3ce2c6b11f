"""Business rules and catalogs: the plan's rules, its fitted catalog, and the check of an
edited schedule against the rules' action masks (:mod:`envs.rules`)."""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ingest.errors import DataError

logger = logging.getLogger(__name__)


# ------------------------------------------------------------------------------ rules, catalog
def rules_from_config(config: dict[str, Any]) -> Any:
    """The run's :class:`~envs.config.RulesConfig` (its ``rules`` section over the
    pipeline's defaults; the defaults when absent)."""
    values = config.get("rules") if isinstance(config, dict) else None
    return _pipeline_rules(dict(values or {}))


def rules_with(rules: dict[str, Any], overrides: dict[str, Any] | None) -> Any:
    """The plan's rules with a what-if's overrides (field names of RulesConfig)."""
    merged = dict(rules)
    merged.update(overrides or {})
    return _pipeline_rules(merged)


def _pipeline_rules(values: dict[str, Any]) -> Any:
    """``values`` (RulesConfig fields) over the pipeline's default rules, checked by the
    one config loader (:func:`app.config.load_config`: unknown keys and bad values are a
    ConfigError naming the key). A value of None keeps the default (an unset field)."""
    from app.config import load_config
    from app.pipeline_config import PipelineConfig

    overrides = {f"rules.{k}": v for k, v in values.items()}
    return load_config(PipelineConfig, overrides=overrides).rules


def rules_to_dict(rules: Any) -> dict[str, Any]:
    from app.config import to_dict

    return to_dict(rules)


def catalog_from_bytes(content: bytes, *, source: str = "catalog") -> Any:
    """A :class:`~simulator.demand.Catalog` from the bytes of a catalog Parquet file."""
    from simulator.demand import Catalog

    try:
        frame = pd.read_parquet(io.BytesIO(content))
    except Exception as err:  # noqa: BLE001 - any reader failure is the file's fault
        raise DataError(f"{source}: could not be read as Parquet ({err})") from None
    return Catalog.from_frame(frame, source=source)


def take_skus(catalog: Any, skus: Sequence[str]) -> Any:
    """The catalog rows of ``skus``, in that order."""
    pos = pd.Series(np.arange(catalog.n_skus), index=np.asarray(catalog.sku, dtype=str))
    missing = [s for s in skus if s not in pos.index]
    if missing:
        raise DataError(f"SKU(s) {missing[:3]} are not in the plan's catalog")
    return catalog.take(pos.loc[list(skus)].to_numpy())


def parse_fixed_policy(text: str) -> tuple[float, float]:
    """``fixed:D[:C]`` -> (discount, coupon) (:func:`planning.schedule.parse_policy`)."""
    from planning.schedule import parse_policy

    return parse_policy(text)


def make_schedule(skus: Sequence[str], discount: np.ndarray, coupon: np.ndarray, name: str) -> Any:
    """A :class:`~planning.schedule.Schedule` of ``skus`` (depths of shape (n_skus, weeks))."""
    from planning.schedule import Schedule

    return Schedule(
        sku=np.asarray(list(skus), dtype=object),
        discount=np.asarray(discount, dtype=float),
        coupon=np.asarray(coupon, dtype=float),
        name=name,
    )


# ------------------------------------------------------------------------------ rule check
@dataclass(frozen=True)
class RuleBreak:
    """One week of an edited schedule that a business rule refuses."""

    week: int
    rule: str
    message: str


def rule_breaks(
    catalog_one: Any, rules_values: dict[str, Any], discount: np.ndarray, coupon: np.ndarray
) -> list[RuleBreak]:
    """Replay one SKU's edited schedule through the rules' action masks (the ones every env
    and policy obeys) and return the weeks it breaks, first first.

    A depth off the ladder breaks ``ladder``. Otherwise each week's action is checked with
    :func:`envs.rules.violations` (the combined verdict) and named with
    :func:`envs.rules.violated_rules`, then the rule state moves by :func:`envs.rules.advance`
    with the schedule's expected weekly sales (the sell-through rule reads them).
    """
    from envs.rules import advance, initial_decision_state, violated_rules, violations
    from planning.outcomes import simulate_schedule

    rules = rules_with(rules_values, None)
    d = np.asarray(discount, dtype=float)
    c = np.asarray(coupon, dtype=float)
    ladder = np.asarray(rules.discount_levels, dtype=float)
    coupons = np.asarray(rules.coupon_levels, dtype=float)
    breaks: list[RuleBreak] = []
    di = np.abs(ladder[None, :] - d[:, None]).argmin(axis=1)
    ci = np.abs(coupons[None, :] - c[:, None]).argmin(axis=1)
    for t in range(d.size):
        if abs(ladder[di[t]] - d[t]) > 1e-9:
            breaks.append(RuleBreak(t + 1, "ladder", f"week {t + 1}: discount {d[t]:g} is not "
                                    f"on the discount ladder {ladder.tolist()}"))  # fmt: skip
        if abs(coupons[ci[t]] - c[t]) > 1e-9:
            breaks.append(RuleBreak(t + 1, "ladder", f"week {t + 1}: coupon {c[t]:g} is not "
                                    f"one of the coupon levels {coupons.tolist()}"))  # fmt: skip
    if breaks:
        return breaks
    sku = [str(catalog_one.sku[0])]
    units = simulate_schedule(
        catalog_one, make_schedule(sku, d[None, :], c[None, :], "override"), n_episodes=64, seed=0
    ).weekly_mean["units"][0]
    state = initial_decision_state(catalog_one, d.size, rules)
    actions = rules.encode(di, ci)
    for t in range(d.size):
        a = actions[t : t + 1]
        if violations(rules, state, a, catalog_one)[0]:
            names = [k for k, v in violated_rules(rules, state, a, catalog_one).items() if v[0]]
            for name in names or ["rules"]:
                breaks.append(
                    RuleBreak(
                        t + 1,
                        name,
                        f"week {t + 1}: discount {d[t]:g}, coupon {c[t]:g} "
                        f"breaks rule {name} ({_RULE_TEXT.get(name, name)})",
                    )  # fmt: skip
                )
            return breaks
        state = advance(rules, state, a, units[t : t + 1])
    return breaks


_RULE_TEXT = {
    "max_discount": "no depth above the maximum discount",
    "min_weeks_between_changes": "too few weeks since the last change of depth",
    "markdown_only": "no price increase after a markdown",
    "margin_floor": "the net price falls below the margin floor",
    "no_touch_after_launch": "no discount in the weeks after launch",
    "no_touch_before_exit": "the depth is frozen and no coupon in the weeks before exit",
    "coupon_budget": "the coupon budget is spent",
    "sell_through_hard": "the exit week must take the deepest allowed depth below the "
    "sell-through target",
}
