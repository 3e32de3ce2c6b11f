"""``deadstock train``: train one masked-PPO policy per rule profile, evaluate, log to MLflow.

The suite (``TrainConfig.suite``) picks the market the policies train in: the standard one
(parameters known), the learning one (``ppo.belief_grid`` set from the suite: elasticity
and demand level drawn from a prior each episode, the posterior in the observation), the
memory one (``ppo.demand_memory``) or the budget one (``ppo.shared_budget``: categories
allocating a weekly promotion limit one SKU at a time, the slots left in the observation). One
MLflow run per training seed (named ``ppo__<suite>__s<seed>__<time>``, tagged ``agent``,
``seed``, ``suite``, ``suite_version``) holds:

- SB3's training metrics, one batched ``log_metrics`` per dump, keys prefixed by the policy
  key (``none/train/approx_kl``, ``learning-none/train/approx_kl``);
- the learning curve: every ``curve_every`` steps, the policy's % of the suite's reference
  (mean and worst over the profile's scenarios, ``curve_episodes`` CRN paths each) as
  ``curve/<key>/pct_of_dp_mean`` and ``..._min`` (the reference is an exact DP in both
  markets: the DP, or the oracle's DP of each drawn truth);
- the final evaluation on the suite (``eval_episodes`` paths per scenario) against the
  reference, PPO's prior alone and the fluid re-solve (``compare_with``):
  ``eval/<scenario>/pct_of_reference``, ``.../gain_vs_prior_pct`` etc., the leaderboard
  (``eval/median_pct_of_dp``, ``eval/worst_pct_of_dp``, ``eval/mean_pct_of_dp``,
  ``eval/mean_gain_vs_prior``, ``eval/violations``), the rows as ``eval_rows.csv``;
- plots: learning curve with the reference line; in the standard market also policy maps
  and example schedules against the DP;
- in the standard market, the policy as a pyfunc model, registered as
  ``deadstock-policy``; the ``champion`` alias moves to it when its median % of DP is at
  least the current champion's.

Checkpoints go to ``<out>/<key>/`` (``model.zip`` + ``state.json``; the key is the profile,
or ``learning-<profile>``): rerunning the same command with the same ``--out`` resumes a
stopped run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger

from agents.ppo import (
    PPOConfig,
    PPOPolicy,
    member_folder,
    member_seed,
    resolve_device,
    train_ppo,
)
from experiments import agent_plots, tracking
from experiments.curves import CurveCallback
from experiments.evaluate import (
    EvalConfig,
    baseline_factories,
    dp_policy_for,
    evaluate_suite,
    format_leaderboard,
    leaderboard,
    ppo_factory,
    prepare,
)
from experiments.mlflow_writer import MLflowOutputFormat
from experiments.policy_model import (
    CHAMPION_ALIAS,
    REGISTERED_NAME,
    example_input,
    log_policy_model,
)
from experiments.suite import RULE_PROFILES, catalog_fn_for, get_spec, policy_keys
from ingest.errors import ConfigError
from ingest.io import write_frame_atomic
from simulator.demand import read_catalog

log = logging.getLogger(__name__)

PROFILE_TIMESTEPS: dict[str, int] = {
    "none": 4_000_000,
    "coupons": 3_000_000,
    "markdown": 10_000_000,
    "all": 10_000_000,
    "learning-none": 6_000_000,
    "learning-markdown": 10_000_000,
    "memory-none": 12_000_000,
    "memory-coupons": 4_000_000,
    "memory-markdown": 10_000_000,
    "budget-none": 2_000_000,
    "budget-coupons": 2_000_000,
}
"""Default training steps per policy key (a rule profile of the standard suites, or
``learning-<profile>``, ``memory-<profile>``, ``budget-<profile>``; see ``docs/agents.md``,
"PPO: configuration"). The memory market's budgets come from screens of its worst scenarios
(``docs/benchmarks/ppo_memory_epochs.md``): markdown 6 M -> 10 M lifted the markdown
profile's worst scenario above 97 % of the augmented DP on every seed; free price at 16 M
helped one seed, hurt another and broke the 15-minute training budget, so it stays at 12 M."""


BUDGET_PPO: dict[str, Any] = {
    "budget_prior": "lagrangian_weekly",
    "fluid_prior": 100.0,
    "learning_rate": 1e-4,
    "ent_coef": 0.0,
    "n_steps": 48,
}
"""The budget market's own PPO defaults (each applies unless ``[ppo]`` sets it: a key of the
file's ``[ppo]`` table, listed in ``TrainConfig.ppo_given``, or a value other than the
general default): the weekly Lagrangian plan as the prior (``budget_prior =
"lagrangian_weekly"``, one multiplier per week: the strongest planner of the budget suite), a
prior scale that keeps the sampled policy near that plan (at 8 the plan's small regrets leave it close to uniform, and training drifted down),
a lower learning rate, no entropy bonus and rollouts of one 12-week category episode
(4 x 12 decisions); ``docs/agents.md``, "Shared budget"."""


MEMORY_PPO: dict[str, Any] = {"n_epochs": 4}
"""The memory market's own PPO defaults (applied as :data:`BUDGET_PPO`'s are): four passes
over each rollout instead of two. Memory makes a week's discount cost demand in later weeks,
a credit assignment that more passes learn and more fresh samples do not: on the coupon
profile, two passes leave the worst scenario at 96.0-96.2 % of the augmented DP at 4 M steps,
with no trend from 1 M on, and four passes reach 97.7 % at 4 M
(``docs/benchmarks/ppo_memory_epochs.md``)."""

MARKET_PPO: dict[str, dict[str, Any]] = {"memory": MEMORY_PPO, "budget": BUDGET_PPO}
"""A market's own PPO defaults, by ``SuiteSpec.market`` (the others have none)."""


