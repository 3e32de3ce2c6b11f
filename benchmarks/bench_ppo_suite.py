"""PPO in a market the exact DP cannot solve: train it for several seeds, evaluate every agent
of the suite against the suite's reference, write the benchmark page and the suite's section
of ``docs/agents.md``. One script for the ``learning`` suite (unknown demand, 100 % = the
oracle; ``docs/benchmarks/ppo_learning.md``) and the ``memory`` suite (demand with memory,
100 % = the augmented-state DP; ``docs/benchmarks/ppo_memory.md``): :data:`BENCHES` holds
what differs.

Usage::

    .venv/bin/python benchmarks/bench_ppo_suite.py --suite learning       # 5 seeds, defaults
    .venv/bin/python benchmarks/bench_ppo_suite.py --suite memory --seeds 0 --steps 300000
    .venv/bin/python benchmarks/bench_ppo_suite.py --suite memory --eval-only  # saved models

(``benchmarks/bench_learning.py`` and ``benchmarks/bench_memory.py`` are this script with
``--suite`` set.) Each (seed, profile) trains in one single-threaded process (``--jobs`` at
a time). Every agent plays the same demand paths (and, in the learning market, the same
drawn truths) per scenario (common random numbers), so the paired difference of PPO and a
baseline on a scenario has a CI from the per-path differences; the suite mean's CI adds the
scenarios' variances (independent paths). The strongest non-learning planner is the
baseline with the best suite mean. The memory page also reports the augmented DP's
discretization error (its value on the grid against the simulated value of its own policy)
for the suite's grid and a coarser one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from agents.dp_memory import MemoryDPPolicy, solve_memory  # noqa: E402
from agents.ppo import PPOConfig, PPOPolicy, member_folder, member_seed, train_ppo  # noqa: E402
from benchmarks._docpage import markdown_table, write_section  # noqa: E402
from benchmarks._members import finished, timing_records  # noqa: E402
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
from experiments.policy_model import load_members, load_snapshots  # noqa: E402
from experiments.suite import RULE_PROFILES, catalog_fn_for, get_spec  # noqa: E402
from experiments.train import PROFILE_TIMESTEPS, market_ppo  # noqa: E402
from ingest.io import write_frame_atomic, write_text_atomic  # noqa: E402

COARSE_GRID = (5, 3)
"""The coarser grid whose discretization error the memory page reports beside the suite's."""
Z95 = 1.959963984540054


@dataclass(frozen=True)
class SuiteBench:
    """What differs between the suites this script benchmarks.

    Attributes
    ----------
    suite : str
    reference : str
        The reference agent's label (``SuiteSpec.reference``).
    reference_text : str
        How the page names 100 %.
    baselines : tuple of str
        The non-learning agents played beside PPO (``prior`` first: PPO is paired with it).
    market : str
        Title word of the page (``# PPO in the <market> market``) and prefix of its images.
    page : str
        Default page under ``docs/benchmarks``.
    paths_text : str
        What one CRN path holds.
    discretization : bool
        Report the augmented DP's discretization error (memory market).
    """

    suite: str
    reference: str
    reference_text: str
    baselines: tuple[str, ...]
    market: str
    page: str
    paths_text: str
    discretization: bool = False

    def ppo_fields(self) -> dict:
        """The PPOConfig fields that put training in this suite's market."""
        spec = get_spec(self.suite)
        if spec.market == "learning":
            return {"belief_grid": spec.belief_grid}
        return {"demand_memory": True}

    def grid_text(self) -> str:
        """The suite's grid, for the page's header."""
        spec = get_spec(self.suite)
        if spec.market == "learning":
            return f"{spec.belief_grid} x {spec.belief_grid} prior grid"
        n_ref, n_fat = spec.memory_grid
        return f"{n_ref} x {n_fat} reference-price x fatigue grid"


