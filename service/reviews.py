"""Reviews: approve, reject or override a SKU's schedule, or every SKU of a category.

The workflow's states of a SKU in a plan version::

    imported -> pending -> approved | rejected | overridden -> exported

A review moves a SKU to ``approved``, ``rejected`` or ``overridden`` (any state may be
reviewed again; a new review clears the SKU's export, which must then be exported again).
An override carries the edited weekly schedule, which must keep every business rule of the
plan: it is replayed through the rules' masks (:func:`service.library.rule_breaks`) and
refused with the rule it breaks. Every review needs a reason, is stored, and lands in the
audit log with the SKU's state before and after.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from service import counters, library
from service.audit import record
from service.db.models import PlanVersion, Review, User, sku_plans, utcnow
from service.errors import Forbidden, Invalid, NotFound
from service.users import CAN_REVIEW, sees_category

ACTIONS = {"approve": "approved", "reject": "rejected", "override": "overridden"}


def _targets(
    session: Session, user: User, plan: PlanVersion, sku: str | None, category: str | None
) -> list[dict[str, Any]]:
    c = sku_plans.c
    q = sa.select(c.sku, c.category, c.status, c.export_id).where(c.plan_id == plan.id)
    if sku is not None:
        rows = [dict(r) for r in session.execute(q.where(c.sku == sku)).mappings()]
        if not rows:
            raise NotFound(f"SKU {sku!r} is not in plan {plan.id}")
    else:
        assert category is not None
        if not sees_category(user, category):
            raise Forbidden(f"category {category!r} is not one of yours ({user.categories})")
        rows = [
            dict(r)
            for r in session.execute(q.where(c.category == category).order_by(c.sku)).mappings()
        ]
        if not rows:
            raise NotFound(f"category {category!r} has no SKU in plan {plan.id}")
    for r in rows:
        if not sees_category(user, r["category"]):
            raise Forbidden(f"SKU {r['sku']!r} is in category {r['category']!r}, not yours")
    return rows


def check_override(
    plan: PlanVersion,
    skus: Sequence[str],
    discount: Sequence[float],
    coupon: Sequence[float] | None,
    catalog_for: Callable[[Sequence[str]], Any],
) -> tuple[np.ndarray, np.ndarray]:
    """Check an edited schedule for every SKU it would apply to; returns it as arrays.

    Raises
    ------
    Invalid
        For a schedule of the wrong length or one that breaks a business rule (the error
        names the rule, the week and the SKU).
    """
    h = plan.horizon_weeks
    d = np.asarray(discount, dtype=float)
    c = np.zeros(h) if coupon is None else np.asarray(coupon, dtype=float)
    for name, arr in (("discount", d), ("coupon", c)):
        if arr.shape != (h,):
            raise Invalid(
                f"{name} has {arr.size} weeks; plan {plan.id} has {h} weeks",
                loc=("body", name),
            )
    catalog = catalog_for(list(skus))
    for i, sku in enumerate(skus):
        one = catalog.take(np.array([i]))
        broken = library.rule_breaks(one, plan.rules, d, c)
        if broken:
            first = broken[0]
            raise Invalid(
                f"override refused for SKU {sku!r}: {first.message}",
                loc=("body", "discount", first.week - 1),
                kind="rule_violation",
                extra={"rule": first.rule, "week": first.week, "sku": sku},
            )
    return d, c


def review(
    session: Session,
    user: User,
    plan: PlanVersion,
    *,
    action: str,
    reason: str,
    sku: str | None = None,
    category: str | None = None,
    discount: Sequence[float] | None = None,
    coupon: Sequence[float] | None = None,
    catalog_for: Callable[[Sequence[str]], Any] | None = None,
) -> list[Review]:
    """Review one SKU (``sku``) or every SKU of ``category``; returns the reviews stored.

    The caller commits: the reviews, the SKUs' new states and their audit entries go in one
    transaction.
    """
    if user.role not in CAN_REVIEW:
        raise Forbidden(f"role {user.role!r} cannot review; {list(CAN_REVIEW)} can")
    if action not in ACTIONS:
        raise Invalid(f"action {action!r}: expected one of {list(ACTIONS)}", ("body", "action"))
    if (sku is None) == (category is None):
        raise Invalid("give either sku or category", ("body", "sku"))
    if not reason.strip():
        raise Invalid("a review needs a reason", ("body", "reason"))
    rows = _targets(session, user, plan, sku, category)
    d = c = None
    if action == "override":
        if discount is None or catalog_for is None:
            raise Invalid("an override needs the edited schedule", ("body", "discount"))
        d, c = check_override(plan, [r["sku"] for r in rows], discount, coupon, catalog_for)
    elif discount is not None or coupon is not None:
        raise Invalid(f"a schedule is only given with an override, not {action}",
                      ("body", "discount"))  # fmt: skip
    status = ACTIONS[action]
    scope = "sku" if sku is not None else "category"
    now = utcnow()
    out = []
    for r in rows:
        rv = Review(
            plan_id=plan.id,
            sku=r["sku"],
            category=r["category"],
            scope=scope,
            action=action,
            status_before=r["status"],
            reason=reason.strip(),
            discount=None if d is None else d.tolist(),
            coupon=None if c is None else c.tolist(),
            user_id=user.id,
            created_at=now,
        )
        session.add(rv)
        out.append(rv)
        before = {"status": r["status"], "export_id": r["export_id"]}
        after: dict[str, Any] = {"status": status, "export_id": None, "reason": rv.reason,
                                 "scope": scope}  # fmt: skip
        if d is not None:
            after.update(discount=rv.discount, coupon=rv.coupon)
        record(session, user, f"sku.{action}", "sku", f"{plan.id}/{r['sku']}", before, after)
    skus = [r["sku"] for r in rows]
    for start in range(0, len(skus), 500):
        session.execute(
            sa.update(sku_plans)
            .where(sku_plans.c.plan_id == plan.id, sku_plans.c.sku.in_(skus[start : start + 500]))
            .values(status=status, reviewed_at=now, export_id=None)
        )
    counters.bump(session, counters.REVIEWS)  # every process's cached SKU pages are stale
    session.flush()
    return out


def list_reviews(
    session: Session, user: User, plan: PlanVersion, *, offset: int = 0, limit: int = 100
) -> tuple[list[Review], int]:
    """A plan's reviews, newest first, limited to the user's categories."""
    q = sa.select(Review).where(Review.plan_id == plan.id)
    if user.role == "category_manager":
        q = q.where(Review.category.in_(list(user.categories or [])))
    total = session.scalar(sa.select(sa.func.count()).select_from(q.subquery())) or 0
    rows = session.scalars(q.order_by(Review.id.desc()).offset(offset).limit(limit)).all()
    return list(rows), int(total)
