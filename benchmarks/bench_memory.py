"""Demand with memory: train PPO in the memory market for several seeds, evaluate every agent
on the ``memory`` suite against the augmented-state DP, write ``docs/benchmarks/ppo_memory.md``
and the "Demand with memory" section of ``docs/agents.md``.

Usage::

    .venv/bin/python benchmarks/bench_memory.py                          # 5 seeds, defaults
    .venv/bin/python benchmarks/bench_memory.py --seeds 0 --steps 300000 --episodes 500
    .venv/bin/python benchmarks/bench_memory.py --eval-only              # saved models

Each (seed, profile) trains in one single-threaded process (``--jobs`` at a time). Every
agent plays the same demand paths per scenario (common random numbers), so the paired
difference of PPO and a baseline on a scenario has a CI from the per-path differences; the
suite mean's CI adds the scenarios' variances (independent paths). The strongest
non-learning planner is the baseline with the best suite mean. The page also reports the
augmented DP's discretization error (its value on the grid against the simulated value of
its own policy) for the suite's grid and a coarser one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from agents.dp_memory import MemoryDPPolicy, solve_memory  # noqa: E402
from agents.ppo import PPOConfig, PPOPolicy, train_ppo  # noqa: E402
from benchmarks._docpage import markdown_table, write_section  # noqa: E402
from experiments import agent_plots  # noqa: E402
from experiments.curves import CurveCallback  # noqa: E402
from experiments.evaluate import (  # noqa: E402
    EvalConfig,
    baseline_factories,
    leaderboard,
    per_scenario_across_seeds,
    ppo_factory,
    prepare,
    score,
    score_agent,
    seed_summary,
)
from experiments.memory_market import play_memory  # noqa: E402
from experiments.suite import RULE_PROFILES, catalog_fn_for, get_spec  # noqa: E402
from experiments.train import PROFILE_TIMESTEPS  # noqa: E402
from ingest.io import write_frame_atomic, write_text_atomic  # noqa: E402

SUITE = "memory"
REFERENCE = "augmented_dp"
BASELINES = ("prior", "dp_blind", "fluid", "myopic", "cover", "ladder", "none")
COARSE_GRID = (5, 3)
"""The coarser grid whose discretization error the page reports beside the suite's."""
Z95 = 1.959963984540054


def _train_job(args: tuple[int, str, dict, str, int, int]) -> dict:
    seed, profile, overrides, out, curve_every, curve_episodes = args
    import torch

    torch.set_num_threads(1)
    spec = get_spec(SUITE)
    key = spec.policy_key(profile)
    steps = overrides.get("total_timesteps", PROFILE_TIMESTEPS[key])
    config = replace(
        PPOConfig(seed=seed), **{**overrides, "total_timesteps": steps}, demand_memory=True
    )
    names = tuple(s.name for s in spec.scenarios if s.profile == profile)
    rows: list[dict] = []
    callbacks: list[CurveCallback] = []
    if curve_every:
        prep = prepare(EvalConfig(suite=SUITE, n_episodes=curve_episodes, scenarios=names))
        cb = CurveCallback(key, prep, curve_every, curve_episodes, rows, log_to_mlflow=False)
        callbacks.append(cb)
    t0 = time.process_time()
    result = train_ppo(
        config,
        RULE_PROFILES[profile],
        checkpoint_dir=Path(out) / f"s{seed}" / key,
        callbacks=list(callbacks),
        catalog_fn=catalog_fn_for(spec, profile),
    )
    cpu = time.process_time() - t0
    eval_s = sum(c.eval_seconds for c in callbacks)
    eval_cpu = sum(c.eval_cpu_seconds for c in callbacks)
    for r in rows:
        r["seed"] = seed
    job = Path(out) / f"s{seed}" / key
    pd.DataFrame(rows).to_csv(job / "curve.csv", index=False)
    timing = {"seed": seed, "profile": key, "steps": result.num_timesteps}
    timing.update(wall_seconds=result.wall_seconds - eval_s, cpu_seconds=cpu - eval_cpu)
    (job / "timing.json").write_text(json.dumps(timing))
    return timing


