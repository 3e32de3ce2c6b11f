"""Models that rank households for a SKU, behind one interface.

Every model is fitted on the :class:`~targeting.interactions.Interactions` up to a cutoff
(``fit(interactions)``, returns ``self``) and scores households for SKUs
(``score(households, skus)``: an array of shape ``(n_households, n_skus)``, higher = more
likely to buy; ``NaN`` for a household the model never saw). ``score_codes`` does the same on
the interactions' row and column codes, which is what the evaluation uses.

The models
----------
- ``als``: implicit-feedback matrix factorisation (Hu, Koren and Volinsky 2008), the
  ``implicit`` library's alternating least squares on the weighted occasions, seeded
  and on one thread so the same seed gives the same factors;
- ``bpr``: Bayesian personalised ranking (``implicit``), the pairwise alternative;
- ``repeat`` (baseline): the SKU's past buyers, by recency-weighted purchase occasions
  (half-life 13 weeks), which in grocery is hard to beat;
- ``subcategory`` (baseline): households that bought the SKU's sub-category recently
  (half-life 4 weeks);
- ``popularity`` (baseline): the busiest households (most occasions), the same list for
  every SKU;
- ``itemknn``: item-based collaborative filtering (cosine between SKUs' buyer columns);
- ``repeat+als`` (blend): the SKU's past buyers first, in the order of ``repeat``, then every
  other household by ``als`` preference times its shopping activity;
- ``repeat+itemknn`` (blend): past buyers first, then ``itemknn``'s order.

Ties (every non-buyer scores 0 in ``repeat``) are broken by the household's activity, so a
baseline's list is never filled in id order.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from ingest.errors import ConfigError
from targeting.interactions import Interactions, Weighting

log = logging.getLogger(__name__)

# A tie-break weight small enough never to reorder households the primary score separates
# (recency-weighted occasions differ by far more than 1e-6 between distinct histories).
TIE_BREAK = 1e-6
REPEAT_HALF_LIFE_WEEKS = 13.0
SUBCATEGORY_HALF_LIFE_WEEKS = 4.0


@dataclass
class Targeter:
    """Base of the targeting models: fitted state ends in ``_``."""

    name: ClassVar[str] = "base"
    baseline: ClassVar[bool] = False
    interactions_: Interactions | None = field(default=None, init=False, repr=False)
    activity_: np.ndarray = field(default_factory=lambda: np.zeros(0), init=False, repr=False)

    def fit(self, interactions: Interactions) -> Targeter:
        """Learn from the interactions up to their cutoff; returns ``self``."""
        self.interactions_ = interactions
        occasions = np.bincount(interactions.h, minlength=interactions.n_households)
        self.activity_ = occasions / max(float(occasions.max()), 1.0)
        self._fit(interactions)
        return self

    def _fit(self, interactions: Interactions) -> None:
        """What a model learns beyond the household activity."""

    def _score(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def fitted_interactions(self) -> Interactions:
        """The interactions the model was fitted on (a ConfigError before ``fit``)."""
        if self.interactions_ is None:
            raise ConfigError(f"targeting model {self.name!r} is not fitted; call fit() first")
        return self.interactions_

    def score_codes(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Scores of households ``rows`` for SKUs ``cols`` (codes of the fitted
        interactions; a column code of -1, a SKU nobody bought, scores by activity only),
        shape ``(len(rows), len(cols))``."""
        self.fitted_interactions()
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        out = np.full((rows.size, cols.size), np.nan)
        kr, kc = rows >= 0, cols >= 0
        if kr.any() and kc.any():
            out[np.ix_(kr, kc)] = self._score(rows[kr], cols[kc])
        if kr.any() and (~kc).any():
            out[np.ix_(kr, ~kc)] = TIE_BREAK * self.activity_[rows[kr]][:, None]
        return out

    def score(self, households: Any, skus: Any) -> np.ndarray:
        """Scores of ``households`` (ids) for ``skus`` (ids), shape
        ``(n_households, n_skus)``; ``NaN`` for a household unseen up to the cutoff."""
        inter = self.fitted_interactions()
        return self.score_codes(inter.household_codes(households), inter.sku_codes(skus))


