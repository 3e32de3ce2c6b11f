"""Rolling replay of the Complete Journey year, as a team would have lived it.

From week ``--start`` (27) on, every ``--step`` (4) weeks, with only the data up to that week:

1. **monitor** the registered champions (risk model, demand fit) against the weeks they
   were trained on (:func:`monitoring.monitor.run_monitor`: feature drift, calibration of
   the matured scores, forecast error against the holdout error);
2. **retrain** when a check crossed its threshold (:func:`experiments.retrain_runs.
   retrain_run`: challengers compared with the champions on the same backtest, promoted
   only when better by the margin);
3. **plan**: the champion risk model's ``high``-tier established SKUs, planned with the exact
   DP on the champion demand model's parameters, simulated against no markdown on the same
   random numbers.

It also reads, per step, the risk champion's **realized precision** (its ``high`` tier at
week ``t - 13`` against what those SKUs sold in weeks ``t-12 .. t``; out of sample only when
``t - 13`` is not before the end of the model's training labels) and the demand champion's
**forecast error** (WMAPE) on the last ``--step`` weeks.

The first step trains the first champions (no backtest is possible yet: the risk label needs
13 weeks of history and 13 of outcome). Kept cheap for a shared 2-core machine: the
``--n-skus`` SKUs drawn at random (seeded; the best sellers alone almost never go dead),
the demand fit over the ``--max-demand-skus`` best sellers among them, the risk model without the buyer
(basket) features and with logistic regression and XGBoost only, the DP planner, in a
temporary MLflow store.

The policy (``--policy-steps``, 0 = left out): the first step trains the first champion
policy (masked PPO on the demand fitted from the weeks so far, ``--policy-steps`` steps);
every step plans the same SKUs as the DP with the champion policy, simulated with the DP's
plan and no markdown on the same random numbers; a step whose monitor crosses a check
retrains the policy with the other models (``deadstock retrain``'s policy challenger). Run:

    nice -n 10 .venv/bin/python benchmarks/replay_cj.py --write-doc
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
if "MLFLOW_TRACKING_URI" not in os.environ:  # the replay's registry is its own
    _STORE = Path(tempfile.mkdtemp(prefix="deadstock-replay-mlflow-"))
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{_STORE / 'mlflow.db'}"
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from benchmarks._docpage import machine_line, markdown_table, write_section  # noqa: E402

log = logging.getLogger("replay_cj")
DOC = ROOT / "docs" / "field_tests.md"
IMG = ROOT / "docs" / "img"
RISK_NAME, DEMAND_NAME, POLICY_NAME = "replay-risk", "replay-demand", "replay-policy"
#: SKUs planned per step (the highest risks of the high tier), to keep the DP cheap.
MAX_PLANNED = 40
PLAN_WEEKS = 8


def _configs(n_skus: int, seed: int, policy_steps: int = 0):
    from dataclasses import replace

    from envs.config import RulesConfig
    from experiments.retrain_runs import RETRAIN_PPO, RetrainConfig
    from monitoring.challenger import PromotionRule
    from risk_model.features import FeatureConfig
    from risk_model.scoring import RiskConfig

    risk = RiskConfig(models=("lr", "xgb"), features=FeatureConfig(buyer_features=False), seed=seed)
    return RetrainConfig(
        models=("risk", "demand", "policy") if policy_steps else ("risk", "demand"),
        risk=risk,
        rule=PromotionRule(seed=seed),
        max_demand_skus=n_skus,
        rules=RulesConfig(),  # the rules the DP plans under in plan_step
        ppo=replace(RETRAIN_PPO, total_timesteps=max(policy_steps, 1)),
        horizon_weeks=PLAN_WEEKS,
        max_policy_skus=n_skus,
        policy_episodes=100,
        risk_name=RISK_NAME,
        demand_name=DEMAND_NAME,
        policy_name=POLICY_NAME,
        seed=seed,
    )


def bootstrap(dataset, panel, cfg) -> dict:
    """The first champions: the risk model trained on every label the data allow (no test
    is possible yet) and the demand fit (promoted: no champion)."""
    from dataclasses import replace

    import mlflow

    from experiments.retrain_runs import retrain_run
    from experiments.risk_runs import log_risk_model
    from experiments.tracking import start_run
    from risk_model.scoring import train_and_score

    t = int(panel["week"].max())
    result = train_and_score(dataset, panel, replace(cfg.risk, score_cutoff=t))
    with start_run(f"replay-bootstrap__w{t}", tags={"stage": "replay-bootstrap"}):
        log_risk_model(
            result,
            name=cfg.risk_name,
            tags={"data_last_week": str(t), "label_end_week": str(t)},
        )
    first = tuple(m for m in cfg.models if m != "risk")
    out = retrain_run(dataset, panel, replace(cfg, models=first))
    mlflow.MlflowClient()  # the registry is reachable (fails early otherwise)
    return {"risk": "trained (first)"} | {
        m: "promoted" if m in out.promoted else "kept" for m in first
    }


def realized_precision(
    model, label_end: int, panel, cfg, products
) -> tuple[float, int, bool, float]:
    """Precision of the high tier at ``t - 13`` against the matured labels, the number
    flagged, whether it is out of sample, and the base rate (share of the labelled SKUs that
    went dead)."""
    from risk_model.features import build_features
    from risk_model.labels import make_labels

    t = int(panel["week"].max())
    cutoff = t - cfg.risk.label.horizon_weeks
    labels = make_labels(panel, cutoff, cfg.risk.label)
    feats = build_features(panel, cutoff, cfg.risk.features, products=products)
    feats = feats.reindex(labels.index)
    p = model.predict_proba(feats[list(model.feature_names_in_)])[:, 1]
    flag = p >= model.threshold_
    y = labels["label"].to_numpy()
    prec = float(y[flag].mean()) if flag.any() else float("nan")
    return prec, int(flag.sum()), cutoff >= label_end, float(y.mean())


def plan_step(model, catalog, panel, cfg, products, seed: int, policy=None) -> dict:
    """DP plan (and the champion policy's, when given) for the champion's high-tier
    established SKUs against no markdown, on the same random numbers per SKU."""
    from agents.dp import DPNotExactError  # noqa: F401 - the DP's refusals are reported
    from envs.config import RulesConfig
    from planning.from_policy import dp_plan, plan_of
    from planning.outcomes import simulate_schedules
    from planning.schedule import Schedule
    from risk_model.features import build_features
    from risk_model.labels import established

    t = int(panel["week"].max())
    feats = build_features(panel, t, cfg.risk.features, products=products)
    est = established(panel, t, cfg.risk.label).reindex(feats.index, fill_value=False)
    feats = feats[est.to_numpy()]
    p = pd.Series(model.predict_proba(feats[list(model.feature_names_in_)])[:, 1], feats.index)
    high = p[p >= model.threshold_].sort_values(ascending=False)
    known = pd.Index(catalog.sku).intersection(high.index)
    chosen = [s for s in high.index if s in set(known)][:MAX_PLANNED]
    if not chosen:
        return {"n_high": int(len(high)), "n_planned": 0}
    pos = pd.Series(np.arange(catalog.n_skus), index=pd.Index(catalog.sku))
    sub = catalog.take(pos.reindex(chosen).to_numpy())
    rules = RulesConfig()
    dp = dp_plan(sub, rules, PLAN_WEEKS, seed=seed)
    none = Schedule(
        sku=np.asarray(sub.sku, dtype=object),
        discount=np.zeros((sub.n_skus, PLAN_WEEKS)),
        coupon=np.zeros((sub.n_skus, PLAN_WEEKS)),
        name="no_markdown",
    )
    plans = {"dp": dp.schedule, "none": none}
    if policy is not None:
        plans["ppo"] = plan_of(policy, sub, rules, PLAN_WEEKS, seed=seed)[0]
    out = simulate_schedules(sub, plans, n_episodes=200, seed=seed)
    gain = out["dp"].totals["profit"].sum(axis=0) - out["none"].totals["profit"].sum(axis=0)
    ppo = {}
    if policy is not None:
        g = out["ppo"].totals["profit"].sum(axis=0) - out["none"].totals["profit"].sum(axis=0)
        ppo = {"ppo_gain": float(g.mean())}
    left = (
        out["dp"].sku_mean("leftover_units").sum()
        if "leftover_units" in out["dp"].totals
        else np.nan
    )
    left0 = (
        out["none"].sku_mean("leftover_units").sum()
        if "leftover_units" in out["none"].totals
        else np.nan
    )
    return {
        "n_high": int(len(high)),
        "n_planned": int(sub.n_skus),
        "n_dp_exact": int(dp.exact.sum()),
        "plan_gain": float(gain.mean()),
        "plan_gain_sd": float(gain.std(ddof=1) / np.sqrt(gain.size)),
        "leftover_dp": float(left),
        "leftover_none": float(left0),
        **ppo,
    }


def replay(args: argparse.Namespace) -> tuple[pd.DataFrame, dict]:
    from app.data import DataStageConfig, run_data_stage
    from experiments.retrain_runs import (
        load_demand_champion,
        load_policy_champion,
        load_risk_champion,
        retrain_run,
    )
    from monitoring.forecast_error import forecast_frame, wmape
    from monitoring.monitor import DemandModelRef, MonitorConfig, RiskModelRef, run_monitor

    t0 = time.perf_counter()
    data = run_data_stage(DataStageConfig(source=args.source, out_dir=None))
    dataset = data.dataset
    # a seeded random sample of SKUs: the best sellers alone almost never go dead
    skus = np.sort(data.panel["sku"].unique())
    rng = np.random.default_rng(np.random.SeedSequence(args.seed).spawn(1)[0])
    chosen = rng.choice(skus, size=min(args.n_skus, skus.size), replace=False)
    full = data.panel[data.panel["sku"].isin(set(chosen))]
    cfg = _configs(args.max_demand_skus, args.seed, args.policy_steps)
    last = int(full["week"].max())
    rows = []
    extra: dict = {
        "load_seconds": time.perf_counter() - t0,
        "last_week": last,
        "n_skus": int(full["sku"].nunique()),
        "n_skus_all": int(skus.size),
    }
    for t in range(args.start, last + 1, args.step):
        ts = time.perf_counter()
        panel = full[full["week"] <= t]
        row: dict = {"week": t}
        if not rows:
            row.update(bootstrap(dataset, panel, cfg))
            row["crossed"] = "(first champions)"
        else:
            model, rv = load_risk_champion(RISK_NAME)
            catalog, dv = load_demand_champion(DEMAND_NAME)
            W = int(rv.tags["data_last_week"])
            label_end = int(rv.tags["label_end_week"])
            fit_last = int(dv.tags["fit_last_week"])
            prec, n_flag, oos, base = realized_precision(
                model, label_end, panel, cfg, dataset.products
            )
            recent = panel[panel["week"] > t - args.step]
            fc = forecast_frame(catalog, panel[panel["week"] <= fit_last], recent, cfg.fit)
            row.update(
                precision=prec,
                base_rate=base,
                n_flagged=n_flag,
                precision_oos=oos,
                wmape_last_weeks=wmape(fc["units"].to_numpy(), fc["forecast"].to_numpy()),
                holdout_wmape=float(dv.tags["holdout_wmape"]),
                risk_version=rv.version,
                demand_version=dv.version,
            )
            res = run_monitor(
                panel,
                MonitorConfig(
                    reference_week=W,
                    label=cfg.risk.label,
                    features=cfg.risk.features,
                    forecast_max_skus=args.max_demand_skus,
                ),
                products=dataset.products,
                risk=RiskModelRef(model, label_end),
                demand=DemandModelRef(catalog, float(dv.tags["holdout_wmape"]), fit_last),
            )
            extra["last_monitor"] = res
            crossed = [c.name for c in res.crossed]
            row["crossed"] = ", ".join(crossed) or "none"
            row["drift_n"] = int(res.drift["drifted"].sum())
            bad = res.drift[res.drift["drifted"]]
            row["drifted"] = "; ".join(f"{r.scope}: {r.feature}" for r in bad.itertuples())
            row["ece"] = res.calibration.ece if res.calibration is not None else np.nan
            if crossed:
                out = retrain_run(dataset, panel, cfg)
                for m in cfg.models:
                    if m in out.skipped:
                        row[m] = "skipped (too little history)"
                    elif m in out.comparisons:
                        c = out.comparisons[m]
                        row[m] = (
                            f"{'promoted' if c.promote else 'kept'} ({c.improvement:+.1%}, "
                            f"CI {c.ci_low:+.1%}..{c.ci_high:+.1%})"
                        )
            else:
                for m in cfg.models:
                    row[m] = "-"
        model, _ = load_risk_champion(RISK_NAME)
        catalog, _ = load_demand_champion(DEMAND_NAME)
        policy = None
        if "policy" in cfg.models:
            policy, pv = load_policy_champion(POLICY_NAME, cfg.rules)
            row["policy_version"] = None if pv is None else pv.version
        row.update(plan_step(model, catalog, panel, cfg, dataset.products, args.seed, policy))
        row["seconds"] = time.perf_counter() - ts
        log.info("replay week %d: %s", t, row)
        rows.append(row)
    return pd.DataFrame(rows), extra


def plot(frame: pd.DataFrame, path: Path) -> Path:
    from matplotlib.figure import Figure

    from ingest.io import write_figure_atomic

    fig = Figure(figsize=(8, 4.5))
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    f = frame.iloc[1:]
    oos = f["precision_oos"].astype(bool)
    ax1.plot(f["week"], f["precision"], "o-", color="C0", label="realized precision (high tier)")
    ax1.plot(f["week"][~oos], f["precision"][~oos], "o", mfc="white", color="C0",
             label="in-sample overlap")  # fmt: skip
    ax1.plot(f["week"], f["base_rate"], ":", color="grey", label="base rate (dead share)")
    for w, p, n in zip(f["week"], f["precision"], f["n_flagged"], strict=True):
        ax1.annotate(f"n={int(n)}", (w, p), fontsize=7, textcoords="offset points", xytext=(3, 3))
    ax1.set_ylabel("precision")
    ax2.plot(f["week"], f["wmape_last_weeks"], "s-", color="C1", label="WMAPE, last 4 weeks")
    ax2.plot(f["week"], f["holdout_wmape"], ":", color="C1", label="champion's holdout WMAPE")
    ax2.set(xlabel="replay week", ylabel="WMAPE")
    for ax in (ax1, ax2):
        for w in f["week"][f["crossed"] != "none"]:
            ax.axvline(w, color="red", alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    ax1.set_title("Replay of Complete Journey (red: a check crossed, retraining ran)")
    return write_figure_atomic(fig, path, bbox_inches="tight")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", default="completejourney")
    ap.add_argument("--n-skus", type=int, default=8000, help="SKUs replayed (random sample)")
    ap.add_argument(
        "--max-demand-skus", type=int, default=1500, help="best sellers the demand fit covers"
    )
    ap.add_argument("--start", type=int, default=27)
    ap.add_argument("--step", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--policy-steps",
        type=int,
        default=20_000,
        help="PPO steps of the replay's policy trainings (0: no policy)",
    )
    ap.add_argument("--write-doc", action="store_true", help="write the replay section")
    ap.add_argument("--save-frame", help="pickle the results here (to re-render the page)")
    ap.add_argument("--from-frame", help="re-render the page from --save-frame's file")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import matplotlib

    matplotlib.use("Agg")
    t0 = time.perf_counter()
    if args.from_frame:
        import pickle

        frame, extra, total = pickle.loads(Path(args.from_frame).read_bytes())
    else:
        frame, extra = replay(args)
        total = time.perf_counter() - t0
    if args.save_frame:
        import pickle

        Path(args.save_frame).write_bytes(pickle.dumps((frame, extra, total)))
    print(frame.to_string())
    IMG.mkdir(parents=True, exist_ok=True)
    plot(frame, IMG / "replay_cj.png")
    last = extra.get("last_monitor")
    if last is not None and not args.from_frame:
        from monitoring.report import plot_calibration, plot_drift, plot_forecast

        plot_drift(last, IMG / "replay_cj_drift.png")
        plot_calibration(last, IMG / "replay_cj_calibration.png")
        plot_forecast(last, IMG / "replay_cj_forecast.png")
    if args.write_doc:
        write_section(DOC, "replay", doc_body(frame, extra, args, total), title="Field tests")


def doc_body(frame: pd.DataFrame, extra: dict, args: argparse.Namespace, total: float) -> str:
    cols = ["week", "crossed", "drifted", "precision", "n_flagged", "precision_oos", "base_rate",
            "wmape_last_weeks",
            "holdout_wmape", "risk", "demand", "policy", "n_high", "n_planned", "plan_gain",
            "ppo_gain"]  # fmt: skip
    shown = frame[[c for c in cols if c in frame.columns]].copy()
    shown["precision_oos"] = shown["precision_oos"].map({True: "yes", False: "no"}).fillna("")
    for c in ("n_flagged", "n_high", "n_planned"):
        if c in shown:
            shown[c] = shown[c].map(lambda v: "" if pd.isna(v) else str(int(v)))
    shown = shown.rename(
        columns={"precision_oos": "oos", "wmape_last_weeks": "wmape_4w", "holdout_wmape": "holdout"}
    )
    return "\n".join(
        [
            "## Replaying the Complete Journey year",
            "",
            f"Command: `nice -n 10 .venv/bin/python benchmarks/replay_cj.py --n-skus {args.n_skus} "
            f"--write-doc` ({total / 60:.0f} min; {machine_line()}).",
            "",
            f"What it covered: {extra['n_skus']:,} Complete Journey SKUs drawn at random "
            f"(seed {args.seed}) of {extra['n_skus_all']:,}; the demand model over their "
            f"{args.max_demand_skus:,} best sellers; weeks {args.start} to "
            f"{int(frame['week'].max())} every {args.step} weeks (the data end at week "
            f"{extra['last_week']}) ({len(frame)} steps); the risk model without the basket "
            "features (LR and XGBoost); the DP planner on the at most "
            f"{MAX_PLANNED} riskiest high-tier SKUs the demand model covers, {PLAN_WEEKS} weeks, "
            "against no markdown on the same random numbers"
            + (
                f"; the champion PPO policy (trained for {args.policy_steps:,} steps when "
                "first and when retrained) plans the same SKUs on the same numbers"
                if args.policy_steps
                else "; no PPO"
            )
            + ". At each step the models "
            "see only the weeks up to it. Columns: `crossed` = the monitor's crossed checks "
            "(retraining runs when one crossed); `precision` = the risk champion's realized "
            "precision, its high tier at week t - 13 against what those SKUs sold in weeks "
            "t-12 .. t (`oos` = out of sample, i.e. t - 13 is not before the end of the "
            "model's training labels); `wmape_4w` = the demand champion's WMAPE on the last 4 "
            "weeks, next to its own holdout WMAPE; `risk`/`demand` = the retraining decision "
            "(relative loss improvement with its 95 % CI; `policy`: relative profit gain); "
            "`plan_gain` = expected profit of the DP plan minus no markdown, summed over the "
            "planned SKUs; `ppo_gain` the same for the champion policy's plan.",
            "",
            markdown_table(shown.fillna(""), floats=3),
            "",
            "![replay](img/replay_cj.png)",
        ]
    )


if __name__ == "__main__":
    main()
