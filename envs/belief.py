"""A SKU's unknown demand parameters on a discrete grid, and their exact posterior.

The learning market (:mod:`envs.learning`) hides a SKU's true price elasticity and demand
level from the policy. Both are drawn, per episode, from a prior built from the fit's
estimate and standard error: independent normals on the elasticity (mean ``elasticity``,
sd ``elasticity_se``) and on the log demand level (mean ``log(base_demand)``, sd
``base_demand_se``), discretized on a ``k x k`` grid of standardized points ``z`` in
``[-Z_MAX, Z_MAX]`` with weights proportional to the normal density. The truth is a grid
point, so the posterior over the grid after any sales history is exact: Bayes' rule with
the market's own likelihood (:func:`log_likelihood`) needs no approximation, and every DP a
baseline needs is the DP of one grid point.

Grid point ``g = i * k + j`` has elasticity ``min(elasticity + elasticity_se * z_i,
ELASTICITY_CAP)`` and log level offset ``base_demand_se * z_j``: its demand is
``base_demand * exp(offset) * (1 - d) ** elasticity_g * ...`` (the rest of
:func:`simulator.market.expected_demand` unchanged).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property

import numpy as np
from scipy import special

from ingest.errors import ConfigError

Z_MAX = 2.5
"""The grid spans the prior's mean +- this many standard deviations on each axis."""

ELASTICITY_CAP = -0.05
"""Grid elasticities are capped here (as :meth:`simulator.demand.Catalog.sample` caps its
draws), so a discount never lowers demand at any grid point."""

MAX_GRID_POINTS_PER_AXIS = 41
"""Largest grid side :class:`BeliefGrid` accepts (the posterior is ``k ** 2`` numbers per SKU)."""

BELIEF_FIELDS: tuple[tuple[str, float, float, str], ...] = (
    ("belief_elasticity_sd", 0.0, 2.0, "posterior sd of the elasticity"),
    ("belief_level_mean", -3.0, 3.0, "posterior mean of log(demand level / the estimate)"),
    ("belief_level_sd", 0.0, 2.0, "posterior sd of the log demand level"),
    ("belief_correlation", -1.0, 1.0, "posterior correlation of elasticity and log level"),
    ("belief_entropy", 0.0, 1.0, "posterior entropy / log(number of grid points)"),
)
"""Posterior summary the learning env appends to the standard observation (whose
``elasticity`` and ``demand_cover`` fields read the posterior means)."""
N_BELIEF = len(BELIEF_FIELDS)
BELIEF_LOW = np.array([f[1] for f in BELIEF_FIELDS], dtype=np.float32)
BELIEF_HIGH = np.array([f[2] for f in BELIEF_FIELDS], dtype=np.float32)


