"""The configuration of the main job (``deadstock run``): one frozen dataclass per concern,
nested in :class:`PipelineConfig`, loaded from ``plan.toml`` by :func:`app.config.load_config`.

The domain configs are nested as they are: ``[fit]`` is the demand fit's
:class:`~simulator.fit.FitConfig` (its stock assumption in ``[fit.stock]``), ``[risk]`` the
risk model's :class:`~risk_model.scoring.RiskConfig` (label in ``[risk.label]``, features in
``[risk.features]``), ``[rules]`` the business rules (:class:`~envs.config.RulesConfig`) and
``[ppo]`` the training settings (:class:`~agents.ppo.PPOConfig`); the run adds what only it
needs to two of them (:class:`FitStageConfig`, :class:`RiskStageConfig`). Every setting of
every stage is reachable from the file, and each has one default, here or in its domain
class. ``--quick`` is :data:`QUICK_PRESET`, a set of values below the file (see
``docs/config.md`` for the precedence and every key).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from agents.ppo import PPOConfig
from app.config import to_dict
from envs.config import RulesConfig
from ingest.errors import ConfigError
from risk_model.features import FeatureConfig
from risk_model.scoring import RiskConfig
from simulator.fit import FitConfig
from targeting.config import TargetingConfig

TIERS = ("high", "medium", "low")

#: The pipeline's default business rules: a discount ladder and no price increase after a
#: markdown (the evaluation suite's ``markdown`` profile, so a champion trained on the suite
#: fits).
DEFAULT_RULES = RulesConfig(discount_levels=(0.0, 0.1, 0.2, 0.3, 0.5, 0.7), markdown_only=True)

#: The pipeline's PPO settings when it trains: a smaller budget than ``deadstock train``
#: (a run trains on its own at-risk catalog and horizon) and no checkpoints.
DEFAULT_PPO = PPOConfig(total_timesteps=2_000_000, checkpoint_every=0)

#: ``--quick``: the same stages on less (fewer SKUs, episodes and training steps; logistic
#: regression only, whose drivers are exact linear terms, one training cutoff and fewer
#: bootstrap resamples). Applied above the defaults and below the file and the flags.
QUICK_PRESET: Mapping[str, Any] = {
    "selection.max_skus": 60,
    "evaluation.n_episodes": 100,
    "ppo.total_timesteps": 100_000,
    "risk.models": ("lr",),
    "risk.train_offsets": (0,),
    "risk.n_bootstrap": 20,
}

_QUICK_MOVED = "--quick applies the quick preset; set the value itself ({}) in a file"
#: Keys refused with the reason: the ones the run sets itself, and the ones that moved.
REFUSED_KEYS: Mapping[str, str] = {
    "risk.seed": "the risk stage's seed is spawned from the run's seed; set the top-level seed",
    "ppo.seed": "the policy stage's seed is spawned from the run's seed; set the top-level seed",
    "ppo.horizon_range": "the run trains for its own plan length; set horizon_weeks",
    "stock": "the stock assumption is now [fit.stock] (holding_cost_share_per_week, "
    "salvage_share, weeks_of_cover, velocity_weeks, min_stock_units)",
    "fit_peers_per_category": "now [fit] peers_per_category",
    "risk_price_change_features": "now [risk.features] price_change_features",
    "policy.train_timesteps": "now [ppo] total_timesteps",
    "quick_max_skus": _QUICK_MOVED.format("[selection] max_skus"),
    "policy.quick_train_timesteps": _QUICK_MOVED.format("[ppo] total_timesteps"),
    "evaluation.quick_n_episodes": _QUICK_MOVED.format("[evaluation] n_episodes"),
}


@dataclass(frozen=True)
class SelectionConfig:
    """Which SKUs get a markdown plan.

    Parameters
    ----------
    tiers : tuple of str
        Risk tiers selected (any of ``"high"``, ``"medium"``, ``"low"``). Ignored when
        ``threshold`` is set.
    threshold : float or None
        Select SKUs whose risk score is at least this (0..1) instead of by tier.
    max_skus : int or None
        Keep at most this many SKUs, the riskiest first (1,000 keeps a full Complete Journey
        run within its 15-minute budget on 2 cores). ``None`` keeps all.
    """

    tiers: tuple[str, ...] = ("high",)
    threshold: float | None = None
    max_skus: int | None = 1000

    def __post_init__(self) -> None:
        bad = [t for t in self.tiers if t not in TIERS]
        if bad or not self.tiers:
            raise ConfigError(f"selection.tiers = {list(self.tiers)!r}: expected some of {TIERS}")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"selection.threshold = {self.threshold}: expected a value in [0, 1]")
        if self.max_skus is not None and self.max_skus < 1:
            raise ConfigError(f"selection.max_skus = {self.max_skus}: expected >= 1 or none")


@dataclass(frozen=True)
class FitStageConfig(FitConfig):
    """The run's demand fit: :class:`~simulator.fit.FitConfig` plus which rows it fits.

    Parameters
    ----------
    peers_per_category : int
        The fit also uses up to this many other SKUs of each selected SKU's category (the
        ones with the most selling weeks), so elasticities pool within the category without
        fitting the whole catalog.
    """

    peers_per_category: int = 40

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.peers_per_category < 0:
            raise ConfigError(
                f"fit.peers_per_category = {self.peers_per_category!r}; expected >= 0"
            )


@dataclass(frozen=True)
class RiskStageConfig(RiskConfig):
    """The run's risk stage: :class:`~risk_model.scoring.RiskConfig` (trained at the last
    labelled cutoff, scores at the last week) plus its backtest.

    Price-change features are off by default: on data where the retailer clears dying
    products, a recent markdown predicts the label, which would make the score (and so the
    markdown plan) circular.

    Parameters
    ----------
    backtest : bool
        Backtest the models one label horizon before the scoring (skipped, with a note, when
        the data is too short).
    backtest_test_cutoff : int or None
        Test cutoff of the backtest; ``None`` = the last week minus the label horizon.
    backtest_train_cutoff : int or None
        Training cutoff of the backtest; ``None`` = the test cutoff minus the label horizon.
    n_bootstrap : int
        Bootstrap resamples of the backtest's CIs.
    reuse_champion : bool
        Score with the registered ``deadstock-risk@champion`` instead of training when it was
        trained by a run on the same data with the same settings and seed (its fit key), so
        its scores are exactly those a new model would give.
    min_positives : int
        Fewer positive labelled rows than this (training and validation together), or a
        model that cannot be trained and validated, and the stage scores with the rule
        baseline (weeks since the last sale, ``risk_model.rule``) instead, with a note.
    fallback : {"rule", "error"}
        ``"error"`` stops the run instead of falling back.
    block_skus : int
        Every SKU is scored in blocks of this many SKUs (the unit of work of the engine, the
        model loaded once per worker). A SKU's score and drivers depend on its own features
        only, so the blocks change no number: not part of the plan key or the model's fit key.
    """

    features: FeatureConfig = field(
        default_factory=lambda: FeatureConfig(price_change_features=False)
    )
    backtest: bool = True
    backtest_test_cutoff: int | None = None
    backtest_train_cutoff: int | None = None
    n_bootstrap: int = 200
    reuse_champion: bool = True
    min_positives: int = 10
    fallback: Literal["rule", "error"] = "rule"
    block_skus: int = 50_000

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.block_skus < 1:
            raise ConfigError(f"risk.block_skus = {self.block_skus!r}: expected >= 1")
        if self.n_bootstrap < 0:
            raise ConfigError(f"risk.n_bootstrap = {self.n_bootstrap!r}; expected >= 0")
        if self.min_positives < 0:
            raise ConfigError(f"risk.min_positives = {self.min_positives!r}; expected >= 0")
        if self.fallback not in ("rule", "error"):
            raise ConfigError(f"risk.fallback = {self.fallback!r}: expected 'rule' or 'error'")


@dataclass(frozen=True)
class PolicyConfig:
    """Where the recommended policy comes from (its training settings are ``[ppo]``).

    Parameters
    ----------
    source : {"auto", "champion", "train"}
        ``"auto"`` loads the registered ``deadstock-policy@champion`` when it fits the
        catalog (same observation size and rules) and trains otherwise; ``"champion"``
        requires it; ``"train"`` always trains.
    recommend : {"best", "policy"}
        ``"best"`` chooses each SKU's plan among the candidates (the exact DP where the
        market is DP-exact, the learned policy, the heuristics, doing nothing) on selection
        paths and reports it on independent evaluation paths (:mod:`planning.selection`;
        ``sku_summary`` names the winner in ``recommended_by``); ``"policy"`` recommends the
        learned policy's plan for every SKU.
    """

    source: Literal["auto", "champion", "train"] = "auto"
    recommend: Literal["best", "policy"] = "best"

    def __post_init__(self) -> None:
        if self.source not in ("auto", "champion", "train"):
            raise ConfigError(
                f"policy.source = {self.source!r}: expected 'auto', 'champion' or 'train'"
            )
        if self.recommend not in ("best", "policy"):
            raise ConfigError(f"policy.recommend = {self.recommend!r}: expected 'best' or 'policy'")


QMDP_GRID_MAX = 9
"""Most points per axis of the QMDP candidate's prior grid (81 DPs per SKU at 9)."""