def market_ppo(market: str, ppo: PPOConfig, given: tuple[str, ...] = ()) -> dict[str, Any]:
    """The settings of :data:`MARKET_PPO` ``[market]`` that apply to ``ppo``: each one whose
    field is not in ``given`` and still holds the general default."""
    general = PPOConfig()
    return {
        k: v
        for k, v in MARKET_PPO.get(market, {}).items()
        if k not in given and getattr(ppo, k) == getattr(general, k)
    }


def ppo_for_profile(config: TrainConfig, key: str) -> PPOConfig:
    """``config.ppo`` with the step budget of policy ``key`` from ``config.timesteps``, in the
    market of ``config.suite`` (the learning market sets ``belief_grid``, the memory market
    ``demand_memory`` and :data:`MEMORY_PPO`, the budget market ``shared_budget`` with the
    suite's longest horizon, a training category's SKUs sharing one horizon, and
    :data:`BUDGET_PPO`)."""
    steps = config.timesteps.get(key)
    ppo = config.ppo if steps is None else replace(config.ppo, total_timesteps=int(steps))
    spec = get_spec(config.suite)
    ppo = replace(ppo, **market_ppo(spec.market, ppo, config.ppo_given))
    if spec.market == "learning":
        ppo = replace(ppo, belief_grid=spec.belief_grid)
    elif spec.market == "memory":
        ppo = replace(ppo, demand_memory=True)
    elif spec.market == "budget":
        horizon = max(s.horizon_weeks for s in spec.scenarios)
        ppo = replace(ppo, shared_budget=True, horizon_range=(horizon, horizon))
    return ppo


