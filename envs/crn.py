"""Common random numbers for evaluation: demand drawn by inverse CDF from fixed uniforms.

Comparing two policies on the same SKUs is far more precise when both face the same luck.
Seeding the same ``Generator`` is not enough: NumPy's Poisson and gamma samplers use a
varying number of random draws, so once two policies choose different prices their streams
drift apart. :class:`QuantileSampler` instead maps one fixed uniform per (slot, episode,
week, draw) through the inverse CDF. A policy that prices higher in a week sees the same
demand *quantile* as one that prices lower, so paired differences measure the policies, not
the noise.

It stands in for the ``Generator`` that :func:`simulator.market.step` draws from, providing
the three methods the market uses (``gamma`` for the negative-binomial mixing, ``poisson``,
``binomial`` for returns), each reading its own column of the uniforms. The distributions are
exactly the market's; only the way they are sampled differs.
"""

from __future__ import annotations

from typing import cast

import numpy as np
from scipy import special, stats

N_DRAWS = 3
"""Uniform columns per slot and week: gamma mixing, Poisson demand, binomial returns."""

_TINY = 1e-12

_POISSON_SEARCH_FROM_ZERO = 10.0
"""Below this mean the Poisson quantile is searched up from 0 (a few steps); above it, from
just below a Cornish-Fisher guess."""

_POISSON_GUESS_MARGIN = 4.0
"""Steps below the Cornish-Fisher guess where the upward search starts (the guess is within
one step for means above :data:`_POISSON_SEARCH_FROM_ZERO`)."""


def poisson_quantile(u: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """The smallest ``k`` with ``P(Poisson(lam) <= k) >= u``, elementwise (as
    ``scipy.stats.poisson.ppf``, about ten times faster).

    An upward search over the probability masses (``p(k + 1) = p(k) * lam / (k + 1)``), on
    the rows still searching only, starting at 0 for small means and a few steps below a
    Cornish-Fisher guess for large ones (where the CDF is started by ``scipy.special.pdtr``).
    A start that overshoots (rare) falls back to ``scipy.stats.poisson.ppf``.
    """
    u = np.asarray(u, dtype=float)
    lam = np.asarray(lam, dtype=float)
    k = np.zeros(lam.shape)
    pmf = np.exp(-lam)
    cdf = pmf.copy()
    big = np.flatnonzero(lam >= _POISSON_SEARCH_FROM_ZERO)
    if big.size:
        lb, ub = lam[big], u[big]
        z = special.ndtri(ub)
        kb = np.maximum(
            np.floor(lb + np.sqrt(lb) * z + (z * z - 1.0) / 6.0) - _POISSON_GUESS_MARGIN, 0.0
        )
        cb = special.pdtr(kb, lb)
        over = (kb > 0) & (ub <= cb)
        if over.any():
            kb[over] = stats.poisson.ppf(ub[over], lb[over])
            cb[over] = 1.0  # found: no search
        k[big] = kb
        pmf[big] = np.exp(-lb + kb * np.log(lb) - special.gammaln(kb + 1.0))
        cdf[big] = cb
    idx = np.flatnonzero(u > cdf)
    kk, pp, cc, ll, uu = k[idx], pmf[idx], cdf[idx], lam[idx], u[idx]
    # Rows found stay in the arrays (``live`` False, their k already stored) until 7 in 8
    # are found: the arrays are compacted a few times, not at every step (a quarter less
    # time; the steps of a live row are the same operations in the same order).
    live = np.ones(idx.size, dtype=bool)
    n_live = idx.size
    while n_live:
        kk += 1.0
        pp *= ll / kk
        cc += pp
        done = uu <= cc
        done &= live
        stuck = live & ~done & (pp == 0.0)  # the masses underflowed before reaching u
        if stuck.any():
            kk[stuck] = stats.poisson.ppf(uu[stuck], ll[stuck])
            done |= stuck
        n_done = int(np.count_nonzero(done))
        if n_done:
            k[idx[done]] = kk[done]
            n_live -= n_done
            if not n_live:
                break
            live &= ~done
            if 8 * n_live < live.size:
                idx, kk, pp, cc = idx[live], kk[live], pp[live], cc[live]
                ll, uu = ll[live], uu[live]
                live = np.ones(n_live, dtype=bool)
    return k


class QuantileSampler:
    """Inverse-CDF sampler over a fixed block of uniforms.

    Set :attr:`uniforms` (shape ``(n, N_DRAWS)``) before each market step; use
    :meth:`as_generator` to pass it where a ``Generator`` is expected.
    """

    def __init__(self) -> None:
        self.uniforms: np.ndarray = np.empty((0, N_DRAWS))

    def _u(self, column: int, size: tuple[int, ...]) -> np.ndarray:
        u = self.uniforms[:, column]
        if u.shape != size:
            raise ValueError(f"CRN uniforms have shape {u.shape}; the market asked for {size}")
        return np.clip(u, _TINY, 1.0 - _TINY)

    def gamma(self, shape: np.ndarray, scale: float = 1.0, size: tuple[int, ...] | None = None):
        shape = np.asarray(shape, dtype=float)
        u = self._u(0, shape.shape if size is None else tuple(np.atleast_1d(size)))
        return special.gammaincinv(shape, u) * scale

    def poisson(self, lam: np.ndarray) -> np.ndarray:
        lam = np.asarray(lam, dtype=float)
        return poisson_quantile(self._u(1, lam.shape), lam)

    def binomial(self, n: np.ndarray, p: np.ndarray) -> np.ndarray:
        n = np.asarray(n)
        return np.asarray(stats.binom.ppf(self._u(2, n.shape), n, p)).astype(np.int64)

    def as_generator(self) -> np.random.Generator:
        """This sampler, typed as the ``Generator`` that :func:`simulator.market.step` takes
        (it provides the only methods the market calls)."""
        return cast(np.random.Generator, self)
