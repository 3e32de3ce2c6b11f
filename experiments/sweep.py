"""``deadstock sweep``: a Ray Tune search over PPO settings or one risk model's
hyperparameters with ASHA early stopping, tracked in MLflow.

Each trial trains one masked-PPO policy for the sweep's rule profile in chunks of
``timesteps_per_trial / asha.max_t`` steps and, after each chunk, scores the policy on the
suite's scenarios of that profile (``eval_episodes`` CRN paths each) and reports its % of the
reference (:data:`~experiments.sweep_config.PPO_METRICS`); ASHA stops the trials that trail
at a rung. Every trial trains with the sweep's seed on the same demand paths, so trials
differ only by their settings, and the search draws its settings from
``BasicVariantGenerator(random_state=seed)``: the same file gives the same trials and scores.

A risk trial (``target = "risk"``) runs the sweep's backtest folds oldest first
(:meth:`~experiments.sweep_config.SweepConfig.folds`: one model, its hyperparameters with the
trial's on top, :func:`risk_model.backtest.run_backtest` without bootstrap) and reports after
each fold the mean over its folds so far of the test window's PR-AUC, ROC-AUC and Brier score
(:data:`~experiments.sweep_config.RISK_METRICS`) with the fold's own values; ASHA's time unit
is one fold. The data is loaded once on the driver and handed to the trials through Ray's
object store; before Ray starts, the driver refuses folds on which every trial would fail
(:func:`check_fold_labels`: too few labels of a class to fit, calibrate or score).

MLflow: one parent run (``sweep__<suite or risk-<model>>__s<seed>__<time>``, the sweep file as params) and
one nested run per trial (tag ``mlflow.parentRunId``), written from the driver by a Tune
callback as each result arrives (the trial processes never touch the store, which is a
SQLite file here): the trial's settings as params, its reports as metrics (one batch per
report, step = the report's number), ``sweep/status`` = ``completed``, ``stopped`` (by ASHA)
or ``failed`` (with ``sweep/error``, the trial's exception as one line, :func:`trial_error`)
and the run's status (``FINISHED``, or ``FAILED``). The parent holds the table
of trials (``trials.csv``, ``trials.md``), the best trial's config file and its score.

Outputs in ``out_dir``: ``trials.csv``, ``trials.md`` and the best trial as a config:
``best_train.toml`` (a ``deadstock train --config`` file), or for a risk sweep
``best_risk.toml`` (a ``deadstock risk backtest|train --config`` file) and ``best_plan.toml``
(the same settings as a ``deadstock run`` plan's ``[risk]`` section); each written atomically,
once every one is rendered; a sweep that produces no scored trial raises with the first
failed trial's error and writes no best config. Ray's own trial records go to
``out_dir/tune``; Tune's own tracebacks of failed trials stay there (each failure is logged
as one line with its error).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import Metric, Param
from stable_baselines3.common.callbacks import BaseCallback

from experiments import tracking
from experiments.sweep_config import (
    PPO_METRICS,
    RISK_METRICS,
    SweepConfig,
    risk_config_toml,
    train_config_toml,
)
from ingest.errors import DataError, DeadstockError
from ingest.io import write_frame_atomic, write_text_atomic

log = logging.getLogger(__name__)

TRIALS_CSV = "trials.csv"
TRIALS_MD = "trials.md"
BEST_CONFIG = "best_train.toml"
BEST_RISK = "best_risk.toml"
BEST_PLAN = "best_plan.toml"
RISK_FOLD_KEYS: tuple[str, ...] = (
    "fold",
    "train_cutoff",
    "test_cutoff",
    "pr_auc",
    "roc_auc",
    "brier",
)
"""What a risk trial reports after each fold beside :data:`RISK_METRICS` and ``seconds``."""
STATUS_TAG = "sweep/status"
ERROR_TAG = "sweep/error"
COMPLETED, STOPPED, FAILED = "completed", "stopped", "failed"
TRIAL_CPUS = 1
"""CPUs a trial asks Ray for: PPO with one torch thread and a vectorized env uses one core."""


# ------------------------------------------------------------------------- in the trial
class _ChunkReporter(BaseCallback):
    """After every ``chunk`` steps (at the start of the next rollout, so the chunk's last
    update counts) and at the end: score the policy and ``tune.report`` its % of the
    reference."""

    def __init__(self, prepared: list[Any], chunk: int, n_episodes: int) -> None:
        super().__init__()
        self.prepared = prepared
        self.chunk = chunk
        self.n_episodes = n_episodes
        self._next = chunk
        self._last = -1
        self._t0 = time.perf_counter()

    def _report(self) -> None:
        from ray import tune

        from agents.ppo import PPOPolicy
        from experiments.evaluate import score_agent

        policy = PPOPolicy(self.model)  # type: ignore[arg-type]
        rows = score_agent(
            self.prepared, lambda s, sol: policy, agent="ppo", n_episodes=self.n_episodes
        )
        pct = np.array([r["pct_of_reference"] for r in rows])
        self._last = int(self.num_timesteps)
        tune.report(
            {
                "pct_of_dp_mean": float(pct.mean()),
                "pct_of_dp_median": float(np.median(pct)),
                "pct_of_dp_min": float(pct.min()),
                "timesteps": self._last,
                "seconds": time.perf_counter() - self._t0,
            }
        )

    def _on_rollout_start(self) -> None:
        if self.num_timesteps >= self._next:
            self._report()
            self._next += self.chunk

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        if self._last != self.num_timesteps:
            self._report()


def ppo_trial(params: dict[str, Any], config: SweepConfig) -> None:
    """One trial (runs in a Ray worker): train with ``params`` on top of the sweep's PPO
    settings and report after each chunk (see :class:`_ChunkReporter`)."""
    import torch

    from agents.ppo import train_ppo
    from experiments.evaluate import EvalConfig, prepare
    from experiments.suite import RULE_PROFILES, catalog_fn_for, get_spec

    torch.set_num_threads(1)  # the worker is a process of its own; one thread is fastest here
    spec = get_spec(config.suite)
    names = tuple(s.name for s in spec.scenarios if s.profile == config.profile)
    prepared = prepare(
        EvalConfig(suite=config.suite, n_episodes=config.eval_episodes, scenarios=names)
    )
    reporter = _ChunkReporter(prepared, config.chunk_steps, config.eval_episodes)
    train_ppo(
        config.trial_ppo(params),
        RULE_PROFILES[config.profile],
        callbacks=[reporter],
        catalog_fn=catalog_fn_for(spec, config.profile),
    )


def fold_reports(
    config: SweepConfig, params: dict[str, Any], dataset: Any, panel: pd.DataFrame
) -> Iterator[dict[str, float]]:
    """Risk: back-test the sweep's model with ``params`` on each fold, oldest first, and
    yield after each one what the trial reports: the means over the folds so far
    (:data:`RISK_METRICS`), the fold's own values and cutoffs (:data:`RISK_FOLD_KEYS`) and
    the seconds since the start."""
    from risk_model.backtest import BacktestConfig, run_backtest

    setup = config.trial_risk(params).setup()
    t0 = time.perf_counter()
    seen: dict[str, list[float]] = {"pr_auc": [], "roc_auc": [], "brier": []}
    folds = config.folds(int(panel["week"].min()), int(panel["week"].max()))
    for i, (train, test) in enumerate(folds):
        cfg = BacktestConfig(**setup, train_cutoff=train, test_cutoff=test, n_bootstrap=0)
        rows = run_backtest(dataset, panel, cfg).rows
        row = next(r for r in rows if r["model"] == config.model)
        for key, values in seen.items():
            values.append(float(row[key]))
        yield {
            **{f"{k}_mean": float(np.mean(v)) for k, v in seen.items()},
            **{k: v[-1] for k, v in seen.items()},
            "fold": float(i + 1),
            "train_cutoff": float(train),
            "test_cutoff": float(test),
            "seconds": time.perf_counter() - t0,
        }


def risk_trial(params: dict[str, Any], config: SweepConfig, data: tuple[Any, pd.DataFrame]) -> None:
    """One risk trial (runs in a Ray worker): :func:`fold_reports`, each one reported to
    Tune (ASHA may stop the trial between two folds)."""
    from ray import tune

    dataset, panel = data
    for report in fold_reports(config, params, dataset, panel):
        tune.report(report)


# ------------------------------------------------------------------------- on the driver
def check_fold_labels(
    config: SweepConfig, panel: pd.DataFrame, folds: list[tuple[int, int]]
) -> None:
    """Risk: refuse, before any trial starts, folds on which every trial would fail or score
    nothing: a training or validation set with fewer than
    :data:`~risk_model.models.MIN_CLASS_ROWS` labels of a class (the model cannot be fitted
    and calibrated), or a test cutoff without a positive or a negative label (no PR-AUC or
    ROC-AUC). Reads only the labels (:func:`risk_model.backtest.fold_label_counts`).

    Raises
    ------
    DataError
        Naming each such fold, its cutoffs, its sets' positive and negative counts and what
        to change in the sweep file.
    """
    from risk_model.backtest import BacktestConfig, fold_label_counts
    from risk_model.models import MIN_CLASS_ROWS

    need = {"training": MIN_CLASS_ROWS, "validation": MIN_CLASS_ROWS, "test": 1}
    setup = config.trial_risk({}).setup()
    bad = []
    for i, (train, test) in enumerate(folds):
        cfg = BacktestConfig(**setup, train_cutoff=train, test_cutoff=test, n_bootstrap=0)
        counts = fold_label_counts(panel, cfg)
        short = [
            f"{name} {pos} positive / {neg} negative (needs >= {need[name]} of each)"
            for name, (pos, neg) in counts.items()
            if min(pos, neg) < need[name]
        ]
        if short:
            bad.append(
                f"fold {i + 1} (test cutoff week {test}, training cutoff week {train}): "
                + ", ".join(short)
            )
    if bad:
        label = config.risk.label
        raise DataError(
            f"sweep data {config.data!r}: {len(bad)} of {len(folds)} backtest fold(s) have too "
            f"few {label.kind!r} labels of a class, so every trial would fail on them: "
            + "; ".join(bad)
            + ". Leave those folds out (fewer folds: lower asha.max_t; folds closer together: "
            "lower fold_weeks; or an earlier last_test_cutoff), or change the label so that "
            f"both classes occur at every fold ([risk.label] horizon_weeks = "
            f"{label.horizon_weeks}: shorter gives more dead SKUs; or another [risk.label] kind)"
        )


def search_space(config: SweepConfig) -> dict[str, Any]:
    """The sweep's ``[space]`` as Ray Tune distributions."""
    from ray import tune

    space: dict[str, Any] = {}
    for key, dist in config.space.items():
        ((kind, args),) = dist.items()
        if kind == "choice":
            space[key] = tune.choice([list(a) if isinstance(a, tuple) else a for a in args])
        else:
            space[key] = getattr(tune, kind)(*args)
    return space


