"""A category of SKUs sharing a weekly promotion limit: at most K of them on promotion.

The shared limit (see ``docs/envs.md``, "Shared budget"): in any week, at most
``max_promoted`` SKUs of the category may carry a promotion (a shelf discount or a coupon,
any depth). It is the limit a category team actually plans against (the weekly flyer's and
the end caps' slots, the promotions calendar), it is decided before demand is known (so it
is an action mask, checkable on every path), and it couples the SKUs only through the
actions, so the per-SKU DP priced by a multiplier bounds it (:mod:`agents.lagrangian`).

A :class:`CategoryEnv` plays ``n_paths`` copies of the category on the batched env's
common-random-number paths: slot ``p * n_skus + i`` is SKU ``i`` of path ``p``, so every
policy faces the same demand luck per SKU and path. Each week the policy proposes one action
per slot; the env enforces the limit itself: in a path with more than ``max_promoted``
promotions, the promotions beyond the first ``max_promoted`` (in SKU order) are replaced by
the no-promotion action and counted as ``budget_violations`` (a policy that breaks the limit
is reported, never silently helped). Every SKU plays the whole horizon; one that has sold
out plays the no-promotion action (nothing left on the shelf to promote), which takes no
slot. :func:`repair` is the one feasibility repair policies
use: keep the ``max_promoted`` promotions of highest priority.

The remaining budget is ``max_promoted`` at the start of every week (the limit is weekly);
within a week it is what is left after the SKUs already granted a slot
(:func:`remaining_before`, the order of a sequential allocation).

Cannibalization inside the category is off: each SKU's demand depends on its own price only.
That keeps the Lagrangian dual value an upper bound on the optimum (with cross effects the
relaxed problem no longer splits by SKU); switching it on is not implemented.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from envs.batched import BatchedMarkdownEnv
from envs.config import RulesConfig
from envs.context import PolicyContext
from envs.markdown import EnvConfig
from envs.rules import active_rules
from ingest.errors import ConfigError
from simulator.demand import Catalog

OFF_ACTION = 0
"""The no-promotion action (depth 0, no coupon): always allowed under the budget rules."""

SUM_COLUMNS: tuple[str, ...] = (
    "initial_stock",
    "leftover_units",
    "violations",
    "reward",
    "units_sold",
    "revenue",
    "coupon_cost",
    "refunds",
    "cogs",
    "holding_cost",
    "salvage",
    "writeoff",
    "profit",
    "exit_penalty",
    "objective",
    "margin_given_away",
)
"""Per-SKU episode totals that add up to the category's (:meth:`CategoryEnv.play`)."""


def promo_actions(rules: RulesConfig) -> np.ndarray:
    """Which flat actions are a promotion (a discount or a coupon), shape ``(n_actions,)``."""
    d, c = rules.depths(np.arange(rules.n_actions))
    return (np.asarray(d) > 0) | (np.asarray(c) > 0)


def check_budget_rules(rules: RulesConfig) -> None:
    """Refuse rule sets under which the no-promotion action can be masked.

    The limit is enforced by replacing promotions with :data:`OFF_ACTION`, which must then
    always be allowed; a rule such as markdown-only or a minimum run between changes could
    forbid it (and a markdown in force could not be withdrawn to free a slot).
    """
    active = active_rules(rules)
    if active:
        raise ConfigError(
            f"a shared promotion limit needs rules that always allow the no-promotion action; "
            f"got active rule(s) {list(active)} (use a profile without rules, coupons allowed)"
        )


def remaining_before(promoted: np.ndarray, max_promoted: int) -> np.ndarray:
    """Slots left to each SKU of a sequential allocation in SKU order.

    ``promoted`` has shape ``(n_paths, n_skus)``; entry ``[p, i]`` of the result is
    ``max_promoted`` minus the promotions granted to SKUs ``0..i-1`` of path ``p``.
    """
    granted = np.cumsum(promoted, axis=1) - promoted
    return max_promoted - granted


