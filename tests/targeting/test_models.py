"""The targeting models: the factorisation recovers planted household segments better than
popularity, nothing after the cutoff reaches a model, the same seed gives the same rankings,
and the baselines rank whom they say they rank."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ingest.errors import ConfigError
from targeting.evaluate import evaluate_models, rank_rows, split_data
from targeting.interactions import build_interactions
from targeting.models import (
    ALS,
    BPR,
    MODELS,
    ItemKNN,
    Popularity,
    RepeatBuyers,
    RepeatThenALS,
    SubcategoryBuyers,
    make_model,
)
from tests.targeting.planted import CUTOFF, planted_world

SMALL_ALS = dict(factors=16, iterations=10, regularization=0.05)


@pytest.fixture(scope="module")
def world():
    return planted_world(seed=0)


@pytest.fixture(scope="module")
def split(world):
    baskets, products, _ = world
    skus = sorted(baskets["sku"].unique())
    return split_data(baskets, CUTOFF, skus, products)


def test_als_recovers_the_segments_better_than_popularity(split, world):
    _, _, segment = world
    models = [ALS(**SMALL_ALS), ItemKNN(), Popularity(), RepeatBuyers()]
    per_sku = evaluate_models(split, models, ks=(50,))
    recall = per_sku.groupby("model")["recall@50"].mean()
    assert recall["als"] > 1.5 * recall["popularity"]
    assert recall["itemknn"] > 1.5 * recall["popularity"]
    # and the households it puts first are the SKU's own segment
    model = ALS(**SMALL_ALS).fit(split.interactions)
    col = split.cols[:1]
    top = rank_rows(model.score_codes(np.arange(split.interactions.n_households), col), 40)
    households = split.interactions.households[top[:, 0]]
    sku_segment = int(split.skus[0][1:]) // 50  # 25 SKUs a category, 2 categories a segment
    assert (segment[households] == sku_segment).mean() >= 0.75  # 0.25 by chance


def test_nothing_after_the_cutoff_reaches_a_model(world):
    baskets, products, _ = world
    later = baskets["week"] > CUTOFF
    # scramble every line after the cutoff: households, SKUs and all
    shuffled = baskets.copy()
    rng = np.random.default_rng(5)
    shuffled.loc[later, "household_id"] = rng.permutation(baskets.loc[later, "household_id"])
    shuffled.loc[later, "sku"] = rng.permutation(baskets.loc[later, "sku"].to_numpy())
    a = build_interactions(baskets, CUTOFF, products)
    b = build_interactions(shuffled, CUTOFF, products)
    skus = sorted(baskets["sku"].unique())[:30]
    for name in MODELS:
        params = SMALL_ALS if issubclass(MODELS[name], ALS) else {}
        if name == "bpr":
            params = dict(factors=8, iterations=5)
        sa = make_model(name, seed=1, **params).fit(a).score(a.households, skus)
        sb = make_model(name, seed=1, **params).fit(b).score(a.households, skus)
        np.testing.assert_array_equal(sa, sb, err_msg=name)
    assert a.week.max() == CUTOFF


@pytest.mark.parametrize("cls", [ALS, BPR, RepeatThenALS])
def test_same_seed_same_rankings(split, cls):
    params = dict(factors=8, iterations=5)
    rows = np.arange(split.interactions.n_households)
    first = cls(seed=3, **params).fit(split.interactions).score_codes(rows, split.cols)
    again = cls(seed=3, **params).fit(split.interactions).score_codes(rows, split.cols)
    other = cls(seed=4, **params).fit(split.interactions).score_codes(rows, split.cols)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def _tiny():
    baskets = pd.DataFrame(
        {
            "household_id": ["a", "a", "b", "b", "b", "c", "c", "d"],
            "sku": ["x", "x", "x", "y", "z", "y", "y", "z"],
            "week": [1, 9, 2, 10, 10, 3, 4, 10],
        }
    )
    products = pd.DataFrame({"sku": ["x", "y", "z"], "category": ["G1", "G2", "G1"]})
    return build_interactions(baskets, 10, products)


def test_repeat_ranks_recent_frequent_buyers_first_then_the_busiest():
    inter = _tiny()
    scores = RepeatBuyers(half_life_weeks=4.0).fit(inter).score(["a", "b", "c", "d"], ["x"])
    # a: weeks 1 and 9 (0.5**(9/4) + 0.5**(1/4)); b: week 2 (0.5**2); c, d never bought x
    order = np.argsort(-scores[:, 0], kind="stable")
    # then c before d: c has two occasions, d one
    assert list(np.array(["a", "b", "c", "d"])[order]) == ["a", "b", "c", "d"]
    assert scores[0, 0] == pytest.approx(0.5 ** (9 / 4) + 0.5 ** (1 / 4), rel=1e-6)


def test_subcategory_and_popularity_and_unknowns():
    inter = _tiny()
    sub = SubcategoryBuyers(half_life_weeks=1.0).fit(inter)
    s = sub.score(["a", "b", "c", "d"], ["z"])[:, 0]  # group G1 = x and z
    assert s[3] > s[0]  # d bought z in week 10; a bought x in week 9
    assert s[2] < s[0]  # c never bought G1
    pop = Popularity().fit(inter).score(["a", "b", "c", "d", "nobody"], ["x", "unknown"])
    assert pop[1, 0] == np.nanmax(pop) and np.isnan(pop[4]).all()
    assert pop[1, 1] > pop[3, 1]  # an unknown SKU ranks by activity alone
    with pytest.raises(ConfigError, match="not fitted"):
        Popularity().score(["a"], ["x"])
    with pytest.raises(ConfigError, match="expected one of"):
        make_model("magic")


def test_blend_puts_past_buyers_first():
    inter = _tiny()
    blend = RepeatThenALS(factors=2, iterations=3).fit(inter)
    s = blend.score(["a", "b", "c", "d"], ["x"])[:, 0]
    assert min(s[0], s[1]) > max(s[2], s[3])  # a and b bought x
    assert s[0] > s[1]
