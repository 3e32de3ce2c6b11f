"""``deadstock simulate --sku``: the what-if from files, the run's exports and the CLI."""

from __future__ import annotations

import numpy as np
import pytest

from app.whatif import read_rules, what_if_command, what_if_from_files
from ingest.errors import ConfigError
from planning.schedule import Schedule
from planning.whatif import WhatIfConfig


@pytest.fixture(scope="module")
def catalog(plan_catalog):
    return plan_catalog


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
    assert plot is not None and plot.exists()
    assert set(table["metric"]) >= {"profit", "sell_through", "leftover_units"}
    rules.write_text("[rules]\ndiscount_levels = [0.1]\n")
    with pytest.raises(ConfigError, match="must start at 0.0"):
        read_rules(rules)


def test_what_if_command_uses_the_run_exports(catalog, tmp_path):
    catalog.to_frame().to_parquet(tmp_path / "catalog.parquet")
    sched = Schedule(catalog.sku, np.tile([0.1, 0.3, 0.3], (12, 1)), np.zeros((12, 3)))
    sched.to_frame().to_csv(tmp_path / "schedules.csv", index=False)
    plot = tmp_path / "w.png"
    text = what_if_command(
        tmp_path / "catalog.parquet",
        WhatIfConfig(sku="sku2", n_episodes=20),
        plot_path=plot,
    )
    assert f"schedule: {tmp_path / 'schedules.csv'}" in text
    assert "weekly discount: 10%, 30%, 30%" in text and plot.exists()
    (tmp_path / "schedules.csv").unlink()
    text = what_if_command(
        tmp_path / "catalog.parquet",
        WhatIfConfig(sku="sku2", n_episodes=20, exit_week=2),
        plot_path=plot,
        policy="fixed:0.2",
        weeks=4,
    )
    assert "fixed:0.2 (fixed policy over 4 weeks)" in text and "weekly discount: 20%, 20%\n" in text


def test_simulate_cli_what_if(catalog, tmp_path, capsys):
    from app.cli.main import main

    catalog.to_frame().to_parquet(tmp_path / "catalog.parquet")
    sched = Schedule(catalog.sku, np.tile([0.1, 0.3, 0.5], (12, 1)), np.zeros((12, 3)))
    sched.to_frame().to_csv(tmp_path / "schedules.csv", index=False)
    plot = tmp_path / "cli.png"
    args = ["simulate", "--catalog", str(tmp_path / "catalog.parquet"), "--sku", "sku4",
            "--max-discount", "0.4", "--n-runs", "30", "--plot", str(plot)]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "weekly discount: 10%, 30%, 40%" in out and plot.exists()
    assert main(args[:5] + ["--sku", "sku5", "--exit-week", "2"]) == 2
    assert "exactly one --sku" in capsys.readouterr().err
