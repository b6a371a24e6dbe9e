"""Tidy rows: one measurement per row; everything downstream is a pandas query on them."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class CellFacts:
    """What one evaluation cell measured (stored with its per-row outcomes); its tidy rows are
    these facts times every metric of the suite."""

    suite: str
    dataset: str
    model: str
    recipe: str
    seed: int
    family: str
    perturbation: str
    target: str
    severity: float

    def row(self, metric: str, value: float, n: int, ci_low: float = math.nan,
            ci_high: float = math.nan) -> TidyRow:
        return TidyRow(**asdict(self), metric=metric, value=value, n=n, ci_low=ci_low, ci_high=ci_high)


@dataclass(frozen=True)
class TidyRow(CellFacts):
    """One measurement: a cell's facts, one metric and its value with its interval."""

    metric: str
    value: float
    n: int
    ci_low: float = math.nan
    ci_high: float = math.nan


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(TidyRow))
SORT_KEYS = ["dataset", "model", "recipe", "seed", "family", "perturbation", "target",
             "severity", "metric"]


def rows_to_frame(rows: list[TidyRow], cells: list[str] | None = None) -> pd.DataFrame:
    """A frame with the tidy columns, sorted so equal runs give identical tables; with
    ``cells`` (one store key per row) also a ``cell`` column (not written to results.csv)."""
    frame = pd.DataFrame([asdict(r) for r in rows], columns=list(COLUMNS))
    if cells is not None:
        frame["cell"] = cells
    return frame.sort_values(SORT_KEYS, kind="stable").reset_index(drop=True)


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-able records (NaN becomes None)."""
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in rec.items()}
        for rec in frame.to_dict(orient="records")
    ]
