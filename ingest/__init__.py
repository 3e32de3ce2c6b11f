"""Reading data: canonical tables and their schemas, loaders (Complete Journey, CSV/Parquet
folders, SQL databases), validation with clear errors, cleaning with a report, and the weekly
SKU panel.

The entry points::

    from ingest import load, save, clean, build_panel
    dataset = load("completejourney")          # or a folder, or a SQLAlchemy URL
    cleaned, report = clean(dataset)
    panel = build_panel(cleaned)
"""

from ingest.clean import CleaningConfig, CleaningReport, clean
from ingest.completejourney import CompleteJourneyConfig
from ingest.dataset import Dataset
from ingest.errors import ConfigError, DataError, DeadstockError
from ingest.loader import load, save
from ingest.panel import PANEL_COLUMNS, build_panel, load_panel
from ingest.validate import DataValidationError, Problem

__all__ = [
    "PANEL_COLUMNS",
    "CleaningConfig",
    "CleaningReport",
    "CompleteJourneyConfig",
    "ConfigError",
    "DataError",
    "DataValidationError",
    "Dataset",
    "DeadstockError",
    "Problem",
    "build_panel",
    "clean",
    "load",
    "load_panel",
    "save",
]
