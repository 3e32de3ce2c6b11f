"""The service's settings: where its database is, where runs and exports go, and the limits
that keep one request from taking the server down.

Every field has a default and an environment variable (read by :func:`settings_from_env`),
so ``deadstock serve`` works with no configuration: a SQLite file ``deadstock.db`` in the
working folder, runs under ``outputs/service/runs`` and exports under
``outputs/service/exports``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from ingest.errors import ConfigError

DB_URL_ENV = "DEADSTOCK_DB_URL"
"""Environment variable holding the service database's SQLAlchemy URL."""

DEFAULT_DB_FILE = "deadstock.db"


def default_db_url() -> str:
    """``$DEADSTOCK_DB_URL`` or a SQLite file ``deadstock.db`` in the working folder."""
    return os.environ.get(DB_URL_ENV) or f"sqlite:///{Path.cwd() / DEFAULT_DB_FILE}"


@dataclass(frozen=True)
class Limits:
    """Bounds on the work one request may ask for.

    Parameters
    ----------
    max_body_bytes : int
        Largest request body accepted (413 above).
    max_page_size : int
        Largest page of a list.
    max_episodes : int
        Most simulated episodes per SKU in a what-if or a SKU's alternatives.
    max_whatif_skus : int
        Most SKUs in one synchronous what-if request.
    max_task_skus : int
        Most SKUs in one background what-if task (a category, with progress).
    max_sync_work : int
        Most SKU-episodes (SKUs x episodes) simulated in one synchronous request.
    max_task_work : int
        Most SKU-episodes in one background what-if task.
    max_horizon_weeks : int
        Longest schedule accepted in a what-if or an override.
    max_running_tasks : int
        What-if tasks waiting or running at once (more are refused with a 409), and
        finished ones kept in the database (older ones are deleted).
    """

    max_body_bytes: int = 1_000_000
    max_page_size: int = 500
    max_episodes: int = 2000
    max_whatif_skus: int = 50
    max_task_skus: int = 2000
    max_sync_work: int = 100_000
    max_task_work: int = 1_000_000
    max_horizon_weeks: int = 52
    max_running_tasks: int = 32


@dataclass(frozen=True)
class Settings:
    """Settings of one service instance.

    Parameters
    ----------
    db_url : str
        SQLAlchemy URL of the service database (``$DEADSTOCK_DB_URL``; SQLite
        ``./deadstock.db`` by default).
    runs_dir : str
        Folder under which each pipeline run started by the API gets its own output folder
        (``$DEADSTOCK_RUNS_DIR``).
    exports_dir : str
        Folder of the price-execution export files (``$DEADSTOCK_EXPORTS_DIR``).
    export_sql_url : str or None
        Database that receives SQL exports (``$DEADSTOCK_EXPORT_SQL_URL``); the service
        database when unset.
    mlflow_ui_url : str
        Link to the MLflow UI shown beside the experiments leaderboard
        (``$DEADSTOCK_MLFLOW_UI_URL``; ``deadstock ui`` serves it on port 5000).
    run_command : tuple of str
        The command that runs the pipeline; the API appends ``run --out DIR ...``.
    limits : Limits
    """

    db_url: str = field(default_factory=default_db_url)
    runs_dir: str = "outputs/service/runs"
    exports_dir: str = "outputs/service/exports"
    export_sql_url: str | None = None
    mlflow_ui_url: str = "http://127.0.0.1:5000"
    run_command: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self) -> None:
        if not self.db_url:
            raise ConfigError(f"db_url is empty: give a SQLAlchemy URL or set {DB_URL_ENV}")

    def with_db(self, url: str | None) -> Settings:
        """A copy with ``db_url`` replaced (unchanged when ``url`` is None)."""
        return replace(self, db_url=url) if url else self


def settings_from_env() -> Settings:
    """Settings from the ``DEADSTOCK_*`` environment variables (defaults otherwise)."""
    env = os.environ
    values: dict[str, str] = {}
    for name, var in (
        ("runs_dir", "DEADSTOCK_RUNS_DIR"),
        ("exports_dir", "DEADSTOCK_EXPORTS_DIR"),
        ("export_sql_url", "DEADSTOCK_EXPORT_SQL_URL"),
        ("mlflow_ui_url", "DEADSTOCK_MLFLOW_UI_URL"),
    ):
        if env.get(var):
            values[name] = env[var]
    return Settings(**values)  # type: ignore[arg-type]
