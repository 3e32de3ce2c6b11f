"""The SB3 -> MLflow writer logs each dump as one batched call."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from stable_baselines3.common.logger import Logger

from experiments import tracking
from experiments.mlflow_writer import MLflowOutputFormat


def test_each_dump_is_one_log_call():
    calls: list[tuple[dict[str, float], int]] = []
    writer = MLflowOutputFormat(step_offset=10, log_fn=lambda m, s: calls.append((dict(m), s)))
    logger = Logger(folder=None, output_formats=[writer])
    for step in (100, 200):
        logger.record("train/loss", 0.5)
        logger.record("train/approx_kl", np.float32(0.01))
        logger.record("rollout/ep_rew_mean", 1.25)
        logger.record("time/fps_total", 5)  # bookkeeping: skipped
        logger.record("config/name", "text")  # not a number: skipped
        logger.record("train/excluded", 3.0, exclude="mlflow")
        logger.dump(step)
    assert len(calls) == 2
    metrics, step = calls[0]
    assert step == 110
    assert set(metrics) == {"train/loss", "train/approx_kl", "rollout/ep_rew_mean"}
    assert metrics["train/approx_kl"] == pytest.approx(0.01)
    assert calls[1][1] == 210
    assert writer.n_calls == 2


def test_writes_to_the_active_run_in_one_batch(monkeypatch):
    batches: list[int] = []
    real = mlflow.log_metrics

    def counting(metrics, *args, **kwargs):
        batches.append(len(metrics))
        return real(metrics, *args, **kwargs)

    monkeypatch.setattr(mlflow, "log_metrics", counting)
    monkeypatch.setattr(mlflow, "log_metric", lambda *a, **k: pytest.fail("per-metric call"))
    logger = Logger(folder=None, output_formats=[MLflowOutputFormat()])
    with tracking.start_run("test__writer", experiment="tests-writer") as run:
        for step in range(3):
            logger.record("train/loss", float(step))
            logger.record("train/entropy_loss", -1.0)
            logger.dump(step)
    assert batches == [2, 2, 2]
    history = MlflowClient().get_metric_history(run.info.run_id, "train/loss")
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == [0.0, 1.0, 2.0]
