"""The FastAPI application: routes, error handling, request-size limit, startup and
shutdown.

Errors are JSON, never a traceback: bad input is a 422 listing each field (``loc``), what is
expected (``msg``) and the kind (``type``); a missing object a 404; a refused role or
category a 403; a conflict with the stored state a 409; a body over the size limit a 413. An
unexpected error is logged on the server and answered with a generic 500 (the tests fuzz the
API to keep that path unused).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingest.errors import ConfigError, DataError, DeadstockError
from service.api import routes_admin, routes_plans, routes_workflow
from service.api.deps import ServiceState
from service.api.skulist import ListCacheMiddleware
from service.db.engine import Database, open_database
from service.errors import Conflict, Forbidden, Invalid, NotFound
from service.jobs import JobRunner
from service.settings import Settings, settings_from_env
from service.tasks import CatalogCache, TaskManager

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
API_VERSION = "1"


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with a 413 (by the declared length, and by
    counting when the body is streamed without one)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"request body over {self.max_bytes:,} bytes"}, status_code=413
        )
        await response({"type": "http"}, _no_receive, send)


class _TooLarge(Exception):
    pass


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def _error_item(loc: Any, msg: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {"loc": [p if isinstance(p, int) else str(p) for p in loc], "msg": msg,
            "type": kind, **extra}  # fmt: skip


def install_error_handlers(app: FastAPI) -> None:
    """Map every error to its status and a JSON body (see the module docstring)."""

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, err: RequestValidationError) -> JSONResponse:
        items = [
            _error_item(e.get("loc", ()), str(e.get("msg", "")), str(e.get("type", "")))
            for e in err.errors()
        ]
        return JSONResponse({"detail": items}, status_code=422)

    @app.exception_handler(Invalid)
    async def _invalid(_: Request, err: Invalid) -> JSONResponse:
        item = _error_item(err.loc, str(err), err.kind, **err.extra)
        return JSONResponse({"detail": [item]}, status_code=422)

    simple = ((NotFound, 404), (Forbidden, 403), (Conflict, 409))
    for cls, code in simple:

        async def _simple(_: Request, err: Exception, code: int = code) -> JSONResponse:
            return JSONResponse({"detail": str(err)}, status_code=code)

        app.add_exception_handler(cls, _simple)  # type: ignore[arg-type]

    @app.exception_handler(DeadstockError)
    async def _library(_: Request, err: DeadstockError) -> JSONResponse:
        # The library refused the input (ConfigError / DataError name the field).
        kind = "config_error" if isinstance(err, ConfigError) else "data_error"
        if not isinstance(err, ConfigError | DataError):
            kind = "error"
        return JSONResponse({"detail": [_error_item(("body",), str(err), kind)]}, 422)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, err: HTTPException) -> JSONResponse:
        if err.status_code == 400:
            # FastAPI's answer to a body it cannot decode: still a 422 naming the body.
            msg = f"expected a JSON body in UTF-8 ({err.detail})"
            return JSONResponse({"detail": [_error_item(("body",), msg, "json_invalid")]}, 422)
        return JSONResponse(
            {"detail": str(err.detail)}, status_code=err.status_code, headers=err.headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, err: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error; the server log has the details"}, 500)


def build_state(settings: Settings, db: Database | None = None) -> ServiceState:
    """Open the database (migrating it) and build the service's state."""
    db = db or open_database(settings.db_url)
    return ServiceState(
        settings=settings,
        db=db,
        jobs=JobRunner(db, settings),
        tasks=TaskManager(db, settings.limits.max_running_tasks),
        catalogs=CatalogCache(),
    )


def app_from_env() -> FastAPI:
    """The app of one ``deadstock serve --workers N`` worker process (uvicorn's factory).

    Settings come from the environment, where the serving command put the database URL; that
    command has already migrated the database, so the workers do not race to.
    """
    settings = settings_from_env()
    return create_app(state=build_state(settings, open_database(settings.db_url, migrate=False)))


def create_app(settings: Settings | None = None, *, state: ServiceState | None = None) -> FastAPI:
    """The API for ``settings`` (from the environment when None).

    At startup the database is migrated to the newest revision and jobs and what-if tasks
    left running by a process that no longer runs are marked ``interrupted`` (a sibling
    worker's are left alone); at shutdown this process's running jobs and what-if tasks are
    stopped and read ``interrupted``.
    """
    settings = settings or (state.settings if state else settings_from_env())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = app.state.service
        n = service.jobs.recover()
        if n:
            logger.warning("%s run job(s) of a previous API process marked interrupted", n)
        n = service.tasks.recover()
        if n:
            logger.warning("%s what-if task(s) of a previous API process marked interrupted", n)
        yield
        service.jobs.shutdown()
        service.tasks.shutdown()

    app = FastAPI(
        title="deadstock API",
        version=API_VERSION,
        summary="Review, question, adjust, approve and export markdown plans.",
        description=(
            "Plans come from `deadstock run`. Authenticate with `Authorization: Bearer "
            "<token>` (tokens from `deadstock users add`). See docs/service.md."
        ),
        lifespan=lifespan,
    )
    app.state.service = state or build_state(settings)
    install_error_handlers(app)
    for module in (routes_admin, routes_plans, routes_workflow):
        app.include_router(module.router, prefix=API_PREFIX)
    app.add_middleware(BodyLimit, max_bytes=settings.limits.max_body_bytes)
    app.add_middleware(ListCacheMiddleware, prefix=API_PREFIX)
    return app
