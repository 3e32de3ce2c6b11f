"""The sweep file of ``deadstock sweep --config sweep.toml``: what is searched, how trials are
scored and stopped, and the best trial written back as a ``deadstock train`` config.

A sweep file (loaded by :func:`app.config.load_config`, so unknown keys and wrong types get
the loader's messages)::

    target = "ppo"                 # PPO settings scored on an evaluation suite
    suite = "smoke"                # the suite whose scenarios of `profile` score a trial
    profile = "none"               # the rule profile the trials train a policy for
    num_samples = 8                # trials
    timesteps_per_trial = 400000   # training budget of a trial that ASHA never stops
    eval_episodes = 100            # CRN demand paths per scenario at each report
    metric = "pct_of_dp_mean"      # reported after each chunk of steps
    mode = "max"
    seed = 0                       # the search's draws and every trial's training seed
    experiment = "deadstock-sweep" # MLflow experiment of the parent run and the trials

    [asha]                         # one report = one time unit (a chunk of steps)
    max_t = 4                      # reports of a full trial: chunk = timesteps_per_trial / max_t
    grace_period = 1
    reduction_factor = 2

    [ppo]                          # fixed PPO settings of every trial (PPOConfig keys)
    n_envs = 256

    [space]                        # searched PPO settings, one distribution each
    learning_rate = { loguniform = [1e-4, 3e-3] }
    ent_coef = { uniform = [0.0, 0.01] }
    n_epochs = { randint = [1, 5] }      # integers low <= n < high (Ray Tune's randint)
    net_arch = { choice = [[64, 64], [128, 128]] }

Every trial trains with the same seed (``seed``) and is scored on the same CRN demand paths,
so two trials differ only by their settings.

A sweep over one risk model's hyperparameters, scored on honest time-split backtest folds::

    target = "risk"
    model = "xgb"                  # lr | rf | xgb (the ensemble averages the three as set)
    data = "completejourney"       # as `deadstock risk --data`: also a folder or a SQL URL
    num_samples = 8
    metric = "pr_auc_mean"         # pr_auc_mean | roc_auc_mean (max) | brier_mean (min)
    fold_weeks = 4                 # weeks between the test cutoffs of two folds
    # last_test_cutoff = 80        # leave out: the last week - the label horizon
    seed = 0

    [asha]                         # one report = one backtest fold
    max_t = 3                      # folds of a full trial
    grace_period = 1

    [risk]                         # fixed settings (RiskModelSetup keys; models and seed
    train_offsets = [0, 4]         # are the sweep's)
    [risk.xgb]                     # fixed hyperparameters of the model
    n_estimators = 300

    [space]                        # searched hyperparameters of `model`
    max_depth = { randint = [2, 8] }
    learning_rate = { loguniform = [0.01, 0.2] }

Fold ``i`` of ``asha.max_t`` tests at ``last_test_cutoff - fold_weeks * (max_t - 1 - i)`` and
trains at its test cutoff minus the label horizon (:func:`risk_model.backtest.run_backtest`,
no training label overlaps the test window); the folds run oldest first and a trial reports
the mean of its folds so far after each one, so ASHA compares trials on the same folds.
"""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any

from agents.ppo import PPOConfig
from experiments.suite import RULE_PROFILES, get_spec
from ingest.errors import ConfigError, DataError, DeadstockError
from risk_model.backtest import RiskModelSetup
from risk_model.models import BASE_KINDS

