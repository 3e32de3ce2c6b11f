"""The seasonal profile of the demand model: a Fourier series over the 52 calendar weeks.

A category's log seasonal factor in calendar week ``w`` (0..51) is
``sum_k [s_k sin(2 pi k w / 52) + c_k cos(2 pi k w / 52)]`` for ``k = 1..n_harmonics``; the
fit estimates the coefficients per category (:mod:`simulator.fit`) and the catalog stores the
profile normalised to mean 1 (``Catalog.season``), so ``base_demand`` is demand at an average
week.
"""

from __future__ import annotations

import numpy as np

from simulator.demand import SEASON_PERIOD


def season_index(week: np.ndarray | int) -> np.ndarray:
    """Calendar season index (0..51) of 1-based panel weeks: week 1 is index 0, so a plan
    that starts after panel week ``L`` starts at index ``L % 52``."""
    return (np.asarray(week, dtype=np.int64) - 1) % SEASON_PERIOD


def fourier_basis(index: np.ndarray, n_harmonics: int) -> np.ndarray:
    """Fourier columns of season indices 0..51, shape ``(n, 2 * n_harmonics)``."""
    phase = 2.0 * np.pi * np.asarray(index, dtype=float) / SEASON_PERIOD
    cols = []
    for k in range(1, n_harmonics + 1):
        cols += [np.sin(k * phase), np.cos(k * phase)]
    return np.stack(cols, axis=-1) if cols else np.zeros((len(phase), 0))


def season_profile(theta_season: np.ndarray, n_harmonics: int) -> np.ndarray:
    """Seasonal factors for calendar weeks 0..51 from Fourier coefficients of shape
    ``(n, 2 * n_harmonics)``, normalised to mean 1 per row; shape ``(n, 52)``."""
    basis = fourier_basis(np.arange(SEASON_PERIOD), n_harmonics)  # (52, 2H)
    log_s = np.asarray(theta_season, dtype=float) @ basis.T
    s = np.exp(log_s - log_s.max(axis=1, keepdims=True))
    return s / s.mean(axis=1, keepdims=True)


def log_mean_factor(theta_season: np.ndarray, n_harmonics: int) -> np.ndarray:
    """Log of each row's mean seasonal factor over the year before normalisation, shape
    ``(n,)``: what moves from the season into the level when the profile is scaled to mean
    1 (:func:`season_profile`)."""
    basis = fourier_basis(np.arange(SEASON_PERIOD), n_harmonics)
    return np.log(np.exp(basis @ theta_season.T).mean(axis=0))
