"""Tidy rows: one measurement per row; everything downstream is a pandas query on them."""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class CellFacts:
    """What one evaluation cell measured (stored with its per-row outcomes): the common columns,
    the rows it evaluated (``split``: the split or held-out group; ``rows``: the size of a fixed
    row subset, 0 for all), and ``facts``, the perturbation's own columns (``attack``, ``norm``,
    ``imputation``, ``kept``, ``corruption``, ...). Its tidy rows are these facts times every
    metric of the suite."""

    suite: str
    dataset: str
    model: str
    recipe: str
    seed: int
    family: str
    perturbation: str
    target: str
    severity: float
    split: str = "test"
    rows: int = 0
    facts: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def from_record(cls, raw: dict[str, Any]) -> CellFacts:
        """The facts of a stored record; keys this version does not know (a newer mmbench wrote
        them) are kept as perturbation facts, so they are exported, never make a cell unreadable."""
        known = {f.name for f in fields(cls)}
        extra = {k: v for k, v in raw.items() if k not in known and k not in RESERVED}
        own = {k: v for k, v in raw.items() if k in known}
        facts = own.pop("facts", None)
        return cls(**own, facts={**extra, **(facts if isinstance(facts, dict) else {})})

    def row(self, metric: str, value: float, n: int, ci_low: float = math.nan,
            ci_high: float = math.nan) -> TidyRow:
        return TidyRow(**asdict(self), metric=metric, value=value, n=n, ci_low=ci_low, ci_high=ci_high)


@dataclass(frozen=True)
class TidyRow(CellFacts):
    """One measurement: a cell's facts, one metric and its value with its interval."""

    metric: str = ""
    value: float = math.nan
    n: int = 0
    ci_low: float = math.nan
    ci_high: float = math.nan


#: the common columns, in results.csv order; perturbation facts go between ``rows`` and ``metric``
BASE_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(CellFacts) if f.name != "facts")
MEASURE_COLUMNS: tuple[str, ...] = ("metric", "value", "n", "ci_low", "ci_high")
#: names a stored fact can never take (the measure columns and the frame's own ``cell``)
RESERVED = frozenset(MEASURE_COLUMNS) | {"cell"}
#: the facts every stored evaluation cell has (no default), with their JSON types
REQUIRED_FACTS: dict[str, tuple[str, ...]] = {
    f.name: ("integer",) if f.name == "seed" else ("integer", "real") if f.name == "severity" else ("text",)
    for f in fields(CellFacts) if f.default is MISSING and f.default_factory is MISSING}
SORT_KEYS = ["dataset", "model", "recipe", "seed", "family", "perturbation", "target",
             "severity", "split", "rows", "metric"]


def columns_of(frame: pd.DataFrame) -> list[str]:
    """The tidy columns of ``frame`` in results.csv order (fact columns sorted by name)."""
    known = set(BASE_COLUMNS) | set(MEASURE_COLUMNS) | {"cell"}
    return [*BASE_COLUMNS, *sorted(c for c in frame.columns if c not in known), *MEASURE_COLUMNS]


def rows_to_frame(rows: list[TidyRow], cells: list[str] | None = None) -> pd.DataFrame:
    """A frame with the tidy columns (one per fact any row has; empty where a row lacks it),
    sorted so equal runs give identical tables; with ``cells`` (one store key per row) also a
    ``cell`` column (not written to results.csv)."""
    records = [{**{k: v for k, v in asdict(r).items() if k != "facts"}, **r.facts} for r in rows]
    frame = pd.DataFrame(records)
    frame = frame.reindex(columns=columns_of(frame)) if len(frame) else pd.DataFrame(
        columns=[*BASE_COLUMNS, *MEASURE_COLUMNS])
    if cells is not None:
        frame["cell"] = cells
    return frame.sort_values(SORT_KEYS, kind="stable").reset_index(drop=True)


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-able records (NaN becomes None)."""
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in rec.items()}
        for rec in frame.to_dict(orient="records")
    ]
