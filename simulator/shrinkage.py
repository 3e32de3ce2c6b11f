"""Empirical-Bayes shrinkage of per-SKU estimates towards their group, vectorized.

Each SKU's estimate ``b_i`` with standard error ``se_i`` is modelled as
``b_i ~ N(beta_i, se_i^2)`` with ``beta_i ~ N(m_g, tau_g^2)`` inside its group ``g``. The group
mean ``m_g`` and the between-SKU variance ``tau_g^2`` are estimated by DerSimonian-Laird
(method of moments on the precision-weighted spread); the posterior of each SKU then weighs
its own estimate by its precision against the group's spread::

    B_i     = se_i^2 / (se_i^2 + tau_g^2)              (shrinkage weight, 0..1)
    post_i  = (1 - B_i) b_i + B_i m_g
    var_i   = (1 - B_i) se_i^2 + B_i^2 se(m_g)^2       (includes the group mean's uncertainty)

A precise estimate keeps its value; a noisy one moves to the group.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class GroupEffects:
    """Random-effects summary per group (arrays of shape ``(n_groups,)``).

    Attributes
    ----------
    mean : ndarray
        Precision-weighted group mean ``m_g`` (NaN for a group without estimates).
    mean_se : ndarray
        Standard error of ``m_g``.
    tau2 : ndarray
        Between-SKU variance ``tau_g^2`` (0 when the spread is no larger than noise).
    n : ndarray of int
        Number of estimates in the group.
    """

    mean: np.ndarray
    mean_se: np.ndarray
    tau2: np.ndarray
    n: np.ndarray


def _precision_sums(
    estimate: np.ndarray, se: np.ndarray, group: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(estimates, precisions w, group codes, n, sum w, sum w^2)``, the sums per group."""
    est = np.asarray(estimate, dtype=float)
    w = 1.0 / np.maximum(np.asarray(se, dtype=float), 1e-6) ** 2
    grp = np.asarray(group, dtype=np.int64)
    n = np.bincount(grp, minlength=n_groups)
    sw = np.bincount(grp, weights=w, minlength=n_groups)
    sw2 = np.bincount(grp, weights=w * w, minlength=n_groups)
    return est, w, grp, n, sw, sw2


