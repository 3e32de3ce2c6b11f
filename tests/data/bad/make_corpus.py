"""Regenerate the bad-input corpus: one folder per case, each a small source with one defect
or a command with one bad argument.

Run ``.venv/bin/python tests/data/bad/make_corpus.py``; it rewrites the case folders and
``expected.json`` (case -> the command, its exit code, the fragments its output must contain
and must not contain, and paths it must not create). The files are committed; this script only
documents how they were made.

A command is ``deadstock`` arguments with two placeholders: ``{case}`` is the case's folder and
``{out}`` an existing output folder (holding a previous run's file) that a failing command must
leave exactly as it was. The default command is ``data validate --data {case}``.
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
VALIDATE = ["data", "validate", "--data", "{case}"]
BAD_PORT = "postgresql+psycopg2://u@localhost:notaport/db"
BAD_SQLITE = "sqlite://:::bad"

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


def _zip(entries: dict[str, str]) -> bytes:
    """A zip with fixed timestamps, so the corpus is byte-for-byte reproducible."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, text in entries.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), text)
    return buf.getvalue()


NUMERIC_PRODUCTS = PRODUCTS.replace("A1,", "1001,").replace("A2,", "1002,").replace("B1,", "2001,")
FLOAT_SALES = SALES.replace("A1,", "1001.0,").replace("A2,", "1002.0,").replace("B1,", "2001,")


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
    "list_price_zero": (
        {"products.csv": _edit(PRODUCTS, "Private,2.99", "Private,0")},
        2,
        ["products.csv", "column 'list_price'", "values of 0", "3: 0.0", "expected values > 0"],
    ),
    "float_sku_ids_in_csv": (
        {"products.csv": NUMERIC_PRODUCTS, "sales.csv": FLOAT_SALES},
        0,
        ["OK", "3 SKUs"],
    ),
    "upper_case_header": (
        {"products.csv": _edit(PRODUCTS, "sku,category", "SKU,CATEGORY")},
        2,
        ["products.csv", "'sku' is missing (found 'SKU': column names are lower-case)"],
    ),
    "semicolon_separated": (
        {"sales.csv": SALES.replace(".", "#").replace(",", ";").replace("#", ",")},
        2,
        ["sales.csv", "the file looks ';'-separated", "comma-separated values"],
    ),
    "cost_far_above_price": (
        {"products.csv": _edit(PRODUCTS, "3.49,2.10", "3.49,9.10")},
        0,
        ["OK", "warning:", "column 'unit_cost'", "unit_cost above 2x list_price", "rows 2: 9.1"],
    ),
    "discount_far_above_revenue": (
        {"sales.csv": _edit(SALES, "A1,2,12,37.00,4.88", "A1,2,12,1.00,48.80")},
        0,
        ["OK", "warning:", "column 'discount_amount'", "above 19x the revenue", "rows 3: 48.8"],
    ),
}  # fmt: skip

