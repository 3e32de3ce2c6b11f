"""One week of a markdown episode for ``n`` SKU slots: the bookkeeping both envs share.

:func:`play_week` decodes the actions, calls :func:`simulator.market.step` (the market's only
arithmetic), charges the sell-through penalty at exit, moves the rules' state with
:func:`envs.rules.advance` and computes the normalised reward. The single-SKU env calls it with
``n = 1`` and the batched env with ``n = n_slots``, so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.config import DecisionState, RulesConfig
from envs.rules import advance, exit_penalty
from simulator import market
from simulator.demand import Catalog
from simulator.market import MarketState, StepResult

# Per-week terms reported in ``info`` and summed into episode totals.
WEEK_TERMS: tuple[str, ...] = (
    "units_sold",
    "units_returned",
    "lost_sales",
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


@dataclass
class WeekOutcome:
    """What one week did to ``n`` slots (arrays of shape ``(n,)``).

    Attributes
    ----------
    decision, market : DecisionState, MarketState
        States after the week.
    result : StepResult
        The market's accounting, each term separately.
    discount, coupon : ndarray of float
        Depths applied (shares of list price).
    exit_penalty : ndarray of float
        Sell-through penalty charged this week (non-zero only at exit, penalty mode).
    objective : ndarray of float
        ``profit - exit_penalty``: what the agents maximise, in currency.
    margin_given_away : ndarray of float
        ``units_sold * list_price * (discount + paid coupon)``: margin given away against list
        (the coupon only on the units of the households it reaches, see
        :func:`simulator.market.paid_coupon_depth`).
    reward : ndarray of float
        ``objective / reward_scale``.
    terminated : ndarray of bool
        The exit week was played, or the stock ran out (nothing is left to decide).
    """

    decision: DecisionState
    market: MarketState
    result: StepResult
    discount: np.ndarray
    coupon: np.ndarray
    exit_penalty: np.ndarray
    objective: np.ndarray
    margin_given_away: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray

    def term(self, name: str) -> np.ndarray:
        """The per-slot value of one of :data:`WEEK_TERMS`."""
        if hasattr(self.result, name):
            return np.asarray(getattr(self.result, name))
        return np.asarray(getattr(self, name))


def reward_scale(catalog: Catalog, initial_stock: np.ndarray | None = None) -> np.ndarray:
    """Initial stock value ``initial_stock * list_price`` (``list_price`` when no stock).

    Rewards are profits divided by it, so an episode's return is of order one for every SKU.
    """
    stock = catalog.initial_stock if initial_stock is None else np.asarray(initial_stock)
    return np.maximum(stock, 1.0) * catalog.list_price


def play_week(
    catalog: Catalog,
    rules: RulesConfig,
    decision: DecisionState,
    market_state: MarketState,
    actions: np.ndarray,
    rng: np.random.Generator,
    *,
    scale: np.ndarray,
    end_on_sellout: bool = True,
) -> WeekOutcome:
    """Play one week for every slot.

    Parameters
    ----------
    catalog : Catalog
        The ``n`` SKUs in the slots.
    rules : RulesConfig
    decision : DecisionState
        The rules' state before the week.
    market_state : MarketState
        The market's state before the week.
    actions : ndarray of int of shape (n,)
        Flat actions (already checked against the mask by the caller).
    rng : numpy.random.Generator
        Passed to :func:`simulator.market.step`.
    scale : ndarray of float of shape (n,)
        Reward normaliser per slot (see :func:`reward_scale`; ones for raw currency).
    end_on_sellout : bool
        Also terminate slots whose stock ran out before exit. Nothing is left to decide then,
        and every later week's reward would be 0, so episode totals do not change.

    Returns
    -------
    WeekOutcome
    """
    a = np.asarray(actions, dtype=np.int64)
    discount, coupon = rules.depths(a)
    exit_now = np.asarray(decision.weeks_left) <= 1
    next_market, result = market.step(
        catalog, market_state, discount, coupon, rng, exit_now=exit_now
    )
    next_decision = advance(rules, decision, a, result.units_sold)
    penalty = np.where(
        exit_now, exit_penalty(rules, catalog, result.stock_after, decision.initial_stock), 0.0
    )
    objective = result.profit - penalty
    terminated = exit_now | (end_on_sellout & (result.stock_after <= 0))
    return WeekOutcome(
        decision=next_decision,
        market=next_market,
        result=result,
        discount=discount,
        coupon=coupon,
        exit_penalty=penalty,
        objective=objective,
        margin_given_away=result.units_sold
        * catalog.list_price
        * (discount + market.paid_coupon_depth(catalog.coupon_coef, catalog.coupon_reach, coupon)),
        reward=objective / scale,
        terminated=terminated,
    )
