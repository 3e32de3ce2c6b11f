"""Calibration of the risk score once its labels have matured: the observed dead-stock rate
per score decile against the mean predicted risk, with counts, and the realized precision of
the ``high`` tier.

A score given at cutoff ``c`` can be checked once the data reach ``c + horizon``: the label
(did the SKU sell in the next ``horizon`` weeks?) is then known.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ingest.errors import DataError
from monitoring.thresholds import MonitorThresholds

#: Score bins of the calibration table (deciles of the predicted risk).
N_DECILES = 10


@dataclass
class CalibrationCheck:
    """The calibration of one set of matured scores.

    Attributes
    ----------
    table : DataFrame
        One row per score decile: ``decile``, ``n``, ``n_dead``, ``predicted`` (mean risk),
        ``observed`` (dead-stock rate).
    ece : float
        Expected calibration error: the count-weighted mean ``|observed - predicted|``.
    predicted_rate, observed_rate : float
        Mean risk and dead-stock rate over every labelled SKU.
    precision, recall : float
        Of the flag ``risk >= threshold`` (NaN when nothing is flagged / nothing is dead).
    n, n_flagged : int
    crossed : bool
        ``ece`` above ``MonitorThresholds.max_calibration_gap`` (with enough SKUs).
    """

    table: pd.DataFrame
    ece: float
    predicted_rate: float
    observed_rate: float
    precision: float
    recall: float
    n: int
    n_flagged: int
    crossed: bool


def calibration_check(
    risk: np.ndarray,
    label: np.ndarray,
    threshold: float,
    thresholds: MonitorThresholds | None = None,
) -> CalibrationCheck:
    """Calibration table, ECE and realized precision of scores ``risk`` against ``label``.

    Parameters
    ----------
    risk : array-like of shape (n_skus,)
        Predicted dead-stock probabilities.
    label : array-like of shape (n_skus,)
        The matured labels (1 = dead).
    threshold : float
        The model's decision threshold (its ``high`` tier).
    thresholds : MonitorThresholds, optional
    """
    th = thresholds or MonitorThresholds()
    p = np.asarray(risk, dtype=float)
    y = np.asarray(label, dtype=int)
    if p.shape != y.shape or p.size == 0:
        raise DataError(
            f"calibration: {p.size} scores and {y.size} labels; expected the same, non-zero number"
        )
    # Ranks, not values, cut the deciles: a score with many ties still fills ten bins.
    order = np.argsort(p, kind="stable")
    decile = np.empty(p.size, dtype=int)
    decile[order] = np.arange(p.size) * N_DECILES // p.size
    frame = pd.DataFrame({"decile": decile + 1, "risk": p, "y": y})
    table = (
        frame.groupby("decile")
        .agg(
            n=("y", "size"), n_dead=("y", "sum"), predicted=("risk", "mean"), observed=("y", "mean")
        )
        .reset_index()
    )
    ece = float(np.sum(table["n"] * np.abs(table["observed"] - table["predicted"])) / p.size)
    flag = p >= threshold
    tp = int(np.sum(flag & (y == 1)))
    precision = tp / int(flag.sum()) if flag.any() else float("nan")
    recall = tp / int(y.sum()) if y.any() else float("nan")
    return CalibrationCheck(
        table=table,
        ece=ece,
        predicted_rate=float(p.mean()),
        observed_rate=float(y.mean()),
        precision=float(precision),
        recall=float(recall),
        n=int(p.size),
        n_flagged=int(flag.sum()),
        crossed=bool(p.size >= th.min_calibration_skus and ece > th.max_calibration_gap),
    )