BENCHES: dict[str, SuiteBench] = {
    "learning": SuiteBench(
        "learning",
        "oracle",
        "oracle",
        (
            "prior",
            "qmdp",
            "lookahead",
            "dp_resolve",
            "thompson",
            "dp_ce",
            "fluid",
            "myopic",
            "cover",
            "ladder",
            "none",
        ),
        "learning",
        "ppo_learning.md",
        "CRN paths (truth draw + demand)",
    ),
    "memory": SuiteBench(
        "memory",
        "augmented_dp",
        "augmented DP",
        ("prior", "dp_blind", "fluid", "myopic", "cover", "ladder", "none"),
        "memory",
        "ppo_memory.md",
        "CRN demand paths",
        discretization=True,
    ),
}
"""The benchmarked suites by ``--suite``."""


def _train_job(args: tuple[str, int, str, dict, str, int, int, bool, int]) -> dict:
    suite, seed, profile, overrides, out, curve_every, curve_episodes, keep, member = args
    import torch

    torch.set_num_threads(1)
    bench = BENCHES[suite]
    spec = get_spec(suite)
    key = spec.policy_key(profile)
    steps = overrides.get("total_timesteps", PROFILE_TIMESTEPS[key])
    config = replace(
        PPOConfig(seed=member_seed(seed, member)),
        **{**overrides, "total_timesteps": steps},
        **bench.ppo_fields(),
    )
    config = replace(config, **market_ppo(spec.market, config, tuple(overrides)))
    job = member_folder(Path(out) / f"s{seed}" / key, member)
    # a policy that already ran to its steps is kept with its record (adding members to a run)
    done = finished(job, config.total_timesteps)
    if done is not None:
        return {k: v for k, v in done.items() if k != "curve"}
    if member:  # the learning curve is the run's own (member 0)
        curve_every = 0
    names = tuple(s.name for s in spec.scenarios if s.profile == profile)
    rows: list[dict] = []
    callbacks: list[CurveCallback] = []
    if curve_every:
        prep = prepare(EvalConfig(suite=suite, n_episodes=curve_episodes, scenarios=names))
        cb = CurveCallback(key, prep, curve_every, curve_episodes, rows, log_to_mlflow=False)
        callbacks.append(cb)
    t0 = time.process_time()
    result = train_ppo(
        config,
        RULE_PROFILES[profile],
        checkpoint_dir=job,
        callbacks=list(callbacks),
        catalog_fn=catalog_fn_for(spec, profile),
        keep_snapshots=keep,
    )
    cpu = time.process_time() - t0
    eval_s = sum(c.eval_seconds for c in callbacks)
    eval_cpu = sum(c.eval_cpu_seconds for c in callbacks)
    for r in rows:
        r["seed"] = seed
    write_frame_atomic(pd.DataFrame(rows), job / "curve.csv")
    timing = {"seed": seed, "profile": key, "member": member, "steps": result.num_timesteps}
    timing.update(wall_seconds=result.wall_seconds - eval_s, cpu_seconds=cpu - eval_cpu)
    if result.resumed_from:  # the page's timing table then shows which policies continued
        timing["resumed_from"] = result.resumed_from
    write_text_atomic(job / "timing.json", json.dumps(timing))
    return timing


