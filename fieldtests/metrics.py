"""The metrics of a field test, once: how each is simulated and how each is read from data.

Per SKU over the test weeks, with ``stock`` the SKU's stock at the start of the test (the
run's assumption, carried in the assignment table) and ``cost`` its unit cost:

=============  =============================================  ===============================
metric         from data                                      CUPED covariates
=============  =============================================  ===============================
profit         revenue - coupon cost - cost x units sold      pre-period revenue, stock value
               - cost x stock left (written off)              at cost
sell_through   min(units, stock) / stock                      pre-period units / stock
dead_stock     max(stock - units, 0) (units left)             pre-period units, stock
=============  =============================================  ===============================

In the simulated market the same quantities are the totals of :mod:`planning.outcomes`
(``profit``, which also counts holding cost, refunds and salvage; ``sell_through``;
``leftover_units``). The covariates are the same kind of quantity in the weeks before the test
(at the prices of the time) and the stock the test starts from: no arm can change them, so
CUPED may use them. The stock matters because the profit of a SKU whose stock is written off
at the end is mostly fixed by it.

The guardrails are ``margin_given_away`` (discount and coupon given away against list price)
and ``sell_through``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ingest.errors import ConfigError


@dataclass(frozen=True)
class Metric:
    """One test metric.

    Attributes
    ----------
    name : str
    simulated : str
        Its total in :data:`planning.outcomes.TOTALS`.
    covariates : tuple of str
        Names of its CUPED covariate columns (see :func:`covariates`).
    higher_is_better : bool
    label : str
        Words for reports.
    """

    name: str
    simulated: str
    covariates: tuple[str, ...]
    higher_is_better: bool
    label: str


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "profit",
            "profit",
            ("pre_revenue", "stock_value"),
            True,
            "profit per SKU over the test weeks",
        ),
        Metric("sell_through", "sell_through", ("pre_sell_rate",), True, "sell-through per SKU"),
        Metric(
            "dead_stock",
            "leftover_units",
            ("pre_units", "initial_stock"),
            False,
            "units left per SKU at the end of the test",
        ),
    )
}
GUARDRAILS = ("margin_given_away", "sell_through")


def metric(name: str) -> Metric:
    """The metric called ``name``; a :class:`ConfigError` naming the choices otherwise."""
    if name not in METRICS:
        raise ConfigError(f"metric = {name!r}: expected one of {', '.join(METRICS)}")
    return METRICS[name]


def covariates(
    pre_units: np.ndarray, pre_revenue: np.ndarray, stock: np.ndarray, unit_cost: np.ndarray
) -> dict[str, np.ndarray]:
    """Every CUPED covariate from pre-period units and revenue and the starting stock (arrays
    of any broadcastable shape)."""
    units = np.asarray(pre_units, dtype=float)
    shape = np.broadcast_shapes(units.shape, np.shape(pre_revenue), np.shape(stock),
                                np.shape(unit_cost))  # fmt: skip
    stock = np.broadcast_to(np.asarray(stock, dtype=float), shape)
    rate = np.divide(np.broadcast_to(units, shape), stock, out=np.zeros(shape), where=stock > 0)
    return {
        "pre_revenue": np.broadcast_to(np.asarray(pre_revenue, float), shape),
        "pre_sell_rate": rate,
        "pre_units": np.broadcast_to(units, shape),
        "stock_value": stock * np.asarray(unit_cost, float),
        "initial_stock": stock,
    }


def covariate_matrix(values: dict[str, np.ndarray], m: Metric) -> np.ndarray:
    """The covariates of metric ``m`` stacked on a last axis."""
    return np.stack([np.asarray(values[c], dtype=float) for c in m.covariates], axis=-1)


def observed_arrays(
    units: np.ndarray,
    revenue: np.ndarray,
    discount_amount: np.ndarray,
    coupon_amount: np.ndarray,
    stock: np.ndarray,
    unit_cost: np.ndarray,
) -> dict[str, np.ndarray]:
    """Every metric and guardrail from the test weeks' sales (see the module table); arrays
    of any broadcastable shape."""
    units = np.asarray(units, float)
    stock = np.asarray(stock, float)
    sold = np.minimum(units, stock)
    left = np.maximum(stock - units, 0.0)
    cost = np.asarray(unit_cost, float)
    coupon = np.asarray(coupon_amount, float)
    return {
        "profit": np.asarray(revenue, float) - coupon - cost * units - cost * left,
        "sell_through": np.divide(sold, stock, out=np.zeros(sold.shape), where=stock > 0),
        "dead_stock": left,
        "margin_given_away": np.asarray(discount_amount, float) + coupon,
    }


def observed(
    units: np.ndarray,
    revenue: np.ndarray,
    discount_amount: np.ndarray,
    coupon_amount: np.ndarray,
    stock: np.ndarray,
    unit_cost: np.ndarray,
) -> pd.DataFrame:
    """:func:`observed_arrays` of one value per SKU, as a frame."""
    return pd.DataFrame(
        observed_arrays(units, revenue, discount_amount, coupon_amount, stock, unit_cost)
    )
