"""The ``deadstock`` command line: a thin shell over the library's functions, and the one
place that handles what reaches the user.

Each command group lives in its own module that exposes ``register(subparsers)``; the module
adds its sub-parser (with :func:`app.cli.common.add_command`) and sets ``func`` (a callable
taking the parsed namespace and returning an exit code). No command holds logic of its own.

:func:`main` is the entry point and the error boundary:

- an expected failure (:class:`~ingest.errors.DeadstockError`: bad data, a bad config) prints
  ``error: ...`` naming the file, field or URL and exits 2 (its ``exit_code``);
- any other exception is a bug: one line says which command failed, the version and how to
  report it, exit 1; the traceback only with ``-v``;
- Ctrl-C exits 130.

It also owns the process-wide state that library code must not set: the logging handler
(stderr, level from ``-v``/``-q``), matplotlib's non-interactive backend, torch's thread
count and MLflow's telemetry switch.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback
from collections.abc import Sequence

from app.cli.common import HelpFormatter, add_verbosity, usage_error
from ingest.errors import DeadstockError

log = logging.getLogger(__name__)

# Command-group modules, in the order their commands appear in ``deadstock --help``.
COMMAND_MODULES: tuple[str, ...] = (
    "app.cli.run",
    "app.cli.data",
    "app.cli.risk",
    "app.cli.coupons",
    "app.cli.ui",
    "app.cli.demand",
    "app.cli.simulate",
    "app.cli.agents",
    "app.cli.sweep",
    "app.cli.monitor",
    "app.cli.serve",
    "app.cli.abtest",
)
#: The packages whose loggers ``-v`` turns to DEBUG (third-party ones stay at INFO).
OWN_PACKAGES = (
    "app",
    "experiments",
    "fieldtests",
    "planning",
    "agents",
    "envs",
    "simulator",
    "risk_model",
    "targeting",
    "monitoring",
    "ingest",
    "service",
)
#: Exit codes of the boundary.
EXIT_BUG, EXIT_INTERRUPTED = 1, 130


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every registered command group."""
    parser = argparse.ArgumentParser(
        prog="deadstock",
        description=(
            "Discount optimizer against dead stock: risk scores, a fitted market simulator, "
            "masked PPO and the exact DP optimum, tracked in MLflow."
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"deadstock {version()}")
    add_verbosity(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    parser.set_defaults(func=lambda _args: usage_error(parser))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (see the module docstring)."""
    args = build_parser().parse_args(argv)
    verbosity = getattr(args, "verbose", 0) - getattr(args, "quiet", 0)
    configure_logging(verbosity)
    set_process_state(uses_torch=getattr(args, "uses_torch", False))
    try:
        if getattr(args, "tracked", False) and not (
            getattr(args, "no_log", False) or getattr(args, "no_track", False)
        ):
            # Before any work: a bad MLflow store must not surface after the results.
            from experiments.tracking import check_store

            check_store()
        return int(args.func(args) or 0)
    except DeadstockError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:  # noqa: BLE001 - the boundary: anything else is a bug
        if verbosity > 0:
            traceback.print_exc(file=sys.stderr)
        print(bug_report(args, err, traceback_shown=verbosity > 0), file=sys.stderr)
        return EXIT_BUG


def bug_report(args: argparse.Namespace, err: BaseException, *, traceback_shown: bool) -> str:
    """The one line an unexpected error prints: what failed and how to report it."""
    command = " ".join(
        str(getattr(args, k)) for k in vars(args) if k.endswith("command") and getattr(args, k)
    )
    what = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
    detail = f"{type(err).__name__}: {what}" if what else type(err).__name__
    how = (
        "please report it with the traceback above"
        if traceback_shown
        else "rerun with -v for the traceback and report it with that"
    )
    return (
        f"error: 'deadstock {command}' failed unexpectedly ({detail}). This is a bug in "
        f"deadstock {version()}: {how}, the command and the version."
    )


def version() -> str:
    """The installed package's version."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("deadstock")
    except PackageNotFoundError:
        return "unknown"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of the record (a test's capture, or
    a stream replaced after the handler was made), through ``tqdm.write`` so a log line
    printed while a progress bar is showing does not break the bar."""

    @property  # type: ignore[override]
    def stream(self):  # noqa: ANN201
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


class _Formatter(logging.Formatter):
    """Info lines as they are; warnings and errors prefixed with their level; with ``-v``
    the logger's name too."""

    def __init__(self, detailed: bool) -> None:
        super().__init__()
        self.detailed = detailed

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info and self.detailed:
            text += "\n" + self.formatException(record.exc_info)
        if self.detailed:
            return f"{record.levelname.lower()} {record.name}: {text}"
        if record.levelno >= logging.WARNING:
            return f"{record.levelname.lower()}: {text}"
        return text


#: Third-party loggers whose INFO lines are set-up chatter (shown with ``-v``).
CHATTY_LOGGERS = ("mlflow.store.db.utils", "alembic.runtime.migration")


def configure_logging(verbosity: int) -> None:
    """One handler on the root logger, to stderr: INFO by default, WARNING with ``-q``, ERROR
    with ``-qq``, DEBUG for deadstock's own packages with ``-v`` (everything with ``-vv``)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_deadstock", False):
            root.removeHandler(handler)
    handler = _StderrHandler()
    handler._deadstock = True  # type: ignore[attr-defined]
    handler.setFormatter(_Formatter(detailed=verbosity > 0))
    root.addHandler(handler)
    levels = {-2: logging.ERROR, -1: logging.WARNING, 0: logging.INFO}
    root.setLevel(levels.get(max(verbosity, -2), logging.DEBUG if verbosity > 1 else logging.INFO))
    own = logging.DEBUG if verbosity > 0 else root.level
    for name in OWN_PACKAGES:
        logging.getLogger(name).setLevel(own)
    # MLflow announces through its own handler that it creates or upgrades a store's tables
    # (on a fresh store, before the command's first line or its error); -v shows it.
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbosity > 0 else logging.WARNING)


def set_process_state(*, uses_torch: bool) -> None:
    """Process-wide settings of a command line run: no MLflow telemetry and no MLflow
    download bars (the run registers its models after its own progress lines; MLflow's bars
    for its one-file downloads only interleave with them), matplotlib drawing to files (no
    display), and one torch thread for commands that train or play a network (small networks
    on a 2-core machine run fastest single-threaded)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import matplotlib

    matplotlib.use("Agg")
    if uses_torch:
        import torch

        torch.set_num_threads(1)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
