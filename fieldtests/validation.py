"""Validation of the design and the analysis on a market whose effect is known.

In a synthetic world the true demand parameters are known. :func:`validate` simulates the
test weeks of every SKU under the treatment and the control plan on paired episodes at the
true parameters (:func:`fieldtests.power.simulate_potential_outcomes`); the true effect is
then the mean over SKUs and episodes of ``treatment - control``, exactly, for the world the
tests draw from. It runs ``n_tests`` simulated tests (SKUs drawn from the world within each
stratum, one episode each, a fresh stratified assignment each:
:func:`fieldtests.power.simulated_tests` with ``resample``) and reports, per estimator:

- **coverage**: the share of 95 % CIs that hold the true effect (should be near 95 %);
- **A/A rejection**: the share of tests that reject "no effect" when both arms get the
  control plan (should be near 5 %);
- **CI width**: the mean width, and CUPED's reduction of it against the plain difference.

Each share comes with its binomial (Wilson) interval, so a run with few tests says how
little it can tell apart.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from fieldtests.power import ESTIMATORS, simulate_potential_outcomes, simulated_tests
from planning.schedule import Schedule
from simulator.demand import Catalog

logger = logging.getLogger(__name__)

LEVEL = 0.95
ALPHA = 0.05


@dataclass
class ValidationResult:
    """Coverage, A/A rejection and CI widths of each estimator over ``n_tests`` tests."""

    metric: str
    n_skus: int
    n_tests: int
    true_effect: float
    table: pd.DataFrame

    def value(self, estimator: str, column: str) -> float:
        row = self.table[self.table["estimator"] == estimator]
        return float(row[column].to_numpy(dtype=float)[0])

    @property
    def cuped_width_reduction(self) -> float:
        """``1 - width(CUPED) / width(difference)``: the share of the CI width CUPED removes."""
        return 1.0 - self.value("cuped", "mean_width") / self.value("difference", "mean_width")


def wilson(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson interval of a binomial share."""
    lo, hi = proportion_confint(successes, n, alpha=1 - level, method="wilson")
    return float(lo), float(hi)


def validate(
    catalog: Catalog,
    codes: np.ndarray,
    treatment: Schedule,
    control: Schedule,
    *,
    metric_name: str = "profit",
    weeks: int,
    pre_weeks: int | None = None,
    n_episodes: int = 200,
    n_tests: int = 1000,
    seed: int = 0,
) -> ValidationResult:
    """Run the validation (see the module docstring).

    Parameters
    ----------
    catalog : Catalog
        True parameters (a synthetic world's), in the plans' order.
    codes : ndarray of int of shape (n_skus,)
        Stratum codes (:func:`fieldtests.assignment.codes_of`).
    treatment, control : Schedule
    metric_name : str
    weeks, pre_weeks : int
    n_episodes : int
        Paired episodes per SKU: the worlds the tests draw from.
    n_tests : int
    seed : int
    """
    sim_seed, test_seed = (int(s.generate_state(1)[0]) for s in
                           np.random.SeedSequence(seed).spawn(2))  # fmt: skip
    po = simulate_potential_outcomes(
        catalog, treatment, control, metric_name=metric_name, weeks=weeks,
        pre_weeks=pre_weeks or weeks, n_episodes=n_episodes, seed=sim_seed,
        draw_parameters=False,
    )  # fmt: skip
    truth = po.effect
    logger.info("validation: %d tests of %d SKUs, true effect %.4g", n_tests, po.n_skus, truth)
    ab, aa = simulated_tests(po, codes, shifts=[None, 0.0], n_tests=n_tests, seed=test_seed,
                             level=LEVEL, resample=True)  # fmt: skip
    rows = []
    for k in ESTIMATORS:
        cov = int(ab.estimates[k].covers(truth).sum())
        rej = int(aa.estimates[k].rejects(ALPHA).sum())
        c_lo, c_hi = wilson(cov, n_tests)
        r_lo, r_hi = wilson(rej, n_tests)
        rows.append({
            "estimator": k, "coverage": cov / n_tests, "coverage_low": c_lo,
            "coverage_high": c_hi, "aa_rejection": rej / n_tests, "aa_low": r_lo,
            "aa_high": r_hi, "mean_width": float(ab.estimates[k].width.mean()),
            "bias": float(ab.estimates[k].effect.mean() - truth),
        })  # fmt: skip
    return ValidationResult(metric_name, po.n_skus, n_tests, truth, pd.DataFrame(rows))
