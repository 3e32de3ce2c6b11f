"""What the PPO benchmarks share about ensemble members (``--members``): skipping a training
that already ran to its step count, and gathering the timing records of every member."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from agents.ppo import load_checkpoint_state, member_paths


def finished(job: Path, total_timesteps: int) -> dict | None:
    """The saved record of a training job that already ran to ``total_timesteps`` (its model,
    ``timing.json`` and ``curve.csv`` are in ``job``), with its curve rows under ``curve``; or
    ``None``. A benchmark adding ensemble members to a run keeps the run's own networks and
    their timing instead of re-training them (or overwriting the record with a zero-step
    resume)."""
    state = load_checkpoint_state(job)
    if state is None or int(state["num_timesteps"]) < total_timesteps:
        return None
    if not (job / "timing.json").exists():
        return None
    timing = json.loads((job / "timing.json").read_text())
    curve = job / "curve.csv"
    rows = (
        pd.read_csv(curve).to_dict(orient="records")
        if curve.exists() and curve.stat().st_size > 1
        else []
    )
    return {**timing, "curve": rows}


def timing_records(folders: list[Path]) -> pd.DataFrame | None:
    """The ``timing.json`` records of the policies in ``folders`` and of their ensemble
    members (``member`` 0 for a record written without one); ``None`` when there are none."""
    every = [f for folder in folders for f in [folder, *(m.parent for m in member_paths(folder))]]
    recs = [
        {"member": 0, **json.loads((f / "timing.json").read_text())}
        for f in every
        if (f / "timing.json").exists()
    ]
    return pd.DataFrame(recs) if recs else None
