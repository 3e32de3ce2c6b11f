"""Power of a field test by simulation in the fitted market, checked against the formula.

Potential outcomes
------------------
:func:`simulate_potential_outcomes` simulates, for every SKU of the test and ``n_episodes``
episodes, the test weeks under the treatment plan and under the control plan with
:func:`planning.outcomes.simulate_schedules` (common random numbers per SKU: the two plans
see the same demand quantiles and the same parameter draw, so ``treatment - control`` is the
effect of the plan alone), and the pre-period (``pre_weeks`` weeks at list price before the
test, stock unconstrained) on an independent seed. The pre-period shares no parameter draw
with the test weeks, so its correlation with the outcome comes from the differences between
SKUs only: the simulated CUPED gain is, if anything, understated.

Simulated tests
---------------
:func:`simulated_tests` draws ``n_tests`` tests at once: one episode per SKU (the world the
test happens to run in) and a fresh stratified assignment
(:func:`fieldtests.assignment.random_assignments`); a treated SKU shows its treatment
outcome, the others their control outcome. The power at an effect ``delta`` replaces the
treatment outcome by ``control + delta`` (the noise of the control arm, a known shift); the
power at the plan's own effect uses the simulated treatment outcomes as they are.

The analytic check is statsmodels' two-sample t-test power
(:class:`statsmodels.stats.power.TTestIndPower`) with the effect size ``delta / sigma``,
``sigma`` the outcome's standard deviation across SKUs and episodes, and for CUPED
``sigma * sqrt(1 - rho²)``. It assumes independent, identically distributed units, which a
stratified finite set of SKUs is not; the two agree where it holds (tested).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from statsmodels.stats.power import TTestIndPower

from fieldtests.assignment import random_assignments
from fieldtests.estimators import (
    Estimate,
    cuped,
    diff_in_means,
    stratified,
    stratified_cuped,
)
from fieldtests.metrics import covariate_matrix, covariates, metric
from ingest.errors import ConfigError
from ingest.progress import progress
from planning.outcomes import simulate_schedules
from planning.schedule import Schedule
from simulator.demand import SEASON_PERIOD, Catalog

logger = logging.getLogger(__name__)

ESTIMATORS = ("difference", "cuped", "stratified", "stratified_cuped")
"""Estimators every simulated test runs; the last matches a stratified design."""
PRE_PERIOD_STOCK = 1e9
"""Stock during the simulated pre-period: large, so pre-period sales are demand, not stock."""
_PRE_STREAM = 0xABE0
_TESTS_PER_CHUNK = 250
_PERM_STREAM = 0x9E2A
"""Simulated tests analysed at once (bounds memory at tests x SKUs x a few arrays)."""


@dataclass(frozen=True)
class PotentialOutcomes:
    """Simulated outcomes per SKU and episode.

    Attributes
    ----------
    sku : ndarray of str of shape (n_skus,)
    control, treatment : ndarray of shape (n_skus, n_episodes)
        The metric under each plan.
    covariate : ndarray of shape (n_skus, n_episodes, k)
        Its CUPED covariates (:func:`fieldtests.metrics.covariate_matrix`).
    metric : str
    """

    sku: np.ndarray
    control: np.ndarray
    treatment: np.ndarray
    covariate: np.ndarray
    metric: str

    @property
    def n_skus(self) -> int:
        return int(self.control.shape[0])

    @property
    def effect(self) -> float:
        """The plan's expected effect: mean over SKUs and episodes of treatment - control."""
        return float((self.treatment - self.control).mean())

    @property
    def sigma(self) -> float:
        """Standard deviation of the control outcome across SKUs and episodes."""
        return float(self.control.std(ddof=1))

    @property
    def rho(self) -> float:
        """Multiple correlation of the control outcome with the covariates (sqrt of the R²
        of a least-squares fit across SKUs and episodes)."""
        y = self.control.reshape(-1)
        x = self.covariate.reshape(y.size, -1)
        if y.std() == 0:
            return 0.0
        design = np.column_stack([np.ones(y.size), x])
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        r2 = 1.0 - np.var(y - design @ coef) / np.var(y)
        return float(np.sqrt(min(max(r2, 0.0), 1.0)))