def repair(
    actions: np.ndarray,
    priority: np.ndarray,
    promo: np.ndarray,
    *,
    n_skus: int,
    max_promoted: int,
    off: np.ndarray | int = OFF_ACTION,
) -> np.ndarray:
    """Make a week's joint actions feasible: per path, keep the ``max_promoted`` promotions
    of highest ``priority`` (ties to the lower SKU index); the others play ``off``.

    Parameters
    ----------
    actions : ndarray of int of shape (n_paths * n_skus,)
        Proposed flat actions, path-major (slot ``p * n_skus + i``).
    priority : ndarray of float of shape (n_paths * n_skus,)
        Higher is granted first.
    promo : ndarray of bool of shape (n_actions,)
        :func:`promo_actions`.
    n_skus, max_promoted : int
    off : int or ndarray of int of shape (n_paths * n_skus,)
        The action of a SKU denied a slot (default :data:`OFF_ACTION`).

    Returns
    -------
    ndarray of int of shape (n_paths * n_skus,)
    """
    a = np.asarray(actions, dtype=np.int64)
    is_promo = promo[a].reshape(-1, n_skus)
    # rank promotions by priority within each path (non-promotions last)
    key = np.where(is_promo, np.asarray(priority, float).reshape(-1, n_skus), -np.inf)
    order = np.argsort(-key, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(n_skus)[None, :], axis=1)
    deny = (is_promo & (rank >= max_promoted)).reshape(-1)
    off_a = np.broadcast_to(np.asarray(off, dtype=np.int64), a.shape)
    return np.where(deny, off_a, a)


BUDGET_FIELDS: tuple[tuple[str, str], ...] = (
    ("slots_left", "promotion slots left this week / K"),
    ("slots_per_sku", "slots left / SKUs still to decide this week (this one included), <= 1"),
    ("slots_share", "K / N: the limit's share of the category"),
    ("position", "SKUs already decided this week / N"),
    ("need_after", "overstocked SKUs deciding after this one / N"),
)
"""Observation fields a policy that allocates the slots sequentially reads besides the
SKU's own (:func:`budget_features`); every one lies in [0, 1]."""
N_BUDGET = len(BUDGET_FIELDS)
BUDGET_LOW = np.zeros(N_BUDGET, dtype=np.float32)
BUDGET_HIGH = np.ones(N_BUDGET, dtype=np.float32)


def list_price_cover(catalog: Catalog, stock: np.ndarray, weeks_left: np.ndarray) -> np.ndarray:
    """Stock left over the expected sales at list price for the weeks left (season ignored):
    how much a SKU needs a promotion. A sold-out SKU reads -1 (it needs none)."""
    sales = np.maximum(np.asarray(catalog.base_demand, float), 1e-9) * np.maximum(weeks_left, 1)
    stock = np.asarray(stock, float)
    return np.where(stock > 0, stock / sales, -1.0)


def decision_order(cover: np.ndarray) -> np.ndarray:
    """Order in which the SKUs of each path decide within a week: most overstocked first
    (highest :func:`list_price_cover`, ties to the lower index), so the SKUs that need a slot
    most see it free. ``cover`` has shape ``(n_paths, n_skus)``; returns SKU indices of the
    same shape."""
    return np.argsort(-cover, axis=1, kind="stable")


def budget_features(
    remaining: np.ndarray,
    max_promoted: np.ndarray,
    n_skus: int,
    position: int,
    need_after: np.ndarray,
) -> np.ndarray:
    """The :data:`BUDGET_FIELDS` of the SKU deciding at ``position`` in each path.

    Parameters
    ----------
    remaining : ndarray of int of shape (n_paths,)
        Slots left before this SKU decides.
    max_promoted : ndarray of int of shape (n_paths,)
        The limit ``K`` per path.
    n_skus : int
        ``N``, the SKUs per path.
    position : int
        How many SKUs of the path decided before this one this week.
    need_after : ndarray of int of shape (n_paths,)
        Overstocked SKUs deciding after this one (:func:`need_after`).
    """
    rem = np.asarray(remaining, float)
    k = np.maximum(np.asarray(max_promoted, float), 1.0)
    cols = (
        rem / k,
        np.minimum(rem / max(n_skus - position, 1), 1.0),
        k / n_skus,
        np.full(rem.shape, position / n_skus),
        np.asarray(need_after, float) / n_skus,
    )
    out = np.stack(cols, axis=1)
    return np.clip(out, BUDGET_LOW, BUDGET_HIGH).astype(np.float32)


def budget_mask(
    masks: np.ndarray, promo: np.ndarray, remaining: np.ndarray, stock: np.ndarray
) -> np.ndarray:
    """The rules' masks of the SKUs deciding now, with the limit on top: no promotion when no
    slot is left, and only the no-promotion action for a sold-out SKU (it takes no slot).

    ``masks`` ``(n, n_actions)``, ``remaining`` and ``stock`` ``(n,)``; returns a new array.
    """
    out = np.array(masks, dtype=bool, copy=True)
    out[np.asarray(remaining) <= 0] &= ~promo
    out[np.asarray(stock) <= 0] = False
    out[:, OFF_ACTION] |= (np.asarray(remaining) <= 0) | (np.asarray(stock) <= 0)
    return out


