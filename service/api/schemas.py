"""Request and response bodies of the REST API (pydantic).

Requests refuse unknown fields and bound every size (weeks, SKUs, episodes, text), so bad
input is a 422 naming the field and what is expected, and no request can ask for unbounded
work. Floats in responses may be null where the pipeline had no value (a SKU the risk model
did not score).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from service.db.models import ROLES

MAX_WEEKS = 52
MAX_REQUEST_SKUS = 2000
MAX_EPISODES = 2000

# Printable text without NUL (PostgreSQL cannot store it) or control characters.
Text = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f]*$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200,
                                        pattern=r"^[^\x00-\x1f]+$")]  # fmt: skip
SkuId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]+$")]
Depth = Annotated[float, Field(ge=0.0, lt=0.95)]
Role = Literal["viewer", "category_manager", "pricing_lead", "admin"]
assert set(Role.__args__) == set(ROLES)  # type: ignore[attr-defined]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Message(BaseModel):
    """An error: what went wrong, in one sentence."""

    detail: str


class ErrorItem(BaseModel):
    """One invalid field: where (``loc``), what is expected (``msg``) and the kind."""

    model_config = ConfigDict(extra="allow")
    loc: list[str | int]
    msg: str
    type: str


class ValidationMessage(BaseModel):
    detail: list[ErrorItem]


class Health(BaseModel):
    status: Literal["ok"]
    database: str
    revision: str | None


class Version(BaseModel):
    version: str
    api: str
    database_revision: str | None
    head_revision: str | None


class UserOut(BaseModel):
    id: int
    name: str
    role: Role
    categories: list[str]
    active: bool
    created_at: datetime
    n_tokens: int | None = None


class UserCreate(Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100,
                                           pattern=r"^\S(.*\S)?$")]  # fmt: skip
    role: Role
    categories: list[Name] = Field(default_factory=list, max_length=1000)


class TokenOut(BaseModel):
    """A new token: shown once, stored only as a hash."""

    user: UserOut
    token: str


class Page(BaseModel):
    total: int
    offset: int
    limit: int


# ------------------------------------------------------------------------------ plans
class PlanOut(BaseModel):
    id: int
    plan_key: str
    run_id: str | None
    data_fingerprint: str | None
    horizon_weeks: int
    n_skus: int
    source_dir: str
    metadata_source: str
    imported_at: datetime
    rules: dict[str, Any]
    config: dict[str, Any]
    roi: dict[str, float | None] | None
    by_status: dict[str, int] = Field(default_factory=dict)
    week_starts: list[str] | None = Field(
        default=None, description="start date (YYYY-MM-DD) of plan weeks 1..H, where the "
        "data have a calendar ('' for a week without one)"
    )  # fmt: skip
    currency: str | None = Field(default=None, description="currency of every amount")


class PlanPage(Page):
    items: list[PlanOut]


class ImportRequest(Strict):
    path: Annotated[str, StringConstraints(min_length=1, max_length=4096,
                                           pattern=r"^[^\x00-\x1f]+$")]  # fmt: skip


class ImportOut(BaseModel):
    plan: PlanOut
    created: bool


class CategoryOverview(BaseModel):
    category: str
    n_skus: int
    stock_units: float
    stock_value_at_cost: float
    expected_gain: float
    expected_gain_ci_low: float
    expected_gain_ci_high: float
    dead_units_avoided: float
    margin_given_away: float
    mean_risk: float | None
    by_tier: dict[str, int]
    by_status: dict[str, int]


class Histogram(BaseModel):
    edges: list[float]
    counts: list[int]


class RoiLine(BaseModel):
    """One line of the plan's ROI against doing nothing, as the pipeline's report shows it."""

    key: str
    item: str = Field(description="what the line is, in words")
    unit: str = Field(description="'currency' (money) or 'units'")
    part: Literal["line", "total", "memo"] = Field(
        description="the lines add up to the total; a memo is shown beside them"
    )
    mean: float | None
    ci_low: float | None
    ci_high: float | None


class Overview(BaseModel):
    plan_id: int
    n_skus: int
    pending_review: int
    categories: list[CategoryOverview]
    risk_histogram: Histogram
    roi: dict[str, float | None]
    roi_lines: list[RoiLine] = Field(default_factory=list)
    currency: str | None = None


class SkuItem(BaseModel):
    sku: str
    category: str
    description: str | None
    tier: str | None
    risk: float | None
    status: str
    recommended_policy: str | None
    best_heuristic: str | None
    initial_stock: float | None
    list_price: float | None
    unit_cost: float | None
    rec_profit: float | None
    profit_vs_none: float | None
    profit_vs_none_ci_low: float | None
    profit_vs_none_ci_high: float | None
    rec_sell_through: float | None
    leftover_units_vs_none: float | None
    rec_margin_given_away: float | None
    export_id: int | None


class SkuPage(Page):
    items: list[SkuItem]


SKU_SORT_KEYS = tuple(
    f"{p}{k}"
    for k in ("sku", "category", "risk", "tier", "status", "gain", "profit", "initial_stock",
              "planner")
    for p in ("", "-")
)  # fmt: skip
"""Sort keys of the SKU list (``service.plans.SORTABLE``, each also descending)."""
ListText = Annotated[list[str] | None, Field(max_length=100)]


class SkuQuery(BaseModel):
    """The SKU list's filters (query parameters; repeat one to give several values).

    One model rather than one parameter each: the list is the API's hottest request, and
    pydantic validates a model in one call where FastAPI checks each parameter apart.
    """

    category: ListText = None
    tier: ListText = None
    status: Annotated[list[str] | None, Field(max_length=10, description="review state")] = None
    planner: ListText = None
    min_risk: Annotated[float | None, Field(ge=0, le=1)] = None
    max_risk: Annotated[float | None, Field(ge=0, le=1)] = None
    min_gain: Annotated[float | None, Field(ge=-1e15, le=1e15)] = None
    max_gain: Annotated[float | None, Field(ge=-1e15, le=1e15)] = None
    q: Annotated[str | None, Field(max_length=64, pattern=r"^[^\x00-\x1f]*$")] = None
    sort: Annotated[str, Field(description=f"one of {', '.join(SKU_SORT_KEYS)}")] = "-risk"
    offset: Annotated[int, Field(ge=0, le=10**9)] = 0
    limit: Annotated[int, Field(ge=1, le=500)] = 100


class WeeklySchedule(BaseModel):
    discount: list[float]
    coupon: list[float]


class ReviewOut(BaseModel):
    id: int
    plan_id: int
    sku: str
    category: str
    scope: str
    action: str
    status_before: str
    reason: str
    discount: list[float] | None
    coupon: list[float] | None
    user_id: int
    created_at: datetime


class SkuDetail(BaseModel):
    plan_id: int
    summary: dict[str, Any]
    recommended: WeeklySchedule
    expected: dict[str, list[float | None]]
    effective: WeeklySchedule
    effective_source: Literal["recommended", "override"]
    reviews: list[ReviewOut]


class MetricCI(BaseModel):
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    vs_no_markdown: float | None = None
    vs_ci_low: float | None = None
    vs_ci_high: float | None = None


class Alternative(BaseModel):
    policy: str
    schedule_name: str
    available: bool
    note: str
    discount: list[float]
    coupon: list[float]
    outcomes: dict[str, MetricCI]


class Alternatives(BaseModel):
    plan_id: int
    sku: str
    n_episodes: int
    seed: int
    alternatives: list[Alternative]


# ------------------------------------------------------------------------------ what-if
class WeeklyScheduleIn(Strict):
    discount: list[Depth] = Field(min_length=1, max_length=MAX_WEEKS)
    coupon: list[Depth] | None = Field(default=None, min_length=1, max_length=MAX_WEEKS)


class RuleOverrides(Strict):
    """Business-rule fields to change for the what-if (see ``envs.config.RulesConfig``)."""

    max_discount: Depth | None = None
    min_weeks_between_changes: Annotated[int, Field(ge=0, le=MAX_WEEKS)] | None = None
    markdown_only: bool | None = None
    margin_floor: Annotated[float, Field(ge=-1.0, le=10.0)] | None = None
    no_touch_before_exit_weeks: Annotated[int, Field(ge=0, le=MAX_WEEKS)] | None = None
    no_touch_after_launch_weeks: Annotated[int, Field(ge=0, le=MAX_WEEKS)] | None = None
    discount_levels: list[Depth] | None = Field(default=None, min_length=1, max_length=20)
    coupon_levels: list[Depth] | None = Field(default=None, min_length=1, max_length=20)
    coupon_budget_weeks: Annotated[int, Field(ge=0, le=MAX_WEEKS)] | None = None


class WhatIfRequest(Strict):
    """A what-if: a base schedule, caps and rule overrides, for SKUs or a category.

    The base is ``schedule`` (one weekly plan applied to every SKU) or ``policy``:
    ``"recommended"`` (the plan's schedule), ``"current"`` (the latest override where there
    is one, else the recommended) or ``"fixed:D[:C]"`` over the plan's horizon.
    """

    skus: list[SkuId] | None = Field(default=None, min_length=1, max_length=MAX_REQUEST_SKUS)
    category: Name | None = None
    policy: Annotated[str, StringConstraints(max_length=40)] | None = "recommended"
    schedule: WeeklyScheduleIn | None = None
    max_discount: Depth | None = None
    exit_week: Annotated[int, Field(ge=1, le=MAX_WEEKS)] | None = None
    coupons: bool = True
    rules: RuleOverrides | None = None
    n_episodes: Annotated[int, Field(ge=2, le=MAX_EPISODES)] = 500
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0


class WhatIfSku(BaseModel):
    sku: str
    discount: list[float]
    coupon: list[float]
    outcomes: dict[str, MetricCI]


class Band(BaseModel):
    mean: list[float]
    p05: list[float]
    p95: list[float]


class WhatIfOut(BaseModel):
    plan_id: int
    n_episodes: int
    seed: int
    ci_level: float
    rules: dict[str, Any]
    skus: list[WhatIfSku]
    totals: dict[str, MetricCI]
    weekly: dict[str, Band] | None


class TaskOut(BaseModel):
    id: str
    plan_id: int
    status: Literal["queued", "running", "succeeded", "failed", "cancelled", "interrupted"]
    done: int
    total: int
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    result: WhatIfOut | None = None


# ------------------------------------------------------------------------------ reviews
class ReviewRequest(Strict):
    """Approve, reject or override one SKU (``sku``) or a whole category (``category``).
    An override gives the edited weekly schedule (``discount``, optional ``coupon``) for
    the plan's horizon."""

    action: Literal["approve", "reject", "override"]
    reason: Annotated[str, StringConstraints(min_length=1, max_length=2000,
                                             pattern=r"\S")]  # fmt: skip
    sku: SkuId | None = None
    category: Name | None = None
    discount: list[Depth] | None = Field(default=None, min_length=1, max_length=MAX_WEEKS)
    coupon: list[Depth] | None = Field(default=None, min_length=1, max_length=MAX_WEEKS)


