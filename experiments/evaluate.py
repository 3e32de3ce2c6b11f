"""Evaluate policies on a suite with common random numbers, against the suite's reference.

For each scenario of a suite (:mod:`experiments.suite`), every agent is played over the same
``n_episodes`` paths in the suite's market (:mod:`experiments.markets`: the batched env's
evaluation mode, or the learning env's): demand (and, in the learning market, the drawn
truth) comes from uniforms fixed by (seed, slot, week), so every agent faces the same luck
(common random numbers), and is compared with the reference policy played on the same paths
(the exact DP; in the learning market the oracle, the DP of the drawn truth). Per (agent,
scenario) row:

- ``profit_mean`` and ``profit_ci``: the mean objective (profit minus any sell-through
  penalty, in currency) and the half-width of its 95 % CI;
- ``pct_of_reference`` and ``pct_of_reference_ci``: ``100 * (V + mean(x - x_ref)) / V``
  where ``V`` is the reference's exact value and ``x - x_ref`` the paired per-episode
  difference to the reference policy on the same path. This estimates ``100 * E[x] / V``
  without bias, with the variance of the *paired* difference (much smaller than that of
  ``x``); ``pct_of_dp`` is the same number when the reference is an exact DP;
- ``gain_vs_prior_pct`` and its CI: the paired gain over :data:`PAIRED_AGENT`, PPO's prior
  alone, when it is played;
- ``sell_through``, ``leftover_units``, ``margin_given_away``, ``revenue``, ``coupon_spend``
  (means per episode);
- ``violations``: actions the policy chose that the rules mask, as the env counts them (the
  env runs with ``invalid_action="hold"``: it plays the hold action instead and counts the
  attempt, so a rule-breaking policy is reported, not hidden).

:func:`leaderboard` aggregates rows per agent (median, worst and mean % of the reference),
and :func:`seed_summary` the mean and CI across training seeds of a learned agent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from agents.baselines import FluidPrior
from agents.budget_ppo import budget_policy
from agents.guard import GuardedPolicy
from agents.policy import Policy
from agents.ppo import FluidPriorPolicy
from experiments.markets import (
    MARKETS,
    PolicyFactory,
    Prepared,
    dp_policy_for,
    market_for,
    play,
)
from experiments.suite import SUITE_SPECS, CategoryScenario, Scenario, get_spec, get_suite
from ingest.errors import ConfigError
from ingest.progress import progress as show_progress

__all__ = [
    "ROW_COLUMNS",
    "EvalConfig",
    "PolicyFactory",
    "Prepared",
    "dp_policy_for",
    "evaluate_suite",
    "play",
    "prepare",
    "score",
    "score_agent",
]

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
    "reference",
    "reference_value",
    "pct_of_reference",
    "pct_of_reference_ci",
    "gain_vs_prior_pct",
    "gain_vs_prior_ci",
)

EXACT_DP_REFERENCES = ("dp", "oracle")
"""References that are an exact DP (known parameters, or the drawn truth revealed): there
``pct_of_dp`` is ``pct_of_reference``; elsewhere it is NaN."""

PAIRED_AGENT = "prior"
"""The agent every row is also paired with (``gain_vs_prior_pct``): the PPO prior alone, so
a PPO row says what training added to its starting point."""


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


def score(
    totals: pd.DataFrame,
    prepared: Prepared,
    *,
    agent: str,
    confidence: float = 0.95,
    seed: int | None = None,
    paired: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """One leaderboard row: ``totals`` against the reference policy's on the same paths.

    ``pct_of_reference = 100 (V + mean(x - x_ref)) / V`` with ``V`` the reference's exact
    value and ``x - x_ref`` the paired per-path difference (an unbiased estimate of
    ``100 E[x] / V`` whose CI is that of the paired difference). With ``paired`` (the
    :data:`PAIRED_AGENT`'s totals on the same paths), ``gain_vs_prior_pct = 100 mean(x -
    x_prior) / V`` and its CI.
    """
    x = totals["objective"].to_numpy(float)
    x_ref = prepared.reference_totals["objective"].to_numpy(float)
    if x.shape != x_ref.shape:
        raise ConfigError("agent and reference were played on different numbers of demand paths")
    market = MARKETS[prepared.market]
    v_ref = float(prepared.reference_value)
    diff = x - x_ref
    ok = v_ref > 0
    pct = 100.0 * (v_ref + diff.mean()) / v_ref if ok else float("nan")
    pct_ci = 100.0 * _half_width(diff, confidence) / v_ref if ok else float("nan")
    gain = gain_ci = float("nan")
    if paired is not None and ok:
        d_p = x - paired["objective"].to_numpy(float)
        gain, gain_ci = 100.0 * d_p.mean() / v_ref, 100.0 * _half_width(d_p, confidence) / v_ref
    exact = market.reference in EXACT_DP_REFERENCES
    return {
        "agent": agent,
        "seed": seed,
        "scenario": prepared.scenario.name,
        "profile": prepared.scenario.profile,
        "profit_mean": float(x.mean()),
        "profit_ci": _half_width(x, confidence),
        "pct_of_dp": float(pct) if exact else float("nan"),
        "pct_of_dp_ci": float(pct_ci) if exact else float("nan"),
        "dp_value": v_ref if exact else float("nan"),
        "sell_through": float(totals["sell_through"].mean()),
        "leftover_units": float(totals["leftover_units"].mean()),
        "margin_given_away": float(totals["margin_given_away"].mean()),
        "revenue": float(totals["revenue"].mean()),
        "coupon_spend": float(totals["coupon_cost"].mean()),
        "violations": int(totals["violations"].sum()),
        "n_episodes": int(x.shape[0]),
        "suite_version": prepared.suite_version,
        "reference": market.reference,
        "reference_value": v_ref,
        "pct_of_reference": float(pct),
        "pct_of_reference_ci": float(pct_ci),
        "gain_vs_prior_pct": float(gain),
        "gain_vs_prior_ci": float(gain_ci),
    }


def prepare(config: EvalConfig, *, progress: bool = False) -> list[Prepared]:
    """Solve the reference and play its policy on every selected scenario (done once, reused)."""
    spec = get_spec(config.suite)
    market = market_for(spec)
    out = []
    selected: Iterable[tuple[int, Scenario]] = config.selected()
    if progress:
        selected = show_progress(
            selected, desc=f"evaluate: solving the {market.reference}", unit="scenario"
        )
    for index, scenario in selected:
        seed = config.scenario_seed(index)
        out.append(market.prepare(spec, index, scenario, n_episodes=config.n_episodes, seed=seed))
    return out


def play_prepared(policy: Policy, prepared: Prepared, *, n_episodes: int) -> pd.DataFrame:
    """Play ``policy`` on a prepared scenario's CRN paths, in its market."""
    return MARKETS[prepared.market].play(policy, prepared, n_episodes=n_episodes)


