"""Pricing while learning: train PPO in the learning market for several seeds, evaluate every
agent on the ``learning`` suite against the oracle, write ``docs/benchmarks/ppo_learning.md``
and the learning section of ``docs/agents.md``.

Usage::

    .venv/bin/python benchmarks/bench_learning.py                        # 5 seeds, defaults
    .venv/bin/python benchmarks/bench_learning.py --seeds 0 --steps 200000 --episodes 200
    .venv/bin/python benchmarks/bench_learning.py --eval-only            # saved models

Each (seed, profile) trains in one single-threaded process (``--jobs`` at a time). Every
agent plays the same truths and demand paths per scenario (common random numbers), so the
paired difference of PPO and a baseline on a scenario has a CI from the per-path
differences; the suite mean's CI adds the scenarios' variances (independent paths). The
strongest non-learning planner is the baseline with the best suite mean.
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
from experiments.suite import RULE_PROFILES, catalog_fn_for, get_spec  # noqa: E402
from experiments.train import PROFILE_TIMESTEPS  # noqa: E402
from ingest.io import write_frame_atomic, write_text_atomic  # noqa: E402

SUITE = "learning"
BASELINES = (
    "prior",
    "dp_resolve",
    "thompson",
    "dp_ce",
    "fluid",
    "myopic",
    "cover",
    "ladder",
    "none",
)
Z95 = 1.959963984540054


def _train_job(args: tuple[int, str, dict, str, int, int]) -> dict:
    seed, profile, overrides, out, curve_every, curve_episodes = args
    import torch

    torch.set_num_threads(1)
    spec = get_spec(SUITE)
    key = spec.policy_key(profile)
    steps = overrides.get("total_timesteps", PROFILE_TIMESTEPS[key])
    config = replace(
        PPOConfig(seed=seed),
        **{**overrides, "total_timesteps": steps},
        belief_grid=spec.belief_grid,
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


def _eval_job(args: tuple[str, int, int, list[int], str]) -> tuple[list[dict], list[dict]]:
    """Rows of every agent on one scenario, and the paired PPO-minus-baseline differences."""
    scenario, n_episodes, seed, seeds, out = args
    import torch

    torch.set_num_threads(1)
    spec = get_spec(SUITE)
    cfg = EvalConfig(suite=SUITE, n_episodes=n_episodes, seed=seed, scenarios=(scenario,))
    prep = prepare(cfg)
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
    profile = prep[0].scenario.profile
    for s in seeds:
        path = Path(out) / f"s{s}" / spec.policy_key(profile) / "model.zip"
        network = {spec.policy_key(profile): PPOPolicy.load(path)}
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
    p = prep[0]
    rows.append(score(p.reference_totals, p, agent="oracle", paired=paired_prior[0]))
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
    return rows, pairs


def targets(rows: pd.DataFrame, pairs: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """The strongest non-learning planner (best suite mean), and per PPO variant (guarded,
    raw) and seed: its suite mean minus the planner's with the paired 95 % CI, the scenarios
    it beats it on, its worst % of the oracle."""
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
        out.append(
            {
                "agent": agent,
                "seed": int(seed),
                "ppo_mean": float(ppo["pct_of_reference"].mean()),
                f"{strongest}_mean": best_mean,
                "diff": diff,
                "diff_ci": half,
                "ci_excludes_0": bool(diff - half > 0),
                "scenarios_won": f"{int((grp['diff_pct'] > 0).sum())}/{n}",
                "wins_two_thirds": bool(3 * int((grp["diff_pct"] > 0).sum()) >= 2 * n),
                "ppo_worst": float(ppo["pct_of_reference"].min()),
                "violations": int(ppo["violations"].sum()),
            }
        )
    return strongest, pd.DataFrame(out)


def render(out: Path, doc: Path, agents_doc: Path, img: Path, header: list[str]) -> str:
    """Write the benchmark page and the learning section of ``docs/agents.md``."""
    rows = pd.read_csv(out / "rows.csv")
    pairs = pd.read_csv(out / "pairs.csv")
    timing = pd.read_csv(out / "timing.csv") if (out / "timing.csv").exists() else None
    curves = pd.read_csv(out / "curves.csv") if (out / "curves.csv").exists() else None
    img.mkdir(parents=True, exist_ok=True)
    board = leaderboard(rows)
    agent_plots.leaderboard_bars(board, img / "learning_leaderboard.png", reference="oracle")
    strongest, target = targets(rows, pairs)
    summary = seed_summary(rows)
    per = per_scenario_across_seeds(rows)
    per = per[per["agent"] == "ppo"].rename(
        columns={"pct_of_dp": "pct_of_oracle", "pct_of_dp_seed_ci": "seed_ci"}
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
    if curves is not None and not curves.empty:
        base = rows[rows["agent"].isin(("prior", strongest))]
        spec = get_spec(SUITE)
        lines_by = {
            label: {
                spec.policy_key(p): float(g[g["profile"] == p]["pct_of_reference"].mean())
                for p in spec.profiles
            }
            for label, g in base.groupby("agent")
        }
        agent_plots.learning_curve(
            curves, img / "learning_curves.png", baselines=lines_by, reference="oracle"
        )
    body = [
        *header,
        "",
        f"Strongest non-learning planner (best suite mean): `{strongest}`.",
        "",
        "### Targets per training seed",
        "",
        "PPO's suite mean minus the strongest planner's (points of the oracle) with the "
        "paired 95 % CI (common random numbers: per-path differences, scenarios "
        "independent), the scenarios PPO beats it on, PPO's worst scenario:",
        "",
        markdown_table(target),
        "",
        "### Leaderboard (% of the oracle, every agent, every scenario)",
        "",
        markdown_table(board),
        "",
        "![leaderboard](../img/learning_leaderboard.png)",
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
    ]
    if curves is not None and not curves.empty:
        body += [
            "### Learning curves",
            "",
            "![learning curves](../img/learning_curves.png)",
            "",
        ]
    if timing is not None:
        body += ["### Training time", "", markdown_table(timing), ""]
    text = "# PPO in the learning market\n\n" + "\n".join(body)
    write_text_atomic(doc, text)
    section = "\n".join(line.replace("../img/", "img/") for line in body)
    write_section(agents_doc, "learning-report", section, title="Agents")
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
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench_learning"))
    parser.add_argument("--doc", default=str(ROOT / "docs" / "benchmarks" / "ppo_learning.md"))
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
    write_frame_atomic(pd.DataFrame([r for rows, _ in parts_out for r in rows]), out / "rows.csv")
    write_frame_atomic(pd.DataFrame([r for _, pr in parts_out for r in pr]), out / "pairs.csv")
    steps = {k: overrides.get("total_timesteps", PROFILE_TIMESTEPS[k]) for k in keys}
    header = [
        f"Produced by `benchmarks/bench_learning.py {' '.join(argv or sys.argv[1:])}` on "
        f"{platform.node() or 'unknown host'} ({os.cpu_count()} CPUs, {args.jobs} processes), "
        f"suite `{spec.name}` ({spec.version}, {spec.belief_grid} x {spec.belief_grid} prior "
        f"grid), {args.episodes} CRN paths (truth draw + demand) per scenario, seeds {seeds}, "
        f"steps per policy {steps}" + (f", PPO overrides {overrides}" if overrides else "") + ".",
        "",
        args.note,
        "",
        f"Wall time: training {train_wall:.0f} s, evaluation {eval_wall:.0f} s.",
    ]
    print(render(out, Path(args.doc), Path(args.agents_doc), Path(args.img), header))
    return 0


if __name__ == "__main__":
    sys.exit(main())
