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

Only ``target = "ppo"`` is built: a sweep over the risk models' hyperparameters needs those
hyperparameters in the risk config first (they are fixed in ``risk_model.models``), and is
refused with a message saying so.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

from agents.ppo import PPOConfig
from experiments.suite import RULE_PROFILES, get_spec
from ingest.errors import ConfigError, DeadstockError

TARGETS: tuple[str, ...] = ("ppo",)
"""Sweep targets that are built (``risk`` is not yet: see the module docstring)."""
DISTRIBUTIONS: tuple[str, ...] = ("choice", "uniform", "loguniform", "randint")
"""Search-space distributions, as Ray Tune names them."""
PPO_METRICS: tuple[str, ...] = ("pct_of_dp_mean", "pct_of_dp_median", "pct_of_dp_min")
"""What a PPO trial reports after each chunk: its % of the suite's reference (the DP optimum,
the oracle in the learning market) over the scenarios of the profile, mean, median and worst."""
MODES: tuple[str, ...] = ("max", "min")
PPO_FIXED_BY_SWEEP: dict[str, str] = {
    "total_timesteps": "the sweep sets it from timesteps_per_trial",
    "seed": "the sweep's seed is every trial's training seed",
    "belief_grid": "the suite's market sets it",
    "demand_memory": "the suite's market sets it",
}
"""PPO keys a sweep file may neither fix under ``[ppo]`` nor search, and why."""


@dataclass(frozen=True)
class AshaConfig:
    """ASHA early stopping (``ray.tune.schedulers.ASHAScheduler``), in reports of a trial.

    Parameters
    ----------
    max_t : int
        Reports of a trial that is never stopped; the trial's steps are split into this many
        equal chunks, each followed by a report.
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
    target : {"ppo"}
        What is tuned: PPO settings scored on an evaluation suite.
    space : dict of str to dict
        Searched settings: key -> ``{distribution = args}`` with one of
        :data:`DISTRIBUTIONS` (``choice = [values]``, ``uniform = [low, high]``,
        ``loguniform = [low, high]``, ``randint = [low, high)``).
    num_samples : int
        Trials drawn from the space.
    metric : str
        Reported metric ASHA and the best trial are judged on (:data:`PPO_METRICS`).
    mode : {"max", "min"}
        Whether a higher or a lower ``metric`` is better.
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
    """

    target: str = "ppo"
    space: dict[str, dict[str, Any]] = field(default_factory=dict)
    num_samples: int = 8
    metric: str = "pct_of_dp_mean"
    mode: str = "max"
    seed: int = 0
    experiment: str = "deadstock-sweep"
    max_concurrent_trials: int = 0
    asha: AshaConfig = field(default_factory=AshaConfig)
    suite: str = "smoke"
    profile: str = "none"
    timesteps_per_trial: int = 400_000
    eval_episodes: int = 100
    ppo: PPOConfig = field(default_factory=PPOConfig)

    REFUSED_KEYS = {f"ppo.{k}": f"not a sweep setting ({v})" for k, v in PPO_FIXED_BY_SWEEP.items()}

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            hint = (
                " (a sweep of the risk models' hyperparameters is not built yet: they are "
                "fixed in risk_model.models)"
                if self.target == "risk"
                else ""
            )
            raise ConfigError(f"sweep target = {self.target!r}: expected one of {TARGETS}{hint}")
        for name in ("num_samples", "timesteps_per_trial"):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"sweep {name} = {getattr(self, name)!r}; expected an integer >= 1"
                )
        if self.eval_episodes < 2:
            raise ConfigError(f"sweep eval_episodes = {self.eval_episodes!r}; expected >= 2")
        if self.max_concurrent_trials < 0:
            raise ConfigError(
                f"sweep max_concurrent_trials = {self.max_concurrent_trials!r}; expected >= 1, "
                f"or 0 for the cluster's CPUs - 1"
            )
        if self.metric not in PPO_METRICS:
            raise ConfigError(f"sweep metric = {self.metric!r}: expected one of {PPO_METRICS}")
        if self.mode not in MODES:
            raise ConfigError(f"sweep mode = {self.mode!r}: expected one of {MODES}")
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
        if not self.space:
            raise ConfigError(
                "sweep [space] is empty: expected at least one searched PPO setting, e.g. "
                "learning_rate = { loguniform = [1e-4, 3e-3] }"
            )
        for key, dist in self.space.items():
            check_dimension(key, dist, self.ppo)
        rollout = self.ppo.n_envs * self.ppo.n_steps
        if self.chunk_steps < rollout:
            raise ConfigError(
                f"sweep timesteps_per_trial = {self.timesteps_per_trial}: a chunk "
                f"(timesteps_per_trial / asha.max_t = {self.timesteps_per_trial // self.asha.max_t}"
                f" steps) is shorter than one PPO rollout ({rollout} = ppo.n_envs x ppo.n_steps); "
                f"raise timesteps_per_trial to >= {rollout * self.asha.max_t} or lower max_t, "
                f"n_envs or n_steps"
            )

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
            **_as_fields(params),
            total_timesteps=self.chunk_steps * self.asha.max_t,
            seed=self.seed,
        )
        spec = get_spec(self.suite)
        if spec.market == "learning":
            ppo = replace(ppo, belief_grid=spec.belief_grid)
        elif spec.market == "memory":
            ppo = replace(ppo, demand_memory=True)
        return ppo


def check_dimension(key: str, dist: Any, base: PPOConfig) -> None:
    """Refuse a search-space entry that is malformed or whose values PPO would refuse."""
    where = f"sweep [space] {key}"
    names = [f.name for f in fields(PPOConfig)]
    if key not in names:
        raise ConfigError(f"{where}: unknown PPO setting; expected one of {names}")
    if key in PPO_FIXED_BY_SWEEP:
        raise ConfigError(f"{where}: cannot be searched ({PPO_FIXED_BY_SWEEP[key]})")
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
        default = getattr(PPOConfig(), key)
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
            replace(base, **_as_fields({key: value}))
        except (DeadstockError, TypeError, ValueError) as err:
            raise ConfigError(f"{where}: value {value!r} is refused by PPO: {err}") from None


def _as_fields(params: dict[str, Any]) -> dict[str, Any]:
    """Drawn values as PPOConfig field values (TOML arrays -> tuples; ints for int fields)."""
    out: dict[str, Any] = {}
    defaults = PPOConfig()
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
