"""``deadstock simulate --sku ...``: a what-if for one SKU from files, with a plot.

The what-if itself is :func:`planning.whatif.what_if`; this module reads the catalog, the
schedule and the rules, draws the SKU's stock, price and sales over the weeks and formats the
report the command prints.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from envs.config import RulesConfig
from ingest.errors import ConfigError, DataError
from ingest.io import write_figure_atomic, write_text_atomic
from planning.outcomes import Outcome, SimulationSettings
from planning.schedule import Schedule, parse_policy, read_schedule
from planning.whatif import WhatIfConfig, what_if
from simulator.demand import Catalog, read_catalog


def plot_what_if(
    catalog: Catalog, outcome: Outcome, target: str | Path, *, title: str = ""
) -> Path:
    """Save a PNG of one SKU's stock, price and sales over the weeks (mean and 90 % band)."""
    from matplotlib.figure import Figure

    if outcome.paths is None:
        raise ConfigError("plot_what_if needs an outcome simulated with keep_paths=True")
    sku = str(outcome.schedule.sku[0])
    i = int(np.flatnonzero(np.asarray(catalog.sku, dtype=str) == sku)[0])
    h = outcome.schedule.horizon
    weeks = np.arange(1, h + 1)
    price = catalog.list_price[i] * (1 - np.asarray(outcome.schedule.discount)[0])
    net = price - catalog.list_price[i] * np.asarray(outcome.schedule.coupon)[0]
    fig = Figure(figsize=(7, 7))
    axes = fig.subplots(3, 1, sharex=True)
    stock = outcome.paths["stock_left"]
    units = outcome.paths["units"]
    for ax, data, label in ((axes[0], stock, "stock left (units)"), (axes[2], units, "units sold")):
        ax.plot(weeks, data.mean(axis=0), marker="o", label="mean")
        lo, hi = np.percentile(data, [5, 95], axis=0)
        ax.fill_between(weeks, lo, hi, alpha=0.25, label="5-95 % of episodes")
        ax.set_ylabel(label)
        ax.legend(loc="best", fontsize=8)
    axes[1].step(weeks, price, where="mid", label="shelf price after discount")
    axes[1].step(weeks, net, where="mid", linestyle="--", label="net of coupon")
    axes[1].axhline(catalog.unit_cost[i], color="grey", linewidth=0.8, label="unit cost")
    axes[1].set_ylabel("price")
    axes[1].legend(loc="best", fontsize=8)
    axes[2].set_xlabel("plan week (exit at the last week)")
    p_lo, p_hi = outcome.sku_ci("profit")
    fig.suptitle(
        title
        or f"SKU {sku}: {outcome.schedule.name}, expected profit {outcome.sku_mean('profit')[0]:.2f} "
        f"[{p_lo[0]:.2f}, {p_hi[0]:.2f}] ({outcome.n_episodes} episodes)",
        fontsize=10,
    )
    fig.tight_layout()
    return write_figure_atomic(fig, target)


def read_rules(path: str | Path) -> RulesConfig:
    """Read business rules from a TOML file: :class:`~envs.config.RulesConfig` fields at the
    top level or under ``[rules]`` (so a pipeline config file works too), through the one
    loader (:func:`app.config.load_config`)."""
    from app.config import load_config

    return load_config(RulesConfig, path, section="rules")


SETTINGS_FILE = "simulation.json"
"""The run's simulation settings, written beside its catalog and schedules so a what-if
replays a plan with the same episodes, seed and parameter draws."""

DEFAULT_WHAT_IF_POLICY = "fixed:0.3"
"""The plan of a what-if given neither ``--policy`` nor a schedule, with no run's schedule
beside the catalog."""


def write_simulation_settings(settings: SimulationSettings, out_dir: str | Path) -> Path:
    """Write ``settings`` to ``out_dir/simulation.json`` (atomically)."""
    text = json.dumps(settings.to_dict(), indent=1) + "\n"
    return write_text_atomic(Path(out_dir) / SETTINGS_FILE, text)