@dataclass
class _Trial:
    """What the driver knows of one trial."""

    name: str
    run_id: str
    params: dict[str, Any]
    reports: list[dict[str, float]]
    status: str = "running"
    error: str = ""


def _mlflow_callback(
    client: mlflow.MlflowClient, experiment_id: str, parent_id: str, config: SweepConfig
) -> Any:
    """A Tune callback (driver side) that mirrors every trial into a nested MLflow run."""
    from ray.tune import Callback

    class MLflowTrials(Callback):  # type: ignore[misc]
        def __init__(self) -> None:
            self.trials: dict[str, _Trial] = {}

        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            name = f"trial_{len(self.trials):03d}"
            params = dict(trial.config)
            run = client.create_run(
                experiment_id,
                run_name=name,
                tags={
                    "mlflow.parentRunId": parent_id,
                    "sweep/trial_id": str(trial.trial_id),
                    "seed": str(config.seed),
                    STATUS_TAG: "running",
                },
            )
            client.log_batch(
                run.info.run_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()]
            )
            self.trials[trial.trial_id] = _Trial(name, run.info.run_id, params, [])

        def on_trial_result(
            self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
        ) -> None:
            t = self.trials[trial.trial_id]
            report = {k: float(result[k]) for k in reported_keys(config)}
            t.reports.append(report)
            stamp = int(time.time() * 1000)
            step = int(result.get("training_iteration", len(t.reports)))
            client.log_batch(
                t.run_id, metrics=[Metric(k, v, stamp, step) for k, v in report.items()]
            )
            after = (
                f"{int(report['timesteps']):,} steps"
                if config.target == "ppo"
                else f"fold {int(report['fold'])} (test cutoff {int(report['test_cutoff'])})"
            )
            log.info(
                "sweep %s report %d: %s = %.4g after %s",
                t.name,
                step,
                config.metric,
                report[config.metric],
                after,
            )

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            t = self.trials[trial.trial_id]
            t.status = COMPLETED if len(t.reports) >= config.asha.max_t else STOPPED
            client.set_tag(t.run_id, STATUS_TAG, t.status)
            client.set_terminated(t.run_id, "FINISHED")
            log.info("sweep %s %s after %d report(s)", t.name, t.status, len(t.reports))

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            t = self.trials[trial.trial_id]
            t.status = FAILED
            t.error = trial_error(trial)
            client.set_tag(t.run_id, STATUS_TAG, FAILED)
            client.set_tag(t.run_id, ERROR_TAG, t.error[:5000])
            client.set_terminated(t.run_id, "FAILED")
            log.warning(
                "sweep %s failed: %s (Ray's error file: %s)",
                t.name,
                t.error,
                getattr(trial, "error_file", None) or "none",
            )

    return MLflowTrials()