def _eval_job(args: tuple[str, int, int, list[int], str]) -> tuple[list[dict], list[dict], dict]:
    """Rows of every agent on one scenario, the paired PPO-minus-baseline differences, and
    the augmented DP's discretization error on two grids."""
    scenario, n_episodes, seed, seeds, out = args
    import torch

    torch.set_num_threads(1)
    spec = get_spec(SUITE)
    cfg = EvalConfig(suite=SUITE, n_episodes=n_episodes, seed=seed, scenarios=(scenario,))
    prep = prepare(cfg)
    p = prep[0]
    base = baseline_factories(SUITE)
    totals: dict[str, np.ndarray] = {}
    rows: list[dict] = []
    paired_prior = None
    for label in BASELINES:
        keep: list[pd.DataFrame] = []
        rows += score_agent(
            prep, base[label], agent=label, n_episodes=n_episodes, paired=paired_prior, keep=keep
        )
        totals[label] = keep[0]["objective"].to_numpy(float)
        if label == "prior":
            paired_prior = keep
    for s in seeds:
        path = Path(out) / f"s{s}" / spec.policy_key(p.scenario.profile) / "model.zip"
        network = {spec.policy_key(p.scenario.profile): PPOPolicy.load(path)}
        # ppo: guarded by its prior per SKU (agents.guard); ppo_raw: the network alone
        for label, guard in ((f"ppo/s{s}", True), (f"ppo_raw/s{s}", False)):
            keep = []
            rows += score_agent(
                prep,
                ppo_factory(network, SUITE, guard=guard),
                agent=label,
                n_episodes=n_episodes,
                seed=s,
                paired=paired_prior,
                keep=keep,
            )
            totals[label] = keep[0]["objective"].to_numpy(float)
    rows.append(score(p.reference_totals, p, agent=REFERENCE, paired=paired_prior[0]))
    v = p.reference_value
    pairs = []
    for s, agent in ((s, a) for s in seeds for a in ("ppo", "ppo_raw")):
        x = totals[f"{agent}/s{s}"]
        for label in BASELINES:
            d = x - totals[label]
            pairs.append(
                {
                    "scenario": scenario,
                    "agent": agent,
                    "seed": s,
                    "baseline": label,
                    "diff_pct": 100.0 * d.mean() / v,
                    "diff_se": 100.0 * d.std(ddof=1) / np.sqrt(d.size) / v,
                }
            )
    return rows, pairs, _discretization(p, n_episodes)


def _discretization(p, n_episodes: int) -> dict:
    """Value on the grid minus the simulated value of the grid's own policy, for the suite's
    grid and :data:`COARSE_GRID` (same paths), in % of the simulated value."""
    s = p.scenario
    out: dict = {"scenario": s.name}
    for tag, (n_ref, n_fat), sol, sim in (
        ("suite", p.solution.grid.shape, p.solution, p.reference_totals),
        ("coarse", COARSE_GRID, None, None),
    ):
        if sol is None:
            sol = solve_memory(s.catalog(), s.rules, s.horizon_weeks, n_ref=n_ref, n_fatigue=n_fat)
            sim = play_memory(MemoryDPPolicy(sol), s, n_episodes=n_episodes, seed=p.seed)
        x = sim["objective"].to_numpy(float)
        half = Z95 * x.std(ddof=1) / np.sqrt(x.size)
        out[f"{tag}_grid"] = f"{n_ref} x {n_fat}"
        out[f"{tag}_value"] = sol.value
        out[f"{tag}_simulated"] = float(x.mean())
        out[f"{tag}_error_pct"] = 100.0 * (sol.value - x.mean()) / x.mean()
        out[f"{tag}_ci_pct"] = 100.0 * half / x.mean()
        out[f"{tag}_solve_s"] = sol.solve_seconds
    return out