@dataclass(frozen=True)
class EvaluationConfig:
    """How schedules are simulated to get expected outcomes and their CIs.

    Parameters
    ----------
    n_episodes : int
        Simulated episodes per SKU and schedule (common random numbers across schedules).
    ci_level : float
        Confidence level of every interval (normal approximation of the mean).
    draw_parameters : bool
        Draw each episode's demand parameters from their fitted uncertainty, so the CIs
        include the fit's uncertainty and not only the demand noise.
    block_skus : int
        The candidates' plans are made in blocks of this many SKUs (the unit of work of the
        engine; block ``k`` plans with a seed derived from the stage's seed and ``k``). The
        blocks depend on this setting only, never on the engine, so both engines give the
        same plans; a run of at most this many SKUs plans in one block. The export stage
        builds the ``schedules`` and ``sku_summary`` tables in the same blocks.
    qmdp_grid : int
        With ``draw_parameters``, QMDP is a candidate planner: its plan is hedged against the
        fit's uncertainty on a ``qmdp_grid x qmdp_grid`` prior grid of elasticity and demand
        level per SKU (:func:`planning.from_policy.qmdp_plan`); 0 leaves it out. Without
        ``draw_parameters`` the outcomes assume the point estimates and it is never planned.
    """

    n_episodes: int = 500
    ci_level: float = 0.95
    draw_parameters: bool = True
    block_skus: int = 10_000
    qmdp_grid: int = 3

    def __post_init__(self) -> None:
        if self.n_episodes < 2:
            raise ConfigError(f"evaluation.n_episodes = {self.n_episodes}: expected >= 2")
        if not 0.5 <= self.ci_level < 1.0:
            raise ConfigError(f"evaluation.ci_level = {self.ci_level}: expected [0.5, 1)")
        if self.block_skus < 1:
            raise ConfigError(f"evaluation.block_skus = {self.block_skus}: expected >= 1")
        if not 0 <= self.qmdp_grid <= QMDP_GRID_MAX:
            raise ConfigError(
                f"evaluation.qmdp_grid = {self.qmdp_grid}: expected 0 (off) to {QMDP_GRID_MAX} "
                "points per axis"
            )


