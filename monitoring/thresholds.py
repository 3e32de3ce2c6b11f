"""The thresholds a monitoring check is held to: one small frozen config."""

from __future__ import annotations

from dataclasses import dataclass

from ingest.errors import ConfigError


@dataclass(frozen=True)
class MonitorThresholds:
    """When a monitoring check counts as crossed.

    Parameters
    ----------
    psi_max : float
        A feature drifts when its PSI exceeds this *and* its KS test rejects at ``ks_alpha``.
        0.25 is the usual "major shift" line of the PSI (0.1-0.25 "moderate").
    ks_alpha : float
        Family-wise significance level of the two-sample KS tests of one pass (each row is
        tested at ``ks_alpha / n_rows``, Bonferroni).
    n_bins : int
        Most PSI bins: the reference sample's quantiles (equal-count bins, merged where
        quantiles tie, e.g. at a mass of zeros), open at both ends; fewer for small scopes
        (:data:`monitoring.drift.MIN_PER_BIN`).
    min_group_skus : int
        A category gets its own drift rows only when both samples hold at least this many
        SKUs (PSI on a handful of SKUs is noise).
    max_calibration_gap : float
        Calibration is off when the count-weighted mean gap between the observed dead-stock
        rate and the mean predicted risk over the score deciles (the expected calibration
        error) exceeds this.
    min_calibration_skus : int
        Fewest labelled SKUs for the calibration check to be read at all.
    max_forecast_ratio : float
        The demand model is off when its WMAPE on the new weeks exceeds its holdout WMAPE
        times this.
    min_adherence : float
        Plan adherence is off when fewer than this share of the SKU-weeks with an approved
        price and an observed sale were executed within ``price_tolerance``.
    price_tolerance : float
        Relative gap between an executed and an approved net price that still counts as
        the approved price (cents of rounding, loyalty-card rounding).
    """

    psi_max: float = 0.25
    ks_alpha: float = 0.01
    n_bins: int = 10
    min_group_skus: int = 20
    max_calibration_gap: float = 0.05
    min_calibration_skus: int = 50
    max_forecast_ratio: float = 1.25
    min_adherence: float = 0.9
    price_tolerance: float = 0.02

    def __post_init__(self) -> None:
        checks = {
            "psi_max": self.psi_max > 0,
            "ks_alpha": 0 < self.ks_alpha < 1,
            "n_bins": self.n_bins >= 2,
            "min_group_skus": self.min_group_skus >= 2,
            "max_calibration_gap": 0 < self.max_calibration_gap < 1,
            "min_calibration_skus": self.min_calibration_skus >= 1,
            "max_forecast_ratio": self.max_forecast_ratio >= 1,
            "min_adherence": 0 <= self.min_adherence <= 1,
            "price_tolerance": 0 <= self.price_tolerance < 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(
                    f"MonitorThresholds.{name} = {getattr(self, name)!r} is out of range; "
                    "see the field's documentation for the expected values"
                )
