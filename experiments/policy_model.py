"""The trained policy as an MLflow pyfunc model: SKU state and descriptors in, action out.

One logged model holds one masked-PPO policy per rule profile (see
:data:`experiments.suite.RULE_PROFILES`), the rules of each profile as JSON, and nothing else:
observations are built by :func:`envs.observation.build_observation` and masks by
:func:`envs.rules.action_mask`, the same functions the envs use, so the served policy sees
exactly what it saw in training and can never break a rule.

Input (a pandas DataFrame, one row per SKU; see :data:`INPUT_COLUMNS`): the decision state
(weeks left, stock, depth in force, ...) and the SKU's demand parameters. Output: the flat
action, the discount and coupon depths and the net price share. With ``params={"mode":
"schedule"}`` the model instead plays each SKU to its exit week on one simulated demand path
(``params={"seed": s}``; same seed, same schedule) and returns one row per SKU and week.

Examples
--------
>>> model = mlflow.pyfunc.load_model("models:/deadstock-policy@champion")  # doctest: +SKIP
>>> model.predict(frame)  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel, PythonModelContext
from mlflow.types.schema import ColSpec, ParamSchema, ParamSpec, Schema

from agents.ppo import PPOPolicy, late_snapshots, member_paths
from envs.config import DecisionState, RulesConfig
from envs.context import PolicyContext
from envs.observation import build_observation
from envs.rules import LONG_AGO, action_mask, advance
from ingest.errors import DataError
from simulator.demand import Catalog
from simulator.market import MarketState, step

REGISTERED_NAME = "deadstock-policy"
CHAMPION_ALIAS = "champion"

# (column, type, required, default) — the model's input contract.
INPUT_COLUMNS: tuple[tuple[str, str, bool, Any], ...] = (
    ("profile", "string", False, None),
    ("weeks_left", "long", True, None),
    ("horizon_weeks", "long", False, None),
    ("stock", "double", True, None),
    ("initial_stock", "double", True, None),
    ("depth_index", "long", False, 0),
    ("weeks_since_change", "long", False, LONG_AGO),
    ("coupon_weeks_left", "double", False, None),
    ("age_weeks", "long", False, 52),
    ("last_units_sold", "double", False, 0.0),
    ("week", "long", False, 0),
    ("list_price", "double", True, None),
    ("unit_cost", "double", True, None),
    ("base_demand", "double", True, None),
    ("elasticity", "double", True, None),
    ("coupon_coef", "double", False, 0.0),
    ("dispersion", "double", False, 0.0),
    ("salvage_value_per_unit", "double", False, 0.0),
    ("holding_cost_per_unit_week", "double", False, 0.0),
    ("risk_score", "double", False, float("nan")),
)

OUTPUT_COLUMNS = ("sku_row", "week_index", "action", "discount", "coupon", "units_sold", "stock")

_CATALOG_FIELDS = (
    "list_price",
    "unit_cost",
    "base_demand",
    "elasticity",
    "coupon_coef",
    "dispersion",
    "salvage_value_per_unit",
    "holding_cost_per_unit_week",
    "risk_score",
)


def rules_to_json(rules: RulesConfig) -> dict[str, Any]:
    """Plain values of a RulesConfig (tuples as lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(rules).items()}


def rules_from_json(values: Mapping[str, Any]) -> RulesConfig:
    """Inverse of :func:`rules_to_json`."""
    v = dict(values)
    for k in ("discount_levels", "coupon_levels"):
        v[k] = tuple(float(x) for x in v[k])
    return RulesConfig(**v)


def signature() -> ModelSignature:
    """The model signature: :data:`INPUT_COLUMNS` in, actions out; ``mode`` and ``seed``."""
    inputs = Schema(
        [ColSpec(t, name, required=required) for name, t, required, _ in INPUT_COLUMNS]  # type: ignore[arg-type]
    )
    outputs = Schema(
        [
            ColSpec("long", "sku_row"),
            ColSpec("long", "week_index"),
            ColSpec("long", "action"),
            ColSpec("double", "discount"),
            ColSpec("double", "coupon"),
            ColSpec("double", "units_sold"),
            ColSpec("double", "stock"),
        ]
    )
    params = ParamSchema([ParamSpec("mode", "string", "action"), ParamSpec("seed", "long", 0)])
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


