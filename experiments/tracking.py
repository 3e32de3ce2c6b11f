"""MLflow tracking shared by every runner: the local store, run names, tags and batching.

The default store is a SQLite file (``mlflow.db``) with an artifact folder (``mlartifacts/``)
in the working folder; ``MLFLOW_TRACKING_URI`` points it elsewhere (a SQLite store elsewhere
keeps its artifacts in ``mlartifacts/`` beside its database file). Metrics are always
logged in batches (``log_metrics`` with a dict), never one call per step.

The store is checked before any work (:func:`check_store`): a store that cannot be opened
or written, an unknown scheme, or a SQLite file or file store in a folder that does not exist
is a :class:`~ingest.errors.ConfigError` (one line, exit 2). The folder is not created: a
typo in ``MLFLOW_TRACKING_URI`` must not scatter stores over the disk.

Runs end as ``FINISHED``, ``FAILED`` on an error, and ``KILLED`` on SIGTERM or SIGINT
within :func:`ending_runs_on_signals` (the process then exits 143 or 130).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import mlflow

from ingest.errors import ConfigError

DEFAULT_EXPERIMENT = "deadstock"
#: Artifact folder of the default local store, in the working folder.
LOCAL_ARTIFACTS = "mlartifacts"
_checked: set[str] = set()


class RunInterrupted(SystemExit):
    """SIGTERM or SIGINT arrived inside :func:`ending_runs_on_signals`.

    A ``SystemExit`` with the shell's code for the signal (128 + signal number: 143 for
    SIGTERM, 130 for SIGINT), so the process ends with it and no ``except Exception``
    swallows it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum
        self.signal_name = signal.Signals(signum).name


# The signal received inside ending_runs_on_signals, if any (one block at a time: the main
# thread's).
_received: list[int] = []
_deferred: list[bool] = []


@contextlib.contextmanager
def ending_runs_on_signals() -> Iterator[None]:
    """Within this block SIGTERM and SIGINT raise :class:`RunInterrupted`, so every MLflow run
    opened with :func:`start_run` ends as ``KILLED`` (and ``finally`` blocks run) instead of
    staying ``RUNNING`` forever. Outside the main thread it does nothing (Python only delivers
    signals there). Further signals during the clean-up are ignored.

    A handler's exception can be swallowed: Python ignores (and only prints) exceptions raised
    inside a garbage-collection callback or ``__del__``, which is where a signal lands now and
    then during PPO training. :func:`raise_if_interrupted` at safe points, and the end of this
    block, raise it again, so a signal is never lost.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signums = (signal.SIGTERM, signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        if _received:
            return  # already stopping: let the clean-up finish
        _received.append(signum)
        if not _deferred:
            raise RunInterrupted(signum)

    previous = {s: signal.signal(s, handler) for s in signums}
    _received.clear()
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        received = list(_received)
        _received.clear()
    if received:  # the block ended normally: the handler's exception was swallowed
        raise RunInterrupted(received[0])


@contextlib.contextmanager
def deferring_signals() -> Iterator[None]:
    """Within :func:`ending_runs_on_signals`, hold a signal until this block ends (a step that
    must not be cut in two, such as publishing the output folder), then raise it."""
    _deferred.append(True)
    try:
        yield
    finally:
        _deferred.pop()
    raise_if_interrupted()


def raise_if_interrupted() -> None:
    """Raise :class:`RunInterrupted` when a signal arrived inside
    :func:`ending_runs_on_signals` and its exception was swallowed on the way (call it where
    the program would otherwise go on: between stages, before publishing)."""
    if _received:
        raise RunInterrupted(_received[0])


def tracking_uri() -> str:
    """The tracking URI in force: ``MLFLOW_TRACKING_URI`` or the local SQLite store."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def uses_local_store() -> bool:
    """True when no ``MLFLOW_TRACKING_URI`` is set: the default store in the working folder."""
    return not os.environ.get("MLFLOW_TRACKING_URI")


