"""The batched env split over worker processes, so that every core steps SKU slots.

One :class:`~envs.batched.BatchedMarkdownEnv` runs on one core. :class:`ParallelBatchedEnv`
splits ``n_slots`` into ``n_workers`` contiguous blocks, each a ``BatchedMarkdownEnv`` in its
own process, and steps them concurrently. Actions, observations, rewards, dones and the next
action masks live in shared memory (each worker reads and writes its own rows); the pipes
carry only the commands and the infos of finished slots. It is an SB3 ``VecEnv`` with
``action_masks()``, so ``MaskablePPO`` trains on it as on the single-process env.

Worker ``k`` is seeded with the ``k``-th child of ``SeedSequence(seed)``: the same seed and
``n_workers`` give the same episodes. The evaluation mode, ``policy_context()`` and the
episode log stay with the single-process env (:class:`~envs.batched.BatchedMarkdownEnv`),
where a policy may read the slots' state. An error in a worker (a masked action in
``"raise"`` mode, say) is raised in the parent; the env is then unusable and must be closed.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Sequence
from multiprocessing.connection import Connection
from multiprocessing.shared_memory import SharedMemory
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices

from envs.batched import _NO_INFO, BatchedMarkdownEnv
from envs.markdown import EnvConfig
from envs.observation import OBS_DIM, OBS_HIGH, OBS_LOW
from ingest.errors import ConfigError, DeadstockError


def _buffer_specs(n_slots: int, n_actions: int) -> dict[str, tuple[tuple[int, ...], type]]:
    """Shape and dtype of each array shared between the parent and the workers."""
    return {
        "actions": ((n_slots,), np.int64),
        "obs": ((n_slots, OBS_DIM), np.float32),
        "rewards": ((n_slots,), np.float32),
        "dones": ((n_slots,), np.bool_),
        "masks": ((n_slots, n_actions), np.bool_),
    }


def _views(
    memory: dict[str, SharedMemory], specs: dict[str, tuple[tuple[int, ...], type]]
) -> dict[str, np.ndarray]:
    return {
        k: np.ndarray(shape, dtype=dt, buffer=memory[k].buf) for k, (shape, dt) in specs.items()
    }


def _worker(
    remote: Connection,
    config: EnvConfig,
    names: dict[str, str],
    n_slots_total: int,
    lo: int,
    hi: int,
) -> None:
    """Serve slots ``lo:hi``: ``"seed"``, ``"reset"``, ``"step"``, ``"close"`` commands; the
    arrays go through shared memory, the reply carries the finished slots' infos."""
    specs = _buffer_specs(n_slots_total, config.rules.n_actions)
    memory = {k: SharedMemory(name=v) for k, v in names.items()}
    arrays = _views(memory, specs)
    env = BatchedMarkdownEnv(config, hi - lo)
    try:
        while True:
            command, data = remote.recv()
            if command == "seed":
                env.seed(data)
                remote.send(None)
            elif command == "reset":
                arrays["obs"][lo:hi] = env.reset()
                arrays["masks"][lo:hi] = env.action_masks()
                remote.send(None)
            elif command == "step":
                env.step_async(arrays["actions"][lo:hi])
                obs, rewards, dones, infos = env.step_wait()
                arrays["obs"][lo:hi] = obs
                arrays["rewards"][lo:hi] = rewards
                arrays["dones"][lo:hi] = dones
                arrays["masks"][lo:hi] = env.action_masks()
                # only finished slots carry an info; the shared empty one does not pickle
                remote.send({i: infos[i] for i in np.flatnonzero(dones).tolist()})
            elif command == "close":
                break
            else:  # pragma: no cover - a programming error in the parent
                raise ValueError(f"unknown command {command!r}")
    except DeadstockError as err:
        remote.send(("error", err))
    except (EOFError, KeyboardInterrupt):
        pass
    finally:
        del arrays
        for m in memory.values():
            m.close()
        remote.close()


