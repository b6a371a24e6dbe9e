"""Building blocks of scores: means over training seeds and areas under level curves.

Every score is a function of the rows of one (dataset, model, recipe) (:data:`KEY`), averaged
over training seeds first."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

KEY = ["dataset", "model", "recipe"]


def seed_mean(rows: pd.DataFrame, extra: list[str]) -> pd.DataFrame:
    """Mean value over training seeds per (dataset, model, recipe, *extra)."""
    return rows.groupby(KEY + extra, as_index=False, dropna=False)["value"].mean()


def area_under(levels: np.ndarray, values: np.ndarray, fixed_step: float | None = None) -> float:
    """Trapezoid area of value vs level divided by the level span (so in the value's units);
    ``fixed_step``: MultiBench's variant, consecutive levels assumed ``fixed_step`` apart and
    the area not normalised."""
    order = np.argsort(levels)
    levels, values = levels[order], values[order]
    if len(levels) < 2:
        return float(values[0]) if len(values) else float("nan")
    if fixed_step is not None:
        return float(np.sum((values[1:] + values[:-1]) / 2 * fixed_step))
    trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 has only trapz
    return float(trapezoid(values, levels) / (levels[-1] - levels[0]))


def curve_score(rows: pd.DataFrame, level: Callable[[pd.DataFrame], pd.Series],
                fixed_step: float | None = None) -> pd.Series:
    """Per (dataset, model, recipe): the area under the mean value against ``level(rows)``."""
    curve = rows.assign(level=level(rows)).groupby(KEY + ["level"])["value"].mean().reset_index()
    areas = {key: area_under(g["level"].to_numpy(), g["value"].to_numpy(), fixed_step)
             for key, g in curve.groupby(KEY)}
    return pd.Series(areas, dtype=float).rename_axis(KEY)