def trial_error(trial: Any) -> str:
    """A failed trial's error as one line, ``Type: message`` of the exception the trial
    raised (not Ray's wrapper and traceback), read from the records Ray keeps beside the
    driver (the pickled exception, else the last line of its text trace); ``"unknown
    error"`` when there are none."""
    from ray import cloudpickle

    pickled = getattr(trial, "pickled_error_file", None)
    if pickled and os.path.exists(pickled):
        try:
            with open(pickled, "rb") as f:
                err = cloudpickle.load(f)
        except Exception:  # noqa: BLE001 - an unreadable record must not hide the failure
            err = None
        if isinstance(err, BaseException):
            cause = getattr(err, "cause", None) or err  # a RayTaskError wraps the exception
            text = str(cause).strip()
            first = text.splitlines()[0] if text else ""
            return f"{type(cause).__name__}: {first}" if first else type(cause).__name__
    trace = getattr(trial, "error_file", None)
    if trace and os.path.exists(trace):
        with open(trace, encoding="utf-8", errors="replace") as f:
            lines = [line.strip() for line in f if line.strip()]
        if lines:
            return lines[-1]
    return "unknown error"


class _TuneFailureLines(logging.Filter):
    """Drops Tune's own error lines about failed trials (a traceback per trial and a list of
    the trials that did not complete): the sweep's callback reports each failure as one line
    with its error, and Ray's error files keep the full traces."""

    PREFIXES = ("Trial task failed", "Trials did not complete")

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.PREFIXES)


