"""Plans and SKUs: plan versions, import, overview, the SKU list and detail, the
alternatives beside a SKU's recommended schedule, and what-ifs (synchronous, or as a task
with progress)."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
import sqlalchemy as sa
from fastapi import APIRouter, Path, Query, Response, status
from sqlalchemy.orm import Session

from ingest.errors import DeadstockError
from service import library, plans
from service.api import schemas as sc
from service.api import skulist
from service.api.deps import Caller, Db, ServiceState, State
from service.db.models import PlanVersion, User, sku_plans
from service.errors import Forbidden, Invalid
from service.users import CAN_LEAD, visible_categories

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": sc.Message, "description": "missing or invalid token"},
    403: {"model": sc.Message, "description": "role or category not allowed"},
    404: {"model": sc.Message, "description": "no such object"},
    409: {"model": sc.Message, "description": "conflicts with the stored state"},
    413: {"model": sc.Message, "description": "request body too large"},
    422: {"model": sc.ValidationMessage, "description": "invalid field"},
}
router = APIRouter(responses=ERRORS)

PlanId = Annotated[int, Path(ge=1, le=2**31 - 1, description="plan version id")]
SkuPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]+$")]
Offset = Annotated[int, Query(ge=0, le=10**9)]
Limit = Annotated[int, Query(ge=1, le=500)]
TextQ = Annotated[list[str] | None, Query(max_length=100)]


def plan_out(session: Session, plan: PlanVersion, user: User) -> sc.PlanOut:
    c = sku_plans.c
    q = sa.select(c.status, sa.func.count()).where(c.plan_id == plan.id)
    allowed = visible_categories(user)
    if allowed is not None:
        q = q.where(c.category.in_(allowed))
    by_status = {str(k): int(n) for k, n in session.execute(q.group_by(c.status))}
    return sc.PlanOut(
        id=plan.id,
        plan_key=plan.plan_key,
        run_id=plan.run_id,
        data_fingerprint=plan.data_fingerprint,
        horizon_weeks=plan.horizon_weeks,
        n_skus=plan.n_skus,
        source_dir=plan.source_dir,
        metadata_source=plan.metadata_source,
        imported_at=plan.imported_at,
        rules=plan.rules,
        config=plan.config,
        roi=plan.roi,
        by_status=by_status,
        week_starts=plan.week_starts,
        currency=plan.currency,
    )


@router.get("/plans", response_model=sc.PlanPage, tags=["plans"])
def list_plans(session: Db, user: Caller, offset: Offset = 0, limit: Limit = 20) -> Any:
    """Plan versions, newest first."""
    total = session.scalar(sa.select(sa.func.count()).select_from(PlanVersion)) or 0
    rows = session.scalars(
        sa.select(PlanVersion).order_by(PlanVersion.id.desc()).offset(offset).limit(limit)
    ).all()
    items = [plan_out(session, p, user) for p in rows]
    return sc.PlanPage(total=total, offset=offset, limit=limit, items=items)


@router.post(
    "/plans/import",
    response_model=sc.ImportOut,
    tags=["plans"],
    responses={201: {"model": sc.ImportOut, "description": "imported now"}},
)
def import_plan(body: sc.ImportRequest, session: Db, user: Caller, response: Response) -> Any:
    """Import a ``deadstock run`` output folder on the server as a plan version (pricing lead,
    admin). Idempotent: the same plan again returns the stored version (200)."""
    if user.role not in CAN_LEAD:
        raise Forbidden(f"role {user.role!r} cannot import plans; {list(CAN_LEAD)} can")
    try:
        run = library.read_run_folder(body.path)
    except DeadstockError as err:
        raise Invalid(str(err), ("body", "path"), "data_error") from None
    plan, created = plans.import_run(session, run, user=user)
    session.commit()
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return sc.ImportOut(plan=plan_out(session, plan, user), created=created)


@router.get("/plans/{plan_id}", response_model=sc.PlanOut, tags=["plans"])
def get_plan(plan_id: PlanId, state: State, session: Db, user: Caller) -> Any:
    """One plan version with its SKUs counted by review status."""
    return plan_out(session, state.plan(session, plan_id), user)


@router.get("/plans/{plan_id}/overview", response_model=sc.Overview, tags=["plans"])
def overview(plan_id: PlanId, state: State, session: Db, user: Caller) -> Any:
    """Aggregates by category (at-risk counts and stock value, expected gain with CI, what
    waits for review), the risk histogram and the plan's ROI with CIs."""
    return plans.overview(session, user, state.plan(session, plan_id))


