"""Estimators of an A/B test over SKUs, vectorized over many tests at once.

Every estimator takes outcomes ``y`` of shape ``(n_tests, n_units)`` (or ``(n_units,)`` for
one test) and a boolean ``treat`` of the same shape, and returns an :class:`Estimate` whose
fields have shape ``(n_tests,)``. One call analyses one test or a thousand simulated ones
with the same arithmetic, so the validation checks exactly the code the analysis runs.

- :func:`diff_in_means`: treatment mean minus control mean, Welch standard error
  ``sqrt(s1²/n1 + s0²/n0)`` and a Welch-Satterthwaite t interval.
- :func:`cuped`: the same on ``y - theta (x - mean(x))`` (Deng et al. 2013), ``theta`` the
  least-squares slope(s) of ``y`` on the covariates pooled over both arms: pre-period
  covariates ``x`` that no arm can change remove the variance they explain, so the interval
  narrows by about ``sqrt(1 - R²)``; its standard error inflates each residual by its
  leverage (HC2).
- :func:`stratified_cuped`: post-stratification of the CUPED-adjusted outcomes, the estimate
  that matches a stratified assignment (the unstratified ones are then conservative: their
  standard errors ignore the balance the strata enforce), with its p-value and CI from a
  stratified randomization test (exact in A/A tests however heavy the outcomes' tails).
- :func:`stratified`: the post-stratified estimate ``sum_h w_h (ybar1_h - ybar0_h)`` with
  ``w_h = n_h / n`` and variance ``sum_h w_h² (s1h²/n1h + s0h²/n0h)`` (normal interval).

Balance and allocation checks: :func:`standardized_mean_difference` and
:func:`sample_ratio_mismatch` (a chi-square goodness-of-fit test of the arm counts).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from ingest.errors import ConfigError, DataError

MIN_PER_ARM = 2
"""Units an arm needs for a variance (and so an interval)."""


@dataclass(frozen=True)
class Estimate:
    """An effect estimate per test.

    Attributes
    ----------
    effect, se, low, high, p_value : ndarray of shape (n_tests,)
        The estimate, its standard error, the CI bounds and the two-sided p-value of
        "no effect".
    level : float
        The CI level.
    df : ndarray or None
        Degrees of freedom of a t interval (None: a normal one).
    """

    effect: np.ndarray
    se: np.ndarray
    low: np.ndarray
    high: np.ndarray
    p_value: np.ndarray
    level: float
    df: np.ndarray | None = None

    @property
    def width(self) -> np.ndarray:
        return self.high - self.low

    def rejects(self, alpha: float) -> np.ndarray:
        """Whether each test rejects "no effect" at level ``alpha`` (two-sided)."""
        return self.p_value < alpha

    def covers(self, truth: float | np.ndarray) -> np.ndarray:
        """Whether each test's CI holds ``truth``."""
        return (self.low <= truth) & (truth <= self.high)