def read_simulation_settings(folder: str | Path) -> SimulationSettings | None:
    """The settings a run wrote into ``folder`` (``None`` when it wrote none)."""
    path = Path(folder) / SETTINGS_FILE
    if not path.is_file():
        return None
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
        return SimulationSettings(
            seed=int(values["seed"]),
            n_episodes=int(values["n_episodes"]),
            draw_parameters=bool(values["draw_parameters"]),
            ci_level=float(values["ci_level"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DataError(
            f"{str(path)!r} is not a run's simulation settings (expected JSON with seed, "
            f"n_episodes, draw_parameters, ci_level): {err}"
        ) from None


def what_if_from_files(
    catalog: Catalog,
    cfg: WhatIfConfig,
    *,
    schedule_path: str | Path | None,
    rules_path: str | Path | None,
    fallback: Schedule,
    plot_path: str | Path | None,
    run: SimulationSettings | None = None,
) -> tuple[pd.DataFrame, Path | None, str]:
    """The what-if behind ``deadstock simulate --sku ...``: the given schedule file (or
    ``fallback``), capped by the options and rules, simulated against doing nothing with
    ``cfg.settings(run)``.

    Returns the summary table, the plot's path (when asked) and a printable report.
    """
    schedule = read_schedule(schedule_path) if schedule_path else fallback
    rules = read_rules(rules_path) if rules_path else None
    settings = cfg.settings(run)
    out, _, table = what_if(catalog, schedule, cfg, rules=rules, run=run)
    plot = plot_what_if(catalog, out, plot_path) if plot_path else None
    d = np.asarray(out.schedule.discount)[0]
    c = np.asarray(out.schedule.coupon)[0]
    plan = ", ".join(
        f"{dd:.0%}" + (f"+{cc:.0%}c" if cc > 0 else "") for dd, cc in zip(d, c, strict=True)
    )
    lines = [
        f"what-if for SKU {cfg.sku}: {out.schedule.name} over {out.schedule.horizon} weeks "
        f"(exit at week {out.schedule.horizon})"
        + (f", max discount {cfg.max_discount:.0%}" if cfg.max_discount is not None else "")
        + (f", rules from {rules_path}" if rules_path else ""),
        f"weekly discount: {plan}",
        f"simulation: {settings.describe()}"
        + (" (the run's settings)" if run is not None and settings == run else ""),
        "differences are paired against doing nothing (no discount, no coupon) on the same "
        "random numbers",
        "",
        f"{'metric':<20}{'expected':>12}  {'CI':<24}{'vs doing nothing':>18}  CI",
    ]
    for r in table.to_dict("records"):
        lines.append(
            f"{r['metric']:<20}{r['mean']:>12,.2f}  [{r['ci_low']:,.2f}, {r['ci_high']:,.2f}]".ljust(
                58
            )
            + f"{r['vs_no_markdown']:>+14,.2f}  [{r['vs_ci_low']:+,.2f}, {r['vs_ci_high']:+,.2f}]"
        )
    if plot is not None:
        lines += ["", f"plot of stock, price and sales: {plot}"]
    return table, plot, "\n".join(lines)


def what_if_command(
    catalog_path: str | Path,
    cfg: WhatIfConfig,
    *,
    schedule_path: str | Path | None = None,
    rules_path: str | Path | None = None,
    plot_path: str | Path | None = None,
    policy: str | None = None,
    weeks: int = 12,
) -> str:
    """``deadstock simulate --sku SKU [--policy P | --schedule FILE] [--max-discount D]
    [--exit-week W] [--rules FILE]``: returns the printable report and saves the plot.

    The plan is, in order: ``policy`` (``fixed:D[:C]`` over ``weeks`` weeks) when given;
    else ``schedule_path``; else the recommended schedule exported by ``deadstock run``
    beside the catalog (``schedules.csv`` or ``.parquet`` next to ``catalog.parquet``); else
    :data:`DEFAULT_WHAT_IF_POLICY`. Giving both ``policy`` and ``schedule_path`` is an
    error. The simulation settings are the options of ``cfg`` where given, else those of the
    run beside the catalog (``simulation.json``), else the defaults. The report has the same
    form whichever plan is simulated. The plot goes to ``plot_path`` (default
    ``whatif_<sku>.png``).
    """
    if policy is not None and schedule_path is not None:
        raise ConfigError("give either --policy or --schedule, not both")
    catalog = read_catalog(catalog_path)
    folder = Path(catalog_path).parent
    run = read_simulation_settings(folder)
    if policy is None and schedule_path is None:
        found = [folder / f"schedules.{ext}" for ext in ("csv", "parquet")]
        schedule_path = next((p for p in found if p.is_file()), None)
    fixed = policy if policy is not None else DEFAULT_WHAT_IF_POLICY
    d, c = parse_policy(fixed)
    fallback = Schedule(
        sku=np.asarray(catalog.sku, dtype=object),
        discount=np.full((catalog.n_skus, weeks), d),
        coupon=np.full((catalog.n_skus, weeks), c),
        name=fixed,
    )
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in cfg.sku)
    _, _, text = what_if_from_files(
        catalog,
        cfg,
        schedule_path=schedule_path,
        rules_path=rules_path,
        fallback=fallback,
        plot_path=plot_path or f"whatif_{safe}.png",
        run=run,
    )
    if schedule_path is not None:
        source = f"schedule: {schedule_path}"
    elif policy is not None:
        source = f"schedule: {fixed} (fixed policy over {weeks} weeks)"
    else:
        source = f"schedule: {fixed} (fixed policy over {weeks} weeks; no run's schedule found)"
    return f"{source}\n{text}"
