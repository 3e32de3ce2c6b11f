"""Per-SKU common random numbers: uniforms keyed by (seed, SKU, episode, draw).

Two plans compared on one SKU must face the same luck, and that luck must belong to the SKU
alone: it must not depend on the SKU's neighbours in the catalog, on how the SKUs are cut into
chunks, on their order, or on the plans the *other* SKUs follow. A stream generator
(``np.random.Generator``) shared by several SKUs cannot give that: how many numbers a SKU
consumes depends on the others. Here every uniform is computed on its own from its key.

How
---
A counter-based generator. The uniform with key ``(seed, sku_key, episode, counter)`` is::

    row  = mix(mix(mix(seed) ^ sku_key) ^ episode)        # one per SKU and episode
    bits = mix(row ^ (counter + 1) * GOLDEN)
    u    = ((bits >> 11) + 0.5) / 2**53                    # in (0, 1), never 0 or 1

where ``mix`` is SplitMix64's finalizer (a bijection of 64-bit words with full avalanche; as
a counter generator SplitMix64 passes BigCrush) and ``GOLDEN`` the 64-bit golden ratio. All
of it is vectorized NumPy on ``uint64`` arrays, about as fast as drawing from a ``Generator``.

Counters: week ``t`` owns ``t * WEEK_COUNTERS .. (t + 1) * WEEK_COUNTERS - 1``: first the
:data:`envs.crn.N_DRAWS` columns of :class:`envs.crn.QuantileSampler` (Poisson demand and
binomial returns by inverse CDF), then those of the gamma mixing draw (:func:`keyed_gamma`).
The parameter draws of :meth:`simulator.demand.Catalog.sample` use their own range from
:data:`PARAMETER_COUNTER`.

Demand by inverse CDF, the mixing by rejection
----------------------------------------------
The Poisson draw is where two plans differ (its mean depends on the price), so it is an
inverse CDF: a deeper discount sees the same quantile, a larger demand. The gamma draw that
makes demand negative-binomial depends only on the SKU's dispersion, never on the plan, so
any exact draw keyed by SKU, episode and week pairs the plans as well. :func:`keyed_gamma`
uses Marsaglia and Tsang's rejection method on keyed uniforms (a fixed number of trials, then
the inverse CDF for the rare draw that rejects them all): exact, and some fifty times faster
than ``scipy.special.gammaincinv``, which dominated the run's simulation time.

The SKU key
-----------
``sku_key`` is the first 8 bytes of BLAKE2b of the SKU id as text (:func:`sku_keys`). It
depends on the id only (unlike Python's salted ``hash``), so a SKU keeps its numbers when the
catalog is filtered, reordered or chunked, in any process on any platform: the what-if of one
SKU reproduces that SKU's row of the run's summary. Two different ids share their numbers
only if their 64-bit keys collide (probability about ``n_skus**2 / 2**65``). A SKU id listed
twice in one catalog gets the same numbers twice, which is what a copy of a SKU should get.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import cast

import numpy as np
from scipy import special

from envs.crn import N_DRAWS, QuantileSampler

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_UNIT = 2.0**-53

PARAMETER_COUNTER = 1 << 40
"""First counter of the parameter draws (week counters stay far below it)."""

N_PARAMETER_DRAWS = 8
"""Standard normals available per SKU and episode to :meth:`Catalog.sample` (it uses 5)."""

GAMMA_TRIALS = 4
"""Rejection trials of :func:`keyed_gamma` before its inverse-CDF fallback (each accepts with
probability above 0.95, so the fallback serves fewer than one draw in a million)."""

_GAMMA_COUNTERS = 2 * GAMMA_TRIALS + 2
"""Counters of one gamma draw: a normal and a uniform per trial, the fallback's uniform and
the uniform that scales a draw of shape < 1."""

WEEK_COUNTERS = N_DRAWS + _GAMMA_COUNTERS
"""Counters per simulated week (see the module docstring)."""


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer, elementwise on ``uint64`` (wrapping arithmetic)."""
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def sku_keys(skus: Iterable[object]) -> np.ndarray:
    """The stable 64-bit key of each SKU id (BLAKE2b of ``str(sku)``), shape ``(n_skus,)``."""
    return np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(str(s).encode(), digest_size=8).digest(), "little")
            for s in skus
        ),
        dtype=np.uint64,
    )


def row_keys(seed: int, sku_key: np.ndarray, episodes: np.ndarray) -> np.ndarray:
    """Keys of every (episode, SKU) pair, episode-major: shape ``(len(episodes) * n_skus,)``,
    row ``e * n_skus + i`` for episode ``episodes[e]`` and SKU ``i``."""
    if not 0 <= int(seed) < 2**64:
        raise ValueError(f"seed = {seed}: expected an integer in [0, 2**64)")
    with np.errstate(over="ignore"):
        s = _mix(np.array([seed], dtype=np.uint64) + _GOLDEN)
        per_sku = _mix(s ^ np.asarray(sku_key, dtype=np.uint64))
        ep = np.asarray(episodes, dtype=np.uint64)[:, None]
        return _mix(per_sku[None, :] ^ ep).reshape(-1)


def uniforms(keys: np.ndarray, counter: int, n: int) -> np.ndarray:
    """Uniforms in (0, 1) of counters ``counter .. counter + n - 1`` for every key, shape
    ``(len(keys), n)``."""
    c = (np.arange(counter, counter + n, dtype=np.uint64) + np.uint64(1)) * _GOLDEN
    with np.errstate(over="ignore"):
        bits = _mix(np.asarray(keys, dtype=np.uint64)[:, None] ^ c[None, :])
    return ((bits >> np.uint64(11)).astype(np.float64) + 0.5) * _UNIT


