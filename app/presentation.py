"""Making the exported tables readable: rounding, currency, product names, calendar dates.

The tables of :mod:`app.exports` are read by people and by a price system. Money is rounded
to cents and carries its currency (``currency`` column, from ``[export] currency``); shares
(discounts, risk, sell-through) to four decimals; expected units to two. SKUs carry their
product description and department (the products table), and plan weeks their start date
where the data has a calendar (:data:`ingest.schema.CALENDAR`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ingest.errors import DataError
from planning.outcomes import SimulationSettings

MONEY_DECIMALS = 2
RATE_DECIMALS = 4
UNIT_DECIMALS = 2

DEFAULT_CURRENCY = "USD"
"""Complete Journey is a US retailer."""

DAYS_PER_WEEK = 7


@dataclass(frozen=True)
class TableContext:
    """What the tables need besides the simulated outcomes, to be read by people.

    Attributes
    ----------
    currency : str
        Currency of every amount (an ISO code such as ``"USD"``).
    labels : DataFrame or None
        ``sku``, ``description``, ``department`` per SKU (see :func:`product_labels`).
    week_starts : sequence of str or None
        Start date (``YYYY-MM-DD``) of each plan week, first week first.
    settings : SimulationSettings or None
        How the outcomes were simulated (stated in ``sku_summary``).
    """

    currency: str = DEFAULT_CURRENCY
    labels: pd.DataFrame | None = None
    week_starts: Sequence[str] | None = None
    settings: SimulationSettings | None = None

    def label_columns(self, skus: Iterable[str]) -> pd.DataFrame:
        """``description`` and ``department`` of ``skus`` (empty text where unknown)."""
        if (
            isinstance(skus, pd.Series | pd.Index)
            and isinstance(skus.dtype, pd.StringDtype)
            and not skus.hasnans
        ):
            # already text: the same index without a per-element ``str`` (seconds a million)
            index = pd.Index(skus.to_numpy())
        else:
            index = pd.Index([str(s) for s in skus])
        if self.labels is None:
            return pd.DataFrame({"description": "", "department": ""}, index=index)
        lab = self.labels.drop_duplicates("sku").set_index("sku")
        return lab.reindex(index)[["description", "department"]].fillna("")

    def week_start_column(self, week: np.ndarray) -> list[str]:
        """The start date of each 1-based plan week in ``week`` (empty text without a
        calendar)."""
        if not self.week_starts:
            return [""] * len(week)
        starts = list(self.week_starts)
        return [starts[int(w) - 1] if 1 <= int(w) <= len(starts) else "" for w in week]


def product_labels(products: pd.DataFrame) -> pd.DataFrame:
    """``sku``, ``description`` and ``department`` from a products table: the
    ``description`` column, else the category, so every SKU reads as something."""
    sku = products["sku"].astype(str)
    desc = products["description"] if "description" in products.columns else None
    cat = products["category"].astype("string") if "category" in products.columns else None
    text = pd.Series(pd.NA, index=products.index, dtype="string")
    if desc is not None:
        text = desc.astype("string")
    if cat is not None:
        text = text.fillna(cat)
    dept = (
        products["department"].astype("string")
        if "department" in products.columns
        else pd.Series(pd.NA, index=products.index, dtype="string")
    )
    return pd.DataFrame(
        {"sku": sku, "description": text.fillna("").astype(str), "department": dept.fillna("")}
    )


def plan_week_starts(
    calendar: pd.DataFrame | None, last_week: int, horizon: int
) -> list[str] | None:
    """Start dates of the plan's weeks: plan week ``t`` is data week ``last_week + t``, which
    starts ``7 t`` days after the last data week's start. ``None`` without a calendar row
    for ``last_week``."""
    if calendar is None or calendar.empty:
        return None
    cal = calendar.assign(week=pd.to_numeric(calendar["week"], errors="coerce"))
    row = cal[cal["week"] == last_week]
    if row.empty:
        return None
    text = str(row["week_start"].iloc[0])
    try:
        last_start = dt.date.fromisoformat(text[:10])
    except ValueError:
        raise DataError(
            f"calendar: week_start {text!r} of week {last_week} is not a YYYY-MM-DD date"
        ) from None
    return [
        (last_start + dt.timedelta(days=DAYS_PER_WEEK * t)).isoformat()
        for t in range(1, horizon + 1)
    ]


def round_columns(
    frame: pd.DataFrame,
    *,
    money: Iterable[str] = (),
    rates: Iterable[str] = (),
    units: Iterable[str] = (),
) -> pd.DataFrame:
    """``frame`` with money rounded to cents, rates to four decimals and units to two (no
    ``1.9900000000000002`` in a table; ``+ 0.0`` turns a rounded ``-0.0`` into ``0.0``)."""
    out = frame.copy()
    for cols, decimals in ((money, MONEY_DECIMALS), (rates, RATE_DECIMALS), (units, UNIT_DECIMALS)):
        for col in cols:
            if col in out.columns:
                out[col] = np.round(out[col].astype(float), decimals) + 0.0
    return out


SETTING_NAMES: dict[str, str] = {
    "CleaningConfig.default_margin": "a fixed default of the data cleaning",
}
"""Setting names that library notes cite and the run config does not expose, and what a
reader of the run's outputs should read instead. Names of the demand fit's settings
(``fit.stock.weeks_of_cover``, ``fit.cost_share``) are written as the run config's keys
(``[fit.stock] weeks_of_cover``, ``[fit] cost_share``) by :func:`readable_note`."""

#: A setting name of the fit's config as a library note cites it: ``fit.<key>`` or
#: ``fit.stock.<key>``.
_FIT_SETTING = re.compile(r"\bfit\.(?:(stock)\.)?([a-z_]+)\b")


def readable_note(note: str) -> str:
    """``note`` with every internal setting name replaced: the fit's settings by the run
    config's ``[section] key``, the others by :data:`SETTING_NAMES`."""
    for internal, shown in SETTING_NAMES.items():
        note = note.replace(internal, shown)
    return _FIT_SETTING.sub(
        lambda m: f"[fit.{m.group(1)}] {m.group(2)}" if m.group(1) else f"[fit] {m.group(2)}",
        note,
    )
