"""The policy challenger of ``deadstock retrain`` on a synthetic world: a worked example,
written to the ``policy-retrain`` section of ``docs/field_tests.md``.

Usage::

    nice -n 10 .venv/bin/python benchmarks/retrain_policy_example.py
    nice -n 10 .venv/bin/python benchmarks/retrain_policy_example.py --no-doc

In a fresh MLflow store (a scratch SQLite file), two retraining runs of the policy only:

1. ``deadstock retrain --models policy --policy-steps SMALL``: no champion is registered, so
   the challenger (masked PPO trained for a few thousand steps) becomes the champion;
2. ``deadstock retrain --models policy --policy-steps LARGE``: a challenger trained longer on
   the same data, planned against that champion on the same fitted catalog and simulated on
   common random numbers per SKU; the alias moves only when its profit gain's CI clears the
   margin.

The decisions are read back from each run's ``retrain_decision.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import pandas as pd  # noqa: E402

from benchmarks._docpage import machine_line, markdown_table, write_section  # noqa: E402
from simulator.synthetic import SyntheticConfig, generate_world, write_world  # noqa: E402

PAGE = ROOT / "docs" / "field_tests.md"
WORLD = {"n_skus": 300, "n_weeks": 52, "seed": 3}


def _retrain(data: Path, steps: int) -> tuple[dict, float]:
    """One ``deadstock retrain --models policy`` run; its decision record and seconds."""
    import mlflow

    from app.cli.main import main

    args = ["retrain", "--data", str(data), "--models", "policy", "--policy-steps", str(steps)]
    print("$ deadstock " + " ".join(args), flush=True)
    t0 = time.time()
    code = main(args)
    seconds = time.time() - t0
    if code != 0:
        raise SystemExit(f"deadstock retrain exit {code}")
    run = mlflow.search_runs(
        filter_string="tags.stage = 'retrain'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )[0]
    path = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="retrain_decision.json"
    )
    (decision,) = json.loads(Path(path).read_text(encoding="utf-8"))["decisions"]
    decision["tag"] = run.data.tags.get("retrain.policy")
    return decision, seconds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--small", type=int, default=2048, help="steps of the first champion")
    p.add_argument("--large", type=int, default=50_000, help="steps of the challenger")
    p.add_argument("--work", default="/tmp/retrain_policy_example", help="scratch folder")
    p.add_argument("--no-doc", action="store_true", help="print, do not write the page")
    a = p.parse_args(argv)
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    store = work / "mlflow.db"
    store.unlink(missing_ok=True)  # a fresh registry: the first run has no champion
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{store}"
    data = work / "world"
    write_world(generate_world(SyntheticConfig(**WORLD)), data)
    rows = []
    for steps in (a.small, a.large):
        d, seconds = _retrain(data, steps)
        rows.append(
            {
                "policy_steps": steps,
                "skus": d["n_skus"],
                "champion_version": d["champion_version"] or "(none)",
                "challenger_version": d["challenger_version"],
                "champion_profit": d["champion_total_profit"],
                "challenger_profit": d["challenger_total_profit"],
                "gain": d["improvement"],
                "ci_low": d["ci_low"],
                "ci_high": d["ci_high"],
                "decision": d["tag"],
                "seconds": round(seconds),
                "reason": d["reason"],
            }
        )
    frame = pd.DataFrame(rows)
    print(frame.to_string(), flush=True)
    if a.no_doc:
        return 0
    section = render(frame, a)
    write_section(PAGE, "policy-retrain", section, title="Field tests and monitoring")
    print(f"wrote {PAGE}")
    return 0


def _pct(x: object) -> str:
    return "" if x is None or x != x else f"{100 * float(x):+.1f} %"  # type: ignore[operator]


def render(frame: pd.DataFrame, a: argparse.Namespace) -> str:
    show = frame.assign(
        champion_profit=[("" if v is None or v != v else f"{v:,.0f}") for v in
                         frame["champion_profit"]],
        challenger_profit=[f"{v:,.0f}" for v in frame["challenger_profit"]],
        gain=[_pct(v) for v in frame["gain"]],
        ci=[("" if lo is None or lo != lo else f"{_pct(lo)} .. {_pct(hi)}")
            for lo, hi in zip(frame["ci_low"], frame["ci_high"], strict=True)],
    )[["policy_steps", "skus", "champion_version", "challenger_version", "champion_profit",
       "challenger_profit", "gain", "ci", "decision", "seconds"]]  # fmt: skip
    last = frame.iloc[-1]
    return "\n".join(
        [
            "### Worked example: the policy challenger",
            "",
            "`benchmarks/retrain_policy_example.py`, in a fresh MLflow store, on a synthetic "
            f"world ({WORLD['n_skus']} SKUs, {WORLD['n_weeks']} weeks, seed {WORLD['seed']}):",
            "",
            "```bash",
            f"deadstock retrain --data WORLD --models policy --policy-steps {a.small}",
            f"deadstock retrain --data WORLD --models policy --policy-steps {a.large}",
            "```",
            "",
            "Profits are the expected profit of each policy's plan summed over the catalog's "
            "SKUs (8 weeks, 200 episodes per SKU on common random numbers, parameters drawn "
            "from the fit's uncertainty); gain = sum (challenger - champion) / sum |champion| "
            "over the SKUs, its "
            "95 % CI from 1,000 bootstrap resamples of the SKUs; margin 2 %.",
            "",
            markdown_table(show, floats=0),
            "",
            f'The second run\'s decision, as recorded: "{last["reason"]}".',
            "",
            f"Machine: {machine_line()}.",
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
