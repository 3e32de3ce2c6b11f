"""The PPO leaderboard, learning curves and policy maps of ``docs/agents.md``.

Usage::

    .venv/bin/python benchmarks/agents_report.py --rerun [bench_ppo options]   # train + render
    .venv/bin/python benchmarks/agents_report.py                                # render only

``--rerun`` first runs ``benchmarks/bench_ppo.py`` (5 seeds x 4 rule profiles, evaluation on
the standard suite) with the options that follow; without it the saved results in ``--out``
(default ``runs/bench_ppo``) are rendered. Figures go to ``docs/img/ppo_*.png``; the tables
replace the part of ``docs/agents.md`` between the ``ppo-report`` markers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import pandas as pd  # noqa: E402

from agents.dp import solve  # noqa: E402
from agents.ppo import PPOPolicy  # noqa: E402
from benchmarks._docpage import markdown_table  # noqa: E402
from experiments import agent_plots  # noqa: E402
from experiments.evaluate import (  # noqa: E402
    dp_policy_for,
    leaderboard,
    per_scenario_across_seeds,
    seed_summary,
    with_raw_columns,
)
from experiments.suite import RULE_PROFILES, SUITE_VERSION, get_suite  # noqa: E402
from ingest.errors import ConfigError  # noqa: E402
from ingest.io import write_text_atomic  # noqa: E402

START = "<!-- ppo-report:start -->"
END = "<!-- ppo-report:end -->"


def render(out: Path, doc: Path, img: Path) -> str:
    """Write the figures and the markdown section from saved bench results; return it."""
    rows_path = out / "rows.csv"
    if not rows_path.exists():
        raise ConfigError(f"{rows_path} does not exist: run with --rerun first")
    rows = pd.read_csv(rows_path)
    curves = pd.read_csv(out / "curves.csv") if (out / "curves.csv").exists() else None
    timing = pd.read_csv(out / "timing.csv") if (out / "timing.csv").exists() else None
    img.mkdir(parents=True, exist_ok=True)

    board = leaderboard(rows)
    agent_plots.leaderboard_bars(board, img / "ppo_leaderboard.png")
    fluid = rows[rows["agent"] == "fluid"]
    prior = rows[rows["agent"] == "prior"]
    if curves is not None and not curves.empty:
        lines: dict[str, float | dict[str, float]] = {
            "fluid re-solve (mean, all profiles)": float(fluid["pct_of_dp"].mean())
        }
        if not prior.empty:
            lines["prior alone (mean of the profile)"] = {
                str(p): float(g["pct_of_dp"].mean()) for p, g in prior.groupby("profile")
            }
        agent_plots.learning_curve(curves, img / "ppo_learning_curves.png", baselines=lines)
    seeds = sorted(int(s) for s in rows["seed"].dropna().unique())
    figures = []
    for profile in RULE_PROFILES:
        scenario = next(s for s in get_suite() if s.profile == profile)
        model = out / f"s{seeds[0]}" / profile / "model.zip" if seeds else None
        if model is None or not model.exists():
            continue
        policy = PPOPolicy.load(model)
        solution = solve(scenario.catalog(), scenario.rules, scenario.horizon_weeks)
        agent_plots.policy_map(policy, scenario, solution, img / f"ppo_policy_map_{profile}.png")
        agent_plots.schedules(
            {"ppo": policy, "dp": dp_policy_for(solution)},
            scenario,
            img / f"ppo_schedule_{profile}.png",
        )
        figures.append(profile)

    summary = seed_summary(rows)
    per = per_scenario_across_seeds(rows)
    if not prior.empty:
        per["prior"] = per["scenario"].map(prior.set_index("scenario")["pct_of_dp"])
    per["fluid"] = per["scenario"].map(fluid.set_index("scenario")["pct_of_dp"])
    lines = [
        START,
        "",
        f"Suite `{SUITE_VERSION}`; produced by `benchmarks/agents_report.py` from the results "
        f"in `{out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}` (see "
        "[the benchmark page](benchmarks/ppo.md) for the machine and the command).",
        "",
        "### Leaderboard",
        "",
        "Every agent on every scenario of the suite, % of the DP optimum (CRN, paired); "
        "`ppo/sN` is the policy of training seed N; `prior` is PPO's starting point alone "
        "(the fluid re-solve with two prices and the coupon budget, its best action every "
        "week); `gain_vs_prior` is the mean paired gain over it (points of the DP) and "
        "`below_prior` the scenarios where an agent is below it beyond the paired 95 % CI.",
        "",
        markdown_table(board),
        "",
        "![leaderboard](img/ppo_leaderboard.png)",
        "",
        "PPO across training seeds (mean ± 95 % CI across seeds of each seed's median, worst "
        "and mean % of DP):",
        "",
        markdown_table(summary),
        "",
        "### Per scenario",
        "",
        "PPO's mean over seeds (CI across seeds), its worst seed, its paired gain over the "
        "prior (mean over seeds, CI across seeds, seeds below the prior beyond their paired "
        "CI), the prior alone and the fluid re-solve; `raw_*`: the same for the network "
        "without its guard"
        + (
            "; `snap_*`: `ppo_snap`, the guard choosing among the run's late snapshots too"
            if (per["agent"] == "ppo_snap").any()
            else ""
        )
        + (
            "; `ens_*`: `ppo_ens`, the guard choosing among the seed's ensemble members"
            if (per["agent"] == "ppo_ens").any()
            else ""
        )
        + ":",
        "",
        markdown_table(with_raw_columns(per)),
        "",
    ]
    if curves is not None and not curves.empty:
        lines += [
            "### Learning curves",
            "",
            "Mean (solid) and worst (dotted) % of DP over each profile's scenarios during "
            "training, every seed; the DP optimum is the black line.",
            "",
            "![learning curves](img/ppo_learning_curves.png)",
            "",
        ]
    if figures:
        lines += ["### Policy maps and schedules", ""]
        lines += [
            "Depth chosen with no discount yet in force, by weeks left and stock ratio, PPO "
            "(seed " + str(seeds[0]) + ") beside the DP; then one demand path of each.",
            "",
        ]
        for profile in figures:
            lines += [
                f"![policy map {profile}](img/ppo_policy_map_{profile}.png)",
                f"![schedule {profile}](img/ppo_schedule_{profile}.png)",
                "",
            ]
    if timing is not None:
        lines += ["### Training time", "", markdown_table(timing), ""]
    lines.append(END)
    section = "\n".join(lines)
    text = doc.read_text(encoding="utf-8") if doc.exists() else "# Agents\n"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        text = head + section + tail
    else:
        text = text.rstrip() + "\n\n## PPO: results\n\n" + section + "\n"
    write_text_atomic(doc, text)
    return section


def main(argv: list[str] | None = None) -> int:
    import torch

    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description="Render the PPO section of docs/agents.md")
    parser.add_argument("--rerun", action="store_true", help="run bench_ppo.py first")
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench_ppo"))
    parser.add_argument("--doc", default=str(ROOT / "docs" / "agents.md"))
    parser.add_argument("--img", default=str(ROOT / "docs" / "img"))
    args, rest = parser.parse_known_args(argv)
    import torch

    # Evaluates the saved PPO models here: one thread is fastest at this network size.
    torch.set_num_threads(1)
    if args.rerun:
        import bench_ppo

        bench_ppo.main([*rest, "--out", args.out])
    print(render(Path(args.out), Path(args.doc), Path(args.img)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
