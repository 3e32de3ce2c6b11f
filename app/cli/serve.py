"""``deadstock serve``, ``deadstock dashboard``, ``deadstock users`` and ``deadstock db``: the
pricing team's API, its dashboard and its database (a thin shell over :mod:`service`).

- ``deadstock serve [--host 127.0.0.1] [--port 8000] [--workers 1] [--no-access-log] [--db
  URL] [--import DIR]`` starts the REST API (OpenAPI at ``/docs``) in one process or
  several, migrating the database first;
- ``deadstock dashboard [--api URL] [--host 127.0.0.1] [--port 8501]`` starts the Streamlit
  dashboard, a client of that API;
- ``deadstock users add NAME --role ROLE [--categories ...]`` creates a user and prints their
  token once; ``users list``, ``users token NAME`` and ``users revoke NAME``;
- ``deadstock db upgrade`` migrates the database; ``deadstock db import DIR`` imports a run's
  output folder as a plan version.

The database is ``--db``, else ``$DEADSTOCK_DB_URL``, else ``./deadstock.db``.

The command line is the outermost shell of the project: this module is the one place in
``app`` that reaches up into ``service`` (allowed by name in the import contract).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from app.cli.common import add_command, add_group
from ingest.errors import ConfigError

ROLES = ("viewer", "category_manager", "pricing_lead", "admin")
DEFAULT_API_URL = "http://127.0.0.1:8000"
MAX_WORKERS = 32
DASHBOARD_PORT = 8501
API_CHECK_TIMEOUT_S = 3.0
# Streamlit's own settings for a served dashboard: no browser opened, no usage statistics
# sent anywhere, no file watcher (the code does not change under a running dashboard).
STREAMLIT_FLAGS = (
    "--server.headless", "true",
    "--browser.gatherUsageStats", "false",
    "--server.fileWatcherType", "none",
    "--global.developmentMode", "false",
    "--client.toolbarMode", "minimal",
)  # fmt: skip


def _db_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        default=None,
        help="SQLAlchemy URL of the service database ($DEADSTOCK_DB_URL when not given, "
        "else sqlite:///./deadstock.db)",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``serve``, ``dashboard``, ``users`` and ``db`` commands."""
    p = add_command(
        subparsers,
        "serve",
        help="start the REST API for reviewing and approving plans (OpenAPI at /docs)",
        description="Start the REST API (uvicorn) on this machine; the database is migrated "
        "first. The API reads plan versions imported from 'deadstock run' output folders.",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    p.add_argument("--port", type=int, default=8000, help="port to listen on")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="API processes (uvicorn workers) sharing the port; more serve more requests at "
        f"once on more cores (1..{MAX_WORKERS}; default 1: one process is enough for a team "
        "and keeps a what-if task's CPU to one core)",
    )
    p.add_argument(
        "--no-access-log",
        dest="access_log",
        action="store_false",
        help="do not log a line per request (it costs CPU on every request of a busy server)",
    )
    _db_arg(p)
    p.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="DIR",
        help="import this run output folder before serving (repeatable; idempotent)",
    )
    p.set_defaults(func=cmd_serve)

    dash = add_command(
        subparsers,
        "dashboard",
        help="start the pricing team's dashboard (Streamlit), a client of 'deadstock serve'",
        description="Start the Streamlit dashboard. It talks only to the API at --api; sign "
        "in with a token from 'deadstock users add'.",
    )
    dash.add_argument(
        "--api", default=None, help=f"the API's address ($DEADSTOCK_API_URL or {DEFAULT_API_URL})"
    )
    dash.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    dash.add_argument("--port", type=int, default=DASHBOARD_PORT, help="port to listen on")
    dash.set_defaults(func=cmd_dashboard)

    _, us = add_group(
        subparsers,
        "users",
        help="manage the API's users and tokens",
        description="Create, list and revoke the API's users; tokens are stored hashed and "
        "shown once.",
    )
    add = add_command(us, "add", help="create a user and print their token (shown once)")
    add.add_argument("name", help="the user's name")
    add.add_argument("--role", required=True, choices=ROLES, help="what the user may do")
    add.add_argument("--categories", nargs="+", default=[], help="categories managed")
    _db_arg(add)
    add.set_defaults(func=cmd_users_add)
    ls = add_command(us, "list", help="list users, roles and valid tokens")
    _db_arg(ls)
    ls.set_defaults(func=cmd_users_list)
    tok = add_command(us, "token", help="issue another token for a user (shown once)")
    tok.add_argument("name", help="the user's name")
    _db_arg(tok)
    tok.set_defaults(func=cmd_users_token)
    rev = add_command(us, "revoke", help="deactivate a user and revoke their tokens")
    rev.add_argument("name", help="the user's name")
    _db_arg(rev)
    rev.set_defaults(func=cmd_users_revoke)

    _, ds = add_group(
        subparsers,
        "db",
        help="the service database: migrations and plan import",
        description="Migrate the service database (Alembic) or import a run's outputs.",
    )
    up = add_command(ds, "upgrade", help="migrate the database to the newest schema")
    _db_arg(up)
    up.set_defaults(func=cmd_db_upgrade)
    imp = add_command(ds, "import", help="import a 'deadstock run' output folder as a plan")
    imp.add_argument("folder", help="the run's output folder (e.g. outputs/run)")
    _db_arg(imp)
    imp.set_defaults(func=cmd_db_import)


def _open(url: str | None):
    from service.db.engine import open_database
    from service.settings import default_db_url

    return open_database(url or default_db_url())


