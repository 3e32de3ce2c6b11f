"""A run's lifecycle on a tiny world: registered models and their reuse, the MLflow record,
FAILED and KILLED runs, a second run refused, and kills during export that never mix runs.

The module has its own MLflow store (the registry's champions are part of what is tested).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from app.cli.main import main
from app.outputs import lock_path, manifest_problems, read_manifest

pytestmark = pytest.mark.slow

TOML = """
horizon_weeks = 6

[selection]
threshold = 0.1
max_skus = 6

[evaluation]
n_episodes = 20

[ppo]
total_timesteps = 2048

[risk]
backtest = false
min_positives = 2
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A 400-SKU world, a run config, and this module's own MLflow store and cache."""
    from simulator.synthetic import SyntheticConfig, generate_world, write_world

    root = tmp_path_factory.mktemp("lifecycle")
    world = root / "world"
    write_world(generate_world(SyntheticConfig(n_skus=400, n_weeks=52, seed=3)), world)
    (root / "run.toml").write_text(TOML)
    (root / "fail.toml").write_text(TOML.replace("threshold = 0.1", "threshold = 1.0"))
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "DEADSTOCK_CACHE_DIR")}
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    os.environ["DEADSTOCK_CACHE_DIR"] = str(root / "cache")
    yield root
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    mlflow.set_tracking_uri(saved["MLFLOW_TRACKING_URI"])


def _args(env: Path, out: Path, config: str = "run.toml", *extra: str) -> list[str]:
    return ["run", "--quick", "--data", str(env / "world"), "--out", str(out),
            "--config", str(env / config), *extra]  # fmt: skip


def _pipeline_runs() -> list:
    runs = mlflow.search_runs(
        search_all_experiments=True, filter_string="tags.kind = 'pipeline'", output_format="list"
    )
    return sorted(runs, key=lambda r: r.info.start_time)


def _versions(name: str) -> list:
    return mlflow.MlflowClient().search_model_versions(f"name = '{name}'")


def _siblings(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


@pytest.fixture(scope="module")
def first(env):
    out = env / "out"
    assert main(_args(env, out)) == 0
    return out, _pipeline_runs()[-1]


def test_a_run_registers_its_models_and_logs_its_outputs(first):
    out, run = first
    assert manifest_problems(out) == []
    manifest = read_manifest(out)
    assert manifest["mlflow_run_id"] == run.info.run_id
    assert run.data.tags["risk.source"] == "trained" and run.data.tags["policy.source"] == "trained"
    client = mlflow.MlflowClient()
    risk = client.get_model_version_by_alias("deadstock-risk", "champion")
    assert risk.tags["pipeline_run"] == run.info.run_id and risk.tags["fit_key"]
    policy = _versions("deadstock-policy")
    assert [v.tags["pipeline_run"] for v in policy] == [run.info.run_id]
    gain = run.data.metrics["plan/ppo/gain_vs_none"]
    assert gain >= 0  # the tiny PPO still beats doing nothing on this world ...
    champ = client.get_model_version_by_alias("deadstock-policy", "champion")
    assert champ.version == policy[0].version  # ... so it is the champion
    # The parent run holds the run's own output folder, manifest included.
    local = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id))
    for name in ("schedules.csv", "sku_summary.csv", "catalog.parquet", "alerts.csv",
                 "policy/ppo_policy.zip", "report/report.md", "manifest.json"):  # fmt: skip
        assert (local / name).is_file(), name
    assert json.loads((local / "manifest.json").read_text()) == manifest
    for name in ("ppo", "no_markdown"):
        for key in ("profit", "gain_vs_none", "gain_vs_none_ci_low", "gain_vs_none_ci_high"):
            assert f"plan/{name}/{key}" in run.data.metrics
    assert run.data.metrics["plan/no_markdown/gain_vs_none"] == 0.0  # paired with itself


def test_a_second_run_loads_both_champions_and_gives_the_same_plan(env, first, capsys):
    out, run1 = first
    before = pd.read_csv(out / "schedules.csv", dtype={"sku": str})
    n_versions = len(_versions("deadstock-policy")), len(_versions("deadstock-risk"))
    assert main(_args(env, out)) == 0
    err = capsys.readouterr().err
    assert "loaded champion models:/deadstock-policy@champion" in err
    assert "scored by the champion models:/deadstock-risk@champion" in err
    run2 = _pipeline_runs()[-1]
    assert run2.data.tags["policy.source"] == "champion"
    assert run2.data.tags["risk.source"] == "champion"
    assert (len(_versions("deadstock-policy")), len(_versions("deadstock-risk"))) == n_versions
    pd.testing.assert_frame_equal(before, pd.read_csv(out / "schedules.csv", dtype={"sku": str}))
    assert read_manifest(out)["mlflow_run_id"] == run2.info.run_id


def test_compare_reads_pipeline_runs(first, capsys):
    assert main(["compare"]) == 0
    text = capsys.readouterr().out
    assert "Pipeline runs" in text and first[1].info.run_id in text
    assert "no_markdown" in text and "ppo" in text
    assert "No finished runs" not in text and "no finished runs" not in text


