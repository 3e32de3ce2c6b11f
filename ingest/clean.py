"""Cleaning: drop what cannot be used, impute what can be derived, and count every change.

Rules, in order (each counted in the :class:`CleaningReport` with its reason):

1. A product with no ``list_price`` and no sales cannot be priced: dropped (with its rows in
   the optional tables).
2. ``list_price`` missing: the ``list_price_quantile`` of the SKU's observed weekly shelf
   price ``(revenue + discount_amount + coupon_amount) / units`` over weeks with units > 0.
3. ``launch_week`` missing: the SKU's first sale week (the data's first week if never sold);
   a ``launch_week`` after the first sale is moved back to it.
4. ``unit_cost`` missing: ``list_price * (1 - margin)`` with the median margin
   ``1 - unit_cost / list_price`` of the SKU's category; of all SKUs when its category has no
   costs; and ``default_margin`` (an assumption, flagged) when the source has no costs.

The loader's own drops (:attr:`Dataset.report`) are copied in first, so the report accounts
for every row between the source and the panel.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from ingest.dataset import Dataset
from ingest.errors import ConfigError
from ingest.io import write_text_atomic
from ingest.keys import isin

CLEANED_NOTE = "cleaned by ingest.clean"


@dataclass(frozen=True)
class CleaningConfig:
    """How cleaning imputes.

    Parameters
    ----------
    default_margin : float
        Gross margin ``1 - unit_cost / list_price`` assumed when the source has no costs at all
        (Complete Journey). 0.30 is a typical grocery gross margin; an assumption, not data.
    list_price_quantile : float
        Quantile of a SKU's observed weekly shelf prices taken as its list price. A high
        quantile, because shelf prices are the list price most weeks and lower in a few.
    """

    default_margin: float = 0.30
    list_price_quantile: float = 0.9

    def __post_init__(self) -> None:
        if not 0.0 <= self.default_margin < 1.0:
            raise ConfigError(
                f"CleaningConfig.default_margin={self.default_margin!r}: expected a share in [0, 1)"
            )
        if not 0.0 <= self.list_price_quantile <= 1.0:
            raise ConfigError(
                f"CleaningConfig.list_price_quantile={self.list_price_quantile!r}: "
                "expected a quantile in [0, 1]"
            )

    def key(self) -> str:
        """A short stable string of the settings (part of the panel cache key)."""
        return f"m{self.default_margin:g}-q{self.list_price_quantile:g}"


@dataclass
class CleaningReport:
    """Every dropped and imputed value, with the reason.

    Each entry is a dict with ``table``, ``action`` (``dropped``, ``imputed``, ``corrected``
    or ``assumed``), ``rows``, ``reason`` and, where it applies, ``column``, ``units`` and
    ``revenue`` (what the dropped rows carried).
    """

    source: str
    fingerprint: str
    config: dict[str, object]
    entries: list[dict[str, object]] = field(default_factory=list)
    rows_in: dict[str, int] = field(default_factory=dict)
    rows_out: dict[str, int] = field(default_factory=dict)

    def add(self, table: str, action: str, rows: int, reason: str, **extra: object) -> None:
        if rows:
            self.entries.append(
                {"table": table, "action": action, "rows": int(rows), "reason": reason, **extra}
            )

    def dropped(self, table: str, key: str = "units") -> float:
        """Total of ``key`` (``units``, ``revenue``, ``rows``) in rows dropped from ``table``."""
        total = 0.0
        for e in self.entries:
            if e["table"] == table and e["action"] == "dropped":
                total += float(e.get(key, 0.0))  # type: ignore[arg-type]
        return total

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def to_text(self) -> str:
        lines = [f"Cleaning report for {self.source} (fingerprint {self.fingerprint})"]
        lines.append("rows in -> out: " + ", ".join(
            f"{t} {self.rows_in.get(t, 0):,} -> {self.rows_out.get(t, 0):,}" for t in self.rows_in
        ))  # fmt: skip
        if not self.entries:
            lines.append("nothing dropped or imputed")
        for e in self.entries:
            col = f".{e['column']}" if e.get("column") else ""
            carried = ""
            if "units" in e:
                carried = f" (units {float(e['units']):,.0f}, revenue {float(e['revenue']):,.2f})"  # type: ignore[arg-type]
            lines.append(
                f"- {e['action']:<9} {e['table']}{col}: {e['rows']:,} rows{carried}: {e['reason']}"
            )
        return "\n".join(lines)

    def write(self, folder: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write ``cleaning_report.json`` and ``cleaning_report.txt`` atomically."""
        folder = Path(folder)
        j = write_text_atomic(folder / "cleaning_report.json", json.dumps(self.to_dict(), indent=2))
        t = write_text_atomic(folder / "cleaning_report.txt", self.to_text() + "\n")
        return j, t


def observed_shelf_prices(sales: pd.DataFrame) -> pd.DataFrame:
    """Weekly shelf price per unit for (sku, week) rows with units > 0 and a positive price."""
    gross = sales["revenue"] + sales["discount_amount"] + sales["coupon_amount"]
    sold = (sales["units"] > 0) & (gross > 0)
    return pd.DataFrame(
        {
            "sku": sales["sku"][sold],
            "week": sales["week"][sold],
            "price": (gross / sales["units"])[sold],
        }
    )


