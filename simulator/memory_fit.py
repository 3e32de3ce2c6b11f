"""Fit reference-price memory and promotion fatigue on a weekly panel, where the data identify them.

The market's memory law (:mod:`simulator.market`) makes demand
``base * p^e * (p / R)^-gamma * (1 - F)`` with ``R`` an exponential smoothing of past shelf
prices (``R_t = m R_{t-1} + (1 - m) p_{t-1}``, prices as ratios to list) and ``F`` fatigue
from recent discounted weeks. Taking logs, per category::

    log E[units_it] = a_i + w_t + (e - gamma) log p_it + gamma log R_it - rate * K_it

with SKU effects ``a_i``, week effects ``w_t`` (season and chain-wide shocks), and ``K_it``
the number of discounted weeks among the ``window`` weeks before ``t`` (the fatigue proxy:
``log(1 - F) ~ -F`` for small ``F``). :func:`fit_memory` estimates it as a Poisson model
with the SKU effects profiled out (the fixed-effect Poisson estimator, consistent under
overdispersion), with standard errors clustered by SKU (robust to overdispersion and to
serial correlation within a SKU). The memory ``m`` is chosen by the profile likelihood over
:data:`MEMORY_GRID` on all categories together.

A term is flagged ``assumed`` where the data do not support it: a standard error above
:data:`MAX_GAMMA_SE` / :data:`MAX_RATE_SE`, or an estimate with the wrong sign (a past
discount that raises today's demand is not reference-price memory). Assumed terms are set to
0 (memory off), which is what the main job uses by default.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ingest.errors import DataError

log = logging.getLogger(__name__)

MEMORY_GRID: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9)
"""Weekly reference-price memories tried by the profile likelihood."""
MAX_GAMMA_SE = 0.3
"""Largest standard error of ``gamma`` at which it counts as identified."""
MAX_RATE_SE = 0.02
"""Largest standard error of the fatigue rate at which it counts as identified."""
DISCOUNT_THRESHOLD = 0.05
"""A week counts as discounted (fatigue) when its shelf discount is deeper than this."""
MIN_PRICE = 0.05
"""Shelf prices are clipped to at least this share of list before taking logs."""
REQUIRED = ("sku", "week", "category", "units", "discount_depth")


@dataclass(frozen=True)
class MemoryFitConfig:
    """Settings of :func:`fit_memory`.

    Parameters
    ----------
    window : int
        Weeks before ``t`` counted for fatigue.
    burn_in : int
        First weeks of each SKU left out of the likelihood (the reference price starts at
        list and needs a few weeks of history).
    min_units : float
        SKUs selling fewer units in total are left out (no information on their lifts).
    max_iter : int
        Newton iterations.
    """

    window: int = 4
    burn_in: int = 4
    min_units: float = 20.0
    max_iter: int = 30


def _check(panel: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED if c not in panel.columns]
    if missing:
        raise DataError(
            f"panel: missing column(s) {missing} for the memory fit; expected {REQUIRED}"
        )
    d = panel["discount_depth"].to_numpy(float)
    if np.any(~np.isfinite(d)) or d.min() < 0 or d.max() >= 1:
        raise DataError(
            f"panel: discount_depth in [{np.nanmin(d)}, {np.nanmax(d)}]; expected [0, 1)"
        )


def memory_features(
    sku: np.ndarray, discount: np.ndarray, memory: float, window: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``log p``, ``log R`` and the discounted-week count ``K`` of rows sorted by (sku, week)
    (consecutive weeks; ``R`` starts at list in each SKU's first week)."""
    p = np.maximum(1.0 - discount, MIN_PRICE)
    n = p.size
    first = np.r_[True, sku[1:] != sku[:-1]]
    disc = (discount > DISCOUNT_THRESHOLD).astype(float)
    start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    t = np.arange(n) - start
    ref = np.ones(n)
    # R_t = m R_{t-1} + (1 - m) p_{t-1}: one vectorized step per week of age, across SKUs
    for age in range(1, int(t.max(initial=0)) + 1):
        rows = np.flatnonzero(t == age)
        ref[rows] = memory * ref[rows - 1] + (1.0 - memory) * p[rows - 1]
    # count of discounted weeks among the `window` before t, within the SKU
    cum = np.r_[0.0, np.cumsum(disc)]
    lo = np.maximum(np.arange(n) - window, start)
    count = cum[np.arange(n)] - cum[lo]
    return np.log(p), np.log(ref), count


