"""The learning-curve callback: every N steps, the policy's % of the suite's reference (the DP
optimum, the learning market's oracle, the augmented DP of the memory market or the budget
market's Lagrangian bound).

Kept apart from :mod:`experiments.train` so that benchmarks can use it without MLflow.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from agents.ppo import PPOPolicy
from experiments.evaluate import Prepared, ppo_factory, score_agent
from experiments.markets import MARKETS

log = logging.getLogger(__name__)


class CurveCallback(BaseCallback):
    """Every ``every`` steps, score the policy on prepared scenarios and log its % of the
    reference (``curve/<policy key>/pct_of_dp_mean`` and ``_min``; the metric names are kept
    from when every reference was a DP: the reference is the suite's, named in the log line).

    With ``suite`` the raw network (no guard) plays as the suite's PPO agent does
    (:func:`experiments.evaluate.ppo_factory`: in the budget market it allocates the slots one
    SKU at a time); without it, the raw policy plays every scenario.
    """

    def __init__(
        self,
        profile: str,
        prepared: list[Prepared],
        every: int,
        n_episodes: int,
        rows: list[dict[str, Any]],
        *,
        log_to_mlflow: bool = True,
        suite: str | None = None,
    ) -> None:
        super().__init__()
        self.suite = suite
        self.log_to_mlflow = log_to_mlflow
        self.eval_seconds = 0.0
        self.eval_cpu_seconds = 0.0
        self.profile = profile
        self.prepared = prepared
        self.every = every
        self.n_episodes = n_episodes
        self.rows = rows
        self._next = 0
        self._t0 = time.perf_counter()

    def _on_training_start(self) -> None:
        self._next = (self.num_timesteps // self.every + 1) * self.every
        self._t0 = time.perf_counter()

    def _measure(self) -> None:
        t0 = time.perf_counter()
        c0 = time.process_time()
        policy = PPOPolicy(self.model)  # type: ignore[arg-type]
        factory = (
            (lambda s, sol: policy)
            if self.suite is None
            else ppo_factory({self.profile: policy}, self.suite, guard=False)
        )
        got = score_agent(
            self.prepared,
            factory,
            agent="ppo",
            n_episodes=self.n_episodes,
        )
        pct = np.array([r["pct_of_reference"] for r in got])
        row: dict[str, Any] = {
            "profile": self.profile,
            "timesteps": int(self.num_timesteps),
            # training time only: the time spent in these evaluations is left out
            "train_seconds": t0 - self._t0 - self.eval_seconds,
            "pct_mean": float(pct.mean()),
            "pct_median": float(np.median(pct)),
            "pct_min": float(pct.min()),
        }
        self.rows.append(row)
        if self.log_to_mlflow:
            from experiments import tracking  # imported here: benchmarks run without MLflow

            tracking.log_metrics(
                {
                    f"curve/{self.profile}/pct_of_dp_mean": row["pct_mean"],
                    f"curve/{self.profile}/pct_of_dp_min": row["pct_min"],
                    f"curve/{self.profile}/train_seconds": row["train_seconds"],
                },
                step=int(self.num_timesteps),
            )
        self.eval_seconds += time.perf_counter() - t0
        self.eval_cpu_seconds += time.process_time() - c0
        log.info(
            "curve %s: %s steps, %% of reference (%s) mean %.2f worst %.2f",
            self.profile,
            f"{self.num_timesteps:,}",
            MARKETS[self.prepared[0].market].reference if self.prepared else "none",
            row["pct_mean"],
            row["pct_min"],
        )

    def _on_step(self) -> bool:
        if self.every and self.num_timesteps >= self._next:
            self._measure()
            self._next += self.every
        return True

    def _on_training_end(self) -> None:
        if not self.rows or self.rows[-1]["timesteps"] != self.num_timesteps:
            self._measure()