def is_clean(dataset: Dataset) -> bool:
    """Whether ``dataset`` has no missing list price, unit cost or launch week."""
    p = dataset.products
    return not p[["list_price", "unit_cost", "launch_week"]].isna().any().any()


def clean(dataset: Dataset, config: CleaningConfig | None = None) -> tuple[Dataset, CleaningReport]:
    """Return the cleaned dataset and the report of what was dropped and imputed."""
    config = config or CleaningConfig()
    report = CleaningReport(dataset.source, dataset.fingerprint, asdict(config))
    report.entries.extend(dict(e) for e in dataset.report)
    report.rows_in = {n: len(t) for n, t in dataset.tables.items()}
    products = dataset.products.copy()
    sales = dataset.sales

    # 1. unpriceable products
    priced = observed_shelf_prices(sales)["sku"].drop_duplicates()
    unpriceable = products["list_price"].isna() & ~isin(products["sku"], priced)
    report.add("products", "dropped", int(unpriceable.sum()),
               "no list_price and no sale at a positive price to derive it from")  # fmt: skip
    products = products[~unpriceable].reset_index(drop=True)
    keep = products["sku"]
    tables: dict[str, pd.DataFrame] = {}
    for name, frame in dataset.tables.items():
        if name == "products":
            continue
        if "sku" not in frame.columns:  # not per SKU (the calendar): nothing to drop
            tables[name] = frame
            continue
        gone = pd.Series(~isin(frame["sku"], keep), index=frame.index)
        extra = {}
        if name in ("sales", "baskets"):
            extra = {"units": float(frame.loc[gone, "units"].sum()),
                     "revenue": float(frame.loc[gone, "revenue"].sum())}  # fmt: skip
        report.add(name, "dropped", int(gone.sum()), "SKU dropped from products (rule 1)", **extra)
        tables[name] = frame[~gone].reset_index(drop=True) if gone.any() else frame
    sales = tables["sales"]

    # 2. list price from observed shelf prices
    missing = products["list_price"].isna()
    if missing.any():
        q = (
            observed_shelf_prices(sales)
            .groupby("sku")["price"]
            .quantile(config.list_price_quantile)
        )
        products.loc[missing, "list_price"] = products.loc[missing, "sku"].map(q).to_numpy()
        report.add("products", "imputed", int(missing.sum()),
                   f"list_price = {config.list_price_quantile:g} quantile of observed weekly "
                   "shelf price (revenue + discount + coupon) / units", column="list_price")  # fmt: skip

    # 3. launch week
    first = sales[sales["units"] > 0].groupby("sku")["week"].min()
    first_any = int(sales["week"].min()) if len(sales) else 1
    launch = products["launch_week"].astype("Float64")
    first_sale = products["sku"].map(first).astype("Float64")
    miss = launch.isna()
    report.add("products", "imputed", int(miss.sum()),
               "launch_week = first week with units sold (first week of the data if never sold)",
               column="launch_week")  # fmt: skip
    late = (~miss & first_sale.notna() & (launch > first_sale)).fillna(False)
    report.add("products", "corrected", int(late.sum()),
               "launch_week after the first sale; moved back to the first sale week",
               column="launch_week")  # fmt: skip
    launch = launch.where(~(miss | late), first_sale).fillna(first_any)
    products["launch_week"] = launch.round().astype("int64")

    # 4. unit cost from margins
    margin = 1.0 - products["unit_cost"] / products["list_price"]
    known = margin.notna()
    missing = products["unit_cost"].isna()
    if missing.any():
        if known.any():
            by_cat = margin[known].groupby(products.loc[known, "category"]).median()
            m = products["category"].map(by_cat).astype(float)
            from_cat = missing & m.notna()
            report.add("products", "imputed", int(from_cat.sum()),
                       "unit_cost = list_price * (1 - median margin of the category)",
                       column="unit_cost")  # fmt: skip
            overall = float(margin[known].median())
            report.add("products", "imputed", int((missing & m.isna()).sum()),
                       f"unit_cost = list_price * (1 - median margin of all SKUs, {overall:.3f}): "
                       "no costs in the category", column="unit_cost")  # fmt: skip
            m = m.fillna(overall)
        else:
            m = pd.Series(config.default_margin, index=products.index)
            report.add("products", "assumed", int(missing.sum()),
                       f"unit_cost = list_price * (1 - {config.default_margin:g}): the source has "
                       "no costs; the margin is an assumption (CleaningConfig.default_margin)",
                       column="unit_cost")  # fmt: skip
        products.loc[missing, "unit_cost"] = (products["list_price"] * (1.0 - m))[missing]

    tables = {"products": products, **tables}
    report.rows_out = {n: len(t) for n, t in tables.items()}
    notes = [*dataset.notes, CLEANED_NOTE]
    cleaned = Dataset(tables, dataset.source, dataset.fingerprint, notes, list(dataset.report))
    return cleaned, report
