"""``deadstock simulate --sku``: the what-if from files, the run's exports and the CLI."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from app.pipeline_config import EvaluationConfig, PipelineConfig
from app.whatif import (
    read_rules,
    read_simulation_settings,
    what_if_command,
    what_if_from_files,
    write_simulation_settings,
)
from ingest.errors import ConfigError, DataError
from planning.outcomes import (
    DEFAULT_CI_LEVEL,
    DEFAULT_DRAW_PARAMETERS,
    DEFAULT_N_EPISODES,
    SimulationSettings,
)
from planning.schedule import Schedule, read_schedule
from planning.whatif import WhatIfConfig, what_if


@pytest.fixture(scope="module")
def catalog(plan_catalog):
    return plan_catalog


def _run_folder(catalog, folder, discount_row, settings=None):
    catalog.to_frame().to_parquet(folder / "catalog.parquet")
    sched = Schedule(
        catalog.sku, np.tile(discount_row, (catalog.n_skus, 1)), np.zeros((12, len(discount_row)))
    )
    sched.to_frame().to_csv(folder / "schedules.csv", index=False)
    if settings is not None:
        write_simulation_settings(settings, folder)


def test_what_if_from_files(catalog, tmp_path):
    sched = Schedule(
        sku=catalog.sku[:2],
        discount=np.tile([0.0, 0.2, 0.4, 0.6], (2, 1)),
        coupon=np.zeros((2, 4)),
    )
    path = tmp_path / "plan.csv"
    sched.to_frame().assign(plan_key="K").to_csv(path, index=False)
    rules = tmp_path / "rules.toml"
    rules.write_text("[rules]\ndiscount_levels = [0.0, 0.25, 0.5]\nmarkdown_only = true\n")
    assert read_rules(rules).discount_levels == (0.0, 0.25, 0.5)
    table, plot, text = what_if_from_files(
        catalog,
        WhatIfConfig(sku="sku1", max_discount=0.5, n_episodes=50),
        schedule_path=path,
        rules_path=rules,
        fallback=Schedule.constant(catalog.sku, 4, 0.0),
        plot_path=tmp_path / "p.png",
    )
    # Depths snap down to the ladder (0.2 -> 0, 0.4 -> 0.25); 0.6 is capped at 0.5.
    assert "weekly discount: 0%, 0%, 25%, 50%" in text
    assert "simulation: 50 episodes per SKU and plan, parameters drawn" in text
    assert plot is not None and plot.exists()
    assert set(table["metric"]) >= {"profit", "sell_through", "leftover_units"}
    rules.write_text("[rules]\ndiscount_levels = [0.1]\n")
    with pytest.raises(ConfigError, match="must start at 0.0"):
        read_rules(rules)


def _body(text: str) -> list[str]:
    """The report's lines without the numbers and the plan (its form)."""
    lines = text.splitlines()[3:]
    return [" ".join(re.sub(r"[-+]?[\d,]+\.?\d*%?", "#", ln).split()) for ln in lines]


def test_an_explicit_policy_wins_over_the_run_schedule(catalog, tmp_path):
    _run_folder(catalog, tmp_path, [0.1, 0.3, 0.3])
    plot = tmp_path / "w.png"
    cfg = WhatIfConfig(sku="sku2", n_episodes=20)
    run_plan = what_if_command(tmp_path / "catalog.parquet", cfg, plot_path=plot)
    assert f"schedule: {tmp_path / 'schedules.csv'}" in run_plan
    assert "weekly discount: 10%, 30%, 30%" in run_plan and plot.exists()
    fixed = what_if_command(
        tmp_path / "catalog.parquet", cfg, plot_path=plot, policy="fixed:0.2", weeks=3
    )
    assert "schedule: fixed:0.2 (fixed policy over 3 weeks)" in fixed
    assert "weekly discount: 20%, 20%, 20%\n" in fixed
    # Same form both ways: only the plan and the numbers differ.
    assert _body(run_plan) == _body(fixed)
    with pytest.raises(ConfigError, match="not both"):
        what_if_command(
            tmp_path / "catalog.parquet",
            cfg,
            plot_path=plot,
            policy="fixed:0.2",
            schedule_path=tmp_path / "schedules.csv",
        )
    (tmp_path / "schedules.csv").unlink()
    text = what_if_command(
        tmp_path / "catalog.parquet",
        WhatIfConfig(sku="sku2", n_episodes=20, exit_week=2),
        plot_path=plot,
        weeks=4,
    )
    assert "fixed:0.3 (fixed policy over 4 weeks; no run's schedule found)" in text
    assert "weekly discount: 30%, 30%\n" in text