def _as_2d(y: np.ndarray, treat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y2, t2 = np.atleast_2d(np.asarray(y, dtype=float)), np.atleast_2d(np.asarray(treat, bool))
    if y2.shape != t2.shape:
        raise DataError(f"outcomes {y2.shape} and assignment {t2.shape} differ in shape")
    if not np.isfinite(y2).all():
        raise DataError("outcomes hold NaN or infinite values; every unit needs an outcome")
    return y2, t2


def _arm_moments(y: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count, mean and sample variance (ddof=1) of ``y`` where ``mask``, per row."""
    n = mask.sum(axis=-1).astype(float)
    safe = np.maximum(n, 1.0)
    mean = np.where(mask, y, 0.0).sum(axis=-1) / safe
    dev = np.where(mask, y - mean[..., None], 0.0)
    var = (dev**2).sum(axis=-1) / np.maximum(n - 1.0, 1.0)
    return n, mean, var


def _check_arms(n1: np.ndarray, n0: np.ndarray) -> None:
    if (n1 < MIN_PER_ARM).any() or (n0 < MIN_PER_ARM).any():
        raise DataError(
            f"each arm needs at least {MIN_PER_ARM} units; got treatment {int(n1.min())}, "
            f"control {int(n0.min())}"
        )


def _two_sided(effect: np.ndarray, se: np.ndarray, df: np.ndarray | None, level: float):
    z = np.divide(effect, se, out=np.zeros_like(effect), where=se > 0)
    if df is None:
        crit = stats.norm.ppf(0.5 + level / 2)
        p = 2 * stats.norm.sf(np.abs(z))
    else:
        crit = stats.t.ppf(0.5 + level / 2, df)
        p = 2 * stats.t.sf(np.abs(z), df)
    p = np.where(se > 0, p, np.where(effect == 0, 1.0, 0.0))
    return effect - crit * se, effect + crit * se, p


def diff_in_means(y: np.ndarray, treat: np.ndarray, level: float = 0.95) -> Estimate:
    """Difference in means (treatment - control) with a Welch t interval.

    Parameters
    ----------
    y : array-like of shape (n_tests, n_units) or (n_units,)
    treat : array-like of bool, same shape
    level : float
    """
    y2, t2 = _as_2d(y, treat)
    n1, m1, v1 = _arm_moments(y2, t2)
    n0, m0, v0 = _arm_moments(y2, ~t2)
    _check_arms(n1, n0)
    a, b = v1 / n1, v0 / n0
    se = np.sqrt(a + b)
    # Welch-Satterthwaite degrees of freedom; a zero variance falls back to the pooled df.
    denom = a**2 / (n1 - 1) + b**2 / (n0 - 1)
    df = np.divide((a + b) ** 2, denom, out=n1 + n0 - 2, where=denom > 0)
    effect = m1 - m0
    low, high, p = _two_sided(effect, se, df, level)
    return Estimate(effect, se, low, high, p, level, df)


def _covariate_3d(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Covariates as (n_tests, n_units, k): one covariate has shape (n_units,) or
    (n_tests, n_units); several add a last axis."""
    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x[None, :, None]
    elif x.ndim == 2:
        if x.shape != shape:
            raise DataError(f"covariate {x.shape} and outcomes {shape} differ in shape")
        x = x[:, :, None]
    x = np.broadcast_to(x, (*shape, x.shape[-1]))
    if not np.isfinite(x).all():
        raise DataError("covariates hold NaN or infinite values")
    return x


def cuped_theta(y: np.ndarray, x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Least-squares coefficients of ``y`` on the covariates ``x`` (both centred over the
    units where ``mask``, all units by default), per test, shape (n_tests, k);
    ``cov(x, y) / var(x)`` for one covariate. A covariate that does not vary gets 0."""
    y2 = np.atleast_2d(np.asarray(y, float))
    x3 = _covariate_3d(x, y2.shape)
    w = np.ones(y2.shape) if mask is None else np.asarray(mask, float).reshape(y2.shape)
    n = np.maximum(w.sum(axis=1, keepdims=True), 1.0)
    xc = x3 - (w[..., None] * x3).sum(axis=1, keepdims=True) / n[..., None]
    yc = y2 - (w * y2).sum(axis=1, keepdims=True) / n
    gram = np.einsum("tn,tnk,tnl->tkl", w, xc, xc)
    rhs = np.einsum("tn,tnk,tn->tk", w, xc, yc)
    # a ridge far below any real variance keeps a constant covariate from making it singular
    k = gram.shape[-1]
    scale = np.maximum(np.trace(gram, axis1=1, axis2=2) / k, 1e-300)
    gram = gram + 1e-12 * scale[:, None, None] * np.eye(k)
    return np.linalg.solve(gram, rhs[..., None])[..., 0]


def cuped_adjusted(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``y - (x - mean x) @ theta`` per test (``theta`` pooled over both arms,
    :func:`cuped_theta`), and each unit's leverage in that fit.

    The leverage ``h_i`` serves the standard error: a unit far out in the covariates pulls
    the fit towards itself, so its in-sample residual understates its noise; dividing the
    residual by ``sqrt(1 - h_i)`` (as HC2 does) restores it on average. Pricing covariates are heavy-tailed (a
    few SKUs hold most of the stock), and without it the CIs are too narrow.
    """
    y2 = np.atleast_2d(np.asarray(y, float))
    x3 = _covariate_3d(x, y2.shape)
    centred = x3 - x3.mean(axis=1, keepdims=True)
    theta = cuped_theta(y2, x3)
    gram = np.einsum("tnk,tnl->tkl", centred, centred)
    k = gram.shape[-1]
    scale = np.maximum(np.trace(gram, axis1=1, axis2=2) / k, 1e-300)
    inv = np.linalg.inv(gram + 1e-12 * scale[:, None, None] * np.eye(k))
    leverage = np.einsum("tnk,tkl,tnl->tn", centred, inv, centred) + 1.0 / y2.shape[1]
    return y2 - np.einsum("tnk,tk->tn", centred, theta), np.minimum(leverage, 0.99)


def _inflated(adjusted: np.ndarray, leverage: np.ndarray, treat: np.ndarray) -> np.ndarray:
    """Residuals about each arm's mean divided by ``sqrt(1 - leverage)`` (HC2), arm means
    added back."""
    out = adjusted.copy()
    for mask in (treat, ~treat):
        n = np.maximum(mask.sum(axis=1, keepdims=True), 1)
        mean = np.where(mask, adjusted, 0.0).sum(axis=1, keepdims=True) / n
        out = np.where(mask, mean + (adjusted - mean) / np.sqrt(1.0 - leverage), out)
    return out


def cuped(y: np.ndarray, x: np.ndarray, treat: np.ndarray, level: float = 0.95) -> Estimate:
    """CUPED: the difference in means of ``y - (x - mean x) @ theta``.

    Parameters
    ----------
    y : array-like of shape (n_tests, n_units) or (n_units,)
        Test-period outcome.
    x : array-like of shape (n_units,), (n_tests, n_units) or (n_tests, n_units, k)
        Pre-period covariate(s), which no arm can change.
    treat : array-like of bool, shape of ``y``
    level : float
    """
    y2, t2 = _as_2d(y, treat)
    adjusted, leverage = cuped_adjusted(y2, x)
    point = diff_in_means(adjusted, t2, level)
    spread = diff_in_means(_inflated(adjusted, leverage, t2), t2, level)
    low, high, p = _two_sided(point.effect, spread.se, spread.df, level)
    return Estimate(point.effect, spread.se, low, high, p, level, spread.df)


def stratified(
    y: np.ndarray, treat: np.ndarray, strata: np.ndarray, level: float = 0.95
) -> Estimate:
    """Post-stratified difference in means (normal interval).

    Parameters
    ----------
    y : array-like of shape (n_tests, n_units) or (n_units,)
    treat : array-like of bool, same shape
    strata : array-like of int, same shape or (n_units,)
        Stratum code per unit; every stratum needs :data:`MIN_PER_ARM` units in each arm
        (the assignment merges smaller strata, :func:`fieldtests.assignment.stratum_codes`).
    level : float
    """
    y2, t2 = _as_2d(y, treat)
    s2 = np.broadcast_to(np.atleast_2d(np.asarray(strata)), y2.shape)
    n = y2.shape[-1]
    effect = np.zeros(y2.shape[0])
    var = np.zeros(y2.shape[0])
    for h in np.unique(s2):
        in_h = s2 == h
        n1, m1, v1 = _arm_moments(y2, t2 & in_h)
        n0, m0, v0 = _arm_moments(y2, ~t2 & in_h)
        if (n1 < MIN_PER_ARM).any() or (n0 < MIN_PER_ARM).any():
            raise DataError(
                f"stratum {h} has fewer than {MIN_PER_ARM} units in an arm; merge small strata"
            )
        w = (n1 + n0) / n
        effect += w * (m1 - m0)
        var += w**2 * (v1 / n1 + v0 / n0)
    se = np.sqrt(var)
    low, high, p = _two_sided(effect, se, None, level)
    return Estimate(effect, se, low, high, p, level)


def standardized_mean_difference(x: np.ndarray, treat: np.ndarray) -> float:
    """``(mean_T - mean_C) / sqrt((s_T² + s_C²) / 2)`` of a pre-period covariate (0 when it
    does not vary); balance is usually called good below 0.1 in absolute value."""
    x1, t1 = np.asarray(x, float), np.asarray(treat, bool)
    a, b = x1[t1], x1[~t1]
    pooled = np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2) if min(a.size, b.size) > 1 else 0.0
    return float((a.mean() - b.mean()) / pooled) if pooled > 0 else 0.0


@dataclass(frozen=True)
class SampleRatio:
    """Result of the sample-ratio-mismatch check."""

    n_treatment: int
    n_control: int
    expected_share: float
    chi2: float
    p_value: float
    flagged: bool


SRM_ALPHA = 0.001
"""Threshold of the sample-ratio-mismatch test: strict, because a mismatch voids the test and
the check runs on every test (a 5 % threshold would cry wolf once in twenty)."""


def sample_ratio_mismatch(
    n_treatment: int, n_control: int, expected_share: float = 0.5, alpha: float = SRM_ALPHA
) -> SampleRatio:
    """Chi-square test of the arm counts against the designed treatment share."""
    if not 0 < expected_share < 1:
        raise DataError(f"expected treatment share = {expected_share}: expected in (0, 1)")
    total = n_treatment + n_control
    if total == 0:
        raise DataError("sample-ratio check: no units in either arm")
    expected = [total * expected_share, total * (1 - expected_share)]
    chi2, p = stats.chisquare([n_treatment, n_control], f_exp=expected)
    return SampleRatio(
        int(n_treatment), int(n_control), expected_share, float(chi2), float(p), bool(p < alpha)
    )


N_PERMUTATIONS = 999
"""Re-randomizations of the randomization test behind :func:`stratified_cuped` (p-values in
steps of 1 / 1000)."""


def stratified_cuped(
    y: np.ndarray,
    x: np.ndarray,
    treat: np.ndarray,
    strata: np.ndarray,
    level: float = 0.95,
    *,
    n_permutations: int = N_PERMUTATIONS,
    seed: int = 0,
) -> Estimate:
    """The post-stratified estimate (:func:`stratified`) of the CUPED-adjusted outcomes, with
    its p-value and CI from a stratified randomization test: the analysis that matches a
    stratified design, with the covariates' variance removed too.

    The point estimate is ``sum_h w_h (ebar1_h - ebar0_h)`` of the residuals ``e`` of ``y`` on
    the covariates (one slope pooled over both arms, so the adjustment does not depend on the
    assignment). Its interval does not lean on a normal approximation: pricing outcomes are
    heavy-tailed (a few SKUs hold most of the stock), and a t or normal interval of such
    residuals is conservative (a dominant residual inflates the standard error as much as the
    estimate; A/A tests rejected 3 % at 5 %). Instead the treatment labels are re-randomized
    within each stratum ``n_permutations`` times, as the design randomized them (the counts
    per stratum kept), and:

    - the **p-value** of "no effect" is ``(1 + #{|S_p| >= |S|}) / (1 + n_permutations)``,
      ``S_p`` the estimate under re-randomization ``p`` (exact under the sharp null: an A/A
      test rejects at the nominal rate whatever the outcomes' tails);
    - the **CI** holds every constant effect ``tau`` that the same test does not reject at
      ``1 - level`` (test inversion, Rosenbaum 2002): under ``tau`` the control outcomes are
      ``y - tau T``, and the statistic of re-randomization ``p`` is ``a_p - tau b_p`` with
      ``a_p`` its estimate on ``y`` and ``b_p`` its estimate on ``T``, so the accepted set is
      found exactly from each re-randomization's roots (no search).

    ``se`` is the post-stratified standard error of the residuals (for reports); ``df`` is
    None. Same ``seed``, same re-randomizations.

    Parameters
    ----------
    y, x, treat, strata, level : see :func:`cuped` and :func:`stratified`
    n_permutations : int
        Re-randomizations; at least ``1 / (1 - level)`` so an interval exists.
    seed : int
        Seed of the re-randomizations.
    """
    y2, t2 = _as_2d(y, treat)
    alpha = 1.0 - level
    # accept tau while (1 + N(tau)) / (1 + P) >= alpha, N the re-randomizations at least as extreme
    need = int(np.ceil(alpha * (n_permutations + 1) - 1e-9)) - 1
    if need < 1:
        raise ConfigError(
            f"n_permutations = {n_permutations}: expected at least {int(np.ceil(1 / alpha))} "
            f"for a {level:.0%} interval"
        )
    adjusted, _ = cuped_adjusted(y2, x)
    point = stratified(adjusted, t2, strata, level)
    s2 = np.broadcast_to(np.atleast_2d(np.asarray(strata)), y2.shape)
    x3 = _covariate_3d(x, y2.shape)
    centred = x3 - x3.mean(axis=1, keepdims=True)
    a, b = _rerandomized(adjusted, t2, s2, centred, n_permutations, np.random.default_rng(seed))
    effect = point.effect
    n_extreme = (np.abs(a) >= np.abs(effect)[:, None] * (1 - 1e-12)).sum(axis=1)
    p = (1.0 + n_extreme) / (1.0 + n_permutations)
    low, high = _inverted_interval(effect, a, b, need)
    return Estimate(effect, point.se, low, high, p, level)


def _rerandomized(
    e: np.ndarray,
    treat: np.ndarray,
    strata: np.ndarray,
    centred: np.ndarray,
    n_perm: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """The statistic of each re-randomization as ``a - tau b``, shape (n_tests, n_perm) each.

    With ``c_p`` the contrast of re-randomization ``p`` (``w_h / n1_h`` on the units it
    treats, ``-w_h / n0_h`` on the others), ``M = I - P`` the residual maker of the pooled
    covariate fit and ``T``, ``T_p`` the observed and re-randomized labels: under a constant
    effect ``tau`` the outcomes re-randomization ``p`` would show are ``y - tau T + tau T_p``,
    and its estimate minus ``tau`` is ``c_p' M y - tau (c_p' T + c_p' P (T_p - T))``.

    Every test gets its own within-stratum permutations of the positions (tests that shared
    them were correlated through them, which widened the spread of A/A rejection rates over
    many tests); each permutation applied to a test's own labels is a uniform draw among the assignments with that test's counts per stratum."""
    n_tests, n = e.shape
    a = np.empty((n_tests, n_perm))
    b = np.empty((n_tests, n_perm))
    tf = treat.astype(float)
    k = centred.shape[-1]
    for t in range(n_tests):
        codes = strata[t]
        pt = _within_strata_permutations(codes, n_perm, rng)
        inv = np.unique(codes, return_inverse=True)[1]
        n_h = np.bincount(inv).astype(float)
        n1 = np.bincount(inv, weights=tf[t])
        w = n_h / n
        u1, u0 = (w / n1)[inv], (w / (n_h - n1))[inv]
        g = u1 + u0
        lab = tf[t][pt]  # (n_perm, n): the re-randomized labels
        xc = centred[t]
        gram = xc.T @ xc
        scale = max(np.trace(gram) / k, 1e-300)
        g_inv = np.linalg.inv(gram + 1e-12 * scale * np.eye(k))
        a[t] = lab @ (g * e[t]) - u0 @ e[t]
        x_c = lab @ (g[:, None] * xc) - u0 @ xc  # X' c_p, (n_perm, k)
        x_shift = lab @ xc - tf[t] @ xc  # X' (T_p - T)
        b[t] = lab @ (g * tf[t]) - u0 @ tf[t] + np.einsum("pk,kl,pl->p", x_c, g_inv, x_shift)
    return a, b


def _within_strata_permutations(codes: np.ndarray, n_perm: int, rng: np.random.Generator):
    """``n_perm`` permutations of ``0..n-1`` that move positions only within their stratum."""
    codes = np.asarray(codes)
    out = np.empty((n_perm, codes.size), dtype=np.int64)
    for h in np.unique(codes):
        members = np.flatnonzero(codes == h)
        out[:, members] = rng.permuted(np.broadcast_to(members, (n_perm, members.size)), axis=1)
    return out


def _inverted_interval(
    effect: np.ndarray, a: np.ndarray, b: np.ndarray, need: int
) -> tuple[np.ndarray, np.ndarray]:
    """The constant effects ``tau`` with at least ``need`` re-randomizations as extreme as the
    observed: ``|a_p - tau b_p| >= |effect - tau|``.

    Each such set is an interval that holds ``effect`` (there the right side is 0): with
    ``|b_p| < 1`` its ends are the roots of ``(b_p² - 1) tau² - 2 (a_p b_p - effect) tau +
    a_p² - effect² = 0``; with ``|b_p| = 1`` it is a half-line or the whole line. The accepted
    set is then ``[need-th smallest lower end, need-th largest upper end]``."""
    e = effect[:, None]
    qa = b**2 - 1.0
    qb = -2.0 * (a * b - e)
    qc = a**2 - e**2
    linear = np.abs(qa) < 1e-12
    safe_qa = np.where(linear, -1.0, qa)
    disc = np.sqrt(np.maximum(qb**2 - 4 * safe_qa * qc, 0.0))
    r1 = (-qb + disc) / (2 * safe_qa)
    r2 = (-qb - disc) / (2 * safe_qa)
    lo, hi = np.minimum(r1, r2), np.maximum(r1, r2)
    # |b| = 1: qb tau + qc >= 0
    root = np.divide(-qc, qb, out=np.zeros_like(qb), where=qb != 0)
    lo = np.where(linear, np.where(qb > 0, root, -np.inf), lo)
    hi = np.where(linear, np.where(qb < 0, root, np.inf), hi)
    lo = np.where(linear & (qb == 0), -np.inf, lo)
    hi = np.where(linear & (qb == 0), np.inf, hi)
    low = np.sort(lo, axis=1)[:, need - 1]
    high = -np.sort(-hi, axis=1)[:, need - 1]
    return np.minimum(low, effect), np.maximum(high, effect)
