"""The time-split evaluation: fit up to week ``c``, rank households for SKUs, score against who
bought each SKU in weeks ``c + 1 .. c + horizon_weeks``.

Metrics, per SKU, with binary relevance (a household is relevant when it bought the SKU in
the window):

- ``recall@k = hits in the top k / number of buyers in the window``: the share of the SKU's
  next buyers a list of ``k`` households covers, which is the coupon's *reach*. Buyers the
  model could not rank (households first seen after the cutoff) stay in the denominator.
- ``ndcg@k = DCG@k / IDCG@k`` with ``DCG@k = sum_{i<k} hit_i / log2(i + 2)`` and the ideal
  list putting ``min(buyers, k)`` buyers first.

Only SKUs with at least one buyer in the window are scored (the others have no relevant
household: every model's recall is undefined there). Means over SKUs come with percentile
bootstrap intervals over SKUs (seeded resamples); two models are compared on the same
resamples (paired), so their difference has its own interval.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ingest.errors import DataError
from targeting.interactions import Interactions, build_interactions, buyers_between
from targeting.models import Targeter

log = logging.getLogger(__name__)

KS: tuple[int, ...] = (25, 50, 100)
HORIZON_WEEKS = 13
# SKUs with at most this many distinct past buyers are the "cold end": too few households to
# learn the SKU from its own history.
COLD_MAX_BUYERS = 10
N_BOOTSTRAP = 1000
CI_LEVEL = 0.95
SUBSETS = ("all", "cold")


def rank_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """Row positions of the ``k`` highest scores of each column, best first, shape
    ``(min(k, n_rows), n_cols)``; ties go to the lower row, ``NaN`` ranks last."""
    s = np.where(np.isnan(scores), -np.inf, scores)
    order = np.argsort(-s, axis=0, kind="stable")
    return order[: min(k, s.shape[0])]


def hits_at(ranked: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``hits[i, j]``: whether the household ranked ``i``-th for column ``j`` is relevant."""
    return np.take_along_axis(truth, ranked, axis=0)


def recall_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Hits in the top ``k`` over the number of relevant households, per column."""
    n = np.asarray(n_relevant, dtype=float)
    return hits[:k].sum(axis=0) / np.where(n > 0, n, np.nan)


def ndcg_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Normalised discounted cumulative gain at ``k`` with binary relevance, per column."""
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    top = hits[:k].astype(float)
    dcg = (top * discount[: top.shape[0], None]).sum(axis=0)
    cum = np.concatenate([[0.0], np.cumsum(discount)])
    ideal = cum[np.minimum(np.asarray(n_relevant, dtype=np.int64), k)]
    return dcg / np.where(ideal > 0, ideal, np.nan)


@dataclass
class SplitData:
    """One cutoff's interactions, the SKUs scored and who bought them afterwards.

    Attributes
    ----------
    interactions : Interactions
        Lines up to the cutoff.
    skus : ndarray of str
        The SKUs evaluated (asked for, with at least one buyer in the window).
    cols : ndarray of int
        Their column codes in ``interactions`` (-1: nobody bought it before the cutoff).
    truth : ndarray of bool of shape (n_households, n_skus)
        Known households that bought each SKU in the window.
    n_buyers : ndarray of int
        Buyers in the window, unknown households included.
    n_past_buyers : ndarray of int
        Distinct households that bought each SKU up to the cutoff.
    """

    interactions: Interactions
    skus: np.ndarray
    cols: np.ndarray
    truth: np.ndarray
    n_buyers: np.ndarray
    n_past_buyers: np.ndarray