class SlotPrior(Protocol):
    """Per-SKU values that price the shared slots (:class:`agents.lagrangian.SlotPrices`):
    with one, the sequential allocator orders a week's SKUs by :meth:`advantages` and
    appends :meth:`regrets` to each deciding SKU's observation (:func:`prior_bounds`)."""

    n_actions: int
    scale: float
    """What a regret or an advantage over :func:`stock_value` is multiplied by."""

    def advantages(self, sku: np.ndarray, context: PolicyContext) -> np.ndarray:
        """Advantage of a promotion this week per row (``-inf`` when the SKU is sold out)."""
        ...

    def regrets(self, sku: np.ndarray, context: PolicyContext, masks: np.ndarray) -> np.ndarray:
        """Each allowed action's regret against the best allowed one, in [-1, 0]."""
        ...


N_RIVAL = 3
"""Fields :func:`rival_features` appends after the regrets."""


def prior_bounds(n_actions: int) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of the fields a :class:`SlotPrior` adds after the budget fields: its regrets
    (``n_actions``, in [-1, 0]), then :func:`rival_features` (in [-1, 1] and [0, 1])."""
    low = np.concatenate([-np.ones(n_actions), [-1.0, -1.0, 0.0]]).astype(np.float32)
    high = np.concatenate([np.zeros(n_actions), [1.0, 1.0, 1.0]]).astype(np.float32)
    return low, high


def stock_value(context: PolicyContext) -> np.ndarray:
    """Per row: stock on hand (at least one unit) times list price, the unit a
    :class:`SlotPrior`'s regrets and advantages are measured in."""
    return np.maximum(np.asarray(context.decision.stock, float), 1.0) * np.asarray(
        context.catalog.list_price, float
    )


def scaled_advantages(advantages: np.ndarray, context: PolicyContext, scale: float) -> np.ndarray:
    """:meth:`SlotPrior.advantages` over :func:`stock_value`, times the prior's ``scale``
    (its regrets'), clipped to [-1, 1]; a sold-out SKU reads -1."""
    adv = np.asarray(advantages, float)
    out = np.clip(scale * np.where(np.isfinite(adv), adv, -np.inf) / stock_value(context), -1, 1)
    return np.where(np.isfinite(adv), out, -1.0)


def rival_features(scaled: np.ndarray, order: np.ndarray, position: int) -> np.ndarray:
    """What the SKU deciding at ``position`` competes with, ``(n_paths, N_RIVAL)``: its own
    scaled advantage (:func:`scaled_advantages`), the largest among the SKUs deciding after it
    (-1 when none), and how many of those have a positive one, over ``N``."""
    ranked = np.take_along_axis(np.asarray(scaled, float), order, axis=1)
    n = ranked.shape[1]
    later = ranked[:, position + 1 :]
    best_later = later.max(axis=1) if later.shape[1] else np.full(ranked.shape[0], -1.0)
    cols = (ranked[:, position], best_later, (later > 0).sum(axis=1) / n)
    return np.stack(cols, axis=1).astype(np.float32)


def advantage_order(advantages: np.ndarray) -> np.ndarray:
    """Decision order by :meth:`SlotPrior.advantages`, ``(n_paths, n_skus)``: largest first
    (ties to the lower index), so that taking a slot while one is left is the prior's plan."""
    return np.argsort(-np.asarray(advantages, float), axis=1, kind="stable")


OVERSTOCKED = 1.0
"""A SKU whose :func:`list_price_cover` exceeds this cannot sell out at list price."""


def need_after(cover: np.ndarray, order: np.ndarray, position: int) -> np.ndarray:
    """Per path: SKUs deciding after ``position`` (in ``order``) that are overstocked
    (:func:`list_price_cover` above :data:`OVERSTOCKED`; ``cover`` ``(n_paths, n_skus)``)."""
    later = np.take_along_axis(cover, order, axis=1)[:, position + 1 :]
    return (later > OVERSTOCKED).sum(axis=1)