@dataclass(frozen=True)
class TrainConfig:
    """A training run: PPO settings plus what to evaluate and log.

    Parameters
    ----------
    ppo : PPOConfig
        The PPO hyperparameters (the run's seed is ``ppo.seed``).
    profiles : tuple of str
        Rule profiles to train a policy for (keys of ``experiments.suite.RULE_PROFILES``);
        those the suite has no scenario for are skipped.
    suite : str
        Suite whose market the policies train in (``learning``: unknown demand), and used for
        the learning curve and the final evaluation. Policies are saved under their key
        (``<out>/<profile>``, ``<out>/learning-<profile>``).
    curve_every : int
        Steps between learning-curve evaluations (0 = none).
    curve_episodes : int
        CRN demand paths per scenario for the learning curve.
    eval_episodes : int
        Demand paths per scenario in the final evaluation (0 = skip it).
    compare_with : tuple of str
        Baselines evaluated beside PPO in the final evaluation (``evaluate`` names).
    catalog : str or None
        A catalog file (Parquet or CSV, as ``Catalog.to_frame`` writes, e.g. a fitted one)
        to draw training SKUs from, instead of the synthetic training catalog.
    log_model : bool
        Log the policy as an MLflow pyfunc model and register it.
    keep_snapshots : bool
        Keep every checkpoint of each policy under ``<out>/<key>/snapshots`` (see
        :func:`agents.ppo.late_snapshots`): ``deadstock evaluate --model <out>`` then also
        plays ``ppo_snap``, the guard choosing per SKU among the late snapshots, the final
        network and the prior.
    members : int
        Networks trained per policy, each from a run seed of its own
        (:func:`agents.ppo.member_seed`; member 0 is the run's own network, the others go to
        ``<out>/<key>/members/m<j>``). With two or more, the final evaluation and ``deadstock
        evaluate --model <out>`` also play ``ppo_ens``, the guard choosing per SKU among the
        members' final networks and the prior. Costs ``members`` times the training.
    experiment : str
        MLflow experiment name.
    timesteps : dict of str to int
        Training steps per policy key, overriding ``ppo.total_timesteps`` for the keys it
        names (default :data:`PROFILE_TIMESTEPS`: the rule profiles need more experience than
        the free ones). ``{}`` = ``ppo.total_timesteps`` for every profile.
    ppo_given : tuple of str
        The ``ppo`` settings given explicitly, which a market's own defaults
        (:data:`MARKET_PPO`) never replace even where they equal the general default. The
        config loader fills it from the file's ``[ppo]`` table; in code, name the settings
        you set.
    """

    ppo: PPOConfig = field(default_factory=PPOConfig)
    profiles: tuple[str, ...] = tuple(RULE_PROFILES)
    suite: str = "standard"
    curve_every: int = 500_000
    curve_episodes: int = 200
    eval_episodes: int = 2000
    compare_with: tuple[str, ...] = ("prior", "fluid")
    catalog: str | None = None
    log_model: bool = True
    keep_snapshots: bool = False
    members: int = 1
    experiment: str = tracking.DEFAULT_EXPERIMENT
    timesteps: dict[str, int] = field(default_factory=lambda: dict(PROFILE_TIMESTEPS))
    ppo_given: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        keys = policy_keys()
        bad_steps = {
            k: v
            for k, v in self.timesteps.items()
            if k not in keys or not isinstance(v, int) or v < 1
        }
        if bad_steps:
            raise ConfigError(
                f"train.timesteps = {bad_steps}: expected policy keys of {list(keys)} mapped "
                f"to integers >= 1"
            )
        if not isinstance(self.members, int) or isinstance(self.members, bool) or self.members < 1:
            raise ConfigError(
                f"train.members = {self.members!r}: expected a whole number of networks >= 1"
            )
        unknown = [p for p in self.profiles if p not in RULE_PROFILES]
        if unknown or not self.profiles:
            raise ConfigError(
                f"train.profiles = {list(self.profiles)}: expected a non-empty subset of "
                f"{sorted(RULE_PROFILES)}"
            )
        spec = get_spec(self.suite)
        if self.members > 1 and spec.market == "budget":
            raise ConfigError(
                f"train.members = {self.members} with suite {self.suite!r}: the budget market "
                f"guards each category as a whole, not per SKU, so it has no use for ensemble "
                f"members; expected members = 1"
            )
        if not self.trained_profiles():
            raise ConfigError(
                f"train.profiles = {list(self.profiles)}: suite {self.suite!r} has scenarios "
                f"only for {list(spec.profiles)}"
            )
        ppo_keys = {f.name for f in fields(PPOConfig)}
        unknown_given = [k for k in self.ppo_given if k not in ppo_keys]
        if unknown_given:
            raise ConfigError(
                f"train.ppo_given = {list(self.ppo_given)}: {unknown_given} are not PPO "
                f"settings; expected names of [ppo] keys"
            )
        if self.curve_every < 0 or self.curve_episodes < 2:
            raise ConfigError("train.curve_every must be >= 0 and curve_episodes >= 2")
        if self.eval_episodes < 0 or 0 < self.eval_episodes < 2:
            raise ConfigError("train.eval_episodes must be 0 (skip) or >= 2")
        bad = [a for a in self.compare_with if a not in baseline_factories(self.suite)]
        if bad:
            raise ConfigError(
                f"train.compare_with: unknown baseline(s) {bad} for suite {self.suite!r}; "
                f"expected some of {sorted(baseline_factories(self.suite))}"
            )

    def trained_profiles(self) -> tuple[str, ...]:
        """The profiles of ``profiles`` that the suite has scenarios for."""
        return tuple(p for p in self.profiles if p in get_spec(self.suite).profiles)

    @staticmethod
    def expand_file_values(values: dict[str, Any]) -> dict[str, Any]:
        """The train file's shorthands, applied by the config loader to the file's values:
        a ``[timesteps]`` table adds to (or changes) :data:`PROFILE_TIMESTEPS`; a file that
        sets ``[ppo] total_timesteps`` and no ``[timesteps]`` trains every profile for that
        many steps."""
        out = dict(values)
        if "ppo_given" in out:
            raise ConfigError(
                "train.ppo_given: set by the config loader from the [ppo] table; expected "
                "the settings under [ppo] instead"
            )
        steps, ppo = out.get("timesteps"), out.get("ppo")
        if isinstance(ppo, dict):
            out["ppo_given"] = sorted(ppo)  # a market's own defaults never replace these
        if isinstance(steps, dict):
            out["timesteps"] = {**PROFILE_TIMESTEPS, **steps}
        elif "timesteps" not in out and isinstance(ppo, dict) and "total_timesteps" in ppo:
            out["timesteps"] = {}  # the file's one budget holds for every profile
        return out