def _eval_job(
    args: tuple[str, str, int, int, list[int], str],
) -> tuple[list[dict], list[dict], dict | None]:
    """Rows of every agent on one scenario, the paired PPO-minus-baseline differences, and
    (memory market) the augmented DP's discretization error on two grids."""
    suite, scenario, n_episodes, seed, seeds, out = args
    import torch

    torch.set_num_threads(1)
    bench = BENCHES[suite]
    spec = get_spec(suite)
    cfg = EvalConfig(suite=suite, n_episodes=n_episodes, seed=seed, scenarios=(scenario,))
    prep = prepare(cfg)
    p = prep[0]
    base = baseline_factories(suite)
    totals: dict[str, np.ndarray] = {}
    rows: list[dict] = []
    paired_prior = None
    for label in bench.baselines:
        keep: list[pd.DataFrame] = []
        rows += score_agent(
            prep, base[label], agent=label, n_episodes=n_episodes, paired=paired_prior, keep=keep
        )
        totals[label] = keep[0]["objective"].to_numpy(float)
        if label == "prior":
            paired_prior = keep
    for s in seeds:
        key = spec.policy_key(p.scenario.profile)
        path = Path(out) / f"s{s}" / key / "model.zip"
        network = {key: PPOPolicy.load(path)}
        # ppo: guarded by its prior per SKU (agents.guard); ppo_raw: the network alone;
        # ppo_snap (with --keep-snapshots): the guard choosing among the late snapshots too
        variants = [(f"ppo/s{s}", ppo_factory(network, suite))]
        variants.append((f"ppo_raw/s{s}", ppo_factory(network, suite, guard=False)))
        more = load_snapshots(path)
        if more:
            variants.append((f"ppo_snap/s{s}", ppo_factory(network, suite, alternatives=more)))
        # ppo_ens (with --members): the guard choosing among the seed's ensemble members
        members = load_members(path)
        if members:
            variants.append((f"ppo_ens/s{s}", ppo_factory(network, suite, alternatives=members)))
        for label, factory in variants:
            keep = []
            rows += score_agent(
                prep,
                factory,
                agent=label,
                n_episodes=n_episodes,
                seed=s,
                paired=paired_prior,
                keep=keep,
            )
            totals[label] = keep[0]["objective"].to_numpy(float)
    rows.append(score(p.reference_totals, p, agent=bench.reference, paired=paired_prior[0]))
    v = p.reference_value
    pairs = []
    for s, agent in ((s, a) for s in seeds for a in ("ppo", "ppo_raw", "ppo_snap", "ppo_ens")):
        if f"{agent}/s{s}" not in totals:
            continue
        x = totals[f"{agent}/s{s}"]
        for label in bench.baselines:
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
    return rows, pairs, _discretization(p, n_episodes) if bench.discretization else None


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


def targets(
    rows: pd.DataFrame, pairs: pd.DataFrame, baselines: tuple[str, ...]
) -> tuple[str, pd.DataFrame]:
    """The strongest non-learning planner (best suite mean), and per PPO variant (guarded,
    raw) and seed: its suite mean minus the planner's with the paired 95 % CI, the scenarios
    it beats it on, its worst % of the reference (target >= 97 %)."""
    base = rows[rows["agent"].isin(baselines)]
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


def render(
    bench: SuiteBench, out: Path, doc: Path, agents_doc: Path, img: Path, header: list[str]
) -> str:
    """Write the benchmark page and the suite's section of ``docs/agents.md``
    (``<suite>-report``)."""
    rows = pd.read_csv(out / "rows.csv")
    pairs = pd.read_csv(out / "pairs.csv")
    ref, ref_text, market = bench.reference, bench.reference_text, bench.market
    timing = pd.read_csv(out / "timing.csv") if (out / "timing.csv").exists() else None
    curves = pd.read_csv(out / "curves.csv") if (out / "curves.csv").exists() else None
    img.mkdir(parents=True, exist_ok=True)
    board = leaderboard(rows)
    agent_plots.leaderboard_bars(board, img / f"{market}_leaderboard.png", reference=ref)
    strongest, target = targets(rows, pairs, bench.baselines)
    summary = seed_summary(rows)
    per = per_scenario_across_seeds(rows)
    per = per[per["agent"] == "ppo"].rename(
        columns={"pct_of_dp": f"pct_of_{ref}", "pct_of_dp_seed_ci": "seed_ci"}
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
    # the best non-learning planner of each scenario: how close to 100 % planning gets there
    planners = rows[rows["agent"].isin(bench.baselines)]
    best = planners.loc[planners.groupby("scenario")["pct_of_reference"].idxmax()]
    best = best[["scenario", "agent", "pct_of_reference"]].rename(
        columns={"agent": "best_planner", "pct_of_reference": "best_planner_pct"}
    )
    per = per.merge(best, on="scenario", how="left")
    spec = get_spec(bench.suite)
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
            curves, img / f"{market}_curves.png", baselines=lines_by, reference=ref
        )
    body = [
        *header,
        "",
        f"Strongest non-learning planner (best suite mean): `{strongest}`.",
        "",
        "### Targets per training seed",
        "",
        f"PPO's suite mean minus the strongest planner's (points of the {ref_text}) with "
        "the paired 95 % CI (common random numbers: per-path differences, scenarios "
        "independent), the scenarios PPO beats it on, PPO's worst scenario (target >= 97 %):",
        "",
        markdown_table(target),
        "",
        f"### Leaderboard (% of the {ref_text}, every agent, every scenario)",
        "",
        markdown_table(board),
        "",
        f"![leaderboard](../img/{market}_leaderboard.png)",
        "",
        "PPO across training seeds (mean ± 95 % CI across seeds):",
        "",
        markdown_table(summary),
        "",
        "### Per scenario",
        "",
        "PPO (mean over seeds), its paired gain over its prior (mean over seeds), the prior, "
        f"the strongest planner `{strongest}`, PPO minus it (mean, worst and best seed), and "
        "the best non-learning planner on the scenario with its %:",
        "",
        markdown_table(per.drop(columns=["agent"])),
        "",
    ]
    if bench.discretization:
        body += [
            "### The yardstick's discretization error",
            "",
            "The augmented DP's value on its grid minus the simulated value of its own policy "
            "(same CRN paths), in % of the simulated value, with the simulation's 95 % CI "
            f"half-width, for the suite's grid and a coarser {COARSE_GRID[0]} x "
            f"{COARSE_GRID[1]}:",
            "",
            markdown_table(pd.read_csv(out / "discretization.csv")),
            "",
        ]
    if curves is not None and not curves.empty:
        body += ["### Learning curves", "", f"![learning curves](../img/{market}_curves.png)", ""]
    if timing is not None:
        body += ["### Training time", "", markdown_table(timing), ""]
    text = f"# PPO in the {market} market\n\n" + "\n".join(body)
    write_text_atomic(doc, text)
    section = "\n".join(line.replace("../img/", "img/") for line in body)
    write_section(agents_doc, f"{bench.suite}-report", section, title="Agents")
    return text


