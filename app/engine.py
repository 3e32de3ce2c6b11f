"""Where the heavy stages run: in this process (``local``) or on Ray (``ray``).

An :class:`Engine` does two things, and nothing about Ray leaves this module:

- :meth:`Engine.map_blocks`: map blocks of work (Catalog blocks, frames) through a function
  ``fn(shared, block)``, with one heavy object (a policy, a model) shared by every block and
  loaded once per worker, and yield the results in block order;
- :meth:`Engine.run_tasks`: run independent calls ``fn(item)`` and return their results in
  order.

The engines differ only in where the calls run, never in what they compute: the caller cuts
the blocks (a function of its config, not of the engine) and derives each block's seed from
its run seed and the block's index, so the same seed gives the same outputs on both engines.

:class:`LocalEngine` calls the function in this process, one block after the other (the
default; it never imports Ray). :class:`RayEngine` runs on Ray: it connects to the cluster
at ``RAY_ADDRESS`` when that is set, and otherwise starts a local Ray with the machine's
cores (or uses the Ray this process already started). Its ``run_tasks`` calls are Ray tasks;
its blocks are mapped in one of two modes (``ray_mode``):

- ``tasks`` (the default): each block is a Ray task. The shared object goes into Ray's object
  store once; each worker process deserializes it once and keeps it for the following
  blocks. At most :attr:`RayEngine.max_in_flight` blocks are submitted at a time, so the
  driver's memory stays bounded by a few blocks' results.
- ``data``: Ray Data ``map_batches`` over a dataset of block indices, with a callable class
  (:class:`_BlockMapper`) on a fixed pool of ``cpus - 1`` actors whose constructor loads the
  shared object once; ``batch_size=1`` (one block per call), results streamed back in block
  order (``preserve_order``). One CPU stays free for Ray Data's own tasks: a pool that takes
  every CPU hangs, so a 1-CPU cluster is refused.

Either mode stops the work in flight when its consumer stops early (an error, a kill).
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import socket
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal, Protocol, TypeVar

from ingest.errors import ConfigError

logger = logging.getLogger(__name__)

T = TypeVar("T")
B = TypeVar("B")
S = TypeVar("S")

EngineName = Literal["local", "ray"]
ENGINES: tuple[str, ...] = ("local", "ray")
RayMode = Literal["tasks", "data"]
#: How the Ray engine maps blocks: one Ray task per block, or Ray Data ``map_batches``
#: over an actor pool (see :class:`RayEngine`).
RAY_MODES: tuple[str, ...] = ("tasks", "data")
#: The environment variable naming an existing Ray cluster to connect to.
RAY_ADDRESS_VAR = "RAY_ADDRESS"
#: Seconds to wait for a cluster's address to accept a connection before refusing it.
CONNECT_TIMEOUT_S = 5.0
#: ``RAY_ADDRESS`` values that are not a host and port (Ray resolves them itself).
_SYMBOLIC_ADDRESSES = ("auto", "local")
#: Blocks in flight per CPU of the cluster: enough to keep every worker busy while the
#: driver consumes the previous results, few enough to bound the driver's memory.
_IN_FLIGHT_PER_CPU = 2


class Engine(Protocol):
    """Runs blocks of work and independent tasks (see the module docstring)."""

    name: str

    def map_blocks(
        self, fn: Callable[[S, B], T], blocks: Iterable[B], shared: S
    ) -> Iterator[T]:  # pragma: no cover - protocol
        """Yield ``fn(shared, block)`` for each block, in block order."""
        ...

    def run_tasks(
        self, fn: Callable[[B], T], items: Sequence[B]
    ) -> list[T]:  # pragma: no cover - protocol
        """``[fn(item) for item in items]``, each call possibly elsewhere."""
        ...


class LocalEngine:
    """Every call in this process, in order (the default engine)."""

    name = "local"

    def map_blocks(self, fn: Callable[[S, B], T], blocks: Iterable[B], shared: S) -> Iterator[T]:
        for block in blocks:
            yield fn(shared, block)

    def run_tasks(self, fn: Callable[[B], T], items: Sequence[B]) -> list[T]:
        return [fn(item) for item in items]


# A worker process's deserialized shared objects, by object-store id: a Ray worker runs many
# tasks, and a policy or model is loaded once per worker, not once per block.
_WORKER_SHARED: dict[str, Any] = {}
_WORKER_SHARED_MAX = 4


def _shared_in_worker(ref_box: list[Any]) -> Any:
    """The shared object of a task, from the worker's cache or the object store (the ref is
    passed inside a list so that Ray does not resolve it for every task)."""
    import ray

    ref = ref_box[0]
    key = ref.hex()
    if key not in _WORKER_SHARED:
        if len(_WORKER_SHARED) >= _WORKER_SHARED_MAX:
            _WORKER_SHARED.pop(next(iter(_WORKER_SHARED)))
        _WORKER_SHARED[key] = ray.get(ref)
    return _WORKER_SHARED[key]


def _block_task(fn: Callable[[Any, Any], Any], ref_box: list[Any], block: Any) -> Any:
    return fn(_shared_in_worker(ref_box), block)


def _call_task(fn: Callable[[Any], Any], item: Any) -> Any:
    return fn(item)


def _get(ray: Any, ref: Any) -> Any:
    """``ray.get(ref)``, raising a task's own exception as it is (a ``DataError`` stays a
    ``DataError`` with its one-line message, the worker's traceback as a note) rather than
    Ray's ``RayTaskError``, whose message carries the traceback the CLI would print."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as err:
        cause = getattr(err, "cause", None)
        if not isinstance(cause, Exception):
            raise
        cause.add_note(f"in a Ray task:\n{getattr(err, 'traceback_str', '') or err}")
        raise cause from None


