"""benchmarks/bench_ppo.py and benchmarks/agents_report.py run end to end (tiny budget)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bench_and_report_scripts_run(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import agents_report
        import bench_ppo
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    out = tmp_path / "bench"
    doc = tmp_path / "ppo.md"
    code = bench_ppo.main(
        [
            "--seeds", "0", "--profiles", "none", "--steps", "2048",
            "--set", "n_envs=64", "--set", "batch_size=256", "--set", "net_arch=[16]",
            "--set", "checkpoint_every=512", "--keep-snapshots",
            "--episodes", "20", "--curve-every", "1024", "--curve-episodes", "10",
            "--jobs", "1", "--out", str(out), "--doc", str(doc),
        ]
    )  # fmt: skip
    assert code == 0
    text = doc.read_text()
    assert "ppo/s0" in text and "fluid" in text and "| seed |" in text
    # the kept snapshots give the snapshot guard, with its own targets table and columns
    assert len(list((out / "s0" / "none" / "snapshots").glob("model_*.zip"))) >= 3
    assert "ppo_snap/s0" in text and "The same for `ppo_snap`" in text
    # the 10-unit scenario is played on ten times the paths (its CI is the widest), and the
    # page says so
    paths = pd.read_csv(out / "rows.csv").groupby("scenario")["n_episodes"].max()
    assert paths["none-tiny-short"] == 200 and paths["none-base"] == 20
    assert "200 on `none-tiny-short`; 20 on the other 7 scenarios" in text
    # the prior alone is a row, and PPO's paired gain over it a column
    assert "| prior |" in text and "below_prior" in text and "gain_vs_prior" in text
    # the per-scenario table has one row per scenario, the raw network's numbers beside
    per = text.split("## Per scenario")[1].split("## Training time")[0]
    assert "raw_pct_of_dp" in per and per.count("| none-base |") == 1
    assert "snap_pct_of_dp" in per
    # the page can be rewritten from the saved results, wall times included
    doc.unlink()
    assert bench_ppo.main(["--seeds", "0", "--profiles", "none", "--out", str(out),
                           "--doc", str(doc), "--render-only"]) == 0  # fmt: skip
    with pytest.raises(SystemExit, match="--small-stock-factor = 0; expected >= 1"):
        bench_ppo.main(["--out", str(tmp_path / "bad"), "--small-stock-factor", "0"])
    assert not (tmp_path / "bad").exists()  # refused before anything was trained or written
    with pytest.raises(SystemExit, match="no rows.csv"):
        bench_ppo.main(["--out", str(tmp_path / "empty"), "--doc", str(doc), "--render-only"])
    again = doc.read_text()
    assert "--render-only" in again and "Total wall: training" in again
    assert again.split("## Per scenario")[1] == text.split("## Per scenario")[1]
    # re-evaluating the saved policies keeps the training run's wall time
    assert bench_ppo.main(["--seeds", "0", "--profiles", "none", "--out", str(out),
                           "--doc", str(doc), "--eval-only", "--jobs", "1",
                           "--episodes", "20"]) == 0  # fmt: skip
    walls = json.loads((out / "walls.json").read_text())
    assert walls["train_wall"] > 0 and "Total wall: training" in doc.read_text()
    # a second member per (seed, profile): the run's own network is kept, not re-trained, and
    # the evaluation adds the guard over both members (ppo_ens) beside unchanged ppo rows
    own = (out / "s0" / "none" / "model.zip").read_bytes()
    before = pd.read_csv(out / "rows.csv")
    assert bench_ppo.main(
        [
            "--seeds", "0", "--profiles", "none", "--steps", "2048", "--members", "2",
            "--set", "n_envs=64", "--set", "batch_size=256", "--set", "net_arch=[16]",
            "--set", "checkpoint_every=512", "--episodes", "20", "--curve-every", "1024",
            "--curve-episodes", "10", "--jobs", "1", "--out", str(out), "--doc", str(doc),
        ]
    ) == 0  # fmt: skip
    assert (out / "s0" / "none" / "model.zip").read_bytes() == own
    second = out / "s0" / "none" / "members" / "m1" / "model.zip"
    assert second.is_file() and second.read_bytes() != own
    after = pd.read_csv(out / "rows.csv")
    ppo_before = before[before["agent"] == "ppo/s0"].set_index("scenario")["profit_mean"]
    ppo_after = after[after["agent"] == "ppo/s0"].set_index("scenario")["profit_mean"]
    pd.testing.assert_series_equal(ppo_before, ppo_after.loc[ppo_before.index])
    timing = pd.read_csv(out / "timing.csv")
    assert sorted(timing["member"]) == [0, 1]
    text = doc.read_text()
    assert "ppo_ens/s0" in text and "The same for `ppo_ens`" in text
    assert "ens_pct_of_dp" in text.split("## Per scenario")[1]
    with pytest.raises(SystemExit, match="--members = 0; expected >= 1"):
        bench_ppo.main(["--out", str(tmp_path / "bad"), "--members", "0"])
    agents_doc = tmp_path / "agents.md"
    agents_doc.write_text("# Agents\n\nkept\n")
    section = agents_report.render(out, agents_doc, tmp_path / "img")
    assert "ppo/s0" in section and "ppo_snap/s0" in section and "snap_pct_of_dp" in section
    assert "ppo_ens/s0" in section and "ens_pct_of_dp" in section
    assert "kept" in agents_doc.read_text()
    assert (tmp_path / "img" / "ppo_policy_map_none.png").is_file()
    assert (tmp_path / "img" / "ppo_learning_curves.png").is_file()


@pytest.mark.slow
def test_bench_learning_runs(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench_learning
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    agents_doc = tmp_path / "agents.md"
    agents_doc.write_text("# Agents\n\nkept\n")
    code = bench_learning.main(
        [
            "--seeds", "0", "--profiles", "none", "--steps", "2048",
            "--set", "n_envs=64", "--set", "batch_size=256", "--set", "net_arch=[16]",
            "--episodes", "12", "--curve-every", "1024", "--curve-episodes", "8",
            "--jobs", "1", "--out", str(tmp_path / "bench"), "--doc", str(tmp_path / "page.md"),
            "--agents-doc", str(agents_doc), "--img", str(tmp_path / "img"),
            "--note", "shared machine (load 5)",
        ]
    )  # fmt: skip
    assert code == 0
    page = (tmp_path / "page.md").read_text()
    # the command on the page can be pasted into a shell (arguments with spaces quoted); the
    # note is its own line below it and shows in the command as "..."
    produced = next(line for line in page.splitlines() if line.startswith("Produced by"))
    assert "--set 'net_arch=[16]'" in produced and "--note ...`" in produced
    assert "shared machine (load 5)" in page and "load 5" not in produced
    assert "Strongest non-learning planner" in page and "ppo/s0" in page and "| oracle |" in page
    # per scenario, the best planner's % is at least the strongest planner's
    table = page.split("### Per scenario")[1].split("\n\n")[2].splitlines()
    cols = [c.strip() for c in table[0].strip("|").split("|")]
    strongest = page.split("Strongest non-learning planner (best suite mean): `")[1].split("`")[0]
    for line in table[2:]:
        cells = dict(zip(cols, (c.strip() for c in line.strip("|").split("|")), strict=True))
        assert float(cells["best_planner_pct"]) >= float(cells[strongest])
    assert page.startswith("# PPO in the learning market") and "pct_of_oracle" in page
    assert "Produced by `benchmarks/bench_learning.py --seeds 0" in page
    assert "discretization error" not in page and "augmented" not in page
    text = agents_doc.read_text()
    assert "kept" in text and "learning-report:start" in text
    assert (tmp_path / "img" / "learning_curves.png").is_file()


@pytest.mark.slow
def test_bench_memory_runs_through_the_shared_suite_script(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench_memory
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    agents_doc = tmp_path / "agents.md"
    agents_doc.write_text("# Agents\n\nkept\n")
    code = bench_memory.main(
        [
            "--seeds", "0", "--profiles", "coupons", "--steps", "2048",
            "--set", "n_envs=64", "--set", "batch_size=256", "--set", "net_arch=[16]",
            "--set", "checkpoint_every=512", "--keep-snapshots",
            "--episodes", "12", "--curve-every", "1024", "--curve-episodes", "8",
            "--jobs", "1", "--out", str(tmp_path / "bench"), "--doc", str(tmp_path / "page.md"),
            "--agents-doc", str(agents_doc), "--img", str(tmp_path / "img"),
            "--note", "Shared machine (load 7).",
        ]
    )  # fmt: skip
    assert code == 0
    page = (tmp_path / "page.md").read_text()
    assert page.startswith("# PPO in the memory market")
    assert "Produced by `benchmarks/bench_memory.py --seeds 0" in page
    # the note is its own line; the command shows it as "..." (it used to be pasted in unquoted)
    produced = next(line for line in page.splitlines() if line.startswith("Produced by"))
    assert "--note ...`" in produced and "load 7" not in produced
    assert "\nShared machine (load 7).\n" in page
    # the memory market's own PPO settings were trained with and are stated
    assert "the market's own PPO settings {'n_epochs': 4}" in produced
    state = json.loads((tmp_path / "bench" / "s0" / "memory-coupons" / "state.json").read_text())
    assert state["config"]["n_epochs"] == 4 and state["config"]["batch_size"] == 256
    assert "| augmented_dp |" in page and "| dp_blind |" in page and "ppo/s0" in page
    # the kept snapshots give the snapshot guard a row of its own in the targets
    assert "| ppo_snap | 0 |" in page and "ppo_snap/s0" in page
    assert "discretization error" in page and "pct_of_augmented_dp" in page
    assert "| oracle |" not in page  # nothing of the learning page leaks in
    text = agents_doc.read_text()
    assert "kept" in text and "memory-report:start" in text and "learning-report" not in text
    assert (tmp_path / "img" / "memory_curves.png").is_file()
    assert (tmp_path / "img" / "memory_leaderboard.png").is_file()
    # a policy already saved in --out continues (the timing table says from where)
    timing = tmp_path / "bench" / "s0" / "memory-coupons" / "timing.json"
    first = json.loads(timing.read_text())
    assert "resumed_from" not in first and "resumed_from" not in page
    args = ["--seeds", "0", "--profiles", "coupons", "--steps", str(first["steps"] + 2048)]
    args += ["--set", "n_envs=64", "--set", "batch_size=256", "--set", "net_arch=[16]"]
    args += ["--episodes", "12", "--curve-every", "0", "--jobs", "1"]
    args += ["--out", str(tmp_path / "bench"), "--doc", str(tmp_path / "page.md")]
    args += ["--agents-doc", str(agents_doc), "--img", str(tmp_path / "img")]
    assert bench_memory.main(args) == 0
    again = json.loads(timing.read_text())
    assert again["resumed_from"] == first["steps"] and again["steps"] > first["steps"]
    assert "resumed_from" in (tmp_path / "page.md").read_text()
    # a second ensemble member: the policy that already ran to its steps keeps its network and
    # its record, the member trains beside it, and the guard over both plays as ppo_ens
    own = (timing.parent / "model.zip").read_bytes()
    assert bench_memory.main([*args, "--members", "2"]) == 0
    assert (timing.parent / "model.zip").read_bytes() == own
    assert json.loads(timing.read_text()) == again
    assert (timing.parent / "members" / "m1" / "model.zip").is_file()
    page = (tmp_path / "page.md").read_text()
    assert "| ppo_ens | 0 |" in page and "ppo_ens/s0" in page
    assert sorted(pd.read_csv(tmp_path / "bench" / "timing.csv")["member"]) == [0, 1]
    with pytest.raises(SystemExit):
        bench_memory.main([*args, "--members", "0"])


def test_device_benchmark_measures_and_renders(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench_ppo_device
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    monkeypatch.setitem(
        bench_ppo_device.NETWORKS, "default", {"n_envs": 64, "batch_size": 256, "net_arch": (16,)}
    )
    out = tmp_path / "m.json"
    assert bench_ppo_device.main(["--devices", "cpu", "--steps", "1024", "--json", str(out)]) == 0
    page = tmp_path / "device.md"
    monkeypatch.setattr(bench_ppo_device, "PAGE", page)
    assert bench_ppo_device.main(["--render", str(out)]) == 0
    text = page.read_text()
    assert "| cpu |" in text and "16 |" in text and "<!-- device:start -->" in text


@pytest.mark.slow
def test_bench_budget_runs(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench_budget
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    agents_doc = tmp_path / "agents.md"
    agents_doc.write_text("# Agents\n\nkept\n")
    code = bench_budget.main(
        [
            "--suite", "budget-smoke", "--episodes", "20", "--out", str(tmp_path / "bench"),
            "--doc", str(tmp_path / "page.md"), "--agents-doc", str(agents_doc),
            "--img", str(tmp_path / "img"), "--train-steps", "1024", "--curve-every", "512",
            "--curve-episodes", "10", "--set", "n_envs=32", "--set", "batch_size=256",
            "--set", "net_arch=[16]", "--set", "budget_pool=4", "--train-seeds", "0", "1",
            "--jobs", "2",
        ]
    )  # fmt: skip
    assert code == 0
    page = (tmp_path / "page.md").read_text()
    assert "| lagrangian |" in page and "| greedy |" in page and "cat3-k1" in page
    # PPO trained here (two seeds) plays beside the planners, guarded and raw, with its
    # curves, the summary across seeds and the target
    for label in ("ppo/s0", "ppo/s1", "ppo_raw/s0", "ppo_raw/s1"):
        assert f"| {label} |" in page
    assert "training seeds [0, 1]" in page and "| budget-none |" in page
    assert "PPO across training seeds" in page and "| ppo_raw | 2 |" in page
    assert "Stretch target of the issue" in page and "2 training seeds" in page
    text = agents_doc.read_text()
    assert "kept" in text and "budget-report:start" in text
    assert (tmp_path / "img" / "budget_leaderboard.png").is_file()
    pairs = (tmp_path / "bench" / "pairs.csv").read_text()
    assert "plan_minus_agent_pct" in pairs
    assert "| lagrangian_weekly |" in page
    with pytest.raises(SystemExit, match="--jobs 0: expected >= 1"):
        bench_budget.main(["--jobs", "0", "--out", str(tmp_path / "never")])
    assert not (tmp_path / "never").exists()
    # PPO is paired with the weekly plan (its prior) too
    assert "The weekly plan against the single plan and PPO" in page
    assert "| ppo/s0 |" in page.split("The weekly plan against")[1]
    assert "against the weekly plan" in page
    # the saved policies of each seed play again without training: the same rows
    first = pd.read_csv(tmp_path / "bench" / "rows.csv")
    code = bench_budget.main(
        [
            "--suite", "budget-smoke", "--episodes", "20", "--out", str(tmp_path / "again"),
            "--doc", str(tmp_path / "again.md"), "--agents-doc", str(agents_doc),
            "--img", str(tmp_path / "img2"), "--train-seeds", "0", "1",
            "--model", str(tmp_path / "bench" / "ppo_s{seed}"),
        ]
    )  # fmt: skip
    assert code == 0
    again = pd.read_csv(tmp_path / "again" / "rows.csv")
    cols = ["agent", "scenario", "profit_mean"]
    pd.testing.assert_frame_equal(first[cols], again[cols])
    assert "ppo_s{seed}` (training seeds [0, 1]" in (tmp_path / "again.md").read_text()
    # a seed without saved policies is refused by name, before any work
    with pytest.raises(SystemExit, match=r"--model: .*ppo_s7"):
        bench_budget.main(
            ["--suite", "budget-smoke", "--out", str(tmp_path / "none"), "--train-seeds", "7",
             "--model", str(tmp_path / "bench" / "ppo_s{seed}")]
        )  # fmt: skip


def test_suite_bench_takes_seeds_spaced_or_comma_separated(capsys):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench_ppo_suite
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    parse = bench_ppo_suite.parse_args
    assert parse(["--suite", "memory", "--seeds", "0", "1", "2", "3", "4"]).seeds == [0, 1, 2, 3, 4]
    assert parse(["--suite", "memory", "--seeds", "0,1,2"]).seeds == [0, 1, 2]
    assert parse(["--suite", "memory", "--seeds", "3,1", "1", "5"]).seeds == [3, 1, 5]
    assert parse(["--suite", "memory"]).seeds == [0, 1, 2, 3, 4]
    with pytest.raises(SystemExit):
        parse(["--suite", "memory", "--seeds", "0", "x1"])
    assert "bad seed list 'x1'" in capsys.readouterr().err


def test_bench_budget_pool_times_both_priors(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench_budget_pool
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    doc = tmp_path / "pool.md"
    assert bench_budget_pool.main(["--categories", "2", "--doc", str(doc)]) == 0
    page = doc.read_text()
    for profile in ("none", "coupons"):
        for prior in ("lagrangian", "lagrangian_weekly"):
            assert f"| {profile} | {prior} | 2 |" in page
    assert "none_mean_multiplier" in page and "| 12 |" in page  # one row per week
    with pytest.raises(SystemExit, match="--categories 0"):
        bench_budget_pool.main(["--categories", "0", "--doc", str(doc)])


@pytest.mark.slow
def test_bench_budget_optimum_runs(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench_budget_optimum
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    doc = tmp_path / "optimum.md"
    with pytest.raises(SystemExit, match="no category of suite 'budget-smoke'"):
        bench_budget_optimum.main(["--suite", "budget-smoke", "--max-states", "1000",
                                   "--doc", str(doc)])  # fmt: skip
    with pytest.raises(SystemExit, match="--model"):
        bench_budget_optimum.main(["--suite", "budget-smoke", "--model", str(tmp_path / "no"),
                                   "--doc", str(doc)])  # fmt: skip
    assert not doc.exists()
    assert (
        bench_budget_optimum.main(
            ["--suite", "budget-smoke", "--episodes", "20", "--doc", str(doc)]
        )
        == 0
    )
    page = doc.read_text()
    table = [line for line in page.splitlines() if line.startswith("| cat3-k1 |")]
    facts = table[0].split(" | ")
    optimum, bound, weekly = float(facts[4]), float(facts[5]), float(facts[6])
    assert optimum <= weekly <= bound  # the optimum under both bounds
    agents = {line.split(" | ")[1] for line in table[1:]}
    assert agents == {"optimum", "lagrangian", "lagrangian_weekly"}
    optimal = next(line for line in table[1:] if "| optimum |" in line).split(" | ")
    assert abs(float(optimal[3]) - 100.0) <= 3 * float(optimal[4])  # it earns its value


def test_stock_scale_twin_plays_the_twins_plan_exactly(tmp_path):
    """benchmarks/stock_scale_twin.py: the twin at scale 1 is the DP itself (100 %), a larger
    twin's plan is feasible on the small stock and never beats the optimum, and the page
    section is written."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import stock_scale_twin
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    table = stock_scale_twin.measure(10, (1, 3, 100))
    assert set(table["scenario"]) == {"none-tiny-short", "cpn-tiny", "md-tiny", "all-tiny"}
    assert (table["x1"] == 100.0).all()
    assert (table[["x3", "x100"]] <= 100.0 + 1e-9).all().all()
    # acting as if the stock were large costs something on the 10-unit coupon scenario
    assert table.set_index("scenario").loc["cpn-tiny", "x100"] < 99.0
    page = tmp_path / "scale.md"
    assert (
        stock_scale_twin.main(["--max-stock", "10", "--scales", "1", "10", "--page", str(page)])
        == 0
    )
    text = page.read_text()
    assert "<!-- stock-scale-twin:start -->" in text and "| all-tiny | 10 | 5 |" in text
    # bad input is named, before any solve
    with pytest.raises(SystemExit, match=r"--scales = \[0, 3\]; expected whole numbers >= 1"):
        stock_scale_twin.measure(10, (0, 3))
    with pytest.raises(
        SystemExit, match="--max-stock = 5: no scenario .* \\(the smallest has 10\\)"
    ):
        stock_scale_twin.measure(5, (1,))
    with pytest.raises(SystemExit, match="--max-stock = 0; expected >= 1"):
        stock_scale_twin.measure(0, (1,))