def test_one_default_for_the_run_and_the_what_if(tmp_path):
    ev = EvaluationConfig()
    assert (ev.n_episodes, ev.draw_parameters, ev.ci_level) == (
        DEFAULT_N_EPISODES,
        DEFAULT_DRAW_PARAMETERS,
        DEFAULT_CI_LEVEL,
    )
    assert PipelineConfig().seed == SimulationSettings().seed
    assert WhatIfConfig(sku="x").settings() == SimulationSettings()
    run = SimulationSettings(seed=4, n_episodes=30, draw_parameters=False, ci_level=0.9)
    assert WhatIfConfig(sku="x").settings(run) == run
    assert WhatIfConfig(sku="x", n_episodes=7).settings(run).n_episodes == 7
    assert read_simulation_settings(tmp_path) is None
    write_simulation_settings(run, tmp_path)
    assert read_simulation_settings(tmp_path) == run
    (tmp_path / "simulation.json").write_text("{not json")
    with pytest.raises(DataError, match="simulation settings"):
        read_simulation_settings(tmp_path)


@pytest.mark.slow
def test_the_what_if_gives_the_run_summary_numbers(catalog, tmp_path):
    """The same SKU and plan give the same numbers in the what-if and in sku_summary."""
    from agents.baselines import FixedDiscount
    from app.exports import schedules_table, sku_summary_table
    from app.presentation import TableContext
    from app.stage_record import StageRecord
    from app.stages import PolicyOut, evaluate_stage

    cfg = PipelineConfig(seed=3, horizon_weeks=6, evaluation=EvaluationConfig(n_episodes=40))
    sub = catalog.take(np.arange(5))
    ev = evaluate_stage(cfg, sub, PolicyOut(FixedDiscount(0.3), "test"), 11, StageRecord("e"))
    settings = SimulationSettings(
        seed=cfg.seed, n_episodes=cfg.evaluation.n_episodes, draw_parameters=True, ci_level=0.95
    )
    scores = pd.DataFrame({"sku": sub.sku, "risk": 0.9, "tier": "high"})
    ctx = TableContext(settings=settings)
    summary = sku_summary_table(sub, scores, ev.outcomes, "K", ctx).set_index("sku")
    sub.to_frame().to_parquet(tmp_path / "catalog.parquet")
    schedules_table(ev.outcomes["recommended"], "K", sub, ctx).to_csv(
        tmp_path / "schedules.csv", index=False
    )
    write_simulation_settings(settings, tmp_path)
    rec = ev.outcomes["recommended"]
    for i, sku in enumerate(map(str, sub.sku)):
        # Exactly, through the plan read back from its export:
        _, _, table = what_if(
            sub, read_schedule(tmp_path / "schedules.csv"), WhatIfConfig(sku=sku), run=settings
        )
        profit = table.set_index("metric").loc["profit"]
        assert profit["mean"] == rec.sku_mean("profit")[i]
        diff = rec.totals["profit"][i] - ev.outcomes["no_markdown"].totals["profit"][i]
        assert profit["vs_no_markdown"] == diff.mean()
        # As printed by deadstock simulate --sku, with the run's settings found beside it:
        text = what_if_command(
            tmp_path / "catalog.parquet", WhatIfConfig(sku=sku), plot_path=tmp_path / "p.png"
        )
        assert "(the run's settings)" in text and settings.describe() in text
        line = next(ln for ln in text.splitlines() if ln.startswith("profit "))
        numbers = [float(x.replace(",", "")) for x in re.findall(r"[-+]?[\d,]+\.\d+", line)]
        assert numbers[0] == summary.loc[sku, "rec_profit"]
        assert numbers[3] == summary.loc[sku, "profit_vs_none"]


def test_simulate_cli_what_if(catalog, tmp_path, capsys):
    from app.cli.main import main

    _run_folder(catalog, tmp_path, [0.1, 0.3, 0.5])
    plot = tmp_path / "cli.png"
    args = ["simulate", "--catalog", str(tmp_path / "catalog.parquet"), "--sku", "sku4",
            "--max-discount", "0.4", "--episodes", "30", "--plot", str(plot)]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "weekly discount: 10%, 30%, 40%" in out and plot.exists()
    assert "30 episodes per SKU and plan" in out
    # An explicit --policy wins over the run's schedule beside the catalog.
    assert main([*args, "--policy", "fixed:0.2"]) == 0
    assert "weekly discount: 20%, 20%, 20%" in capsys.readouterr().out.split("\n", 2)[2]
    assert main(args[:5] + ["--sku", "sku5", "--exit-week", "2"]) == 2
    assert "exactly one --sku" in capsys.readouterr().err
