"""Pricing while learning: PPO on the ``learning`` suite against the oracle.

``benchmarks/bench_ppo_suite.py --suite learning``: the same training jobs, evaluation, targets
and pages (``docs/benchmarks/ppo_learning.md`` and the ``learning-report`` section of
``docs/agents.md``); every option of that script but ``--suite`` applies.

Usage::

    .venv/bin/python benchmarks/bench_learning.py                          # 5 seeds, defaults
    .venv/bin/python benchmarks/bench_learning.py --seeds 0 --steps 300000 --episodes 500
    .venv/bin/python benchmarks/bench_learning.py --eval-only              # saved models
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_ppo_suite  # noqa: E402

SUITE = "learning"


def main(argv: list[str] | None = None) -> int:
    """``bench_ppo_suite.main`` with ``--suite learning``."""
    args = sys.argv[1:] if argv is None else argv
    return bench_ppo_suite.main(["--suite", SUITE, *args], script="bench_learning.py")


if __name__ == "__main__":
    sys.exit(main())
