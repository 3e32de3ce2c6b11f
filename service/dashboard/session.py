"""What every page shares: the signed-in user and their API client, the chosen plan, and a
per-session memo of slow answers (a SKU's alternatives take about a second).

Kept in Streamlit's session state, so each browser tab has its own token and nothing is
shared between users.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import streamlit as st

from service.dashboard import fmt
from service.dashboard.client import ApiClient, ApiError

T = TypeVar("T")

LEADS = ("pricing_lead", "admin")
"""Roles that may export, start runs and read the audit log."""

REVIEWERS = ("category_manager", "pricing_lead", "admin")
"""Roles that may approve, reject and override."""

MEMO_KEPT = 32
"""Slow answers remembered per session (oldest dropped first)."""


@dataclass(frozen=True)
class Plan:
    """The plan version on screen, with what the pages need to write it for people."""

    id: int
    horizon_weeks: int
    n_skus: int
    currency: str | None
    week_starts: list[str] | None
    rules: dict[str, Any]
    raw: dict[str, Any]

    @classmethod
    def from_api(cls, item: dict[str, Any]) -> Plan:
        return cls(
            id=int(item["id"]),
            horizon_weeks=int(item["horizon_weeks"]),
            n_skus=int(item["n_skus"]),
            currency=item.get("currency"),
            week_starts=item.get("week_starts"),
            rules=dict(item.get("rules") or {}),
            raw=item,
        )

    def week_labels(self, n_weeks: int | None = None) -> list[str]:
        """``"week 1 (2026-01-05)"`` for each plan week (dates where the data have them)."""
        n = self.horizon_weeks if n_weeks is None else n_weeks
        return [fmt.week_label(w, self.week_starts) for w in range(1, n + 1)]

    def week_axis(self, n_weeks: int) -> list[str]:
        """Short labels of plan weeks 1..n for chart axes: the start date where the data
        have one, else ``"week N"``."""
        dates = fmt.week_dates(self.week_starts, n_weeks)
        return [d or f"week {w}" for w, d in enumerate(dates, start=1)]

    def money(self, x: Any, decimals: int | None = None) -> str:
        return fmt.money(x, self.currency, decimals=decimals)

    def money_ci(self, mean: Any, lo: Any, hi: Any) -> str:
        return fmt.money_ci(mean, lo, hi, self.currency)

    @property
    def currency_label(self) -> str:
        """`` (USD)`` for column headings (empty without a currency)."""
        return f" ({self.currency})" if self.currency else ""


@dataclass(frozen=True)
class Ctx:
    """The signed-in user, their client and the plan on screen."""

    client: ApiClient
    user: dict[str, Any]
    plan: Plan

    @property
    def is_lead(self) -> bool:
        return self.user.get("role") in LEADS

    @property
    def can_review(self) -> bool:
        return self.user.get("role") in REVIEWERS


def memo(key: tuple[Any, ...], compute: Callable[[], T]) -> T:
    """``compute()`` once per ``key`` in this session."""
    store: dict[tuple[Any, ...], Any] = st.session_state.setdefault("_memo", {})
    if key not in store:
        if len(store) >= MEMO_KEPT:
            store.pop(next(iter(store)))
        store[key] = compute()
    return store[key]


def forget() -> None:
    """Drop the memo (after a change on the server, e.g. a review)."""
    st.session_state["_memo"] = {}


def show_error(err: ApiError, what: str, plan: Plan | None = None) -> None:
    """An API error as one readable line; a refused override names the rule and the week
    (with its date where the plan has one)."""
    rules = [v for v in err.violations if v.rule]
    if rules:
        for v in rules:
            week = ""
            if v.week is not None:
                week = " in " + (
                    fmt.week_label(v.week, plan.week_starts) if plan else f"week {v.week}"
                )
            sku = f" (SKU {v.sku})" if v.sku else ""
            st.error(f"{what} refused: it breaks the rule **{v.rule}**{week}{sku}. {v.msg}")
        return
    st.error(f"{what} failed: {err.message}")