TUNE_LOGGERS = ("ray.tune.execution.tune_controller", "ray.tune.tune")
"""The loggers :class:`_TuneFailureLines` filters while the trials run."""


@contextmanager
def _without_tune_failure_lines() -> Iterator[None]:
    quiet = _TuneFailureLines()
    for name in TUNE_LOGGERS:
        logging.getLogger(name).addFilter(quiet)
    try:
        yield
    finally:
        for name in TUNE_LOGGERS:
            logging.getLogger(name).removeFilter(quiet)


def reported_keys(config: SweepConfig) -> tuple[str, ...]:
    """What a trial of ``config``'s target reports (and its MLflow run logs) each time."""
    if config.target == "ppo":
        return (*PPO_METRICS, "timesteps", "seconds")
    return (*RISK_METRICS, *RISK_FOLD_KEYS, "seconds")


@contextmanager
def running_ray() -> Iterator[Any]:
    """The Ray this process already runs (the default ``ray_session`` of :func:`run_sweep`;
    starting or connecting one is the caller's: ``deadstock sweep`` passes
    :func:`app.engine.ray_running`)."""
    import ray

    if not ray.is_initialized():
        raise DeadstockError(
            "sweep: no Ray is running in this process; pass ray_session (deadstock sweep "
            "passes app.engine.ray_running: RAY_ADDRESS's cluster or a local Ray) or call "
            "ray.init() before run_sweep"
        )
    yield ray


@dataclass
class SweepOutcome:
    """What :func:`run_sweep` returns."""

    parent_run_id: str
    trials: pd.DataFrame
    best: dict[str, Any]
    best_config: Path
    best_plan: Path | None = None
    """Risk: the best trial as a plan file's ``[risk]`` section (``best_plan.toml``)."""


