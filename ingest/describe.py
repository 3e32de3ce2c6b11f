"""A readable summary of a dataset: tables, row counts, SKUs, weeks, missing-value shares."""

from __future__ import annotations

import pandas as pd

from ingest.dataset import Dataset


def summarize(dataset: Dataset) -> dict[str, object]:
    """Per table: rows, columns, SKUs, week range and the share of missing values per column."""
    tables: dict[str, object] = {}
    for name, frame in dataset.tables.items():
        info: dict[str, object] = {"rows": len(frame), "columns": list(map(str, frame.columns))}
        if "sku" in frame.columns:
            info["skus"] = int(frame["sku"].nunique())
        if "week" in frame.columns and len(frame):
            info["weeks"] = [int(frame["week"].min()), int(frame["week"].max())]
            info["n_weeks"] = int(frame["week"].nunique())
        missing = frame.isna().mean() if len(frame) else pd.Series(dtype=float)
        info["missing_share"] = {str(c): round(float(v), 4) for c, v in missing.items()}
        tables[name] = info
    return {
        "source": dataset.source,
        "fingerprint": dataset.fingerprint,
        "tables": tables,
        "notes": list(dataset.notes),
    }


def format_summary(dataset: Dataset) -> str:
    """:func:`summarize` as text, one line per table plus the columns with missing values."""
    s = summarize(dataset)
    lines = [f"source: {s['source']}  (fingerprint {s['fingerprint']})"]
    tables = s["tables"]
    assert isinstance(tables, dict)
    for name, info in tables.items():
        parts = [f"{info['rows']:>10,} rows"]
        if "skus" in info:
            parts.append(f"{info['skus']:,} SKUs")
        if "weeks" in info:
            lo, hi = info["weeks"]
            parts.append(f"weeks {lo}-{hi} ({info['n_weeks']} distinct)")
        lines.append(f"  {name:<13}" + ", ".join(parts))
        gaps = {c: v for c, v in info["missing_share"].items() if v > 0}
        if gaps:
            lines.append(
                "  " + " " * 13 + "missing: " + ", ".join(f"{c} {v:.1%}" for c, v in gaps.items())
            )
    notes = s["notes"]
    assert isinstance(notes, list)
    lines.extend(f"  note: {n}" for n in notes)
    return "\n".join(lines)