def score_agent(
    prepared: Sequence[Prepared],
    factory: PolicyFactory,
    *,
    agent: str,
    n_episodes: int,
    confidence: float = 0.95,
    seed: int | None = None,
    paired: Sequence[pd.DataFrame | None] | None = None,
    keep: list[pd.DataFrame] | None = None,
) -> list[dict[str, Any]]:
    """Rows of one agent on prepared scenarios (see :func:`score`).

    ``paired`` holds the :data:`PAIRED_AGENT`'s totals per prepared scenario (or None);
    ``keep``, when given, receives this agent's totals per scenario.
    """
    rows = []
    for i, p in enumerate(prepared):
        totals = play_prepared(factory(p.scenario, p.solution), p, n_episodes=n_episodes)
        if keep is not None:
            keep.append(totals)
        rows.append(
            score(
                totals,
                p,
                agent=agent,
                confidence=confidence,
                seed=seed,
                paired=paired[i] if paired is not None else None,
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
    agents : mapping of agent label -> factory(scenario, solution) -> Policy
        Labels appear in the ``agent`` column. The reference's rows (``dp`` or ``oracle``)
        are added automatically. When :data:`PAIRED_AGENT` is among them it is played first
        and every row carries its paired gain over it.
    seeds : mapping of agent label -> training seed, optional
        Fills the ``seed`` column (``None`` for heuristics).
    progress : bool
        Show progress bars (on stderr, when :mod:`ingest.progress` enables them).
    prepared : sequence of Prepared, optional
        Reuse references and totals from :func:`prepare` (same config).

    Returns
    -------
    DataFrame
        One row per (agent, scenario), columns :data:`ROW_COLUMNS`.
    """
    seeds = dict(seeds or {})
    prep = list(prepared) if prepared is not None else prepare(config, progress=progress)
    reference = market_for(get_spec(config.suite)).reference
    labels = [a for a in agents if a != reference]
    if PAIRED_AGENT in labels:  # played first: every other row is paired with it
        labels.remove(PAIRED_AGENT)
        labels.insert(0, PAIRED_AGENT)
    paired: list[pd.DataFrame] | None = None
    rows: list[dict[str, Any]] = []
    for label in (
        show_progress(labels, desc="evaluate: agents", unit="agent") if progress else labels
    ):
        keep: list[pd.DataFrame] | None = [] if label == PAIRED_AGENT else None
        rows.extend(
            score_agent(
                prep,
                agents[label],
                agent=label,
                n_episodes=config.n_episodes,
                confidence=config.confidence,
                seed=seeds.get(label),
                paired=paired,
                keep=keep,
            )
        )
        if keep is not None:
            paired = keep
    ref_rows = [
        score(
            p.reference_totals,
            p,
            agent=reference,
            confidence=config.confidence,
            paired=paired[i] if paired is not None else None,
        )
        for i, p in enumerate(prep)
    ]
    frame = pd.DataFrame(ref_rows + rows, columns=list(ROW_COLUMNS))
    order = {p.scenario.name: i for i, p in enumerate(prep)}
    frame["_o"] = frame["scenario"].map(order)
    return frame.sort_values(["_o"], kind="stable").drop(columns="_o").reset_index(drop=True)


def ppo_factory(
    policies: Mapping[str, Policy],
    suite: str = "standard",
    *,
    guard: bool = True,
    alternatives: Mapping[str, Sequence[Policy]] | None = None,
) -> PolicyFactory:
    """An evaluate-style factory picking, for each scenario, the PPO policy of its profile
    in ``suite`` (key ``SuiteSpec.policy_key(profile)``).

    With ``guard`` (the default), a policy built on the fluid prior plays as
    :class:`agents.guard.GuardedPolicy`: per SKU, the network where it beats the prior alone
    on the guard's own simulated paths, else the prior. ``guard=False`` scores the raw network.
    ``alternatives`` (per policy key, e.g. the run's late snapshots,
    :func:`agents.ppo.late_snapshots`) are more networks the guard chooses among per SKU.
    In the budget market the policy allocates each category's slots one SKU at a time
    (:class:`agents.budget_ppo.SequentialBudgetPolicy`; a SKU's slot depends on the others,
    so a policy on the Lagrangian prior is guarded per category instead,
    :class:`agents.budget_ppo.GuardedCategoryPolicy`).
    """
    spec = get_spec(suite)
    wrapped: dict[str, Policy] = {}

    def factory(scenario: Scenario, solution: Any) -> Policy:
        key = spec.policy_key(scenario.profile)
        if key not in policies:
            raise ConfigError(
                f"no PPO policy {key!r} for profile {scenario.profile!r} of suite {suite!r} "
                f"(have {sorted(policies)}); train it (deadstock train --suite {suite}) or "
                f"restrict the scenarios"
            )
        policy = policies[key]
        if isinstance(scenario, CategoryScenario):
            return budget_policy(policy, scenario.catalog(), solution, guard=guard)
        if not guard or not uses_prior(policy):
            return policy
        if key not in wrapped:
            more = (alternatives or {}).get(key, ())
            wrapped[key] = GuardedPolicy(policy, FluidPrior(), alternatives=more)
        return wrapped[key]

    return factory


def uses_prior(policy: Policy) -> bool:
    """True for a PPO policy whose network starts from the fluid prior."""
    model = getattr(policy, "model", None)
    return isinstance(getattr(model, "policy", None), FluidPriorPolicy)


def agent_family(label: str) -> str:
    """``"ppo/s3"`` -> ``"ppo"``: the agent without its seed suffix."""
    return label.split("/", 1)[0]


def pct_column(rows: pd.DataFrame) -> str:
    """``pct_of_reference``, or ``pct_of_dp`` for rows written before it existed."""
    if "pct_of_reference" in rows and rows["pct_of_reference"].notna().any():
        return "pct_of_reference"
    return "pct_of_dp"


def _below_prior(rows: pd.DataFrame) -> pd.Series:
    """True where a row is below the prior beyond its paired CI."""
    if "gain_vs_prior_pct" not in rows:
        return pd.Series(False, index=rows.index)
    return (rows["gain_vs_prior_pct"] + rows["gain_vs_prior_ci"]) < 0


def leaderboard(rows: pd.DataFrame) -> pd.DataFrame:
    """Per agent: median, worst and mean % of the reference over scenarios, mean sell-through,
    total violations and, where the prior was played, the mean paired gain over it and the
    number of scenarios below it beyond the CI.

    Sorted best first (by median, then worst).
    """
    if rows.empty:
        return pd.DataFrame(
            columns=["agent", "median_pct", "worst_pct", "mean_pct", "violations", "n_scenarios"]
        )
    col = pct_column(rows)
    frame = rows.assign(_below=_below_prior(rows))
    g = frame.groupby("agent", sort=False)
    data = {
        "median_pct": g[col].median(),
        "worst_pct": g[col].min(),
        "mean_pct": g[col].mean(),
        "mean_sell_through": g["sell_through"].mean(),
        "violations": g["violations"].sum(),
        "n_scenarios": g["scenario"].nunique(),
    }
    if "gain_vs_prior_pct" in rows and rows["gain_vs_prior_pct"].notna().any():
        data["gain_vs_prior"] = g["gain_vs_prior_pct"].mean()
        data["below_prior"] = g["_below"].sum()
    board = pd.DataFrame(data).reset_index()
    return board.sort_values(["median_pct", "worst_pct"], ascending=False, ignore_index=True)


def seed_summary(rows: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Across training seeds of each learned agent family (labels ``family/s<seed>``): the mean
    of each seed's median, worst and mean % of the reference, with the CI half-width across
    seeds."""
    seeded = rows[rows["seed"].notna()].copy()
    if seeded.empty:
        return pd.DataFrame(columns=["agent", "n_seeds"])
    seeded["family"] = seeded["agent"].map(agent_family)
    per_seed = (
        seeded.groupby(["family", "seed"])[pct_column(rows)]
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
    """Per (agent family, scenario): mean % of the reference across training seeds and its
    CI, the worst seed; where the prior was played, the mean paired gain over it across seeds
    (with its CI across seeds) and the number of seeds below it beyond their paired CI."""
    seeded = rows[rows["seed"].notna()].copy()
    col = pct_column(rows)
    if seeded.empty:
        return pd.DataFrame(columns=["agent", "scenario", "pct_of_dp", "pct_of_dp_seed_ci"])
    seeded["family"] = seeded["agent"].map(agent_family)
    seeded["_below"] = _below_prior(seeded)
    has_gain = "gain_vs_prior_pct" in seeded and seeded["gain_vs_prior_pct"].notna().any()
    out = []
    for (family, scenario), grp in seeded.groupby(["family", "scenario"], sort=False):
        x = grp[col].to_numpy(float)
        rec: dict[str, Any] = {
            "agent": family,
            "scenario": scenario,
            "n_seeds": len(x),
            "pct_of_dp": float(x.mean()),
            "pct_of_dp_seed_ci": _half_width(x, confidence),
            "worst_seed_pct": float(x.min()),
        }
        if has_gain:
            gain = grp["gain_vs_prior_pct"].to_numpy(float)
            rec["gain_vs_prior"] = float(gain.mean())
            rec["gain_vs_prior_seed_ci"] = _half_width(gain, confidence)
            rec["seeds_below_prior"] = int(grp["_below"].sum())
        out.append(rec)
    return pd.DataFrame(out)


def with_raw_columns(
    per: pd.DataFrame,
    family: str = "ppo",
    raw: str = "ppo_raw",
    snap: str = "ppo_snap",
    ens: str = "ppo_ens",
) -> pd.DataFrame:
    """The ``family`` rows of :func:`per_scenario_across_seeds` (one per scenario, without the
    ``agent`` column), with the ``raw`` family's mean %, gain over the prior and seeds below
    it beside them as ``raw_*`` columns when it was played (the guarded policy and the
    network alone, side by side), and the ``snap`` and ``ens`` families' mean %, worst seed
    and gain over the prior as ``snap_*`` and ``ens_*`` columns when they were played (the
    guard over the run's snapshots, over the seed's ensemble members)."""
    out = per[per["agent"] == family].drop(columns=["agent"]).reset_index(drop=True)
    for name, prefix, cols in (
        (raw, "raw", ("pct_of_dp", "gain_vs_prior", "seeds_below_prior")),
        (snap, "snap", ("pct_of_dp", "worst_seed_pct", "gain_vs_prior")),
        (ens, "ens", ("pct_of_dp", "worst_seed_pct", "gain_vs_prior")),
    ):
        other = per[per["agent"] == name].set_index("scenario")
        if not other.empty:
            for col in cols:
                if col in other:
                    out[f"{prefix}_{col}"] = out["scenario"].map(other[col])
    return out


def format_leaderboard(board: pd.DataFrame) -> str:
    """A fixed-width text table of :func:`leaderboard` (% of the suite's reference)."""
    lines = [
        f"{'agent':<16}{'median %ref':>12}{'worst %ref':>11}{'mean %ref':>10}"
        f"{'sell-thru':>10}{'violations':>11}{'scen':>6}"
    ]
    for r in board.to_dict(orient="records"):
        lines.append(
            f"{r['agent']:<16}{r['median_pct']:>12.2f}{r['worst_pct']:>11.2f}"
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


def reference_agent(suite: str) -> str:
    """The label of a suite's reference rows (``dp`` or ``oracle``)."""
    return market_for(get_spec(suite)).reference


def select_agents(names: Sequence[str], suite: str = "standard") -> list[str]:
    """Validate agent names for ``suite``: its market's agents, its reference and ``ppo``;
    ``all`` means every one of them (``ppo`` included)."""
    known = [*baseline_factories(suite), reference_agent(suite), "ppo"]
    if "all" in names:
        return known
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(
            f"--agents: unknown agent(s) {unknown} for suite {suite!r}; expected some of "
            f"{sorted(known)} or 'all'"
        )
    return list(names)


def baseline_factories(suite: str = "standard") -> dict[str, PolicyFactory]:
    """Factories of the non-learned agents that apply to ``suite``, by CLI name."""
    return market_for(get_spec(suite)).agent_factories()


def suite_lines() -> list[str]:
    """One line per suite, for ``deadstock evaluate --list-suites``."""
    width = max(len(name) for name in SUITE_SPECS)
    return [
        f"{name:<{width}}  {spec.version:<12} {len(spec.scenarios):>3} scenarios, reference "
        f"{spec.reference}: {spec.description}"
        for name, spec in SUITE_SPECS.items()
    ]


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
            "suite_version": get_spec(config.suite).version,
            "reference": reference_agent(config.suite),
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
            if "gain_vs_prior" in rec and rec["gain_vs_prior"] == rec["gain_vs_prior"]:
                metrics["eval/mean_gain_vs_prior"] = rec["gain_vs_prior"]
            for r in sub.to_dict(orient="records"):
                for key in (
                    "pct_of_reference",
                    "pct_of_reference_ci",
                    "pct_of_dp",
                    "pct_of_dp_ci",
                    "gain_vs_prior_pct",
                    "profit_mean",
                    "sell_through",
                ):
                    if r[key] == r[key]:  # NaN (not applicable) is not logged
                        metrics[f"eval/{r['scenario']}/{key}"] = r[key]
            tracking.log_metrics(metrics)
            ids.append(run.info.run_id)
    return ids
