"""Shared fixtures: small synthetic worlds, their weekly panels and a fitted backtest."""

from __future__ import annotations

import pandas as pd
import pytest

from ingest.dataset import Dataset
from ingest.panel import build_panel
from risk_model.backtest import BacktestConfig, run_backtest
from simulator.synthetic import SyntheticConfig, generate_world


def world_dataset(config: SyntheticConfig) -> tuple[Dataset, pd.DataFrame]:
    """A synthetic world as a Dataset, with its truth frame."""
    world = generate_world(config)
    ds = Dataset(
        tables=dict(world.tables), source=f"synthetic:{config.seed}", fingerprint=f"s{config.seed}"
    )
    return ds, world.truth


@pytest.fixture(scope="session")
def synth():
    """(dataset, panel, truth) of an 800-SKU, 60-week synthetic world with baskets."""
    ds, truth = world_dataset(
        SyntheticConfig(n_skus=800, n_weeks=60, seed=11, dead_share=0.3, with_baskets=True)
    )
    return ds, build_panel(ds), truth


@pytest.fixture(scope="session")
def synth_backtest(synth):
    """A backtest of LR and XGBoost on the synthetic world (train 30, test 44)."""
    ds, panel, _ = synth
    cfg = BacktestConfig(
        train_cutoff=30, test_cutoff=44, models=("lr", "xgb"), n_bootstrap=50, seed=0
    )
    return run_backtest(ds, panel, cfg)
