"""A weekly plan of discount and coupon depths for a set of SKUs, and its file forms.

:class:`Schedule` is what a price system executes: one depth per SKU and week. It is built
from a policy (:mod:`planning.from_policy`), from a fixed-policy string (:func:`parse_policy`)
or read from a file (:func:`read_schedule`), and simulated by :mod:`planning.outcomes`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ingest.errors import ConfigError, DataError
from ingest.panel import MAX_DISCOUNT_DEPTH


@dataclass(frozen=True)
class Schedule:
    """A weekly plan for ``n_skus`` SKUs over ``horizon`` weeks.

    Parameters
    ----------
    sku : ndarray of str, shape (n_skus,)
    discount : ndarray of float, shape (n_skus, horizon)
        Discount depth per week as a share of list price.
    coupon : ndarray of float, shape (n_skus, horizon)
        Coupon depth per week as a share of list price.
    name : str
        Which policy produced it (``"ppo"``, ``"no_markdown"``, ...).
    """

    sku: np.ndarray
    discount: np.ndarray
    coupon: np.ndarray
    name: str = "schedule"

    def __post_init__(self) -> None:
        d, c = np.asarray(self.discount), np.asarray(self.coupon)
        if d.ndim != 2 or d.shape != c.shape or d.shape[0] != len(self.sku):
            raise DataError(
                f"schedule {self.name!r}: discount {d.shape} and coupon {c.shape} must both be "
                f"(n_skus={len(self.sku)}, horizon)"
            )
        if (
            np.any(~np.isfinite(d))
            or np.any(d < 0)
            or np.any(c < 0)
            or np.any(d + c >= MAX_DISCOUNT_DEPTH)
        ):
            raise DataError(
                f"schedule {self.name!r}: depths must be finite, >= 0, with discount + coupon "
                f"< {MAX_DISCOUNT_DEPTH}; got discount in [{d.min()}, {d.max()}], coupon in [{c.min()}, {c.max()}]"
            )

    @property
    def horizon(self) -> int:
        return int(np.asarray(self.discount).shape[1])

    @classmethod
    def constant(
        cls, sku: np.ndarray, horizon: int, discount: float = 0.0, name: str = ""
    ) -> Schedule:
        n = len(sku)
        return cls(
            sku=np.asarray(sku, dtype=object),
            discount=np.full((n, horizon), float(discount)),
            coupon=np.zeros((n, horizon)),
            name=name or f"fixed:{discount:g}",
        )

    def to_frame(self) -> pd.DataFrame:
        """Long format: one row per (sku, week) with ``week`` 1..horizon."""
        n, h = np.asarray(self.discount).shape
        return pd.DataFrame(
            {
                "sku": np.repeat(np.asarray(self.sku, dtype=object), h),
                "week": np.tile(np.arange(1, h + 1), n),
                "discount": np.asarray(self.discount, dtype=float).ravel(),
                "coupon": np.asarray(self.coupon, dtype=float).ravel(),
            }
        )

    @classmethod
    def from_frame(
        cls, frame: pd.DataFrame, *, name: str = "schedule", source: str = "schedule"
    ) -> Schedule:
        """Inverse of :meth:`to_frame` (``coupon`` optional); weeks must be 1..H for every SKU."""
        for col in ("sku", "week", "discount"):
            if col not in frame.columns:
                raise DataError(
                    f"{source}: column {col!r} is missing; expected sku, week, discount"
                )
        f = frame.copy()
        if "coupon" not in f.columns:
            f["coupon"] = 0.0
        f["sku"] = f["sku"].astype(str)
        try:
            f["week"] = pd.to_numeric(f["week"]).astype(int)
            f["discount"] = pd.to_numeric(f["discount"]).astype(float)
            f["coupon"] = pd.to_numeric(f["coupon"]).astype(float)
        except (ValueError, TypeError) as err:
            raise DataError(
                f"{source}: week, discount and coupon must be numbers ({err})"
            ) from None
        f = f.sort_values(["sku", "week"])
        skus = f["sku"].unique()
        h = int(f["week"].max())
        counts = f.groupby("sku")["week"].nunique()
        if (counts != h).any() or int(f["week"].min()) != 1 or len(f) != len(skus) * h:
            bad = counts[counts != h].index[:3].tolist()
            raise DataError(
                f"{source}: every SKU needs weeks 1..{h} exactly once; check SKU(s) {bad}"
            )
        return cls(
            sku=np.asarray(skus, dtype=object),
            discount=f["discount"].to_numpy().reshape(len(skus), h),
            coupon=f["coupon"].to_numpy().reshape(len(skus), h),
            name=name,
        )


DEPTH_DECIMALS = 4
"""Decimals of a depth in the exports (0.3 rather than 0.30000000000000004)."""


def rounded_depths(schedule: Schedule) -> Schedule:
    """``schedule`` with its depths rounded to :data:`DEPTH_DECIMALS` decimals, as exported, so
    a plan read back from its export is simulated on exactly the same depths."""
    return Schedule(
        sku=schedule.sku,
        discount=np.round(np.asarray(schedule.discount, dtype=float), DEPTH_DECIMALS) + 0.0,
        coupon=np.round(np.asarray(schedule.coupon, dtype=float), DEPTH_DECIMALS) + 0.0,
        name=schedule.name,
    )


def parse_policy(text: str) -> tuple[float, float]:
    """``fixed:D`` or ``fixed:D:C`` -> (discount, coupon); a clear error otherwise."""
    parts = str(text).split(":")
    try:
        if parts[0] != "fixed" or len(parts) not in (2, 3):
            raise ValueError
        d = float(parts[1])
        c = float(parts[2]) if len(parts) == 3 else 0.0
    except ValueError:
        raise ConfigError(
            f"--policy {text!r}: expected 'fixed:D' or 'fixed:D:C' with depths as shares of "
            "list price, e.g. fixed:0.3"
        ) from None
    if not (0 <= d and 0 <= c and d + c < MAX_DISCOUNT_DEPTH):
        raise ConfigError(
            f"--policy {text!r}: depths must be >= 0 with discount + coupon < {MAX_DISCOUNT_DEPTH}"
        )
    return d, c


def read_schedule(path: str | Path) -> Schedule:
    """Read a schedule file (CSV or Parquet with ``sku, week, discount[, coupon]``, e.g. the
    pipeline's ``schedules`` export; rows of other columns are ignored)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"schedule file {str(p)!r} not found")
    try:
        frame = (
            pd.read_parquet(p)
            if p.suffix.lower() == ".parquet"
            else pd.read_csv(p, dtype={"sku": str})
        )
    except Exception as err:  # noqa: BLE001 - any reader failure is the file's fault
        raise DataError(f"schedule file {str(p)!r} could not be read: {err}") from None
    if "plan_key" in frame.columns and frame["plan_key"].nunique() > 1:
        raise DataError(
            f"schedule file {str(p)!r} holds {frame['plan_key'].nunique()} plans; keep one plan_key"
        )
    return Schedule.from_frame(frame, name=p.stem, source=f"schedule file {str(p)!r}")