@dataclass
class Popularity(Targeter):
    """The busiest households first (most purchase occasions), whatever the SKU."""

    name: ClassVar[str] = "popularity"
    baseline: ClassVar[bool] = True

    def _score(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return np.repeat(self.activity_[rows][:, None], cols.size, axis=1)


@dataclass
class RepeatBuyers(Targeter):
    """The SKU's past buyers, by purchase occasions discounted with ``half_life_weeks``."""

    name: ClassVar[str] = "repeat"
    baseline: ClassVar[bool] = True
    half_life_weeks: float = REPEAT_HALF_LIFE_WEEKS
    recency_: sp.csc_matrix | None = field(default=None, init=False, repr=False)

    def _fit(self, interactions: Interactions) -> None:
        self.recency_ = interactions.recency(self.half_life_weeks).tocsc()

    def occasions(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Recency-weighted occasions of households ``rows`` for SKUs ``cols`` (codes)."""
        assert self.recency_ is not None
        return np.asarray(self.recency_[:, cols].toarray()[rows])

    def _score(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return self.occasions(rows, cols) + TIE_BREAK * self.activity_[rows][:, None]


@dataclass
class SubcategoryBuyers(Targeter):
    """Households that bought the SKU's sub-category recently (occasions discounted with
    ``half_life_weeks``); a SKU of unknown sub-category scores by its own buyers."""

    name: ClassVar[str] = "subcategory"
    baseline: ClassVar[bool] = True
    half_life_weeks: float = SUBCATEGORY_HALF_LIFE_WEEKS
    by_group_: sp.csc_matrix | None = field(default=None, init=False, repr=False)
    own_: sp.csc_matrix | None = field(default=None, init=False, repr=False)

    def _fit(self, interactions: Interactions) -> None:
        recency = interactions.recency(self.half_life_weeks)
        g = interactions.groups
        known = g >= 0
        n_groups = int(g.max()) + 1 if known.any() else 0
        onehot = sp.csr_matrix(
            (np.ones(int(known.sum())), (np.flatnonzero(known), g[known])),
            shape=(interactions.n_skus, max(n_groups, 1)),
        )
        self.by_group_ = (recency @ onehot).tocsc()
        self.own_ = recency.tocsc()

    def _score(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        assert self.by_group_ is not None and self.own_ is not None
        g = self.fitted_interactions().groups[cols]
        out = np.empty((rows.size, cols.size))
        known = g >= 0
        if known.any():
            out[:, known] = self.by_group_[:, g[known]].toarray()[rows]
        if (~known).any():
            out[:, ~known] = self.own_[:, cols[~known]].toarray()[rows]
        return out + TIE_BREAK * self.activity_[rows][:, None]


@dataclass
class ALS(Targeter):
    """Implicit-feedback matrix factorisation by alternating least squares (``implicit``).

    Parameters
    ----------
    factors : int
        Latent dimensions.
    regularization : float
        L2 penalty on the factors.
    alpha : float
        Confidence scale: a weighted occasion ``x`` gets confidence ``1 + alpha * x``.
    iterations : int
        ALS sweeps.
    weighting : {"log", "bm25"}
        How occasions become confidences (:func:`targeting.interactions.weigh`); ``log``
        ranked better than ``bm25`` on Complete Journey (BM25 damps the heavy shoppers, who
        are the likeliest buyers).
    seed : int
        Seed of the initial factors; with one thread the same seed gives the same factors.
    """

    name: ClassVar[str] = "als"
    factors: int = 64
    regularization: float = 0.05
    alpha: float = 1.0
    iterations: int = 15
    weighting: Weighting = "log"
    seed: int = 0
    user_factors_: np.ndarray | None = field(default=None, init=False, repr=False)
    item_factors_: np.ndarray | None = field(default=None, init=False, repr=False)

    def _make(self) -> Any:
        from implicit.als import AlternatingLeastSquares

        return AlternatingLeastSquares(
            factors=self.factors,
            regularization=self.regularization,
            alpha=self.alpha,
            iterations=self.iterations,
            random_state=self.seed,
            num_threads=1,
            use_gpu=False,
            calculate_training_loss=False,
        )

    def _fit(self, interactions: Interactions) -> None:
        conf = interactions.confidence(self.weighting).astype(np.float32)
        # One BLAS thread and one implicit thread: the solves are then in a fixed order and
        # the same seed gives bit-identical factors (implicit checks the BLAS threads when
        # the model is made, so both steps run under the limit).
        with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
            # implicit warns about a multi-threaded OpenBLAS it may see loaded (torch's
            # libraries, for one) even when the limit above holds for the fit.
            warnings.filterwarnings("ignore", "OpenBLAS is configured", RuntimeWarning)
            model = self._make()
            model.fit(conf, show_progress=False)
        self.user_factors_ = np.asarray(model.user_factors, dtype=np.float64)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float64)
        log.debug("%s: %d x %d factors", self.name, *self.user_factors_.shape)

    def _score(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        assert self.user_factors_ is not None and self.item_factors_ is not None
        return np.asarray(self.user_factors_[rows] @ self.item_factors_[cols].T)


@dataclass
class BPR(ALS):
    """Bayesian personalised ranking (``implicit``): pairwise, sampled, seeded, one thread.

    ``learning_rate`` is the SGD step; the other parameters are :class:`ALS`'s (``alpha`` is
    unused: BPR reads only which occasions exist)."""

    name: ClassVar[str] = "bpr"
    learning_rate: float = 0.05
    iterations: int = 100

    def _make(self) -> Any:
        from implicit.bpr import BayesianPersonalizedRanking

        return BayesianPersonalizedRanking(
            factors=self.factors,
            learning_rate=self.learning_rate,
            regularization=self.regularization,
            iterations=self.iterations,
            random_state=self.seed,
            num_threads=1,
            use_gpu=False,
        )


@dataclass
class ItemKNN(Targeter):
    """Item-based collaborative filtering: a household scores for a SKU by the similarity of
    what it bought to that SKU, ``score(h, s) = sum_j x_hj * sim(j, s)`` over the SKU's
    ``neighbours`` most similar SKUs (cosine of the weighted occasion columns; the SKU itself
    excluded, so this is what the household's other purchases say).

    Parameters
    ----------
    neighbours : int
        Similar SKUs kept per scored SKU.
    weighting : {"bm25", "log"}
        How occasions are weighted before the cosine.
    """

    name: ClassVar[str] = "itemknn"
    neighbours: int = 400
    weighting: Weighting = "bm25"
    x_: sp.csr_matrix | None = field(default=None, init=False, repr=False)
    xt_: sp.csr_matrix | None = field(default=None, init=False, repr=False)
    norms_: np.ndarray = field(default_factory=lambda: np.zeros(0), init=False, repr=False)

    def _fit(self, interactions: Interactions) -> None:
        x = interactions.confidence(self.weighting)
        self.x_ = x
        self.xt_ = x.T.tocsr()
        self.norms_ = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())

    def similar(self, cols: np.ndarray) -> sp.csc_matrix:
        """Cosine similarities of every SKU to SKUs ``cols``, the top ``neighbours`` per
        column kept (the SKU itself dropped), shape ``(n_skus, len(cols))``."""
        assert self.x_ is not None and self.xt_ is not None
        sim = (self.xt_ @ self.x_[:, cols]).tocsc()
        norms = self.norms_
        out_rows, out_cols, out_vals = [], [], []
        for j, col in enumerate(cols):
            lo, hi = sim.indptr[j], sim.indptr[j + 1]
            rows, vals = sim.indices[lo:hi], sim.data[lo:hi]
            keep = rows != col
            rows, vals = rows[keep], vals[keep] / np.maximum(norms[rows[keep]] * norms[col], 1e-12)
            if vals.size > self.neighbours:
                top = np.argpartition(-vals, self.neighbours - 1)[: self.neighbours]
                rows, vals = rows[top], vals[top]
            out_rows.append(rows)
            out_cols.append(np.full(rows.size, j))
            out_vals.append(vals)
        return sp.csc_matrix(
            (np.concatenate(out_vals), (np.concatenate(out_rows), np.concatenate(out_cols))),
            shape=(sim.shape[0], len(cols)),
        )

    def _score(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        assert self.x_ is not None
        return np.asarray((self.x_[rows] @ self.similar(cols)).toarray())


@dataclass
class RepeatThenKNN(ItemKNN):
    """The SKU's past buyers first (in :class:`RepeatBuyers`' order), then everyone else in
    :class:`ItemKNN`'s order."""

    name: ClassVar[str] = "repeat+itemknn"
    half_life_weeks: float = REPEAT_HALF_LIFE_WEEKS
    repeat_: RepeatBuyers | None = field(default=None, init=False, repr=False)

    def _fit(self, interactions: Interactions) -> None:
        super()._fit(interactions)
        repeat = RepeatBuyers(half_life_weeks=self.half_life_weeks)
        repeat.fit(interactions)
        self.repeat_ = repeat

    def _score(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        assert self.repeat_ is not None
        return repeat_first(self.repeat_.occasions(rows, cols), super()._score(rows, cols))


def repeat_first(repeat: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Past buyers (``repeat > 0``) above everyone, in repeat order; the rest in ``other``'s
    order (squashed into (0, 1) so it never reaches a past buyer)."""
    squashed = 0.5 + np.arctan(other) / np.pi
    return np.where(repeat > 0, 1.0 + repeat, squashed)


@dataclass
class RepeatThenALS(ALS):
    """The SKU's past buyers first (in :class:`RepeatBuyers`' order), then everyone else by
    the factorisation's preference times how much the household shops,
    ``max(als, 0) * activity ** activity_power``: ALS says what a household likes, not how
    often it shops, and a household that shops twice as often is about twice as likely to
    buy a SKU it likes within 13 weeks (on Complete Journey this ordering fills the list
    better than ALS alone, see docs/coupons.md)."""

    name: ClassVar[str] = "repeat+als"
    half_life_weeks: float = REPEAT_HALF_LIFE_WEEKS
    activity_power: float = 1.0
    repeat_: RepeatBuyers | None = field(default=None, init=False, repr=False)

    def _fit(self, interactions: Interactions) -> None:
        super()._fit(interactions)
        repeat = RepeatBuyers(half_life_weeks=self.half_life_weeks)
        repeat.fit(interactions)
        self.repeat_ = repeat

    def _score(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        assert self.repeat_ is not None
        preference = np.maximum(super()._score(rows, cols), 0.0)
        fill = preference * (self.activity_[rows][:, None] ** self.activity_power)
        return repeat_first(self.repeat_.occasions(rows, cols), fill)


MODELS: dict[str, type[Targeter]] = {
    m.name: m
    for m in (
        ALS,
        BPR,
        ItemKNN,
        RepeatThenALS,
        RepeatThenKNN,
        RepeatBuyers,
        SubcategoryBuyers,
        Popularity,
    )
}
DEFAULT_MODELS: tuple[str, ...] = (
    "als",
    "repeat+als",
    "itemknn",
    "repeat+itemknn",
    "repeat",
    "subcategory",
    "popularity",
)


def make_model(name: str, seed: int = 0, **params: Any) -> Targeter:
    """A model by name (see :data:`MODELS`), seeded where it draws random numbers."""
    if name not in MODELS:
        raise ConfigError(f"targeting model {name!r}; expected one of {sorted(MODELS)}")
    cls = MODELS[name]
    if issubclass(cls, ALS):
        params = {"seed": seed, **params}
    try:
        return cls(**params)
    except TypeError as err:
        raise ConfigError(f"targeting model {name!r}: {err}") from None


def model_table(models: list[Targeter]) -> pd.DataFrame:
    """Name and baseline flag of each model (for reports)."""
    return pd.DataFrame(
        {"model": [m.name for m in models], "baseline": [m.baseline for m in models]}
    )
