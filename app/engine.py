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
default; it never imports Ray). :class:`RayEngine` runs each call as a Ray task: it connects
to the cluster at ``RAY_ADDRESS`` when that is set, and otherwise starts a local Ray with the
machine's cores (or uses the Ray this process already started). The shared object goes into
Ray's object store once; each worker process deserializes it once and keeps it for the
following blocks. At most :attr:`RayEngine.max_in_flight` blocks are submitted at a time, so
the driver's memory stays bounded by a few blocks' results.
"""

from __future__ import annotations

import logging
import os
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

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        self._ray = _connect(address, num_cpus)
        cpus = int(self._ray.cluster_resources().get("CPU", 1))
        self.max_in_flight = max(2, _IN_FLIGHT_PER_CPU * cpus)
        self._block = self._ray.remote(num_cpus=1)(_block_task)
        self._call = self._ray.remote(num_cpus=1)(_call_task)

    def map_blocks(self, fn: Callable[[S, B], T], blocks: Iterable[B], shared: S) -> Iterator[T]:
        ray = self._ray
        ref_box = [ray.put(shared)]
        pending: deque[Any] = deque()
        try:
            for block in blocks:
                pending.append(self._block.remote(fn, ref_box, block))
                if len(pending) >= self.max_in_flight:
                    yield ray.get(pending.popleft())
            while pending:
                yield ray.get(pending.popleft())
        finally:
            # A consumer that stops early (an error, a kill) leaves no task running.
            for ref in pending:
                ray.cancel(ref, force=True)

    def run_tasks(self, fn: Callable[[B], T], items: Sequence[B]) -> list[T]:
        ray = self._ray
        return list(ray.get([self._call.remote(fn, item) for item in items]))


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


def make_engine(name: str = "local", *, num_cpus: int | None = None) -> Engine:
    """The engine called ``name``: ``"local"``, or ``"ray"`` on the cluster at
    ``$RAY_ADDRESS`` (a local Ray with ``num_cpus`` or all cores when unset).

    Raises
    ------
    ConfigError
        For an unknown name, or a ``RAY_ADDRESS`` where no cluster answers (before any work).
    """
    check_engine(name)
    if name == "local":
        return LocalEngine()
    return RayEngine(os.environ.get(RAY_ADDRESS_VAR) or None, num_cpus=num_cpus)
