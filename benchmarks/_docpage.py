"""Write one script's section of a shared benchmark page, leaving the other sections alone.

A section lives between ``<!-- <name>:start -->`` and ``<!-- <name>:end -->``; a script
replaces its own section (or appends it) and writes the page atomically.
"""

from __future__ import annotations

import platform
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ingest.io import write_text_atomic


def machine_line() -> str:
    """Where a figure was measured: CPU count, Python and NumPy versions."""
    import os

    return (
        f"{os.cpu_count()} CPU cores ({platform.machine()}), Python "
        f"{sys.version.split()[0]}, NumPy {np.__version__}; shared with other work, so "
        f"timings are noisy"
    )


def write_section(page: Path, name: str, body: str, *, title: str) -> Path:
    """Replace (or append) section ``name`` of ``page`` with ``body``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = page.read_text(encoding="utf-8") if page.exists() else f"# {title}\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    return write_text_atomic(page, text)


#: Columns that hold counts: written as integers even when a frame stores them as floats.
COUNT_COLUMNS = ("seed", "n_seeds", "n_scenarios", "violations")


def markdown_table(frame: pd.DataFrame, floats: int = 2) -> str:
    """``frame`` as a Markdown table: floats to ``floats`` decimals, counts as integers."""
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for rec in frame.to_dict(orient="records"):
        cells = []
        for c in cols:
            v = rec[c]
            if isinstance(v, float) and c in COUNT_COLUMNS:
                v = int(v)
            cells.append(f"{v:.{floats}f}" if isinstance(v, float) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