SCRIPT = "bench_ppo_suite.py"


def seed_list(text: str) -> list[int]:
    """One ``--seeds`` value: a seed or comma-separated seeds (``"3"``, ``"0,1,2"``).

    ``--seeds`` takes several values, so ``--seeds 0 1 2`` and ``--seeds 0,1,2`` name the same
    seeds (only the first used to parse: the rest stopped the script as unknown arguments).

    Raises
    ------
    argparse.ArgumentTypeError
        Naming the bad value, when a part is not a non-negative integer.
    """
    parts = [part.strip() for part in text.split(",")]
    if not all(part.isdigit() for part in parts):
        raise argparse.ArgumentTypeError(
            f"bad seed list {text!r}: expected non-negative integers, e.g. 0 1 2 or 0,1,2"
        )
    return [int(part) for part in parts]


def shown_command(argv: list[str]) -> list[str]:
    """The arguments as the page's header shows them: the ``--note`` text (printed on its own
    line below the command) replaced by ``...``, so the command stays one readable line."""
    shown = list(argv)
    for i, arg in enumerate(shown):
        if arg == "--note" and i + 1 < len(shown):
            shown[i + 1] = "..."
        elif arg.startswith("--note="):
            shown[i] = "--note=..."
    return shown


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line's options; ``seeds`` flattened to one list of distinct seeds."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--suite", choices=sorted(BENCHES), required=True)
    parser.add_argument(
        "--seeds",
        type=seed_list,
        nargs="+",
        default=[[0, 1, 2, 3, 4]],
        help="training seeds, spaced or comma-separated: 0 1 2 or 0,1,2",
    )
    parser.add_argument("--profiles", default=None, help="default: every profile of the suite")
    parser.add_argument("--steps", type=int, default=None, help="steps per profile")
    parser.add_argument("--set", action="append", default=[], help="PPO override key=value")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--keep-snapshots",
        action="store_true",
        help="keep every checkpoint of each training; the evaluation then adds ppo_snap, the "
        "guard choosing per SKU among the second half's snapshots and the prior",
    )
    parser.add_argument(
        "--members",
        type=int,
        default=1,
        help="networks trained per (seed, profile), each from a seed of its own "
        "(agents.ppo.member_seed; member 0 is the seed's usual network); with two or more the "
        "evaluation adds ppo_ens, the guard choosing per SKU among the members and the prior",
    )
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--curve-every", type=int, default=1_000_000)
    parser.add_argument("--curve-episodes", type=int, default=200)
    parser.add_argument(
        "--out",
        default=None,
        help="default: runs/bench_<suite>; a policy already saved there resumes its training "
        "(give a fresh folder for from-scratch numbers)",
    )
    parser.add_argument("--doc", default=None, help="default: the suite's page")
    parser.add_argument("--agents-doc", default=str(ROOT / "docs" / "agents.md"))
    parser.add_argument("--img", default=str(ROOT / "docs" / "img"))
    parser.add_argument("--note", default="", help="a line about the machine's load")
    parser.add_argument("--eval-only", action="store_true", help="evaluate saved models")
    args = parser.parse_args(argv)
    args.seeds = list(dict.fromkeys(s for group in args.seeds for s in group))
    if args.members < 1:
        parser.error(f"--members = {args.members}; expected >= 1")
    return args