class KeyedNormals:
    """Standard normals fixed by key, in the shape of the ``Generator`` that
    :meth:`simulator.demand.Catalog.sample` draws from.

    Each call of :meth:`standard_normal` returns the next column of
    ``ndtri(uniforms(keys, PARAMETER_COUNTER, N_PARAMETER_DRAWS))``, so the i-th parameter
    of a SKU in an episode is the same number whatever else is drawn.
    """

    def __init__(self, keys: np.ndarray) -> None:
        self._z = special.ndtri(uniforms(keys, PARAMETER_COUNTER, N_PARAMETER_DRAWS))
        self._next = 0

    def standard_normal(self, size: int | tuple[int, ...] | None = None) -> np.ndarray:
        n = self._z.shape[0]
        if size is None or tuple(np.atleast_1d(size)) != (n,):
            raise ValueError(f"keyed normals come {n} at a time (one per row); asked for {size}")
        if self._next >= self._z.shape[1]:
            raise ValueError(
                f"Catalog.sample asked for more than {N_PARAMETER_DRAWS} normals per row; "
                "raise planning.random_keys.N_PARAMETER_DRAWS"
            )
        col = self._z[:, self._next]
        self._next += 1
        return col

    def as_generator(self) -> np.random.Generator:
        """This sampler, typed as the ``Generator`` that ``Catalog.sample`` takes (it provides
        the only method ``sample`` calls)."""
        return cast(np.random.Generator, self)


def keyed_gamma(keys: np.ndarray, counter: int, shape: np.ndarray) -> np.ndarray:
    """Gamma(``shape``, 1) draws, one per key, from the key's uniforms at counters
    ``counter .. counter + 2 * GAMMA_TRIALS + 1``.

    Marsaglia and Tsang (2000): with ``a >= 1``, ``d = a - 1/3``, ``c = 1 / sqrt(9 d)``, a
    normal ``z`` and a uniform ``u``, ``d (1 + c z)^3`` is accepted when
    ``log u < z^2 / 2 + d - d v + d log v`` (``v = (1 + c z)^3 > 0``). A shape below 1 is drawn
    as ``Gamma(a + 1) * u^(1 / a)``. Keys that reject every trial get the inverse CDF of one
    more uniform, so every draw is exactly gamma distributed.
    """
    keys = np.asarray(keys, dtype=np.uint64)
    shape = np.asarray(shape, dtype=float)
    small = shape < 1.0
    a = np.where(small, shape + 1.0, shape)
    d = a - 1.0 / 3.0
    c = 1.0 / np.sqrt(9.0 * d)
    x = np.empty(shape.shape)
    todo = np.arange(shape.size)
    for trial in range(GAMMA_TRIALS):
        u = uniforms(keys[todo], counter + 2 * trial, 2)
        z = special.ndtri(u[:, 0])
        dt = d[todo]
        v = (1.0 + c[todo] * z) ** 3
        with np.errstate(invalid="ignore", divide="ignore"):
            ok = (v > 0) & (np.log(u[:, 1]) < 0.5 * z * z + dt - dt * v + dt * np.log(v))
        x[todo[ok]] = dt[ok] * v[ok]
        todo = todo[~ok]
        if not todo.size:
            break
    if todo.size:
        u_last = uniforms(keys[todo], counter + 2 * GAMMA_TRIALS, 1)[:, 0]
        x[todo] = special.gammaincinv(a[todo], u_last)
    if small.any():
        u_boost = uniforms(keys[small], counter + 2 * GAMMA_TRIALS + 1, 1)[:, 0]
        x[small] *= u_boost ** (1.0 / shape[small])
    return x


class KeyedSampler(QuantileSampler):
    """The market's random numbers for rows of keys (one per SKU and episode), week by week.

    A :class:`envs.crn.QuantileSampler` (Poisson demand and binomial returns by inverse CDF of
    the week's keyed uniforms) whose gamma mixing draw is :func:`keyed_gamma`. Call
    :meth:`start_week` before each market step; pass :meth:`as_generator` to it.
    """

    def __init__(self, keys: np.ndarray) -> None:
        super().__init__()
        self.keys = np.asarray(keys, dtype=np.uint64)
        self._week = 0

    def start_week(self, week: int) -> None:
        """Fix the uniforms of plan week ``week`` (0-based)."""
        self._week = int(week)

    def _u(self, column: int, size: tuple[int, ...]) -> np.ndarray:
        # Each column computed when the market asks for it (returns are often off).
        n = self.keys.size
        if size != (n,):
            raise ValueError(f"keyed uniforms come {n} at a time; the market asked for {size}")
        return uniforms(self.keys, self._week * WEEK_COUNTERS + column, 1)[:, 0]

    def gamma(self, shape: np.ndarray, scale: float = 1.0, size: tuple[int, ...] | None = None):
        n = self.keys.size
        if size is not None and tuple(np.atleast_1d(size)) != (n,):
            raise ValueError(f"keyed gamma draws come {n} at a time; the market asked for {size}")
        full = np.broadcast_to(np.asarray(shape, dtype=float), (n,))
        return keyed_gamma(self.keys, self._week * WEEK_COUNTERS + N_DRAWS, full) * scale
