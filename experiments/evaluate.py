"""Evaluate policies on the suite with common random numbers, against the exact DP optimum.

For each scenario of a suite (:mod:`experiments.suite`), every agent is played over the same
``n_episodes`` demand paths through the batched env's evaluation mode
(:class:`envs.batched.BatchedMarkdownEnv` with ``fixed_skus=True``): demand is drawn by inverse
CDF from uniforms fixed by (seed, slot, week), so every agent faces the same demand quantiles
(common random numbers), and is compared with the DP policy played on the same paths. Per
(agent, scenario) row:

- ``profit_mean`` and ``profit_ci``: the mean objective (profit minus any sell-through
  penalty, in currency) and the half-width of its 95 % CI;
- ``pct_of_dp`` and ``pct_of_dp_ci``: ``100 * (V* + mean(x - x_dp)) / V*`` where ``V*`` is
  the exact DP value and ``x - x_dp`` the paired per-episode difference to the DP policy on
  the same path. This estimates ``100 * E[x] / V*`` without bias, with the variance of the
  *paired* difference (much smaller than that of ``x``);
- ``sell_through``, ``leftover_units``, ``margin_given_away``, ``revenue``, ``coupon_spend``
  (means per episode);
- ``violations``: actions the policy chose that the rules mask, as the env counts them (the
  env runs with ``invalid_action="hold"``: it plays the hold action instead and counts the
  attempt, so a rule-breaking policy is reported, not hidden).

:func:`leaderboard` aggregates rows per agent (median, worst and mean % of DP), and
:func:`seed_summary` the mean and CI across training seeds of a learned agent.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from tqdm import tqdm

from agents.dp import DPSolution, solve
from agents.policy import Policy
from envs.batched import BatchedMarkdownEnv
from envs.markdown import EnvConfig
from experiments.suite import SUITE_VERSION, Scenario, get_suite
from ingest.errors import ConfigError

#: Columns of the per-scenario rows, in order (the JSON keys of ``deadstock evaluate``).
ROW_COLUMNS: tuple[str, ...] = (
    "agent",
    "seed",
    "scenario",
    "profile",
    "profit_mean",
    "profit_ci",
    "pct_of_dp",
    "pct_of_dp_ci",
    "dp_value",
    "sell_through",
    "leftover_units",
    "margin_given_away",
    "revenue",
    "coupon_spend",
    "violations",
    "n_episodes",
    "suite_version",
)

PolicyFactory = Callable[[Scenario, DPSolution], Policy]
"""Builds an agent's policy for one scenario (given the scenario's DP solution)."""


@dataclass(frozen=True)
class EvalConfig:
    """How to evaluate.

    Parameters
    ----------
    suite : str
        Suite name (see :func:`experiments.suite.get_suite`).
    n_episodes : int
        Demand paths per scenario (>= 2,000 for reported numbers).
    seed : int
        Seed of the demand paths; scenario ``i`` uses ``SeedSequence(seed).spawn(n)[i]``, and
        every agent sees the same paths.
    confidence : float
        Level of the confidence intervals.
    scenarios : tuple of str
        Restrict to these scenario names (empty = the whole suite).
    """

    suite: str = "standard"
    n_episodes: int = 2000
    seed: int = 2026
    confidence: float = 0.95
    scenarios: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        get_suite(self.suite)
        if self.n_episodes < 2:
            raise ConfigError(f"evaluate.n_episodes = {self.n_episodes}; expected >= 2")
        if not 0 < self.confidence < 1:
            raise ConfigError(f"evaluate.confidence = {self.confidence}; expected in (0, 1)")
        names = {s.name for s in get_suite(self.suite)}
        unknown = [s for s in self.scenarios if s not in names]
        if unknown:
            raise ConfigError(
                f"evaluate.scenarios: unknown scenario(s) {unknown} in suite {self.suite!r}"
            )

    def selected(self) -> list[tuple[int, Scenario]]:
        """(index in the suite, scenario) pairs to evaluate; the index fixes the seed."""
        return [
            (i, s)
            for i, s in enumerate(get_suite(self.suite))
            if not self.scenarios or s.name in self.scenarios
        ]

    def scenario_seed(self, index: int) -> int:
        """The demand seed of the suite's ``index``-th scenario."""
        n = len(get_suite(self.suite))
        child = np.random.SeedSequence(self.seed).spawn(n)[index]
        return int(child.generate_state(1)[0])


def _half_width(x: np.ndarray, confidence: float) -> float:
    n = x.shape[0]
    if n < 2:
        return float("nan")
    return float(stats.t.ppf(0.5 + confidence / 2, n - 1) * x.std(ddof=1) / np.sqrt(n))


