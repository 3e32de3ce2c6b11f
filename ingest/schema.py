"""The canonical tables: every source is turned into these, and everything downstream reads
only these.

Each table is a :class:`TableSpec` of :class:`ColumnSpec` entries that carry the name, the
type, the unit and the meaning of every column. ``docs/data.md`` documents the same tables for
people; the two are kept in step by a test.

Conventions
-----------
- ``sku`` is a string everywhere (numeric product ids are converted).
- ``week`` is an integer week index, 1-based, increasing by one per calendar week.
- Money is in the source's currency, per unit where the name says ``price``/``cost``, and in
  totals where it says ``revenue``/``amount``.
- Discounts and coupons are stored as *positive* amounts given away.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

DType = Literal["str", "int", "float", "bool"]


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a canonical table.

    Parameters
    ----------
    name : str
        Column name in the canonical table.
    dtype : {"str", "int", "float", "bool"}
        Logical type. ``int`` columns may be read from floats that hold whole numbers.
    unit : str
        Unit of the values (``"currency/unit"``, ``"units"``, ``"share 0..1"``, ``"-"``).
    description : str
        What the column means.
    required : bool
        Whether a source must provide the column. Optional columns are added (as missing
        values or their ``default``) when absent.
    nullable : bool
        Whether missing values are allowed (they may be imputed by cleaning).
    min_value, max_value : float or None
        Bounds for numeric columns, inclusive (``min_value`` exclusive when
        ``min_inclusive`` is false).
    min_inclusive : bool
        Whether ``min_value`` itself is allowed (a price of 0 is not).
    default : object
        Value used when an optional column is absent.
    """

    name: str
    dtype: DType
    unit: str
    description: str
    required: bool = True
    nullable: bool = False
    min_value: float | None = None
    max_value: float | None = None
    default: object = None
    min_inclusive: bool = True


@dataclass(frozen=True)
class TableSpec:
    """One canonical table: its columns, its key and whether a dataset must have it."""

    name: str
    description: str
    columns: tuple[ColumnSpec, ...]
    key: tuple[str, ...]
    required: bool = True
    example: tuple[dict[str, object], ...] = field(default=())

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    def column(self, name: str) -> ColumnSpec:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name!r} has no column {name!r}")


# Absurdly large values are rejected: a single SKU selling more than this in a week, or a
# price above this, is a unit or parsing error rather than a fact.
MAX_UNITS_PER_WEEK = 1e7
MAX_PRICE = 1e6

_SKU_REF = ColumnSpec("sku", "str", "-", "SKU id; must exist in products.")
"""The ``sku`` column of every table but ``products``: a reference to a product."""
_WEEK = ColumnSpec("week", "int", "week", "Week index.", min_value=0)
"""The ``week`` column of the weekly tables."""

PRODUCTS = TableSpec(
    name="products",
    description="One row per SKU: what it is, what it costs and when it launched.",
    key=("sku",),
    columns=(
        ColumnSpec("sku", "str", "-", "Stock-keeping unit id."),
        ColumnSpec("category", "str", "-", "Product category (demand is pooled within it)."),
        ColumnSpec("department", "str", "-", "Department the category belongs to."),
        ColumnSpec(
            "brand",
            "str",
            "-",
            "Brand name or brand type (e.g. National/Private).",
            required=False,
            nullable=True,
        ),
        ColumnSpec(
            "description",
            "str",
            "-",
            "What the product is, for people reading the outputs (e.g. 'APPLE SAUCE 50 OZ').",
            required=False,
            nullable=True,
        ),
        ColumnSpec(
            "list_price",
            "float",
            "currency/unit",
            "Regular shelf price before any discount. Imputed from sales when missing.",
            required=False,
            nullable=True,
            min_value=0.0,
            max_value=MAX_PRICE,
            # Discounts are shares of the list price: a price of 0 leaves nothing to plan.
            min_inclusive=False,
        ),
        ColumnSpec(
            "unit_cost",
            "float",
            "currency/unit",
            "What one unit cost the retailer. Imputed from the category's median margin "
            "when missing.",
            required=False,
            nullable=True,
            min_value=0.0,
            max_value=MAX_PRICE,
        ),
        ColumnSpec(
            "launch_week",
            "int",
            "week",
            "Week the SKU was first offered. Imputed as its first sale week when missing.",
            required=False,
            nullable=True,
            min_value=0,
        ),
    ),
    example=(
        {
            "sku": "1001",
            "category": "COOKIES",
            "department": "GROCERY",
            "brand": "National",
            "list_price": 3.49,
            "unit_cost": 2.10,
            "launch_week": 1,
        },
    ),
)

