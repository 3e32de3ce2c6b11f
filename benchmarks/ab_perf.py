"""Before/after check of a performance change: same numbers, and how much faster.

Loads the env and the DP of a git ref (extracted with ``git archive`` into a temporary
folder) and of the working tree into ONE process, then

* checks that both give the same numbers bit for bit: a SHA-256 over 60 steps of the batched
  env's observations, masks, rewards, dones and infos (training, drawn parameters and
  evaluation modes x the two rule sets of ``bench_envs.py``), and the DP's values, policy
  tables and ``evaluate_exact`` results on the four rule sets of ``bench_dp.py``;
* times both, interleaved round by round so that load on a shared machine hits both alike:
  batched-env SKU-weeks/s with masks (``bench_envs.py``'s loop) and DP solve time, by this
  process's CPU time (steadier than the wall clock on a shared machine).

Run ``.venv/bin/python benchmarks/ab_perf.py --base <ref>`` (a few minutes); ``--write`` puts
the table in ``docs/benchmarks/ab_perf.md``. Exit code 1 when the numbers differ.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "benchmarks" / "ab_perf.md"
_PACKAGES = ("envs", "simulator", "ingest", "agents", "benchmarks", "bench_envs", "bench_dp")


def load_tree(root: Path) -> dict[str, ModuleType]:
    """Import the benchmark helpers, env and DP modules of the tree at ``root``.

    The package modules are dropped from ``sys.modules`` first, so each tree gets its own
    copies; the returned modules keep referring to their own tree's code.
    """
    for name in list(sys.modules):
        if name.split(".")[0] in _PACKAGES:
            del sys.modules[name]
    sys.path[:0] = [str(root), str(root / "benchmarks")]
    try:
        modules = {
            name: importlib.import_module(name)
            for name in ("bench_envs", "bench_dp", "envs.batched", "envs.markdown", "agents.dp")
        }
    finally:
        del sys.path[:2]
    for name, module in modules.items():  # each tree really runs its own code
        if not Path(str(module.__file__)).resolve().is_relative_to(root.resolve()):
            raise RuntimeError(f"{name} was imported from {module.__file__}, not from {root}")
    return modules


def env_digest(m: dict[str, ModuleType], n_slots: int = 512, steps: int = 60) -> str:
    """SHA-256 of everything the batched env returns over ``steps`` steps, in 6 settings."""
    be, env_cls = m["bench_envs"], m["envs.batched"].BatchedMarkdownEnv
    cfg_cls = m["envs.markdown"].EnvConfig
    h = hashlib.sha256()
    for rules in be.RULE_SETS.values():
        for fixed, draw in ((False, False), (False, True), (True, False)):
            cfg = cfg_cls(
                rules=rules,
                catalog=be.source_catalog(),
                horizon_range=None if fixed else (4, 26),
                draw_parameters=draw,
            )
            env = env_cls(cfg, 500 if fixed else n_slots, seed=0, fixed_skus=fixed)
            h.update(env.reset().tobytes())
            rng = np.random.default_rng(1)
            for _ in range(steps):
                masks = env.action_masks()
                env.step_async(np.argmax(np.where(masks, rng.random(masks.shape), -1.0), axis=1))
                obs, rewards, dones, infos = env.step_wait()
                for x in (masks, obs, rewards, dones):
                    h.update(np.ascontiguousarray(x).tobytes())
                for i, info in enumerate(infos):
                    if info:
                        h.update(repr((i, info["episode"], info["TimeLimit.truncated"])).encode())
                        h.update(info["terminal_observation"].tobytes())
            if fixed:
                h.update(env.episode_totals().to_csv().encode())
    return h.hexdigest()


def _deepest_allowed(ctx: Any, masks: np.ndarray) -> np.ndarray:
    """A fixed policy for ``evaluate_exact``: the last allowed action."""
    return masks.shape[1] - 1 - np.argmax(masks[:, ::-1], axis=1)


def dp_results(m: dict[str, ModuleType]) -> list[Any]:
    """The DP's value, values, actions on the bench's rule sets, and two exact evaluations."""
    bd, dp = m["bench_dp"], m["agents.dp"]
    out: list[Any] = []
    for dispersion in (0.0, 0.3):
        for name, (rules, _) in bd.RULE_SETS.items():
            units, weeks = (300, 12) if name.startswith("all") else (2000, 26)
            sol = dp.solve(bd.sku(units, weeks, dispersion), rules, weeks)
            out += [sol.value, sol.values, sol.actions]
        for rules, _ in list(bd.RULE_SETS.values())[:3]:
            out.append(dp.evaluate_exact(bd.sku(300, 12, dispersion), rules, 12, _deepest_allowed))
    return out


def same(a: list[Any], b: list[Any]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def env_rate(m: dict[str, ModuleType], rules: Any, n_slots: int, steps: int) -> float:
    """SKU-weeks per CPU-second of ``action_masks() + step()`` (bench_envs.py's loop)."""
    be = m["bench_envs"]
    cfg = m["envs.markdown"].EnvConfig(
        rules=rules, catalog=be.source_catalog(), horizon_range=(4, 26)
    )
    env = m["envs.batched"].BatchedMarkdownEnv(cfg, n_slots, seed=0)
    env.reset()
    rng = np.random.default_rng(1)
    cpu = 0.0
    for i in range(steps + 10):  # 10 warm-up steps
        c0 = time.process_time()
        masks = env.action_masks()
        c1 = time.process_time()
        actions = np.argmax(np.where(masks, rng.random(masks.shape), -1.0), axis=1)
        c2 = time.process_time()
        env.step_async(actions)
        env.step_wait()
        if i >= 10:
            cpu += (c1 - c0) + (time.process_time() - c2)
    return n_slots * steps / cpu


def dp_cpu(m: dict[str, ModuleType], rules: Any, dispersion: float) -> float:
    """CPU seconds of one 2,000 units x 26 weeks x 8 depths solve."""
    cat = m["bench_dp"].sku(2000, 26, dispersion)
    c0 = time.process_time()
    m["agents.dp"].solve(cat, rules, 26)
    return time.process_time() - c0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="git ref to compare the working tree with")
    parser.add_argument("--slots", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    parser.add_argument("--dp-rounds", type=int, default=12)
    parser.add_argument("--write", action="store_true", help="write docs/benchmarks/ab_perf.md")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.base], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", args.base],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        trees = {"before": load_tree(Path(tmp)), "after": load_tree(ROOT)}

        print("checking the numbers ...", file=sys.stderr, flush=True)
        digests = {k: env_digest(m) for k, m in trees.items()}
        env_same = digests["before"] == digests["after"]
        dp_same = same(dp_results(trees["before"]), dp_results(trees["after"]))

        rows = []
        be = trees["after"]["bench_envs"]
        for label, rules_key in zip(("no rules", "rule set"), be.RULE_SETS, strict=True):
            print(f"timing the env, {label} ...", file=sys.stderr, flush=True)
            rates: dict[str, list[float]] = {"before": [], "after": []}
            for _ in range(args.rounds):
                for k, m in trees.items():
                    rules = m["bench_envs"].RULE_SETS[rules_key]
                    rates[k].append(env_rate(m, rules, args.slots, args.steps))
            b, a = np.median(rates["before"]), np.median(rates["after"])
            rows.append(
                f"| batched env, {label}, {args.slots:,} slots | SKU-weeks/s per CPU-second "
                f"| {b / 1e6:.2f} M | {a / 1e6:.2f} M | {a / b:.2f}x |"
            )
        for label in ("no rules", "markdown-only"):
            for dispersion, law in ((0.0, "Poisson"), (0.3, "NB")):
                print(f"timing the DP, {label}, {law} ...", file=sys.stderr, flush=True)
                cpu: dict[str, list[float]] = {"before": [], "after": []}
                for m in trees.values():
                    dp_cpu(m, m["bench_dp"].RULE_SETS[label][0], dispersion)  # warm-up
                for _ in range(args.dp_rounds):
                    for k, m in trees.items():
                        cpu[k].append(dp_cpu(m, m["bench_dp"].RULE_SETS[label][0], dispersion))
                b, a = np.median(cpu["before"]), np.median(cpu["after"])
                rows.append(
                    f"| DP {label}, {law}, 2,000 x 26 x 8 | CPU ms per solve "
                    f"| {b * 1e3:.1f} | {a * 1e3:.1f} | {b / a:.2f}x |"
                )

    load = os.getloadavg()[0]
    verdict = "the same bit for bit" if env_same and dp_same else "**DIFFERENT**"
    body = "\n".join(
        [
            "## Before/after",
            "",
            f"Command: `.venv/bin/python benchmarks/ab_perf.py --base {args.base} --write`, "
            f"run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; before = {commit}, "
            f"after = the working tree. One process, the two versions interleaved round by "
            f"round; medians of {args.rounds} env rounds of {args.steps} steps and "
            f"{args.dp_rounds} DP solves. Load average {load:.1f} (shared 2-core machine): "
            f"absolute figures are depressed, the ratios are the point.",
            "",
            f"Numbers: batched env (6 settings x 60 steps, SHA-256 of everything returned) "
            f"{'same' if env_same else 'DIFFERENT'}; DP values, policy tables and exact "
            f"evaluations {'same' if dp_same else 'DIFFERENT'}: {verdict}.",
            "",
            "| what | unit | before | after | speed-up |",
            "|---|---|---|---|---|",
            *rows,
        ]
    )
    print(body)
    if args.write:
        sys.path.insert(0, str(ROOT))
        from benchmarks._docpage import write_section

        write_section(PAGE, "ab_perf", body, title="Performance changes: before and after")
    return 0 if env_same and dp_same else 1


if __name__ == "__main__":
    raise SystemExit(main())
