"""Weekly arrays stored as bytes: one SKU's schedule is a few short arrays, kept as raw
little-endian floats in one row (``sku_schedules``) rather than one row per week.

A 1 M-SKU plan is then 1 M rows, written by ``COPY`` without formatting 70 M floats as text,
and read back per SKU with :func:`decode`. Depths are float64 (exact); expected outcomes are
float32 (seven significant digits are plenty for an expectation with a CI).
"""

from __future__ import annotations

import numpy as np

DEPTH = np.dtype("<f8")
OUTCOME = np.dtype("<f4")


def encode_rows(values: np.ndarray, dtype: np.dtype) -> list[bytes]:
    """One ``bytes`` per row of a 2-D array (``values[i]`` as ``dtype``)."""
    a = np.ascontiguousarray(values, dtype=dtype)
    if a.ndim != 2:
        raise ValueError(f"expected a 2-D array, got shape {a.shape}")
    width = a.shape[1] * dtype.itemsize
    raw = a.tobytes()
    return [raw[i * width : (i + 1) * width] for i in range(a.shape[0])]


def decode(blob: bytes, dtype: np.dtype, n_parts: int = 1) -> list[list[float]]:
    """The ``n_parts`` equal arrays stored in ``blob``, as lists of floats (float32 values as
    their shortest decimal, so 0.1 reads back as 0.1)."""
    raw = np.frombuffer(blob, dtype=dtype)
    values = [float(str(v)) for v in raw] if dtype == OUTCOME else raw.astype(float).tolist()
    size = len(values) // n_parts
    return [values[i * size : (i + 1) * size] for i in range(n_parts)]
