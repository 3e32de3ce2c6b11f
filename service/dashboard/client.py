"""The dashboard's one door to the workbench: a small HTTP client of the REST API
(``/api/v1``, ``Authorization: Bearer <token>``).

The dashboard is a client of the API only: it never opens the database and never imports
the domain packages (the import contract in ``pyproject.toml`` forbids it). Every answer is
the API's JSON; an error answer becomes an :class:`ApiError` carrying the status and the
API's ``detail`` (for a refused override, the rule, the week and the message).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

API_PREFIX = "/api/v1"
DEFAULT_API_URL = "http://127.0.0.1:8000"
TIMEOUT_S = 60.0
"""Seconds to wait for an answer: a what-if or the alternatives of one SKU take about a
second; the server bounds the work of every request."""

FINISHED = ("succeeded", "failed", "cancelled", "interrupted")
"""States of a what-if task that will not change again."""


@dataclass(frozen=True)
class Violation:
    """One problem with a request field, as the API's 422 states it."""

    msg: str
    loc: tuple[Any, ...] = ()
    rule: str | None = None
    week: int | None = None
    sku: str | None = None


class ApiError(Exception):
    """An answer other than 2xx, or no answer at all (``status`` 0).

    Parameters
    ----------
    status : int
        The HTTP status (0 when the API could not be reached).
    detail : Any
        The API's ``detail``: a sentence, or for a 422 a list of ``{loc, msg, type, ...}``.
    """

    def __init__(self, status: int, detail: Any) -> None:
        self.status = status
        self.detail = detail
        super().__init__(self.message)

    @property
    def violations(self) -> list[Violation]:
        """The invalid fields of a 422 (empty for other errors)."""
        if not isinstance(self.detail, list):
            return []
        out = []
        for item in self.detail:
            if isinstance(item, Mapping):
                week = item.get("week")
                out.append(
                    Violation(
                        msg=str(item.get("msg", "")),
                        loc=tuple(item.get("loc") or ()),
                        rule=item.get("rule"),
                        week=int(week) if isinstance(week, int | float) else None,
                        sku=item.get("sku"),
                    )
                )
        return out

    @property
    def message(self) -> str:
        """One readable sentence (field, what is expected) for the page."""
        if self.status == 0:
            return f"the API could not be reached: {self.detail}"
        found = self.violations
        if found:
            parts = []
            for v in found:
                where = ".".join(str(p) for p in v.loc if p != "body")
                parts.append(f"{where}: {v.msg}" if where else v.msg)
            return "; ".join(parts)
        return f"{self.detail} (HTTP {self.status})"


def _quoted(sku: str) -> str:
    """A SKU as one path segment (a SKU may hold ``/``, spaces or ``%``)."""
    return quote(sku, safe="")


