"""What one stage of the main job did, and the table of all stages."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass
class StageRecord:
    """What one stage did: its status, wall time, headline metrics and a one-line detail."""

    name: str
    status: str = "pending"
    seconds: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)
    detail: str = ""


def stages_frame(stages: list[StageRecord]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "stage": [s.name for s in stages],
            "status": [s.status for s in stages],
            "seconds": [round(s.seconds, 1) for s in stages],
            "detail": [s.detail for s in stages],
        }
    )
