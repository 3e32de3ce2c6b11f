"""What could PPO start from in the learning market? Each candidate prior's value and cost.

PPO's prior in the learning market is the fluid re-solve on the posterior mean
(``agents.baselines.FluidPrior``, the ``prior`` agent); QMDP and the lookahead
(``agents.learning``, ``agents.learning_bound``) are 5-6 points of the oracle above it. This
script asks which of them a training run could afford to start from, and whether a cheap
prior closes part of the gap:

==================  =========================================================================
candidate           what it needs per SKU, and per decision
==================  =========================================================================
``prior``           nothing; the closed-form fluid values at the posterior mean
``fluid_posterior`` nothing; the closed-form fluid values at every grid point, weighed by
                    the posterior (:class:`FluidPosterior`, below: QMDP's averaging on the
                    fluid model instead of the exact DPs)
``dp_resolve``      every grid point's DP (action tables); one table lookup
``qmdp``            every grid point's DP with its Q-table; a posterior-weighted sum
``lookahead``       the same Q-tables; a one-week search over next week's sales
==================  =========================================================================

For every scenario of the suite it plays them on the CRN paths of
``benchmarks/bench_learning.py`` (same ``--episodes`` and ``--seed``: the rows of ``prior``,
``dp_resolve``, ``qmdp`` and ``lookahead`` equal its tables') and reports the % of the
oracle with its paired 95 % CI, the play time, the grid solve time and the Q-tables' size.
It then sizes the Q-tables a QMDP prior would need for PPO's training catalog (per profile,
``learning_training_catalog`` at ``PPOConfig``'s defaults: SKUs of up to 5,000 units and 26
weeks), exactly from the DP's state grid, without solving them.

Usage::

    .venv/bin/python benchmarks/bench_learning_priors.py
    .venv/bin/python benchmarks/bench_learning_priors.py --episodes 300 --scenarios learn-md-base

Writes ``docs/benchmarks/learning_priors.md`` (``--doc``), ``docs/img/learning_priors.png``
(``--img``) and the tables as CSV in ``--out``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from agents.dp import rule_grid  # noqa: E402
from agents.fluid import closed_form_values  # noqa: E402
from agents.policy import Policy, PolicyError, check_actions  # noqa: E402
from agents.ppo import PPOConfig  # noqa: E402
from benchmarks._docpage import machine_line, markdown_table  # noqa: E402
from envs.belief import BeliefGrid  # noqa: E402
from experiments.evaluate import EvalConfig, baseline_factories, prepare, score_agent  # noqa: E402
from experiments.market_base import simple_factory  # noqa: E402
from experiments.suite import RULE_PROFILES, get_spec, learning_training_catalog  # noqa: E402
from ingest.errors import ConfigError  # noqa: E402
from ingest.io import write_figure_atomic, write_frame_atomic, write_text_atomic  # noqa: E402

CANDIDATES = ("prior", "fluid_posterior", "dp_resolve", "qmdp", "lookahead")
"""The priors compared, cheapest first."""

MIN_WEIGHT = 1e-12
"""Grid points below this posterior weight in every slot are skipped by FluidPosterior."""


class FluidPosterior(Policy):
    """The best allowed action of the fluid values averaged over the posterior:
    ``argmax_a sum_g posterior_g F_g(state, a)``, where ``F_g`` is
    :func:`agents.fluid.closed_form_values` (PPO's prior) with grid point ``g``'s elasticity
    and demand level in place of the posterior mean. It is QMDP with the fluid model in place
    of each point's exact DP: it costs no solve, and shows how much of QMDP's lead over the
    prior comes from averaging over the posterior rather than from the exact values."""

    name = "fluid_posterior"
    requires_context = True

    def act(self, observations, masks, context=None):
        ctx = self._need_context(context)
        belief = ctx.belief
        if belief is None:
            raise PolicyError(
                f"policy {self.name!r} reads the posterior: play it in the learning env"
            )
        w = belief.weights()
        obs = np.asarray(observations)
        base = np.asarray(belief.estimate_base_demand, float)
        rows = np.arange(w.shape[0])
        total = np.zeros((w.shape[0], ctx.rules.n_actions))
        for g in np.flatnonzero((w > MIN_WEIGHT).any(axis=0)):
            cat = replace(ctx.catalog)
            cat.elasticity = belief.points_e[rows, g]
            cat.base_demand = base * np.exp(belief.points_l[rows, g])
            total += w[:, g, None] * closed_form_values(obs, replace(ctx, catalog=cat))
        allowed = np.asarray(masks, bool)
        actions = np.argmax(np.where(allowed, total, -np.inf), axis=1).astype(np.int64)
        check_actions(actions, masks, policy=self.name)
        return actions


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--suite", default="learning")
    parser.add_argument(
        "--scenarios", nargs="+", default=[], help="only these scenarios (default: the suite)"
    )
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--catalog-skus", type=int, default=PPOConfig().n_catalog_skus,
        help="training SKUs to size the Q-tables for (PPOConfig.n_catalog_skus)",
    )  # fmt: skip
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench_learning_priors"))
    parser.add_argument("--doc", default=str(ROOT / "docs" / "benchmarks" / "learning_priors.md"))
    parser.add_argument("--img", default=str(ROOT / "docs" / "img" / "learning_priors.png"))
    args = parser.parse_args(argv)
    if args.catalog_skus < 1:
        parser.error(f"--catalog-skus {args.catalog_skus}: expected >= 1")
    return args


def training_q_bytes(spec_grid: int, n_skus: int, seed: int) -> pd.DataFrame:
    """Per learning profile, the float32 Q-tables QMDP would need for PPO's training catalog:
    ``G x (H + 1) x (stock + 1) x rule states x actions x 4`` bytes per SKU, with ``H`` the
    longest training horizon (the DP of a SKU covers every horizon the env may draw)."""
    config = PPOConfig()
    horizon = config.horizon_range[1]
    n_points = BeliefGrid(spec_grid).n_points
    rows = []
    for profile in ("none", "markdown"):
        rules = RULE_PROFILES[profile]
        rng = np.random.default_rng(seed)
        cat = learning_training_catalog(n_skus, rng, profile=profile,
                                        horizon_range=config.horizon_range)  # fmt: skip
        states = rule_grid(rules, horizon).size
        per_sku = n_points * (horizon + 1) * (cat.initial_stock + 1) * states * rules.n_actions * 4
        rows.append({
            "profile": f"learning-{profile}", "training_skus": n_skus,
            "stock_median": float(np.median(cat.initial_stock)),
            "stock_max": float(cat.initial_stock.max()), "rule_states": states,
            "actions": rules.n_actions, "q_mb_median_sku": float(np.median(per_sku)) / 2**20,
            "q_mb_largest_sku": float(per_sku.max()) / 2**20,
            "q_gb_catalog": float(per_sku.sum()) / 2**30,
        })  # fmt: skip
    return pd.DataFrame(rows)


def _agents(suite: str) -> dict:
    base = baseline_factories(suite)
    out = {k: base[k] for k in CANDIDATES if k in base}
    out["fluid_posterior"] = simple_factory(FluidPosterior)
    return {k: out[k] for k in CANDIDATES}


def _figure(table: pd.DataFrame, path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.6))
    ax = fig.add_subplot()
    x = np.arange(len(table))
    markers = {"prior": "o", "fluid_posterior": "s", "dp_resolve": "v", "qmdp": "^",
               "lookahead": "D"}  # fmt: skip
    for i, label in enumerate(CANDIDATES):
        ax.plot(x + (i - 2) * 0.08, table[label], markers[label], ms=5, label=label)
    ax.set_xticks(x, table["scenario"], rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("% of the oracle")
    ax.set_title("Candidates for PPO's prior in the learning market, played on the same paths")
    ax.legend(fontsize=8, loc="lower left", ncol=5)
    fig.tight_layout()
    write_figure_atomic(fig, path)


def main(argv: list[str] | None = None) -> int:
    command = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    spec = get_spec(args.suite)
    if spec.market != "learning":
        raise SystemExit(f"bench_learning_priors.py --suite {args.suite}: not a learning suite")
    try:
        config = EvalConfig(suite=args.suite, n_episodes=args.episodes, seed=args.seed,
                            scenarios=tuple(args.scenarios))  # fmt: skip
    except ConfigError as err:
        raise SystemExit(f"bench_learning_priors.py: {err}") from None
    agents = _agents(args.suite)
    t_all = time.perf_counter()
    prep = prepare(config)
    records = []
    for p in prep:
        sol = p.solution
        t0 = time.perf_counter()
        q_mb = sol.q_tables.nbytes / 2**20  # built here, so the plays below do not time it
        rec: dict = {"scenario": p.scenario.name, "stock": float(p.scenario.catalog().initial_stock[0]),
                     "grid_solve_s": sol.solve_seconds, "q_tables_s": time.perf_counter() - t0,
                     "q_mb": q_mb}  # fmt: skip
        for label, factory in agents.items():
            t0 = time.perf_counter()
            row = score_agent([p], factory, agent=label, n_episodes=args.episodes)[0]
            rec[label] = row["pct_of_reference"]
            rec[f"{label}_ci"] = row["pct_of_reference_ci"]
            rec[f"{label}_play_s"] = time.perf_counter() - t0
        records.append(rec)
        print(f"bench_learning_priors: {p.scenario.name}: "
              + ", ".join(f"{k} {rec[k]:.2f}" for k in CANDIDATES),
              file=sys.stderr, flush=True)  # fmt: skip
    table = pd.DataFrame(records)
    sizes = training_q_bytes(spec.belief_grid, args.catalog_skus, args.seed)
    wall = time.perf_counter() - t_all
    out = Path(args.out)
    write_frame_atomic(table, out / "priors.csv")
    write_frame_atomic(sizes, out / "training_q_tables.csv")
    _figure(table, Path(args.img))
    summary = pd.DataFrame({
        "candidate": list(CANDIDATES),
        "suite_mean_pct": [table[c].mean() for c in CANDIDATES],
        "worst_pct": [table[c].min() for c in CANDIDATES],
        "gain_vs_prior": [table[c].mean() - table["prior"].mean() for c in CANDIDATES],
        "scenarios_above_prior": [int((table[c] > table["prior"] + table[f"{c}_ci"]).sum())
                                  for c in CANDIDATES],
        "play_s_per_1000_paths": [1000 * table[f"{c}_play_s"].sum() / args.episodes
                                  for c in CANDIDATES],
    })  # fmt: skip
    shown = ["scenario", "stock", *CANDIDATES, "grid_solve_s", "q_tables_s", "q_mb"]
    mean = summary.set_index("candidate")["suite_mean_pct"]
    fluid_avg = mean["fluid_posterior"] - mean["prior"]
    exact_avg = mean["qmdp"] - mean["dp_resolve"]
    verdict = (
        "Most of QMDP's lead is the exact stochastic values, which only the grid DPs give: "
        "a prior without them does not close the gap."
        if fluid_avg < 0.5 * exact_avg
        else "Averaging the fluid values over the posterior gets at least half of what it "
        "gets on the exact DPs: a prior without solves closes part of the gap."
    )
    lines = [
        "# What could PPO start from in the learning market?",
        "",
        f"Produced by `{shlex.join(['benchmarks/bench_learning_priors.py', *command])}`; "
        f"{machine_line()}. Wall time {wall:.0f} s.",
        "",
        f"Suite `{spec.name}` ({spec.version}, {spec.belief_grid} x {spec.belief_grid} prior "
        f"grid), {args.episodes} CRN paths per scenario, seed {args.seed} (the paths of "
        "`benchmarks/bench_learning.py`). 100 % is the oracle. `prior` is PPO's prior today "
        "(the fluid re-solve on the posterior mean); `fluid_posterior` averages the same fluid "
        "values over the posterior's grid points (QMDP on the fluid model: no solve); "
        "`dp_resolve`, `qmdp` and `lookahead` read every grid point's exact DP. "
        "`scenarios_above_prior`: scenarios where the candidate is above the prior by more "
        "than its paired 95 % CI; `play_s_per_1000_paths`: seconds to play 1,000 paths of "
        "every scenario (the env's own stepping included, the same for every candidate).",
        "",
        markdown_table(summary),
        "",
        "Weighing every grid point by the posterior instead of planning at the posterior "
        f"mean is worth **{fluid_avg:+.2f} points** on the fluid model (`fluid_posterior` "
        f"minus `prior`) and **{exact_avg:+.2f}** on the exact DPs (`qmdp` minus "
        f"`dp_resolve`). {verdict}",
        "",
        "Per scenario (% of the oracle; the grid DPs' solve time, the Q-tables' build time "
        "and size for the scenario's one SKU):",
        "",
        markdown_table(table[shown]),
        "",
        f"What a QMDP prior would need for PPO's training catalog ({args.catalog_skus} SKUs "
        "per profile drawn as `learning_training_catalog` draws them, horizon up to "
        f"{PPOConfig().horizon_range[1]} weeks; float32 Q-tables of every grid point, sized "
        "exactly from the DP's state grid, nothing solved):",
        "",
        markdown_table(sizes),
        "",
        f"![candidate priors](../img/{Path(args.img).name})",
        "",
    ]
    text = "\n".join(lines)
    write_text_atomic(Path(args.doc), text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