def _params(values: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Query parameters without the unset ones; a list repeats its key."""
    out: list[tuple[str, Any]] = []
    for key, value in values.items():
        if value is None or value == "" or (isinstance(value, list | tuple) and not value):
            continue
        if isinstance(value, list | tuple):
            out.extend((key, v) for v in value)
        else:
            out.append((key, value))
    return out


class ApiClient:
    """The workbench API, one method per call the dashboard makes.

    Parameters
    ----------
    base_url : str
        Where ``deadstock serve`` listens (``http://127.0.0.1:8000``).
    token : str
        The user's API token (from ``deadstock users add``).
    timeout_s : float
        Seconds to wait for one answer.
    transport : httpx.BaseTransport, optional
        For tests that answer without a server.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout_s: float = TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url + API_PREFIX,
            headers={"Authorization": f"Bearer {token.strip()}"},
            timeout=timeout_s,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            r = self._http.request(method, path, **kw)
        except httpx.HTTPError as err:
            raise ApiError(0, f"{self.base_url}: {err}") from None
        if r.status_code >= 400:
            try:
                detail = r.json().get("detail", r.text)
            except ValueError:
                detail = r.text or r.reason_phrase
            raise ApiError(r.status_code, detail)
        return r.json() if r.content else None

    # ------------------------------------------------------------------ who and what
    def me(self) -> dict[str, Any]:
        """The caller's name, role and categories (a bad token is a 401)."""
        return self._call("GET", "/me")

    def plans(self, limit: int = 20) -> list[dict[str, Any]]:
        """Plan versions, newest first."""
        return self._call("GET", "/plans", params={"limit": limit})["items"]

    def overview(self, plan_id: int) -> dict[str, Any]:
        """Aggregates by category, the risk histogram and the plan's ROI."""
        return self._call("GET", f"/plans/{plan_id}/overview")

    def skus(self, plan_id: int, **filters: Any) -> dict[str, Any]:
        """One page of SKUs (``category``, ``tier``, ``status``, ``planner``, ``min_risk``,
        ``min_gain``, ``q``, ``sort``, ``offset``, ``limit``); unset filters are left out."""
        return self._call("GET", f"/plans/{plan_id}/skus", params=_params(filters))

    def sku(self, plan_id: int, sku: str) -> dict[str, Any]:
        """One SKU: summary, drivers, schedules, expected weekly outcomes, reviews."""
        return self._call("GET", f"/plans/{plan_id}/skus/{_quoted(sku)}")

    def alternatives(
        self, plan_id: int, sku: str, n_episodes: int = 200, seed: int = 0
    ) -> dict[str, Any]:
        """The recommended schedule beside doing nothing, the heuristics and the DP."""
        return self._call(
            "GET",
            f"/plans/{plan_id}/skus/{_quoted(sku)}/alternatives",
            params={"n_episodes": n_episodes, "seed": seed},
        )

    # ------------------------------------------------------------------ what-if
    def whatif(self, plan_id: int, body: Mapping[str, Any]) -> dict[str, Any]:
        """A what-if for a few SKUs, answered at once."""
        return self._call("POST", f"/plans/{plan_id}/whatif", json=dict(body))

    def submit_whatif(self, plan_id: int, body: Mapping[str, Any]) -> dict[str, Any]:
        """A what-if for a category as a background task (``done``/``total``)."""
        return self._call("POST", f"/plans/{plan_id}/whatif/tasks", json=dict(body))

    def whatif_task(self, task_id: str) -> dict[str, Any]:
        """A what-if task's progress and, once it succeeded, its result."""
        return self._call("GET", f"/whatif/tasks/{task_id}")

    def cancel_whatif(self, task_id: str) -> dict[str, Any]:
        return self._call("DELETE", f"/whatif/tasks/{task_id}")

    # ------------------------------------------------------------------ reviews
    def review(
        self,
        plan_id: int,
        *,
        action: str,
        reason: str,
        sku: str | None = None,
        category: str | None = None,
        discount: Sequence[float] | None = None,
        coupon: Sequence[float] | None = None,
    ) -> dict[str, Any]:
        """Approve, reject or override one SKU or a category (a refused override is an
        :class:`ApiError` whose :attr:`~ApiError.violations` name the rule and week)."""
        body: dict[str, Any] = {"action": action, "reason": reason}
        for key, value in (("sku", sku), ("category", category)):
            if value is not None:
                body[key] = value
        for key, weekly in (("discount", discount), ("coupon", coupon)):
            if weekly is not None:
                body[key] = [float(x) for x in weekly]
        return self._call("POST", f"/plans/{plan_id}/reviews", json=body)

    def reviews(self, plan_id: int, limit: int = 100) -> dict[str, Any]:
        return self._call("GET", f"/plans/{plan_id}/reviews", params={"limit": limit})

    # ------------------------------------------------------------------ lead's tools
    def leaderboard(self) -> dict[str, Any]:
        """The agents' leaderboard across MLflow runs and the MLflow UI's address."""
        return self._call("GET", "/experiments/leaderboard")

    def export(
        self, plan_id: int, fmt: str = "csv", categories: Sequence[str] | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"format": fmt}
        if categories:
            body["categories"] = list(categories)
        return self._call("POST", f"/plans/{plan_id}/exports", json=body)

    def exports(self, plan_id: int, limit: int = 20) -> dict[str, Any]:
        return self._call("GET", f"/plans/{plan_id}/exports", params={"limit": limit})

    def export_file(self, export_id: int) -> bytes:
        """The bytes of an export's file (CSV or Parquet)."""
        try:
            r = self._http.get(f"/exports/{export_id}/file")
        except httpx.HTTPError as err:
            raise ApiError(0, f"{self.base_url}: {err}") from None
        if r.status_code >= 400:
            raise ApiError(r.status_code, r.json().get("detail", r.text))
        return r.content

    def runs(self, limit: int = 10) -> dict[str, Any]:
        return self._call("GET", "/runs", params={"limit": limit})

    def start_run(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/runs", json=dict(body))

    def cancel_run(self, job_id: int) -> dict[str, Any]:
        return self._call("POST", f"/runs/{job_id}/cancel")

    def audit(self, limit: int = 50, **filters: Any) -> dict[str, Any]:
        return self._call("GET", "/audit", params=_params({"limit": limit, **filters}))
