"""Feature drift of the risk model: the population stability index and a KS test per feature,
over all SKUs and per category.

PSI
---
``PSI = sum_b (c_b - r_b) * ln(c_b / r_b)`` over bins ``b``, with ``r_b`` and ``c_b`` the
shares of the reference and the current sample in the bin. The bins are the reference
sample's quantiles: ``n_bins`` equal-count bins whose inner edges are the reference's
``1/n_bins .. (n_bins-1)/n_bins`` quantiles, duplicates dropped (a feature with a mass of
zeros gets fewer, wider bins), open at both ends, a value equal to an edge falling in the
lower bin. An empty bin's share is floored at :data:`MIN_SHARE` so the logarithm is finite.
Identical samples give exactly 0.

A scope (all SKUs, or one category) of ``n`` reference SKUs gets
``min(n_bins, n // MIN_PER_BIN)`` bins (at least 2): a per-category PSI over 30 SKUs in ten
bins would read three SKUs per bin, and its value would be mostly noise.

KS
--
The two-sample Kolmogorov-Smirnov test (:func:`scipy.stats.ks_2samp`). A feature is flagged
when its PSI exceeds the threshold *and* the KS test rejects at ``ks_alpha`` divided by the
number of rows tested in the pass (Bonferroni: a pass tests some 40 features in ten scopes,
and at 1 % each a few hundred tests would flag a few by chance every time). The PSI says the
move is large, the test that it is not the noise of a small sample.

What is not tested
------------------
:func:`monitored_features` leaves out the features that drift by construction: those that
grow with the length of the history (:data:`CALENDAR_FEATURES`) and the category, department,
product-type, manufacturer and product-line context (:data:`GROUP_PREFIXES`), which hold one
value per group, so a per-SKU test would count each group's value many times; their drift
shows in the SKU-level features they summarise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ingest.errors import DataError
from monitoring.thresholds import MonitorThresholds

#: Floor of a bin's share: an empty bin would make ``ln(c/r)`` infinite.
MIN_SHARE = 1e-4
#: Fewest reference SKUs per PSI bin (see the module docstring).
MIN_PER_BIN = 10
#: Features that grow with the history's length: they drift between any two weeks.
CALENDAR_FEATURES = ("age_weeks", "weeks_since_peak_4")
#: Prefixes of the group-context features (one value per group).
GROUP_PREFIXES = ("cat_", "dept_", "ptype_", "mfr_", "line_")
#: The scope of the rows over every SKU (the other rows carry the category's name).
ALL_SKUS = "all"
DRIFT_COLUMNS = (
    "scope",
    "feature",
    "psi",
    "ks_stat",
    "ks_pvalue",
    "n_ref",
    "n_cur",
    "ref_mean",
    "cur_mean",
    "drifted",
)


def psi_edges(reference: np.ndarray, n_bins: int = 10) -> np.ndarray:
    """Inner bin edges: the reference's quantiles, ties merged (see the module docstring)."""
    ref = np.asarray(reference, dtype=float)
    ref = ref[np.isfinite(ref)]
    if ref.size == 0:
        raise DataError("PSI: the reference sample has no finite value")
    qs = np.quantile(ref, np.linspace(0.0, 1.0, n_bins + 1)[1:-1])
    return np.unique(qs)


def bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of ``values`` in each bin of ``edges`` (``len(edges) + 1`` bins)."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    counts = np.bincount(np.searchsorted(edges, x, side="left"), minlength=edges.size + 1)
    return counts / max(x.size, 1)


def psi(reference: np.ndarray, current: np.ndarray, n_bins: int = 10) -> float:
    """Population stability index of ``current`` against ``reference``.

    Parameters
    ----------
    reference, current : array-like of shape (n,) and (m,)
    n_bins : int
        Equal-count bins of the reference (fewer where its quantiles tie).

    Returns
    -------
    float
        0 for identical distributions; 0.1-0.25 is usually read as a moderate shift, above
        0.25 as a major one.
    """
    edges = psi_edges(reference, n_bins)
    r = np.maximum(bin_shares(reference, edges), MIN_SHARE)
    c = np.maximum(bin_shares(current, edges), MIN_SHARE)
    return float(np.sum((c - r) * np.log(c / r)))


