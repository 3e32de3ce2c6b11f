"""Test-wide settings: MLflow points at a temporary SQLite store and never phones home; torch
uses one thread (the entry point's job, as in the CLI)."""

from __future__ import annotations

import os
import signal
import tempfile
from pathlib import Path

import numpy as np
import pytest

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ.setdefault("MPLBACKEND", "Agg")
_STORE = Path(tempfile.mkdtemp(prefix="deadstock-mlflow-"))
os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{_STORE / 'mlflow.db'}"


def pytest_configure(config: pytest.Config) -> None:
    """Set what an entry point sets: the tests train tiny networks, about 4x faster on one
    torch thread, and the library leaves the thread count to its caller."""
    import torch

    torch.set_num_threads(1)


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


@pytest.fixture(scope="session")
def postgres_server():
    """URL of a live PostgreSQL server started for this test session (see ``tests/pg.py``);
    skips when Debian's postgresql is not installed."""
    from tests.pg import bin_dir, running_server

    binaries = bin_dir()
    if binaries is None:
        pytest.skip("no initdb binary: install Debian's postgresql (.ci/run does)")
    with running_server(binaries) as url:
        yield url


@pytest.fixture(scope="module")
def postgres_url(postgres_server):
    """A fresh, empty database on the session's PostgreSQL server, one per test module."""
    from tests.pg import fresh_database

    return fresh_database(postgres_server)


@pytest.fixture(scope="module")
def plan_catalog():
    """Twelve SKUs with known demand (``sku0`` .. ``sku11``) for plan and what-if tests."""
    from simulator.demand import Catalog

    n = 12
    return Catalog.build(
        n_skus=n,
        base_demand=np.linspace(1.0, 6.0, n),
        elasticity=-2.5,
        elasticity_se=0.2,
        list_price=2.0,
        unit_cost=1.0,
        initial_stock=40.0,
        dispersion=0.3,
        holding_cost_per_unit_week=0.01,
    )


@pytest.fixture(scope="session")
def ray_local():
    """A local Ray with 2 CPUs, started once for the whole session (about 10 s) and shared by
    every test that needs one; code under test finds it initialized and uses it.

    2 CPUs whatever the machine: CI has 2, and an actor pool that asks for more CPUs than
    exist hangs instead of failing, so the tests see what CI sees.
    """
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # never phones home
    started = not ray.is_initialized()
    # ray.init installs a SIGTERM handler; later tests expect the process's own handlers
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    if started:
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
        for sig, handler in handlers.items():
            if handler is not None:
                signal.signal(sig, handler)
    yield ray
    if started:
        ray.shutdown()