class ReviewBatch(BaseModel):
    status: str
    n_skus: int
    reviews: list[ReviewOut]


class ReviewPage(Page):
    items: list[ReviewOut]


# ------------------------------------------------------------------------------ exports
class ExportRequest(Strict):
    format: Literal["csv", "parquet", "sql"] = "csv"
    categories: list[Name] | None = Field(default=None, min_length=1, max_length=1000)


class ExportOut(BaseModel):
    id: int
    plan_id: int
    user_id: int
    created_at: datetime
    format: str
    target: str
    categories: list[str] | None
    n_skus: int
    n_rows: int
    by_status: dict[str, int]


class ExportPage(Page):
    items: list[ExportOut]


# ------------------------------------------------------------------------------ runs
class RunRequest(Strict):
    """A pipeline run (``deadstock run``) in a new output folder of its own."""

    data: Annotated[str, StringConstraints(min_length=1, max_length=4096,
                                           pattern=r"^[^\x00-\x1f]+$")] | None = None  # fmt: skip
    config_path: Annotated[str, StringConstraints(min_length=1, max_length=4096,
                                                  pattern=r"^[^\x00-\x1f]+$")] | None = None  # fmt: skip
    quick: bool = False
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None
    policy: Literal["auto", "champion", "train"] | None = None


class JobOut(BaseModel):
    id: int
    kind: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled", "interrupted"]
    params: dict[str, Any]
    out_dir: str
    exit_code: int | None
    log_tail: str
    error: str | None
    plan_id: int | None
    created_by_id: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobPage(Page):
    items: list[JobOut]


# ------------------------------------------------------------------------------ audit, MLflow
class AuditOut(BaseModel):
    id: int
    at: datetime
    user_id: int | None
    actor: str
    action: str
    object_type: str
    object_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class AuditPage(Page):
    items: list[AuditOut]


class Leaderboard(BaseModel):
    mlflow_ui_url: str
    n_runs: int
    rows: list[dict[str, Any]]
    error: str | None = None
