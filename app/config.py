"""Configuration of the main job (``deadstock run``): one frozen dataclass per concern, loaded
from a TOML file and validated with messages that name the field to change.

A TOML file holds plain values in sections named after the nested configs::

    data = "completejourney"
    out_dir = "outputs/run"
    seed = 0

    [selection]
    tiers = ["high"]
    max_skus = 500

    [stock]
    weeks_of_cover = 8.0

    [rules]
    discount_levels = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    markdown_only = true

Unknown keys are errors (a typo must not be silently ignored).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from envs.config import RulesConfig
from ingest.errors import ConfigError

TIERS = ("high", "medium", "low")

#: The pipeline's default business rules: a discount ladder and no price increase after a
#: markdown (the evaluation suite's ``markdown`` profile, so a champion trained on the suite
#: fits).
DEFAULT_RULES = RulesConfig(discount_levels=(0.0, 0.1, 0.2, 0.3, 0.5, 0.7), markdown_only=True)


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
class StockConfig:
    """Stock on hand and its costs when the plan starts.

    Parameters
    ----------
    weeks_of_cover : float
        Used when the source has no stock table (Complete Journey): on-hand stock =
        ``weeks_of_cover`` x the SKU's recent velocity (mean weekly units over the last
        ``velocity_weeks`` weeks), rounded up. It is an assumption, printed and reported.
    velocity_weeks : int
        Window of the recent velocity, in weeks, ending at the last week of the data.
    min_stock_units : float
        Floor of the assumed stock, so a slow SKU still has something to plan for.
    holding_cost_rate_per_week : float
        Holding cost per unit and week as a share of unit cost (0.005 = 26 % a year), used
        when the fitted catalog carries none.
    salvage_rate : float
        Salvage value of a unit left at the exit week, as a share of unit cost.
    """

    weeks_of_cover: float = 8.0
    velocity_weeks: int = 13
    min_stock_units: float = 2.0
    holding_cost_rate_per_week: float = 0.005
    salvage_rate: float = 0.0

    def __post_init__(self) -> None:
        if not self.weeks_of_cover > 0:
            raise ConfigError(f"stock.weeks_of_cover = {self.weeks_of_cover}: expected > 0")
        if self.velocity_weeks < 1:
            raise ConfigError(f"stock.velocity_weeks = {self.velocity_weeks}: expected >= 1")
        if self.min_stock_units < 0:
            raise ConfigError(f"stock.min_stock_units = {self.min_stock_units}: expected >= 0")
        if not 0.0 <= self.holding_cost_rate_per_week < 1.0:
            raise ConfigError(
                f"stock.holding_cost_rate_per_week = {self.holding_cost_rate_per_week}: "
                "expected a share of unit cost in [0, 1)"
            )
        if not 0.0 <= self.salvage_rate <= 1.0:
            raise ConfigError(f"stock.salvage_rate = {self.salvage_rate}: expected [0, 1]")

    def describe(self) -> str:
        """One sentence stating the stock assumption, for the console and the report."""
        return (
            f"on-hand stock = {self.weeks_of_cover:g} weeks of cover x mean weekly units over "
            f"the last {self.velocity_weeks} weeks (at least {self.min_stock_units:g} units), "
            f"holding cost {self.holding_cost_rate_per_week:.3%} of unit cost per week, "
            f"salvage {self.salvage_rate:.0%} of unit cost"
        )


RISK_LABELS = ("default", "any_sale", "sales_drop", "sell_through")
RISK_MODELS = ("lr", "rf", "xgb", "ens")


@dataclass(frozen=True)
class RiskStageConfig:
    """The risk stage: the label, the cutoffs, the models and what to do on small data.

    Parameters
    ----------
    label : {"default", "any_sale", "sales_drop", "sell_through"}
        The dead-stock label (``risk_model.labels``).
    lookback_weeks : int
        Weeks up to a cutoff that decide whether a SKU is established.
    horizon_weeks : int
        Weeks after a cutoff the label is read from. The model trains at ``last week -
        horizon_weeks`` (and earlier, see ``train_offsets``) and scores at the last week; a
        shorter horizon leaves more history to train on.
    min_units, min_active_weeks : float, int
        What makes a SKU established (units and selling weeks in the lookback window).
    models, quick_models : tuple of str
        Candidate models (``lr``, ``rf``, ``xgb``, ``ens``), full and ``--quick`` runs; the
        champion is the best on validation PR-AUC.
    train_offsets, quick_train_offsets : tuple of int
        Training cutoffs are ``last week - horizon_weeks - offset`` (stacked).
    backtest : bool
        Run the time-split backtest (one more horizon of history needed) and log it.
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
    """

    label: str = "default"
    lookback_weeks: int = 13
    horizon_weeks: int = 13
    min_units: float = 5.0
    min_active_weeks: int = 3
    models: tuple[str, ...] = RISK_MODELS
    quick_models: tuple[str, ...] = ("lr",)
    train_offsets: tuple[int, ...] = (0, 4, 8)
    quick_train_offsets: tuple[int, ...] = (0,)
    backtest: bool = True
    reuse_champion: bool = True
    min_positives: int = 10
    fallback: Literal["rule", "error"] = "rule"

    def __post_init__(self) -> None:
        if self.label not in RISK_LABELS:
            raise ConfigError(f"risk.label = {self.label!r}: expected one of {RISK_LABELS}")
        for name in ("models", "quick_models"):
            kinds = getattr(self, name)
            if not kinds or any(k not in RISK_MODELS for k in kinds):
                raise ConfigError(
                    f"risk.{name} = {list(kinds)!r}: expected some of {list(RISK_MODELS)}"
                )
        for name in ("train_offsets", "quick_train_offsets"):
            offsets = getattr(self, name)
            if not offsets or min(offsets) < 0:
                raise ConfigError(
                    f"risk.{name} = {list(offsets)!r}: expected one or more offsets >= 0"
                )
        if self.min_positives < 0:
            raise ConfigError(f"risk.min_positives = {self.min_positives}: expected >= 0")
        if self.fallback not in ("rule", "error"):
            raise ConfigError(f"risk.fallback = {self.fallback!r}: expected 'rule' or 'error'")
        # The label's own checks (weeks >= 1, active weeks within the lookback ...).
        self.label_config()

    def label_config(self) -> Any:
        """The :class:`risk_model.labels.LabelConfig` of these settings."""
        from risk_model.labels import LabelConfig

        try:
            return LabelConfig(
                kind=self.label,  # type: ignore[arg-type]
                lookback_weeks=self.lookback_weeks,
                horizon_weeks=self.horizon_weeks,
                min_units=self.min_units,
                min_active_weeks=self.min_active_weeks,
            )
        except ConfigError as err:
            raise ConfigError(f"[risk]: {err}".replace("LabelConfig.", "risk.")) from None


@dataclass(frozen=True)
class PolicyConfig:
    """Where the recommended policy comes from.

    Parameters
    ----------
    source : {"auto", "champion", "train"}
        ``"auto"`` loads the registered ``deadstock-policy@champion`` when it fits the
        catalog (same observation size and rules) and trains otherwise; ``"champion"``
        requires it; ``"train"`` always trains.
    train_timesteps : int
        PPO training budget in environment steps (SKU-weeks) when training.
    quick_train_timesteps : int
        The budget under ``--quick``.
    recommend : {"best", "policy"}
        ``"best"`` recommends the learned policy's plan unless a heuristic's plan has a
        higher expected profit on the same simulated episodes (then that one, named in every
        output); ``"policy"`` always recommends the learned policy's plan.
    """

    source: Literal["auto", "champion", "train"] = "auto"
    train_timesteps: int = 2_000_000
    quick_train_timesteps: int = 100_000
    recommend: Literal["best", "policy"] = "best"

    def __post_init__(self) -> None:
        if self.source not in ("auto", "champion", "train"):
            raise ConfigError(
                f"policy.source = {self.source!r}: expected 'auto', 'champion' or 'train'"
            )
        if self.recommend not in ("best", "policy"):
            raise ConfigError(f"policy.recommend = {self.recommend!r}: expected 'best' or 'policy'")
        if self.train_timesteps < 1 or self.quick_train_timesteps < 1:
            raise ConfigError("policy.train_timesteps and quick_train_timesteps must be >= 1")


@dataclass(frozen=True)
class EvaluationConfig:
    """How schedules are simulated to get expected outcomes and their CIs.

    Parameters
    ----------
    n_episodes : int
        Simulated episodes per SKU and schedule (common random numbers across schedules).
    quick_n_episodes : int
        Episodes under ``--quick``.
    ci_level : float
        Confidence level of every interval (normal approximation of the mean).
    draw_parameters : bool
        Draw each episode's demand parameters from their fitted uncertainty, so the CIs
        include the fit's uncertainty and not only the demand noise.
    """

    n_episodes: int = 500
    quick_n_episodes: int = 100
    ci_level: float = 0.95
    draw_parameters: bool = True

    def __post_init__(self) -> None:
        if self.n_episodes < 2 or self.quick_n_episodes < 2:
            raise ConfigError("evaluation.n_episodes and quick_n_episodes must be >= 2")
        if not 0.5 <= self.ci_level < 1.0:
            raise ConfigError(f"evaluation.ci_level = {self.ci_level}: expected [0.5, 1)")


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
    """

    format: Literal["csv", "parquet", "sql"] = "csv"
    sql_url: str | None = None
    table_prefix: str = "deadstock_"

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


