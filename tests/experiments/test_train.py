"""Training catalogs: read back or refused with a clear message (train config files:
``tests/app/test_config.py``)."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.suite import training_catalog
from experiments.train import TrainConfig
from ingest.errors import DataError
from simulator.demand import read_catalog


def test_training_catalog_file_round_trip(tmp_path):
    cat = training_catalog(20, np.random.default_rng(0), profile="none")
    path = tmp_path / "cat.parquet"
    cat.to_frame().to_parquet(path)
    back = read_catalog(path)
    np.testing.assert_allclose(back.elasticity, cat.elasticity)
    with pytest.raises(DataError, match="not found"):
        read_catalog(tmp_path / "missing.parquet")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(DataError, match="expected a .parquet or .csv"):
        read_catalog(tmp_path / "x.json")
    assert TrainConfig(catalog=str(path)).catalog == str(path)
