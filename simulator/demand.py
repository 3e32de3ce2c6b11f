"""The demand model's parameters: a :class:`Catalog` of SKUs stored as arrays.

For SKU *i* in simulated week *t*, with discount depth ``d`` and coupon depth ``c`` (both
shares of the list price), expected demand is::

    lam = base_demand * season[week % 52] * (1 - d) ** elasticity
          * coupon_factor * exp(display_coef * display) * exp(mailer_coef * mailer)
          * (price_ratio / ref_price) ** (-ref_price_sensitivity) * (1 - fatigue)
    coupon_factor = (1 - coupon_reach) + coupon_reach * exp(coupon_coef * c)

where ``price_ratio = 1 - d``: a coupon lifts only the share ``coupon_reach`` of demand that
comes from the households it reaches (1.0, the default, is a coupon that reaches every
shopper, ``coupon_factor = exp(coupon_coef * c)``). Units demanded are negative binomial with mean ``lam`` and
variance ``lam + dispersion * lam**2`` (Poisson when ``dispersion == 0``). The arithmetic
lives in :mod:`simulator.market`; this module only holds and validates the parameters.

Every field is an array with one entry per SKU (``season`` has shape ``(n_skus, 52)``), so a
catalog of a million SKUs is a handful of arrays, not a million objects.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ingest.errors import DataError

SEASON_PERIOD = 52

# (field, unit, meaning) — the documentation of every parameter; also used by to_frame().
PARAMETER_DOCS: dict[str, tuple[str, str]] = {
    "sku": ("-", "SKU id."),
    "category": ("-", "Category the SKU's elasticity is pooled within."),
    "list_price": ("currency/unit", "Regular shelf price."),
    "unit_cost": ("currency/unit", "Cost of one unit to the retailer."),
    "base_demand": (
        "units/week",
        "Expected weekly demand at list price, no promotion, season factor 1.",
    ),
    "base_demand_se": ("log units/week", "Standard error of log(base_demand)."),
    "season": ("multiplier", "Seasonal factor per calendar week (52 values, mean about 1)."),
    "elasticity": ("-", "Log-log price elasticity in the discount factor (1 - d); < 0."),
    "elasticity_se": ("-", "Standard error of the elasticity."),
    "elasticity_assumed": (
        "bool",
        "True when the elasticity is a prior (the SKU's price never varied enough to fit it), "
        "not a per-SKU fit.",
    ),
    "coupon_coef": ("1/depth", "Coupon lift: demand x exp(coupon_coef * c)."),
    "coupon_coef_se": ("1/depth", "Standard error of coupon_coef."),
    "coupon_assumed": ("bool", "True when coupon_coef is a documented prior, not a fit."),
    "coupon_reach": (
        "share 0..1",
        "Share of demand a coupon reaches (its target households' share); only that share is "
        "lifted and pays the coupon. 1 = every shopper.",
    ),
    "display_coef": ("1/share", "Display lift: demand x exp(display_coef * display share)."),
    "display_coef_se": ("1/share", "Standard error of display_coef."),
    "display_assumed": ("bool", "True when display_coef is a prior, not a fit."),
    "mailer_coef": ("1/share", "Mailer lift: demand x exp(mailer_coef * mailer share)."),
    "mailer_coef_se": ("1/share", "Standard error of mailer_coef."),
    "mailer_assumed": ("bool", "True when mailer_coef is a prior, not a fit."),
    "dispersion": (
        "-",
        "Negative-binomial overdispersion alpha (variance = mu + alpha mu^2); 0 means Poisson.",
    ),
    "ref_price_sensitivity": (
        "-",
        "Reference-price effect gamma >= 0: demand x "
        "(price / reference price)^(-gamma); 0 switches memory off.",
    ),
    "ref_price_memory": (
        "share 0..1",
        "Weight of last week's reference price in the next one: ref' = m * ref + (1 - m) * price.",
    ),
    "fatigue_rate": ("share/week", "Promotion fatigue added per discounted week; 0 = off."),
    "fatigue_decay": ("share 0..1", "Share of fatigue that carries to the next week."),
    "return_rate": ("share 0..1", "Share of units sold that are returned (refunded, not resold)."),
    "holding_cost_per_unit_week": ("currency/unit/week", "Cost of holding one unit a week."),
    "salvage_value_per_unit": ("currency/unit", "Value of a unit left at the exit week."),
    "initial_stock": ("units", "Stock on hand when the plan starts."),
    "start_week": ("week 0..51", "Calendar week (season index) of the plan's first week."),
    "age_weeks": ("weeks", "Weeks since launch when the plan starts."),
    "risk_score": ("share 0..1", "Dead-stock risk score (NaN when not scored)."),
}

_STR_FIELDS = ("sku", "category")
_BOOL_FIELDS = ("elasticity_assumed", "coupon_assumed", "display_assumed", "mailer_assumed")
_INT_FIELDS = ("start_week", "age_weeks")


@dataclass
class Catalog:
    """Parameters of ``n_skus`` SKUs, one array entry per SKU (see :data:`PARAMETER_DOCS`)."""

    sku: np.ndarray
    category: np.ndarray
    list_price: np.ndarray
    unit_cost: np.ndarray
    base_demand: np.ndarray
    base_demand_se: np.ndarray
    season: np.ndarray
    elasticity: np.ndarray
    elasticity_se: np.ndarray
    elasticity_assumed: np.ndarray
    coupon_coef: np.ndarray
    coupon_coef_se: np.ndarray
    coupon_assumed: np.ndarray
    display_coef: np.ndarray
    display_coef_se: np.ndarray
    display_assumed: np.ndarray
    mailer_coef: np.ndarray
    mailer_coef_se: np.ndarray
    mailer_assumed: np.ndarray
    dispersion: np.ndarray
    ref_price_sensitivity: np.ndarray
    ref_price_memory: np.ndarray
    fatigue_rate: np.ndarray
    fatigue_decay: np.ndarray
    return_rate: np.ndarray
    holding_cost_per_unit_week: np.ndarray
    salvage_value_per_unit: np.ndarray
    initial_stock: np.ndarray
    start_week: np.ndarray
    age_weeks: np.ndarray
    risk_score: np.ndarray
    # Last and optional: catalogs built field by field before reach existed (frozen test
    # data, other callers) get coupons that reach every shopper, the model they were made for.
    coupon_reach: np.ndarray = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.coupon_reach is None:
            self.coupon_reach = np.ones(self.sku.shape[0])

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(cls, *, n_skus: int | None = None, **values: Any) -> Catalog:
        """Build a catalog from scalars or arrays, filling unspecified fields with defaults.

        Scalars are broadcast to ``n_skus``. Defaults: no coupon/display/mailer effect, a
        coupon reaching every shopper,
        Poisson noise, no memory or fatigue, no returns, flat season, no holding cost,
        salvage 0, start week 0, age 52 weeks, risk NaN.
        """
        unknown = set(values) - set(PARAMETER_DOCS)
        if unknown:
            raise DataError(
                f"unknown catalog field(s) {sorted(unknown)}; "
                f"expected some of {sorted(PARAMETER_DOCS)}"
            )
        if n_skus is None:
            lengths = [
                np.shape(v)[0] for k, v in values.items() if np.ndim(v) >= 1 and k != "season"
            ]
            if "season" in values and np.ndim(values["season"]) == 2:
                lengths.append(np.shape(values["season"])[0])
            n_skus = lengths[0] if lengths else 1
        n = int(n_skus)
        defaults: dict[str, Any] = {
            "sku": np.array([f"sku{i}" for i in range(n)], dtype=object),
            "category": "all",
            "list_price": 1.0,
            "unit_cost": 0.5,
            "base_demand": 1.0,
            "base_demand_se": 0.0,
            "season": 1.0,
            "elasticity": -2.0,
            "elasticity_se": 0.0,
            # a default elasticity nobody supplied is an assumption, one that was given is not
            "elasticity_assumed": "elasticity" not in values,
            "coupon_coef": 0.0,
            "coupon_coef_se": 0.0,
            "coupon_assumed": True,
            "coupon_reach": 1.0,
            "display_coef": 0.0,
            "display_coef_se": 0.0,
            "display_assumed": True,
            "mailer_coef": 0.0,
            "mailer_coef_se": 0.0,
            "mailer_assumed": True,
            "dispersion": 0.0,
            "ref_price_sensitivity": 0.0,
            "ref_price_memory": 0.0,
            "fatigue_rate": 0.0,
            "fatigue_decay": 0.0,
            "return_rate": 0.0,
            "holding_cost_per_unit_week": 0.0,
            "salvage_value_per_unit": 0.0,
            "initial_stock": 100.0,
            "start_week": 0,
            "age_weeks": 52,
            "risk_score": np.nan,
        }
        defaults.update(values)
        arrays: dict[str, np.ndarray] = {}
        for name in PARAMETER_DOCS:
            v = defaults[name]
            if name == "season":
                arr = np.asarray(v, dtype=float)
                if arr.ndim == 0:
                    arr = np.full((n, SEASON_PERIOD), float(arr))
                elif arr.ndim == 1:
                    arr = np.broadcast_to(arr, (n, SEASON_PERIOD)).copy()
            elif name in _STR_FIELDS:
                arr = np.asarray(v, dtype=object)
                if arr.ndim == 0:
                    arr = np.full(n, arr.item(), dtype=object)
                arr = arr.astype(str).astype(object)
            else:
                dtype = bool if name in _BOOL_FIELDS else int if name in _INT_FIELDS else float
                arr = np.asarray(v, dtype=dtype)
                if arr.ndim == 0:
                    arr = np.full(n, arr.item(), dtype=dtype)
            arrays[name] = arr
        catalog = cls(**arrays)
        catalog.validate()
        return catalog

    # ------------------------------------------------------------------ basics
    @property
    def n_skus(self) -> int:
        return int(self.sku.shape[0])

    def __len__(self) -> int:
        return self.n_skus

    def validate(self) -> Catalog:
        """Check shapes and ranges; raise :class:`DataError` naming the field and SKU."""
        n = self.n_skus
        for f in fields(self):
            arr = getattr(self, f.name)
            want = (n, SEASON_PERIOD) if f.name == "season" else (n,)
            if arr.shape != want:
                raise DataError(f"catalog field {f.name!r} has shape {arr.shape}, expected {want}")

        def check(name: str, ok: np.ndarray, expected: str) -> None:
            bad = np.flatnonzero(~ok)
            if bad.size:
                i = int(bad[0])
                value = getattr(self, name)[i]
                raise DataError(
                    f"catalog field {name!r} for sku {self.sku[i]!r} is {value!r}; "
                    f"expected {expected} ({bad.size} SKU(s) affected)"
                )

        check("list_price", np.isfinite(self.list_price) & (self.list_price > 0), "> 0")
        check("unit_cost", np.isfinite(self.unit_cost) & (self.unit_cost >= 0), ">= 0")
        check("base_demand", np.isfinite(self.base_demand) & (self.base_demand >= 0), ">= 0")
        check("elasticity", np.isfinite(self.elasticity) & (self.elasticity <= 0), "<= 0")
        check("dispersion", np.isfinite(self.dispersion) & (self.dispersion >= 0), ">= 0")
        check("ref_price_sensitivity", self.ref_price_sensitivity >= 0, ">= 0")
        check(
            "ref_price_memory",
            (self.ref_price_memory >= 0) & (self.ref_price_memory < 1),
            "in [0, 1)",
        )
        check("fatigue_rate", (self.fatigue_rate >= 0) & (self.fatigue_rate < 1), "in [0, 1)")
        check("fatigue_decay", (self.fatigue_decay >= 0) & (self.fatigue_decay < 1), "in [0, 1)")
        check("return_rate", (self.return_rate >= 0) & (self.return_rate < 1), "in [0, 1)")
        check("coupon_reach", (self.coupon_reach >= 0) & (self.coupon_reach <= 1), "in [0, 1]")
        check("initial_stock", np.isfinite(self.initial_stock) & (self.initial_stock >= 0), ">= 0")
        check("holding_cost_per_unit_week", self.holding_cost_per_unit_week >= 0, ">= 0")
        check("salvage_value_per_unit", self.salvage_value_per_unit >= 0, ">= 0")
        season_ok = np.all(np.isfinite(self.season) & (self.season >= 0), axis=1)
        check("season", season_ok, "finite and >= 0 in every week")
        return self

    def take(self, index: np.ndarray | slice | list[int]) -> Catalog:
        """Return the SKUs at ``index`` as a new catalog (arrays are copied)."""
        return Catalog(**{f.name: np.array(getattr(self, f.name)[index]) for f in fields(self)})

    def assign(self, slots: np.ndarray, source: Catalog, index: np.ndarray) -> None:
        """Overwrite this catalog's rows ``slots`` with ``source``'s rows ``index`` in place.

        Used by batched environments that keep one slot catalog and draw a new SKU into a
        slot when its episode ends.
        """
        for f in fields(self):
            getattr(self, f.name)[slots] = getattr(source, f.name)[index]

    def replace(self, **changes: Any) -> Catalog:
        """Return a copy with some fields replaced (scalars are broadcast)."""
        out = replace(self)
        for name, value in changes.items():
            if name not in PARAMETER_DOCS:
                raise DataError(f"unknown catalog field {name!r}")
            current = getattr(self, name)
            arr = np.asarray(value, dtype=current.dtype)
            setattr(out, name, np.broadcast_to(arr, current.shape).copy())
        return out.validate()

    # ------------------------------------------------------------------ uncertainty
    def sample(self, rng: np.random.Generator) -> Catalog:
        """Draw every SKU's parameters from their fitted uncertainty.

        Elasticity and the lift coefficients are normal around the estimate with their
        standard errors (elasticity clipped to <= -0.05 so a discount never lowers demand);
        base demand is log-normal with ``base_demand_se``. Everything else is kept.
        """
        n = self.n_skus
        el = self.elasticity + self.elasticity_se * rng.standard_normal(n)
        out = replace(self)
        out.elasticity = np.minimum(el, -0.05)
        out.coupon_coef = np.maximum(
            self.coupon_coef + self.coupon_coef_se * rng.standard_normal(n), 0.0
        )
        out.display_coef = self.display_coef + self.display_coef_se * rng.standard_normal(n)
        out.mailer_coef = self.mailer_coef + self.mailer_coef_se * rng.standard_normal(n)
        out.base_demand = self.base_demand * np.exp(
            self.base_demand_se * rng.standard_normal(n) - 0.5 * self.base_demand_se**2
        )
        return out

    # ------------------------------------------------------------------ I/O
    def to_frame(self) -> pd.DataFrame:
        """One row per SKU; ``season`` becomes columns ``season_00`` .. ``season_51``."""
        data: dict[str, Any] = {
            name: getattr(self, name) for name in PARAMETER_DOCS if name != "season"
        }
        for w in range(SEASON_PERIOD):
            data[f"season_{w:02d}"] = self.season[:, w]
        return pd.DataFrame(data)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, *, source: str = "catalog") -> Catalog:
        """Inverse of :meth:`to_frame`. Missing optional fields take the defaults of
        :meth:`build`; a missing ``sku``, ``base_demand`` or ``elasticity`` is an error."""
        for needed in ("sku", "base_demand", "elasticity"):
            if needed not in frame.columns:
                raise DataError(
                    f"{source}: column {needed!r} is missing; a catalog needs at "
                    f"least sku, base_demand and elasticity"
                )
        values: dict[str, Any] = {
            name: frame[name].to_numpy()
            for name in PARAMETER_DOCS
            if name != "season" and name in frame.columns
        }
        season_cols = [f"season_{w:02d}" for w in range(SEASON_PERIOD)]
        if all(c in frame.columns for c in season_cols):
            values["season"] = frame[season_cols].to_numpy(dtype=float)
        try:
            return cls.build(n_skus=len(frame), **values)
        except DataError as err:
            raise DataError(f"{source}: {err}") from None

    def season_at(self, week: np.ndarray) -> np.ndarray:
        """Seasonal factor of each SKU at calendar week ``week`` (array of shape (n_skus,))."""
        return self.season[np.arange(self.n_skus), np.asarray(week) % SEASON_PERIOD]


def read_catalog(path: str | Path) -> Catalog:
    """Read a catalog file with clear errors for a missing, unreadable or invalid file."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"catalog {str(p)!r} not found; write one with 'deadstock demand fit'")
    if p.suffix.lower() not in (".parquet", ".csv"):
        raise DataError(f"catalog {str(p)!r}: expected a .parquet or .csv file")
    try:
        frame = pd.read_parquet(p) if p.suffix.lower() == ".parquet" else pd.read_csv(p)
    except Exception as err:  # noqa: BLE001 - any reader failure is the file's fault
        raise DataError(
            f"catalog {str(p)!r} could not be read as {p.suffix or 'a table'}: {err}"
        ) from None
    if frame.empty:
        raise DataError(f"catalog {str(p)!r} has no rows")
    return Catalog.from_frame(frame, source=f"catalog {str(p)!r}")