def play(policy: Policy, scenario: Scenario, *, n_episodes: int, seed: int) -> pd.DataFrame:
    """Play ``policy`` on ``scenario`` for ``n_episodes`` CRN demand paths.

    Returns the env's per-episode totals (one row per episode, sorted by path), see
    :data:`envs.batched.TOTAL_COLUMNS`; ``objective`` is in currency.
    """
    env = BatchedMarkdownEnv(
        EnvConfig(
            horizon_weeks=scenario.horizon_weeks,
            rules=scenario.rules,
            catalog=scenario.catalog(),
            invalid_action="hold",
        ),
        n_slots=n_episodes,
        seed=seed,
        fixed_skus=True,
    )
    policy.reset(None)

    def act(obs: np.ndarray, masks: np.ndarray, ctx: Any) -> np.ndarray:
        return policy.act(obs, masks, ctx)

    totals = env.evaluate(act, episodes_per_slot=1)
    env.close()
    return totals


def score(
    totals: pd.DataFrame,
    dp_totals: pd.DataFrame,
    solution: DPSolution,
    scenario: Scenario,
    *,
    agent: str,
    confidence: float = 0.95,
    seed: int | None = None,
) -> dict[str, Any]:
    """One leaderboard row: ``totals`` against the DP policy's on the same demand paths."""
    x = totals["objective"].to_numpy(float)
    x_dp = dp_totals["objective"].to_numpy(float)
    if x.shape != x_dp.shape:
        raise ConfigError("agent and DP were played on different numbers of demand paths")
    v_star = float(solution.value)
    diff = x - x_dp
    pct = 100.0 * (v_star + diff.mean()) / v_star if v_star > 0 else float("nan")
    pct_ci = 100.0 * _half_width(diff, confidence) / v_star if v_star > 0 else float("nan")
    return {
        "agent": agent,
        "seed": seed,
        "scenario": scenario.name,
        "profile": scenario.profile,
        "profit_mean": float(x.mean()),
        "profit_ci": _half_width(x, confidence),
        "pct_of_dp": float(pct),
        "pct_of_dp_ci": float(pct_ci),
        "dp_value": v_star,
        "sell_through": float(totals["sell_through"].mean()),
        "leftover_units": float(totals["leftover_units"].mean()),
        "margin_given_away": float(totals["margin_given_away"].mean()),
        "revenue": float(totals["revenue"].mean()),
        "coupon_spend": float(totals["coupon_cost"].mean()),
        "violations": int(totals["violations"].sum()),
        "n_episodes": int(x.shape[0]),
        "suite_version": SUITE_VERSION,
    }


def dp_policy_for(solution: DPSolution) -> Policy:
    """The DP's optimal policy as a :class:`Policy` (``agents.baselines.DPPolicy``)."""
    from agents.baselines import DPPolicy

    return DPPolicy.from_solution(solution)


@dataclass
class Prepared:
    """A scenario ready for scoring: its DP solution and the DP policy's CRN totals."""

    index: int
    scenario: Scenario
    solution: DPSolution
    seed: int
    dp_totals: pd.DataFrame


def prepare(config: EvalConfig, *, progress: bool = False) -> list[Prepared]:
    """Solve the DP and play its policy on every selected scenario (done once, reused)."""
    out = []
    selected = config.selected()
    for index, scenario in tqdm(selected, desc="solve DP", file=sys.stderr, disable=not progress):
        solution = solve(scenario.catalog(), scenario.rules, scenario.horizon_weeks)
        seed = config.scenario_seed(index)
        dp_totals = play(dp_policy_for(solution), scenario, n_episodes=config.n_episodes, seed=seed)
        out.append(Prepared(index, scenario, solution, seed, dp_totals))
    return out


def score_agent(
    prepared: Sequence[Prepared],
    factory: PolicyFactory,
    *,
    agent: str,
    n_episodes: int,
    confidence: float = 0.95,
    seed: int | None = None,
) -> list[dict[str, Any]]:
    """Rows of one agent on prepared scenarios (see :func:`score`)."""
    rows = []
    for p in prepared:
        totals = play(
            factory(p.scenario, p.solution), p.scenario, n_episodes=n_episodes, seed=p.seed
        )
        rows.append(
            score(
                totals,
                p.dp_totals,
                p.solution,
                p.scenario,
                agent=agent,
                confidence=confidence,
                seed=seed,
            )
        )
    return rows