def _import(db, folder: str) -> tuple[int, bool]:
    from service import library, plans

    run = library.read_run_folder(folder)
    with db.session() as s:
        plan, created = plans.import_run(s, run, user=None, actor_name="cli")
        s.commit()
        return plan.id, created


def cmd_serve(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from service.api.app import build_state, create_app
    from service.settings import DB_URL_ENV, settings_from_env

    if not 1 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port}: expected 1..65535")
    if not 1 <= args.workers <= MAX_WORKERS:
        raise ConfigError(f"--workers {args.workers}: expected 1..{MAX_WORKERS}")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = settings_from_env().with_db(args.db)
    if args.workers > 1 and _in_memory(settings.db_url):
        raise ConfigError(
            f"--workers {args.workers} with the in-memory database {settings.db_url!r}: each "
            "process would have its own; give a database file or server"
        )
    state = build_state(settings)
    for folder in args.imports:
        plan_id, created = _import(state.db, folder)
        print(f"plan {plan_id} {'imported' if created else 'already there'} from {folder}")
    print(
        f"deadstock API on http://{args.host}:{args.port} (OpenAPI: /docs), {args.workers} "
        f"process(es), database {state.db.url}",
        file=sys.stderr,
    )
    if args.workers == 1:
        uvicorn.run(create_app(state=state), host=args.host, port=args.port, log_level="info",
                    access_log=args.access_log)  # fmt: skip
        return 0
    # Each worker builds its own app from the environment (uvicorn starts them fresh); the
    # database is migrated and the imports done here, once.
    state.db.dispose()
    os.environ[DB_URL_ENV] = state.db.engine.url.render_as_string(hide_password=False)
    uvicorn.run("service.api.app:app_from_env", factory=True, workers=args.workers,
                host=args.host, port=args.port, log_level="info",
                access_log=args.access_log)  # fmt: skip
    return 0


def _in_memory(url: str) -> bool:
    """Whether a SQLAlchemy URL names an in-memory SQLite database."""
    return url.startswith("sqlite") and (":memory:" in url or url.rstrip("/") in ("sqlite:",))


def _check_api(url: str) -> str:
    """One line on whether the API answers at ``url`` (the dashboard starts either way: the
    API may come up later)."""
    import httpx

    try:
        r = httpx.get(f"{url}/api/v1/health", timeout=API_CHECK_TIMEOUT_S)
        if r.status_code == 200:
            return f"API at {url}: up ({r.json().get('database')} database)"
        return f"API at {url}: answered HTTP {r.status_code} to /api/v1/health"
    except httpx.HTTPError as err:
        return f"API at {url}: not reachable yet ({type(err).__name__}); start 'deadstock serve'"


def cmd_dashboard(args: argparse.Namespace) -> int:
    import service.dashboard

    api = (args.api or os.environ.get("DEADSTOCK_API_URL") or DEFAULT_API_URL).rstrip("/")
    if not api.startswith(("http://", "https://")):
        raise ConfigError(f"--api {api!r}: expected an http:// or https:// address such as "
                          f"{DEFAULT_API_URL}")  # fmt: skip
    if not 1 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port}: expected 1..65535")
    script = Path(service.dashboard.__file__).with_name("app.py")
    cmd = [sys.executable, "-m", "streamlit", "run", str(script), "--server.address", args.host,
           "--server.port", str(args.port), *STREAMLIT_FLAGS]  # fmt: skip
    print(_check_api(api), file=sys.stderr)
    print(f"deadstock dashboard on http://{args.host}:{args.port}", file=sys.stderr)
    proc = subprocess.Popen(cmd, env={**os.environ, "DEADSTOCK_API_URL": api})
    try:
        return proc.wait()
    except KeyboardInterrupt:
        # Ctrl-C reaches Streamlit too (same process group); let it stop by itself.
        return proc.wait()


def cmd_users_add(args: argparse.Namespace) -> int:
    from service import users

    db = _open(args.db)
    with db.session() as s:
        user, token = users.add_user(s, args.name, args.role, args.categories)
        s.commit()
        cats = f" for {', '.join(user.categories)}" if user.categories else ""
        print(f"user {user.name!r} ({user.role}{cats}) added. Token, shown only now:")
        print(token)
    db.dispose()
    return 0


def cmd_users_list(args: argparse.Namespace) -> int:
    from service import users

    db = _open(args.db)
    with db.session() as s:
        rows = users.list_users(s)
        print(f"{'name':<24}{'role':<18}{'active':<8}{'tokens':>7}  categories")
        for u, n in rows:
            cats = ", ".join(u.categories or [])
            print(f"{u.name:<24}{u.role:<18}{'yes' if u.active else 'no':<8}{n:>7}  {cats}")
    db.dispose()
    return 0


def cmd_users_token(args: argparse.Namespace) -> int:
    from service import users

    db = _open(args.db)
    with db.session() as s:
        token = users.issue_token(s, users.get_user(s, args.name))
        s.commit()
        print(f"new token for {args.name!r}, shown only now:")
        print(token)
    db.dispose()
    return 0


def cmd_users_revoke(args: argparse.Namespace) -> int:
    from service import users

    db = _open(args.db)
    with db.session() as s:
        n = users.revoke_user(s, users.get_user(s, args.name))
        s.commit()
        print(f"user {args.name!r} revoked ({n} token(s))")
    db.dispose()
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    db = _open(args.db)
    from service.db.engine import current_revision

    print(f"database {db.url} at revision {current_revision(db.engine)}")
    db.dispose()
    return 0


def cmd_db_import(args: argparse.Namespace) -> int:
    db = _open(args.db)
    plan_id, created = _import(db, args.folder)
    print(f"plan {plan_id} {'imported' if created else 'already there (nothing new)'}")
    db.dispose()
    return 0