def _local_path(uri: str) -> Path | None:
    """The file a ``sqlite:`` URI or the folder a ``file:``/plain-path URI names."""
    if uri.startswith("sqlite:"):
        rest = uri.split("://", 1)[-1].split("?", 1)[0]
        # sqlite:///rel.db -> "/rel.db" -> rel.db; sqlite:////abs.db -> "//abs.db" -> /abs.db
        rest = rest[1:] if rest.startswith("/") else rest
        return None if rest in ("", ":memory:") else Path(rest)
    if uri.startswith("file:"):
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(uri).path))
    if "://" not in uri and ":" not in uri.split("/", 1)[0]:
        return Path(uri)
    return None


def _first_line(err: BaseException) -> str:
    text = (getattr(err, "message", None) or str(err)).strip()
    return (text.splitlines()[0] if text else type(err).__name__)[:200]


def _check_sqlite_file(uri: str, path: Path, hint: str) -> None:
    """Refuse a SQLite store that is not a database file here, in milliseconds: MLflow
    retries opening it for about a minute and a half before it gives up."""
    import sqlite3

    if not path.is_file():
        raise ConfigError(f"MLflow tracking store {uri!r}: {str(path)!r} is not a file; {hint}")
    try:
        with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
            db.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.Error as err:
        raise ConfigError(f"MLflow tracking store {uri!r} cannot be used ({err}); {hint}") from None


def check_store(uri: str | None = None) -> str:
    """Check that the tracking store can be opened and written; returns its URI.

    Called before any work by every tracked command (and by :func:`setup`); checked once
    per process and URI.

    Raises
    ------
    ConfigError
        A store whose folder does not exist, that is not writable, has an unknown scheme or
        does not answer; the message names the URI and what to do.
    """
    uri = uri or tracking_uri()
    if uri in _checked:
        return uri
    hint = "set MLFLOW_TRACKING_URI to a store you can write (or unset it for ./mlflow.db)"
    path = _local_path(uri)
    if path is not None:
        folder = path.parent  # the SQLite file or the file store is created, its folder not
        if not folder.is_dir():
            raise ConfigError(
                f"MLflow tracking store {uri!r}: folder {str(folder)!r} does not exist; "
                f"create it or {hint}"
            )
        if uri.startswith("sqlite:") and path.exists():
            _check_sqlite_file(uri, path, hint)
        target = path if path.exists() else folder
        if not os.access(target, os.W_OK):
            raise ConfigError(
                f"MLflow tracking store {uri!r}: {str(target)!r} is not writable; {hint}"
            )
        if uses_local_store() and not os.access(Path.cwd(), os.W_OK):
            raise ConfigError(
                f"the local MLflow store keeps artifacts in ./{LOCAL_ARTIFACTS}, but the working "
                f"folder {str(Path.cwd())!r} is not writable; {hint}"
            )
    # A remote store that does not answer must fail in seconds, not after MLflow's retries.
    quick = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
    saved = {k: os.environ.get(k) for k in quick}
    os.environ.update(quick)
    try:
        mlflow.MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except Exception as err:  # noqa: BLE001 - any failure to open the store is the user's to fix
        raise ConfigError(
            f"MLflow tracking store {uri!r} cannot be used ({_first_line(err)}); {hint}"
        ) from None
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    _checked.add(uri)
    return uri


def artifact_root(uri: str | None = None, local: bool | None = None) -> str | None:
    """Where a new experiment of a SQLite store keeps its artifacts: ``mlartifacts/`` beside
    the database file (``./mlartifacts`` for the default ``./mlflow.db``), so a store is one
    folder; ``None`` (MLflow's default) for other stores."""
    uri = uri or tracking_uri()
    local = uses_local_store() if local is None else local
    if local:
        return (Path.cwd() / LOCAL_ARTIFACTS).as_uri()
    path = _local_path(uri)
    if uri.startswith("sqlite:") and path is not None:
        return (path.parent.absolute() / LOCAL_ARTIFACTS).as_uri()
    return None