def ks_test(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Two-sample KS statistic and p-value (``(0, 1)`` when the samples are identical)."""
    a = np.asarray(reference, dtype=float)
    b = np.asarray(current, dtype=float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size == 0 or b.size == 0:
        return float("nan"), float("nan")
    res = stats.ks_2samp(a, b)
    return float(res.statistic), float(res.pvalue)


def monitored_features(columns: list[str] | pd.Index) -> list[str]:
    """The columns the drift check tests (see "What is not tested" in the module docstring)."""
    return [
        c for c in columns if c not in CALENDAR_FEATURES and not str(c).startswith(GROUP_PREFIXES)
    ]


def _rows(
    scope: str, ref: pd.DataFrame, cur: pd.DataFrame, th: MonitorThresholds
) -> list[dict[str, object]]:
    rows = []
    n_bins = max(2, min(th.n_bins, len(ref) // MIN_PER_BIN))
    for col in ref.columns:
        a, b = ref[col].to_numpy(dtype=float), cur[col].to_numpy(dtype=float)
        value = psi(a, b, n_bins)
        ks_stat, ks_p = ks_test(a, b)
        rows.append(
            {
                "scope": scope,
                "feature": col,
                "psi": value,
                "ks_stat": ks_stat,
                "ks_pvalue": ks_p,
                "n_ref": int(a.size),
                "n_cur": int(b.size),
                "ref_mean": float(np.mean(a)),
                "cur_mean": float(np.mean(b)),
                "drifted": False,  # decided over the whole pass
            }
        )
    return rows


def feature_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    reference_groups: pd.Series | None = None,
    current_groups: pd.Series | None = None,
    thresholds: MonitorThresholds | None = None,
) -> pd.DataFrame:
    """PSI and KS per feature, over all SKUs and per group (category).

    Parameters
    ----------
    reference, current : DataFrame of shape (n_skus, n_features)
        Feature frames (indexed by sku); the columns of ``reference`` are compared.
    reference_groups, current_groups : Series, optional
        The group (category) of each SKU, indexed by sku. A group gets its own rows when
        both samples hold at least ``thresholds.min_group_skus`` of its SKUs.
    thresholds : MonitorThresholds, optional

    Returns
    -------
    DataFrame
        One row per scope and feature with the columns :data:`DRIFT_COLUMNS`; ``scope`` is
        ``"all"`` or the group's name; ``drifted`` with the Bonferroni-corrected test.
    """
    th = thresholds or MonitorThresholds()
    missing = [c for c in reference.columns if c not in current.columns]
    if missing:
        raise DataError(
            f"feature drift: the current features lack {len(missing)} reference column(s), "
            f"e.g. {missing[:5]}; build both with the same feature settings"
        )
    cur = current[list(reference.columns)]
    rows = _rows(ALL_SKUS, reference, cur, th)
    if reference_groups is not None and current_groups is not None:
        g_ref = reference_groups.reindex(reference.index).astype(str)
        g_cur = current_groups.reindex(cur.index).astype(str)
        for group in sorted(set(g_ref) & set(g_cur)):
            a, b = reference[g_ref.to_numpy() == group], cur[g_cur.to_numpy() == group]
            if min(len(a), len(b)) >= th.min_group_skus:
                rows.extend(_rows(group, a, b, th))
    out = pd.DataFrame(rows, columns=list(DRIFT_COLUMNS))
    alpha = th.ks_alpha / max(len(out), 1)
    out["drifted"] = (out["psi"] > th.psi_max) & (out["ks_pvalue"] < alpha)
    return out
