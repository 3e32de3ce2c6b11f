"""The data stage of the pipeline: load, validate, clean, build the weekly panel."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ingest.clean import CleaningConfig, CleaningReport, clean
from ingest.completejourney import CompleteJourneyConfig
from ingest.dataset import Dataset
from ingest.describe import format_summary
from ingest.errors import ConfigError
from ingest.io import write_text_atomic
from ingest.loader import load
from ingest.panel import load_panel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataStageConfig:
    """Settings of the data stage.

    Parameters
    ----------
    source : str
        ``"completejourney"``, a folder of table files, or a SQLAlchemy URL.
    out_dir : str or None
        Folder for ``cleaning_report.json``/``.txt`` and ``data_summary.txt``; ``None`` writes
        nothing.
    use_cache : bool
        Read and write the canonical tables and the panel in the cache folder
        (``$DEADSTOCK_CACHE_DIR``, default ``.cache/deadstock``).
    quick : bool
        Keep only the ``quick_n_skus`` best-selling SKUs in the panel (for fast runs).
    quick_n_skus : int
        How many SKUs a quick run keeps.
    cleaning : CleaningConfig
        Imputation settings.
    """

    source: str = "completejourney"
    out_dir: str | None = "runs/data"
    use_cache: bool = True
    quick: bool = False
    quick_n_skus: int = 500
    cleaning: CleaningConfig = field(default_factory=CleaningConfig)

    def __post_init__(self) -> None:
        if not str(self.source).strip():
            raise ConfigError(
                "DataStageConfig.source is empty: give 'completejourney', a folder or a URL"
            )
        if self.quick_n_skus < 1:
            raise ConfigError(f"DataStageConfig.quick_n_skus={self.quick_n_skus}: expected >= 1")


@dataclass
class DataStageResult:
    """What the data stage produced."""

    dataset: Dataset
    """The cleaned dataset."""
    panel: pd.DataFrame
    """The weekly panel (all SKUs, or the quick subset)."""
    report: CleaningReport
    summary: str
    """Readable summary: tables, panel size, what cleaning changed."""
    paths: list[Path] = field(default_factory=list)
    """Files written to ``out_dir``."""


def _top_skus(panel: pd.DataFrame, n: int) -> pd.DataFrame:
    units = panel.groupby("sku", sort=False)["units"].sum()
    keep = units.sort_values(ascending=False, kind="stable").index[:n]
    return panel[panel["sku"].isin(keep)].reset_index(drop=True)


def run_data_stage(config: DataStageConfig) -> DataStageResult:
    """Load, validate, clean and build the panel for ``config.source``.

    Raises
    ------
    DataValidationError
        With every problem in the source.
    """
    cj = CompleteJourneyConfig(use_cache=config.use_cache)
    dataset = load(config.source, cj_config=cj)
    log.info("cleaning %s", dataset.source)
    cleaned, report = clean(dataset, config.cleaning)
    panel = load_panel(cleaned, config.cleaning, use_cache=config.use_cache)
    if config.quick:
        panel = _top_skus(panel, config.quick_n_skus)
    n_skus = panel["sku"].nunique()
    weeks = (int(panel["week"].min()), int(panel["week"].max())) if len(panel) else (0, 0)
    summary = "\n".join(
        [
            format_summary(cleaned),
            f"panel: {len(panel):,} rows, {n_skus:,} SKUs, weeks {weeks[0]}-{weeks[1]}"
            + (f" (quick: top {config.quick_n_skus} SKUs by units)" if config.quick else ""),
            report.to_text(),
        ]
    )
    paths: list[Path] = []
    if config.out_dir is not None:
        paths.extend(report.write(config.out_dir))
        paths.append(write_text_atomic(Path(config.out_dir) / "data_summary.txt", summary + "\n"))
    return DataStageResult(cleaned, panel, report, summary, paths)