def truncate(schedule: Schedule, weeks: int) -> Schedule:
    """The first ``weeks`` weeks of ``schedule`` (the test's weeks)."""
    if not 1 <= weeks <= schedule.horizon:
        raise ConfigError(f"weeks = {weeks}: expected 1..{schedule.horizon} (the plan's horizon)")
    return Schedule(
        schedule.sku, schedule.discount[:, :weeks], schedule.coupon[:, :weeks], schedule.name
    )


def pre_period_catalog(catalog: Catalog, pre_weeks: int) -> Catalog:
    """``catalog`` moved ``pre_weeks`` weeks back in the season, with unconstrained stock."""
    start = (np.asarray(catalog.start_week) - pre_weeks) % SEASON_PERIOD
    return catalog.replace(initial_stock=np.full(catalog.n_skus, PRE_PERIOD_STOCK),
                           start_week=start)  # fmt: skip


def simulate_potential_outcomes(
    catalog: Catalog,
    treatment: Schedule,
    control: Schedule,
    *,
    metric_name: str,
    weeks: int,
    pre_weeks: int,
    n_episodes: int,
    seed: int,
    draw_parameters: bool = True,
) -> PotentialOutcomes:
    """Simulate the test weeks under both plans and the pre-period (see the module docstring).

    Parameters
    ----------
    catalog : Catalog
        The fitted SKUs, in the schedules' order.
    treatment, control : Schedule
    metric_name : str
        ``profit``, ``sell_through`` or ``dead_stock``.
    weeks, pre_weeks : int
        Test weeks (the first ``weeks`` of the plans) and pre-period weeks.
    n_episodes : int
    seed : int
    draw_parameters : bool
        Draw each episode's parameters from the fit's uncertainty.
    """
    m = metric(metric_name)
    if pre_weeks < 1:
        raise ConfigError(f"pre_weeks = {pre_weeks}: expected >= 1")
    plans = {"treatment": truncate(treatment, weeks), "control": truncate(control, weeks)}
    logger.info("simulating %d SKUs x %d episodes under both plans", catalog.n_skus, n_episodes)
    out = simulate_schedules(
        catalog, plans, n_episodes=n_episodes, seed=seed, draw_parameters=draw_parameters
    )
    pre_seed = int(np.random.SeedSequence([seed, _PRE_STREAM]).generate_state(1)[0])
    pre = simulate_schedules(
        pre_period_catalog(catalog, pre_weeks),
        {"pre": Schedule.constant(catalog.sku, pre_weeks, 0.0, name="no_markdown")},
        n_episodes=n_episodes,
        seed=pre_seed,
        draw_parameters=draw_parameters,
    )["pre"]
    values = covariates(
        pre.totals["units_sold"], pre.totals["revenue"],
        np.asarray(catalog.initial_stock, float)[:, None],
        np.asarray(catalog.unit_cost, float)[:, None],
    )  # fmt: skip
    cov = covariate_matrix(values, m)
    return PotentialOutcomes(
        sku=np.asarray(catalog.sku, dtype=str),
        control=out["control"].totals[m.simulated],
        treatment=out["treatment"].totals[m.simulated],
        covariate=cov,
        metric=m.name,
    )


@dataclass(frozen=True)
class SimulatedTests:
    """Estimates of many simulated tests per estimator, at one effect."""

    estimates: dict[str, Estimate]

    def power(self, alpha: float) -> dict[str, float]:
        return {k: float(e.rejects(alpha).mean()) for k, e in self.estimates.items()}

    def mean_width(self) -> dict[str, float]:
        return {k: float(e.width.mean()) for k, e in self.estimates.items()}


def _estimate_all(y, x, treat, codes, level, seed: int = 0) -> dict[str, Estimate]:
    return {
        "difference": diff_in_means(y, treat, level),
        "cuped": cuped(y, x, treat, level),
        "stratified": stratified(y, treat, codes, level),
        "stratified_cuped": stratified_cuped(y, x, treat, codes, level, seed=seed),
    }


