"""PPO training to the target: train every rule profile for several seeds, evaluate on the
standard suite against the DP and the baselines, write ``docs/benchmarks/ppo.md``.

Usage::

    .venv/bin/python benchmarks/bench_ppo.py                      # 5 seeds, defaults
    .venv/bin/python benchmarks/bench_ppo.py --jobs 16            # on a 16-core machine
    .venv/bin/python benchmarks/bench_ppo.py --seeds 0 --steps 300000 --episodes 500  # quick

Each (seed, profile) is one single-threaded training process (``torch.set_num_threads(1)``);
``--jobs`` runs that many at once. Training time is measured per process, excluding the
learning-curve evaluations; "2-core wall" is the CPU time of a seed's four profiles divided by
two (two profiles train at a time on two cores). Outputs (models, curves, rows) go to
``--out`` (default ``runs/bench_ppo``); ``benchmarks/agents_report.py`` turns them into the
figures and tables of ``docs/agents.md``.
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

from agents.ppo import (  # noqa: E402
    PPOConfig,
    PPOPolicy,
    member_folder,
    member_seed,
    train_ppo,
)
from app.config import load_config  # noqa: E402
from benchmarks._docpage import markdown_table  # noqa: E402
from benchmarks._members import finished, timing_records  # noqa: E402
from experiments.curves import CurveCallback  # noqa: E402
from experiments.evaluate import (  # noqa: E402
    EvalConfig,
    baseline_factories,
    evaluate_suite,
    leaderboard,
    per_scenario_across_seeds,
    ppo_factory,
    prepare,
    seed_summary,
    with_raw_columns,
)
from experiments.policy_model import load_members, load_snapshots  # noqa: E402
from experiments.suite import RULE_PROFILES, SUITE_VERSION, get_suite, training_catalog  # noqa: E402
from experiments.train import PROFILE_TIMESTEPS  # noqa: E402
from ingest.io import write_frame_atomic, write_text_atomic  # noqa: E402

BASELINES = ("prior", "fluid", "myopic", "fixed", "cover", "ladder", "none")
"""Non-learned agents played beside PPO; ``prior`` (PPO's starting point) first, so every row
carries its paired gain over it."""

MEDIAN_TARGET, WORST_TARGET = 99.5, 98.0
"""The issue's per-seed targets on the standard suite (% of the DP)."""

SMALL_STOCK = 20
"""Scenarios with at most this many units are played on ``--small-stock-factor`` times the
paths: with 10 units a plan's profit is a few coin flips, and at 2,000 paths their % of the DP
carries a paired 95 % CI of 0.8-1.0 points (0.1-0.3 on the other scenarios), as wide as the
distance to the worst-scenario target. Four weeks of ten units cost little to simulate."""


def episodes_for(scenario, episodes: int, small_stock_factor: int) -> int:
    """CRN paths on which ``scenario`` is evaluated (every agent on the same ones)."""
    return episodes * (small_stock_factor if scenario.initial_stock <= SMALL_STOCK else 1)


def _train_job(args: tuple[int, str, dict, str, int, int, str, bool, int]) -> dict:
    seed, profile, overrides, out, curve_every, curve_episodes, suite, keep, member = args
    import torch

    torch.set_num_threads(1)
    config = replace(
        PPOConfig(seed=member_seed(seed, member)), **overrides.get(profile, overrides["*"])
    )
    job = member_folder(Path(out) / f"s{seed}" / profile, member)
    done = finished(job, config.total_timesteps)
    if done is not None:
        print(f"bench_ppo: {job} already trained; kept", file=sys.stderr)
        return {**done, "member": member}
    if member:  # the learning curve is the run's own (member 0)
        curve_every = 0
    names = tuple(s.name for s in get_suite(suite) if s.profile == profile)
    rows: list[dict] = []
    callbacks: list[CurveCallback] = []
    if curve_every:
        prep = prepare(EvalConfig(suite=suite, n_episodes=curve_episodes, scenarios=names))
        cb = CurveCallback(profile, prep, curve_every, curve_episodes, rows, log_to_mlflow=False)
        callbacks.append(cb)
    t0 = time.process_time()
    result = train_ppo(
        config,
        RULE_PROFILES[profile],
        checkpoint_dir=job,
        callbacks=list(callbacks),
        catalog_fn=lambda n, rng: training_catalog(n, rng, profile=profile),
        keep_snapshots=keep,
    )
    cpu = time.process_time() - t0
    eval_s = sum(c.eval_seconds for c in callbacks)
    eval_cpu = sum(c.eval_cpu_seconds for c in callbacks)
    for r in rows:
        r["seed"] = seed
    # each job leaves its own record, so an interrupted benchmark keeps what finished
    write_frame_atomic(pd.DataFrame(rows), job / "curve.csv")
    timing = {"seed": seed, "profile": profile, "member": member, "steps": result.num_timesteps}
    timing.update(wall_seconds=result.wall_seconds - eval_s, cpu_seconds=cpu - eval_cpu)
    write_text_atomic(job / "timing.json", json.dumps(timing))
    return {
        "seed": seed,
        "profile": profile,
        "member": member,
        "steps": result.num_timesteps,
        "wall_seconds": result.wall_seconds - eval_s,
        "cpu_seconds": cpu - eval_cpu,
        "curve": rows,
    }


def _eval_job(args: tuple[str, int, int, list[int], str, int]) -> list[dict]:
    scenario, n_episodes, seed, seeds, out, _ = args
    import torch

    torch.set_num_threads(1)
    cfg = EvalConfig(n_episodes=n_episodes, seed=seed, scenarios=(scenario,))
    profile = next(s.profile for s in get_suite() if s.name == scenario)
    agents = {}
    labels = {}
    for s in seeds:
        policy = PPOPolicy.load(Path(out) / f"s{s}" / profile / "model.zip")
        # ppo: guarded by its prior per SKU (agents.guard); ppo_raw: the network alone
        agents[f"ppo/s{s}"] = ppo_factory({profile: policy})
        agents[f"ppo_raw/s{s}"] = ppo_factory({profile: policy}, guard=False)
        labels[f"ppo/s{s}"] = labels[f"ppo_raw/s{s}"] = s
        # ppo_snap: the guard choosing among the run's late snapshots too (--keep-snapshots)
        more = load_snapshots(Path(out) / f"s{s}" / profile / "model.zip")
        if more:
            agents[f"ppo_snap/s{s}"] = ppo_factory({profile: policy}, alternatives=more)
            labels[f"ppo_snap/s{s}"] = s
        # ppo_ens: the guard choosing among the final networks of the seed's members (--members)
        members = load_members(Path(out) / f"s{s}" / profile / "model.zip")
        if members:
            agents[f"ppo_ens/s{s}"] = ppo_factory({profile: policy}, alternatives=members)
            labels[f"ppo_ens/s{s}"] = s
    base = baseline_factories()
    agents.update({b: base[b] for b in BASELINES})
    rows = evaluate_suite(cfg, agents, seeds=labels, progress=False)
    return rows.to_dict(orient="records")


def curves_from_log(log: Path, seeds: list[int]) -> pd.DataFrame:
    """Learning curves of an interrupted run, from its log's ``curve <profile>: <steps>
    steps, % of DP mean <m> worst <w>`` lines. Jobs start in seed order, so the k-th line
    for a (profile, steps) pair is the k-th seed's."""
    import re

    pattern = re.compile(r"curve (\w+): ([\d,]+) steps, % of DP mean ([\d.]+) worst ([\d.]+)")
    seen: dict[tuple[str, int], int] = {}
    rows = []
    for line in log.read_text(encoding="utf-8").splitlines():
        m = pattern.search(line)
        if not m:
            continue
        profile, steps = m.group(1), int(m.group(2).replace(",", ""))
        k = seen.get((profile, steps), 0)
        seen[(profile, steps)] = k + 1
        if k < len(seeds):
            rows.append(
                {
                    "profile": profile,
                    "timesteps": steps,
                    "pct_mean": float(m.group(3)),
                    "pct_min": float(m.group(4)),
                    "seed": seeds[k],
                }
            )
    return pd.DataFrame(rows)


def paths_line(rows: pd.DataFrame) -> str:
    """How many CRN paths each scenario was played on, from the rows themselves."""
    per = rows.groupby("scenario")["n_episodes"].max()
    counts = per.value_counts().sort_index(ascending=False)
    if len(counts) == 1:
        return f"{int(counts.index[0])} CRN demand paths per scenario"
    parts = []
    for n in counts.index:
        names = sorted(per.index[per == n])
        parts.append(
            f"{int(n):,} on "
            + (
                ", ".join(f"`{x}`" for x in names)
                if len(names) <= 6
                else f"the other {len(names)} scenarios"
            )
        )
    return "CRN demand paths per scenario: " + "; ".join(parts)


def seed_targets(
    rows: pd.DataFrame,
    family: str,
    fluid_mean: float,
    timing: pd.DataFrame | None,
    *,
    all_members: bool = False,
) -> pd.DataFrame:
    """Per training seed of agent ``family``: median, worst and mean % of the DP, scenarios
    below the prior beyond the paired CI, whether the issue's targets hold, violations and the
    training CPU seconds (of the seed's own networks, or with ``all_members`` of every
    ensemble member)."""
    ppo_rows = rows[rows["agent"].str.startswith(f"{family}/")].copy()
    ppo_rows["seed"] = ppo_rows["seed"].astype(int)
    out = (
        ppo_rows.groupby("seed")["pct_of_dp"]
        .agg(median="median", worst="min", mean="mean")
        .reset_index()
    )
    below = (ppo_rows["gain_vs_prior_pct"] + ppo_rows["gain_vs_prior_ci"]) < 0
    out["below_prior"] = below.groupby(ppo_rows["seed"]).sum().to_numpy()
    out["meets_targets"] = (
        (out["median"] >= MEDIAN_TARGET)
        & (out["worst"] >= WORST_TARGET)
        & (out["below_prior"] == 0)
    )
    out["beats_fluid_on_avg"] = out["mean"] > fluid_mean
    out["violations"] = ppo_rows.groupby("seed")["violations"].sum().to_numpy()
    if timing is not None:
        if not all_members and "member" in timing:
            timing = timing[timing["member"].fillna(0) == 0]
        cpu_by_seed = timing.groupby("seed")["cpu_seconds"].sum()
        out["train_cpu_s"] = out["seed"].map(cpu_by_seed)
        out["two_core_wall_s"] = out["train_cpu_s"] / 2
    return out


def main(argv: list[str] | None = None) -> int:
    import torch

    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--profiles", default=",".join(RULE_PROFILES))
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="total_timesteps for every profile (default: experiments.train.PROFILE_TIMESTEPS)",
    )
    parser.add_argument(
        "--profile-steps",
        default="",
        help="steps of some profiles, e.g. markdown=8000000,all=10000000 (on top of the default)",
    )
    parser.add_argument("--set", action="append", default=[], help="PPO override key=value")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--keep-snapshots",
        action="store_true",
        help="keep every checkpoint of each training (snapshots/ beside model.zip); the "
        "evaluation then adds ppo_snap, the guard choosing per SKU among the second half's "
        "snapshots and the prior",
    )
    parser.add_argument(
        "--members",
        type=int,
        default=1,
        help="networks trained per (seed, profile), each from a seed of its own "
        "(agents.ppo.member_seed; member 0 is the seed's usual network, kept when --out "
        "already has it); with two or more the evaluation adds ppo_ens, the guard choosing per "
        "SKU among the members' final networks and the prior",
    )
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument(
        "--small-stock-factor",
        type=int,
        default=10,
        help=f"scenarios with at most {SMALL_STOCK} units are played on this many times "
        "--episodes paths (their CI is the widest)",
    )
    parser.add_argument("--curve-every", type=int, default=1_000_000)
    parser.add_argument("--curve-episodes", type=int, default=200)
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench_ppo"))
    parser.add_argument("--doc", default=str(ROOT / "docs" / "benchmarks" / "ppo.md"))
    parser.add_argument("--note", default="", help="a line about the machine's load")
    parser.add_argument(
        "--eval-only",
        action="store_true",
        help="skip training: evaluate the seeds whose every profile has a model in --out",
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="rewrite the page from the rows, timing and wall times saved in --out (no training, "
        "no evaluation)",
    )
    parser.add_argument(
        "--recover-log",
        help="with --eval-only: rebuild the learning curves of an interrupted run from its log",
    )
    args = parser.parse_args(argv)
    if args.small_stock_factor < 1:  # before any training, not after it
        raise SystemExit(f"--small-stock-factor = {args.small_stock_factor}; expected >= 1")
    if args.members < 1:
        raise SystemExit(f"--members = {args.members}; expected >= 1")

    seeds = [int(s) for s in args.seeds.split(",")]
    profiles = [p for p in args.profiles.split(",") if p]
    overrides: dict = {}
    if args.steps:
        overrides["total_timesteps"] = args.steps
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = json.loads(value)
    load_config(PPOConfig, overrides=overrides)  # validate early, naming a bad key
    steps = {} if args.steps else dict(PROFILE_TIMESTEPS)
    for item in filter(None, args.profile_steps.split(",")):
        key, _, value = item.partition("=")
        if key not in RULE_PROFILES:
            raise SystemExit(f"--profile-steps: {key!r} is not a profile of {list(RULE_PROFILES)}")
        steps[key] = int(value)
    per_profile = {"*": overrides}
    per_profile.update({p: {**overrides, "total_timesteps": n} for p, n in steps.items()})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    jobs = [
        (
            s,
            p,
            per_profile,
            str(out),
            args.curve_every,
            args.curve_episodes,
            "standard",
            args.keep_snapshots,
            m,
        )
        for s in seeds
        for p in profiles
        for m in range(args.members)
    ]
    walls_path = out / "walls.json"
    if args.render_only:
        if not (out / "rows.csv").exists():
            raise SystemExit(f"--render-only: no rows.csv in {out}; run the benchmark first")
        rows = pd.read_csv(out / "rows.csv")
        seeds = sorted(int(x) for x in rows["seed"].dropna().unique())
        timing = pd.read_csv(out / "timing.csv") if (out / "timing.csv").exists() else None
        walls = json.loads(walls_path.read_text()) if walls_path.exists() else {}
        train_wall = float(walls.get("train_wall", float("nan")))
        eval_wall = float(walls.get("eval_wall", float("nan")))
        args.jobs = int(walls.get("jobs", args.jobs))  # the run's processes, not this call's
    elif args.eval_only:
        seeds = [
            s for s in seeds if all((out / f"s{s}" / p / "model.zip").exists() for p in profiles)
        ]
        if not seeds:
            raise SystemExit(f"--eval-only: no seed has a model for every profile in {out}")
        print(f"bench_ppo: evaluating saved models of seeds {seeds}", file=sys.stderr)
        timing = timing_records([out / f"s{s}" / p for s in seeds for p in profiles])
        curve_parts = [
            pd.read_csv(out / f"s{s}" / p / "curve.csv").assign(seed=s)
            for s in seeds
            for p in profiles
            if (out / f"s{s}" / p / "curve.csv").exists()
            and (out / f"s{s}" / p / "curve.csv").stat().st_size > 1
        ]
        if args.recover_log:
            curve_parts.insert(0, curves_from_log(Path(args.recover_log), seeds))
        if curve_parts:
            curve = pd.concat(curve_parts, ignore_index=True)
            curve = curve.drop_duplicates(subset=["seed", "profile", "timesteps"], keep="last")
            curve = curve.sort_values(["profile", "seed", "timesteps"], ignore_index=True)
            write_frame_atomic(curve, out / "curves.csv")
        # re-evaluating a run's policies keeps that run's training wall time, if recorded
        train_wall = float("nan")
        if walls_path.exists():
            train_wall = float(json.loads(walls_path.read_text()).get("train_wall", train_wall))
    else:
        print(f"bench_ppo: {len(jobs)} trainings on {args.jobs} processes", file=sys.stderr)
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            trained = list(pool.map(_train_job, jobs))
        train_wall = time.perf_counter() - t0
        timing = pd.DataFrame([{k: v for k, v in t.items() if k != "curve"} for t in trained])
        curve = pd.DataFrame([r for t in trained for r in t["curve"]])
        write_frame_atomic(timing, out / "timing.csv")
        if not curve.empty:
            write_frame_atomic(curve, out / "curves.csv")

    if not args.render_only:
        t1 = time.perf_counter()
        eval_jobs = [
            (s.name, episodes_for(s, args.episodes, args.small_stock_factor), 2026, seeds,
             str(out), 0)
            for s in get_suite()
            if s.profile in profiles
        ]  # fmt: skip
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            parts = list(pool.map(_eval_job, eval_jobs))
        eval_wall = time.perf_counter() - t1
        rows = pd.DataFrame([r for part in parts for r in part])
        write_frame_atomic(rows, out / "rows.csv")
        walls = {"train_wall": train_wall, "eval_wall": eval_wall, "jobs": args.jobs}
        write_text_atomic(walls_path, json.dumps(walls))

    board = leaderboard(rows)
    summary = seed_summary(rows)
    per = per_scenario_across_seeds(rows)
    fluid = rows[rows["agent"] == "fluid"].set_index("scenario")["pct_of_dp"]
    prior = rows[rows["agent"] == "prior"].set_index("scenario")["pct_of_dp"]
    per["prior"] = per["scenario"].map(prior)
    per["fluid"] = per["scenario"].map(fluid)
    per_seed_ok = seed_targets(rows, "ppo", float(fluid.mean()), timing)
    has_snap = bool(rows["agent"].str.startswith("ppo_snap/").any())
    has_ens = bool(rows["agent"].str.startswith("ppo_ens/").any())
    scenario_table = with_raw_columns(per)

    lines = [
        "# PPO training to the target",
        "",
        f"Produced by `benchmarks/bench_ppo.py {' '.join(argv or sys.argv[1:])}` "
        f"on {platform.node() or 'unknown host'} ({os.cpu_count()} CPUs, "
        f"{args.jobs} processes), suite `{SUITE_VERSION}`, {paths_line(rows)}, "
        f"seeds {seeds}, profiles {profiles}.",
        "",
        args.note,
        "",
        "PPO settings: defaults of `agents.ppo.PPOConfig`"
        + (f" with {overrides}" if overrides else "")
        + "; steps per profile: "
        + ", ".join(
            f"{p} {PPOConfig(**{**PPOConfig().to_dict(), **per_profile.get(p, overrides)}).total_timesteps:,}"
            for p in profiles
        )
        + ".",
        "",
        "## Targets",
        "",
        "Per seed: median and worst % of the DP optimum over the suite's scenarios (targets "
        f"{MEDIAN_TARGET} and {WORST_TARGET}), the scenarios where PPO is below its prior "
        "alone beyond the paired 95 % CI (target 0), mean % against the fluid re-solve's "
        f"mean ({float(fluid.mean()):.2f} %) and the prior's ({float(prior.mean()):.2f} %), "
        "rule violations, training CPU seconds for the four profiles and the 2-core wall "
        "time (CPU / 2).",
        "",
        markdown_table(per_seed_ok),
        "",
        "Across seeds (mean ± 95 % CI):",
        "",
        markdown_table(summary),
        "",
        *(
            [
                "The same for `ppo_snap`: the guard choosing per SKU among the network, the "
                "run's snapshots from the second half of training (one per million steps, "
                "`agents.ppo.late_snapshots`) and the prior, on its own 256 paths "
                "(`agents.guard.GuardedPolicy` with `alternatives`); the same training, more "
                "simulation per SKU:",
                "",
                markdown_table(seed_targets(rows, "ppo_snap", float(fluid.mean()), timing)),
                "",
            ]
            if has_snap
            else []
        ),
        *(
            [
                "The same for `ppo_ens`: the guard choosing per SKU among the final networks of "
                "the seed's ensemble members (each trained from a seed of its own, "
                "`agents.ppo.member_seed`; member 0 is the `ppo` network) and the prior, on "
                "its own 256 paths; the CPU seconds are those of every member:",
                "",
                markdown_table(
                    seed_targets(rows, "ppo_ens", float(fluid.mean()), timing, all_members=True)
                ),
                "",
            ]
            if has_ens
            else []
        ),
        "## Leaderboard (every agent, every scenario)",
        "",
        markdown_table(board),
        "",
        "## Per scenario: PPO mean over seeds (± CI across seeds), worst seed, its paired gain "
        "over the prior (mean over seeds, CI across seeds, seeds below the prior beyond their "
        "paired CI), the prior, fluid; `raw_*`: the same for the network without its guard"
        + ("; `snap_*`: `ppo_snap`" if has_snap else "")
        + ("; `ens_*`: `ppo_ens`" if has_ens else ""),
        "",
        markdown_table(scenario_table),
        "",
        "## Training time per (seed, profile)",
        "",
        markdown_table(timing) if timing is not None else "(not measured in this run: --eval-only)",
        "",
        (
            f"Total wall: training {train_wall:.0f} s ({train_wall / len(seeds):.0f} s per seed "
            f"on {args.jobs} processes), evaluation {eval_wall:.0f} s."
            if np.isfinite(train_wall) and np.isfinite(eval_wall)
            else "Total wall: not recorded for this run."
        ),
        "",
    ]
    write_text_atomic(args.doc, "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