class PolicyModel(PythonModel):
    """MLflow pyfunc wrapper of one PPO policy per rule profile.

    Artifacts: ``policy_<profile>`` (an SB3 zip) for each profile and ``rules`` (a JSON file
    ``{profile: RulesConfig values}``). Rows without a ``profile`` use ``default_profile``.
    """

    def __init__(self, default_profile: str = "none") -> None:
        self.default_profile = default_profile
        self.policies: dict[str, PPOPolicy] = {}
        self.rules: dict[str, RulesConfig] = {}

    def load_context(self, context: PythonModelContext) -> None:
        rules = json.loads(Path(context.artifacts["rules"]).read_text(encoding="utf-8"))
        self.rules = {p: rules_from_json(v) for p, v in rules.items()}
        self.policies = {
            p: PPOPolicy.load(context.artifacts[f"policy_{p}"], name=f"ppo-{p}") for p in rules
        }

    # -------------------------------------------------------------- in-memory construction
    @classmethod
    def from_policies(
        cls,
        policies: Mapping[str, PPOPolicy],
        rules: Mapping[str, RulesConfig],
        default_profile: str | None = None,
    ) -> PolicyModel:
        """Build without MLflow (for tests and direct use)."""
        model = cls(default_profile or next(iter(policies)))
        model.policies = dict(policies)
        model.rules = dict(rules)
        return model

    def predict(
        self,
        context: PythonModelContext | None,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        params = params or {}
        mode = str(params.get("mode", "action"))
        if mode not in ("action", "schedule"):
            raise DataError(f"params.mode = {mode!r}; expected 'action' or 'schedule'")
        frame = _complete(pd.DataFrame(model_input), self.default_profile)
        parts = []
        for profile, rows in frame.groupby("profile", sort=False):
            if profile not in self.policies:
                raise DataError(
                    f"input column 'profile' has {profile!r}; this model holds "
                    f"{sorted(self.policies)}"
                )
            sub = rows.reset_index()
            if mode == "action":
                out = self._act(str(profile), sub)
            else:
                out = self._schedule(str(profile), sub, int(params.get("seed", 0)))
            parts.append(out)
        result = pd.concat(parts, ignore_index=True)
        return result.sort_values(["sku_row", "week_index"], ignore_index=True)

    # -------------------------------------------------------------- internals
    def _state(
        self, profile: str, rows: pd.DataFrame
    ) -> tuple[Catalog, DecisionState, MarketState]:
        rules = self.rules[profile]
        n = len(rows)
        catalog = Catalog.build(
            n_skus=n,
            initial_stock=rows["initial_stock"].to_numpy(float),
            start_week=rows["week"].to_numpy(np.int64),
            age_weeks=rows["age_weeks"].to_numpy(np.int64),
            **{f: rows[f].to_numpy(float) for f in _CATALOG_FIELDS},
        )
        budget = rows["coupon_weeks_left"].to_numpy(float)
        default_budget = 10**6 if rules.coupon_budget_weeks is None else rules.coupon_budget_weeks
        depth = rows["depth_index"].to_numpy(np.int64)
        if np.any((depth < 0) | (depth >= rules.n_discounts)):
            raise DataError(
                f"input column 'depth_index' must be in [0, {rules.n_discounts}) for profile "
                f"{profile!r}; got {sorted(set(depth.tolist()))}"
            )
        decision = DecisionState(
            weeks_left=rows["weeks_left"].to_numpy(np.int64),
            stock=rows["stock"].to_numpy(float),
            initial_stock=rows["initial_stock"].to_numpy(float),
            depth_index=depth,
            weeks_since_change=rows["weeks_since_change"].to_numpy(np.int64),
            coupon_weeks_left=np.where(np.isnan(budget), default_budget, budget).astype(np.int64),
            age_weeks=rows["age_weeks"].to_numpy(np.int64),
        )
        market = MarketState(
            stock=decision.stock.copy(),
            week=rows["week"].to_numpy(np.int64),
            ref_price=np.ones(n),
            fatigue=np.zeros(n),
        )
        return catalog, decision, market

    def _decide(
        self,
        profile: str,
        catalog: Catalog,
        decision: DecisionState,
        market: MarketState,
        horizon: np.ndarray,
        last_sold: np.ndarray,
    ) -> np.ndarray:
        rules = self.rules[profile]
        obs = build_observation(
            catalog, decision, market, rules, horizon_weeks=horizon, last_units_sold=last_sold
        )
        masks = action_mask(rules, decision, catalog)
        ctx = PolicyContext(catalog, decision, market, rules, horizon)
        return self.policies[profile].act(obs, masks, ctx)

    def _act(self, profile: str, rows: pd.DataFrame) -> pd.DataFrame:
        rules = self.rules[profile]
        catalog, decision, market = self._state(profile, rows)
        actions = self._decide(
            profile,
            catalog,
            decision,
            market,
            rows["horizon_weeks"].to_numpy(np.int64),
            rows["last_units_sold"].to_numpy(float),
        )
        d, c = rules.depths(actions)
        return pd.DataFrame(
            {
                "sku_row": rows["index"].to_numpy(np.int64),
                "week_index": np.zeros(len(rows), dtype=np.int64),
                "action": actions,
                "discount": d,
                "coupon": c,
                "units_sold": np.full(len(rows), np.nan),
                "stock": decision.stock,
            }
        )

    def _schedule(self, profile: str, rows: pd.DataFrame, seed: int) -> pd.DataFrame:
        rules = self.rules[profile]
        catalog, decision, market = self._state(profile, rows)
        horizon = rows["horizon_weeks"].to_numpy(np.int64)
        last = rows["last_units_sold"].to_numpy(float)
        rng = np.random.default_rng(seed)
        out = []
        for k in range(int(decision.weeks_left.max())):
            live = decision.weeks_left > 0
            actions = self._decide(profile, catalog, decision, market, horizon, last)
            actions = np.where(live, actions, 0)
            d, c = rules.depths(actions)
            market, res = step(catalog, market, d, c, rng, exit_now=decision.weeks_left == 1)
            sold = np.where(live, res.units_sold, 0.0)
            out.append(
                pd.DataFrame(
                    {
                        "sku_row": rows["index"].to_numpy(np.int64),
                        "week_index": np.full(len(rows), k, dtype=np.int64),
                        "action": actions,
                        "discount": d,
                        "coupon": c,
                        "units_sold": sold,
                        "stock": res.stock_after,
                        "_live": live,
                    }
                )
            )
            decision = advance(rules, decision, actions, sold)
            decision.weeks_left = np.maximum(decision.weeks_left, 0)
            last = sold
        frame = pd.concat(out, ignore_index=True)
        return frame[frame["_live"]].drop(columns="_live")


def _complete(frame: pd.DataFrame, default_profile: str) -> pd.DataFrame:
    """Check required columns and fill optional ones with their defaults."""
    missing = [name for name, _, req, _ in INPUT_COLUMNS if req and name not in frame.columns]
    if missing:
        raise DataError(
            f"policy model input is missing column(s) {missing}; required: "
            f"{[n for n, _, r, _ in INPUT_COLUMNS if r]}"
        )
    out = frame.reset_index(drop=True)
    for name, _, _, default in INPUT_COLUMNS:
        if name not in out.columns or out[name].isna().all():
            if name == "profile":
                out[name] = default_profile
            elif name == "horizon_weeks":
                out[name] = out["weeks_left"]
            elif name == "coupon_weeks_left":
                out[name] = np.nan
            else:
                out[name] = default
    out["profile"] = out["profile"].astype(object).fillna(default_profile).astype(str)
    for name in ("weeks_left", "stock", "initial_stock"):
        vals = pd.to_numeric(out[name], errors="coerce")
        if vals.isna().any() or (vals < 0).any():
            raise DataError(f"policy model input column {name!r} must be numbers >= 0")
    if (out["weeks_left"] < 1).any():
        raise DataError("policy model input column 'weeks_left' must be >= 1")
    return out


def log_policy_model(
    policy_paths: Mapping[str, str | Path],
    rules: Mapping[str, RulesConfig],
    *,
    example: pd.DataFrame,
    name: str = "policy",
    register: bool = True,
    alias: str | None = CHAMPION_ALIAS,
    tags: Mapping[str, str] | None = None,
    registered_name: str = REGISTERED_NAME,
) -> mlflow.models.model.ModelInfo:
    """Log the policies as one pyfunc model in the active run; optionally register it.

    Parameters
    ----------
    policy_paths : mapping of profile -> path of the SB3 model zip
    rules : mapping of profile -> RulesConfig
    example : DataFrame
        Input example (a few rows of :data:`INPUT_COLUMNS`).
    name : str
        Artifact name in the run.
    register : bool
        Register as :data:`REGISTERED_NAME` and set ``alias`` on the new version.
    alias : str or None
        Alias to point at the new version (``"champion"``).
    tags : mapping, optional
        Tags of the new registered version (the pipeline records its run and evaluation).
    registered_name : str
        The registered model's name (tests use their own).
    """
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="deadstock-policy-"))
    rules_path = tmp / "rules.json"
    rules_path.write_text(
        json.dumps({p: rules_to_json(r) for p, r in rules.items()}, indent=2), encoding="utf-8"
    )
    artifacts = {"rules": str(rules_path)}
    artifacts.update({f"policy_{p}": str(path) for p, path in policy_paths.items()})
    info = mlflow.pyfunc.log_model(
        name=name,
        python_model=PolicyModel(default_profile=next(iter(policy_paths))),
        artifacts=artifacts,
        signature=signature(),
        input_example=example,
        # Stated, not inferred: inference loads the model in a subprocess (many seconds).
        pip_requirements=pip_requirements(),
        registered_model_name=registered_name if register else None,
    )
    if register and info.registered_model_version is not None:
        client = mlflow.MlflowClient()
        version = str(info.registered_model_version)
        for key, value in (tags or {}).items():
            client.set_model_version_tag(registered_name, version, key, value)
        if alias:
            client.set_registered_model_alias(registered_name, alias, version)
    return info