@dataclass(frozen=True)
class BeliefGrid:
    """A ``k x k`` grid of standardized (elasticity, log level) points and its prior.

    Parameters
    ----------
    k : int
        Points per axis (odd keeps the prior mean on the grid; 1 = the estimate alone).
    z_max : float
        Half-width of each axis in prior standard deviations.
    """

    k: int = 11
    z_max: float = Z_MAX

    def __post_init__(self) -> None:
        if not 1 <= int(self.k) <= MAX_GRID_POINTS_PER_AXIS:
            raise ConfigError(
                f"belief grid k = {self.k!r}: expected an integer in 1..{MAX_GRID_POINTS_PER_AXIS}"
            )
        if not self.z_max > 0:
            raise ConfigError(f"belief grid z_max = {self.z_max!r}: expected > 0")

    @property
    def n_points(self) -> int:
        """``k ** 2``."""
        return int(self.k) ** 2

    @cached_property
    def z(self) -> np.ndarray:
        """Standardized points of one axis, shape ``(k,)`` (``[0]`` when ``k == 1``)."""
        if self.k == 1:
            return np.zeros(1)
        return np.linspace(-self.z_max, self.z_max, int(self.k))

    @cached_property
    def z_elasticity(self) -> np.ndarray:
        """Standardized elasticity of every grid point, shape ``(k ** 2,)``."""
        return np.repeat(self.z, self.k)

    @cached_property
    def z_level(self) -> np.ndarray:
        """Standardized log level of every grid point, shape ``(k ** 2,)``."""
        return np.tile(self.z, self.k)

    @cached_property
    def prior(self) -> np.ndarray:
        """Prior weight of every grid point (a discretized standard normal on each axis,
        independent), shape ``(k ** 2,)``, summing to 1."""
        axis = np.exp(-0.5 * self.z**2)
        axis /= axis.sum()
        return np.outer(axis, axis).reshape(-1)

    @cached_property
    def log_prior(self) -> np.ndarray:
        """``log(prior)``."""
        return np.log(self.prior)

    @cached_property
    def center(self) -> int:
        """The grid point nearest the prior mean (the estimate)."""
        return int(np.argmin(self.z_elasticity**2 + self.z_level**2))

    def points(
        self, elasticity: np.ndarray, elasticity_se: np.ndarray, level_se: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Elasticity and log level offset of every grid point for ``n`` SKUs.

        Parameters
        ----------
        elasticity, elasticity_se, level_se : array-like of shape (n,)
            The estimates and standard errors (``level_se`` of ``log(base_demand)``).

        Returns
        -------
        elasticity, log_level : ndarray of shape (n, k ** 2)
        """
        e = np.asarray(elasticity, float)[:, None]
        se_e = np.asarray(elasticity_se, float)[:, None]
        se_l = np.asarray(level_se, float)[:, None]
        if np.any(se_e < 0) or np.any(se_l < 0):
            raise ConfigError("elasticity_se and base_demand_se must be >= 0 for a belief grid")
        points_e = np.minimum(e + se_e * self.z_elasticity[None, :], ELASTICITY_CAP)
        return points_e, se_l * self.z_level[None, :]

    def draw(self, u: np.ndarray) -> np.ndarray:
        """Grid points drawn from the prior by inverse CDF of uniforms ``u`` ``(n,)``."""
        cdf = np.cumsum(self.prior)
        cdf[-1] = 1.0
        return np.searchsorted(cdf, np.asarray(u, float), side="right").clip(0, self.n_points - 1)


# ---------------------------------------------------------------------------- likelihood
def log_likelihood(
    lam: np.ndarray, units_sold: np.ndarray, stock: np.ndarray, dispersion: np.ndarray
) -> np.ndarray:
    """Log likelihood of one week's sales at every grid point, up to a constant per SKU.

    Demand is the market's: Poisson with mean ``lam``, or negative binomial (gamma-Poisson,
    ``r = 1 / dispersion``, ``p = 1 / (1 + dispersion lam)``). Units sold are ``min(demand,
    stock)``: below the stock the likelihood is ``P(D = y)``; when the SKU sold out it is
    censored, ``P(D >= stock)``. A SKU with no stock learns nothing.

    Parameters
    ----------
    lam : ndarray of shape (n, G)
        Expected demand of the week at every grid point.
    units_sold, stock, dispersion : ndarray of shape (n,)
        Units sold, the stock before the week, the known overdispersion (0 = Poisson).

    Returns
    -------
    ndarray of shape (n, G)
        Terms that do not depend on the grid point are left out (the posterior is
        normalized afterwards).
    """
    lam = np.maximum(np.asarray(lam, float), 1e-300)
    y = np.asarray(units_sold, float)
    s = np.asarray(stock, float)
    alpha = np.asarray(dispersion, float)
    out = np.zeros(lam.shape)
    nb = alpha > 0
    pois = np.flatnonzero(~nb & (s > 0))
    if pois.size:
        lp = lam[pois]
        out[pois] = y[pois, None] * np.log(lp) - lp
    negb = np.flatnonzero(nb & (s > 0))
    if negb.size:
        a = alpha[negb, None]
        # log p = -log(1 + a lam), log(1 - p) = log(a lam) - log(1 + a lam)
        log1p_al = np.log1p(a * lam[negb])
        out[negb] = y[negb, None] * (np.log(a * lam[negb]) - log1p_al) - log1p_al / a
    censored = np.flatnonzero((y >= s) & (s > 0))
    if censored.size:
        lc = lam[censored]
        sc = s[censored, None]
        ac = alpha[censored, None]
        r = 1.0 / np.where(ac > 0, ac, 1.0)
        q = ac * lc / (1.0 + ac * lc)  # 1 - p of the NB
        tail = np.where(
            ac > 0,
            special.betainc(sc, np.broadcast_to(r, lc.shape), q),
            special.gammainc(sc, lc),
        )
        out[censored] = np.log(np.maximum(tail, 1e-300))
    return out


def normalize(log_weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Log weights shifted so that each row's weights sum to 1, and those weights."""
    top = log_weights.max(axis=1, keepdims=True)
    shifted = log_weights - top
    w = np.exp(shifted)
    total = w.sum(axis=1, keepdims=True)
    w /= total
    shifted -= np.log(total)
    return shifted, w


def moment_basis(points_e: np.ndarray, points_l: np.ndarray) -> np.ndarray:
    """``(n, 5, G)``: each grid point's ``e, l, e^2, l^2, e l``, whose posterior means
    :func:`summarize` needs (envs keep it per slot, set when an episode starts)."""
    return np.stack([points_e, points_l, points_e**2, points_l**2, points_e * points_l], axis=1)


