"""The SKU list, the API's hottest request: its page, a cache of finished pages, and a lean
path that serves both in front of FastAPI.

A page of the list depends on the plan, the review state of its SKUs, the caller's scope
(the categories a category manager is limited to; every other role sees all) and the query
string, and on nothing else. So the finished response bytes are kept under the key (plan,
``reviews`` change counter, scope, query string). Every write that changes what the list
shows (a review, an export, an import) bumps that counter in its own transaction
(:mod:`service.counters`), and each request reads the counters first, so a page cached
before a review is never served after it, by any worker process.

:class:`ListCacheMiddleware` answers without entering FastAPI (its routing and dependency
solving cost more than the page itself): a cached page as it is, a miss by validating the
query with the route's own model (:class:`~service.api.schemas.SkuQuery`) and calling the
route's own :func:`sku_page`. It needs the caller's user from the token cache, checked under
the current ``tokens`` counter (a revoked token is never answered from here). Anything else
goes through FastAPI as usual: a token not checked yet (FastAPI checks it and fills the token
cache), a query the lean path does not parse exactly as FastAPI would (a repeated scalar,
an unknown or empty parameter), and any refusal (FastAPI answers it with its usual 4xx).
Only 200 answers are cached.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from typing import Any
from urllib.parse import parse_qsl

from pydantic import ValidationError
from pydantic_core import to_json
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingest.errors import DeadstockError
from service import plans
from service.api import schemas as sc
from service.db.models import COUNTERS, REVIEW_STATUSES, User
from service.errors import Invalid
from service.users import visible_categories

SORT_KEYS = tuple(f"{p}{k}" for k in plans.SORTABLE for p in ("", "-"))
assert set(SORT_KEYS) == set(sc.SKU_SORT_KEYS)
STATES = (*REVIEW_STATUSES, "exported")
LIST_PARAMS = frozenset(("category", "tier", "status", "planner"))
"""Query parameters of :class:`~service.api.schemas.SkuQuery` that take several values."""
SCALAR_PARAMS = frozenset(sc.SkuQuery.model_fields) - LIST_PARAMS

CACHE_BYTES = 64 * 1024 * 1024
"""Most response bytes kept per process (a page of 100 SKUs is about 40 kB)."""
SCOPE_KEY = "deadstock.counters"
"""Where the middleware leaves the counters it read for the route (ASGI scope)."""
_COUNTERS_SQL = "SELECT name, value FROM change_counters"


def sku_page(state: Any, session: Session, user: User, plan_id: int, query: sc.SkuQuery) -> bytes:
    """One page of a plan's SKUs as JSON bytes (the ``GET /plans/{id}/skus`` answer).

    Raises
    ------
    service.errors.NotFound, service.errors.Forbidden, service.errors.Invalid
        An unknown plan, a category outside the caller's, a bad sort or state.
    """
    state.plan(session, plan_id)
    if query.sort not in SORT_KEYS:
        raise Invalid(f"sort {query.sort!r}: expected one of {list(SORT_KEYS)}",
                      ("query", "sort"))  # fmt: skip
    bad = [s for s in query.status or [] if s not in STATES]
    if bad:
        raise Invalid(f"status {bad[0]!r}: expected some of {list(STATES)}", ("query", "status"))
    for name in ("category", "tier", "planner"):
        if any(len(v) > 200 or "\x00" in v for v in getattr(query, name) or []):
            raise Invalid(f"{name}: values of at most 200 characters", ("query", name))
    f = plans.SkuFilter(
        categories=tuple(query.category or ()),
        tiers=tuple(query.tier or ()),
        statuses=tuple(query.status or ()),
        planners=tuple(query.planner or ()),
        min_risk=query.min_risk,
        max_risk=query.max_risk,
        min_gain=query.min_gain,
        max_gain=query.max_gain,
        sku_contains=query.q or None,
    )
    offset, limit = query.offset, query.limit
    items, total = plans.list_skus(session, user, plan_id, f, sort=query.sort, offset=offset,
                                   limit=limit, counts=state.counts)  # fmt: skip
    # Serialized here (in Rust, without validating each row again). The rows are the
    # declared SkuItem fields, read from typed columns.
    page = {"total": total, "offset": offset, "limit": limit, "items": items}
    return to_json(page, inf_nan_mode="null")


def parse_query(query_string: bytes) -> sc.SkuQuery | None:
    """The list's query as FastAPI would validate it, or None where the lean path might read
    it otherwise than FastAPI (then FastAPI answers, with its own 422 where one is due)."""
    values: dict[str, Any] = {}
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if not value:
            return None
        if name in LIST_PARAMS:
            values.setdefault(name, []).append(value)
        elif name in SCALAR_PARAMS and name not in values:
            values[name] = value
        else:
            return None
    try:
        return sc.SkuQuery.model_validate(values)
    except ValidationError:
        return None


class ListCache:
    """Response bytes of SKU list pages under (plan, reviews counter, scope, query), the
    least recently used dropped past ``max_bytes``."""

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        self._bytes = 0
        self._generation = -1
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(plan_id: int, generation: int, user: Any, query: bytes) -> tuple[Any, ...]:
        scope = visible_categories(user)
        return (plan_id, generation, None if scope is None else tuple(scope), query)

    def get(self, key: tuple[Any, ...]) -> bytes | None:
        with self._lock:
            body = self._items.get(key)
            if body is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return body

    def put(self, key: tuple[Any, ...], body: bytes) -> None:
        generation = key[1]
        with self._lock:
            if generation < self._generation:
                return  # computed before a review another request has already seen
            if generation > self._generation:
                # pages of an older review state can never be asked for again
                self._items.clear()
                self._bytes, self._generation = 0, generation
            old = self._items.pop(key, None)
            self._bytes -= len(old) if old is not None else 0
            self._items[key] = body
            self._bytes += len(body)
            while self._bytes > self.max_bytes and self._items:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped)

    def __len__(self) -> int:
        return len(self._items)


def read_counters(engine: Any) -> dict[str, int]:
    """The change counters through a pooled DB-API connection (no session, no ORM)."""
    conn = engine.raw_connection()
    try:
        cur = conn.cursor()
        cur.execute(_COUNTERS_SQL)
        values = dict(cur.fetchall())
        cur.close()
        conn.commit()  # end the read transaction (PostgreSQL opens one) before pooling
    finally:
        conn.close()
    return {name: int(values.get(name, 0)) for name in COUNTERS}


class ListCacheMiddleware:
    """Serve cached SKU list pages (``GET {prefix}/plans/{id}/skus``) before FastAPI."""

    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app = app
        self.path = re.compile(rf"^{re.escape(prefix)}/plans/([1-9][0-9]{{0,9}})/skus$")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        match = self.path.match(scope["path"])
        token = _bearer(scope) if match else None
        if match is None or token is None:
            await self.app(scope, receive, send)
            return
        state = scope["app"].state.service if "app" in scope else None
        if state is None:
            await self.app(scope, receive, send)
            return
        counters = read_counters(state.db.engine)
        scope.setdefault("state", {})[SCOPE_KEY] = counters
        user = state.tokens.get(token, counters["tokens"])
        if user is None:  # not checked yet (or revoked): FastAPI checks it
            await self.app(scope, receive, send)
            return
        plan_id = int(match.group(1))
        key = ListCache.key(plan_id, counters["reviews"], user, scope["query_string"])
        body = state.list_cache.get(key)
        if body is None:
            query = parse_query(scope["query_string"])
            if query is not None:
                try:
                    with state.db.session() as session:
                        body = sku_page(state, session, user, plan_id, query)
                except DeadstockError:
                    body = None  # FastAPI answers the refusal in its usual form
                if body is not None:
                    state.list_cache.put(key, body)
        if body is not None:
            await _send_json(send, body)
            return
        await self.app(scope, receive, _Capture(send, state.list_cache, key))


class _Capture:
    """An ASGI ``send`` that passes a response on and keeps its body when it is a 200."""

    def __init__(self, send: Send, cache: ListCache, key: tuple[Any, ...]) -> None:
        self.send, self.cache, self.key = send, cache, key
        self.ok = False
        self.parts: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.ok = message["status"] == 200
        elif message["type"] == "http.response.body" and self.ok:
            self.parts.append(message.get("body", b""))
            if not message.get("more_body", False):
                self.cache.put(self.key, b"".join(self.parts))
        await self.send(message)


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, cred = value.decode("latin-1").partition(" ")
            return cred.strip() or None if scheme.lower() == "bearer" else None
    return None


async def _send_json(send: Send, body: bytes) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})