def pip_requirements() -> list[str]:
    """Pinned requirements of the logged policy model (the installed versions)."""
    from importlib import metadata

    reqs = []
    for dist in ("torch", "stable-baselines3", "sb3-contrib", "gymnasium", "numpy", "pandas",
                 "cloudpickle"):  # fmt: skip
        try:
            reqs.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            reqs.append(dist)
    reqs.append(f"mlflow=={mlflow.__version__}")
    return reqs


def example_input(rules: RulesConfig, profile: str, n_rows: int = 3) -> pd.DataFrame:
    """A small, valid input frame (also the logged input example)."""
    return pd.DataFrame(
        {
            "profile": [profile] * n_rows,
            "weeks_left": np.linspace(12, 2, n_rows).astype(np.int64),
            "horizon_weeks": [12] * n_rows,
            "stock": np.linspace(200, 40, n_rows),
            "initial_stock": [200.0] * n_rows,
            "depth_index": [0] * n_rows,
            "weeks_since_change": [LONG_AGO] * n_rows,
            "coupon_weeks_left": [
                float(rules.coupon_budget_weeks) if rules.coupon_budget_weeks else np.nan
            ]
            * n_rows,
            "age_weeks": [52] * n_rows,
            "last_units_sold": [0.0] * n_rows,
            "week": [0] * n_rows,
            "list_price": [1.0] * n_rows,
            "unit_cost": [0.4] * n_rows,
            "base_demand": [10.0] * n_rows,
            "elasticity": [-2.0] * n_rows,
            "coupon_coef": [3.0 if rules.n_coupons > 1 else 0.0] * n_rows,
            "dispersion": [0.0] * n_rows,
            "salvage_value_per_unit": [0.0] * n_rows,
            "holding_cost_per_unit_week": [0.0] * n_rows,
            "risk_score": [0.5] * n_rows,
        }
    )