def test_bench_learning_bound_runs(tmp_path):
    """benchmarks/bench_learning_bound.py on the learning smoke suite: bounds between the
    planners and the oracle, falling with depth; bad options named, nothing written."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench_learning_bound
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    doc, img = tmp_path / "bound.md", tmp_path / "bound.png"
    common = ["--suite", "learning-smoke", "--episodes", "40", "--out", str(tmp_path / "out"),
              "--doc", str(doc), "--img", str(img)]  # fmt: skip
    with pytest.raises(SystemExit, match="--model"):
        bench_learning_bound.main([*common, "--model", str(tmp_path / "no")])
    with pytest.raises(SystemExit, match="unknown scenario.*learn-nope"):
        bench_learning_bound.main([*common, "--scenarios", "learn-nope"])
    with pytest.raises(SystemExit, match="not a learning suite"):
        bench_learning_bound.main([*common[:1], "smoke", *common[2:]])
    assert not doc.exists() and not img.exists()
    assert bench_learning_bound.main([*common, "--depths", "1", "2"]) == 0
    table = pd.read_csv(tmp_path / "out" / "bounds.csv")
    assert list(table["scenario"]) == ["learn-none-base", "learn-md-base"]
    assert (table["U2_pct"] < table["U1_pct"]).all() and (table["U1_pct"] < 100.0).all()
    # no planner above the bound beyond its CI
    assert (table["best_planner_pct"] - table["best_planner_ci"] <= table["U2_pct"]).all()
    assert "U2_pct" in doc.read_text() and img.stat().st_size > 0


def _bench_learning_priors():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench_learning_priors
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return bench_learning_priors


def test_bench_learning_priors_runs(tmp_path):
    """benchmarks/bench_learning_priors.py on the learning smoke suite: every candidate scored,
    the training Q-tables sized from the DP's state grid; bad options named, nothing written."""
    blp = _bench_learning_priors()
    from agents.dp import rule_grid
    from experiments.suite import RULE_PROFILES

    doc, img = tmp_path / "priors.md", tmp_path / "priors.png"
    common = ["--suite", "learning-smoke", "--episodes", "30", "--out", str(tmp_path / "out"),
              "--doc", str(doc), "--img", str(img), "--catalog-skus", "50"]  # fmt: skip
    with pytest.raises(SystemExit, match="not a learning suite"):
        blp.main([*common[:1], "smoke", *common[2:]])
    with pytest.raises(SystemExit, match="unknown scenario.*learn-nope"):
        blp.main([*common, "--scenarios", "learn-nope"])
    with pytest.raises(SystemExit):
        blp.main([*common, "--catalog-skus", "0"])
    assert not doc.exists() and not img.exists()
    assert blp.main(common) == 0
    table = pd.read_csv(tmp_path / "out" / "priors.csv")
    assert list(table["scenario"]) == ["learn-none-base", "learn-md-base"]
    assert table[list(blp.CANDIDATES)].notna().all().all()
    sizes = pd.read_csv(tmp_path / "out" / "training_q_tables.csv").set_index("profile")
    md = sizes.loc["learning-markdown"]
    rules = RULE_PROFILES["markdown"]
    assert md["rule_states"] == rule_grid(rules, 26).size > 1
    expected = 81 * 27 * (md["stock_max"] + 1) * md["rule_states"] * rules.n_actions * 4 / 2**20
    assert md["q_mb_largest_sku"] == pytest.approx(expected)
    assert "fluid_posterior" in doc.read_text() and img.stat().st_size > 0


