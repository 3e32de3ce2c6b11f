"""Test-wide settings: MLflow points at a temporary SQLite store and never phones home."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ.setdefault("MPLBACKEND", "Agg")
_STORE = Path(tempfile.mkdtemp(prefix="deadstock-mlflow-"))
os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{_STORE / 'mlflow.db'}"


@pytest.fixture(scope="session")
def mlflow_store() -> Path:
    """Folder of the session's temporary MLflow store."""
    return _STORE


@pytest.fixture(autouse=True)
def _no_leaked_mlflow_run():
    """Fail a test that leaves an MLflow run open."""
    yield
    import sys

    if "mlflow" in sys.modules:
        import mlflow

        if mlflow.active_run() is not None:
            mlflow.end_run()
            pytest.fail("test leaked an active MLflow run")
