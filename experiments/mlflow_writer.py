"""An SB3 ``KVWriter`` that sends each logger dump to MLflow as ONE ``log_metrics`` call.

SB3's logger collects ``rollout/*``, ``train/*`` and ``time/*`` values and "dumps" them once
per rollout. The stock MLflow recipe logs one metric per call; over a training run that is
thousands of HTTP/SQL round trips. This writer batches a whole dump into a single
:func:`experiments.tracking.log_metrics` call (which also drops non-finite values).

Examples
--------
>>> from stable_baselines3.common.logger import Logger, HumanOutputFormat
>>> logger = Logger(folder=None, output_formats=[MLflowOutputFormat()])  # doctest: +SKIP
>>> model.set_logger(logger)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from stable_baselines3.common.logger import KVWriter

from experiments import tracking

# SB3 logs these under time/; they are bookkeeping, not learning signals worth a chart.
_SKIPPED_PREFIXES = ("time/fps_",)


class MLflowOutputFormat(KVWriter):
    """Log every SB3 dump as one batched MLflow ``log_metrics`` call.

    Parameters
    ----------
    step_offset : int, default 0
        Added to SB3's step (``num_timesteps``) so a resumed run continues its curves.
    prefix : str, default ""
        Put before every key (e.g. ``"none/"`` when one run trains a policy per profile).
    log_fn : callable, optional
        ``log_fn(metrics: dict[str, float], step: int)``; defaults to
        :func:`experiments.tracking.log_metrics`. Tests pass a recorder here.

    Notes
    -----
    Only numeric scalars are logged; strings, videos and figures that SB3 may emit are
    skipped, as are keys excluded for the ``"mlflow"`` format by SB3's ``exclude`` argument.
    """

    def __init__(
        self,
        step_offset: int = 0,
        prefix: str = "",
        log_fn: Callable[[Mapping[str, float], int], None] | None = None,
    ) -> None:
        self.step_offset = int(step_offset)
        self.prefix = prefix
        self.log_fn = log_fn if log_fn is not None else _default_log
        self.n_calls = 0

    def write(
        self,
        key_values: dict[str, Any],
        key_excluded: dict[str, tuple[str, ...]],
        step: int = 0,
    ) -> None:
        metrics: dict[str, float] = {}
        for key, value in key_values.items():
            excluded = key_excluded.get(key) or ()
            if "mlflow" in excluded:
                continue
            if key.startswith(_SKIPPED_PREFIXES):
                continue
            if isinstance(value, bool):
                value = float(value)
            if isinstance(value, int | float | np.integer | np.floating):
                metrics[self.prefix + key] = float(value)
            elif isinstance(value, np.ndarray) and value.size == 1:
                metrics[self.prefix + key] = float(value.reshape(()))
        if metrics:
            self.log_fn(metrics, int(step) + self.step_offset)
            self.n_calls += 1

    def close(self) -> None:
        """Nothing to close: the MLflow run is owned by the caller."""


def _default_log(metrics: Mapping[str, float], step: int) -> None:
    tracking.log_metrics(metrics, step=step)