def group_effects(
    estimate: np.ndarray, se: np.ndarray, group: np.ndarray, n_groups: int
) -> GroupEffects:
    """DerSimonian-Laird random-effects mean and variance per group.

    Parameters
    ----------
    estimate, se : ndarray of shape (n,)
        Estimates and their standard errors (``se > 0``).
    group : ndarray of int of shape (n,)
        Group code of each estimate, ``0 .. n_groups - 1``.
    n_groups : int

    Returns
    -------
    GroupEffects
    """
    est, w, grp, n, sw, sw2 = _precision_sums(estimate, se, group, n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        m_fixed = np.bincount(grp, weights=w * est, minlength=n_groups) / sw
        q = np.bincount(grp, weights=w * (est - m_fixed[grp]) ** 2, minlength=n_groups)
        c = sw - sw2 / sw
        tau2 = np.where((n > 1) & (c > 0), np.maximum(0.0, (q - (n - 1)) / c), 0.0)
        w_re = 1.0 / (1.0 / w + tau2[grp])
        sw_re = np.bincount(grp, weights=w_re, minlength=n_groups)
        mean = np.bincount(grp, weights=w_re * est, minlength=n_groups) / sw_re
        mean_se = np.sqrt(1.0 / sw_re)
    mean = np.where(n > 0, mean, np.nan)
    mean_se = np.where(n > 0, mean_se, np.nan)
    return GroupEffects(mean=mean, mean_se=mean_se, tau2=np.nan_to_num(tau2), n=n)


def pooled_tau2(estimate: np.ndarray, se: np.ndarray, group: np.ndarray, n_groups: int) -> float:
    """One between-SKU variance for all groups (each around its own mean), DerSimonian-Laird
    over the pooled within-group spread: ``(Q - (N - G)) / c`` with
    ``Q = sum_i w_i (b_i - m_g)^2`` and ``c = sum_g (sum w - sum w^2 / sum w)``. Far more stable
    than a per-group estimate when groups hold a few dozen SKUs."""
    est, w, grp, n, sw, sw2 = _precision_sums(estimate, se, group, n_groups)
    used = n > 0
    m = np.zeros(n_groups)
    m[used] = np.bincount(grp, weights=w * est, minlength=n_groups)[used] / sw[used]
    q = float(np.sum(w * (est - m[grp]) ** 2))
    c = float(np.sum(sw[used] - sw2[used] / sw[used]))
    df = float(n.sum() - used.sum())
    return max(0.0, (q - df) / c) if c > 0 else 0.0


def shrink(
    estimate: np.ndarray,
    se: np.ndarray,
    mean: np.ndarray,
    mean_se: np.ndarray,
    tau2: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior mean, posterior standard deviation and shrinkage weight ``B`` per estimate.

    All arguments are arrays of shape ``(n,)`` (the group's values already taken per
    estimate).
    """
    se2 = np.asarray(se, dtype=float) ** 2
    tau2 = np.asarray(tau2, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        weight = np.where(se2 + tau2 > 0, se2 / (se2 + tau2), 1.0)
    post = (1.0 - weight) * estimate + weight * mean
    var = (1.0 - weight) * se2 + weight**2 * np.asarray(mean_se, dtype=float) ** 2
    return post, np.sqrt(var), weight


@dataclass
class PooledElasticities:
    """Per-SKU posterior elasticities and the per-category priors they were pooled towards.

    Attributes
    ----------
    post, post_se, weight : ndarray of shape (n_skus,)
        Posterior mean, its standard deviation and the shrinkage weight; a SKU without an
        identified elasticity gets its category's prior (weight 1).
    mean, tau : ndarray of shape (n_cats,)
        Each category's prior mean and between-SKU spread.
    level : ndarray of str of shape (n_cats,)
        Where each category's prior comes from: ``"category"``, ``"department"``,
        ``"global"`` or ``"prior"`` (no identified SKU anywhere).
    """

    post: np.ndarray
    post_se: np.ndarray
    weight: np.ndarray
    mean: np.ndarray
    tau: np.ndarray
    level: np.ndarray


def pool_elasticities(
    raw: np.ndarray,
    raw_se: np.ndarray,
    identified: np.ndarray,
    cat_code: np.ndarray,
    dep_code: np.ndarray,
    n_cats: int,
    n_deps: int,
    *,
    prior_mean: float,
    prior_se: float,
    tau_prior_skus: float,
    min_group_skus: int,
    shrink_raw: bool = True,
) -> PooledElasticities:
    """Shrink each SKU's elasticity towards its category, borrowing upwards where a
    category is small.

    Each category takes the first level with at least ``min_group_skus`` identified SKUs:
    its own, its department's, then every SKU's (a single SKU suffices there); without any
    identified SKU, ``prior_mean`` and ``prior_se``. A level's between-SKU variance is blended
    with the one pooled over all categories, ``(n tau2 + k tau2_pooled) / (n + k)`` with
    ``k = tau_prior_skus``. Identified SKUs are then shrunk (:func:`shrink`; kept raw when
    ``shrink_raw`` is False); the others take their category's mean with its spread
    ``sqrt(tau2 + se(mean)^2)`` as standard error.

    Parameters
    ----------
    raw, raw_se : ndarray of shape (n_skus,)
        The SKUs' own estimates and standard errors (read where ``identified``).
    identified : ndarray of bool of shape (n_skus,)
    cat_code, dep_code : ndarray of int of shape (n_skus,)
        Each SKU's category and department.
    n_cats, n_deps : int

    Returns
    -------
    PooledElasticities
    """
    n_skus = raw.shape[0]
    idx = np.flatnonzero(identified)
    mean_c = np.full(n_cats, prior_mean)
    mean_se_c = np.zeros(n_cats)
    tau2_c = np.full(n_cats, prior_se**2)
    level = np.full(n_cats, "prior", dtype=object)
    if idx.size:
        dep_of_cat = np.zeros(n_cats, dtype=np.int64)
        dep_of_cat[cat_code] = dep_code
        glob = group_effects(raw[idx], raw_se[idx], np.zeros(idx.size, np.int64), 1)
        dep = group_effects(raw[idx], raw_se[idx], dep_code[idx], n_deps)
        cat = group_effects(raw[idx], raw_se[idx], cat_code[idx], n_cats)
        t2_pool = pooled_tau2(raw[idx], raw_se[idx], cat_code[idx], n_cats)
        k0 = tau_prior_skus
        cat.tau2 = (cat.n * cat.tau2 + k0 * t2_pool) / (cat.n + k0)
        dep.tau2 = (dep.n * dep.tau2 + k0 * t2_pool) / (dep.n + k0)
        candidates = [
            (
                "global",
                glob.mean[np.zeros(n_cats, np.int64)],
                glob.mean_se[0],
                glob.tau2[0],
                glob.n[0],
            ),
            (
                "department",
                dep.mean[dep_of_cat],
                dep.mean_se[dep_of_cat],
                dep.tau2[dep_of_cat],
                dep.n[dep_of_cat],
            ),
            ("category", cat.mean, cat.mean_se, cat.tau2, cat.n),
        ]
        for name, m, mse, t2, n in candidates:
            use = np.broadcast_to(n, (n_cats,)) >= (min_group_skus if name != "global" else 1)
            mean_c = np.where(use, m, mean_c)
            mean_se_c = np.where(use, mse, mean_se_c)
            tau2_c = np.where(use, t2, tau2_c)
            level = np.where(use, name, level)
    if shrink_raw:
        post, post_se, weight = shrink(
            raw, raw_se, mean_c[cat_code], mean_se_c[cat_code], tau2_c[cat_code]
        )
    else:
        post, post_se, weight = raw.copy(), raw_se.copy(), np.zeros(n_skus)
    prior_sd = np.sqrt(tau2_c + mean_se_c**2)
    return PooledElasticities(
        post=np.where(identified, post, mean_c[cat_code]),
        post_se=np.where(identified, post_se, prior_sd[cat_code]),
        weight=np.where(identified, weight, 1.0),
        mean=mean_c,
        tau=np.sqrt(tau2_c),
        level=level,
    )