def test_fluid_posterior_is_the_prior_when_nothing_is_unknown():
    """With a one-point prior grid the posterior is the estimate, and FluidPosterior plays PPO's
    prior path for path; with the suite's 9 x 9 grid it plays differently; outside the learning
    env it refuses by name."""
    blp = _bench_learning_priors()
    from agents.baselines import FluidPrior
    from agents.policy import PolicyError
    from envs.batched import BatchedMarkdownEnv
    from envs.belief import BeliefGrid
    from envs.learning import LearningMarkdownEnv
    from envs.markdown import EnvConfig
    from experiments.market_base import evaluate_in
    from experiments.suite import get_suite

    s = get_suite("learning-smoke")[1]
    config = EnvConfig(horizon_weeks=s.horizon_weeks, rules=s.rules, catalog=s.catalog(),
                       invalid_action="hold")  # fmt: skip

    def totals(policy, points):
        env = LearningMarkdownEnv(config, n_slots=64, seed=3, fixed_skus=True,
                                  grid=BeliefGrid(points))  # fmt: skip
        return evaluate_in(env, policy)

    pd.testing.assert_frame_equal(totals(blp.FluidPosterior(), 1), totals(FluidPrior(), 1))
    wide = totals(blp.FluidPosterior(), 9)["objective"].to_numpy()
    assert not (wide == totals(FluidPrior(), 9)["objective"].to_numpy()).all()
    env = BatchedMarkdownEnv(config, n_slots=4, seed=0)
    obs = env.reset()
    with pytest.raises(PolicyError, match="fluid_posterior.*learning env"):
        blp.FluidPosterior().act(obs, env.action_masks(), env.policy_context())