@router.get("/plans/{plan_id}/skus", response_model=sc.SkuPage, tags=["skus"])
async def list_skus(
    plan_id: PlanId,
    state: State,
    session: Db,
    user: Caller,
    query: Annotated[sc.SkuQuery, Query()],
) -> Any:
    """One page of a plan's SKUs, filtered and sorted (``sort``: a key of the SKU list,
    ``-key`` sorts descending). A category manager sees only their categories (403 when
    asking for another)."""
    # async on purpose: the page is two indexed queries (about a millisecond), cheaper run
    # on the event loop than handed to a worker thread and back. Most pages are answered
    # before this route, from the page cache or by the same function without FastAPI's
    # routing and dependencies (service.api.skulist); this is the path of the first request
    # of a token and of every refused one.
    body = skulist.sku_page(state, session, user, plan_id, query)
    return Response(body, media_type="application/json")


def _effective(session: Session, plan_id: int, row: dict[str, Any], sched: dict[str, Any]):
    if row["status"] == "overridden":
        rv = plans.latest_override(session, plan_id, row["sku"])
        if rv is not None and rv.discount is not None:
            coupon = rv.coupon or [0.0] * len(rv.discount)
            return {"discount": rv.discount, "coupon": coupon}, "override"
    return {"discount": sched["discount"], "coupon": sched["coupon"]}, "recommended"


@router.get("/plans/{plan_id}/skus/{sku}", response_model=sc.SkuDetail, tags=["skus"])
def sku_detail(plan_id: PlanId, state: State, sku: SkuPath, session: Db, user: Caller) -> Any:
    """One SKU: risk and drivers, outcomes of the recommended plan, doing nothing and the
    best heuristic with CIs, the recommended and the effective (overridden) schedule, and
    its reviews."""
    state.plan(session, plan_id)
    row = plans.sku_row(session, user, plan_id, sku)
    sched = plans.schedule_of(session, plan_id, sku)
    effective, source = _effective(session, plan_id, row, sched)
    summary = {k: v for k, v in row.items() if k not in ("plan_id", "extra")}
    summary.update(row.get("extra") or {})
    summary = {k: (None if isinstance(v, float) and not np.isfinite(v) else v)
               for k, v in summary.items()}  # fmt: skip
    return {
        "plan_id": plan_id,
        "summary": summary,
        "recommended": {"discount": sched["discount"], "coupon": sched["coupon"]},
        "expected": sched["expected"],
        "effective": effective,
        "effective_source": source,
        "reviews": [_review(r) for r in plans.reviews_of(session, plan_id, sku)],
    }


def _review(r: Any) -> dict[str, Any]:
    return {k: getattr(r, k) for k in sc.ReviewOut.model_fields}