@dataclass
class TrainOutcome:
    """What :func:`train` returns."""

    run_id: str
    out_dir: Path
    rows: pd.DataFrame
    curve: pd.DataFrame
    train_seconds: dict[str, float]
    model_version: str | None = None


def train(config: TrainConfig, out_dir: str | Path) -> TrainOutcome:
    """Train, evaluate and log one seed (see the module docstring).

    Parameters
    ----------
    config : TrainConfig
    out_dir : path
        Checkpoints and the final models (``<profile>/model.zip``) go here; an existing
        checkpoint is resumed.

    Returns
    -------
    TrainOutcome
    """
    out = Path(out_dir)
    seed = config.ppo.seed
    spec = get_spec(config.suite)
    device = resolve_device(config.ppo.device)  # a GPU asked for but absent: refused up front
    name = tracking.run_name("ppo", config.suite, seed)
    tags = {
        "agent": "ppo",
        "suite": config.suite,
        "suite_version": spec.version,
        "profiles": ",".join(config.trained_profiles()),
        "out_dir": str(out.resolve()),
        "device": device,
    }
    curve_rows: list[dict[str, Any]] = []
    train_seconds: dict[str, float] = {}
    source = read_catalog(config.catalog) if config.catalog else None
    with tracking.start_run(
        name, tags=tags, config=config, seed=seed, experiment=config.experiment
    ) as run:
        policies: dict[str, PPOPolicy] = {}
        members: dict[str, list[PPOPolicy]] = {}
        for profile in config.trained_profiles():
            key = spec.policy_key(profile)
            log.info("training policy %r, seed %s", key, seed)
            names = tuple(s.name for s in spec.scenarios if s.profile == profile)
            callbacks: list[BaseCallback] = []
            if config.curve_every and names:
                curve_cfg = EvalConfig(
                    suite=config.suite, n_episodes=config.curve_episodes, scenarios=names
                )
                callbacks.append(
                    CurveCallback(
                        key,
                        prepare(curve_cfg),
                        config.curve_every,
                        config.curve_episodes,
                        curve_rows,
                        suite=config.suite,
                    )
                )
            logger = Logger(folder=None, output_formats=[MLflowOutputFormat(prefix=f"{key}/")])
            result = train_ppo(
                ppo_for_profile(config, key),
                RULE_PROFILES[profile],
                catalog=source,
                checkpoint_dir=out / key,
                logger=logger,
                callbacks=callbacks,
                catalog_fn=catalog_fn_for(spec, profile),
                keep_snapshots=config.keep_snapshots,
            )
            train_seconds[key] = result.wall_seconds
            policies[key] = PPOPolicy(result.model, name="ppo")
            tracking.log_metrics({f"time/{key}/train_seconds": result.wall_seconds})
            for j in range(1, config.members):
                log.info("training policy %r, seed %s, ensemble member %d", key, seed, j)
                member = train_ppo(
                    replace(ppo_for_profile(config, key), seed=member_seed(seed, j)),
                    RULE_PROFILES[profile],
                    catalog=source,
                    checkpoint_dir=member_folder(out / key, j),
                    logger=Logger(
                        folder=None, output_formats=[MLflowOutputFormat(prefix=f"{key}/m{j}/")]
                    ),
                    catalog_fn=catalog_fn_for(spec, profile),
                    keep_snapshots=config.keep_snapshots,
                )
                members.setdefault(key, []).append(PPOPolicy(member.model, name="ppo"))
                train_seconds[f"{key}/m{j}"] = member.wall_seconds
                tracking.log_metrics({f"time/{key}/m{j}/train_seconds": member.wall_seconds})
        tracking.log_metrics({"time/train_seconds_total": sum(train_seconds.values())})
        curve = pd.DataFrame(curve_rows)
        figures = out / "figures"
        if not curve.empty:
            curve["seed"] = seed
            write_frame_atomic(curve, out / "curve.csv")
            mlflow.log_artifact(str(out / "curve.csv"))
            mlflow.log_artifact(
                str(agent_plots.learning_curve(curve, figures / "learning_curve.png")), "figures"
            )
        rows = pd.DataFrame()
        if config.eval_episodes:
            rows = evaluate_and_log(config, policies, out, members=members)
        version = None
        if config.log_model and spec.market == "standard":
            version = _log_model(config, out, rows)
        elif config.log_model:
            # the served model builds the standard observation; a learning-market policy
            # reads the posterior, which serving does not keep
            log.info("train: suite %r: the policy is not registered for serving", config.suite)
        return TrainOutcome(run.info.run_id, out, rows, curve, train_seconds, version)


