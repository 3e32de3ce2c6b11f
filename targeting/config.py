"""Settings of coupon targeting: the models compared, the time split, the list size."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ingest.errors import ConfigError
from targeting.evaluate import HORIZON_WEEKS, KS, N_BOOTSTRAP
from targeting.models import ALS, DEFAULT_MODELS, MODELS, ItemKNN

AUTO = "auto"
# The second cutoff lies this many weeks before the last possible one, so the two windows
# of buyers overlap by less than half.
CUTOFF_GAP_WEEKS = 8


@dataclass(frozen=True)
class TargetingConfig:
    """Coupon targeting (``[coupons]`` in a pipeline file, or a file of its own).

    Parameters
    ----------
    models : tuple of str
        Models compared on the time split (see :data:`targeting.models.MODELS`); baselines
        among them are marked as such in every table.
    model : str
        The model the target lists use: a name, or ``"auto"`` for the one with the highest
        mean recall@k (``k`` below) over the cutoffs.
    k : int
        Households per coupon (the target list's length).
    ks : tuple of int
        List lengths the evaluation reports recall@k and NDCG@k at.
    cutoffs : tuple of int or None
        Fit weeks of the time split; ``None`` = two cutoffs, the last one whose window of
        ``horizon_weeks`` weeks fits in the data and the one ``CUTOFF_GAP_WEEKS`` earlier.
    horizon_weeks : int
        Weeks after a cutoff whose buyers a ranking is scored against (and the weeks the
        expected reach refers to).
    weighting : {"log", "bm25"}
        How purchase occasions become confidences for the factorisation (and the item
        similarities).
    factors, iterations : int
        Latent dimensions and sweeps of ALS / BPR.
    regularization, alpha : float
        L2 penalty and confidence scale of ALS.
    n_bootstrap : int
        Resamples of SKUs for the intervals.
    seed : int
        Seed of the factorisations and the resamples.
    """

    models: tuple[str, ...] = DEFAULT_MODELS
    model: str = AUTO
    k: int = 50
    ks: tuple[int, ...] = KS
    cutoffs: tuple[int, ...] | None = None
    horizon_weeks: int = HORIZON_WEEKS
    weighting: Literal["bm25", "log"] = "log"
    factors: int = 64
    iterations: int = 15
    regularization: float = 0.05
    alpha: float = 1.0
    n_bootstrap: int = N_BOOTSTRAP
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = [m for m in self.models if m not in MODELS]
        if unknown or not self.models:
            raise ConfigError(
                f"coupons.models = {list(self.models)!r}; expected names among {sorted(MODELS)}"
            )
        if self.model != AUTO and self.model not in self.models:
            raise ConfigError(
                f"coupons.model = {self.model!r}; expected 'auto' or one of coupons.models "
                f"{list(self.models)}"
            )
        for name in ("k", "horizon_weeks", "factors", "iterations", "n_bootstrap"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"coupons.{name} = {getattr(self, name)!r}; expected >= 1")
        if not self.ks or min(self.ks) < 1:
            raise ConfigError(f"coupons.ks = {list(self.ks)!r}; expected list sizes >= 1")
        if self.cutoffs is not None and (not self.cutoffs or min(self.cutoffs) < 1):
            raise ConfigError(f"coupons.cutoffs = {self.cutoffs!r}; expected weeks >= 1")
        if self.regularization < 0 or self.alpha <= 0:
            raise ConfigError("coupons.regularization must be >= 0 and coupons.alpha > 0")

    @property
    def eval_ks(self) -> tuple[int, ...]:
        """The reported list sizes plus ``k`` (the reach of the target lists needs it)."""
        return tuple(sorted({*self.ks, self.k}))

    def model_params(self, name: str) -> dict[str, Any]:
        """Keyword arguments of model ``name`` from these settings."""
        if issubclass(MODELS[name], ItemKNN):
            return {"weighting": self.weighting}
        if not issubclass(MODELS[name], ALS):
            return {}
        params: dict[str, Any] = {
            "factors": self.factors,
            "iterations": self.iterations,
            "regularization": self.regularization,
            "weighting": self.weighting,
            "seed": self.seed,
        }
        if name != "bpr":
            params["alpha"] = self.alpha
        return params

    def default_cutoffs(self, last_week: int) -> tuple[int, ...]:
        """:attr:`cutoffs`, or the two latest that fit (see :attr:`cutoffs`)."""
        if self.cutoffs:
            return tuple(sorted(self.cutoffs))
        latest = last_week - self.horizon_weeks
        return (latest - CUTOFF_GAP_WEEKS, latest)