class SlotPolicy(Protocol):
    """What :meth:`CategoryEnv.play` needs of a policy (an :class:`agents.policy.Policy` is
    one): ``act`` over every slot of every path at once."""

    def act(
        self, observations: np.ndarray, masks: np.ndarray, context: PolicyContext | None = None
    ) -> np.ndarray: ...


@dataclass
class CategoryResult:
    """What :meth:`CategoryEnv.play` measured.

    Attributes
    ----------
    totals : DataFrame
        One row per path: the category's episode totals (:data:`SUM_COLUMNS` summed over its
        SKUs), ``sell_through`` of the category's stock, ``budget_violations`` and ``path``.
    sku_totals : DataFrame
        The batched env's per-slot totals (one row per SKU and path).
    promoted : ndarray of int of shape (n_paths, horizon_weeks)
        SKUs on promotion per path and week, after the env's enforcement.
    """

    totals: pd.DataFrame
    sku_totals: pd.DataFrame
    promoted: np.ndarray


class CategoryEnv:
    """``n_paths`` CRN copies of a category of SKUs under a weekly promotion limit.

    Parameters
    ----------
    catalog : Catalog
        The category's ``n_skus`` SKUs.
    rules : RulesConfig
        Per-SKU rules; must pass :func:`check_budget_rules`.
    horizon_weeks : int
    max_promoted : int
        At most this many SKUs on promotion per week (``1 <= max_promoted``).
    n_paths : int
        Demand paths (category episodes).
    seed : int
        Seed of the paths (common random numbers: slot ``p * n_skus + i``).
    """

    def __init__(
        self,
        catalog: Catalog,
        rules: RulesConfig,
        horizon_weeks: int,
        *,
        max_promoted: int,
        n_paths: int,
        seed: int,
    ) -> None:
        check_budget_rules(rules)
        if max_promoted < 1:
            raise ConfigError(f"max_promoted = {max_promoted}; expected >= 1")
        if n_paths < 1:
            raise ConfigError(f"n_paths = {n_paths}; expected >= 1")
        self.catalog, self.rules, self.horizon = catalog, rules, int(horizon_weeks)
        self.n_skus, self.max_promoted, self.n_paths = catalog.n_skus, int(max_promoted), n_paths
        self.seed = seed
        self.promo = promo_actions(rules)

    def play(self, policy: SlotPolicy) -> CategoryResult:
        """Play a policy (an :class:`agents.policy.Policy`-like ``act(obs, masks, ctx)`` over
        all slots) on the paths; the limit is enforced as the module docstring says."""
        env = BatchedMarkdownEnv(
            EnvConfig(
                horizon_weeks=self.horizon,
                rules=self.rules,
                catalog=self.catalog,
                invalid_action="hold",
                # every SKU plays the whole horizon (a sold-out slot must not restart and
                # compete for the path's slots with a new episode)
                end_on_sellout=False,
            ),
            n_slots=self.n_paths * self.n_skus,
            seed=self.seed,
            fixed_skus=True,
        )
        reset = getattr(policy, "reset", None)
        if reset is not None:
            reset(None)
        promoted = np.zeros((self.n_paths, self.horizon), dtype=np.int64)
        denied = np.zeros(self.n_paths, dtype=np.int64)
        week = [0]

        def act(obs: np.ndarray, masks: np.ndarray, ctx: PolicyContext) -> np.ndarray:
            a = np.asarray(policy.act(obs, masks, ctx), dtype=np.int64)
            # a SKU with nothing left on the shelf is not on promotion (not a violation)
            a = np.where(ctx.decision.stock <= 0, OFF_ACTION, a)
            is_promo = self.promo[a].reshape(self.n_paths, self.n_skus)
            left = remaining_before(is_promo.astype(np.int64), self.max_promoted)
            over = is_promo & (left <= 0)
            denied[:] += over.sum(axis=1)
            a = np.where(over.reshape(-1), OFF_ACTION, a)
            promoted[:, week[0]] = (is_promo & ~over).sum(axis=1)
            week[0] += 1
            return a

        sku_totals = env.evaluate(act, episodes_per_slot=1)
        env.close()
        path = sku_totals["slot"].to_numpy() // self.n_skus
        totals = sku_totals.groupby(path)[list(SUM_COLUMNS)].sum()
        totals["sell_through"] = 1.0 - totals["leftover_units"] / totals["initial_stock"]
        totals["budget_violations"] = denied
        totals.index.name = "path"
        return CategoryResult(totals.reset_index(), sku_totals, promoted)