def evaluate_and_log(
    config: TrainConfig,
    policies: Mapping[str, PPOPolicy],
    out: Path,
    *,
    members: Mapping[str, Sequence[PPOPolicy]] | None = None,
) -> pd.DataFrame:
    """Final evaluation of the trained policies (in the active run): metrics, rows, plots.
    With ensemble ``members`` (per policy key, besides the policy itself) ``ppo_ens`` plays
    too: the guard choosing per SKU among them, the policy and the prior."""
    spec = get_spec(config.suite)
    names = tuple(s.name for s in spec.scenarios if spec.policy_key(s.profile) in policies)
    ecfg = EvalConfig(suite=config.suite, n_episodes=config.eval_episodes, scenarios=names)
    prep = prepare(ecfg, progress=True)
    agents = {"ppo": ppo_factory(policies, config.suite)}
    labels: dict[str, int | None] = {"ppo": config.ppo.seed}
    if members and get_spec(config.suite).market != "budget":
        agents["ppo_ens"] = ppo_factory(policies, config.suite, alternatives=members)
        labels["ppo_ens"] = config.ppo.seed
    base = baseline_factories(config.suite)
    agents.update({b: base[b] for b in config.compare_with})
    rows = evaluate_suite(ecfg, agents, seeds=labels, prepared=prep)
    write_frame_atomic(rows, out / "eval_rows.csv")
    mlflow.log_artifact(str(out / "eval_rows.csv"))
    ppo_rows = rows[rows["agent"] == "ppo"]
    metrics: dict[str, float] = {}
    for r in ppo_rows.to_dict(orient="records"):
        for key in (
            "pct_of_reference",
            "pct_of_reference_ci",
            "pct_of_dp",
            "pct_of_dp_ci",
            "gain_vs_prior_pct",
            "gain_vs_prior_ci",
            "profit_mean",
            "sell_through",
            "violations",
        ):
            if r[key] == r[key]:  # NaN: not applicable in this suite
                metrics[f"eval/{r['scenario']}/{key}"] = float(r[key])
    board = leaderboard(rows)
    for r in board.to_dict(orient="records"):
        prefix = "eval" if r["agent"] == "ppo" else f"eval_{r['agent']}"
        metrics[f"{prefix}/median_pct_of_dp"] = float(r["median_pct"])
        metrics[f"{prefix}/worst_pct_of_dp"] = float(r["worst_pct"])
        metrics[f"{prefix}/mean_pct_of_dp"] = float(r["mean_pct"])
        metrics[f"{prefix}/violations"] = float(r["violations"])
        gain = r.get("gain_vs_prior")
        if gain is not None and gain == gain:  # absent or NaN: no prior row to pair with
            metrics[f"{prefix}/mean_gain_vs_prior"] = float(gain)
            metrics[f"{prefix}/below_prior"] = float(r["below_prior"])
    tracking.log_metrics(metrics)
    log.debug("leaderboard:\n%s", format_leaderboard(board))
    figures = out / "figures"
    mlflow.log_artifact(
        str(agent_plots.leaderboard_bars(board, figures / "leaderboard.png")), "figures"
    )
    if spec.market != "standard":
        return rows  # policy maps and schedules are drawn against the known-parameter DP
    for p in prep:
        first = next(q for q in prep if q.scenario.profile == p.scenario.profile)
        if p is not first:
            continue
        policy = policies[spec.policy_key(p.scenario.profile)]
        mlflow.log_artifact(
            str(
                agent_plots.policy_map(
                    policy, p.scenario, p.solution, figures / f"policy_map_{p.scenario.name}.png"
                )
            ),
            "figures",
        )
        mlflow.log_artifact(
            str(
                agent_plots.schedules(
                    {"ppo": policy, "dp": dp_policy_for(p.solution)},
                    p.scenario,
                    figures / f"schedule_{p.scenario.name}.png",
                )
            ),
            "figures",
        )
    return rows