def _concat(parts: list[dict[str, Estimate]]) -> dict[str, Estimate]:
    out = {}
    for k in parts[0]:
        es = [p[k] for p in parts]
        df = None if es[0].df is None else np.concatenate([e.df for e in es])  # type: ignore[misc]
        out[k] = Estimate(
            effect=np.concatenate([e.effect for e in es]),
            se=np.concatenate([e.se for e in es]),
            low=np.concatenate([e.low for e in es]),
            high=np.concatenate([e.high for e in es]),
            p_value=np.concatenate([e.p_value for e in es]),
            level=es[0].level,
            df=df,
        )
    return out


def simulated_tests(
    po: PotentialOutcomes,
    codes: np.ndarray,
    *,
    shifts: list[float | None],
    n_tests: int,
    seed: int,
    share: float = 0.5,
    level: float = 0.95,
    resample: bool = False,
) -> list[SimulatedTests]:
    """Simulate ``n_tests`` tests of the SKUs of ``po`` for each shift.

    A shift ``delta`` gives treated SKUs ``control + delta``; ``None`` gives them their
    simulated treatment outcome. Every shift sees the same episodes and assignments.

    With ``resample``, each test draws its SKUs with replacement within each stratum (as many
    per stratum as ``codes`` holds): tests of SKUs *like* these, whose average effect is the
    mean effect of ``po``. Without it, every test has exactly these SKUs, and the effect
    estimated is their own (the Neyman standard error is then conservative by the spread of
    the SKUs' effects).
    """
    if n_tests < 1:
        raise ConfigError(f"n_tests = {n_tests}: expected >= 1")
    rng = np.random.default_rng(seed)
    n, n_ep = po.control.shape
    codes = np.asarray(codes, dtype=np.int64)
    members = np.argsort(codes, kind="stable")
    sizes = np.bincount(codes)
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    parts: list[list[dict[str, Estimate]]] = [[] for _ in shifts]
    chunks = range(0, n_tests, _TESTS_PER_CHUNK)
    for t0 in progress(chunks, desc="simulated tests", total=len(chunks), unit="chunk"):
        k = min(_TESTS_PER_CHUNK, n_tests - t0)
        ep = rng.integers(n_ep, size=(k, n))
        if resample:
            pick = np.floor(rng.random((k, n)) * sizes[codes]).astype(np.int64)
            rows = members[first[codes] + pick]
        else:
            rows = np.broadcast_to(np.arange(n), (k, n))
        treat = random_assignments(codes, k, rng, share)
        # the randomization test's own stream: the same re-randomizations for every shift
        perm_seed = int(np.random.SeedSequence([seed, t0, _PERM_STREAM]).generate_state(1)[0])
        y0, x = po.control[rows, ep], po.covariate[rows, ep]  # x: (k_tests, n, n_cov)
        for j, shift in enumerate(shifts):
            y1 = po.treatment[rows, ep] if shift is None else y0 + shift
            parts[j].append(
                _estimate_all(np.where(treat, y1, y0), x, treat, codes, level, perm_seed)
            )
    return [SimulatedTests(_concat(p)) for p in parts]


def analytic_power(
    delta: float, sigma: float, n_treatment: int, n_control: int, alpha: float, rho: float = 0.0
) -> float:
    """Two-sample t-test power (statsmodels) for a shift ``delta``; ``rho`` the covariate's
    correlation (CUPED shrinks ``sigma`` by ``sqrt(1 - rho²)``)."""
    s = sigma * np.sqrt(max(1.0 - rho**2, 0.0))
    if s <= 0:
        return 1.0 if delta != 0 else alpha
    return float(
        TTestIndPower().power(
            effect_size=abs(delta) / s,
            nobs1=n_treatment,
            alpha=alpha,
            ratio=n_control / n_treatment,
        )  # fmt: skip
    )


def required_units(
    delta: float, sigma: float, alpha: float, power: float, rho: float = 0.0, share: float = 0.5
) -> float:
    """SKUs a test needs (both arms) to detect ``delta`` with ``power`` (statsmodels; inf
    when ``delta`` is 0)."""
    s = sigma * np.sqrt(max(1.0 - rho**2, 0.0))
    if delta == 0:
        return float("inf")
    if s <= 0:
        return 4.0
    n1 = TTestIndPower().solve_power(
        effect_size=abs(delta) / s, alpha=alpha, power=power, ratio=(1 - share) / share
    )
    return float(np.ceil(n1) + np.ceil(n1 * (1 - share) / share))
