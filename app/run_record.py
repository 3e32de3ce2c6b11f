"""What a pipeline run leaves in MLflow besides its stage runs: the plans' metrics, the
run's output folder as artifacts, and its models in the registry.

Plans. For every simulated plan (the recommended one, doing nothing, every heuristic) the
parent run logs ``plan/<name>/profit`` and ``plan/<name>/gain_vs_none`` (paired with doing
nothing on the same episodes), each with ``_ci_low``/``_ci_high``, and tags
``plan.recommended`` and ``plan.names``; ``deadstock compare`` reads them.

Models (the champion rule, also in docs/pipeline.md):

- ``deadstock-risk``: a risk model trained by the run is registered as a new version tagged
  with the run and its ``fit_key`` (:func:`experiments.risk_runs.risk_fit_key`). It becomes
  ``champion`` when the run completes. Scores from the champion or the rule baseline register
  nothing.
- ``deadstock-policy``: a policy trained by the run is registered as a new version (one
  profile, ``pipeline``, with the run's rules) tagged with the run and its evaluation. It
  becomes ``champion`` when the run completes and its plan is expected to earn at least as
  much as doing nothing on the same episodes (``plan/<ppo>/gain_vs_none >= 0``); a policy
  that loses money against doing nothing is kept as a version but never reused. A loaded
  champion registers nothing.

Versions are created before the output folder is published and aliases moved only after it
is, so a run that fails never becomes a champion.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow

from envs.config import RulesConfig
from experiments import tracking
from planning.outcomes import Outcome, paired_ci

logger = logging.getLogger(__name__)

#: The policy model's profile name for a policy trained by the pipeline.
PIPELINE_PROFILE = "pipeline"


def _plans(outcomes: Mapping[str, Outcome]) -> dict[str, Outcome]:
    """One outcome per plan name (the evaluate stage lists the recommended plan twice)."""
    plans: dict[str, Outcome] = {}
    for out in outcomes.values():
        plans.setdefault(str(out.schedule.name), out)
    return plans


def plan_metrics(
    outcomes: Mapping[str, Outcome], none_key: str = "no_markdown"
) -> dict[str, float]:
    """``plan/<name>/profit`` and ``plan/<name>/gain_vs_none`` with their CIs."""
    none = outcomes[none_key]
    metrics: dict[str, float] = {}
    for name, out in _plans(outcomes).items():
        m, lo, hi = out.portfolio("profit")
        g, glo, ghi = paired_ci(out, none, "profit")
        metrics.update(
            {
                f"plan/{name}/profit": m,
                f"plan/{name}/profit_ci_low": lo,
                f"plan/{name}/profit_ci_high": hi,
                f"plan/{name}/gain_vs_none": g,
                f"plan/{name}/gain_vs_none_ci_low": glo,
                f"plan/{name}/gain_vs_none_ci_high": ghi,
            }
        )
    return metrics


def log_plans(outcomes: Mapping[str, Outcome]) -> dict[str, float]:
    """Log :func:`plan_metrics` and the plan tags to the active (parent) run."""
    metrics = plan_metrics(outcomes)
    tracking.log_metrics(metrics)
    mlflow.set_tags(
        {
            "plan.recommended": str(outcomes["recommended"].schedule.name),
            "plan.names": ",".join(_plans(outcomes)),
        }
    )
    return metrics


def log_outputs(folder: Path) -> None:
    """Log the run's sealed output folder (tables, catalog, policy, report, alerts, data
    reports, manifest) as artifacts of the active run, from the run's own staging folder."""
    for entry in sorted(folder.iterdir()):
        if entry.is_dir():
            mlflow.log_artifacts(str(entry), artifact_path=entry.name)
        else:
            mlflow.log_artifact(str(entry))


@dataclass
class Registered:
    """Model versions a run created, and whether each should become champion."""

    versions: dict[str, str] = field(default_factory=dict)
    promote: dict[str, bool] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def register_models(
    *,
    risk: Any,
    policy: Any,
    rules: RulesConfig,
    gain: tuple[float, float, float] | None,
    run_id: str,
) -> Registered:
    """Log and register the models this run trained (see the module docstring).

    Parameters
    ----------
    risk : app.stages.RiskOut
    policy : app.stages.PolicyOut
    rules : RulesConfig
        The rules the policy was trained under.
    gain : (mean, low, high) or None
        The learned policy's plan's expected profit against doing nothing.
    run_id : str
        The parent run.
    """
    from experiments.policy_model import REGISTERED_NAME as POLICY_NAME
    from experiments.policy_model import example_input, log_policy_model
    from experiments.risk_runs import FIT_KEY_TAG, log_risk_model
    from experiments.risk_runs import REGISTERED_NAME as RISK_NAME

    reg = Registered()
    if risk.source == "trained" and risk.result is not None:
        info = log_risk_model(
            risk.result, alias=None, tags={FIT_KEY_TAG: risk.fit_key, "pipeline_run": run_id}
        )
        reg.versions[RISK_NAME] = str(info.registered_model_version)
        reg.promote[RISK_NAME] = True
    if policy.trained and policy.model_path is not None:
        tags = {"pipeline_run": run_id}
        if gain is not None:
            tags.update(
                gain_vs_none=f"{gain[0]:.2f}", gain_vs_none_ci=f"[{gain[1]:.2f}, {gain[2]:.2f}]"
            )
        info = log_policy_model(
            {PIPELINE_PROFILE: policy.model_path},
            {PIPELINE_PROFILE: rules},
            example=example_input(rules, PIPELINE_PROFILE),
            alias=None,
            tags=tags,
        )
        version = str(info.registered_model_version)
        reg.versions[POLICY_NAME] = version
        ok = gain is not None and gain[0] >= 0
        reg.promote[POLICY_NAME] = ok
        if not ok:
            reg.notes.append(
                f"{POLICY_NAME} version {version} is not champion: its plan is expected to earn "
                "less than doing nothing"
            )
    return reg


def promote(reg: Registered) -> list[str]:
    """Point ``champion`` at the versions that earned it; returns one line per model."""
    from experiments.risk_runs import CHAMPION_ALIAS
    from experiments.risk_runs import promote as set_alias

    lines = list(reg.notes)
    for name, version in reg.versions.items():
        if reg.promote.get(name):
            set_alias(name, version, CHAMPION_ALIAS)
            lines.append(f"registered {name} version {version} as {CHAMPION_ALIAS}")
    for line in lines:
        logger.info(line)
    return lines