class _BlockMapper:
    """The callable class of the ``data`` mode's ``map_batches``: Ray Data constructs one per
    actor of its pool, and the constructor loads the shared object from the object store once
    for every block that actor maps.

    Parameters
    ----------
    fn : callable
        ``fn(shared, block)``.
    shared_box : list
        ``[ref]``: the shared object's ref (in a list, so that Ray does not resolve it).
    block_refs : list
        The blocks' refs, by block index (each actor fetches only the blocks it maps).
    """

    def __init__(
        self, fn: Callable[[Any, Any], Any], shared_box: list[Any], block_refs: list[Any]
    ) -> None:
        import ray

        self._fn = fn
        self._shared = ray.get(shared_box[0])
        self._blocks = block_refs

    def __call__(self, batch: Any) -> Any:
        """Map a batch of block indices (a ``pyarrow.Table`` with column ``k``) to the same
        indices and their results, pickled (column ``out``). A block whose function raises
        returns the exception instead (``failed``), with the worker's traceback as a note,
        so that the driver raises it as it is (a ``DataError`` stays a ``DataError``) rather
        than as Ray Data's wrapper."""
        import traceback

        import pyarrow as pa
        import ray
        from ray import cloudpickle

        ks = batch.column("k").to_pylist()
        out, failed = [], []
        for k in ks:
            try:
                result = self._fn(self._shared, ray.get(self._blocks[k]))
            except Exception as err:
                err.add_note(f"in a Ray Data actor, block {k}:\n{traceback.format_exc()}")
                result = err
            out.append(cloudpickle.dumps(result, protocol=5))
            failed.append(isinstance(result, Exception))
        return pa.table(
            {
                "k": pa.array(ks, pa.int64()),
                "out": pa.array(out, pa.large_binary()),
                "failed": pa.array(failed, pa.bool_()),
            }
        )


def _quiet_ray_data() -> Any:
    """``ray.data``, imported with its console handler and progress bars off: its log
    records go to the process's own ``logging`` handlers (warnings and errors only) and to
    the Ray session's ``ray-data.log``."""
    import ray.data

    data_logger = logging.getLogger("ray.data")
    for handler in list(data_logger.handlers):
        if type(handler).__name__ == "PlainRayHandler":  # Ray Data's console handler
            data_logger.removeHandler(handler)
    data_logger.propagate = True
    data_logger.setLevel(logging.WARNING)
    return ray.data


