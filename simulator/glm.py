"""A batched count GLM with per-SKU intercepts and slopes and per-group shared terms.

The model, for row ``r`` of SKU ``s`` in group (category) ``g``::

    log mu_r = a_s + b_s * x_r + z_r . theta_g
    y_r ~ NegBin(mean mu_r, variance mu_r + alpha_g mu_r^2)     (Poisson when alpha_g = 0)

is fitted by exact Newton steps on the joint likelihood of every SKU and every group at
once. The Hessian is block-diagonal by group, and inside a group every SKU's 2 x 2 block
touches only the group's ``K`` shared coefficients, so one Newton step is a Schur
complement: a closed-form 2 x 2 inverse per SKU and one ``K x K`` solve per group. All of it
is ``np.bincount`` over rows and batched linear algebra: no Python loop over SKUs, so a panel
of thousands of SKUs fits in seconds. Step halving is done per group (groups are independent
problems), so one awkward category never slows the others.

The returned covariances are the inverse observed information of the joint model (so a
SKU's slope standard error includes the uncertainty of its group's shared terms).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from ingest.progress import Progress

_MAX_ETA = 40.0


@dataclass
class GLMResult:
    """Estimates of :func:`fit_sku_group_glm`.

    Attributes
    ----------
    intercept, slope : ndarray of shape (n_skus,)
        ``a_s`` and ``b_s`` (a fixed slope stays at 0).
    cov : ndarray of shape (n_skus, 2, 2)
        Covariance of ``(a_s, b_s)`` from the joint information matrix.
    theta : ndarray of shape (n_groups, n_terms)
        Shared coefficients per group.
    theta_se : ndarray of shape (n_groups, n_terms)
        Their standard errors.
    alpha : ndarray of shape (n_groups,)
        Overdispersion used in the final fit.
    mu : ndarray of shape (n_rows,)
        Fitted means.
    weight : ndarray of shape (n_rows,)
        Final working weights ``mu / (1 + alpha mu)``.
    n_iter : int
        Newton iterations of the final fit.
    y_filled : ndarray of shape (n_rows,)
        The counts with censored rows replaced by their conditional mean.
    converged : bool
        Whether the last fit met the tolerance.
    loglik : float
        Log-likelihood kernel (without the terms that do not depend on the means).
    """

    intercept: np.ndarray
    slope: np.ndarray
    cov: np.ndarray
    theta: np.ndarray
    theta_se: np.ndarray
    alpha: np.ndarray
    mu: np.ndarray
    weight: np.ndarray
    n_iter: int
    converged: bool
    loglik: float
    y_filled: np.ndarray


def _loglik_rows(y: np.ndarray, eta: np.ndarray, alpha_rows: np.ndarray) -> np.ndarray:
    eta = np.minimum(eta, _MAX_ETA)
    mu = np.exp(eta)
    nb = alpha_rows > 0
    safe_alpha = np.where(nb, alpha_rows, 1.0)
    ll_nb = y * eta - (y + 1.0 / safe_alpha) * np.log1p(safe_alpha * mu)
    return np.where(nb, ll_nb, y * eta - mu)


def censored_mean(floor: np.ndarray, mu: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``E[Y | Y >= floor]`` for NB(mean ``mu``, overdispersion ``alpha``) or Poisson
    (``alpha == 0``), elementwise.

    Uses ``sum_{k < s} k pmf(k) = mu * CDF'(s - 2)`` where ``CDF'`` is the Poisson CDF at
    the same mean, or the NB CDF with size ``r + 1`` and the same ``p``, so
    ``E[Y | Y >= s] = mu * S'(s - 1) / S(s)`` with survival functions ``S(s) = P(Y >= s)``.
    """
    from scipy import stats

    s = np.asarray(floor, dtype=float)
    mu = np.maximum(np.asarray(mu, dtype=float), 1e-12)
    alpha = np.broadcast_to(np.asarray(alpha, dtype=float), mu.shape)
    nb = alpha > 0
    out = np.empty_like(mu)
    if (~nb).any():
        m = mu[~nb]
        num = stats.poisson.sf(s[~nb] - 2, m)
        den = stats.poisson.sf(s[~nb] - 1, m)
        out[~nb] = m * num / np.maximum(den, 1e-300)
    if nb.any():
        r = 1.0 / alpha[nb]
        m = mu[nb]
        pr = r / (r + m)
        num = stats.nbinom.sf(s[nb] - 2, r + 1.0, pr)
        den = stats.nbinom.sf(s[nb] - 1, r, pr)
        out[nb] = m * num / np.maximum(den, 1e-300)
    # numerical floor: the conditional mean is at least the floor
    return np.maximum(out, s)


