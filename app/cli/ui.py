"""``deadstock ui``: open the MLflow UI on the local store, on 127.0.0.1 only.

One server worker and no background job runner (MLflow's default is 4 workers plus a job
runner for GenAI evaluations that deadstock does not use): a laptop's UI, not a team server.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from app.cli.common import add_command
from ingest.errors import ConfigError


def ui_command(
    *, port: int = 5000, backend_store_uri: str | None = None, python: str | None = None
) -> list[str]:
    """The command that serves the MLflow UI for the store ``deadstock run`` writes to.

    Parameters
    ----------
    port : int
        Port on 127.0.0.1.
    backend_store_uri : str, optional
        The store; defaults to :func:`experiments.tracking.tracking_uri` (``MLFLOW_TRACKING_URI``
        or ``./mlflow.db``).
    python : str, optional
        Interpreter to run ``mlflow`` with (the current one by default).
    """
    from experiments.tracking import artifact_root, tracking_uri, uses_local_store

    if not 1 <= port <= 65535:
        raise ConfigError(f"--port {port}: expected 1..65535")
    uri = backend_store_uri or tracking_uri()
    cmd = [python or sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri]
    root = artifact_root(uri, uses_local_store() and backend_store_uri is None)
    if root:
        # Where tracking.setup puts a SQLite store's artifacts (mlartifacts/ beside it).
        cmd += ["--default-artifact-root", root]
    cmd += ["--host", HOST, "--port", str(port), "--workers", "1"]
    return cmd


HOST = "127.0.0.1"
#: Environment of the UI process: no telemetry, no background job runner.
UI_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``ui`` command."""
    p = add_command(
        subparsers,
        "ui",
        help="open the MLflow UI on the local store (127.0.0.1)",
        description="Serve the MLflow UI for the store 'deadstock run' writes to "
        "(MLFLOW_TRACKING_URI or ./mlflow.db), on 127.0.0.1 only.",
    )
    p.add_argument("--port", type=int, default=5000, help="port on 127.0.0.1")
    p.add_argument("--print-only", action="store_true", help="print the command, do not run it")
    p.set_defaults(func=cmd_ui)


def cmd_ui(args: argparse.Namespace) -> int:
    from experiments.tracking import tracking_uri

    cmd = ui_command(port=args.port)
    print(" ".join(cmd))
    if args.print_only:
        return 0
    print(
        f"MLflow UI listening on http://{HOST}:{args.port} (store {tracking_uri()}; Ctrl-C to stop)",
        file=sys.stderr,
    )
    env = dict(os.environ, **UI_ENV)
    try:
        return subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        return 0