def run_sweep(
    config: SweepConfig,
    out_dir: str | Path,
    *,
    ray_session: Callable[[], AbstractContextManager[Any]] = running_ray,
) -> SweepOutcome:
    """Run the sweep (see the module docstring).

    Parameters
    ----------
    config : SweepConfig
    out_dir : path
        Where the trial table, the best config and Ray's trial records go.
    ray_session : callable
        Enters the Ray the trials run on (yielding the ``ray`` module) and leaves it at the
        end; entered only once the sweep file, the data and the folds are checked. Default:
        the Ray this process already runs (:func:`running_ray`); the CLI passes
        :func:`app.engine.ray_running`, which connects to ``RAY_ADDRESS`` or starts a local
        Ray (this layer may not import ``app``, so it does not start Ray itself).

    Returns
    -------
    SweepOutcome

    Raises
    ------
    DataError
        Risk: when a fold has too few labels of a class (:func:`check_fold_labels`), before
        Ray starts and before anything is written.
    DeadstockError
        When no trial reported a score (every trial failed), naming the first failed trial's
        settings and error; no best config is written.
    """
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator

    out = Path(out_dir).resolve()
    trainable: Any = ppo_trial
    folds: list[tuple[int, int]] = []
    tags = {"kind": "sweep", "target": config.target}
    if config.target == "risk":
        from ingest.loader import load
        from ingest.panel import load_panel

        # once, here: a bad source or folds the data cannot hold fail before Ray starts
        dataset = load(config.data)
        panel = load_panel(dataset)
        folds = config.folds(int(panel["week"].min()), int(panel["week"].max()))
        check_fold_labels(config, panel, folds)
        tags |= {"model": config.model, "data": config.data}
    else:
        tags |= {"suite": config.suite}
    out.mkdir(parents=True, exist_ok=True)
    name = tracking.run_name("sweep", config.run_label, config.seed)
    with (
        ray_session() as ray,
        tracking.start_run(
            name, tags=tags, config=config, seed=config.seed, experiment=config.experiment
        ) as parent,
    ):
        cpus = int(ray.cluster_resources().get("CPU", 1))
        concurrent = config.max_concurrent_trials or max(1, cpus - 1)
        client = mlflow.MlflowClient(tracking_uri=mlflow.get_tracking_uri())
        callback = _mlflow_callback(client, parent.info.experiment_id, parent.info.run_id, config)
        if config.target == "risk":
            # the tables go to the object store once; every trial reads the same copy
            trainable = tune.with_parameters(risk_trial, config=config, data=(dataset, panel))
        else:
            trainable = tune.with_parameters(ppo_trial, config=config)
        scheduler = ASHAScheduler(
            time_attr="training_iteration",
            max_t=config.asha.max_t,
            grace_period=config.asha.grace_period,
            reduction_factor=config.asha.reduction_factor,
        )
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": TRIAL_CPUS}),
            param_space=search_space(config),
            tune_config=tune.TuneConfig(
                metric=config.metric,
                mode=config.mode,
                num_samples=config.num_samples,
                scheduler=scheduler,
                # the generator itself caps the trials at once (Tune ignores
                # max_concurrent_trials beside a generator)
                search_alg=BasicVariantGenerator(
                    random_state=config.seed, max_concurrent=concurrent
                ),
                # one worker process serves the trials in turn: torch and the envs are
                # imported once, not once per trial
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name="tune",
                storage_path=str(out),
                callbacks=[callback],
                verbose=0,
                failure_config=tune.FailureConfig(max_failures=0),
            ),
        )
        if config.target == "ppo":
            each = f"{config.chunk_steps * config.asha.max_t:,} steps each in {config.asha.max_t} chunk(s)"
        else:
            each = f"{config.model} on {len(folds)} backtest fold(s) each: " + ", ".join(
                f"{a}->{b}" for a, b in folds
            )
        log.info("sweep: %d trial(s), at most %d at once, %s", config.num_samples, concurrent, each)
        with _without_tune_failure_lines():
            tuner.fit()
        trials = list(callback.trials.values())
        table = trial_table(trials, config)
        write_frame_atomic(table, out / TRIALS_CSV)
        write_text_atomic(out / TRIALS_MD, markdown_table(table))
        mlflow.log_artifact(str(out / TRIALS_CSV))
        mlflow.log_artifact(str(out / TRIALS_MD))
        counts = table["status"].value_counts()
        tracking.log_metrics(
            {f"sweep/n_{s}": float(counts.get(s, 0)) for s in (COMPLETED, STOPPED, FAILED)}
        )
        failed = [t for t in trials if t.status == FAILED]
        best = best_trial(table, config)
        if best is None:
            first = (
                f"the first, {failed[0].name} ({_settings(failed[0].params)}), with "
                f"{failed[0].error}"
                if failed
                else "none failed"
            )
            raise DeadstockError(
                f"sweep: none of the {len(trials)} trial(s) reported a score ({len(failed)} "
                f"failed; {first}; Ray's error files are under {out / 'tune'}); no best "
                "config written"
            )
        if failed:
            log.warning(
                "sweep: %d of %d trial(s) failed; the first, %s: %s",
                len(failed),
                len(trials),
                failed[0].name,
                failed[0].error,
            )
        params = next(t.params for t in trials if t.name == best["trial"])
        value = float(best[config.metric])
        # every file's text first, then the files: a config that cannot be rendered leaves
        # none of them behind
        if config.target == "ppo":
            texts = {BEST_CONFIG: train_config_toml(config, params, value)}
        else:
            texts = {
                BEST_RISK: risk_config_toml(config, params, value, folds),
                BEST_PLAN: risk_config_toml(config, params, value, folds, plan=True),
            }
        written = {name: Path(write_text_atomic(out / name, text)) for name, text in texts.items()}
        for written_path in written.values():
            mlflow.log_artifact(str(written_path))
        path = written[BEST_CONFIG if config.target == "ppo" else BEST_RISK]
        plan_path = written.get(BEST_PLAN)
        tracking.log_metrics({f"best/{config.metric}": value})
        mlflow.set_tag("sweep/best_trial", str(best["trial"]))
        return SweepOutcome(parent.info.run_id, table, best, Path(path), plan_path)