TARGETS: tuple[str, ...] = ("ppo", "risk")
"""What a sweep tunes: PPO settings, or one risk model's hyperparameters."""
DISTRIBUTIONS: tuple[str, ...] = ("choice", "uniform", "loguniform", "randint")
"""Search-space distributions, as Ray Tune names them."""
PPO_METRICS: tuple[str, ...] = ("pct_of_dp_mean", "pct_of_dp_median", "pct_of_dp_min")
"""What a PPO trial reports after each chunk: its % of the suite's reference (the DP optimum,
the oracle in the learning market) over the scenarios of the profile, mean, median and worst."""
RISK_METRICS: tuple[str, ...] = ("pr_auc_mean", "roc_auc_mean", "brier_mean")
"""What a risk trial reports after each backtest fold: the mean over its folds so far of the
test window's PR-AUC, ROC-AUC and Brier score (calibrated risk)."""
METRIC_MODES: dict[str, str] = {
    **dict.fromkeys(PPO_METRICS, "max"),
    "pr_auc_mean": "max",
    "roc_auc_mean": "max",
    "brier_mean": "min",
}
"""Whether a higher (``max``) or a lower (``min``) value of a metric is better."""
MODES: tuple[str, ...] = ("max", "min")
DEFAULT_METRIC: dict[str, str] = {"ppo": "pct_of_dp_mean", "risk": "pr_auc_mean"}
PPO_FIXED_BY_SWEEP: dict[str, str] = {
    "total_timesteps": "the sweep sets it from timesteps_per_trial",
    "seed": "the sweep's seed is every trial's training seed",
    "belief_grid": "the suite's market sets it",
    "demand_memory": "the suite's market sets it",
}
"""PPO keys a sweep file may neither fix under ``[ppo]`` nor search, and why."""
PPO_ONLY: tuple[str, ...] = ("suite", "profile", "timesteps_per_trial", "eval_episodes", "ppo")
"""Sweep keys that only a PPO sweep reads."""
RISK_ONLY: tuple[str, ...] = ("data", "model", "risk", "fold_weeks", "last_test_cutoff")
"""Sweep keys that only a risk sweep reads."""


@dataclass(frozen=True)
class AshaConfig:
    """ASHA early stopping (``ray.tune.schedulers.ASHAScheduler``), in reports of a trial.

    Parameters
    ----------
    max_t : int
        Reports of a trial that is never stopped: a PPO trial's steps are split into this
        many equal chunks, each followed by a report; a risk trial runs this many backtest
        folds, each followed by a report.
    grace_period : int
        Reports every trial makes before ASHA may stop it.
    reduction_factor : int
        ASHA keeps about ``1 / reduction_factor`` of the trials at each rung.
    """

    max_t: int = 4
    grace_period: int = 1
    reduction_factor: int = 2

    def __post_init__(self) -> None:
        if self.max_t < 1:
            raise ConfigError(f"sweep [asha] max_t = {self.max_t!r}; expected an integer >= 1")
        if not 1 <= self.grace_period <= self.max_t:
            raise ConfigError(
                f"sweep [asha] grace_period = {self.grace_period!r}; expected 1 .. max_t "
                f"({self.max_t})"
            )
        if self.reduction_factor < 2:
            raise ConfigError(
                f"sweep [asha] reduction_factor = {self.reduction_factor!r}; expected an "
                f"integer >= 2"
            )