def setup(experiment: str = DEFAULT_EXPERIMENT) -> str:
    """Point MLflow at the store (checked first, see :func:`check_store`) and select
    (creating if needed) ``experiment``.

    Returns the experiment id. A new experiment keeps its artifacts as
    :func:`artifact_root` says.
    """
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # Read before set_tracking_uri: MLflow exports the URI it is given to the environment.
    local = uses_local_store()
    uri = check_store()
    mlflow.set_tracking_uri(uri)
    exp = mlflow.get_experiment_by_name(experiment)
    if exp is None:
        location = artifact_root(uri, local)
        exp_id = mlflow.create_experiment(experiment, artifact_location=location)
    else:
        exp_id = exp.experiment_id
    mlflow.set_experiment(experiment_id=exp_id)
    return str(exp_id)


def code_version() -> str:
    """The git commit of the code (with ``-dirty`` when there are local changes), or
    ``"unknown"`` outside a git checkout."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
        return sha + ("-dirty" if dirty.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def run_name(kind: str, label: str, seed: int | None = None) -> str:
    """CleanRL-style run name ``kind__label__seed__unixtime`` so runs can be found again."""
    parts = [kind, label] + ([f"s{seed}"] if seed is not None else []) + [str(int(time.time()))]
    return "__".join(parts)


def flatten_config(config: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten a (nested) dataclass or mapping into ``{"a.b": value}`` params for MLflow."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        items: Mapping[str, Any] = {
            f.name: getattr(config, f.name) for f in dataclasses.fields(config)
        }
    elif isinstance(config, Mapping):
        items = config
    else:
        return {prefix.rstrip("."): config}
    out: dict[str, Any] = {}
    for key, value in items.items():
        if (dataclasses.is_dataclass(value) and not isinstance(value, type)) or isinstance(
            value, Mapping
        ):
            out.update(flatten_config(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@contextlib.contextmanager
def start_run(
    name: str,
    *,
    tags: Mapping[str, str] | None = None,
    config: Any = None,
    seed: int | None = None,
    data_fingerprint: str | None = None,
    nested: bool = False,
    experiment: str = DEFAULT_EXPERIMENT,
) -> Iterator[mlflow.ActiveRun]:
    """Start a named, tagged run that logs its config, seed, code version and data
    fingerprint. Nested runs go under the active parent run."""
    if not nested or mlflow.active_run() is None:
        setup(experiment)
    all_tags = {"code_version": code_version()}
    if seed is not None:
        all_tags["seed"] = str(seed)
    if data_fingerprint:
        all_tags["data_fingerprint"] = data_fingerprint
    all_tags.update(tags or {})
    with mlflow.start_run(run_name=name, nested=nested, tags=all_tags) as run:
        try:
            if config is not None:
                params = {k: str(v)[:6000] for k, v in flatten_config(config).items()}
                mlflow.log_params(params)
            yield run
        except (RunInterrupted, KeyboardInterrupt):
            # MLflow would mark the run FAILED; a signal or Ctrl-C is a kill.
            mlflow.end_run(status="KILLED")
            raise


def end_stale_run(run_id: str) -> list[str]:
    """Mark a run left ``RUNNING`` by a killed process (and its running children) ``KILLED``;
    returns the ids it changed."""
    client = mlflow.MlflowClient()
    try:
        run = client.get_run(run_id)
    except Exception:  # noqa: BLE001 - a run from another store, or deleted: nothing to do
        return []
    ended = []
    children = client.search_runs(
        [run.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{run_id}' and attributes.status = 'RUNNING'",
    )
    for r in [*children, run]:
        if r.info.status == "RUNNING":
            client.set_terminated(r.info.run_id, status="KILLED")
            ended.append(r.info.run_id)
    return ended


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    """Log a batch of metrics in one call, dropping non-finite values (MLflow rejects NaN
    in some stores, and a missing metric is clearer than a fake one)."""
    clean = {
        k: float(v)
        for k, v in metrics.items()
        if v is not None and float(v) == float(v) and abs(float(v)) != float("inf")
    }
    if clean:
        mlflow.log_metrics(clean, step=step)
