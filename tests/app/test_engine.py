"""The engine setting (local or Ray) and the bulk export through it: same seed, same bytes on
both engines; a Ray export killed mid-way leaves the previous export whole; bad settings are
refused before any work."""

from __future__ import annotations

import functools
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agents.baselines import Myopic
from app.engine import LocalEngine, RayEngine, make_engine
from app.exports import BULK_STAGING_GLOB, bulk_blocks, export_schedules_bulk
from app.pipeline_config import DEFAULT_RULES, PipelineConfig
from ingest.errors import ConfigError, DataError
from simulator.demand import Catalog

ROOT = Path(__file__).resolve().parents[2]


def _catalog(n: int, seed: int = 0) -> Catalog:
    rng = np.random.default_rng(seed)
    price = rng.uniform(1.0, 10.0, n)
    return Catalog.build(
        n_skus=n,
        sku=np.array([f"S{i:05d}" for i in range(n)], dtype=object),
        base_demand=rng.lognormal(1.0, 0.8, n),
        elasticity=-rng.uniform(1.0, 3.5, n),
        list_price=price,
        unit_cost=price * rng.uniform(0.4, 0.8, n),
        initial_stock=rng.integers(10, 200, n).astype(float),
        dispersion=0.3,
        holding_cost_per_unit_week=price * 0.003,
    )


def _export(target: Path, engine, n: int = 300, chunk: int = 70, seed: int = 5) -> int:
    return export_schedules_bulk(
        Myopic(),
        _catalog(n),
        DEFAULT_RULES,
        8,
        target,
        plan_key="k",
        plan_episodes=2,
        n_episodes=4,
        seed=seed,
        chunk_skus=chunk,
        progress=False,
        engine=engine,
    )


# ------------------------------------------------------------------ config and validation
def test_engine_setting_is_validated_before_any_work(tmp_path, monkeypatch):
    from app.config import load_config

    bad = tmp_path / "plan.toml"
    bad.write_text('engine = "spark"\n')
    with pytest.raises(ConfigError, match=r"engine = \"spark\": expected one of 'local', 'ray'"):
        load_config(PipelineConfig, bad)
    with pytest.raises(ConfigError, match="engine = 'spark': expected 'local' or 'ray'"):
        make_engine("spark")
    cfg = load_config(PipelineConfig, None, overrides={"engine": "ray"})
    assert cfg.engine == "ray"
    # the engine is not a setting of the plan: both engines give the same plan key
    assert cfg.plan_key("x") == PipelineConfig().plan_key("x")
    # a closed port: refused in seconds, naming the variable, the value and what is expected
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
    with pytest.raises(ConfigError, match=rf"RAY_ADDRESS = '127.0.0.1:{port}': no Ray cluster"):
        make_engine("ray")
    monkeypatch.setenv("RAY_ADDRESS", "no-port-here")
    with pytest.raises(ConfigError, match="expected a Ray cluster address"):
        make_engine("ray")


def test_ray_mode_setting_is_validated_before_any_work(tmp_path, monkeypatch):
    from app.config import load_config

    bad = tmp_path / "plan.toml"
    bad.write_text('engine = "ray"\nray_mode = "actors"\n')
    with pytest.raises(
        ConfigError, match=r"ray_mode = \"actors\": expected one of 'tasks', 'data'"
    ):
        load_config(PipelineConfig, bad)
    with pytest.raises(ConfigError, match="ray_mode = 'actors': expected 'tasks' or 'data'"):
        PipelineConfig(ray_mode="actors")  # type: ignore[arg-type]
    # refused before Ray is asked for anything (a cluster address nothing answers on)
    monkeypatch.setenv("RAY_ADDRESS", "no-port-here")
    with pytest.raises(ConfigError, match="ray_mode = 'actors': expected 'tasks' or 'data'"):
        make_engine("ray", ray_mode="actors")
    with pytest.raises(ConfigError, match="ray_mode = 'actors'"):
        make_engine("local", ray_mode="actors")
    cfg = load_config(PipelineConfig, None, overrides={"engine": "ray", "ray_mode": "data"})
    assert (cfg.engine, cfg.ray_mode) == ("ray", "data")
    assert cfg.plan_key("x") == PipelineConfig().plan_key("x")  # not a setting of the plan


