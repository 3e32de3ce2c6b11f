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
        return np.asarray(stats.poisson.ppf(self._u(1, lam.shape), lam), dtype=float)

    def binomial(self, n: np.ndarray, p: np.ndarray) -> np.ndarray:
        n = np.asarray(n)
        return np.asarray(stats.binom.ppf(self._u(2, n.shape), n, p)).astype(np.int64)

    def as_generator(self) -> np.random.Generator:
        """This sampler, typed as the ``Generator`` that :func:`simulator.market.step` takes
        (it provides the only methods the market calls)."""
        return cast(np.random.Generator, self)