def split_data(
    baskets: pd.DataFrame,
    cutoff: int,
    skus: Sequence[str],
    products: pd.DataFrame | None = None,
    horizon_weeks: int = HORIZON_WEEKS,
) -> SplitData:
    """The interactions up to ``cutoff`` and, for the ``skus`` bought in the next
    ``horizon_weeks`` weeks, the buyers to score against."""
    last = int(baskets["week"].max())
    if cutoff + horizon_weeks > last:
        raise DataError(
            f"coupon evaluation at cutoff week {cutoff} needs baskets up to week "
            f"{cutoff + horizon_weeks}; they end at week {last}. Use a cutoff <= "
            f"{last - horizon_weeks}"
        )
    inter = build_interactions(baskets, cutoff, products)
    future = buyers_between(baskets, cutoff + 1, cutoff + horizon_weeks)
    asked = pd.Index(pd.unique(np.asarray(skus, dtype=str)))
    future = future[future["sku"].isin(asked)]
    n_buyers = future.groupby("sku").size()
    keep = asked[asked.isin(n_buyers.index)]
    col_of = pd.Series(np.arange(len(keep)), index=keep)
    rows = inter.household_codes(future["household_id"])
    known = rows >= 0
    truth = np.zeros((inter.n_households, len(keep)), dtype=bool)
    truth[rows[known], col_of[future["sku"].to_numpy()[known]].to_numpy()] = True
    cols = inter.sku_codes(keep)
    pairs = np.unique(inter.s.astype(np.int64) * inter.n_households + inter.h)
    past = np.bincount(pairs // inter.n_households, minlength=inter.n_skus)
    n_past = np.where(cols >= 0, past[np.maximum(cols, 0)], 0)
    return SplitData(
        interactions=inter,
        skus=np.asarray(keep, dtype=str),
        cols=cols,
        truth=truth,
        n_buyers=n_buyers.reindex(keep).to_numpy(dtype=np.int64),
        n_past_buyers=n_past.astype(np.int64),
    )


def evaluate_models(
    data: SplitData, models: Sequence[Targeter], ks: Sequence[int] = KS
) -> pd.DataFrame:
    """Fit every model on ``data.interactions`` and score its rankings.

    Returns
    -------
    DataFrame
        One row per (model, SKU): ``model``, ``baseline``, ``cutoff``, ``sku``,
        ``n_buyers``, ``n_past_buyers``, ``cold``, ``recall@k`` and ``ndcg@k`` for every
        ``k``; ``seconds`` (fit and score of the model, the same on each of its rows).
    """
    inter = data.interactions
    rows = np.arange(inter.n_households)
    k_max = max(ks)
    frames = []
    for model in models:
        t0 = time.perf_counter()
        model.fit(inter)
        scores = model.score_codes(rows, data.cols)
        ranked = rank_rows(scores, k_max)
        seconds = time.perf_counter() - t0
        hits = hits_at(ranked, data.truth)
        frame = pd.DataFrame(
            {
                "model": model.name,
                "baseline": model.baseline,
                "cutoff": inter.cutoff,
                "sku": data.skus,
                "n_buyers": data.n_buyers,
                "n_past_buyers": data.n_past_buyers,
                "cold": data.n_past_buyers <= COLD_MAX_BUYERS,
            }
        )
        for k in ks:
            frame[f"recall@{k}"] = recall_at_k(hits, data.n_buyers, k)
            frame[f"ndcg@{k}"] = ndcg_at_k(hits, data.n_buyers, k)
        frame["seconds"] = seconds
        log.info(
            "coupons: %s at cutoff %d: recall@%d %.3f over %d SKUs (%.1f s)",
            model.name,
            inter.cutoff,
            k_max,
            float(frame[f"recall@{k_max}"].mean()),
            len(frame),
            seconds,
        )
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _resamples(n: int, seed: int, cutoff: int, subset: str, n_boot: int) -> np.ndarray:
    """Bootstrap index draws ``(n_boot, n)``: the same for every model of one (cutoff,
    subset), so differences between models are paired."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, cutoff, SUBSETS.index(subset)]))
    return rng.integers(0, n, size=(n_boot, n))


def interval(value: object) -> tuple[float, float]:
    """A stored interval (``[low, high]``) as two floats."""
    pair = list(value)  # type: ignore[call-overload]
    return float(pair[0]), float(pair[1])


def _interval(draws: np.ndarray) -> list[float]:
    tail = (1.0 - CI_LEVEL) / 2.0
    lo, hi = np.quantile(draws, [tail, 1.0 - tail])
    return [float(lo), float(hi)]


def _subset(per_sku: pd.DataFrame, subset: str) -> pd.DataFrame:
    return per_sku[per_sku["cold"]] if subset == "cold" else per_sku


def summary_rows(
    per_sku: pd.DataFrame, ks: Sequence[int] = KS, seed: int = 0, n_boot: int = N_BOOTSTRAP
) -> list[dict[str, object]]:
    """The evaluation table: one row per (subset, cutoff, model, k) with the mean recall and
    NDCG over SKUs and their bootstrap intervals (``{model, baseline, cutoff, k, recall,
    recall_ci, ndcg, ndcg_ci, n_skus, subset}``)."""
    out: list[dict[str, object]] = []
    for subset in SUBSETS:
        part = _subset(per_sku, subset)
        for cutoff in sorted(int(c) for c in part["cutoff"].unique()):
            at_cut = part[part["cutoff"] == cutoff]
            models = list(dict.fromkeys(at_cut["model"]))
            n = int((at_cut["model"] == models[0]).sum())
            if n == 0:
                continue
            idx = _resamples(n, seed, cutoff, subset, n_boot)
            for name in models:
                rows = at_cut[at_cut["model"] == name]
                for k in ks:
                    rec = rows[f"recall@{k}"].to_numpy(dtype=float)
                    ndcg = rows[f"ndcg@{k}"].to_numpy(dtype=float)
                    out.append(
                        {
                            "model": name,
                            "baseline": bool(rows["baseline"].iloc[0]),
                            "cutoff": cutoff,
                            "k": int(k),
                            "recall": float(rec.mean()),
                            "recall_ci": _interval(rec[idx].mean(axis=1)),
                            "ndcg": float(ndcg.mean()),
                            "ndcg_ci": _interval(ndcg[idx].mean(axis=1)),
                            "n_skus": n,
                            "subset": subset,
                        }
                    )
    return out


def paired_difference(
    per_sku: pd.DataFrame,
    model: str,
    other: str,
    metric: str = "recall@50",
    *,
    subset: str = "all",
    seed: int = 0,
    n_boot: int = N_BOOTSTRAP,
) -> list[dict[str, object]]:
    """``model`` minus ``other`` on ``metric``, per cutoff: the mean difference, its paired
    bootstrap interval and the relative change ``mean(model) / mean(other) - 1``."""
    part = _subset(per_sku, subset)
    out: list[dict[str, object]] = []
    for cutoff in sorted(int(c) for c in part["cutoff"].unique()):
        at_cut = part[part["cutoff"] == cutoff]
        a = at_cut.loc[at_cut["model"] == model, metric].to_numpy(dtype=float)
        b = at_cut.loc[at_cut["model"] == other, metric].to_numpy(dtype=float)
        if a.size == 0 or a.size != b.size:
            continue
        idx = _resamples(a.size, seed, cutoff, subset, n_boot)
        diff = a - b
        out.append(
            {
                "model": model,
                "other": other,
                "metric": metric,
                "cutoff": cutoff,
                "subset": subset,
                "difference": float(diff.mean()),
                "difference_ci": _interval(diff[idx].mean(axis=1)),
                "relative": float(a.mean() / b.mean() - 1.0) if b.mean() > 0 else float("nan"),
                "n_skus": int(a.size),
            }
        )
    return out


def best_baseline(rows: list[dict[str, object]], metric: str = "recall", k: int = 50) -> str:
    """The baseline with the highest mean ``metric@k`` over the cutoffs (subset ``all``)."""
    table = pd.DataFrame(rows)
    base = table[(table["baseline"]) & (table["k"] == k) & (table["subset"] == "all")]
    if base.empty:
        raise DataError("no baseline in the evaluation rows")
    return str(base.groupby("model")[metric].mean().idxmax())