def _profile_folders(source: str | Path) -> dict[str, Path]:
    """Per profile, the checkpoint folder of a training folder (its sub-folders) or of a
    ``model.zip`` (its folder); ``{}`` for an MLflow URI."""
    text = str(source)
    if "://" in text or text.startswith(("models:/", "runs:/")):
        return {}
    path = Path(text)
    if path.is_dir():
        return {sub.name: sub for sub in sorted(path.iterdir()) if sub.is_dir()}
    return {path.parent.name: path.parent} if path.is_file() else {}


def _load_per_profile(
    source: str | Path, find: Callable[[Path], list[Path]]
) -> dict[str, list[PPOPolicy]]:
    out = {}
    for key, folder in _profile_folders(source).items():
        paths = find(folder)
        if paths:
            out[key] = [PPOPolicy.load(p, name=f"ppo-{key}") for p in paths]
    return out


def load_snapshots(source: str | Path) -> dict[str, list[PPOPolicy]]:
    """The late snapshots (:func:`agents.ppo.late_snapshots`) per profile of a training folder
    (``<profile>/snapshots``, kept by ``train --keep-snapshots``) or of a ``model.zip``'s
    folder; ``{}`` for an MLflow URI or where none were kept."""
    return _load_per_profile(source, late_snapshots)