def trial_table(trials: list[_Trial], config: SweepConfig) -> pd.DataFrame:
    """One row per trial: name, status, reports (folds, for a risk sweep), steps (PPO), its
    last reported ``metric``, its settings, its error when any trial failed (a failed
    trial's exception, see :func:`trial_error`; empty for the others) and its MLflow run."""
    rows = []
    for t in trials:
        last = t.reports[-1] if t.reports else {}
        row: dict[str, Any] = {"trial": t.name, "status": t.status, "reports": len(t.reports)}
        if config.target == "ppo":
            row["timesteps"] = int(last.get("timesteps", 0))
        row[config.metric] = last.get(config.metric, math.nan)
        row.update({k: _shown(v) for k, v in t.params.items()})
        if any(other.error for other in trials):
            row["error"] = t.error
        row["run_id"] = t.run_id
        rows.append(row)
    return pd.DataFrame(rows)


def best_trial(table: pd.DataFrame, config: SweepConfig) -> dict[str, Any] | None:
    """The best trial by its last reported ``metric``, among the trials that ran their whole
    budget (all the steps, or all the folds); among all scored ones if none did."""
    scored = table[table[config.metric].notna()]
    full = scored[scored["status"] == COMPLETED]
    pool = full if not full.empty else scored
    if pool.empty:
        return None
    ordered = pool.sort_values(config.metric, ascending=config.mode == "min", kind="stable")
    return dict(ordered.iloc[0])


def markdown_table(table: pd.DataFrame) -> str:
    """The trial table as a Markdown table (numbers to 4 significant digits)."""

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "" if math.isnan(v) else f"{v:.4g}"
        return str(v).replace("|", "\\|")  # an error message must not split the row

    head = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(False)]
    return "\n".join([head, rule, *body]) + "\n"


def _settings(params: dict[str, Any]) -> str:
    """A trial's settings as ``key=value, ...`` (floats to 4 significant digits)."""
    return ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={_shown(v)}" for k, v in params.items()
    )


def _shown(value: Any) -> Any:
    """A setting as a table cell (arrays as ``64x64``)."""
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value)
    return value