def summarize(
    weights: np.ndarray,
    points_e: np.ndarray,
    points_l: np.ndarray,
    *,
    log_weights: np.ndarray | None = None,
    basis: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Posterior moments per SKU from normalized ``weights`` ``(n, G)``.

    ``log_weights`` (the normalized log weights) and ``basis`` (:func:`moment_basis`) may be
    passed by callers that keep them, which saves time.

    Returns
    -------
    dict of ndarray of shape (n,)
        ``elasticity_mean``, ``elasticity_sd``, ``level_mean``, ``level_sd``,
        ``correlation`` (0 where a marginal is degenerate) and ``entropy`` (normalized by
        ``log G``; 0 for a one-point grid).
    """
    w = np.asarray(weights, float)
    if basis is None:
        basis = moment_basis(points_e, points_l)
    m = np.einsum("ng,nkg->kn", w, basis)
    me, ml = m[0], m[1]
    ve = np.maximum(m[2] - me * me, 0.0)
    vl = np.maximum(m[3] - ml * ml, 0.0)
    sd_e, sd_l = np.sqrt(ve), np.sqrt(vl)
    denom = sd_e * sd_l
    corr = np.where(denom > 1e-9, (m[4] - me * ml) / np.maximum(denom, 1e-9), 0.0)
    n_g = w.shape[1]
    if n_g > 1:
        logw = np.log(np.maximum(w, 1e-300)) if log_weights is None else log_weights
        ent = -np.einsum("ng,ng->n", w, logw) / np.log(n_g)
    else:
        ent = np.zeros(w.shape[0])
    return {
        "elasticity_mean": me,
        "elasticity_sd": sd_e,
        "level_mean": ml,
        "level_sd": sd_l,
        "correlation": np.clip(corr, -1.0, 1.0),
        "entropy": np.clip(ent, 0.0, 1.0),
    }


def belief_features(summary: dict[str, np.ndarray]) -> np.ndarray:
    """The :data:`BELIEF_FIELDS` columns (clipped, float32) from :func:`summarize`."""
    cols = (
        summary["elasticity_sd"],
        summary["level_mean"],
        summary["level_sd"],
        summary["correlation"],
        summary["entropy"],
    )
    out = np.stack(cols, axis=1)
    return np.clip(out, BELIEF_LOW, BELIEF_HIGH).astype(np.float32)


# ---------------------------------------------------------------------------- per-slot state
@dataclass
class BeliefState:
    """The posterior of ``n`` SKU slots on one :class:`BeliefGrid` (what a policy may read).

    Attributes
    ----------
    grid : BeliefGrid
    points_e, points_l : ndarray of shape (n, G)
        Elasticity and log level offset of every grid point, per slot.
    log_posterior : ndarray of shape (n, G)
        Normalized log posterior weights.
    elasticity_se, level_se : ndarray of shape (n,)
        The prior's standard errors (the grid's scale on each axis).
    estimate_elasticity, estimate_base_demand : ndarray of shape (n,)
        The prior's centre: the catalog's estimates the grid was built around.
    """

    grid: BeliefGrid
    points_e: np.ndarray
    points_l: np.ndarray
    log_posterior: np.ndarray
    elasticity_se: np.ndarray
    level_se: np.ndarray
    estimate_elasticity: np.ndarray
    estimate_base_demand: np.ndarray

    def take(self, rows: np.ndarray) -> BeliefState:
        """The posterior of ``rows`` (an index array or mask), as new arrays."""
        return BeliefState(
            grid=self.grid,
            **{
                f.name: np.asarray(getattr(self, f.name))[rows]
                for f in fields(self)
                if f.name != "grid"
            },
        )

    def weights(self) -> np.ndarray:
        """Posterior weights, shape ``(n, G)``, rows summing to 1."""
        return np.exp(self.log_posterior)

    def summary(self) -> dict[str, np.ndarray]:
        """:func:`summarize` of the posterior."""
        return summarize(self.weights(), self.points_e, self.points_l)

    def nearest_to_mean(self) -> np.ndarray:
        """Per slot, the grid point nearest the posterior mean, in prior standard deviations
        on each axis (a degenerate axis counts as zero distance), shape ``(n,)``."""
        s = self.summary()
        se_e = np.maximum(self.elasticity_se, 1e-12)[:, None]
        se_l = np.maximum(self.level_se, 1e-12)[:, None]
        d_e = np.where(
            self.elasticity_se[:, None] > 0,
            (self.points_e - s["elasticity_mean"][:, None]) / se_e,
            0.0,
        )
        d_l = np.where(
            self.level_se[:, None] > 0, (self.points_l - s["level_mean"][:, None]) / se_l, 0.0
        )
        return np.argmin(d_e**2 + d_l**2, axis=1)

    def sample(self, u: np.ndarray) -> np.ndarray:
        """One grid point per slot drawn from the posterior by inverse CDF of uniforms ``u``."""
        cdf = np.cumsum(self.weights(), axis=1)
        cdf[:, -1] = 1.0
        idx = (cdf < np.asarray(u, float)[:, None]).sum(axis=1)
        return np.minimum(idx, self.grid.n_points - 1)