def evaluate_suite(
    config: EvalConfig,
    agents: Mapping[str, PolicyFactory],
    *,
    seeds: Mapping[str, int | None] | None = None,
    progress: bool = True,
    prepared: Sequence[Prepared] | None = None,
) -> pd.DataFrame:
    """Evaluate every agent on every selected scenario.

    Parameters
    ----------
    config : EvalConfig
    agents : mapping of agent label -> factory(scenario, dp_solution) -> Policy
        Labels appear in the ``agent`` column. ``"dp"`` rows are added automatically.
    seeds : mapping of agent label -> training seed, optional
        Fills the ``seed`` column (``None`` for heuristics).
    progress : bool
        Show progress on stderr.
    prepared : sequence of Prepared, optional
        Reuse DP solutions and totals from :func:`prepare` (same config).

    Returns
    -------
    DataFrame
        One row per (agent, scenario), columns :data:`ROW_COLUMNS`.
    """
    seeds = dict(seeds or {})
    prep = list(prepared) if prepared is not None else prepare(config, progress=progress)
    rows: list[dict[str, Any]] = []
    for p in prep:
        rows.append(
            score(
                p.dp_totals,
                p.dp_totals,
                p.solution,
                p.scenario,
                agent="dp",
                confidence=config.confidence,
            )
        )
    labels = [a for a in agents if a != "dp"]
    for label in tqdm(labels, desc="evaluate", file=sys.stderr, disable=not progress):
        rows.extend(
            score_agent(
                prep,
                agents[label],
                agent=label,
                n_episodes=config.n_episodes,
                confidence=config.confidence,
                seed=seeds.get(label),
            )
        )
    frame = pd.DataFrame(rows, columns=list(ROW_COLUMNS))
    order = {p.scenario.name: i for i, p in enumerate(prep)}
    frame["_o"] = frame["scenario"].map(order)
    return frame.sort_values(["_o"], kind="stable").drop(columns="_o").reset_index(drop=True)


def ppo_factory(policies: Mapping[str, Policy]) -> PolicyFactory:
    """An evaluate-style factory picking the profile's PPO policy for each scenario."""

    def factory(scenario: Scenario, solution: DPSolution) -> Policy:
        if scenario.profile not in policies:
            raise ConfigError(
                f"no PPO policy for profile {scenario.profile!r} (have {sorted(policies)}); "
                f"train it or restrict the scenarios"
            )
        return policies[scenario.profile]

    return factory


def agent_family(label: str) -> str:
    """``"ppo/s3"`` -> ``"ppo"``: the agent without its seed suffix."""
    return label.split("/", 1)[0]


def leaderboard(rows: pd.DataFrame) -> pd.DataFrame:
    """Per agent: median, worst and mean % of DP over scenarios, and total violations.

    Sorted best first (by median, then worst).
    """
    if rows.empty:
        return pd.DataFrame(
            columns=["agent", "median_pct", "worst_pct", "mean_pct", "violations", "n_scenarios"]
        )
    g = rows.groupby("agent", sort=False)
    board = pd.DataFrame(
        {
            "median_pct": g["pct_of_dp"].median(),
            "worst_pct": g["pct_of_dp"].min(),
            "mean_pct": g["pct_of_dp"].mean(),
            "mean_sell_through": g["sell_through"].mean(),
            "violations": g["violations"].sum(),
            "n_scenarios": g["scenario"].nunique(),
        }
    ).reset_index()
    return board.sort_values(["median_pct", "worst_pct"], ascending=False, ignore_index=True)


