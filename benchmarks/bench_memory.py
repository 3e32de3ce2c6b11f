"""Demand with memory: PPO on the ``memory`` suite against the augmented-state DP.

``benchmarks/bench_ppo_suite.py --suite memory``: the same training jobs, evaluation, targets
and pages (``docs/benchmarks/ppo_memory.md`` and the ``memory-report`` section of
``docs/agents.md``); every option of that script but ``--suite`` applies.

Usage::

    .venv/bin/python benchmarks/bench_memory.py                          # 5 seeds, defaults
    .venv/bin/python benchmarks/bench_memory.py --seeds 0 --steps 300000 --episodes 500
    .venv/bin/python benchmarks/bench_memory.py --eval-only              # saved models
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_ppo_suite  # noqa: E402

SUITE = "memory"


def main(argv: list[str] | None = None) -> int:
    """``bench_ppo_suite.main`` with ``--suite memory``."""
    args = sys.argv[1:] if argv is None else argv
    return bench_ppo_suite.main(["--suite", SUITE, *args], script="bench_memory.py")


if __name__ == "__main__":
    sys.exit(main())