def load_members(source: str | Path) -> dict[str, list[PPOPolicy]]:
    """The other ensemble members (:func:`agents.ppo.member_paths`, trained by ``train
    --members``) per profile of a training folder or of a ``model.zip``'s folder; ``{}`` for
    an MLflow URI or where there are none."""
    return _load_per_profile(source, member_paths)


def load_policies(source: str | Path) -> dict[str, PPOPolicy]:
    """PPO policies per profile from a training folder, a model zip or an MLflow model URI.

    Parameters
    ----------
    source : str or path
        A folder written by ``deadstock train`` (``<profile>/model.zip`` per profile), one
        ``model.zip`` (profile taken from its folder name), or an MLflow URI
        (``models:/deadstock-policy@champion``, ``runs:/<id>/policy``).

    Raises
    ------
    ConfigError
        When nothing loadable is found there.
    """
    from ingest.errors import ConfigError

    text = str(source)
    if "://" in text or text.startswith(("models:/", "runs:/")):
        try:
            loaded = mlflow.pyfunc.load_model(text)
        except mlflow.exceptions.MlflowException as err:
            raise ConfigError(f"--model {text!r}: cannot load the MLflow model: {err}") from None
        inner = loaded.unwrap_python_model()
        if not isinstance(inner, PolicyModel):
            raise ConfigError(f"--model {text!r} is not a deadstock policy model")
        return dict(inner.policies)
    path = Path(text)
    if path.is_file():
        return {path.parent.name: PPOPolicy.load(path, name=f"ppo-{path.parent.name}")}
    if path.is_dir():
        found = {
            sub.name: PPOPolicy.load(sub / "model.zip", name=f"ppo-{sub.name}")
            for sub in sorted(path.iterdir())
            if (sub / "model.zip").is_file()
        }
        if found:
            return found
    raise ConfigError(
        f"--model {text!r}: expected a training folder with <profile>/model.zip, a model.zip "
        f"or an MLflow model URI"
    )
