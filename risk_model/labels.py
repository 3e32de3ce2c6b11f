"""Dead-stock labels at a cutoff week: documented, configurable definitions.

A label is computed for the SKUs *eligible* at the cutoff (those the definition speaks
about) from what they sell in the ``horizon_weeks`` after it. Every definition also gives a
per-SKU *noise-floor* probability: the chance that the SKU shows the label by luck if it kept
selling at its recent rate (Poisson). Its mean over the eligible SKUs is the noise floor: the
share of "dead" SKUs one would see even if nothing changed.

Definitions (``LabelConfig.kind``)
----------------------------------
``"default"``
    Established SKU (at least ``min_units`` units and ``min_active_weeks`` active weeks in
    the ``lookback_weeks`` up to and including the cutoff) that sells nothing in the next
    ``horizon_weeks``. Noise floor: ``exp(-horizon * rate)``.
``"any_sale"``
    Any SKU with a sale in the lookback window that sells nothing in the next
    ``horizon_weeks``. Noise floor as above.
``"sales_drop"``
    Established SKU whose units in the next ``horizon_weeks`` fall by more than
    ``drop_share`` against the lookback window (per week). Noise floor:
    ``P(Poisson(horizon * rate) < (1 - drop_share) * horizon * rate)``.
``"sell_through"``
    For data with stock: established SKU with stock on hand at the cutoff whose sell-through
    over the next ``horizon_weeks`` (units sold / on-hand at the cutoff) is below
    ``sell_through_threshold``. Noise floor:
    ``P(Poisson(horizon * rate) < threshold * on_hand)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from ingest.errors import ConfigError, DataError

LabelKind = Literal["default", "any_sale", "sales_drop", "sell_through"]
LABEL_KINDS: tuple[str, ...] = ("default", "any_sale", "sales_drop", "sell_through")


@dataclass(frozen=True)
class LabelConfig:
    """A dead-stock label definition.

    Parameters
    ----------
    kind : {"default", "any_sale", "sales_drop", "sell_through"}
        Which definition (see the module docstring).
    lookback_weeks : int
        Weeks up to and including the cutoff that decide eligibility and the recent rate.
    horizon_weeks : int
        Weeks after the cutoff the outcome is read from.
    min_units : float
        Units in the lookback window an established SKU needs.
    min_active_weeks : int
        Weeks with a sale in the lookback window an established SKU needs.
    drop_share : float
        ``"sales_drop"``: the fall in weekly units that counts as dead (0.75 = more than 75 %).
    sell_through_threshold : float
        ``"sell_through"``: sell-through below this share of on-hand stock counts as dead.
    """

    kind: LabelKind = "default"
    lookback_weeks: int = 13
    horizon_weeks: int = 13
    min_units: float = 5.0
    min_active_weeks: int = 3
    drop_share: float = 0.75
    sell_through_threshold: float = 0.2

    def __post_init__(self) -> None:
        if self.kind not in LABEL_KINDS:
            raise ConfigError(f"LabelConfig.kind = {self.kind!r}; expected one of {LABEL_KINDS}")
        for name in ("lookback_weeks", "horizon_weeks"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"LabelConfig.{name} = {getattr(self, name)!r}; expected >= 1")
        if self.min_units < 0 or self.min_active_weeks < 0:
            raise ConfigError(
                f"LabelConfig.min_units = {self.min_units!r} and min_active_weeks = "
                f"{self.min_active_weeks!r}; expected both >= 0"
            )
        if self.min_active_weeks > self.lookback_weeks:
            raise ConfigError(
                f"LabelConfig.min_active_weeks = {self.min_active_weeks} exceeds "
                f"lookback_weeks = {self.lookback_weeks}"
            )
        if not 0 < self.drop_share < 1:
            raise ConfigError(f"LabelConfig.drop_share = {self.drop_share!r}; expected in (0, 1)")
        if not 0 < self.sell_through_threshold <= 1:
            raise ConfigError(
                f"LabelConfig.sell_through_threshold = {self.sell_through_threshold!r}; "
                "expected in (0, 1]"
            )

    @property
    def name(self) -> str:
        """Short name used in run names and JSON rows."""
        return self.kind


def _window_sum(panel: pd.DataFrame, col: str, lo: int, hi: int) -> pd.Series:
    """Sum of ``col`` per SKU over weeks ``lo..hi`` inclusive (SKUs without rows: absent)."""
    rows = panel[(panel["week"] >= lo) & (panel["week"] <= hi)]
    return rows.groupby("sku", sort=True)[col].sum()


def make_labels(
    panel: pd.DataFrame, cutoff: int, config: LabelConfig | None = None
) -> pd.DataFrame:
    """Label every eligible SKU at ``cutoff``.

    Parameters
    ----------
    panel : DataFrame
        The weekly panel (see ``ingest.panel.build_panel``): ``sku``, ``week``, ``units`` and,
        for ``"sell_through"``, ``on_hand``.
    cutoff : int
        Last week whose data is "known"; the outcome is read from weeks
        ``cutoff + 1 .. cutoff + horizon_weeks``.
    config : LabelConfig, optional

    Returns
    -------
    DataFrame indexed by ``sku`` (eligible SKUs only), sorted, with columns ``label`` (int 0/1),
    ``recent_rate`` (units/week in the lookback window), ``future_units`` and ``p_chance``
    (the noise-floor probability of the label at the recent rate).
    """
    cfg = config or LabelConfig()
    last_week = int(panel["week"].max())
    if cutoff + cfg.horizon_weeks > last_week:
        raise DataError(
            f"label {cfg.kind!r} at cutoff week {cutoff} needs data up to week "
            f"{cutoff + cfg.horizon_weeks}; the panel ends at week {last_week}. "
            f"Use a cutoff <= {last_week - cfg.horizon_weeks}."
        )
    lo = cutoff - cfg.lookback_weeks + 1
    past = panel[(panel["week"] >= lo) & (panel["week"] <= cutoff)]
    grouped = past.groupby("sku", sort=True)["units"]
    units_past = grouped.sum()
    active = (past["units"] > 0).groupby(past["sku"], sort=True).sum()
    future = _window_sum(panel, "units", cutoff + 1, cutoff + cfg.horizon_weeks)
    future = future.reindex(units_past.index).fillna(0.0)
    rate = units_past / cfg.lookback_weeks
    mu = rate * cfg.horizon_weeks
    established = (units_past >= cfg.min_units) & (active >= cfg.min_active_weeks)

    if cfg.kind == "default":
        eligible = established
        label = future <= 0
        p_chance = np.exp(-mu)
    elif cfg.kind == "any_sale":
        eligible = units_past > 0
        label = future <= 0
        p_chance = np.exp(-mu)
    elif cfg.kind == "sales_drop":
        eligible = established
        limit = (1 - cfg.drop_share) * mu
        label = future < limit
        # P(X < limit) = P(X <= ceil(limit) - 1)
        p_chance = pd.Series(stats.poisson.cdf(np.ceil(limit) - 1, mu), index=mu.index)
    else:
        if "on_hand" not in panel.columns or panel["on_hand"].isna().all():
            raise DataError(
                "label 'sell_through' needs stock: the panel's 'on_hand' column is missing or "
                "empty (the source has no stock table); use --label default instead"
            )
        at_cut = panel[panel["week"] == cutoff].set_index("sku")["on_hand"]
        on_hand = at_cut.reindex(units_past.index)
        eligible = established & (on_hand > 0)
        limit = cfg.sell_through_threshold * on_hand
        label = future < limit
        p_chance = pd.Series(stats.poisson.cdf(np.ceil(limit) - 1, mu), index=mu.index)

    out = pd.DataFrame(
        {
            "label": label.astype(int),
            "recent_rate": rate,
            "future_units": future,
            "p_chance": p_chance,
        }
    )[eligible.to_numpy()]
    out.index.name = "sku"
    return out


def established(panel: pd.DataFrame, cutoff: int, config: LabelConfig | None = None) -> pd.Series:
    """Whether each SKU is *established* at ``cutoff`` (at least ``min_units`` units and
    ``min_active_weeks`` active weeks in the lookback window), from data up to the cutoff.

    Scores are most meaningful for these SKUs: the default label was learned on them.
    Returns a boolean Series indexed by sku (every SKU in the panel up to the cutoff).
    """
    cfg = config or LabelConfig()
    upto = panel[panel["week"] <= cutoff]
    past = upto[upto["week"] > cutoff - cfg.lookback_weeks]
    units = past.groupby("sku", sort=True)["units"].sum()
    active = (past["units"] > 0).groupby(past["sku"], sort=True).sum()
    ok = (units >= cfg.min_units) & (active >= cfg.min_active_weeks)
    skus = pd.Index(upto["sku"].unique(), name="sku").sort_values()
    return ok.reindex(skus, fill_value=False).astype(bool)


def noise_floor(labels: pd.DataFrame) -> float:
    """Share of eligible SKUs that would show the label by chance at their recent rate."""
    if len(labels) == 0:
        return float("nan")
    return float(labels["p_chance"].mean())