@router.get(
    "/plans/{plan_id}/skus/{sku}/alternatives", response_model=sc.Alternatives, tags=["skus"]
)
def sku_alternatives(
    plan_id: PlanId,
    sku: SkuPath,
    session: Db,
    user: Caller,
    state: State,
    n_episodes: Annotated[int, Query(ge=2, le=sc.MAX_EPISODES)] = 200,
    seed: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> Any:
    """The recommended schedule beside doing nothing, every heuristic, the exact DP and QMDP
    (where they apply to the SKU; QMDP as in the plan's run), simulated on the same paths:
    outcomes with CIs and the paired difference against doing nothing."""
    plan = state.plan(session, plan_id)
    row = plans.sku_row(session, user, plan_id, sku)
    _check_work(state, 1, n_episodes, sync=True)
    sched = plans.schedule_of(session, plan_id, sku)
    one = library.take_skus(state.catalog(session, plan_id), [sku])
    rec = (np.asarray(sched["discount"]), np.asarray(sched["coupon"]),
           str(row.get("recommended_policy") or "recommended"))  # fmt: skip
    alts = library.alternatives(one, plan.rules, rec, _sim(plan, n_episodes, seed))
    return {"plan_id": plan_id, "sku": sku, "n_episodes": n_episodes, "seed": seed,
            "alternatives": alts}  # fmt: skip


# ------------------------------------------------------------------------------ what-if
def _sim(plan: PlanVersion, n_episodes: int, seed: int) -> library.SimSettings:
    ev = (plan.config or {}).get("evaluation") or {}
    return library.SimSettings(
        n_episodes=n_episodes,
        seed=seed,
        ci_level=float(ev.get("ci_level", 0.95)),
        draw_parameters=bool(ev.get("draw_parameters", True)),
        qmdp_grid=int(ev.get("qmdp_grid", 0)),  # plans made before QMDP joined have none
    )


def _check_work(state: ServiceState, n_skus: int, n_episodes: int, *, sync: bool) -> None:
    lim = state.settings.limits
    max_skus = lim.max_whatif_skus if sync else lim.max_task_skus
    max_work = lim.max_sync_work if sync else lim.max_task_work
    where = "a what-if request" if sync else "a what-if task"
    if n_episodes > lim.max_episodes:
        raise Invalid(f"n_episodes {n_episodes}: at most {lim.max_episodes}",
                      ("body", "n_episodes"))  # fmt: skip
    if n_skus > max_skus:
        hint = " (use /whatif/tasks for a category)" if sync else ""
        raise Invalid(f"{n_skus} SKUs: {where} takes at most {max_skus}{hint}",
                      ("body", "skus"))  # fmt: skip
    if n_skus * n_episodes > max_work:
        raise Invalid(
            f"{n_skus} SKUs x {n_episodes} episodes = {n_skus * n_episodes:,} simulated "
            f"SKU-episodes: {where} takes at most {max_work:,}",
            ("body", "n_episodes"),
        )


def _whatif_request(
    session: Session, user: User, state: ServiceState, plan: PlanVersion, body: sc.WhatIfRequest
) -> library.WhatIfRequest:
    """Resolve the SKUs and the base schedule of a what-if (403/404/422 as they apply)."""
    if (body.skus is None) == (body.category is None):
        raise Invalid("give either skus or category", ("body", "skus"))
    if body.skus is not None:
        skus = list(dict.fromkeys(body.skus))
        for s in skus:
            plans.sku_row(session, user, plan.id, s)
    else:
        assert body.category is not None
        items, total = plans.list_skus(
            session, user, plan.id, plans.SkuFilter(categories=(body.category,)),
            sort="sku", limit=state.settings.limits.max_task_skus + 1,
        )  # fmt: skip
        if not items:
            raise Invalid(f"category {body.category!r} has no SKU in plan {plan.id}",
                          ("body", "category"))  # fmt: skip
        skus = [r["sku"] for r in items]
    h = plan.horizon_weeks
    if body.schedule is not None:
        d = np.asarray(body.schedule.discount, dtype=float)
        c = np.asarray(body.schedule.coupon or [0.0] * d.size, dtype=float)
        if d.size != c.size:
            raise Invalid(f"schedule.coupon has {c.size} weeks, discount {d.size}",
                          ("body", "schedule", "coupon"))  # fmt: skip
        if d.size > state.settings.limits.max_horizon_weeks:
            raise Invalid("schedule too long", ("body", "schedule", "discount"))
        disc, coup = np.tile(d, (len(skus), 1)), np.tile(c, (len(skus), 1))
        name = "edited"
    else:
        policy = body.policy or "recommended"
        if policy in ("recommended", "current"):
            disc, coup = np.zeros((len(skus), h)), np.zeros((len(skus), h))
            for i, s in enumerate(skus):
                sched = plans.schedule_of(session, plan.id, s)
                eff = {"discount": sched["discount"], "coupon": sched["coupon"]}
                if policy == "current":
                    row = plans.sku_row(session, user, plan.id, s)
                    eff, _ = _effective(session, plan.id, row, sched)
                disc[i], coup[i] = eff["discount"], eff["coupon"]
            name = policy
        else:
            try:
                d0, c0 = library.parse_fixed_policy(policy)
            except DeadstockError as err:
                raise Invalid(
                    f"policy {policy!r}: expected 'recommended', 'current' or {err}",
                    ("body", "policy"),
                ) from None
            disc, coup = np.full((len(skus), h), d0), np.full((len(skus), h), c0)
            name = policy
    if body.exit_week is not None and body.exit_week > disc.shape[1]:
        raise Invalid(f"exit_week {body.exit_week} is past the schedule's {disc.shape[1]} weeks",
                      ("body", "exit_week"))  # fmt: skip
    overrides = body.rules.model_dump(exclude_none=True) if body.rules else None
    return library.WhatIfRequest(
        skus=skus, discount=disc, coupon=coup, name=name, max_discount=body.max_discount,
        exit_week=body.exit_week, coupons=body.coupons, rule_overrides=overrides,
    )  # fmt: skip


@router.post("/plans/{plan_id}/whatif", response_model=sc.WhatIfOut, tags=["what-if"])
def what_if(
    plan_id: PlanId, body: sc.WhatIfRequest, session: Db, user: Caller, state: State
) -> Any:
    """A what-if for a few SKUs, answered at once: outcomes with CIs against doing nothing
    on paired paths (one SKU also gets its weekly stock and sales bands)."""
    plan = state.plan(session, plan_id)
    req = _whatif_request(session, user, state, plan, body)
    _check_work(state, len(req.skus), body.n_episodes, sync=True)
    catalog = state.catalog(session, plan_id)
    result = library.what_if(catalog, plan.rules, req, _sim(plan, body.n_episodes, body.seed))
    return {"plan_id": plan_id, **result}


def _task_out(task: dict[str, Any]) -> dict[str, Any]:
    result = task["result"]
    return {**task, "result": {"plan_id": task["plan_id"], **result} if result else None}


@router.post(
    "/plans/{plan_id}/whatif/tasks",
    response_model=sc.TaskOut,
    status_code=status.HTTP_202_ACCEPTED,
    tags=["what-if"],
)
def what_if_task(
    plan_id: PlanId, body: sc.WhatIfRequest, session: Db, user: Caller, state: State
) -> Any:
    """The same what-if as a background task (a category of SKUs): poll
    ``GET /whatif/tasks/{id}`` for progress and the result."""
    plan = state.plan(session, plan_id)
    req = _whatif_request(session, user, state, plan, body)
    _check_work(state, len(req.skus), body.n_episodes, sync=False)
    catalog = state.catalog(session, plan_id)
    rules, sim = dict(plan.rules), _sim(plan, body.n_episodes, body.seed)

    def work(progress, cancelled) -> dict[str, Any]:
        return library.what_if(catalog, rules, req, sim, progress=progress, cancelled=cancelled)

    return _task_out(state.tasks.submit(user.id, plan_id, len(req.skus), work))


TaskId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")]


@router.get("/whatif/tasks/{task_id}", response_model=sc.TaskOut, tags=["what-if"])
def what_if_task_status(task_id: TaskId, user: Caller, state: State) -> Any:
    """A what-if task's progress (``done`` of ``total`` SKUs) and, when finished, its result."""
    return _task_out(state.tasks.get(task_id, user.id, user.role in CAN_LEAD))


@router.delete("/whatif/tasks/{task_id}", response_model=sc.TaskOut, tags=["what-if"])
def what_if_task_cancel(task_id: TaskId, user: Caller, state: State) -> Any:
    """Cancel a what-if task (it stops between chunks of SKUs)."""
    return _task_out(state.tasks.cancel(task_id, user.id, user.role in CAN_LEAD))