def _poisson_fe(
    y: np.ndarray, X: np.ndarray, group: np.ndarray, max_iter: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """Poisson with one effect per group profiled out: coefficients, SKU-clustered
    covariance, and the profile log likelihood (up to a constant)."""
    n_g = int(group.max()) + 1
    k = X.shape[1]
    beta = np.zeros(k)
    y_sum = np.bincount(group, weights=y, minlength=n_g)

    def fitted(b: np.ndarray) -> np.ndarray:
        eta = X @ b
        eta -= eta.max()
        e = np.exp(eta)
        scale = y_sum / np.maximum(np.bincount(group, weights=e, minlength=n_g), 1e-300)
        return e * scale[group]

    def groupsum(M: np.ndarray) -> np.ndarray:
        out = np.zeros((n_g, M.shape[1]))
        np.add.at(out, group, M)
        return out

    mu = fitted(beta)
    for _ in range(max_iter):
        m_g = np.bincount(group, weights=mu, minlength=n_g)
        S = groupsum(mu[:, None] * X)
        A = X.T @ (mu[:, None] * X) - S.T @ (S / np.maximum(m_g, 1e-300)[:, None])
        score = X.T @ (y - mu)
        step = np.linalg.lstsq(A, score, rcond=None)[0]
        beta = beta + step
        mu = fitted(beta)
        if np.max(np.abs(step)) < 1e-8:
            break
    m_g = np.bincount(group, weights=mu, minlength=n_g)
    S = groupsum(mu[:, None] * X)
    xbar = S / np.maximum(m_g, 1e-300)[:, None]
    A = X.T @ (mu[:, None] * X) - S.T @ xbar
    G = groupsum((y - mu)[:, None] * (X - xbar[group]))
    A_inv = np.linalg.pinv(A)
    cov = A_inv @ (G.T @ G) @ A_inv
    loglik = float(np.sum(y * np.log(np.maximum(mu, 1e-300)) - mu))
    return beta, cov, loglik


def _design(frame: pd.DataFrame, memory: float, config: MemoryFitConfig):
    log_p, log_r, count = memory_features(
        frame["sku"].to_numpy(), frame["discount_depth"].to_numpy(float), memory, config.window
    )
    keep = frame["_t"].to_numpy() >= config.burn_in
    weeks = frame["week"].to_numpy()[keep]
    week_codes, _ = pd.factorize(weeks, sort=True)
    dummies = np.zeros((keep.sum(), max(int(week_codes.max()), 0)))
    rows = np.flatnonzero(week_codes > 0)
    dummies[rows, week_codes[rows] - 1] = 1.0
    X = np.column_stack([log_p[keep], log_r[keep], count[keep], dummies])
    group = pd.factorize(frame["sku"].to_numpy()[keep])[0]
    return frame["units"].to_numpy(float)[keep], X, group


def fit_memory(panel: pd.DataFrame, config: MemoryFitConfig | None = None) -> pd.DataFrame:
    """Estimate ``gamma`` and the fatigue rate per category (and for all categories pooled).

    Parameters
    ----------
    panel : DataFrame
        The weekly panel (:data:`ingest.panel.PANEL_COLUMNS`; at least :data:`REQUIRED`),
        consecutive weeks per SKU.
    config : MemoryFitConfig or None

    Returns
    -------
    DataFrame
        One row per category and one ``"(all)"`` row: ``memory`` (the profile-likelihood
        choice), ``gamma``, ``gamma_se``, ``gamma_assumed``, ``fatigue_rate``,
        ``fatigue_rate_se``, ``fatigue_assumed``, ``elasticity`` (``e = b_p + gamma``),
        ``n_skus``, ``n_rows``. Assumed terms read 0.

    Raises
    ------
    DataError
        When a required column is missing or a discount depth is outside ``[0, 1)``.
    """
    config = config or MemoryFitConfig()
    _check(panel)
    frame = panel[list(REQUIRED)].sort_values(["sku", "week"], kind="stable")
    total = frame.groupby("sku")["units"].transform("sum")
    frame = frame[total >= config.min_units].reset_index(drop=True)
    if frame.empty:
        raise DataError(f"panel: no SKU sells at least {config.min_units} units")
    frame["_t"] = frame.groupby("sku").cumcount()
    # the memory, by profile likelihood on all categories together
    best = None
    for m in MEMORY_GRID:
        y, X, g = _design(frame, m, config)
        _, _, ll = _poisson_fe(y, X, g, config.max_iter)
        log.info("memory fit: m = %.2f, log likelihood %.1f", m, ll)
        if best is None or ll > best[1]:
            best = (m, ll)
    assert best is not None
    memory = best[0]
    out = []
    groups = [("(all)", frame), *frame.groupby("category", sort=True)]
    for name, sub in groups:
        y, X, g = _design(sub, memory, config)
        if y.size < 3 * X.shape[1] or y.sum() == 0:
            continue
        beta, cov, _ = _poisson_fe(y, X, g, config.max_iter)
        se = np.sqrt(np.maximum(np.diag(cov), 0.0))
        # a term whose regressor never moves is not identified, whatever pinv returned
        flat = np.ptp(X[:, :3], axis=0) < 1e-9
        se[:3] = np.where(flat, np.inf, se[:3])
        gamma, rate = float(beta[1]), float(-beta[2])
        gamma_ok = se[1] <= MAX_GAMMA_SE and gamma >= 0
        rate_ok = se[2] <= MAX_RATE_SE and rate >= 0
        out.append(
            {
                "category": str(name),
                "memory": memory,
                "gamma_estimate": gamma,
                "gamma": gamma if gamma_ok else 0.0,
                "gamma_se": float(se[1]),
                "gamma_assumed": not gamma_ok,
                "fatigue_rate_estimate": rate,
                "fatigue_rate": rate if rate_ok else 0.0,
                "fatigue_rate_se": float(se[2]),
                "fatigue_assumed": not rate_ok,
                "elasticity": float(beta[0] + beta[1]),
                "n_skus": int(g.max()) + 1,
                "n_rows": int(y.size),
            }
        )
    return pd.DataFrame(out)