class RayEngine:
    """Every call a Ray task on the cluster at ``address`` (or a local Ray).

    Parameters
    ----------
    address : str or None
        A Ray cluster's address (``host:port``, ``ray://host:10001`` or ``auto``); ``None``
        uses the Ray this process already started, or starts a local one with
        ``num_cpus`` CPUs.
    num_cpus : int or None
        CPUs of a local Ray (default: the machine's cores).
    """

    name = "ray"

    def __init__(
        self, address: str | None = None, num_cpus: int | None = None, mode: str = "tasks"
    ) -> None:
        check_ray_mode(mode)
        self._ray = _connect(address, num_cpus)
        self.mode = mode
        self.cpus = int(self._ray.cluster_resources().get("CPU", 1))
        if mode == "data" and self.cpus < 2:
            raise ConfigError(
                f"ray_mode = 'data': the Ray cluster has {self.cpus} CPU; expected at least 2 "
                "(the actor pool takes all but one, which Ray Data keeps for its own tasks; "
                "a pool that takes every CPU hangs), or ray_mode = 'tasks'"
            )
        self.max_in_flight = max(2, _IN_FLIGHT_PER_CPU * self.cpus)
        self._block = self._ray.remote(num_cpus=1)(_block_task)
        self._call = self._ray.remote(num_cpus=1)(_call_task)

    def map_blocks(self, fn: Callable[[S, B], T], blocks: Iterable[B], shared: S) -> Iterator[T]:
        """``fn(shared, block)`` for each block, in block order, as Ray tasks (``tasks``
        mode) or Ray Data ``map_batches`` over an actor pool (``data`` mode)."""
        if self.mode == "data":
            return self._map_blocks_data(fn, blocks, shared)
        return self._map_blocks_tasks(fn, blocks, shared)

    def _map_blocks_tasks(
        self, fn: Callable[[S, B], T], blocks: Iterable[B], shared: S
    ) -> Iterator[T]:
        ray = self._ray
        ref_box = [ray.put(shared)]
        pending: deque[Any] = deque()
        try:
            for block in blocks:
                pending.append(self._block.remote(fn, ref_box, block))
                if len(pending) >= self.max_in_flight:
                    yield _get(ray, pending.popleft())
            while pending:
                yield _get(ray, pending.popleft())
        finally:
            # A consumer that stops early (an error, a kill) leaves no task running.
            for ref in pending:
                ray.cancel(ref, force=True)

    def _map_blocks_data(
        self, fn: Callable[[S, B], T], blocks: Iterable[B], shared: S
    ) -> Iterator[T]:
        """The ``data`` mode: a dataset of block indices mapped by :class:`_BlockMapper` with
        ``batch_size=1`` on a pool of ``cpus - 1`` actors, streamed back in block order."""
        ray = self._ray
        ray_data = _quiet_ray_data()
        shared_box = [ray.put(shared)]
        # Every block goes to the object store before the dataset starts (its rows are fixed
        # up front): the driver keeps only refs, and the object store spills when full.
        block_refs = [ray.put(block) for block in blocks]
        if not block_refs:
            return
        n = len(block_refs)
        ds = ray_data.from_items([{"k": k} for k in range(n)], override_num_blocks=n)
        ctx = ds.context
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        ctx.execution_options.preserve_order = True
        ctx.execution_options.verbose_progress = False
        ds = ds.map_batches(
            _BlockMapper,
            fn_constructor_args=(fn, shared_box, block_refs),
            batch_size=1,
            batch_format="pyarrow",
            concurrency=max(1, min(self.cpus - 1, n)),
            num_cpus=1,
        )
        rows = iter(ds.iter_rows())
        try:
            for k, row in enumerate(rows):
                if row["k"] != k:  # preserve_order guarantees it; a silent reorder would not
                    raise RuntimeError(f"Ray Data returned block {row['k']} where {k} was due")
                result = pickle.loads(row["out"])
                if row["failed"]:
                    raise result
                yield result
        finally:
            # A consumer that stops early (an error, an interrupt) shuts the execution down:
            # its actors end and no block is left running. A killed driver runs no finally;
            # Ray then ends the actors of the dead job itself.
            close = getattr(rows, "close", None)
            if close is not None:
                close()

    def run_tasks(self, fn: Callable[[B], T], items: Sequence[B]) -> list[T]:
        ray = self._ray
        return [_get(ray, ref) for ref in [self._call.remote(fn, item) for item in items]]