def main(argv: list[str] | None = None, *, script: str = SCRIPT) -> int:
    """The command line (``script`` names the file the page says produced it)."""
    import torch

    torch.set_num_threads(1)
    args = parse_args(argv)
    bench = BENCHES[args.suite]
    spec = get_spec(bench.suite)
    out = Path(args.out or ROOT / "runs" / f"bench_{bench.suite}")
    doc = Path(args.doc or ROOT / "docs" / "benchmarks" / bench.page)

    seeds = args.seeds
    profiles = [p for p in (args.profiles or ",".join(spec.profiles)).split(",") if p]
    overrides: dict = {}
    if args.steps:
        overrides["total_timesteps"] = args.steps
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = json.loads(value)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if not args.eval_only:
        jobs = [
            (
                bench.suite,
                s,
                p,
                overrides,
                str(out),
                args.curve_every,
                args.curve_episodes,
                args.keep_snapshots,
                m,
            )
            for s in seeds
            for p in profiles
            for m in range(args.members)
        ]
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            list(pool.map(_train_job, jobs))
    train_wall = time.perf_counter() - t0
    keys = [spec.policy_key(p) for p in profiles]
    seeds = [s for s in seeds if all((out / f"s{s}" / k / "model.zip").exists() for k in keys)]
    recs = timing_records([out / f"s{s}" / k for s in seeds for k in keys])
    if recs is not None:
        write_frame_atomic(recs, out / "timing.csv")
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
    eval_jobs = [(bench.suite, name, args.episodes, 2026, seeds, str(out)) for name in scenarios]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        parts_out = list(pool.map(_eval_job, eval_jobs))
    eval_wall = time.perf_counter() - t1
    write_frame_atomic(
        pd.DataFrame([row for rows, _, _ in parts_out for row in rows]), out / "rows.csv"
    )
    write_frame_atomic(pd.DataFrame([x for _, pr, _ in parts_out for x in pr]), out / "pairs.csv")
    if bench.discretization:
        disc = [d for _, _, d in parts_out if d is not None]
        write_frame_atomic(pd.DataFrame(disc), out / "discretization.csv")
    steps = {k: overrides.get("total_timesteps", PROFILE_TIMESTEPS[k]) for k in keys}
    own = market_ppo(spec.market, PPOConfig(), tuple(overrides))  # as _train_job applies them
    shown = list(sys.argv[1:] if argv is None else argv)
    if script != SCRIPT and shown[:2] == ["--suite", bench.suite]:
        shown = shown[2:]  # a per-suite wrapper sets --suite itself
    shown = shown_command(shown)
    header = [
        f"Produced by `benchmarks/{script} {shlex.join(shown)}` on "
        f"{platform.node() or 'unknown host'} ({os.cpu_count()} CPUs, {args.jobs} processes), "
        f"suite `{spec.name}` ({spec.version}, {bench.grid_text()}), {args.episodes} "
        f"{bench.paths_text} per scenario, seeds {seeds}, steps per "
        f"policy {steps}"
        + (f", the market's own PPO settings {own}" if own else "")
        + (f", PPO overrides {overrides}" if overrides else "")
        + ".",
        "",
        args.note,
        "",
        f"Wall time: training {train_wall:.0f} s, evaluation {eval_wall:.0f} s.",
    ]
    print(render(bench, out, doc, Path(args.agents_doc), Path(args.img), header))
    return 0


if __name__ == "__main__":
    sys.exit(main())
