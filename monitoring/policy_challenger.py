"""The policy's champion against a challenger: the same fitted catalog, the same random numbers.

The backtest of a pricing policy is a plan, not a forecast: both policies plan the **same
catalog** (the demand fitted on the latest data, the stock on hand), each plan is their
typical fixed plan over the horizon (:func:`planning.from_policy.plan_of`, as the pipeline's
evaluation makes it), and both plans are simulated on **common random numbers per SKU**
(:func:`planning.outcomes.simulate_schedules`: every random number a SKU sees is keyed by
the SKU, the episode and the week, never by the plan), so two identical plans differ by
exactly zero and the difference of two plans carries only the noise of the difference.

The statistic is the challenger's profit gain relative to the champion's,
``sum (challenger_profit - champion_profit) / sum |champion_profit|`` over the SKUs (each
SKU's profit the mean over the episodes), with a bootstrap CI that resamples SKUs
(:func:`monitoring.challenger.paired_gain_comparison`).

The challenger is masked PPO (:func:`agents.ppo.train_ppo`) trained on that catalog for the
plan's horizon, as the pipeline's policy stage trains it. What is compared is what is
registered (the trained network), not a retrain.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from agents.policy import Policy
from agents.ppo import PPOConfig, PPOPolicy, train_ppo
from envs.config import RulesConfig
from ingest.errors import DataError
from monitoring.forecast_error import top_skus
from planning.from_policy import plan_of
from planning.outcomes import DEFAULT_DRAW_PARAMETERS, simulate_schedules
from simulator.demand import Catalog
from simulator.fit import FitConfig, fit_catalog

log = logging.getLogger(__name__)

MIN_POLICY_SKUS = 2
"""SKUs the policy backtest needs (a bootstrap over one SKU says nothing)."""


@dataclass
class PolicyBacktest:
    """The policy challenger and the catalog both policies plan.

    Attributes
    ----------
    catalog : Catalog
        The demand fitted on the data's weeks up to ``fit_last_week`` (the best sellers).
    rules : RulesConfig
    horizon : int
        Plan length in weeks.
    challenger : PPOPolicy
    model_path : Path
        The challenger's saved network (what is registered).
    timesteps : int
        Its training steps.
    fit_last_week : int
    """

    catalog: Catalog
    rules: RulesConfig
    horizon: int
    challenger: PPOPolicy
    model_path: Path
    timesteps: int
    fit_last_week: int


def policy_catalog(
    panel: pd.DataFrame,
    config: FitConfig,
    max_skus: int | None,
    products: pd.DataFrame | None = None,
) -> Catalog:
    """The demand of the best ``max_skus`` sellers fitted on every week of ``panel``."""
    sub = top_skus(panel, max_skus)
    catalog = fit_catalog(sub, config, products=products).catalog
    if catalog.n_skus < MIN_POLICY_SKUS:
        raise DataError(
            f"policy: {catalog.n_skus} SKU(s) could be fitted; the backtest needs at least "
            f"{MIN_POLICY_SKUS}"
        )
    return catalog


def policy_challenger(
    panel: pd.DataFrame,
    fit: FitConfig,
    rules: RulesConfig,
    ppo: PPOConfig,
    *,
    horizon: int,
    max_skus: int | None,
    seed: int,
    out_dir: Path,
    products: pd.DataFrame | None = None,
) -> PolicyBacktest:
    """Fit the catalog on the latest data and train the PPO challenger on it.

    Parameters
    ----------
    panel : DataFrame
        The weekly panel.
    fit : FitConfig
    rules : RulesConfig
        The business rules both policies plan under.
    ppo : PPOConfig
        Training settings (its seed and horizon are set here).
    horizon : int
    max_skus : int or None
        The catalog holds the best sellers only.
    seed : int
    out_dir : Path
        Where the challenger's network is saved.
    products : DataFrame, optional
    """
    catalog = policy_catalog(panel, fit, max_skus, products)
    cfg = replace(ppo, seed=seed % (2**31), horizon_range=(horizon, horizon))
    log.info("policy: training PPO for %d steps on %d SKUs", cfg.total_timesteps, catalog.n_skus)
    result = train_ppo(cfg, rules, catalog)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "model.zip"
    result.model.save(str(path))
    return PolicyBacktest(
        catalog,
        rules,
        horizon,
        PPOPolicy(result.model, name="challenger"),
        path,
        int(result.num_timesteps),
        int(panel["week"].max()),
    )


def policy_profits(
    champion: Policy | None,
    test: PolicyBacktest,
    *,
    n_episodes: int,
    seed: int,
    draw_parameters: bool = DEFAULT_DRAW_PARAMETERS,
) -> tuple[np.ndarray | None, np.ndarray]:
    """Per-SKU expected profit of the champion's and the challenger's plans on the test
    catalog, simulated on common random numbers (the champion's is None without one).

    Both plans come from the same planning seed and are simulated with the same simulation
    seed, so the same policy gives the same numbers to the last digit.
    """
    plan_seed, sim_seed = (int(s.generate_state(1)[0]) for s in
                           np.random.SeedSequence(seed).spawn(2))  # fmt: skip
    policies: dict[str, Policy] = {"challenger": test.challenger}
    if champion is not None:
        policies["champion"] = champion
    schedules = {
        key: plan_of(p, test.catalog, test.rules, test.horizon, seed=plan_seed)[0]
        for key, p in policies.items()
    }
    out = simulate_schedules(
        test.catalog,
        schedules,
        n_episodes=n_episodes,
        seed=sim_seed,
        draw_parameters=draw_parameters,
    )
    chall = out["challenger"].sku_mean("profit")
    champ = out["champion"].sku_mean("profit") if champion is not None else None
    return champ, chall