# Cases that run another command (see the module docstring): case -> (files, argv, exit,
# fragments that must be on ONE line of the output, fragments that must not appear, paths
# that must not exist afterwards). Their files are the default products and sales plus these.
Files = dict[str, str | bytes | None]
COMMANDS: dict[str, tuple[Files, list[str], int, list[str], list[str], list[str]]] = {
    "sql_url_malformed_validate": (
        {}, ["data", "validate", "--data", BAD_SQLITE], 2,
        [f"database URL {BAD_SQLITE!r}", "not a valid SQLite URL", "sqlite:///relative/path.db"],
        [], [],
    ),
    "sql_url_bad_port_validate": (
        {}, ["data", "validate", "--data", BAD_PORT], 2,
        [f"database URL {BAD_PORT!r}", "the port 'notaport' is not a number",
         "postgresql+psycopg2://user:password@host:5432/database"],
        [], [],
    ),
    "sql_url_malformed_convert_target": (
        {}, ["data", "convert", "--data", "{case}", "--out", BAD_SQLITE], 2,
        [f"database URL {BAD_SQLITE!r}", "not a valid SQLite URL"], [], [],
    ),
    "sql_url_bad_port_convert_source": (
        {}, ["data", "convert", "--data", BAD_PORT, "--out", "{out}"], 2,
        [f"database URL {BAD_PORT!r}", "the port 'notaport' is not a number"], [], [],
    ),
    "sql_url_malformed_run_data": (
        {}, ["run", "--data", BAD_SQLITE, "--out", "{out}"], 2,
        [f"database URL {BAD_SQLITE!r}", "not a valid SQLite URL"], [], [],
    ),
    "sql_url_bad_port_run_export": (
        {}, ["run", "--data", "{case}", "--out", "{out}", "--sql-url", BAD_PORT], 2,
        [f"database URL {BAD_PORT!r}", "the port 'notaport' is not a number"], [], [],
    ),
    "sqlite_missing_file": (
        {}, ["data", "validate", "--data", "sqlite:///{case}/missing.db"], 2,
        ["the SQLite database file", "missing.db", "does not exist", "expected an existing file"],
        ["required table"], ["{case}/missing.db"],
    ),
    "postgresql_url_without_driver": (
        {}, ["data", "validate", "--data", "postgresql://u:secret@127.0.0.1:1/db"], 2,
        ["cannot read from database 'postgresql", "127.0.0.1:1/db"],
        ["No module named", "secret"], [],
    ),
    "corrupt_model_zip": (
        {"model.zip": b"PK\x03\x04 the first bytes of a zip, then nothing"},
        ["evaluate", "--model", "{case}/model.zip", "--agents", "ppo"], 2,
        ["PPO model", "model.zip", "is not a zip file (corrupt or truncated?)"], [], [],
    ),
    "model_zip_without_a_model": (
        {"model.zip": _zip({"notes.txt": "a zip, but not a model"})},
        ["evaluate", "--model", "{case}/model.zip", "--agents", "ppo"], 2,
        ["PPO model", "model.zip", "is not a complete model zip"], [], [],
    ),
}  # fmt: skip


def _write_case(case: str, files: dict[str, str | bytes | None]) -> None:
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


def main() -> None:
    expected: dict[str, dict[str, Any]] = {}
    for case, (files, code, fragments) in CASES.items():
        _write_case(case, files)
        expected[case] = {"argv": VALIDATE, "exit": code, "fragments": fragments}
    for case, (files, argv, code, fragments, absent, absent_paths) in COMMANDS.items():
        _write_case(case, files)
        expected[case] = {
            "argv": argv,
            "exit": code,
            "fragments": fragments,
            "one_line": True,
            "absent": absent,
            "absent_paths": absent_paths,
        }
    (HERE / "expected.json").write_text(json.dumps(expected, indent=2) + "\n", encoding="utf-8")
    rows = [
        f"| `{case}` | `{' '.join(e['argv'])}` | {e['exit']} | "
        + "; ".join(f"`{f}`" for f in e["fragments"])
        + "".join(f"; not `{f}`" for f in e.get("absent", []))
        + " |"
        for case, e in expected.items()
    ]
    readme = [
        "# Bad-input corpus",
        "",
        "One folder per case: a small source (products + sales) with one defect, or a command "
        "with one bad argument (a malformed database URL, a missing SQLite file, a corrupt "
        "model zip). `deadstock <command>` must exit with the code below and print every "
        "fragment (on one line for a command's error), never a traceback, create nothing it "
        "should not and leave an existing output folder (`{out}`) as it was "
        "(`tests/ingest/test_bad_corpus.py` checks it). `{case}` is the case's folder. "
        "Regenerate with `.venv/bin/python tests/data/bad/make_corpus.py`.",
        "",
        "| case | command | exit | the output contains |",
        "|---|---|---|---|",
        *rows,
        "",
    ]
    (HERE / "README.md").write_text("\n".join(readme), encoding="utf-8")


if __name__ == "__main__":
    main()
