"""The batched env split over worker processes, so that every core steps SKU slots.

One :class:`~envs.batched.BatchedMarkdownEnv` runs on one core. :class:`ParallelBatchedEnv`
splits ``n_slots`` into ``n_workers`` contiguous blocks, each a ``BatchedMarkdownEnv`` in its
own process, and steps them concurrently: the parent sends each worker its slice of the
actions and gathers observations, rewards, dones, the finished slots' infos and the next
action masks in one round trip. It is an SB3 ``VecEnv`` with ``action_masks()``, so
``MaskablePPO`` trains on it as on the single-process env.

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
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices

from envs.batched import _NO_INFO, BatchedMarkdownEnv
from envs.markdown import EnvConfig
from envs.observation import OBS_HIGH, OBS_LOW
from ingest.errors import ConfigError, DeadstockError


def _worker(remote: Connection, config: EnvConfig, n_slots: int) -> None:
    """Serve one block of slots: ``("seed", s)``, ``("reset", None)``, ``("step", actions)``,
    ``("close", None)``; replies carry the next action masks so no extra round trip is needed."""
    env = BatchedMarkdownEnv(config, n_slots)
    try:
        while True:
            command, data = remote.recv()
            if command == "seed":
                env.seed(data)
                remote.send(None)
            elif command == "reset":
                remote.send((env.reset(), env.action_masks()))
            elif command == "step":
                env.step_async(data)
                obs, rewards, dones, infos = env.step_wait()
                # only finished slots carry an info; the shared empty one does not pickle
                done_infos = {i: infos[i] for i in np.flatnonzero(dones).tolist()}
                remote.send((obs, rewards, dones, done_infos, env.action_masks()))
            elif command == "close":
                break
            else:  # pragma: no cover - a programming error in the parent
                raise ValueError(f"unknown command {command!r}")
    except DeadstockError as err:
        remote.send(("error", err))
    except (EOFError, KeyboardInterrupt):
        pass
    finally:
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
        self._bounds = np.linspace(0, self.n_slots, self.n_workers + 1).astype(int)
        ctx = mp.get_context(start_method)
        self._remotes: list[Connection] = []
        self._processes = []
        for k in range(self.n_workers):
            parent, child = ctx.Pipe()
            size = int(self._bounds[k + 1] - self._bounds[k])
            proc = ctx.Process(  # type: ignore[attr-defined]
                target=_worker, args=(child, self.config, size), daemon=True
            )
            proc.start()
            child.close()
            self._remotes.append(parent)
            self._processes.append(proc)
        self._closed = False
        self._pending_seed = seed
        self._masks: np.ndarray | None = None
        self.render_mode = None
        rules = self.config.rules
        super().__init__(
            self.n_slots,
            spaces.Box(OBS_LOW, OBS_HIGH, dtype=np.float32),
            spaces.Discrete(rules.n_actions),
        )

    def _recv(self, remote: Connection) -> Any:
        reply = remote.recv()
        if isinstance(reply, tuple) and len(reply) == 2 and isinstance(reply[0], str):
            raise reply[1]
        return reply

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
            for remote in self._remotes:
                self._recv(remote)
            self._pending_seed = None
        for remote in self._remotes:
            remote.send(("reset", None))
        replies = [self._recv(remote) for remote in self._remotes]
        self._masks = np.concatenate([r[1] for r in replies])
        self.reset_infos = [{} for _ in range(self.n_slots)]
        return np.concatenate([r[0] for r in replies])

    def step_async(self, actions: np.ndarray) -> None:
        a = np.asarray(actions).reshape(-1)
        if a.shape != (self.n_slots,):
            raise DeadstockError(f"actions have shape {a.shape}; expected ({self.n_slots},)")
        for k, remote in enumerate(self._remotes):
            remote.send(("step", a[self._bounds[k] : self._bounds[k + 1]]))

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        replies = [self._recv(remote) for remote in self._remotes]
        infos: list[dict[str, Any]] = [_NO_INFO] * self.n_slots  # type: ignore[list-item]
        for k, reply in enumerate(replies):
            offset = int(self._bounds[k])
            for i, info in reply[3].items():
                infos[offset + i] = info
        self._masks = np.concatenate([r[4] for r in replies])
        return (
            np.concatenate([r[0] for r in replies]),
            np.concatenate([r[1] for r in replies]),
            np.concatenate([r[2] for r in replies]),
            infos,
        )

    def action_masks(self) -> np.ndarray:
        """Allowed actions per slot, bool ``(n_slots, n_actions)`` (MaskablePPO's interface)."""
        if self._masks is None:
            raise DeadstockError("call reset() before action_masks()")
        return self._masks.copy()

    def close(self) -> None:
        if self._closed:
            return
        for remote in self._remotes:
            try:
                remote.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
        for proc in self._processes:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
        self._closed = True

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
