"""MLflow runs of the risk model: backtests, training with registration, and scoring.

- :func:`backtest_run`: one parent run per backtest with the config, the data fingerprint,
  the JSON rows, the ROC/PR/calibration/importance plots, and one nested run per model and
  baseline with ``risk/roc_auc``, ``risk/roc_auc_ci_low``, ``risk/roc_auc_ci_high``, ... for
  every metric.
- :func:`train_run`: trains the candidates (:func:`risk_model.scoring.train_and_score`),
  logs validation metrics, the importance plot and the scores, and logs the champion as a
  pyfunc model registered as ``deadstock-risk`` with the alias ``champion``. The model is
  logged with explicit ``pip_requirements`` (``xgboost-cpu``, not ``xgboost``) and with the
  ``risk_model`` and ``ingest`` packages as code, so it loads outside this checkout.
- :class:`RiskPyfunc`: ``predict`` takes a feature frame (one row per SKU, a ``sku``
  column or index) and returns ``sku, risk, tier, driver_1 ..``.
- :func:`risk_fit_key`, :func:`load_fitting_champion`: the pipeline's reuse of the champion.
  A model registered by a pipeline run carries a ``fit_key`` tag, the hash of the data
  fingerprint and every setting that decides the model (label, features, models, training
  offsets, validation share, threshold rule, seed). A champion with the run's own key was
  trained on the same rows with the same seed: its scores are the ones a new model would
  give, so the run loads it instead of training. Any other champion (other data, other
  settings, or registered by ``deadstock risk train`` without a key) is not reused.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd

from experiments.tracking import log_metrics, run_name, start_run
from ingest.dataset import Dataset
from ingest.errors import DataError
from risk_model.backtest import (
    METRICS,
    BacktestConfig,
    BacktestResult,
    json_rows,
    plot_backtest,
    run_backtest,
)
from risk_model.scoring import MapBlocks, RiskConfig, RiskResult, score_frame, train_and_score

REGISTERED_NAME = "deadstock-risk"
CHAMPION_ALIAS = "champion"
CHAMPION_URI = f"models:/{REGISTERED_NAME}@{CHAMPION_ALIAS}"
FIT_KEY_TAG = "fit_key"
PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return ""


def pip_requirements() -> list[str]:
    """Pinned requirements of the logged model: ``xgboost-cpu`` (the CPU-only wheel this
    project installs), never plain ``xgboost``."""
    reqs = []
    for dist in ("xgboost-cpu", "scikit-learn", "pandas", "numpy", "scipy", "cloudpickle"):
        v = _version(dist)
        reqs.append(f"{dist}=={v}" if v else dist)
    reqs.append(f"mlflow=={mlflow.__version__}")
    return reqs


def metric_dict(row: dict[str, Any], prefix: str = "risk/") -> dict[str, float]:
    """``risk/<metric>`` plus ``_ci_low``/``_ci_high`` for every metric of a backtest row."""
    out: dict[str, float] = {}
    for m in METRICS:
        out[f"{prefix}{m}"] = row[m]
        lo, hi = row.get(f"{m}_ci", [float("nan"), float("nan")])
        out[f"{prefix}{m}_ci_low"] = lo
        out[f"{prefix}{m}_ci_high"] = hi
    for k in ("base_rate", "n", "n_pos", "threshold"):
        out[f"{prefix}{k}"] = float(row[k])
    return out


def backtest_run(
    dataset: Dataset,
    panel: pd.DataFrame,
    config: BacktestConfig | None = None,
    *,
    out_dir: str | Path | None = None,
) -> tuple[BacktestResult, str]:
    """Run and log a backtest; returns the result and the parent run id.

    Plots and the JSON rows are written to ``out_dir`` (a temporary folder when omitted)
    and logged as artifacts.
    """
    cfg = config or BacktestConfig()
    name = run_name("risk-backtest", f"{cfg.label.kind}-{cfg.train_cutoff}-{cfg.test_cutoff}")
    with start_run(
        name,
        config=cfg,
        seed=cfg.seed,
        data_fingerprint=dataset.fingerprint,
        tags={"stage": "risk-backtest", "label": cfg.label.kind, "data_source": dataset.source},
    ) as run:
        result = run_backtest(dataset, panel, cfg)
        folder = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="deadstock-risk-"))
        for path in plot_backtest(result, folder):
            mlflow.log_artifact(str(path), artifact_path="plots")
        mlflow.log_dict({"rows": json_rows(result)}, "backtest.json")
        mlflow.log_dict({"rows": result.rows}, "backtest_with_all_cis.json")
        summary = {"risk/noise_floor": result.noise_floor}
        summary.update({f"risk/{k}": float(v) for k, v in result.info.items() if _is_num(v)})
        log_metrics(summary)
        for row in result.rows:
            log_metrics(metric_dict(row, prefix=f"risk/{row['model']}/"))
            with start_run(
                f"{name}__{row['model']}",
                nested=True,
                tags={"stage": "risk-backtest", "model": row["model"]},
            ):
                log_metrics(metric_dict(row))
        return result, run.info.run_id


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


class RiskPyfunc(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined,misc]
    """Scores a feature frame with the champion risk classifier."""

    def load_context(self, context: Any) -> None:
        import joblib

        self.model = joblib.load(context.artifacts["model"])
        meta = json.loads(Path(context.artifacts["meta"]).read_text(encoding="utf-8"))
        self.n_drivers = int(meta["n_drivers"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        frame = pd.DataFrame(model_input)
        if "sku" in frame.columns:
            frame = frame.set_index(frame["sku"].astype(str)).drop(columns="sku")
        missing = [c for c in self.model.feature_names_in_ if c not in frame.columns]
        if missing:
            raise DataError(
                f"risk model input lacks {len(missing)} feature column(s), e.g. {missing[:5]}; "
                "build them with risk_model.features.build_features"
            )
        return score_frame(self.model, frame, self.n_drivers)


def log_risk_model(
    result: RiskResult,
    *,
    register: bool = True,
    alias: str | None = CHAMPION_ALIAS,
    tags: dict[str, str] | None = None,
    name: str = REGISTERED_NAME,
) -> Any:
    """Log the champion as a pyfunc model in the active run; optionally register it as
    ``name`` (``deadstock-risk``; with ``tags`` on the new version) and point ``alias`` at
    it."""
    import joblib

    tmp = Path(tempfile.mkdtemp(prefix="deadstock-risk-model-"))
    model_path = tmp / "risk_model.joblib"
    joblib.dump(result.model, model_path)
    meta_path = tmp / "meta.json"
    meta = {
        "kind": result.champion,
        "n_drivers": int(len([c for c in result.scores.columns if c.endswith("_contribution")])),
        "features": list(result.model.feature_names_in_),
        "threshold": result.model.threshold_,
        "medium_threshold": result.model.medium_threshold_,
        "train_cutoff": result.train_cutoff,
    }
    meta_path.write_text(json.dumps(meta, indent=2), encoding="utf-8")
    example = result.features.head(3).reset_index()
    info = mlflow.pyfunc.log_model(
        name="risk_model",
        python_model=RiskPyfunc(),
        artifacts={"model": str(model_path), "meta": str(meta_path)},
        pip_requirements=pip_requirements(),
        code_paths=[str(PACKAGE_ROOT / "risk_model"), str(PACKAGE_ROOT / "ingest")],
        input_example=example,
        registered_model_name=name if register else None,
    )
    if register and info.registered_model_version is not None:
        client = mlflow.MlflowClient()
        version = str(info.registered_model_version)
        for key, value in (tags or {}).items():
            client.set_model_version_tag(name, version, key, value)
        if alias:
            client.set_registered_model_alias(name, alias, version)
    return info


def risk_fit_key(fingerprint: str, config: RiskConfig) -> str:
    """Hash of the data fingerprint and the settings that decide a trained risk model."""
    settings = asdict(config)
    settings.pop("n_jobs", None)  # threads change the speed, not the model
    for kind in config.default_hyperparams():  # a champion registered before keeps its key
        settings.pop(kind, None)
    blob = json.dumps([fingerprint, settings], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def load_fitting_champion(
    fit_key: str,
    dataset: Dataset,
    panel: pd.DataFrame,
    config: RiskConfig,
    *,
    block_skus: int | None = None,
    map_blocks: MapBlocks | None = None,
) -> tuple[pd.DataFrame | None, str]:
    """Score with the registered champion when its ``fit_key`` tag is ``fit_key``.

    Returns the scores (as :func:`risk_model.scoring.train_and_score` gives them) and a
    description of the champion, or ``(None, why not)``. The scoring runs in blocks of
    ``block_skus`` SKUs through ``map_blocks`` (:func:`risk_model.scoring.score_frame`).
    """
    from risk_model.features import build_features
    from risk_model.scoring import add_established

    client = mlflow.MlflowClient()
    try:
        version = client.get_model_version_by_alias(REGISTERED_NAME, CHAMPION_ALIAS)
    except mlflow.exceptions.MlflowException:
        return None, f"no champion registered as {CHAMPION_URI}"
    if version.tags.get(FIT_KEY_TAG) != fit_key:
        return None, f"champion {CHAMPION_URI} was trained on other data or settings"
    try:
        inner = mlflow.pyfunc.load_model(CHAMPION_URI).unwrap_python_model()
    except Exception as err:  # noqa: BLE001 - a broken registry entry: train instead
        return None, f"champion {CHAMPION_URI} could not be loaded ({type(err).__name__})"
    last = int(panel["week"].max())
    cutoff = last if config.score_cutoff is None else int(config.score_cutoff)
    feats = build_features(
        panel, cutoff, config.features, products=dataset.products, baskets=dataset.get("baskets")
    )
    scores = add_established(
        score_frame(
            inner.model, feats, inner.n_drivers, block_skus=block_skus, map_blocks=map_blocks
        ),
        panel,
        cutoff,
        config.label,
    )
    return scores, f"champion {CHAMPION_URI} (version {version.version}, same data and settings)"


def promote(name: str, version: str, alias: str = CHAMPION_ALIAS) -> None:
    """Point ``alias`` of registered model ``name`` at ``version``."""
    mlflow.MlflowClient().set_registered_model_alias(name, alias, version)


def train_run(
    dataset: Dataset,
    panel: pd.DataFrame,
    config: RiskConfig | None = None,
    *,
    register: bool = True,
) -> tuple[RiskResult, str, str | None]:
    """Train, log and (optionally) register the champion risk model.

    Returns the result, the run id and the registered model version (``None`` when not
    registered).
    """
    cfg = config or RiskConfig()
    name = run_name("risk-train", cfg.label.kind, cfg.seed)
    with start_run(
        name,
        config=cfg,
        seed=cfg.seed,
        data_fingerprint=dataset.fingerprint,
        tags={"stage": "risk-train", "label": cfg.label.kind, "data_source": dataset.source},
    ) as run:
        result = train_and_score(dataset, panel, cfg)
        metrics: dict[str, float] = {}
        for kind, v in result.validation.items():
            for m in ("roc_auc", "pr_auc", "brier", "threshold", "medium_threshold"):
                metrics[f"risk/val/{kind}/{m}"] = v[m]
        champ = result.validation[result.champion]
        metrics.update({f"risk/val_{m}": champ[m] for m in ("roc_auc", "pr_auc", "brier")})
        metrics.update({f"risk/{k}": float(v) for k, v in result.info.items()})
        log_metrics(metrics)
        mlflow.set_tags(
            {"risk.champion": result.champion, "risk.calibration": champ["calibration"]}
        )
        tmp = Path(tempfile.mkdtemp(prefix="deadstock-risk-train-"))
        scores_path = tmp / "scores.csv"
        result.scores.to_csv(scores_path, index=False)
        mlflow.log_artifact(str(scores_path))
        mlflow.log_artifact(str(_importance_plot(result, tmp / "importance.png")), "plots")
        info = log_risk_model(result, register=register)
        version = str(info.registered_model_version) if register else None
        return result, run.info.run_id, version


def _importance_plot(result: RiskResult, path: Path) -> Path:
    from matplotlib.figure import Figure

    from ingest.io import write_figure_atomic

    imp = pd.Series(result.model.feature_importances_, index=result.model.feature_names_in_)
    imp = imp.sort_values().tail(20)
    fig = Figure(figsize=(6, 6))
    ax = fig.subplots()
    ax.barh(imp.index, imp.to_numpy())
    ax.set(xlabel="importance (normalised)", title=f"Feature importance: {result.champion}")
    return write_figure_atomic(fig, path, bbox_inches="tight")


def load_champion(model_uri: str = CHAMPION_URI) -> Any:
    """Load the registered risk model (a pyfunc); a clear error when there is none."""
    from mlflow.exceptions import MlflowException

    from experiments.tracking import setup

    setup()
    try:
        return mlflow.pyfunc.load_model(model_uri)
    except MlflowException as err:
        raise DataError(
            f"cannot load risk model {model_uri!r}: {err.message.splitlines()[0]}. "
            "Train one first with `deadstock risk train --data SOURCE`."
        ) from None
