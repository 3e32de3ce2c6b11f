"""MLflow tracking shared by every runner: the local store, run names, tags and batching.

The default store is a SQLite file (``mlflow.db``) with an artifact folder (``mlartifacts/``)
in the working folder; ``MLFLOW_TRACKING_URI`` points it elsewhere. Metrics are always
logged in batches (``log_metrics`` with a dict), never one call per step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import mlflow

DEFAULT_EXPERIMENT = "deadstock"


def tracking_uri() -> str:
    """The tracking URI in force: ``MLFLOW_TRACKING_URI`` or the local SQLite store."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def setup(experiment: str = DEFAULT_EXPERIMENT) -> str:
    """Point MLflow at the store and select (creating if needed) ``experiment``.

    Returns the experiment id. A new experiment in the local SQLite store keeps its artifacts
    in ``./mlartifacts``.
    """
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    exp = mlflow.get_experiment_by_name(experiment)
    if exp is None:
        location = None
        if uri.startswith("sqlite:") and "MLFLOW_TRACKING_URI" not in os.environ:
            location = (Path.cwd() / "mlartifacts").as_uri()
        exp_id = mlflow.create_experiment(experiment, artifact_location=location)
    else:
        exp_id = exp.experiment_id
    mlflow.set_experiment(experiment_id=exp_id)
    return str(exp_id)


def code_version() -> str:
    """The git commit of the code (with ``-dirty`` when there are local changes), or
    ``"unknown"`` outside a git checkout."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
        return sha + ("-dirty" if dirty.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def run_name(kind: str, label: str, seed: int | None = None) -> str:
    """CleanRL-style run name ``kind__label__seed__unixtime`` so runs can be found again."""
    parts = [kind, label] + ([f"s{seed}"] if seed is not None else []) + [str(int(time.time()))]
    return "__".join(parts)


def flatten_config(config: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten a (nested) dataclass or mapping into ``{"a.b": value}`` params for MLflow."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        items: Mapping[str, Any] = {
            f.name: getattr(config, f.name) for f in dataclasses.fields(config)
        }
    elif isinstance(config, Mapping):
        items = config
    else:
        return {prefix.rstrip("."): config}
    out: dict[str, Any] = {}
    for key, value in items.items():
        if (dataclasses.is_dataclass(value) and not isinstance(value, type)) or isinstance(
            value, Mapping
        ):
            out.update(flatten_config(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@contextlib.contextmanager
def start_run(
    name: str,
    *,
    tags: Mapping[str, str] | None = None,
    config: Any = None,
    seed: int | None = None,
    data_fingerprint: str | None = None,
    nested: bool = False,
    experiment: str = DEFAULT_EXPERIMENT,
) -> Iterator[mlflow.ActiveRun]:
    """Start a named, tagged run that logs its config, seed, code version and data
    fingerprint. Nested runs go under the active parent run."""
    if not nested or mlflow.active_run() is None:
        setup(experiment)
    all_tags = {"code_version": code_version()}
    if seed is not None:
        all_tags["seed"] = str(seed)
    if data_fingerprint:
        all_tags["data_fingerprint"] = data_fingerprint
    all_tags.update(tags or {})
    with mlflow.start_run(run_name=name, nested=nested, tags=all_tags) as run:
        if config is not None:
            params = {k: str(v)[:6000] for k, v in flatten_config(config).items()}
            mlflow.log_params(params)
        yield run


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    """Log a batch of metrics in one call, dropping non-finite values (MLflow rejects NaN
    in some stores, and a missing metric is clearer than a fake one)."""
    clean = {
        k: float(v)
        for k, v in metrics.items()
        if v is not None and float(v) == float(v) and abs(float(v)) != float("inf")
    }
    if clean:
        mlflow.log_metrics(clean, step=step)