@dataclass(frozen=True)
class ExportConfig:
    """Where the tables go.

    Parameters
    ----------
    format : {"csv", "parquet", "sql"}
        Files in the output folder, or tables in a SQL database.
    sql_url : str or None
        SQLAlchemy URL when ``format = "sql"`` (``sqlite:///plans.db``,
        ``postgresql+psycopg2://...``, ``mssql+pymssql://...``).
    table_prefix : str
        Prefix of the SQL table names (``deadstock_schedules`` ...).
    currency : str
        Currency of every amount in the data and the outputs (an ISO 4217 code; Complete
        Journey is a US retailer). Written in the tables' ``currency`` column and the report.
    """

    format: Literal["csv", "parquet", "sql"] = "csv"
    sql_url: str | None = None
    table_prefix: str = "deadstock_"
    currency: str = "USD"

    def __post_init__(self) -> None:
        if self.format not in ("csv", "parquet", "sql"):
            raise ConfigError(
                f"export.format = {self.format!r}: expected 'csv', 'parquet' or 'sql'"
            )
        if self.format == "sql" and not self.sql_url:
            raise ConfigError("export.format = 'sql' needs export.sql_url (a SQLAlchemy URL)")
        if not self.table_prefix.replace("_", "").isalnum() and self.table_prefix:
            raise ConfigError(
                f"export.table_prefix = {self.table_prefix!r}: use letters, digits and _"
            )
        if not (
            isinstance(self.currency, str) and self.currency.isalpha() and len(self.currency) == 3
        ):
            raise ConfigError(
                f"export.currency = {self.currency!r}: expected a 3-letter currency code "
                "such as 'USD' or 'EUR'"
            )