def _group_sum(idx: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(idx, weights=values, minlength=n)


def moment_dispersion(
    y: np.ndarray,
    mu: np.ndarray,
    group_rows: np.ndarray,
    n_groups: int,
    n_params: np.ndarray | None = None,
) -> np.ndarray:
    """Method-of-moments NB overdispersion per group from Pearson residuals.

    ``E[(y - mu)^2 - y] = alpha mu^2`` under the NB2 model, so
    ``alpha_g = max(0, sum(c (y - mu)^2 - y) / sum(mu^2))`` over the group's rows, where
    ``c = n_rows / (n_rows - n_params)`` corrects for the residuals' lost degrees of freedom.
    """
    n_rows = np.bincount(group_rows, minlength=n_groups).astype(float)
    p = np.zeros(n_groups) if n_params is None else np.asarray(n_params, dtype=float)
    corr = n_rows / np.maximum(n_rows - p, 1.0)
    num = _group_sum(group_rows, corr[group_rows] * (y - mu) ** 2 - y, n_groups)
    den = _group_sum(group_rows, mu**2, n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = np.where(den > 0, num / den, 0.0)
    return np.clip(alpha, 0.0, 50.0)


def _sku_block_inverse(
    sku: np.ndarray,
    w: np.ndarray,
    x: np.ndarray,
    frozen: np.ndarray,
    n_skus: int,
    ridge_slope: float,
) -> np.ndarray:
    """Inverse of every SKU's 2x2 information block (intercept, slope), shape (S, 2, 2);
    the slope is decoupled (unit diagonal, no cross term) where ``frozen``."""
    d_aa = _group_sum(sku, w, n_skus) + 1e-10
    d_ab = np.where(frozen, 0.0, _group_sum(sku, w * x, n_skus))
    d_bb = np.where(frozen, 1.0, _group_sum(sku, w * x * x, n_skus) + ridge_slope)
    det = d_aa * d_bb - d_ab**2
    inv = np.empty((n_skus, 2, 2))
    inv[:, 0, 0] = d_bb / det
    inv[:, 1, 1] = d_aa / det
    inv[:, 0, 1] = inv[:, 1, 0] = -d_ab / det
    return inv


def _season_blocks(
    sku: np.ndarray,
    grp: np.ndarray,
    w: np.ndarray,
    x: np.ndarray,
    z: np.ndarray,
    frozen: np.ndarray,
    n_skus: int,
    n_groups: int,
    ridge_theta: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Information between the SKU blocks and their group's K season terms, shape (S, 2, K),
    and of the season terms themselves with the ridge, shape (G, K, K)."""
    k = z.shape[1]
    wz = w[:, None] * z
    c = np.empty((n_skus, 2, k))
    for j in range(k):
        c[:, 0, j] = _group_sum(sku, wz[:, j], n_skus)
        c[:, 1, j] = np.where(frozen, 0.0, _group_sum(sku, wz[:, j] * x, n_skus))
    info = np.zeros((n_groups, k, k))
    for j in range(k):
        for m in range(j, k):
            v = _group_sum(grp, wz[:, j] * z[:, m], n_groups)
            info[:, j, m] = v
            info[:, m, j] = v
    info += ridge_theta * np.eye(k)
    return c, info


def fit_sku_group_glm(
    y: np.ndarray,
    x: np.ndarray,
    z: np.ndarray,
    sku: np.ndarray,
    group_of_sku: np.ndarray,
    *,
    n_groups: int,
    fixed_slope: np.ndarray | None = None,
    alpha: np.ndarray | None = None,
    ridge_slope: float = 1e-2,
    ridge_theta: float = 1e-3,
    slope_bounds: tuple[float, float] = (-8.0, 4.0),
    max_iter: int = 100,
    tol: float = 1e-7,
    start: GLMResult | None = None,
    censored: np.ndarray | None = None,
) -> GLMResult:
    """Fit the two-level GLM by damped joint Newton steps.

    Parameters
    ----------
    y : ndarray of shape (n_rows,)
        Counts (units per SKU-week).
    x : ndarray of shape (n_rows,)
        The per-SKU slope's covariate (log price ratio).
    z : ndarray of shape (n_rows, n_terms)
        Covariates whose coefficients are shared within a group (may have 0 columns).
    sku : ndarray of int of shape (n_rows,)
        SKU code of each row, ``0 .. n_skus - 1``; every SKU needs at least one row.
    group_of_sku : ndarray of int of shape (n_skus,)
        Group code of each SKU, ``0 .. n_groups - 1``.
    n_groups : int
        Number of groups.
    fixed_slope : ndarray of bool of shape (n_skus,), optional
        SKUs whose slope is held at 0 (their price never varied, so the data cannot identify
        it; the caller supplies a prior later).
    alpha : ndarray of shape (n_groups,), optional
        NB overdispersion per group; ``None`` or 0 fits a Poisson GLM.
    ridge_slope, ridge_theta : float
        Small ridge penalties (Gaussian priors centred on 0) that keep Newton steps finite
        when a slope or a shared term is barely identified (e.g. a promotion column that is
        all zero in a group).
    slope_bounds : (float, float)
        Slopes are kept in this range (a safeguard against separation: a SKU that only
        sold in discounted weeks has an MLE slope at minus infinity).
    max_iter : int
        Maximum Newton iterations.
    tol : float
        Stop when the largest parameter change is below this.
    start : GLMResult, optional
        Warm start (e.g. the Poisson fit before the NB refit).
    censored : ndarray of bool of shape (n_rows,), optional
        Rows where the count is only a lower bound (the SKU sold out: demand >= units).
        They enter by EM: each iteration replaces them with ``E[Y | Y >= y]`` under the
        current fit before the Newton step (a generalised EM, so every step still raises
        the observed-data likelihood).

    Returns
    -------
    GLMResult
    """
    y_obs = np.asarray(y, dtype=float)
    y = y_obs.copy()
    cens = None if censored is None else np.flatnonzero(np.asarray(censored, dtype=bool))
    x = np.asarray(x, dtype=float)
    z = np.asarray(z, dtype=float).reshape(len(y), -1)
    sku = np.asarray(sku, dtype=np.int64)
    group_of_sku = np.asarray(group_of_sku, dtype=np.int64)
    n_skus = int(group_of_sku.shape[0])
    k = z.shape[1]
    grp = group_of_sku[sku]
    fixed = np.zeros(n_skus, bool) if fixed_slope is None else np.asarray(fixed_slope, bool)
    alpha_g = np.zeros(n_groups) if alpha is None else np.asarray(alpha, dtype=float)
    alpha_rows = alpha_g[grp]
    lo, hi = slope_bounds

    if start is not None:
        a = start.intercept.copy()
        b = start.slope.copy()
        theta = start.theta.copy()
    else:
        n_rows_sku = np.bincount(sku, minlength=n_skus)
        a = np.log((_group_sum(sku, y, n_skus) + 0.1) / np.maximum(n_rows_sku, 1))
        b = np.zeros(n_skus)
        theta = np.zeros((n_groups, k))
    b[fixed] = 0.0

    def eta_of(a_: np.ndarray, b_: np.ndarray, th: np.ndarray) -> np.ndarray:
        eta = a_[sku] + b_[sku] * x
        if k:
            eta = eta + np.einsum("rk,rk->r", z, th[grp])
        return eta

    def group_ll(eta: np.ndarray, b_: np.ndarray, th: np.ndarray) -> np.ndarray:
        ll = _group_sum(grp, _loglik_rows(y, eta, alpha_rows), n_groups)
        ll -= 0.5 * ridge_slope * _group_sum(group_of_sku, b_**2, n_groups)
        if k:
            ll -= 0.5 * ridge_theta * np.sum(th**2, axis=1)
        return ll

    eta = eta_of(a, b, theta)
    ll_old = group_ll(eta, b, theta)
    converged = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - it is reported
        mu = np.exp(np.minimum(eta, _MAX_ETA))
        if cens is not None and cens.size:
            y[cens] = censored_mean(y_obs[cens], mu[cens], alpha_rows[cens])
            ll_old = group_ll(eta, b, theta)
        denom = 1.0 + alpha_rows * mu
        w = mu / denom
        e = (y - mu) / denom
        # SKU blocks: gradient and 2x2 information (slope row zeroed where fixed, and where
        # a slope sits on its bound with the gradient pointing outwards: an active set)
        g_b = _group_sum(sku, e * x, n_skus) - ridge_slope * b
        held = fixed | ((b <= lo) & (g_b < 0)) | ((b >= hi) & (g_b > 0))
        g_a = _group_sum(sku, e, n_skus)
        g_b = np.where(held, 0.0, g_b)
        inv = _sku_block_inverse(sku, w, x, held, n_skus, ridge_slope)
        g_s = np.stack([g_a, g_b], axis=1)
        if k:
            c, schur = _season_blocks(sku, grp, w, x, z, held, n_skus, n_groups, ridge_theta)
            g_th = (
                np.stack([_group_sum(grp, e * z[:, j], n_groups) for j in range(k)], axis=1)
                - ridge_theta * theta
            )
            inv_c = inv @ c  # (S, 2, K)
            rhs = g_th.copy()
            per_sku = np.einsum("sik,sil->skl", c, inv_c)
            per_rhs = np.einsum("sik,si->sk", inv_c, g_s)
            for j in range(k):
                rhs[:, j] -= _group_sum(group_of_sku, per_rhs[:, j], n_groups)
                for m in range(k):
                    schur[:, j, m] -= _group_sum(group_of_sku, per_sku[:, j, m], n_groups)
            d_theta = np.linalg.solve(schur, rhs[..., None])[..., 0]
            d_s = np.einsum(
                "sij,sj->si", inv, g_s - np.einsum("sik,sk->si", c, d_theta[group_of_sku])
            )
        else:
            d_theta = theta
            d_s = np.einsum("sij,sj->si", inv, g_s)
        d_a, d_b = d_s[:, 0], np.where(held, 0.0, d_s[:, 1])
        # per-group step halving on the penalised log-likelihood
        t = np.ones(n_groups)
        todo = np.ones(n_groups, bool)
        a_new, b_new, th_new = a, b, theta
        ll_new = ll_old
        for _ in range(40):
            ts = t[group_of_sku]
            a_try = np.where(todo[group_of_sku], a + ts * d_a, a_new)
            b_try = np.where(todo[group_of_sku], np.clip(b + ts * d_b, lo, hi), b_new)
            th_try = np.where(todo[:, None], theta + t[:, None] * d_theta, th_new) if k else theta
            eta_try = eta_of(a_try, b_try, th_try)
            ll_try = group_ll(eta_try, b_try, th_try)
            ok = todo & (ll_try >= ll_old - 1e-9 * (1.0 + np.abs(ll_old)))
            a_new, b_new = a_try, b_try
            th_new = th_try
            ll_new = np.where(ok, ll_try, ll_new)
            todo = todo & ~ok
            if not todo.any():
                break
            t[todo] *= 0.5
        if todo.any():  # no improvement found: keep the old values of those groups
            keep = todo[group_of_sku]
            a_new = np.where(keep, a, a_new)
            b_new = np.where(keep, b, b_new)
            if k:
                th_new = np.where(todo[:, None], theta, th_new)
            ll_new = np.where(todo, ll_old, ll_new)
        change = max(
            float(np.max(np.abs(a_new - a), initial=0.0)),
            float(np.max(np.abs(b_new - b), initial=0.0)),
            float(np.max(np.abs(th_new - theta), initial=0.0)) if k else 0.0,
        )
        gain = float(np.sum(ll_new) - np.sum(ll_old))
        a, b, theta = a_new, b_new, th_new
        eta = eta_of(a, b, theta)
        ll_old = ll_new
        if change < tol or (it > 1 and 0 <= gain < 1e-10 * (1.0 + abs(float(np.sum(ll_old))))):
            converged = True
            break

    # information at the optimum -> covariances
    mu = np.exp(np.minimum(eta, _MAX_ETA))
    w = mu / (1.0 + alpha_rows * mu)
    inv = _sku_block_inverse(sku, w, x, fixed, n_skus, ridge_slope)
    cov = inv.copy()
    theta_se = np.zeros((n_groups, k))
    if k:
        c, schur = _season_blocks(sku, grp, w, x, z, fixed, n_skus, n_groups, ridge_theta)
        inv_c = inv @ c
        per_sku = np.einsum("sik,sil->skl", c, inv_c)
        for j in range(k):
            for m in range(k):
                schur[:, j, m] -= _group_sum(group_of_sku, per_sku[:, j, m], n_groups)
        schur_inv = np.linalg.inv(schur)
        theta_se = np.sqrt(np.maximum(np.diagonal(schur_inv, axis1=1, axis2=2), 0.0))
        cov = inv + np.einsum("sik,skl,sjl->sij", inv_c, schur_inv[group_of_sku], inv_c)
    cov[fixed, 1, :] = 0.0
    cov[fixed, :, 1] = 0.0
    return GLMResult(
        intercept=a,
        slope=b,
        cov=cov,
        theta=theta,
        theta_se=theta_se,
        alpha=alpha_g,
        mu=mu,
        weight=w,
        n_iter=it,
        converged=converged,
        loglik=float(np.sum(ll_old)),
        y_filled=y,
    )


def fit_with_dispersion(
    y: np.ndarray,
    x: np.ndarray,
    z: np.ndarray,
    sku: np.ndarray,
    group_of_sku: np.ndarray,
    *,
    n_groups: int,
    negative_binomial: bool = True,
    dispersion_rounds: int = 2,
    start: GLMResult | None = None,
    progress: bool = True,
    **kwargs: Any,
) -> GLMResult:
    """Poisson fit, then (optionally) NB refits with the overdispersion re-estimated by
    :func:`moment_dispersion` from the previous fit's residuals each round.

    With ``start`` (a previous fit of the same rows) the first fit is warm-started and
    uses the previous overdispersion. ``progress=False`` draws no bar (a task among many).
    Other keywords go to :func:`fit_sku_group_glm`.
    """
    grp = np.asarray(group_of_sku)[np.asarray(sku)]
    k = np.asarray(z).reshape(len(y), -1).shape[1]
    fixed = kwargs.get("fixed_slope")
    free = np.ones(len(group_of_sku)) if fixed is None else 1.0 - np.asarray(fixed, float)
    n_params = np.bincount(group_of_sku, weights=1.0 + free, minlength=n_groups) + k
    alpha0 = start.alpha if start is not None and negative_binomial else None
    n_fits = 1 + (dispersion_rounds if negative_binomial else 0)
    # Each fit is a full Newton solve over every SKU-week (seconds to minutes on real data).
    bar = Progress(n_fits, desc="demand fit: GLM", unit="fit") if progress else None
    with bar or contextlib.nullcontext():
        res = fit_sku_group_glm(
            y, x, z, sku, group_of_sku, n_groups=n_groups, alpha=alpha0, start=start, **kwargs
        )
        if bar:
            bar.update()
        for _ in range(n_fits - 1):
            alpha = moment_dispersion(res.y_filled, res.mu, grp, n_groups, n_params)
            res = fit_sku_group_glm(
                y, x, z, sku, group_of_sku, n_groups=n_groups, alpha=alpha, start=res, **kwargs
            )
            if bar:
                bar.update()
    return res
