"""PPO training speed on the CPU and on a GPU: the same training run, timed per device.

Usage::

    # measure (on a machine with a GPU; the CPU rows use one torch thread, as the trainers do)
    .venv/bin/python benchmarks/bench_ppo_device.py --devices cpu,cuda --json runs/device.json
    # write the figures into docs/benchmarks/ppo_device.md from one or more measurement files
    .venv/bin/python benchmarks/bench_ppo_device.py --render runs/device.json runs/local.json

Each row trains masked PPO from scratch (``agents.ppo.train_ppo``, the ``markdown`` rule
profile, the synthetic training catalog of the standard suite, seed 0) for ``--steps``
SKU-weeks on one device and network size, and records wall seconds and SKU-weeks per second.
The default network is the project's (2 x 128); ``--wide`` adds a 2 x 1024 network with
minibatches of 8,192, the size at which a GPU starts to pay for its transfers. The
environment (numpy, the market step) always runs on the CPU: only the networks' forward and
backward passes move to the device.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

PAGE = ROOT / "docs" / "benchmarks" / "ppo_device.md"
PROFILE = "markdown"
NETWORKS = {"default": {}, "wide": {"net_arch": (1024, 1024), "batch_size": 8192}}


def _machine(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(0)
    threads = torch.get_num_threads()
    return f"{platform.processor() or platform.machine()} CPU, {threads} torch thread(s)"


def measure(devices: list[str], steps: int, networks: list[str], threads: int) -> list[dict]:
    """Train once per (device, network) and time it."""
    import torch

    from agents.ppo import PPOConfig, train_ppo
    from experiments.suite import RULE_PROFILES, training_catalog

    torch.set_num_threads(threads)
    rows = []
    for net in networks:
        for device in devices:
            config = replace(
                PPOConfig(seed=0, checkpoint_every=0, total_timesteps=steps, device=device),
                **NETWORKS[net],
            )
            t0 = time.perf_counter()
            result = train_ppo(
                config,
                RULE_PROFILES[PROFILE],
                catalog_fn=lambda n, rng: training_catalog(n, rng, profile=PROFILE),
            )
            wall = time.perf_counter() - t0
            row = {
                "device": device,
                "hardware": _machine(device),
                "network": "x".join(str(h) for h in config.net_arch),
                "batch_size": config.batch_size,
                "steps": int(result.num_timesteps),
                "wall_s": round(wall, 2),
                "steps_per_s": round(result.num_timesteps / wall, 1),
                "torch": torch.__version__,
                "host_cpus": os.cpu_count(),
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def render(files: list[Path]) -> Path:
    """Write the measurements of ``files`` into the page's ``device`` section."""
    from benchmarks._docpage import markdown_table, write_section

    frame = pd.DataFrame([r for f in files for r in json.loads(f.read_text())["rows"]])
    notes = [json.loads(f.read_text()).get("note", "") for f in files]
    base = frame[frame["device"] == "cpu"].set_index(["network", "source"])["steps_per_s"]
    frame["speed_vs_cpu"] = [
        r.steps_per_s / base.get((r.network, r.source), float("nan")) for r in frame.itertuples()
    ]
    cols = ["source", "device", "hardware", "network", "batch_size", "steps", "wall_s"]
    cols += ["steps_per_s", "speed_vs_cpu"]
    body = (
        "## Training speed: CPU against GPU\n\n"
        "Produced by `benchmarks/bench_ppo_device.py` (measure with `--devices cpu,cuda "
        "--json FILE` on each machine, then `--render FILE...`). One training run per row: "
        f"masked PPO from scratch on the `{PROFILE}` profile's training catalog, seed 0. "
        "`speed_vs_cpu` compares with the CPU row of the same machine and network.\n\n"
        + markdown_table(frame[cols])
        + "\n\n"
        + "\n".join(f"- {n}" for n in notes if n)
    )
    return write_section(PAGE, "device", body, title="PPO on a GPU")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--devices", default="cpu,cuda")
    p.add_argument("--steps", type=int, default=200_000)
    p.add_argument("--wide", action="store_true", help="also time a 2 x 1024 network")
    p.add_argument("--threads", type=int, default=1, help="torch threads on the CPU rows")
    p.add_argument("--source", default=platform.node(), help="label of this machine's rows")
    p.add_argument("--note", default="", help="a line about the machine, kept with the rows")
    p.add_argument("--json", type=Path, help="write the measurements here")
    p.add_argument("--render", type=Path, nargs="+", help="write the doc from these files")
    args = p.parse_args(argv)
    if args.render:
        print(render(args.render))
        return 0
    networks = ["default", "wide"] if args.wide else ["default"]
    rows = measure(args.devices.split(","), args.steps, networks, args.threads)
    for r in rows:
        r["source"] = args.source
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows, "note": args.note}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