@dataclass(frozen=True)
class SweepConfig:
    """A hyperparameter sweep (see the module docstring for the file format).

    Parameters
    ----------
    target : {"ppo", "risk"}
        What is tuned: PPO settings scored on an evaluation suite, or one risk model's
        hyperparameters scored on backtest folds.
    space : dict of str to dict
        Searched settings (PPO settings, or hyperparameters of ``model``): key ->
        ``{distribution = args}`` with one of :data:`DISTRIBUTIONS` (``choice = [values]``,
        ``uniform = [low, high]``, ``loguniform = [low, high]``, ``randint = [low, high)``).
    num_samples : int
        Trials drawn from the space.
    metric : str
        Reported metric ASHA and the best trial are judged on (:data:`PPO_METRICS`,
        :data:`RISK_METRICS`); empty = ``pct_of_dp_mean`` / ``pr_auc_mean``.
    mode : {"max", "min", ""}
        Whether a higher or a lower ``metric`` is better; empty = the metric's own
        direction (:data:`METRIC_MODES`); the other one is refused.
    seed : int
        Seed of the search's draws and every trial's training seed.
    experiment : str
        MLflow experiment of the sweep's parent run and its trials.
    max_concurrent_trials : int
        Trials run at once; 0 = the Ray cluster's CPUs - 1 (at least 1).
    asha : AshaConfig
        The early-stopping schedule.
    suite : str
        Evaluation suite (``deadstock evaluate --list-suites``) whose scenarios of
        ``profile`` score a trial; its market is the market the trials train in.
    profile : str
        Rule profile the trials train one policy for.
    timesteps_per_trial : int
        Training steps (SKU-weeks) of a trial ASHA never stops.
    eval_episodes : int
        CRN demand paths per scenario at each report.
    ppo : PPOConfig
        Fixed PPO settings of every trial (the searched keys are drawn on top).
    data : str
        Risk: the data source (as ``deadstock risk --data``).
    model : {"lr", "rf", "xgb"}
        Risk: the model whose hyperparameters are searched.
    risk : RiskModelSetup
        Risk: fixed settings of every trial (label, features, offsets, threshold, the
        model's fixed hyperparameters under ``[risk.<model>]``); ``models`` and ``seed`` are
        the sweep's.
    fold_weeks : int
        Risk: weeks between the test cutoffs of two consecutive folds.
    last_test_cutoff : int or None
        Risk: test cutoff of the last fold; ``None`` = the data's last week minus the label
        horizon.
    """

    target: str = "ppo"
    space: dict[str, dict[str, Any]] = field(default_factory=dict)
    num_samples: int = 8
    metric: str = ""
    mode: str = ""
    seed: int = 0
    experiment: str = "deadstock-sweep"
    max_concurrent_trials: int = 0
    asha: AshaConfig = field(default_factory=AshaConfig)
    suite: str = "smoke"
    profile: str = "none"
    timesteps_per_trial: int = 400_000
    eval_episodes: int = 100
    ppo: PPOConfig = field(default_factory=PPOConfig)
    data: str = ""
    model: str = "xgb"
    risk: RiskModelSetup = field(default_factory=RiskModelSetup)
    fold_weeks: int = 4
    last_test_cutoff: int | None = None

    REFUSED_KEYS = {
        **{f"ppo.{k}": f"not a sweep setting ({v})" for k, v in PPO_FIXED_BY_SWEEP.items()},
        "risk.models": "not a sweep setting (the sweep's model sets it)",
        "risk.seed": "not a sweep setting (the sweep's seed is every trial's seed)",
    }

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ConfigError(f"sweep target = {self.target!r}: expected one of {TARGETS}")
        metrics = PPO_METRICS if self.target == "ppo" else RISK_METRICS
        if not self.metric:
            object.__setattr__(self, "metric", DEFAULT_METRIC[self.target])
        if self.metric not in metrics:
            raise ConfigError(
                f"sweep metric = {self.metric!r}: expected one of {metrics} for target = "
                f"{self.target!r}"
            )
        if self.mode not in (*MODES, ""):
            raise ConfigError(f"sweep mode = {self.mode!r}: expected one of {MODES}")
        natural = METRIC_MODES[self.metric]
        if self.mode and self.mode != natural:
            raise ConfigError(
                f"sweep mode = {self.mode!r}: {self.metric} is better when "
                f"{'higher' if natural == 'max' else 'lower'}; expected mode = {natural!r}"
            )
        object.__setattr__(self, "mode", natural)
        if self.num_samples < 1:
            raise ConfigError(f"sweep num_samples = {self.num_samples!r}; expected an integer >= 1")
        if self.max_concurrent_trials < 0:
            raise ConfigError(
                f"sweep max_concurrent_trials = {self.max_concurrent_trials!r}; expected >= 1, "
                f"or 0 for the cluster's CPUs - 1"
            )
        if not self.space:
            what = "PPO setting" if self.target == "ppo" else f"hyperparameter of {self.model}"
            raise ConfigError(
                f"sweep [space] is empty: expected at least one searched {what}, e.g. "
                + (
                    "learning_rate = { loguniform = [1e-4, 3e-3] }"
                    if self.target == "ppo"
                    else "max_depth = { randint = [2, 8] }"
                )
            )
        other = RISK_ONLY if self.target == "ppo" else PPO_ONLY
        for f in fields(SweepConfig):
            if f.name in other:
                value = f.default if f.default_factory is MISSING else f.default_factory()
                if getattr(self, f.name) != value:
                    raise ConfigError(
                        f"sweep {f.name}: not a setting of a target = {self.target!r} sweep "
                        f"(only of the other target); leave it out"
                    )
        if self.target == "ppo":
            self._check_ppo()
        else:
            self._check_risk()

    def _check_ppo(self) -> None:
        if self.timesteps_per_trial < 1:
            raise ConfigError(
                f"sweep timesteps_per_trial = {self.timesteps_per_trial!r}; expected an "
                f"integer >= 1"
            )
        if self.eval_episodes < 2:
            raise ConfigError(f"sweep eval_episodes = {self.eval_episodes!r}; expected >= 2")
        spec = get_spec(self.suite)  # an unknown suite: ConfigError naming the known ones
        if spec.market not in ("standard", "learning", "memory"):
            raise ConfigError(
                f"sweep suite = {self.suite!r}: PPO is not built for the {spec.market!r} "
                f"market; expected a standard, learning or memory suite"
            )
        if self.profile not in RULE_PROFILES or self.profile not in spec.profiles:
            raise ConfigError(
                f"sweep profile = {self.profile!r}: suite {self.suite!r} has scenarios for "
                f"{list(spec.profiles)}"
            )
        for key, dist in self.space.items():
            check_dimension(key, dist, self.ppo, "PPO", PPO_FIXED_BY_SWEEP)
        rollout = self.ppo.n_envs * self.ppo.n_steps
        if self.chunk_steps < rollout:
            raise ConfigError(
                f"sweep timesteps_per_trial = {self.timesteps_per_trial}: a chunk "
                f"(timesteps_per_trial / asha.max_t = {self.timesteps_per_trial // self.asha.max_t}"
                f" steps) is shorter than one PPO rollout ({rollout} = ppo.n_envs x ppo.n_steps); "
                f"raise timesteps_per_trial to >= {rollout * self.asha.max_t} or lower max_t, "
                f"n_envs or n_steps"
            )

    def _check_risk(self) -> None:
        if not self.data:
            raise ConfigError(
                "sweep data is empty: a risk sweep needs a data source ('completejourney', "
                "a folder of table files or a SQL URL)"
            )
        if self.model not in BASE_KINDS:
            hint = " (the ensemble averages the three as set: sweep each)" * (self.model == "ens")
            raise ConfigError(f"sweep model = {self.model!r}: expected one of {BASE_KINDS}{hint}")
        if self.fold_weeks < 1:
            raise ConfigError(f"sweep fold_weeks = {self.fold_weeks!r}; expected >= 1")
        base = getattr(self.risk, self.model)
        for key, dist in self.space.items():
            check_dimension(key, dist, base, f"{self.model} hyperparameter", {})

    def folds(self, first_week: int, last_week: int) -> list[tuple[int, int]]:
        """Risk: the ``(train_cutoff, test_cutoff)`` of each fold, oldest first, for a panel
        of weeks ``first_week .. last_week``.

        Raises
        ------
        DataError
            When the last fold's test labels run past the data, or the first fold's
            training cutoff lacks the label's look-back.
        """
        horizon = self.risk.label.horizon_weeks
        latest = last_week - horizon
        last = latest if self.last_test_cutoff is None else self.last_test_cutoff
        if last > latest:
            raise DataError(
                f"sweep last_test_cutoff = {last}: its labels need weeks up to {last + horizon}"
                f", the data ends at week {last_week}; expected <= {latest}"
            )
        tests = [last - self.fold_weeks * (self.asha.max_t - 1 - i) for i in range(self.asha.max_t)]
        first_train = tests[0] - horizon
        need = first_train - self.risk.label.lookback_weeks + 1
        if need < first_week:
            raise DataError(
                f"sweep: the first of {self.asha.max_t} folds (asha.max_t) trains at week "
                f"{first_train}, which lacks the label's {self.risk.label.lookback_weeks} "
                f"weeks of history (the data starts at week {first_week}); lower asha.max_t "
                f"or fold_weeks, or raise last_test_cutoff"
            )
        return [(t - horizon, t) for t in tests]

    def trial_risk(self, params: dict[str, Any]) -> RiskModelSetup:
        """Risk: the settings of a trial: the fixed ones, the model's hyperparameters with
        the drawn ``params`` on top, the one model and the sweep's seed."""
        base = getattr(self.risk, self.model)
        return replace(
            self.risk,
            models=(self.model,),
            seed=self.seed,
            **{self.model: replace(base, **_as_fields(params, base))},
        )

    @property
    def run_label(self) -> str:
        """What the sweep is about, in run names: the suite, or ``risk-<model>``."""
        return self.suite if self.target == "ppo" else f"risk-{self.model}"

    @property
    def chunk_steps(self) -> int:
        """Training steps between two reports of a trial: ``timesteps_per_trial / max_t``
        rounded down to whole PPO rollouts, so each report follows an update."""
        rollout = self.ppo.n_envs * self.ppo.n_steps
        return self.timesteps_per_trial // self.asha.max_t // rollout * rollout

    def trial_ppo(self, params: dict[str, Any]) -> PPOConfig:
        """The PPO settings of a trial: the fixed ones, the drawn ``params``, the sweep's
        seed and budget, and the suite's market."""
        ppo = replace(
            self.ppo,
            **_as_fields(params, self.ppo),
            total_timesteps=self.chunk_steps * self.asha.max_t,
            seed=self.seed,
        )
        spec = get_spec(self.suite)
        if spec.market == "learning":
            ppo = replace(ppo, belief_grid=spec.belief_grid)
        elif spec.market == "memory":
            ppo = replace(ppo, demand_memory=True)
        return ppo


