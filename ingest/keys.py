"""Fast membership and position lookups on SKU-like string columns.

pandas' ``isin``/``map`` on Arrow-backed strings fall back to Python loops; PyArrow's hash
kernels do the same in C++, much faster on tables the size of Complete Journey's.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def _arrow(values: pd.Series | pd.Index | Iterable[object]) -> pa.Array | pa.ChunkedArray:
    if isinstance(values, pd.Index):
        values = values.to_series()
    if isinstance(values, pd.Series):
        if not isinstance(values.dtype, pd.StringDtype) or values.dtype.storage != "pyarrow":
            values = values.astype(pd.StringDtype("pyarrow"))
        arr = pa.array(values.array)  # zero-copy through __arrow_array__
        return arr.cast(pa.large_string()) if arr.type != pa.large_string() else arr
    return pa.array([None if v is None else str(v) for v in values], type=pa.large_string())


def isin(column: pd.Series, values: pd.Series | pd.Index | Iterable[object]) -> np.ndarray:
    """Boolean array: whether each entry of ``column`` is in ``values`` (missing -> False)."""
    hit = pc.is_in(_arrow(column), value_set=_arrow(values), skip_nulls=True)
    return np.asarray(hit.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def positions(column: pd.Series, universe: pd.Series | pd.Index) -> np.ndarray:
    """Position of each entry of ``column`` in ``universe`` (unique values); -1 when absent."""
    idx = pc.index_in(_arrow(column), value_set=_arrow(universe))
    return np.asarray(idx.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
