"""Figures of the agents: learning curves against the DP, policy maps, schedules vs the DP.

Figures are built with matplotlib's object API (no pyplot, no backend to select) and written
atomically; the runners log them to MLflow and ``benchmarks/agents_report.py`` copies them
into ``docs/img/``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from agents.dp import DPSolution
from agents.policy import Policy
from agents.rollout import rollout
from envs.config import DecisionState
from envs.context import PolicyContext
from envs.observation import build_observation
from envs.rules import LONG_AGO, action_mask, initial_decision_state
from experiments.suite import Scenario
from ingest.io import write_figure_atomic
from simulator.market import MarketState


def _save(fig: Figure, path: Path) -> Path:
    return write_figure_atomic(fig, path, bbox_inches="tight")


def learning_curve(
    curve: pd.DataFrame,
    path: Path,
    *,
    baselines: Mapping[str, float | Mapping[str, float]] | None = None,
    reference: str = "DP optimum",
):
    """% of the reference (mean and worst over the profile's scenarios) against training steps.

    Parameters
    ----------
    curve : DataFrame
        Columns ``profile, timesteps, pct_mean, pct_min`` (and optionally ``seed``).
    path : path
        Output PNG.
    baselines : mapping of label -> % of the reference, optional
        Horizontal lines (e.g. the fluid re-solve heuristic's mean): one value for every
        panel, or a mapping of profile (the curve's ``profile`` column) -> value.
    reference : str
        What 100 % is (the label of the black line and of the y axis).
    """
    profiles = list(dict.fromkeys(curve["profile"]))
    fig = Figure(figsize=(4 * len(profiles), 3.4))
    axes = fig.subplots(1, len(profiles), squeeze=False)
    for ax, profile in zip(axes[0], profiles, strict=True):
        sub = curve[curve["profile"] == profile]
        groups = sub.groupby("seed") if "seed" in sub.columns else [(None, sub)]
        for i, (_seed, g) in enumerate(groups):
            label = "mean" if i == 0 else None
            ax.plot(g["timesteps"] / 1e6, g["pct_mean"], color="C0", alpha=0.8, label=label)
            ax.plot(
                g["timesteps"] / 1e6,
                g["pct_min"],
                color="C0",
                ls=":",
                alpha=0.8,
                label="worst" if i == 0 else None,
            )
        ax.axhline(100.0, color="k", lw=1.2, label=reference)
        for j, (name, value) in enumerate((baselines or {}).items()):
            level = value.get(profile) if isinstance(value, Mapping) else value
            if level is not None:
                ax.axhline(level, color=f"C{j + 1}", ls="--", lw=1, label=name)
        ax.set_title(f"profile: {profile}")
        ax.set_xlabel("training steps (millions of SKU-weeks)")
        ax.set_ylim(max(80.0, float(sub["pct_min"].min()) - 2), 101)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"% of {reference}")
    axes[0][-1].legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def _grid_states(
    scenario: Scenario, n_stock: int = 24
) -> tuple[np.ndarray, np.ndarray, DecisionState, MarketState]:
    """Decision states on a (weeks left x stock ratio) grid, depth 0, nothing changed yet."""
    H = scenario.horizon_weeks
    weeks = np.arange(1, H + 1)
    ratios = np.linspace(1.0 / n_stock, 1.0, n_stock)
    wl, rr = np.meshgrid(weeks, ratios, indexing="xy")
    n = wl.size
    cat = scenario.catalog().take(np.zeros(n, dtype=np.int64))
    s0 = initial_decision_state(cat, H, scenario.rules)
    stock = np.round(rr.ravel() * scenario.initial_stock)
    state = DecisionState(
        weeks_left=wl.ravel().astype(np.int64),
        stock=stock,
        initial_stock=s0.initial_stock,
        depth_index=np.zeros(n, dtype=np.int64),
        weeks_since_change=np.full(n, LONG_AGO, dtype=np.int64),
        coupon_weeks_left=s0.coupon_weeks_left,
        age_weeks=s0.age_weeks,
    )
    market = MarketState(
        stock=stock.copy(),
        week=(cat.start_week + (H - state.weeks_left)).astype(np.int64),
        ref_price=np.ones(n),
        fatigue=np.zeros(n),
    )
    return weeks, ratios, state, market


def policy_map(
    policy: Policy, scenario: Scenario, solution: DPSolution, path: Path, *, n_stock: int = 24
) -> Path:
    """Discount depth chosen by ``policy`` and by the DP over weeks left x stock ratio.

    States have no discount in force yet (depth 0), so with markdown-only rules this is the
    first markdown's depth.
    """
    weeks, ratios, state, market = _grid_states(scenario, n_stock)
    rules = scenario.rules
    cat = scenario.catalog().take(np.zeros(state.weeks_left.size, dtype=np.int64))
    obs = build_observation(
        cat, state, market, rules, horizon_weeks=scenario.horizon_weeks, last_units_sold=0.0
    )
    masks = action_mask(rules, state, cat)
    ctx = PolicyContext(cat, state, market, rules, scenario.horizon_weeks)
    depth_pol = rules.depths(policy.act(obs, masks, ctx))[0].reshape(len(ratios), len(weeks))
    depth_dp = rules.depths(solution.policy(state))[0].reshape(len(ratios), len(weeks))
    fig = Figure(figsize=(9, 3.6))
    axes = fig.subplots(1, 2, sharey=True)
    vmax = max(rules.discount_levels)
    for ax, depth, title in zip(
        axes, (depth_pol, depth_dp), (policy.name, "DP optimum"), strict=True
    ):
        im = ax.imshow(
            depth,
            origin="lower",
            aspect="auto",
            extent=(0.5, len(weeks) + 0.5, 0, 1),
            vmin=0,
            vmax=vmax,
            cmap="viridis",
        )
        ax.set_title(f"{title}: {scenario.name}")
        ax.set_xlabel("weeks left")
    axes[0].set_ylabel("stock / initial stock")
    fig.colorbar(im, ax=axes, label="discount depth")
    return _save(fig, path)


def schedules(
    policies: dict[str, Policy], scenario: Scenario, path: Path, *, seed: int = 7
) -> Path:
    """One demand path per policy (same seed): discount depth and stock left by week."""
    fig = Figure(figsize=(9, 3.4))
    ax1, ax2 = fig.subplots(1, 2)
    for i, (label, policy) in enumerate(policies.items()):
        res = rollout(
            policy,
            scenario.catalog(),
            scenario.rules,
            scenario.horizon_weeks,
            n_episodes=1,
            seed=seed,
        )
        sched = res.schedule
        weeks = np.arange(1, scenario.horizon_weeks + 1)
        depth = sched["discount"][0, 0] + sched["coupon"][0, 0]
        ax1.step(weeks, depth, where="mid", color=f"C{i}", label=label)
        ax2.plot(weeks, sched["stock_left"][0, 0], color=f"C{i}", label=label)
    ax1.set_title(f"{scenario.name}: discount + coupon")
    ax1.set_xlabel("plan week")
    ax1.set_ylabel("share of list price")
    ax2.set_title("stock left")
    ax2.set_xlabel("plan week")
    ax1.legend(fontsize=8)
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    return _save(fig, path)


def leaderboard_bars(board: pd.DataFrame, path: Path, *, reference: str = "DP optimum") -> Path:
    """Median and worst % of the reference per agent (from
    :func:`experiments.evaluate.leaderboard`)."""
    fig = Figure(figsize=(7, 3.4))
    ax = fig.subplots()
    x = np.arange(len(board))
    ax.bar(x - 0.2, board["median_pct"], width=0.4, label="median scenario")
    ax.bar(x + 0.2, board["worst_pct"], width=0.4, label="worst scenario")
    ax.set_xticks(x, board["agent"], rotation=30, ha="right")
    ax.axhline(100, color="k", lw=1)
    ax.set_ylim(max(0.0, float(board["worst_pct"].min()) - 5), 101)
    ax.set_ylabel(f"% of {reference}")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)
