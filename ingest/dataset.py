"""The :class:`Dataset`: canonical tables from one source, with where they came from."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass
class Dataset:
    """Canonical tables (see :mod:`ingest.schema`) loaded from one source.

    Parameters
    ----------
    tables : dict of str to DataFrame
        Table name to frame. ``products`` and ``sales`` are always present; optional tables
        (``stock``, ``interactions``, ``promotions``, ``baskets``) only when the source has
        them.
    source : str
        Human-readable description of the source (``"completejourney"``, a folder, a URL
        with the password masked).
    fingerprint : str
        Hash of the source's content; keys the panel cache and is logged with every run.
    notes : list of str
        Assumptions the loader made (for example "no stock levels in this source").
    report : list of dict
        Counted changes the loader made before validation (rows dropped, values derived),
        one dict per change with at least ``table``, ``action``, ``rows`` and ``reason``;
        cleaning copies them into its report so every dropped value is accounted for.
    """

    tables: dict[str, pd.DataFrame]
    source: str
    fingerprint: str
    notes: list[str] = field(default_factory=list)
    report: list[dict[str, object]] = field(default_factory=list)

    @property
    def products(self) -> pd.DataFrame:
        return self.tables["products"]

    @property
    def sales(self) -> pd.DataFrame:
        return self.tables["sales"]

    def get(self, name: str) -> pd.DataFrame | None:
        """Return an optional table, or ``None`` when the source does not have it."""
        return self.tables.get(name)

    def has(self, name: str) -> bool:
        return name in self.tables