SALES = TableSpec(
    name="sales",
    description="Units sold per SKU and week, with what was paid and what was given away.",
    key=("sku", "week"),
    columns=(
        _SKU_REF,
        ColumnSpec("week", "int", "week", "Week index (1-based).", min_value=0),
        ColumnSpec(
            "units",
            "float",
            "units",
            "Units sold in the week (net of nothing).",
            min_value=0.0,
            max_value=MAX_UNITS_PER_WEEK,
        ),
        ColumnSpec(
            "revenue",
            "float",
            "currency",
            "Amount the retailer received, after shelf/loyalty discounts and coupons.",
            min_value=0.0,
            max_value=MAX_UNITS_PER_WEEK * 100,
        ),
        ColumnSpec(
            "discount_amount",
            "float",
            "currency",
            "Shelf or loyalty-card discount given away (positive).",
            required=False,
            min_value=0.0,
            default=0.0,
        ),
        ColumnSpec(
            "coupon_amount",
            "float",
            "currency",
            "Coupon value given away, manufacturer and retailer (positive).",
            required=False,
            min_value=0.0,
            default=0.0,
        ),
        ColumnSpec(
            "returns",
            "float",
            "units",
            "Units returned in the week.",
            required=False,
            min_value=0.0,
            default=0.0,
        ),
    ),
    example=(
        {
            "sku": "1001",
            "week": 12,
            "units": 14.0,
            "revenue": 41.36,
            "discount_amount": 7.50,
            "coupon_amount": 0.0,
            "returns": 0.0,
        },
    ),
)

STOCK = TableSpec(
    name="stock",
    description="On-hand stock per SKU at the end of each week.",
    key=("sku", "week"),
    required=False,
    columns=(
        _SKU_REF,
        _WEEK,
        ColumnSpec(
            "on_hand",
            "float",
            "units",
            "Units on hand at the end of the week.",
            min_value=0.0,
            max_value=MAX_UNITS_PER_WEEK * 10,
        ),
    ),
    example=({"sku": "1001", "week": 12, "on_hand": 180.0},),
)

INTERACTIONS = TableSpec(
    name="interactions",
    description="Online funnel per SKU and week: views, clicks, add-to-cart, purchases.",
    key=("sku", "week"),
    required=False,
    columns=(
        _SKU_REF,
        _WEEK,
        ColumnSpec("views", "float", "events", "Product impressions.", min_value=0.0),
        ColumnSpec("clicks", "float", "events", "Clicks on the product.", min_value=0.0),
        ColumnSpec("add_to_cart", "float", "events", "Add-to-cart events.", min_value=0.0),
        ColumnSpec(
            "purchases", "float", "events", "Purchase events (orders with the SKU).", min_value=0.0
        ),
    ),
    example=(
        {
            "sku": "1001",
            "week": 12,
            "views": 900,
            "clicks": 120,
            "add_to_cart": 30,
            "purchases": 12,
        },
    ),
)

PROMOTIONS = TableSpec(
    name="promotions",
    description="In-store display and mailer promotion intensity per SKU and week.",
    key=("sku", "week"),
    required=False,
    columns=(
        _SKU_REF,
        _WEEK,
        ColumnSpec(
            "display",
            "float",
            "share 0..1",
            "Share of stores with the SKU on display (1 = every store).",
            min_value=0.0,
            max_value=1.0,
        ),
        ColumnSpec(
            "mailer",
            "float",
            "share 0..1",
            "Share of stores featuring the SKU in the mailer.",
            min_value=0.0,
            max_value=1.0,
        ),
    ),
    example=({"sku": "1001", "week": 12, "display": 0.25, "mailer": 0.0},),
)

BASKETS = TableSpec(
    name="baskets",
    description="Transaction lines with household ids, where a source has them "
    "(buyer features, coupon targeting).",
    key=("basket_id", "sku"),
    required=False,
    columns=(
        ColumnSpec("household_id", "str", "-", "Household (loyalty card) id."),
        ColumnSpec("basket_id", "str", "-", "Basket (receipt) id."),
        _SKU_REF,
        _WEEK,
        ColumnSpec("units", "float", "units", "Units in this line.", min_value=0.0),
        ColumnSpec("revenue", "float", "currency", "Amount paid for this line.", min_value=0.0),
    ),
    example=(
        {
            "household_id": "1029",
            "basket_id": "31198570044",
            "sku": "1001",
            "week": 12,
            "units": 2.0,
            "revenue": 5.98,
        },
    ),
)

CALENDAR = TableSpec(
    name="calendar",
    description="The calendar date each week starts on, where the source has dates (the "
    "outputs then date the plan's weeks).",
    key=("week",),
    required=False,
    columns=(
        ColumnSpec("week", "int", "week", "Week index.", min_value=0),
        ColumnSpec("week_start", "str", "date", "First day of the week, as YYYY-MM-DD."),
    ),
    example=({"week": 2, "week_start": "2017-01-02"},),
)

TABLES: dict[str, TableSpec] = {
    t.name: t for t in (PRODUCTS, SALES, STOCK, INTERACTIONS, PROMOTIONS, BASKETS, CALENDAR)
}
REQUIRED_TABLES: tuple[str, ...] = tuple(n for n, t in TABLES.items() if t.required)
