"""Which metric robustness scores are computed from (a suite's ``score_metric``), and which way
is better for it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class ScoreMetric:
    """The metric that scores, the composite and ``mmbench compare`` read (default accuracy).

    Worst cases take the minimum of a higher-is-better metric and the maximum of a
    lower-is-better one; corruption errors use ``1 - value`` or the value itself (so they assume
    a metric in [0, 1], as accuracy or an error rate)."""

    name: str = "accuracy"
    higher_is_better: bool = True

    @classmethod
    def of(cls, name: str) -> ScoreMetric:
        from mmbench.registry import METRICS

        return cls(name, bool(METRICS.get(name).higher_is_better))

    def rows(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame[frame["metric"] == self.name]

    def worst(self, grouped: Any) -> Any:
        """The worst value of a pandas group-by (or frame / series) along its default axis."""
        return grouped.min() if self.higher_is_better else grouped.max()

    def best(self, grouped: Any) -> Any:
        """The best value of a pandas group-by (or frame / series) along its default axis."""
        return grouped.max() if self.higher_is_better else grouped.min()

    def worst_of(self, values: pd.DataFrame | pd.Series, axis: int = 1) -> Any:
        return values.min(axis=axis) if self.higher_is_better else values.max(axis=axis)

    def error(self, values: Any) -> Any:
        """The error counterpart (0 = perfect) of values of this metric."""
        return 1 - values if self.higher_is_better else values

    @property
    def ascending(self) -> bool:
        """Sort order that puts the best first."""
        return not self.higher_is_better
