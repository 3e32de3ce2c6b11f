"""PPO agents named on a benchmark's command line (``--model`` and ``--train-seeds``)."""

from __future__ import annotations

from collections.abc import Sequence

from experiments.evaluate import PolicyFactory, ppo_factory
from experiments.policy_model import load_policies
from ingest.errors import ConfigError


def ppo_factories(
    model: str | None, seeds: Sequence[int], suite: str, *, script: str
) -> dict[str, PolicyFactory]:
    """Factories of the PPO policies in ``model``: one training folder (label ``ppo``), or,
    with ``{seed}`` in it, one folder per training seed (labels ``ppo/s<seed>``).

    A folder with nothing loadable stops the script with a message that names it (no
    traceback). ``None`` gives no agents.
    """
    if not model:
        return {}
    pattern = model if "{seed}" in model else None
    agents: dict[str, PolicyFactory] = {}
    try:
        for s in seeds if pattern else [None]:
            folder = pattern.replace("{seed}", str(s)) if pattern else model
            label = "ppo" if s is None else f"ppo/s{s}"
            agents[label] = ppo_factory(dict(load_policies(folder)), suite)
    except ConfigError as err:
        raise SystemExit(f"{script} --model: {err}") from None
    return agents
