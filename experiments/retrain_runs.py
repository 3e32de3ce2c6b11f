"""Champion/challenger retraining as one MLflow run.

:func:`retrain_run` trains a challenger per model (the risk model, the demand fit, the
pricing policy), compares
each with the registered champion on the same backtest (:mod:`monitoring.challenger`: paired
per SKU, bootstrap CI, a margin), registers every challenger as a new version, records the
decisions and their evidence on the run (tags ``retrain.<model>`` = ``promote``/``keep``, the
metrics, the artifact ``retrain_decision.json``), and only then, as its very last step, moves
the ``champion`` alias of the models it promotes. A run that fails or is interrupted before
that step moves no alias: its challengers stay registered versions without the alias.

The registered models: the risk model as in :mod:`experiments.risk_runs` (``deadstock-risk``)
and the demand model as ``deadstock-demand`` (a pyfunc holding the fitted catalog: ``predict``
takes panel rows and returns expected weekly units). Versions carry the tags
``data_last_week`` (the last week of the data they were trained with),
``label_end_week`` (risk: the last week its training labels read) and ``fit_last_week``,
``holdout_wmape`` (demand), which the monitor and the replay read.

The policy (``deadstock-policy``, profile :data:`POLICY_PROFILE` as the pipeline registers
it) is a masked PPO challenger trained on the catalog fitted from the latest data; the
registered champion's policy for the same rules and the challenger plan that catalog and are
simulated on common random numbers per SKU (:mod:`monitoring.policy_challenger`); the
statistic is the relative profit gain. A champion registered for other rules cannot plan
under these: the policy is then skipped, with the reason recorded. Versions carry
``data_last_week``, ``timesteps`` and ``retrain_run``.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
import pandas as pd

from agents.policy import Policy
from agents.ppo import PPOConfig
from envs.config import RulesConfig
from experiments.policy_model import REGISTERED_NAME as POLICY_NAME
from experiments.policy_model import PolicyModel, example_input, log_policy_model
from experiments.risk_runs import (
    CHAMPION_ALIAS,
    PACKAGE_ROOT,
    REGISTERED_NAME,
    log_risk_model,
    pip_requirements,
)
from experiments.tracking import deferring_signals, log_metrics, raise_if_interrupted, start_run
from ingest.dataset import Dataset
from ingest.errors import ConfigError, DataError
from monitoring.challenger import (
    Comparison,
    PromotionRule,
    brier_losses,
    demand_challenger,
    demand_losses,
    paired_comparison,
    paired_gain_comparison,
    risk_challenger,
)
from monitoring.policy_challenger import policy_challenger, policy_profits
from risk_model.scoring import RiskConfig
from simulator.demand import Catalog
from simulator.fit import FitConfig

log = logging.getLogger(__name__)

DEMAND_NAME = "deadstock-demand"
MODELS = ("risk", "demand", "policy")
POLICY_PROFILE = "pipeline"
"""The profile under which the pipeline registers its policy (``app.run_record``)."""
RETRAIN_PPO = PPOConfig(total_timesteps=100_000, checkpoint_every=0)
"""The policy challenger's default training: the pipeline's quick budget (a retraining job
on this machine has minutes, not hours; raise ``RetrainConfig.ppo`` where it has more)."""
DECISION_FILE = "retrain_decision.json"


@dataclass(frozen=True)
class RetrainConfig:
    """Settings of a retraining run.

    Parameters
    ----------
    models : tuple of str
        Which challengers to train: ``"risk"``, ``"demand"``, ``"policy"``.
    risk : RiskConfig
        The risk challenger's settings (its score cutoff is set by the backtest).
    fit : FitConfig
        The demand challenger's settings.
    rule : PromotionRule
        Margin, CI level and bootstrap of the promotion decision.
    demand_holdout_weeks : int
        Test weeks of the demand backtest.
    max_demand_skus : int or None
        The demand challenger covers the best sellers only (``None``: every SKU).
    rules : RulesConfig
        The business rules the policies plan under (the CLI passes the pipeline's).
    ppo : PPOConfig
        The policy challenger's training (its seed and horizon are set by the run).
    horizon_weeks : int
        The policy backtest's plan length.
    max_policy_skus : int or None
        The policy backtest plans the best sellers only.
    policy_episodes : int
        Simulated episodes per SKU and plan in the policy backtest.
    risk_name, demand_name, policy_name : str
        Registered model names (tests use their own).
    seed : int
    """

    models: tuple[str, ...] = MODELS
    risk: RiskConfig = field(default_factory=RiskConfig)
    fit: FitConfig = field(default_factory=FitConfig)
    rule: PromotionRule = field(default_factory=PromotionRule)
    demand_holdout_weeks: int = 8
    max_demand_skus: int | None = 2000
    rules: RulesConfig = field(default_factory=RulesConfig)
    ppo: PPOConfig = RETRAIN_PPO
    horizon_weeks: int = 8
    max_policy_skus: int | None = 300
    policy_episodes: int = 200
    risk_name: str = REGISTERED_NAME
    demand_name: str = DEMAND_NAME
    policy_name: str = POLICY_NAME
    seed: int = 0

    def __post_init__(self) -> None:
        bad = [m for m in self.models if m not in MODELS]
        if bad or not self.models:
            raise ConfigError(f"RetrainConfig.models = {self.models!r}; expected some of {MODELS}")
        for name in ("horizon_weeks", "policy_episodes"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(
                    f"RetrainConfig.{name} = {getattr(self, name)!r}; expected an integer >= 1"
                )
        if self.demand_holdout_weeks < 1:
            raise ConfigError(
                f"RetrainConfig.demand_holdout_weeks = {self.demand_holdout_weeks}; expected >= 1"
            )


@dataclass
class RetrainOutcome:
    """What a retraining run decided: one comparison per model, the versions registered, the
    ones promoted (model name -> version) and the models skipped (-> why: too little history
    for their backtest)."""

    run_id: str
    comparisons: dict[str, Comparison]
    versions: dict[str, str]
    promoted: dict[str, str]
    skipped: dict[str, str] = field(default_factory=dict)


class DemandPyfunc(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined,misc]
    """A fitted demand catalog: ``predict`` takes panel rows (``sku, week,
    discount_depth``, optionally ``display, mailer``) and returns expected weekly units."""

    def load_context(self, context: Any) -> None:
        frame = pd.read_parquet(context.artifacts["catalog"])
        self.catalog = Catalog.from_frame(frame, source="registered demand model")

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        from simulator.forecast import predict_units

        return predict_units(self.catalog, pd.DataFrame(model_input))


def champion_version(name: str) -> Any | None:
    """The version behind ``name@champion``, or None."""
    try:
        return mlflow.MlflowClient().get_model_version_by_alias(name, CHAMPION_ALIAS)
    except mlflow.exceptions.MlflowException:
        return None


def load_risk_champion(name: str = REGISTERED_NAME) -> tuple[Any | None, Any | None]:
    """The champion risk classifier (unwrapped) and its version, or ``(None, None)``."""
    version = champion_version(name)
    if version is None:
        return None, None
    inner = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION_ALIAS}").unwrap_python_model()
    return inner.model, version


def load_demand_champion(name: str = DEMAND_NAME) -> tuple[Catalog | None, Any | None]:
    """The champion demand catalog and its version, or ``(None, None)``."""
    version = champion_version(name)
    if version is None:
        return None, None
    inner = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION_ALIAS}").unwrap_python_model()
    return inner.catalog, version


def load_policy_champion(name: str, rules: RulesConfig) -> tuple[Policy | None, Any | None]:
    """The champion policy for ``rules`` and its version, or ``(None, None)`` without a
    champion.

    Raises
    ------
    DataError
        When the champion holds no policy for these rules (it cannot plan under them).
    """
    version = champion_version(name)
    if version is None:
        return None, None
    inner = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION_ALIAS}").unwrap_python_model()
    if not isinstance(inner, PolicyModel):
        raise DataError(f"{name}@{CHAMPION_ALIAS} is not a deadstock policy model")
    for profile, prules in inner.rules.items():
        if prules == rules and profile in inner.policies:
            pol = inner.policies[profile]
            pol.name = "champion"
            return pol, version
    raise DataError(
        f"{name}@{CHAMPION_ALIAS} (version {version.version}) holds no policy for these rules "
        f"(profiles {sorted(inner.rules)}); train one under them with deadstock train"
    )


def _log_demand_model(catalog: Catalog, name: str, tags: dict[str, str]) -> str:
    tmp = Path(tempfile.mkdtemp(prefix="deadstock-demand-model-"))
    path = tmp / "catalog.parquet"
    catalog.to_frame().to_parquet(path, index=False)
    info = mlflow.pyfunc.log_model(
        name="demand_model",
        python_model=DemandPyfunc(),
        artifacts={"catalog": str(path)},
        pip_requirements=pip_requirements(),
        code_paths=[str(PACKAGE_ROOT / "simulator"), str(PACKAGE_ROOT / "ingest")],
        registered_model_name=name,
    )
    version = str(info.registered_model_version)
    client = mlflow.MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    return version


def _risk_step(
    dataset: Dataset, panel: pd.DataFrame, cfg: RetrainConfig, run_id: str
) -> tuple[Comparison, str, dict[str, Any]]:
    last = int(panel["week"].max())
    test = risk_challenger(dataset, panel, cfg.risk)
    champion, version = load_risk_champion(cfg.risk_name)
    champ_loss = brier_losses(champion, test) if champion is not None else None
    comparison = paired_comparison(
        "risk", "brier", champ_loss, brier_losses(test.challenger.model, test), cfg.rule
    )
    info = log_risk_model(
        test.challenger,
        register=True,
        alias=None,
        name=cfg.risk_name,
        tags={
            "data_last_week": str(test.test_cutoff),
            "label_end_week": str(test.test_cutoff),
            "retrain_run": run_id,
            "test_cutoff": str(test.test_cutoff),
            "data_seen_last_week": str(last),
        },
    )
    extra = {
        "test_cutoff": test.test_cutoff,
        "test_n_dead": int(test.test_labels.sum()),
        "champion_version": None if version is None else str(version.version),
    }
    return comparison, str(info.registered_model_version), extra


def _demand_step(
    dataset: Dataset, panel: pd.DataFrame, cfg: RetrainConfig, run_id: str
) -> tuple[Comparison, str, dict[str, Any]]:
    test = demand_challenger(
        panel,
        cfg.fit,
        holdout_weeks=cfg.demand_holdout_weeks,
        max_skus=cfg.max_demand_skus,
        products=dataset.products,
    )
    champion, version = load_demand_champion(cfg.demand_name)
    champ_loss, chall_loss = demand_losses(champion, test, cfg.fit)
    comparison = paired_comparison("demand", "abs_error", champ_loss, chall_loss, cfg.rule)
    new_version = _log_demand_model(
        test.challenger,
        cfg.demand_name,
        {
            "data_last_week": str(test.fit_last_week),
            "fit_last_week": str(test.fit_last_week),
            "holdout_wmape": f"{test.holdout_wmape:.6f}",
            "retrain_run": run_id,
        },
    )
    extra = {
        "fit_last_week": test.fit_last_week,
        "holdout_wmape": test.holdout_wmape,
        "champion_version": None if version is None else str(version.version),
    }
    return comparison, new_version, extra


def _policy_step(
    dataset: Dataset, panel: pd.DataFrame, cfg: RetrainConfig, run_id: str
) -> tuple[Comparison, str, dict[str, Any]]:
    # the champion first: one for other rules skips the step before any training
    champion, version = load_policy_champion(cfg.policy_name, cfg.rules)
    with tempfile.TemporaryDirectory(prefix="deadstock-policy-challenger-") as tmp:
        test = policy_challenger(
            panel,
            cfg.fit,
            cfg.rules,
            cfg.ppo,
            horizon=cfg.horizon_weeks,
            max_skus=cfg.max_policy_skus,
            seed=cfg.seed,
            out_dir=Path(tmp),
            products=dataset.products,
        )
        champ, chall = policy_profits(champion, test, n_episodes=cfg.policy_episodes, seed=cfg.seed)
        comparison = paired_gain_comparison("policy", "profit", champ, chall, cfg.rule)
        info = log_policy_model(
            {POLICY_PROFILE: test.model_path},
            {POLICY_PROFILE: cfg.rules},
            example=example_input(cfg.rules, POLICY_PROFILE),
            name="policy_challenger",
            alias=None,
            registered_name=cfg.policy_name,
            tags={
                "data_last_week": str(test.fit_last_week),
                "timesteps": str(test.timesteps),
                "retrain_run": run_id,
            },
        )
    extra = {
        "fit_last_week": test.fit_last_week,
        "n_skus": test.catalog.n_skus,
        "horizon_weeks": test.horizon,
        "timesteps": test.timesteps,
        "n_episodes": cfg.policy_episodes,
        "champion_total_profit": None if champ is None else float(champ.sum()),
        "challenger_total_profit": float(chall.sum()),
        "champion_version": None if version is None else str(version.version),
    }
    return comparison, str(info.registered_model_version), extra


def retrain_run(dataset: Dataset, panel: pd.DataFrame, config: RetrainConfig) -> RetrainOutcome:
    """Train, compare, record, and (last) promote; see the module docstring.

    Returns
    -------
    RetrainOutcome
    """
    cfg = config
    last = int(panel["week"].max())
    steps = {"risk": _risk_step, "demand": _demand_step, "policy": _policy_step}
    with start_run(
        f"retrain__w{last}__s{cfg.seed}",
        config=cfg,
        seed=cfg.seed,
        data_fingerprint=dataset.fingerprint,
        tags={"stage": "retrain", "data_source": dataset.source},
    ) as run:
        run_id = run.info.run_id
        comparisons: dict[str, Comparison] = {}
        versions: dict[str, str] = {}
        evidence: list[dict[str, Any]] = []
        skipped: dict[str, str] = {}
        for model in cfg.models:
            log.info("retrain: %s challenger", model)
            try:
                comparison, version, extra = steps[model](dataset, panel, cfg, run_id)
            except DataError as err:
                # Too little history for this model's backtest: recorded, not fatal.
                log.warning("retrain: %s skipped: %s", model, err)
                skipped[model] = str(err)
                evidence.append({"model": model, "skipped": str(err)})
                continue
            comparisons[model] = comparison
            versions[model] = version
            evidence.append({**comparison.to_dict(), "challenger_version": version, **extra})
            log.info("retrain: %s: %s", model, comparison.reason)
            raise_if_interrupted()
        metrics: dict[str, float] = {"retrain/last_week": float(last)}
        for model, c in comparisons.items():
            for key in ("champion_loss", "challenger_loss", "improvement", "ci_low", "ci_high"):
                metrics[f"retrain/{model}/{key}"] = float(getattr(c, key))
            metrics[f"retrain/{model}/promote"] = float(c.promote)
        log_metrics({k: v for k, v in metrics.items() if v == v})  # NaN: no champion
        mlflow.log_dict({"last_week": last, "decisions": evidence}, DECISION_FILE)
        mlflow.set_tags(
            {f"retrain.{m}": "promote" if c.promote else "keep" for m, c in comparisons.items()}
            | {f"retrain.{m}": "skipped" for m in skipped}
        )
        names = {"risk": cfg.risk_name, "demand": cfg.demand_name, "policy": cfg.policy_name}
        promoted = {m: versions[m] for m, c in comparisons.items() if c.promote}
        raise_if_interrupted()
        # The very last step: nothing above failed, so the aliases may move.
        with deferring_signals():
            client = mlflow.MlflowClient()
            for model, version in promoted.items():
                client.set_registered_model_alias(names[model], CHAMPION_ALIAS, version)
        mlflow.set_tag("retrain.promoted", json.dumps(promoted, sort_keys=True))
        return RetrainOutcome(run_id, comparisons, versions, promoted, skipped)
