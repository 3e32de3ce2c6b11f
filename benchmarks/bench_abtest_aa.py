"""A/A tests of the validation world on several seeds: how much the 1,000-test A/A rejection
rate moves from one draw of tests to the next, written to section ``aa-seeds`` of
``docs/field_tests.md``.

Usage::

    nice -n 10 .venv/bin/python benchmarks/bench_abtest_aa.py [--seeds 0 1 2 3 4] [--tests 1000]

The world, the SKUs, the strata and the plans are those of ``bench_abtest.py``'s validation
(its ``validation_parts``); each seed draws ``--tests`` fresh A/A tests (SKUs resampled within
strata, one episode each, a fresh stratified assignment), seed 0 being the draw the validation
table reports. The three metrics of one seed share their tests' assignments, so they are not
independent draws. A test that is exact at level ``a`` rejects a Binomial(n, a) share: the
page gives each rate with its Wilson interval and the pooled rate over all seeds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from bench_abtest import PAGE, WEEKS, WORLD, validation_parts  # noqa: E402

from benchmarks._docpage import machine_line, markdown_table, write_section  # noqa: E402
from fieldtests.power import ESTIMATORS, simulate_potential_outcomes, simulated_tests  # noqa: E402
from fieldtests.report import ESTIMATOR_LABELS  # noqa: E402
from fieldtests.validation import ALPHA, wilson  # noqa: E402
from simulator.synthetic import SyntheticConfig, generate_world  # noqa: E402

METRICS = ("profit", "sell_through", "dead_stock")


def seeds_of(seed: int) -> tuple[int, int]:
    """The simulation and test seeds ``fieldtests.validation.validate`` derives from ``seed``."""
    sim, test = (int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(2))
    return sim, test


def run(seeds: list[int], n_tests: int, n_episodes: int) -> pd.DataFrame:
    world = generate_world(SyntheticConfig(**WORLD))
    cat, codes, treat, control = validation_parts(world)
    sim_seed, _ = seeds_of(0)  # one world of outcomes, as in the validation
    rows = []
    for metric in METRICS:
        po = simulate_potential_outcomes(
            cat, treat, control, metric_name=metric, weeks=WEEKS, pre_weeks=WEEKS,
            n_episodes=n_episodes, seed=sim_seed, draw_parameters=False,
        )  # fmt: skip
        for seed in seeds:
            (aa,) = simulated_tests(po, codes, shifts=[0.0], n_tests=n_tests,
                                    seed=seeds_of(seed)[1], resample=True)  # fmt: skip
            for k in ESTIMATORS:
                rows.append({"metric": metric, "seed": seed, "estimator": k,
                             "rejections": int(aa.estimates[k].rejects(ALPHA).sum())})  # fmt: skip
            print(f"{metric} seed {seed} done", flush=True)
    return pd.DataFrame(rows)


def render(frame: pd.DataFrame, n_tests: int, seconds: float) -> str:
    seeds = sorted(frame["seed"].unique())
    out = []
    for (metric, k), g in frame.groupby(["metric", "estimator"], sort=False):
        rates = {f"seed {s}": f"{100 * r / n_tests:.1f} %" for s, r in
                 zip(g["seed"], g["rejections"], strict=True)}  # fmt: skip
        total, n = int(g["rejections"].sum()), n_tests * len(g)
        lo, hi = wilson(total, n)
        out.append({"metric": metric, "estimator": ESTIMATOR_LABELS.get(k, k), **rates,
                    "pooled": f"{100 * total / n:.1f} % [{100 * lo:.1f} %, {100 * hi:.1f} %]"})  # fmt: skip
    return "\n".join(
        [
            "## A/A rejection over several draws of tests",
            "",
            f"`benchmarks/bench_abtest_aa.py`: the validation world's A/A tests ({n_tests:,} per "
            f"seed, seeds {', '.join(map(str, seeds))}; seed 0 is the validation table's draw). "
            "Pooled: all seeds together, with its 95 % Wilson interval. The post-stratified CUPED "
            "test is a randomization test with 999 re-randomizations: it rejects when at most 48 "
            "of them are as extreme as the observed estimate, so it is exact at 49 / 1000 = 4.9 %, "
            "and a 1,000-test rate of an exact 4.9 % test falls outside 4-6 % about one time in "
            "eight by chance alone (Binomial(1000, 0.049)).",
            "",
            markdown_table(pd.DataFrame(out)),
            "",
            f"Machine: {machine_line()}; took {seconds:.0f} s.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--tests", type=int, default=1000)
    p.add_argument("--episodes", type=int, default=200)
    p.add_argument("--no-doc", action="store_true", help="print, do not write the page")
    a = p.parse_args(argv)
    t0 = time.time()
    frame = run(a.seeds, a.tests, a.episodes)
    body = render(frame, a.tests, time.time() - t0)
    print(body)
    if not a.no_doc:
        write_section(PAGE, "aa-seeds", body, title="Field tests and monitoring")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