def _check_reachable(address: str) -> None:
    """Refuse an address nothing listens on, in seconds rather than Ray's minute of retries."""
    if address in _SYMBOLIC_ADDRESSES:
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ConfigError(
            f"{RAY_ADDRESS_VAR} = {address!r}: expected a Ray cluster address such as "
            "'head-node:6379' or 'ray://head-node:10001' (or unset it for a local Ray)"
        )
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as err:
        raise ConfigError(
            f"{RAY_ADDRESS_VAR} = {address!r}: no Ray cluster answers there "
            f"({err.strerror or type(err).__name__}); expected the address of a running "
            "cluster, or unset it for a local Ray"
        ) from None


def _connect(address: str | None, num_cpus: int | None, *, who: str = "engine = 'ray'") -> Any:
    """The ``ray`` module, initialized (see :class:`RayEngine`); ``who`` names the caller in
    the message of a local Ray that does not start."""
    if address:
        _check_reachable(address)
    try:
        import ray
    except ImportError:  # pragma: no cover - ray is a dependency
        raise ConfigError(
            "engine = 'ray' needs the ray package (pip install 'ray[data]')"
        ) from None
    if ray.is_initialized():
        return ray
    # Set before ray.init: nothing may phone home.
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    # ray.init installs its own SIGTERM handler; the process's (the run's) stay in charge.
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        if address:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(
                num_cpus=num_cpus or os.cpu_count() or 1,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
    except Exception as err:  # Ray raises bare Exceptions (e.g. a node start-up timeout)
        where = f"{RAY_ADDRESS_VAR} = {address!r}" if address else who
        raise ConfigError(
            f"{where}: Ray did not start ({str(err).strip().splitlines()[0]}); expected a "
            "running cluster's address, or none for a local Ray"
        ) from None
    finally:
        for sig, handler in handlers.items():
            if handler is not None:
                signal.signal(sig, handler)
    logger.info("Ray: %s", ray.cluster_resources())
    return ray


@contextmanager
def ray_running(num_cpus: int | None = None, *, who: str = "engine = 'ray'") -> Iterator[Any]:
    """Ray itself, for a caller that needs more than an :class:`Engine` (``deadstock sweep``
    runs Ray Tune): the Ray this process already runs (left running at the end), else the
    cluster at ``$RAY_ADDRESS`` or a local Ray with ``num_cpus`` CPUs (default: the
    machine's cores), connected as :class:`RayEngine` connects and shut down at the end.

    Yields
    ------
    module
        The initialized ``ray`` module.

    Raises
    ------
    ConfigError
        As :class:`RayEngine`: a ``RAY_ADDRESS`` where no cluster answers, or a Ray that
        does not start (the message names ``who``).
    """
    import ray

    started = not ray.is_initialized()
    handle = _connect(os.environ.get(RAY_ADDRESS_VAR) or None, num_cpus, who=who)
    try:
        yield handle
    finally:
        if started:
            handle.shutdown()


def check_engine(name: str) -> None:
    """Refuse an engine name that is not one of :data:`ENGINES`."""
    if name not in ENGINES:
        raise ConfigError(f"engine = {name!r}: expected 'local' or 'ray'")


def check_ray_mode(mode: str) -> None:
    """Refuse a Ray mode that is not one of :data:`RAY_MODES`."""
    if mode not in RAY_MODES:
        raise ConfigError(f"ray_mode = {mode!r}: expected 'tasks' or 'data'")


def make_engine(
    name: str = "local", *, num_cpus: int | None = None, ray_mode: str = "tasks"
) -> Engine:
    """The engine called ``name``: ``"local"``, or ``"ray"`` on the cluster at
    ``$RAY_ADDRESS`` (a local Ray with ``num_cpus`` or all cores when unset), mapping blocks
    as Ray tasks (``ray_mode = "tasks"``) or Ray Data ``map_batches`` (``"data"``).

    Raises
    ------
    ConfigError
        For an unknown name or mode, a ``RAY_ADDRESS`` where no cluster answers, or the
        ``data`` mode on a 1-CPU cluster (before any work).
    """
    check_engine(name)
    check_ray_mode(ray_mode)
    if name == "local":
        return LocalEngine()
    return RayEngine(os.environ.get(RAY_ADDRESS_VAR) or None, num_cpus=num_cpus, mode=ray_mode)
