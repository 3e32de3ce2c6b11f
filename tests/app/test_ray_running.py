"""``app.engine.ray_running``: Ray itself for ``deadstock sweep`` (connected as the Ray engine
connects), and the sweep's default of a Ray that is already running."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from app.engine import RAY_ADDRESS_VAR, ray_running
from ingest.errors import ConfigError, DeadstockError

ROOT = Path(__file__).resolve().parents[2]


def test_the_sweep_without_a_ray_session_needs_a_running_ray(monkeypatch):
    import ray

    from experiments.sweep import running_ray

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    with pytest.raises(DeadstockError, match="no Ray is running.*app.engine.ray_running"):
        with running_ray():
            pass


def test_the_cli_hands_the_sweep_the_engine_s_ray(monkeypatch, tmp_path):
    import experiments.sweep
    from app.cli.main import main

    seen = {}

    def fake_run_sweep(config, out, *, ray_session):
        seen["session"] = ray_session
        raise DeadstockError("stop here")

    monkeypatch.setattr(experiments.sweep, "run_sweep", fake_run_sweep)
    path = tmp_path / "sweep.toml"
    path.write_text("[space]\nn_epochs = { randint = [1, 3] }\n")
    assert main(["sweep", "--config", str(path), "--out", str(tmp_path / "out")]) == 2
    session = seen["session"]
    assert session.func is ray_running and session.keywords == {"who": "sweep"}


def test_ray_running_refuses_an_address_where_no_cluster_answers(monkeypatch):
    monkeypatch.setenv(RAY_ADDRESS_VAR, "127.0.0.1:1")
    import ray

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    with pytest.raises(ConfigError, match="RAY_ADDRESS = '127.0.0.1:1': no Ray cluster answers"):
        with ray_running(who="sweep"):
            pass


@pytest.mark.slow
def test_ray_running_uses_a_running_ray_and_leaves_it_running(ray_local):
    with ray_running() as ray:
        assert ray is ray_local and ray.is_initialized()
    assert ray_local.is_initialized()


@pytest.mark.slow
def test_ray_running_shuts_down_the_ray_it_started():
    # a fresh process: this one may already hold the session's Ray
    code = textwrap.dedent(
        """
        import ray
        from app.engine import ray_running
        with ray_running(1) as r:
            assert r.is_initialized() and r.cluster_resources()["CPU"] == 1
        assert not ray.is_initialized()
        print("ok")
        """
    )
    env = {k: v for k, v in os.environ.items() if k != RAY_ADDRESS_VAR}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")