def test_a_failing_run_is_failed_in_mlflow_and_leaves_the_output(env, first, capsys):
    out, _ = first
    manifest = read_manifest(out)
    assert main(_args(env, out, "fail.toml")) == 2
    assert "no SKU is at risk" in capsys.readouterr().err
    run = _pipeline_runs()[-1]
    assert run.info.status == "FAILED"
    assert "select=failed" in run.data.tags["stages"]
    assert read_manifest(out) == manifest and manifest_problems(out) == []
    assert _siblings(out) == [".out.lock"]


def _start(env: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", *_args(env, out, "run.toml", *extra)],
        cwd=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(proc: subprocess.Popen, *words: str) -> str:
    assert proc.stderr is not None
    for line in proc.stderr:
        if all(w in line for w in words):
            return line
    raise AssertionError(f"the run ended (rc {proc.wait()}) before a line with {words}")


def test_sigterm_ends_the_runs_killed_and_leaves_the_output(env, first):
    out, _ = first
    manifest = read_manifest(out)
    proc = _start(env, out, "--policy-source", "train")
    _wait_for(proc, "policy ...")
    time.sleep(1.0)  # inside the stage's own run (importing torch takes longer)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, err[-3000:]
    run = _pipeline_runs()[-1]
    assert run.info.status == "KILLED"
    children = mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}'",
        output_format="list",
    )
    status = {c.data.tags["stage"]: c.info.status for c in children}
    assert status.pop("policy") == "KILLED"
    assert set(status.values()) == {"FINISHED"}
    assert read_manifest(out) == manifest and _siblings(out) == [".out.lock"]
    assert lock_path(out).read_text() == ""  # released


def test_a_second_run_into_the_same_output_is_refused(env, tmp_path, capsys):
    out = tmp_path / "shared"
    proc = _start(env, out)
    _wait_for(proc, "ingest ...")
    assert main(_args(env, out)) == 2
    err = capsys.readouterr().err
    assert "is in use by run pipeline__world-quick__s0__" in err and f"pid {proc.pid} " in err
    proc.communicate(timeout=600)
    assert proc.returncode == 0
    run = _pipeline_runs()[-1]
    manifest = read_manifest(out)
    assert manifest["mlflow_run_id"] == run.info.run_id and manifest_problems(out) == []
    logged = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="manifest.json"
    )
    assert json.loads(Path(logged).read_text()) == manifest  # its own artifacts, not another's


def test_runs_killed_at_random_points_of_the_export_never_mix_outputs(env, first):
    """SIGKILL at seeded random delays after the export stage starts (export, model
    registration, artifacts, publish): the folder is always one run's complete output."""
    out, _ = first
    rng = np.random.default_rng(5)
    killed = []
    for trial in range(2):  # each trial reruns the pipeline up to its export (~25 s)
        before = read_manifest(out)["mlflow_run_id"]
        proc = _start(env, out)
        _wait_for(proc, "7/8", "export")
        time.sleep(float(rng.uniform(0.0, 12.0)))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        assert manifest_problems(out) == [], trial
        after = read_manifest(out)["mlflow_run_id"]
        ids = {r.info.run_id for r in _pipeline_runs()}
        assert after == before or after in ids, trial
        killed.append(_pipeline_runs()[-1].info.run_id)
    # Each next start marked the previous killed run KILLED (the last one has no next start).
    for run_id in killed[:-1]:
        assert mlflow.get_run(run_id).info.status in ("KILLED", "FINISHED")


@pytest.mark.parametrize(
    ("n_skus", "seed"), [(200, 0), (60, 1)], ids=["readme-200-skus", "60-skus"]
)
def test_quick_run_on_small_worlds(env, tmp_path, n_skus, seed, capsys):
    """The README's example world and a 60-SKU one: too few dead SKUs for a risk model, so
    the run scores with the rule baseline and says so, instead of stopping."""
    world = tmp_path / "world"
    assert main(["data", "synth", "--n-skus", str(n_skus), "--weeks", "52", "--seed",
                 str(seed), "--out", str(world)]) == 0  # fmt: skip
    (tmp_path / "small.toml").write_text(
        "[ppo]\ntotal_timesteps = 2048\n[evaluation]\nn_episodes = 20\n"
    )
    out = tmp_path / "out"
    args = ["run", "--quick", "--data", str(world), "--out", str(out),
            "--config", str(tmp_path / "small.toml"), "--policy-source", "train"]  # fmt: skip
    assert main(args) == 0
    assert "scored by the rule baseline" in capsys.readouterr().err
    run = _pipeline_runs()[-1]
    assert run.data.tags["risk.source"] == "rule" and "rule baseline" in run.data.tags["risk.note"]
    assert "rule baseline" in (out / "report" / "report.md").read_text()
    assert manifest_problems(out) == [] and len(pd.read_csv(out / "sku_summary.csv")) >= 1
