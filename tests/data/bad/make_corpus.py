"""Regenerate the bad-input corpus: one folder per case, each a small source with one defect.

Run ``.venv/bin/python tests/data/bad/make_corpus.py``; it rewrites the case folders and
``expected.json`` (case -> exit code and the fragments the error must contain). The files are
committed; this script only documents how they were made.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

HERE = Path(__file__).parent

PRODUCTS = """sku,category,department,brand,list_price,unit_cost,launch_week
A1,COOKIES,GROCERY,National,3.49,2.10,1
A2,COOKIES,GROCERY,Private,2.99,1.50,1
B1,SOAP,DRUG GM,National,5.00,,2
"""
SALES = """sku,week,units,revenue,discount_amount,coupon_amount,returns
A1,1,10,34.90,0,0,0
A1,2,12,37.00,4.88,0,0
A2,1,5,14.95,0,0,0
B1,2,3,15.00,0,0,0
B1,3,4,18.00,1.00,1.00,0
"""


def _edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


# case -> (files, exit code, fragments the output must contain)
CASES: dict[str, tuple[dict[str, str | bytes | None], int, list[str]]] = {
    "missing_column": (
        {"sales.csv": SALES.replace(",units", "").replace(",10,", ",").replace(",12,", ",")
         .replace(",5,", ",").replace(",3,15", ",15").replace(",4,18", ",18")},
        2,
        ["sales.csv", "'units'", "required column 'units' is missing"],
    ),
    "renamed_column": (
        {"sales.csv": _edit(SALES, ",units,", ",unit,")},
        2,
        ["sales.csv", "'units'", "found 'unit': renamed?"],
    ),
    "text_in_numeric": (
        {"sales.csv": _edit(SALES, "A2,1,5,14.95", "A2,1,5,abc")},
        2,
        ["column 'revenue'", "text in a numeric column", "4: 'abc'"],
    ),
    "negative_units": (
        {"sales.csv": _edit(SALES, "B1,2,3,", "B1,2,-3,")},
        2,
        ["column 'units'", "values below 0", "5: -3"],
    ),
    "negative_price": (
        {"products.csv": _edit(PRODUCTS, "Private,2.99", "Private,-2.99")},
        2,
        ["products.csv", "column 'list_price'", "values below 0", "3: -2.99"],
    ),
    "nan_revenue": (
        {"sales.csv": _edit(SALES, "A1,2,12,37.00", "A1,2,12,NaN")},
        2,
        ["column 'revenue'", "missing values", "3: nan"],
    ),
    "nan_list_price_is_imputed": (
        {"products.csv": _edit(PRODUCTS, "National,3.49", "National,NaN")},
        0,
        ["OK"],
    ),
    "duplicate_keys": (
        {"sales.csv": SALES + "A1,2,1,3.49,0,0,0\n"},
        2,
        ["duplicate keys ('sku', 'week')", "A1/2"],
    ),
    "unknown_sku": (
        {"sales.csv": SALES + "Z9,1,1,3.00,0,0,0\n"},
        2,
        ["column 'sku'", "1 SKU(s) not in products", "7: 'Z9'"],
    ),
    "empty_file": ({"sales.csv": ""}, 2, ["sales.csv", "the file is empty"]),
    "header_only": (
        {"sales.csv": SALES.splitlines()[0] + "\n"},
        2,
        ["sales.csv", "header but no rows"],
    ),
    "non_utf8": (
        {"products.csv": _edit(PRODUCTS, "SOAP", "SAVON D'ÉTÉ").encode("latin-1")},
        2,
        ["products.csv", "not UTF-8", "byte offset"],
    ),
    "absurd_values": (
        {"sales.csv": _edit(SALES, "A1,1,10,", "A1,1,1e12,")},
        2,
        ["column 'units'", "absurdly large", "2: 1000000000000"],
    ),
    "fractional_week": (
        {"sales.csv": _edit(SALES, "B1,3,", "B1,2.5,")},
        2,
        ["column 'week'", "non-integer values", "6: 2.5"],
    ),
    "negative_week": (
        {"sales.csv": _edit(SALES, "B1,3,", "B1,-1,")},
        2,
        ["column 'week'", "values below 0"],
    ),
    "weeks_out_of_order_and_gaps_are_fine": (
        {"sales.csv": "\n".join([SALES.splitlines()[0], *reversed(SALES.splitlines()[1:])])
         .replace("B1,3,", "B1,9,") + "\n"},
        0,
        ["OK"],
    ),
    "missing_table": ({"sales.csv": None}, 2, ["required table 'sales' not found"]),
    "corrupt_parquet": (
        {"products.csv": None, "products.parquet": b"PAR1 not really parquet"},
        2,
        ["products.parquet", "cannot be read as Parquet"],
    ),
}  # fmt: skip


def main() -> None:
    expected = {}
    for case, (files, code, fragments) in CASES.items():
        folder = HERE / case
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        contents: dict[str, str | bytes | None] = {
            "products.csv": PRODUCTS,
            "sales.csv": SALES,
            **files,
        }
        for name, text in contents.items():
            if text is None:
                continue
            data = text.encode("utf-8") if isinstance(text, str) else text
            (folder / name).write_bytes(data)
        expected[case] = {"exit": code, "fragments": fragments}
    (HERE / "expected.json").write_text(json.dumps(expected, indent=2) + "\n", encoding="utf-8")
    rows = [
        f"| `{case}` | {e['exit']} | " + "; ".join(f"`{f}`" for f in e["fragments"]) + " |"
        for case, e in expected.items()
    ]
    readme = [
        "# Bad-input corpus",
        "",
        "One folder per case: a small source (products + sales) with one defect. "
        "`deadstock data validate --data <folder>` must exit with the code below and print every "
        "fragment, never a traceback (`tests/ingest/test_bad_corpus.py` checks it). "
        "Regenerate with `.venv/bin/python tests/data/bad/make_corpus.py`.",
        "",
        "| case | exit | the output contains |",
        "|---|---|---|",
        *rows,
        "",
    ]
    (HERE / "README.md").write_text("\n".join(readme), encoding="utf-8")


if __name__ == "__main__":
    main()
