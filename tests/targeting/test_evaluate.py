"""The time-split metrics against hand-checked cases, the interval machinery, the
interactions' weighting and refusals, and the target lists with their expected reach."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from ingest.dataset import Dataset
from ingest.errors import DataError
from targeting.evaluate import (
    best_baseline,
    evaluate_models,
    hits_at,
    ndcg_at_k,
    paired_difference,
    rank_rows,
    recall_at_k,
    split_data,
    summary_rows,
)
from targeting.interactions import baskets_of, build_interactions, weigh
from targeting.models import ALS, Popularity, RepeatBuyers
from targeting.targets import expected_reach, past_buyers, target_lists
from tests.targeting.planted import CUTOFF, planted_world


def test_recall_and_ndcg_on_a_hand_checked_case():
    # 5 households, 2 SKUs; scores rank households 4, 2, 0, 1, 3 for SKU 0
    scores = np.array([[0.3, 0.1], [0.2, 0.9], [0.8, 0.5], [0.1, 0.4], [0.9, np.nan]])
    truth = np.array([[1, 0], [0, 1], [0, 0], [1, 0], [1, 0]], dtype=bool)
    ranked = rank_rows(scores, 3)
    np.testing.assert_array_equal(ranked[:, 0], [4, 2, 0])
    np.testing.assert_array_equal(ranked[:, 1], [1, 2, 3])  # NaN ranks last
    hits = hits_at(ranked, truth)
    # SKU 0 has 3 buyers, hits at ranks 1 and 3; SKU 1 has 2 buyers (one unknown), hit at 1
    n_rel = np.array([3, 2])
    np.testing.assert_allclose(recall_at_k(hits, n_rel, 2), [1 / 3, 1 / 2])
    np.testing.assert_allclose(recall_at_k(hits, n_rel, 3), [2 / 3, 1 / 2])
    dcg0 = 1 + 1 / np.log2(4)
    idcg0 = 1 + 1 / np.log2(3) + 1 / np.log2(4)
    idcg1 = 1 + 1 / np.log2(3)
    np.testing.assert_allclose(ndcg_at_k(hits, n_rel, 3), [dcg0 / idcg0, 1 / idcg1])


def test_ties_go_to_the_lower_row():
    np.testing.assert_array_equal(rank_rows(np.array([[1.0], [2.0], [2.0], [1.0]]), 4)[:, 0],
                                  [1, 2, 0, 3])  # fmt: skip


@pytest.fixture(scope="module")
def per_sku():
    baskets, products, _ = planted_world(seed=1)
    skus = sorted(baskets["sku"].unique())[::3]
    data = split_data(baskets, CUTOFF, skus, products)
    models = [ALS(factors=16, iterations=10), RepeatBuyers(), Popularity()]
    return evaluate_models(data, models, ks=(25, 50))


def test_summary_rows_carry_intervals_around_the_means(per_sku):
    rows = summary_rows(per_sku, ks=(25, 50), seed=0, n_boot=200)
    assert {r["subset"] for r in rows} <= {"all", "cold"}
    for r in rows:
        assert set(r) >= {"model", "baseline", "cutoff", "k", "recall", "recall_ci", "ndcg",
                          "ndcg_ci", "n_skus"}  # fmt: skip
        lo, hi = r["recall_ci"]
        assert lo <= r["recall"] <= hi
    again = summary_rows(per_sku, ks=(25, 50), seed=0, n_boot=200)
    assert rows == again  # same seed, same intervals
    assert best_baseline(rows, k=50) in {"repeat", "popularity"}


def test_paired_difference_is_positive_where_als_wins(per_sku):
    (diff,) = paired_difference(per_sku, "als", "popularity", "recall@50", n_boot=200)
    assert diff["difference"] > 0 and diff["difference_ci"][0] > 0
    assert diff["relative"] > 0.5


def test_split_refuses_a_window_past_the_data():
    baskets, products, _ = planted_world(seed=1)
    with pytest.raises(DataError, match="Use a cutoff <= 13"):
        split_data(baskets, 20, ["S0001"], products)


def test_weightings():
    counts = sp.csr_matrix(np.array([[1.0, 0.0, 3.0], [2.0, 1.0, 0.0], [1.0, 0.0, 0.0]]))
    log_w = weigh(counts, "log")
    np.testing.assert_allclose(log_w.toarray()[0], [1.0, 0.0, 1.0 + np.log(3.0)])
    bm = weigh(counts, "bm25").toarray()
    assert np.all(bm[counts.toarray() > 0] > 0) and np.all(bm[counts.toarray() == 0] == 0)
    assert bm[0, 2] > bm[0, 0]  # rarer product, more occasions: more confidence
    with pytest.raises(Exception, match="expected one of"):
        weigh(counts, "tfidf")


def test_a_source_without_households_is_refused_clearly():
    ds = Dataset({"products": pd.DataFrame(), "sales": pd.DataFrame()}, "folder /x", "fp")
    with pytest.raises(DataError, match="no household baskets"):
        baskets_of(ds)
    with pytest.raises(DataError, match="no basket line on or before"):
        build_interactions(pd.DataFrame({"household_id": ["a"], "sku": ["x"], "week": [5]}), 2)


def test_target_lists_and_expected_reach(per_sku):
    baskets, products, _ = planted_world(seed=1)
    inter = build_interactions(baskets, CUTOFF, products)
    model = RepeatBuyers().fit(inter)
    lists = target_lists(model, ["S0003", "S0100"], k=5)
    assert list(lists.columns) == ["sku", "household", "rank", "score"]
    assert (
        len(lists) == 10
        and lists.groupby("sku")["rank"].apply(list).tolist() == [[1, 2, 3, 4, 5]] * 2
    )
    first = lists[lists["sku"] == "S0003"]
    assert first["score"].is_monotonic_decreasing
    reach = expected_reach(per_sku, "als", 50, past_buyers(inter, ["S0003", "S0100"]))
    assert reach.shape == (2,) and np.all((0 < reach) & (reach <= 1))
    assert reach[0] == pytest.approx(per_sku.loc[per_sku["model"] == "als", "recall@50"].mean())
    with pytest.raises(DataError, match="evaluate it with that k"):
        expected_reach(per_sku, "als", 7, np.array([3]))
