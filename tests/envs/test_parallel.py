"""The batched env split over worker processes: same slots as the in-process env, in order."""

from __future__ import annotations

import numpy as np
import pytest

from envs import RULES_V0
from envs.batched import BatchedMarkdownEnv
from envs.markdown import EnvConfig, RuleViolationError
from envs.parallel import ParallelBatchedEnv
from ingest.errors import ConfigError
from simulator.demand import Catalog

pytestmark = pytest.mark.slow  # starts worker processes
# fork: the workers start in well under a second (the default, forkserver, re-imports)
START = "fork"


def test_workers_replay_their_in_process_blocks_and_report_errors(catalog: Catalog) -> None:
    cfg = EnvConfig(catalog=catalog, rules=RULES_V0, horizon_range=(2, 6), draw_parameters=True)
    par = ParallelBatchedEnv(cfg, 10, 2, seed=4, start_method=START)
    try:
        seeds = [int(c.generate_state(1, np.uint64)[0]) for c in np.random.SeedSequence(4).spawn(2)]
        blocks = [BatchedMarkdownEnv(cfg, 5, seed=s) for s in seeds]
        obs = par.reset()
        np.testing.assert_array_equal(obs, np.concatenate([b.reset() for b in blocks]))
        rng = np.random.default_rng(0)
        finished = 0
        for _ in range(12):
            masks = par.action_masks()
            np.testing.assert_array_equal(masks, np.concatenate([b.action_masks() for b in blocks]))
            actions = np.argmax(np.where(masks, rng.random(masks.shape), -1.0), axis=1)
            par.step_async(actions)
            obs, rewards, dones, infos = par.step_wait()
            expected = []
            for k, b in enumerate(blocks):
                b.step_async(actions[5 * k : 5 * k + 5])
                expected.append(b.step_wait())
            np.testing.assert_array_equal(obs, np.concatenate([e[0] for e in expected]))
            np.testing.assert_array_equal(rewards, np.concatenate([e[1] for e in expected]))
            np.testing.assert_array_equal(dones, np.concatenate([e[2] for e in expected]))
            for i in np.flatnonzero(dones):
                k, j = divmod(int(i), 5)
                np.testing.assert_array_equal(
                    infos[i]["terminal_observation"], expected[k][3][j]["terminal_observation"]
                )
                finished += 1
            assert all(not infos[i] for i in np.flatnonzero(~dones))
        assert finished > 5
        # a worker's error (a masked action in "raise" mode) reaches the parent
        masks = par.action_masks()
        bad = np.argmin(masks, axis=1)
        assert not masks[np.arange(10), bad].all()
        par.step_async(bad)
        with pytest.raises(RuleViolationError):
            par.step_wait()
    finally:
        par.close()


def test_bad_split_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="n_workers"):
        ParallelBatchedEnv(EnvConfig(), 1, 2)