@dataclass(frozen=True)
class NewProductConfig:
    """The rule that flags new products for small-lot stocking.

    A product is flagged when it launched at most ``max_age_weeks`` weeks before the last
    week of the data and its risk score is at least ``min_risk``.
    """

    max_age_weeks: int = 13
    min_risk: float = 0.5

    def __post_init__(self) -> None:
        if self.max_age_weeks < 0:
            raise ConfigError(f"new_products.max_age_weeks = {self.max_age_weeks}: expected >= 0")
        if not 0.0 <= self.min_risk <= 1.0:
            raise ConfigError(f"new_products.min_risk = {self.min_risk}: expected [0, 1]")

    def describe(self) -> str:
        return (
            f"launched in the last {self.max_age_weeks} weeks of the data and risk score "
            f">= {self.min_risk:g}"
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
        A smaller run with the same stages (fewer SKUs, episodes and training steps).
    horizon_weeks : int
        Plan length: the exit week is the plan's last week.
    experiment : str
        MLflow experiment name.
    quick_max_skus : int
        SKU cap under ``--quick``.
    risk_price_change_features : bool
        Let the risk score use price-change features. Off by default: on data where the
        retailer clears dying products, a recent markdown predicts the label, which would make
        the score (and so the markdown plan) circular.
    fit_peers_per_category : int
        The demand fit also uses up to this many other SKUs of each selected SKU's category
        (the ones with the most selling weeks), so elasticities pool within the category
        without fitting the whole catalog.
    """

    data: str = "completejourney"
    out_dir: str = "outputs/run"
    seed: int = 0
    quick: bool = False
    horizon_weeks: int = 12
    experiment: str = "deadstock"
    quick_max_skus: int = 60
    fit_peers_per_category: int = 40
    risk_price_change_features: bool = False
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    stock: StockConfig = field(default_factory=StockConfig)
    rules: RulesConfig = field(default_factory=lambda: DEFAULT_RULES)
    risk: RiskStageConfig = field(default_factory=RiskStageConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    new_products: NewProductConfig = field(default_factory=NewProductConfig)

    def __post_init__(self) -> None:
        if not self.data:
            raise ConfigError("data is empty: give 'completejourney', a folder or a SQL URL")
        if not self.out_dir:
            raise ConfigError("out_dir is empty: give an output folder")
        if self.seed < 0:
            raise ConfigError(f"seed = {self.seed}: expected >= 0")
        if not 2 <= self.horizon_weeks <= 52:
            raise ConfigError(f"horizon_weeks = {self.horizon_weeks}: expected 2..52")
        if self.fit_peers_per_category < 0:
            raise ConfigError(
                f"fit_peers_per_category = {self.fit_peers_per_category}: expected >= 0"
            )
        if self.quick_max_skus < 1:
            raise ConfigError(f"quick_max_skus = {self.quick_max_skus}: expected >= 1")

    # ---------------------------------------------------------------- derived values
    @property
    def n_episodes(self) -> int:
        return self.evaluation.quick_n_episodes if self.quick else self.evaluation.n_episodes

    @property
    def train_timesteps(self) -> int:
        return self.policy.quick_train_timesteps if self.quick else self.policy.train_timesteps

    @property
    def risk_models(self) -> tuple[str, ...]:
        return self.risk.quick_models if self.quick else self.risk.models

    @property
    def risk_train_offsets(self) -> tuple[int, ...]:
        return self.risk.quick_train_offsets if self.quick else self.risk.train_offsets

    @property
    def max_skus(self) -> int | None:
        cap = self.selection.max_skus
        if self.quick:
            return self.quick_max_skus if cap is None else min(cap, self.quick_max_skus)
        return cap

    def plan_key(self, data_fingerprint: str) -> str:
        """Key of this plan in the exports: the same data and the same settings give the
        same key, so a re-run replaces its rows instead of adding to them."""
        settings = {k: v for k, v in to_dict(self).items() if k not in ("out_dir", "export")}
        blob = json.dumps([data_fingerprint, settings], sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


_SECTIONS: dict[str, type] = {
    "selection": SelectionConfig,
    "stock": StockConfig,
    "rules": RulesConfig,
    "risk": RiskStageConfig,
    "policy": PolicyConfig,
    "evaluation": EvaluationConfig,
    "export": ExportConfig,
    "new_products": NewProductConfig,
}


def build_section(cls: type, values: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; expected some of {sorted(known)}")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ConfigError(f"{where}: {err}") from None


def config_from_dict(values: dict[str, Any], *, where: str = "config") -> PipelineConfig:
    """Build a :class:`PipelineConfig` from plain values (as read from TOML)."""
    top: dict[str, Any] = {}
    for key, value in values.items():
        if key in _SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: [{key}] must be a table of values")
            top[key] = build_section(_SECTIONS[key], value, f"{where} [{key}]")
        else:
            top[key] = value
    return build_section(PipelineConfig, top, where)


def load_config(path: str | Path | None = None, **overrides: Any) -> PipelineConfig:
    """Read a TOML config (or the defaults when ``path`` is None) and apply ``overrides``
    (top-level fields; ``None`` values are ignored)."""
    values: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            values = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {str(p)!r} does not exist") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise ConfigError(f"config file {str(p)!r} is not valid TOML: {err}") from None
    cfg = config_from_dict(values, where=str(path) if path else "config")
    changes = {k: v for k, v in overrides.items() if v is not None}
    return replace(cfg, **changes) if changes else cfg


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict of a config (tuples as lists), for JSON and the report."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            out[f.name] = to_dict(v)
        elif isinstance(v, tuple):
            out[f.name] = list(v)
        else:
            out[f.name] = v
    return out