def _log_model(config: TrainConfig, out: Path, rows: pd.DataFrame) -> str | None:
    """Log and register the pyfunc model; move ``champion`` to it if it is at least as good."""
    profiles = config.trained_profiles()
    first = profiles[0]
    example = example_input(RULE_PROFILES[first], first, 3)
    info = log_policy_model(
        {p: out / p / "model.zip" for p in profiles},
        {p: RULE_PROFILES[p] for p in profiles},
        example=example,
        register=True,
        alias=None,
    )
    version = info.registered_model_version
    if version is None:
        return None
    client = mlflow.MlflowClient()
    mine = float("nan")
    if not rows.empty:
        mine = float(rows.loc[rows["agent"] == "ppo", "pct_of_dp"].median())
    try:
        current = client.get_model_version_by_alias(REGISTERED_NAME, CHAMPION_ALIAS)
        champ_run = client.get_run(current.run_id) if current.run_id else None
        theirs = (
            champ_run.data.metrics.get("eval/median_pct_of_dp", float("-inf"))
            if champ_run
            else float("-inf")
        )
    except mlflow.exceptions.MlflowException:
        theirs = float("-inf")
    promote = not (mine < theirs)  # NaN (no evaluation) never beats an evaluated champion
    if mine != mine and theirs != float("-inf"):
        promote = False
    if promote:
        client.set_registered_model_alias(REGISTERED_NAME, CHAMPION_ALIAS, str(version))
        mlflow.set_tag("champion", "true")
    log.info(
        "registered %s v%s%s", REGISTERED_NAME, version, f" as @{CHAMPION_ALIAS}" if promote else ""
    )
    return str(version)
