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
    est = np.asarray(estimate, dtype=float)
    w = 1.0 / np.maximum(np.asarray(se, dtype=float), 1e-6) ** 2
    grp = np.asarray(group, dtype=np.int64)
    n = np.bincount(grp, minlength=n_groups)
    sw = np.bincount(grp, weights=w, minlength=n_groups)
    sw2 = np.bincount(grp, weights=w * w, minlength=n_groups)
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
    est = np.asarray(estimate, dtype=float)
    w = 1.0 / np.maximum(np.asarray(se, dtype=float), 1e-6) ** 2
    grp = np.asarray(group, dtype=np.int64)
    n = np.bincount(grp, minlength=n_groups)
    sw = np.bincount(grp, weights=w, minlength=n_groups)
    sw2 = np.bincount(grp, weights=w * w, minlength=n_groups)
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