def targets(rows: pd.DataFrame, pairs: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """The strongest non-learning planner (best suite mean), and per PPO variant (guarded,
    raw) and seed: its suite mean minus the planner's with the paired 95 % CI, the scenarios
    it beats it on, its worst % of the augmented DP."""
    base = rows[rows["agent"].isin(BASELINES)]
    strongest = str(base.groupby("agent")["pct_of_reference"].mean().idxmax())
    best_mean = float(base[base["agent"] == strongest]["pct_of_reference"].mean())
    out = []
    chosen = pairs[pairs["baseline"] == strongest]
    for (agent, seed), grp in chosen.groupby(["agent", "seed"], sort=False):
        n = len(grp)
        diff = float(grp["diff_pct"].mean())
        half = Z95 * float(np.sqrt((grp["diff_se"] ** 2).sum())) / n
        ppo = rows[rows["agent"] == f"{agent}/s{int(seed)}"]
        won = int((grp["diff_pct"] > 0).sum())
        out.append(
            {
                "agent": agent,
                "seed": int(seed),
                "ppo_mean": float(ppo["pct_of_reference"].mean()),
                f"{strongest}_mean": best_mean,
                "diff": diff,
                "diff_ci": half,
                "ci_excludes_0": bool(diff - half > 0),
                "scenarios_won": f"{won}/{n}",
                "wins_two_thirds": bool(3 * won >= 2 * n),
                "ppo_worst": float(ppo["pct_of_reference"].min()),
                "worst_ge_97": bool(float(ppo["pct_of_reference"].min()) >= 97.0),
                "violations": int(ppo["violations"].sum()),
            }
        )
    return strongest, pd.DataFrame(out)


def render(out: Path, doc: Path, agents_doc: Path, img: Path, header: list[str]) -> str:
    """Write the benchmark page and the memory section of ``docs/agents.md``."""
    rows = pd.read_csv(out / "rows.csv")
    pairs = pd.read_csv(out / "pairs.csv")
    disc = pd.read_csv(out / "discretization.csv")
    timing = pd.read_csv(out / "timing.csv") if (out / "timing.csv").exists() else None
    curves = pd.read_csv(out / "curves.csv") if (out / "curves.csv").exists() else None
    img.mkdir(parents=True, exist_ok=True)
    board = leaderboard(rows)
    agent_plots.leaderboard_bars(board, img / "memory_leaderboard.png", reference=REFERENCE)
    strongest, target = targets(rows, pairs)
    summary = seed_summary(rows)
    per = per_scenario_across_seeds(rows)
    per = per[per["agent"] == "ppo"].rename(
        columns={"pct_of_dp": "pct_of_augmented_dp", "pct_of_dp_seed_ci": "seed_ci"}
    )
    for label in ("prior", strongest):
        sub = rows[rows["agent"] == label].set_index("scenario")["pct_of_reference"]
        per[label] = per["scenario"].map(sub)
    by_scenario = (
        pairs[(pairs["baseline"] == strongest) & (pairs["agent"] == "ppo")]
        .groupby("scenario", sort=False)["diff_pct"]
        .agg(["mean", "min", "max"])
        .rename(columns=lambda c: f"ppo_minus_{strongest}_{c}")
        .reset_index()
    )
    per = per.merge(by_scenario, on="scenario", how="left")
    spec = get_spec(SUITE)
    if curves is not None and not curves.empty:
        base = rows[rows["agent"].isin(("prior", strongest))]
        lines_by = {
            label: {
                spec.policy_key(p): float(g[g["profile"] == p]["pct_of_reference"].mean())
                for p in spec.profiles
            }
            for label, g in base.groupby("agent")
        }
        agent_plots.learning_curve(
            curves, img / "memory_curves.png", baselines=lines_by, reference=REFERENCE
        )
    body = [
        *header,
        "",
        f"Strongest non-learning planner (best suite mean): `{strongest}`.",
        "",
        "### Targets per training seed",
        "",
        "PPO's suite mean minus the strongest planner's (points of the augmented DP) with "
        "the paired 95 % CI (common random numbers: per-path differences, scenarios "
        "independent), the scenarios PPO beats it on, PPO's worst scenario (target >= 97 %):",
        "",
        markdown_table(target),
        "",
        "### Leaderboard (% of the augmented DP, every agent, every scenario)",
        "",
        markdown_table(board),
        "",
        "![leaderboard](../img/memory_leaderboard.png)",
        "",
        "PPO across training seeds (mean ± 95 % CI across seeds):",
        "",
        markdown_table(summary),
        "",
        "### Per scenario",
        "",
        "PPO (mean over seeds), its paired gain over its prior (mean over seeds), the prior, "
        f"the strongest planner `{strongest}`, and PPO minus it (mean, worst and best seed):",
        "",
        markdown_table(per.drop(columns=["agent"])),
        "",
        "### The yardstick's discretization error",
        "",
        "The augmented DP's value on its grid minus the simulated value of its own policy "
        "(same CRN paths), in % of the simulated value, with the simulation's 95 % CI "
        f"half-width, for the suite's grid and a coarser {COARSE_GRID[0]} x {COARSE_GRID[1]}:",
        "",
        markdown_table(disc),
        "",
    ]
    if curves is not None and not curves.empty:
        body += ["### Learning curves", "", "![learning curves](../img/memory_curves.png)", ""]
    if timing is not None:
        body += ["### Training time", "", markdown_table(timing), ""]
    text = "# PPO in the memory market\n\n" + "\n".join(body)
    write_text_atomic(doc, text)
    section = "\n".join(line.replace("../img/", "img/") for line in body)
    write_section(agents_doc, "memory-report", section, title="Agents")
    return text


def main(argv: list[str] | None = None) -> int:
    import torch

    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--profiles", default=",".join(get_spec(SUITE).profiles))
    parser.add_argument("--steps", type=int, default=None, help="steps per profile")
    parser.add_argument("--set", action="append", default=[], help="PPO override key=value")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--curve-every", type=int, default=1_000_000)
    parser.add_argument("--curve-episodes", type=int, default=200)
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench_memory"))
    parser.add_argument("--doc", default=str(ROOT / "docs" / "benchmarks" / "ppo_memory.md"))
    parser.add_argument("--agents-doc", default=str(ROOT / "docs" / "agents.md"))
    parser.add_argument("--img", default=str(ROOT / "docs" / "img"))
    parser.add_argument("--note", default="", help="a line about the machine's load")
    parser.add_argument("--eval-only", action="store_true", help="evaluate saved models")
    args = parser.parse_args(argv)

    seeds = [int(s) for s in args.seeds.split(",")]
    profiles = [p for p in args.profiles.split(",") if p]
    overrides: dict = {}
    if args.steps:
        overrides["total_timesteps"] = args.steps
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = json.loads(value)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    spec = get_spec(SUITE)
    t0 = time.perf_counter()
    if not args.eval_only:
        jobs = [
            (s, p, overrides, str(out), args.curve_every, args.curve_episodes)
            for s in seeds
            for p in profiles
        ]
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            list(pool.map(_train_job, jobs))
    train_wall = time.perf_counter() - t0
    keys = [spec.policy_key(p) for p in profiles]
    seeds = [s for s in seeds if all((out / f"s{s}" / k / "model.zip").exists() for k in keys)]
    recs = [
        json.loads((out / f"s{s}" / k / "timing.json").read_text())
        for s in seeds
        for k in keys
        if (out / f"s{s}" / k / "timing.json").exists()
    ]
    if recs:
        write_frame_atomic(pd.DataFrame(recs), out / "timing.csv")
    parts = [
        pd.read_csv(out / f"s{s}" / k / "curve.csv")
        for s in seeds
        for k in keys
        if (out / f"s{s}" / k / "curve.csv").exists()
        and (out / f"s{s}" / k / "curve.csv").stat().st_size > 1
    ]
    if parts:
        write_frame_atomic(pd.concat(parts, ignore_index=True), out / "curves.csv")
    t1 = time.perf_counter()
    scenarios = [s.name for s in spec.scenarios if s.profile in profiles]
    eval_jobs = [(name, args.episodes, 2026, seeds, str(out)) for name in scenarios]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        parts_out = list(pool.map(_eval_job, eval_jobs))
    eval_wall = time.perf_counter() - t1
    write_frame_atomic(
        pd.DataFrame([row for rows, _, _ in parts_out for row in rows]), out / "rows.csv"
    )
    write_frame_atomic(pd.DataFrame([x for _, pr, _ in parts_out for x in pr]), out / "pairs.csv")
    write_frame_atomic(pd.DataFrame([d for _, _, d in parts_out]), out / "discretization.csv")
    steps = {k: overrides.get("total_timesteps", PROFILE_TIMESTEPS[k]) for k in keys}
    n_ref, n_fat = spec.memory_grid
    header = [
        f"Produced by `benchmarks/bench_memory.py {' '.join(argv or sys.argv[1:])}` on "
        f"{platform.node() or 'unknown host'} ({os.cpu_count()} CPUs, {args.jobs} processes), "
        f"suite `{spec.name}` ({spec.version}, {n_ref} x {n_fat} reference-price x fatigue "
        f"grid), {args.episodes} CRN demand paths per scenario, seeds {seeds}, steps per "
        f"policy {steps}" + (f", PPO overrides {overrides}" if overrides else "") + ".",
        "",
        args.note,
        "",
        f"Wall time: training {train_wall:.0f} s, evaluation {eval_wall:.0f} s.",
    ]
    print(render(out, Path(args.doc), Path(args.agents_doc), Path(args.img), header))
    return 0


if __name__ == "__main__":
    sys.exit(main())