def check_dimension(key: str, dist: Any, base: Any, what: str, fixed: dict[str, str]) -> None:
    """Refuse a search-space entry that is malformed or whose values the settings ``base``
    (a frozen dataclass: ``PPOConfig``, ``XGBoostParams`` ...) would refuse; ``what`` names
    them in messages and ``fixed`` maps the keys that cannot be searched to why."""
    where = f"sweep [space] {key}"
    names = [f.name for f in fields(base)]
    if key not in names:
        raise ConfigError(f"{where}: unknown {what}; expected one of {names}")
    if key in fixed:
        raise ConfigError(f"{where}: cannot be searched ({fixed[key]})")
    if not isinstance(dist, dict) or len(dist) != 1:
        raise ConfigError(
            f"{where} = {dist!r}: expected one distribution, e.g. {{ uniform = [0.0, 0.1] }}, "
            f"with one of {DISTRIBUTIONS}"
        )
    ((kind, args),) = dist.items()
    if kind not in DISTRIBUTIONS:
        raise ConfigError(
            f"{where}: unknown distribution {kind!r}; expected one of {DISTRIBUTIONS}"
        )
    if not isinstance(args, (list, tuple)) or not args:
        raise ConfigError(f"{where} {kind} = {args!r}: expected a non-empty list")
    args = list(args)
    if kind == "choice":
        values = args
    else:
        if len(args) != 2 or not all(
            isinstance(a, (int, float)) and not isinstance(a, bool) for a in args
        ):
            raise ConfigError(f"{where} {kind} = {args!r}: expected [low, high], two numbers")
        low, high = args
        if not low < high:
            raise ConfigError(f"{where} {kind} = {args!r}: expected low < high")
        if kind == "loguniform" and low <= 0:
            raise ConfigError(f"{where} loguniform = {args!r}: expected 0 < low < high")
        if kind == "randint" and not all(isinstance(a, int) for a in args):
            raise ConfigError(f"{where} randint = {args!r}: expected integers [low, high)")
        default = getattr(type(base)(), key)
        if kind != "randint" and not isinstance(default, float):
            raise ConfigError(
                f"{where} {kind} = {args!r}: {key} is not a real number (default "
                f"{default!r}); use randint or choice"
            )
        values = [low, high - 1] if kind == "randint" else [float(low), float(high)]
        if kind != "randint":
            # the open upper end: PPO may refuse high itself (clip_range < 1) but not below it
            values[1] = math.nextafter(values[1], -math.inf)
    for value in values:
        try:
            replace(base, **_as_fields({key: value}, base))
        except (DeadstockError, TypeError, ValueError) as err:
            owner = what.split()[0]
            raise ConfigError(f"{where}: value {value!r} is refused by {owner}: {err}") from None