def seed_summary(rows: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Across training seeds of each learned agent family (labels ``family/s<seed>``): the mean
    of each seed's median, worst and mean % of DP, with the CI half-width across seeds."""
    seeded = rows[rows["seed"].notna()].copy()
    if seeded.empty:
        return pd.DataFrame(columns=["agent", "n_seeds"])
    seeded["family"] = seeded["agent"].map(agent_family)
    per_seed = (
        seeded.groupby(["family", "seed"])["pct_of_dp"]
        .agg(median_pct="median", worst_pct="min", mean_pct="mean")
        .reset_index()
    )
    out = []
    for family, grp in per_seed.groupby("family", sort=False):
        row: dict[str, Any] = {"agent": family, "n_seeds": len(grp)}
        for col in ("median_pct", "worst_pct", "mean_pct"):
            x = grp[col].to_numpy(float)
            row[col] = float(x.mean())
            row[f"{col}_ci"] = _half_width(x, confidence)
        out.append(row)
    return pd.DataFrame(out)


def per_scenario_across_seeds(rows: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per (agent family, scenario): mean % of DP across training seeds and its CI."""
    seeded = rows[rows["seed"].notna()].copy()
    if seeded.empty:
        return pd.DataFrame(columns=["agent", "scenario", "pct_of_dp", "pct_of_dp_seed_ci"])
    seeded["family"] = seeded["agent"].map(agent_family)
    out = []
    for (family, scenario), grp in seeded.groupby(["family", "scenario"], sort=False):
        x = grp["pct_of_dp"].to_numpy(float)
        out.append(
            {
                "agent": family,
                "scenario": scenario,
                "n_seeds": len(x),
                "pct_of_dp": float(x.mean()),
                "pct_of_dp_seed_ci": _half_width(x, confidence),
                "worst_seed_pct": float(x.min()),
            }
        )
    return pd.DataFrame(out)


def format_leaderboard(board: pd.DataFrame) -> str:
    """A fixed-width text table of :func:`leaderboard`."""
    lines = [
        f"{'agent':<16}{'median %DP':>11}{'worst %DP':>11}{'mean %DP':>10}"
        f"{'sell-thru':>10}{'violations':>11}{'scen':>6}"
    ]
    for r in board.to_dict(orient="records"):
        lines.append(
            f"{r['agent']:<16}{r['median_pct']:>11.2f}{r['worst_pct']:>11.2f}"
            f"{r['mean_pct']:>10.2f}{r['mean_sell_through']:>10.3f}"
            f"{int(r['violations']):>11d}{int(r['n_scenarios']):>6d}"
        )
    return "\n".join(lines)


def json_rows(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows for ``--json``: the issue's keys first, then the rest."""
    out: list[dict[str, Any]] = []
    for rec in rows.to_dict(orient="records"):
        row = {str(k): (None if isinstance(v, float) and v != v else v) for k, v in rec.items()}
        seed = row.get("seed")
        if seed is not None:
            row["seed"] = int(seed)
        out.append(row)
    return out


def select_agents(names: Sequence[str]) -> list[str]:
    """Validate agent names against the baselines and ``ppo``/``dp``."""
    known = set(baseline_factories()) | {"ppo", "dp"}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"--agents: unknown agent(s) {unknown}; expected some of {sorted(known)}")
    return list(names)


def baseline_factories() -> dict[str, PolicyFactory]:
    """Factories of the heuristic baselines by CLI name."""
    from agents import baselines as b

    def simple(cls: Any, **kw: Any) -> PolicyFactory:
        return lambda scenario, solution: cls(**kw)

    return {
        "none": simple(b.NoMarkdown),
        "fixed": simple(b.BestFixedDiscount),
        "fluid": simple(b.CertaintyEquivalent),
        "prior": simple(b.FluidPrior),
        "ladder": simple(b.LinearLadder, step=0.1, every_weeks=2),
        "cover": simple(b.WeeksOfCover, deepen_above=1.0),
        "myopic": simple(b.Myopic),
    }


def log_rows(
    rows: pd.DataFrame, config: EvalConfig, *, experiment: str, source: str | None = None
) -> list[str]:
    """Log one MLflow run per agent label of ``rows`` (tags ``agent``, ``seed``,
    ``suite_version``, ``kind=evaluate``): per-scenario metrics and the leaderboard metrics
    that ``deadstock compare`` reads. Returns the run ids."""
    from experiments import tracking

    ids = []
    board = leaderboard(rows)
    for rec in board.to_dict(orient="records"):
        label = str(rec["agent"])
        sub = rows[rows["agent"] == label]
        seed_val = sub["seed"].iloc[0]
        seed = None if seed_val is None or seed_val != seed_val else int(seed_val)
        tags = {
            "agent": agent_family(label),
            "suite": config.suite,
            "suite_version": SUITE_VERSION,
            "kind": "evaluate",
        }
        if source and agent_family(label) == "ppo":
            tags["model_source"] = source
        name = tracking.run_name("eval", label.replace("/", "-"), seed)
        with tracking.start_run(
            name, tags=tags, config=config, seed=seed, experiment=experiment
        ) as run:
            metrics = {
                "eval/median_pct_of_dp": rec["median_pct"],
                "eval/worst_pct_of_dp": rec["worst_pct"],
                "eval/mean_pct_of_dp": rec["mean_pct"],
                "eval/violations": rec["violations"],
            }
            for r in sub.to_dict(orient="records"):
                for key in ("pct_of_dp", "pct_of_dp_ci", "profit_mean", "sell_through"):
                    metrics[f"eval/{r['scenario']}/{key}"] = r[key]
            tracking.log_metrics(metrics)
            ids.append(run.info.run_id)
    return ids