class _OneCpuRay:
    """Stands in for the ``ray`` module of a 1-CPU cluster."""

    @staticmethod
    def cluster_resources() -> dict[str, float]:
        return {"CPU": 1.0}

    @staticmethod
    def remote(**_: object):
        return lambda fn: fn


def test_data_mode_refuses_a_one_cpu_cluster_instead_of_hanging(monkeypatch):
    """An actor pool that takes every CPU leaves Ray Data's tasks unscheduled and hangs: the
    data mode needs 2 CPUs and says so before any work; the tasks mode runs on one."""
    import app.engine

    monkeypatch.setattr(app.engine, "_connect", lambda address, num_cpus: _OneCpuRay())
    with pytest.raises(ConfigError, match=r"ray_mode = 'data': the Ray cluster has 1 CPU; "
                       r"expected at least 2"):  # fmt: skip
        RayEngine(None, mode="data")
    assert RayEngine(None, mode="tasks").max_in_flight == 2


def test_cli_refuses_a_bad_engine_and_an_unreachable_cluster(tmp_path):
    """``deadstock run --engine`` and RAY_ADDRESS: exit 2 and one line, before any work."""
    exe = str(ROOT / ".venv" / "bin" / "deadstock")
    out = tmp_path / "out"
    proc = subprocess.run(
        [exe, "run", "--engine", "spark", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and "spark" in proc.stderr and "ray" in proc.stderr
    proc = subprocess.run(
        [exe, "run", "--engine", "ray", "--ray-mode", "actors", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and "--ray-mode" in proc.stderr and "'data'" in proc.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, RAY_ADDRESS=f"127.0.0.1:{port}")
    proc = subprocess.run(
        [exe, "run", "--engine", "ray", "--out", str(out), "--data", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 2, proc.stderr
    assert f"RAY_ADDRESS = '127.0.0.1:{port}'" in proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()


def test_blocks_and_seeds_depend_on_the_config_only():
    blocks = bulk_blocks(250, 100, seed=3)
    assert [(a, b) for a, b, _ in blocks] == [(0, 100), (100, 200), (200, 250)]
    assert blocks == bulk_blocks(250, 100, seed=3)
    assert len({s for _, _, s in blocks}) == 3
    with pytest.raises(ConfigError, match="chunk_skus = 0"):
        bulk_blocks(10, 0, seed=0)


def test_local_bulk_export_is_the_same_whatever_the_blocks(tmp_path):
    """A SKU's simulated numbers are keyed by its id: cutting the catalog differently changes
    only the planning seeds; the default one-block export is whole and in SKU order."""
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    rows = _export(a, LocalEngine(), chunk=70)
    assert rows == 300 * 8
    frame = pd.read_csv(a, dtype={"sku": str})
    assert len(frame) == rows and list(frame["sku"].unique()) == [f"S{i:05d}" for i in range(300)]
    _export(b, "local", chunk=70)
    assert a.read_bytes() == b.read_bytes()
    assert not list(tmp_path.glob(BULK_STAGING_GLOB.format(name="a.csv")))


# ------------------------------------------------------------------------------- on Ray
class _Counted:
    """A shared object that appends the id of every process that unpickles it to ``log``:
    loaded once per Ray worker or actor, the log has one line per process."""

    def __init__(self, log: str, offset: int) -> None:
        self.log = log
        self.offset = offset

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        with open(self.log, "a") as f:
            f.write(f"{os.getpid()}\n")


def _scaled(shared: _Counted, block: int) -> tuple[int, int, np.ndarray]:
    time.sleep(0.02 * (block % 3))  # uneven blocks: a reorder would show
    return os.getpid(), block * 2 + shared.offset, np.full(3, block)


def _logged(shared: _Counted, block: int) -> int:
    """A slow block that records that it ran (in the shared object's log's sibling)."""
    with open(shared.log + ".blocks", "a") as f:
        f.write(f"{block}\n")
    time.sleep(0.2)
    return block


def _refused(shared: _Counted, block: int) -> int:
    if block == 2:
        raise DataError(f"block {block}: column 'x' has -1, expected >= 0")
    return block


def _cpus_free(ray, within_s: float = 60.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if ray.available_resources().get("CPU", 0) == ray.cluster_resources()["CPU"]:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("mode", ["tasks", "data"])
def test_ray_map_blocks_gives_the_local_results_in_order(tmp_path, ray_local, mode):
    """Both Ray modes yield what the local engine yields, in block order, with the shared
    object unpickled once per worker process (data mode: per actor of the pool, one with
    2 CPUs), not once per block."""
    log = tmp_path / "loads.txt"
    shared = _Counted(str(log), 100)
    blocks = list(range(12))
    local = list(LocalEngine().map_blocks(_scaled, blocks, shared))
    engine = make_engine("ray", ray_mode=mode)
    remote = list(engine.map_blocks(_scaled, iter(blocks), shared))
    assert [v for _, v, _ in remote] == [v for _, v, _ in local] == [100 + 2 * b for b in blocks]
    for (_, _, a), (_, _, b) in zip(remote, local, strict=True):
        np.testing.assert_array_equal(a, b)
    loads = log.read_text().split()
    workers = {str(pid) for pid, _, _ in remote}
    assert sorted(loads) == sorted(workers), "one load per worker process, by the workers"
    assert len(loads) < len(blocks)
    if mode == "data":
        assert len(workers) == 1  # cpus - 1 actors: one with 2 CPUs
    assert list(engine.map_blocks(_scaled, [], shared)) == []


@pytest.mark.parametrize("mode", ["tasks", "data"])
def test_ray_map_blocks_stops_when_the_consumer_stops(tmp_path, ray_local, mode):
    """A consumer that raises after two results leaves nothing running: every CPU of the
    cluster is free again and the remaining blocks never run."""
    shared = _Counted(str(tmp_path / "loads.txt"), 0)
    engine = make_engine("ray", ray_mode=mode)
    n = 40
    with pytest.raises(RuntimeError, match="consumer stops"):
        for k, value in enumerate(engine.map_blocks(_logged, range(n), shared)):
            assert value == k
            if k == 1:
                raise RuntimeError("consumer stops")
    assert _cpus_free(ray_local), ray_local.available_resources()
    ran = (tmp_path / "loads.txt.blocks").read_text().split()
    time.sleep(1.0)
    assert (tmp_path / "loads.txt.blocks").read_text().split() == ran, "blocks still running"
    assert 2 <= len(ran) < n


@pytest.mark.parametrize("mode", ["tasks", "data"])
def test_ray_raises_a_blocks_error_as_it_is(tmp_path, ray_local, mode):
    """A block's DataError reaches the caller as that DataError (its one-line message for the
    CLI), not as Ray's or Ray Data's wrapper, after the blocks before it; nothing is left
    running. A task of run_tasks does the same."""
    shared = _Counted(str(tmp_path / "loads.txt"), 0)
    engine = make_engine("ray", ray_mode=mode)
    got = []
    with pytest.raises(DataError) as raised:
        for value in engine.map_blocks(_refused, range(6), shared):
            got.append(value)
    assert type(raised.value) is DataError
    assert str(raised.value) == "block 2: column 'x' has -1, expected >= 0"
    assert "_refused" in "".join(raised.value.__notes__)  # the worker's traceback, as a note
    assert got == [0, 1]
    assert _cpus_free(ray_local), ray_local.available_resources()
    with pytest.raises(DataError) as raised:
        engine.run_tasks(functools.partial(_refused, shared), [0, 2])
    assert type(raised.value) is DataError
    assert str(raised.value) == "block 2: column 'x' has -1, expected >= 0"


def test_ray_bulk_export_is_byte_identical_to_local(tmp_path, ray_local):
    for suffix in (".parquet", ".csv"):
        local, remote = tmp_path / f"local{suffix}", tmp_path / f"ray{suffix}"
        assert _export(local, "local") == _export(remote, "ray")
        assert local.read_bytes() == remote.read_bytes(), suffix
    frame = pd.read_parquet(tmp_path / "ray.parquet")
    assert len(frame) == 300 * 8 and frame["sku"].is_monotonic_increasing
    data = tmp_path / "data.parquet"
    assert _export(data, make_engine("ray", ray_mode="data")) == 300 * 8
    assert data.read_bytes() == (tmp_path / "local.parquet").read_bytes()


_KILLED_EXPORT = """
import sys, time
import numpy as np
from agents.baselines import Myopic
from app.engine import make_engine
from app.exports import export_schedules_bulk
from app.pipeline_config import DEFAULT_RULES
from tests.app.test_engine import _catalog

class SlowMyopic(Myopic):
    # slow enough that the test kills the run between its first block and its last
    def act(self, observations, masks, context=None):
        time.sleep(0.05)
        return super().act(observations, masks, context)

export_schedules_bulk(SlowMyopic(), _catalog(300), DEFAULT_RULES, 8, sys.argv[1],
    plan_key="k", plan_episodes=2, n_episodes=4, seed=5, chunk_skus=10, progress=False,
    engine=make_engine("ray", ray_mode=sys.argv[2]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["tasks", "data"])
def test_killed_ray_export_leaves_the_previous_export_whole(tmp_path, ray_local, mode):
    """A Ray export (a driver process on the session's cluster via RAY_ADDRESS) killed with
    SIGKILL after its first part is written leaves the previous file byte-identical and no
    work running on the cluster; the next export removes the killed one's staging folder."""
    target = tmp_path / "schedules.parquet"
    _export(target, "local")
    before = target.read_bytes()
    env = dict(
        os.environ,
        RAY_ADDRESS=ray_local.get_runtime_context().gcs_address,
        PYTHONPATH=str(ROOT),
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_KILLED_EXPORT), str(target), mode],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    staging_glob = BULK_STAGING_GLOB.format(name=target.name)
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(f"{staging_glob}/part-*.parquet")):
            assert proc.poll() is None, "the export ended before its first part was written"
            assert time.monotonic() < deadline, "no part written within 120 s"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert _cpus_free(ray_local), (
        f"the killed driver's work still runs: {ray_local.available_resources()}"
    )
    assert list(tmp_path.glob(staging_glob)), "the killed run's staging folder is where it was"
    assert target.read_bytes() == before
    assert len(pd.read_parquet(target)) == 300 * 8
    _export(target, "local")
    assert not list(tmp_path.glob(staging_glob))
    assert target.read_bytes() == before


@pytest.mark.parametrize("mode", ["local", "ray-data"])
def test_block_simulation_gives_the_numbers_of_one_block(plan_catalog, request, mode):
    """The evaluate stage's simulation block by block (here in this process, and as Ray Data
    ``map_batches``) gives exactly the numbers of the whole catalog at once: a SKU's random
    numbers are keyed by its id."""
    from app.blocks import BlockSimulator
    from planning.outcomes import simulate_schedules
    from planning.schedule import Schedule

    n = plan_catalog.n_skus
    depth = np.tile(np.linspace(0.0, 0.3, 6), (n, 1))
    plans = {
        "ramp": Schedule(plan_catalog.sku, depth, np.zeros_like(depth), "ramp"),
        "none": Schedule.constant(plan_catalog.sku, 6, 0.0, "none"),
    }
    settings = dict(n_episodes=20, seed=11, ci_level=0.9, draw_parameters=True)
    whole = simulate_schedules(plan_catalog, plans, **settings)
    if mode == "local":
        engine = LocalEngine()
    else:
        request.getfixturevalue("ray_local")
        engine = make_engine("ray", ray_mode="data")
    blocks = BlockSimulator(engine, 5)(plan_catalog, plans, **settings)
    for name in plans:
        for field in ("totals", "weekly_mean", "weekly_sd"):
            for key, value in getattr(whole[name], field).items():
                np.testing.assert_array_equal(getattr(blocks[name], field)[key], value)
        np.testing.assert_array_equal(blocks[name].schedule.discount, plans[name].discount)


def test_demand_fit_on_ray_is_the_local_fit(ray_local):
    """The fit's category groups as tasks: the same arrays on Ray as in this process."""
    from ingest.dataset import Dataset
    from ingest.panel import build_panel
    from simulator.fit import FitConfig, fit_catalog
    from simulator.synthetic import SyntheticConfig, generate_world

    world = generate_world(SyntheticConfig(n_skus=120, n_weeks=40, n_categories=4, seed=5))
    panel = build_panel(Dataset(tables=world.tables, source="synthetic", fingerprint="r"))
    local = fit_catalog(panel, FitConfig(), map_tasks=LocalEngine().run_tasks)
    on_ray = fit_catalog(panel, FitConfig(), map_tasks=make_engine("ray").run_tasks)
    assert local.categories.shape[0] >= 3
    for name in ("elasticity", "elasticity_se", "base_demand", "season", "dispersion"):
        np.testing.assert_array_equal(getattr(on_ray.catalog, name), getattr(local.catalog, name))
    np.testing.assert_array_equal(
        on_ray.estimates["elasticity_raw"].to_numpy(), local.estimates["elasticity_raw"].to_numpy()
    )