def _as_fields(params: dict[str, Any], base: Any) -> dict[str, Any]:
    """Drawn values as field values of the dataclass ``base`` (TOML arrays -> tuples; floats
    for float fields)."""
    out: dict[str, Any] = {}
    defaults = type(base)()
    for key, value in params.items():
        if isinstance(value, (list, tuple)):
            value = tuple(value)
        elif isinstance(getattr(defaults, key), float) and isinstance(value, int):
            value = float(value)
        out[key] = value
    return out


def train_config_toml(config: SweepConfig, params: dict[str, Any], metric_value: float) -> str:
    """The best trial as a ``deadstock train --config`` file: the suite, the profile and the
    trial's PPO settings (the fixed ones, its drawn ones, its seed and budget)."""
    ppo = config.trial_ppo(params)
    default = PPOConfig()
    lines = [
        f"# best trial of a deadstock sweep: {config.metric} = {metric_value:.4f} "
        f"({config.mode}) on suite {config.suite!r}",
        f"suite = {_toml_value(config.suite)}",
        f"profiles = {_toml_value([config.profile])}",
        "",
        "[ppo]",
    ]
    for f in fields(PPOConfig):
        value = getattr(ppo, f.name)
        if f.name in ("belief_grid", "demand_memory"):
            continue  # the train command sets them from the suite's market
        # the budget, the seed and the searched keys always; the others where not the default
        if f.name in ("total_timesteps", "seed", *params) or value != getattr(default, f.name):
            if value is None:
                raise DeadstockError(f"ppo.{f.name} = None cannot be written to TOML")
            lines.append(f"{f.name} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def risk_config_toml(
    config: SweepConfig,
    params: dict[str, Any],
    metric_value: float,
    folds: list[tuple[int, int]],
    *,
    plan: bool = False,
) -> str:
    """The best trial of a risk sweep as a config file: every setting of the trial (the
    fixed ones, the model's hyperparameters with the drawn ones) written out in full.

    ``plan=False``: a ``deadstock risk backtest|train --config`` file (top-level keys,
    ``[label]``, ``[features]``, ``[<model>]``), with the sweep's seed, so that a backtest at a
    fold's cutoffs gives the trial's numbers. ``plan=True``: the same settings as a
    ``deadstock run`` plan file's ``[risk]`` section, without the seed (a run spawns its risk
    seed from its own).
    """
    risk = config.trial_risk(params)
    shown = ", ".join(f"{a}->{b}" for a, b in folds)
    lines = [
        f"# best trial of a deadstock risk sweep: {config.metric} = {metric_value:.4f} "
        f"({config.mode}) of {config.model} over {len(folds)} backtest fold(s) on "
        f"{config.data!r}",
        f"# folds (train_cutoff->test_cutoff): {shown}; seed {config.seed}",
    ]
    if plan:
        lines.append("# the run's [risk] section: its seed is spawned from the run's seed")
    prefix = "risk." if plan else ""
    if plan:
        lines += ["", "[risk]"]
    nested = ("label", "features", *BASE_KINDS)
    for f in fields(RiskModelSetup):
        if f.name in nested or (plan and f.name == "seed"):
            continue
        lines.append(f"{f.name} = {_toml_value(getattr(risk, f.name))}")
    for name in ("label", "features", config.model):
        lines += ["", f"[{prefix}{name}]"]
        section = getattr(risk, name)
        for f in fields(section):
            value = getattr(section, f.name)
            if value is not None:  # None is the default and TOML has no null: leave it out
                lines.append(f"{f.name} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    """One TOML value (the plain values a config holds: text, numbers, booleans, arrays)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise DeadstockError(f"cannot write {value!r} to TOML")