class ParallelBatchedEnv(VecEnv):
    """``n_slots`` markdown episodes stepped by ``n_workers`` processes (an SB3 ``VecEnv``).

    Parameters
    ----------
    config : EnvConfig or None
        As for :class:`~envs.batched.BatchedMarkdownEnv` (training mode).
    n_slots : int
        Slots in all; split into ``n_workers`` nearly equal contiguous blocks.
    n_workers : int
        Worker processes (one per core is the point; 1 still works).
    seed : int or None
        Seed applied at the next :meth:`reset`.
    start_method : str
        ``multiprocessing`` start method for the workers.
    """

    def __init__(
        self,
        config: EnvConfig | None = None,
        n_slots: int = 1024,
        n_workers: int = 2,
        *,
        seed: int | None = None,
        start_method: str = "forkserver",
    ) -> None:
        self.config = config if config is not None else EnvConfig()
        if int(n_workers) < 1 or int(n_slots) < int(n_workers):
            raise ConfigError(
                f"n_workers = {n_workers}, n_slots = {n_slots}: expected 1 <= n_workers <= n_slots"
            )
        self.n_workers = int(n_workers)
        self.n_slots = int(n_slots)
        self._closed = False
        self._bounds = np.linspace(0, self.n_slots, self.n_workers + 1).astype(int)
        specs = _buffer_specs(self.n_slots, self.config.rules.n_actions)
        self._memory = {
            k: SharedMemory(create=True, size=max(int(np.prod(shape)) * np.dtype(dt).itemsize, 1))
            for k, (shape, dt) in specs.items()
        }
        self._arrays = _views(self._memory, specs)
        names = {k: m.name for k, m in self._memory.items()}
        ctx = mp.get_context(start_method)
        self._remotes: list[Connection] = []
        self._processes = []
        for k in range(self.n_workers):
            parent, child = ctx.Pipe()
            args = (child, self.config, names, self.n_slots, *self._bounds[k : k + 2].tolist())
            proc = ctx.Process(target=_worker, args=args, daemon=True)  # type: ignore[attr-defined]
            proc.start()
            child.close()
            self._remotes.append(parent)
            self._processes.append(proc)
        self._pending_seed = seed
        self._started = False
        self.render_mode = None
        super().__init__(
            self.n_slots,
            spaces.Box(OBS_LOW, OBS_HIGH, dtype=np.float32),
            spaces.Discrete(self.config.rules.n_actions),
        )

    def _gather(self) -> list[Any]:
        replies = [remote.recv() for remote in self._remotes]
        for reply in replies:
            if isinstance(reply, tuple) and len(reply) == 2 and reply[0] == "error":
                raise reply[1]
        return replies

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**63))  # type: ignore[operator]
        self._pending_seed = int(seed)
        return [self._pending_seed] * self.n_slots

    def reset(self) -> np.ndarray:
        if self._pending_seed is not None:
            children = np.random.SeedSequence(self._pending_seed).spawn(self.n_workers)
            for remote, child in zip(self._remotes, children, strict=True):
                remote.send(("seed", int(child.generate_state(1, np.uint64)[0])))
            self._gather()
            self._pending_seed = None
        for remote in self._remotes:
            remote.send(("reset", None))
        self._gather()
        self._started = True
        self.reset_infos = [{} for _ in range(self.n_slots)]
        return self._arrays["obs"].copy()

    def step_async(self, actions: np.ndarray) -> None:
        a = np.asarray(actions).reshape(-1)
        if a.shape != (self.n_slots,):
            raise DeadstockError(f"actions have shape {a.shape}; expected ({self.n_slots},)")
        self._arrays["actions"][:] = a
        for remote in self._remotes:
            remote.send(("step", None))

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        replies = self._gather()
        infos: list[dict[str, Any]] = [_NO_INFO] * self.n_slots  # type: ignore[list-item]
        for k, done_infos in enumerate(replies):
            offset = int(self._bounds[k])
            for i, info in done_infos.items():
                infos[offset + i] = info
        # copies: SB3 keeps the observations while the workers write the next ones
        arrays = self._arrays
        return arrays["obs"].copy(), arrays["rewards"].copy(), arrays["dones"].copy(), infos

    def action_masks(self) -> np.ndarray:
        """Allowed actions per slot, bool ``(n_slots, n_actions)`` (MaskablePPO's interface)."""
        if not self._started:
            raise DeadstockError("call reset() before action_masks()")
        return self._arrays["masks"].copy()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for remote in self._remotes:
            try:
                remote.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
        for proc in self._processes:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
        self._arrays = {}
        for m in self._memory.values():
            m.close()
            m.unlink()

    def __del__(self) -> None:  # workers are daemons; close them early when we can
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self, attr_name, value)

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        idx = list(self._get_indices(indices))
        if method_name == "action_masks":
            return list(self.action_masks()[idx])
        result = getattr(self, method_name)(*method_args, **method_kwargs)
        return [result for _ in idx]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]