@dataclass(frozen=True)
class NewProductConfig:
    """The rule that flags new products for small-lot stocking.

    A product matches when it launched at most ``max_age_weeks`` weeks before the last week
    of the data, its risk score is at least ``min_risk`` and it is not planned already; the
    ``max_flags`` matches with the highest risk x stock value at cost are flagged (a list
    short enough to act on).
    """

    max_age_weeks: int = 13
    min_risk: float = 0.5
    max_flags: int = 50

    def __post_init__(self) -> None:
        if self.max_age_weeks < 0:
            raise ConfigError(f"new_products.max_age_weeks = {self.max_age_weeks}: expected >= 0")
        if not 0.0 <= self.min_risk <= 1.0:
            raise ConfigError(f"new_products.min_risk = {self.min_risk}: expected [0, 1]")
        if self.max_flags < 0:
            raise ConfigError(f"new_products.max_flags = {self.max_flags}: expected >= 0")

    def describe(self) -> str:
        return (
            f"launched in the last {self.max_age_weeks} weeks of the data, risk score "
            f">= {self.min_risk:g}, not planned already; the {self.max_flags} with the highest "
            "risk x stock value at cost"
        )


@dataclass(frozen=True)
class PipelineConfig:
    """The main job's configuration.

    Parameters
    ----------
    data : str
        Data source: ``"completejourney"``, a folder of CSV/Parquet tables, or a SQLAlchemy URL.
    out_dir : str
        Output folder for the exports, alerts and the report.
    seed : int
        The run's seed; every stage's seed is spawned from it.
    quick : bool
        A smaller run with the same stages: the loader applies :data:`QUICK_PRESET`.
    horizon_weeks : int
        Plan length, shared by the policy, the simulation and the exports: the exit week is
        the plan's last week.
    experiment : str
        MLflow experiment name.
    engine : {"local", "ray"}
        Where the heavy stages run: in this process, or on Ray (the cluster at
        ``$RAY_ADDRESS``, else a local Ray with the machine's cores; see ``docs/scale.md``).
        Same seed, same outputs on both; not part of the plan key.
    ray_mode : {"tasks", "data"}
        How the Ray engine maps blocks of SKUs: one Ray task per block (the default), or Ray
        Data ``map_batches`` over a pool of actors that load the policy once each (needs at
        least 2 CPUs; see ``docs/scale.md``). Ignored by the local engine; same outputs;
        not part of the plan key.
    selection, fit, risk, rules, ppo, policy, evaluation, export, new_products, coupons
        The nested configs, one TOML table each (``[coupons]``: coupon targeting,
        :class:`~targeting.config.TargetingConfig`).
    """

    QUICK_PRESET: ClassVar[Mapping[str, Any]] = QUICK_PRESET
    REFUSED_KEYS: ClassVar[Mapping[str, str]] = REFUSED_KEYS

    data: str = "completejourney"
    out_dir: str = "outputs/run"
    seed: int = 0
    quick: bool = False
    horizon_weeks: int = 12
    experiment: str = "deadstock"
    engine: Literal["local", "ray"] = "local"
    ray_mode: Literal["tasks", "data"] = "tasks"
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    fit: FitStageConfig = field(default_factory=FitStageConfig)
    risk: RiskStageConfig = field(default_factory=RiskStageConfig)
    rules: RulesConfig = field(default_factory=lambda: DEFAULT_RULES)
    ppo: PPOConfig = field(default_factory=lambda: DEFAULT_PPO)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    new_products: NewProductConfig = field(default_factory=NewProductConfig)
    coupons: TargetingConfig = field(default_factory=TargetingConfig)

    def __post_init__(self) -> None:
        if not self.data:
            raise ConfigError("data is empty: give 'completejourney', a folder or a SQL URL")
        if not self.out_dir:
            raise ConfigError("out_dir is empty: give an output folder")
        if self.seed < 0:
            raise ConfigError(f"seed = {self.seed}: expected >= 0")
        if not 2 <= self.horizon_weeks <= 52:
            raise ConfigError(f"horizon_weeks = {self.horizon_weeks}: expected 2..52")
        if self.engine not in ("local", "ray"):
            raise ConfigError(f"engine = {self.engine!r}: expected 'local' or 'ray'")
        if self.ray_mode not in ("tasks", "data"):
            raise ConfigError(f"ray_mode = {self.ray_mode!r}: expected 'tasks' or 'data'")

    def plan_key(self, data_fingerprint: str) -> str:
        """Key of this plan in the exports: the same data and the same settings give the
        same key, so a re-run replaces its rows instead of adding to them (the engine is not
        a setting of the plan: both give the same outputs)."""
        skip = ("out_dir", "export", "engine", "ray_mode")
        settings = {k: v for k, v in to_dict(self).items() if k not in skip}
        for kind in self.risk.default_hyperparams():  # plans made before keep their key
            settings["risk"].pop(kind, None)
        settings["risk"].pop("block_skus", None)  # changes no score (like the engine)
        blob = json.dumps([data_fingerprint, settings], sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]
