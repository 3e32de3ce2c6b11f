"""Target lists for coupons and their expected reach.

For each SKU whose plan uses a coupon, the ``k`` households a fitted model scores highest
(``household``, ``rank``, ``score``), and the *expected reach*: the share of the SKU's buyers
in the next 13 weeks that a list of ``k`` households covers, estimated by the model's mean
recall@k on the time split among SKUs like it (the cold end, few past buyers, separately from
the rest). The reach is what the market model's ``coupon_reach`` takes
(:mod:`simulator.market`): only that share of demand sees the coupon.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ingest.errors import DataError
from targeting.evaluate import COLD_MAX_BUYERS, rank_rows
from targeting.interactions import Interactions
from targeting.models import Targeter

TARGET_COLUMNS = ("sku", "household", "rank", "score")


def target_lists(model: Targeter, skus: Sequence[str], k: int) -> pd.DataFrame:
    """The top ``k`` households of a fitted ``model`` for each of ``skus``.

    Returns
    -------
    DataFrame
        ``sku``, ``household``, ``rank`` (1 = best), ``score``; ``k`` rows per SKU (fewer
        when fewer households are known), SKUs in the order given.
    """
    if k < 1:
        raise DataError(f"coupon target list size k = {k}; expected at least 1")
    inter = model.fitted_interactions()
    skus = [str(s) for s in skus]
    if not skus:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in TARGET_COLUMNS})
    rows = np.arange(inter.n_households)
    scores = model.score_codes(rows, inter.sku_codes(skus))
    ranked = rank_rows(scores, k)
    n_top = ranked.shape[0]
    return pd.DataFrame(
        {
            "sku": np.repeat(np.asarray(skus, dtype=object), n_top),
            "household": inter.households.to_numpy()[ranked.T.ravel()],
            "rank": np.tile(np.arange(1, n_top + 1), len(skus)),
            "score": np.take_along_axis(scores, ranked, axis=0).T.ravel(),
        }
    )


def past_buyers(inter: Interactions, skus: Sequence[str]) -> np.ndarray:
    """Distinct households that bought each of ``skus`` up to the cutoff."""
    pairs = np.unique(inter.s.astype(np.int64) * inter.n_households + inter.h)
    per_sku = np.bincount(pairs // inter.n_households, minlength=inter.n_skus)
    cols = inter.sku_codes(list(skus))
    return np.where(cols >= 0, per_sku[np.maximum(cols, 0)], 0)


def expected_reach(
    per_sku: pd.DataFrame, model: str, k: int, n_past_buyers: np.ndarray
) -> np.ndarray:
    """Expected reach of a ``k``-household list for SKUs with ``n_past_buyers`` past buyers:
    ``model``'s mean recall@k at the latest evaluated cutoff, among the evaluated SKUs of
    the same end (cold: at most ``COLD_MAX_BUYERS`` past buyers; else warm), or among all
    of them where that end had no SKU.

    Raises
    ------
    DataError
        When ``per_sku`` has no row of ``model`` or no ``recall@k`` column.
    """
    col = f"recall@{k}"
    rows = per_sku[per_sku["model"] == model]
    if rows.empty or col not in rows.columns:
        raise DataError(
            f"no time-split result for model {model!r} at k = {k}; evaluate it with that k"
        )
    rows = rows[rows["cutoff"] == rows["cutoff"].max()]
    overall = float(rows[col].mean())
    by_end = rows.groupby("cold")[col].mean()
    cold = np.asarray(n_past_buyers) <= COLD_MAX_BUYERS
    reach_cold = float(by_end.get(True, overall))
    reach_warm = float(by_end.get(False, overall))
    return np.clip(np.where(cold, reach_cold, reach_warm), 0.0, 1.0)
