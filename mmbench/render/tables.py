"""Markdown tables (GitHub style, via tabulate) for the leaderboard's boards."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
from tabulate import tabulate


def github(lines: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """A GitHub Markdown table; cells are shown as given (no number parsing), with ``|`` and
    line breaks in text (user labels) escaped so they cannot break the table."""
    return tabulate([[cell(v) for v in line] for line in lines], headers=[cell(h) for h in headers],
                    tablefmt="github", disable_numparse=True)


def cell(value: Any) -> Any:
    """Text for a Markdown table cell or heading: HTML's ``& < >`` as entities (a label is never
    markup), ``|`` escaped as ``\\|``, line breaks as spaces."""
    if not isinstance(value, str):
        return value
    text = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def pm(value: float | None, hw: float | None = None) -> str:
    """``value ± half-width`` (``-`` for a missing value, no ``±`` without an interval)."""
    if value is None or pd.isna(value):
        return "-"
    return f"{value:.4f}" if hw is None or pd.isna(hw) else f"{value:.4f} ± {hw:.4f}"


def half_width(rows: pd.DataFrame) -> pd.Series:
    """Half the width of each row's 95% interval."""
    return (rows["ci_high"] - rows["ci_low"]) / 2


def level_table(rows: pd.DataFrame, index: list[str], ascending: bool = False,
                zero_is_reference: bool = False) -> str | None:
    """Mean value (over seeds) per ``index`` at each ``severity``, with the mean over the levels
    (without level 0 when ``zero_is_reference``: the unperturbed value shown for reference);
    rows sorted by that mean (best first)."""
    if rows.empty:
        return None
    table = rows.pivot_table(index=index, columns="severity", values="value", aggfunc="mean", sort=True)
    above = [c for c in table.columns if c > 0 or not zero_is_reference] or list(table.columns)
    mean = table[above].mean(axis=1).sort_values(ascending=ascending, kind="stable")
    lines = [[*(key if isinstance(key, tuple) else (key,)), *(pm(v) for v in table.loc[key]), pm(mean[key])]
             for key in mean.index]
    levels = [f"{c:g}" for c in table.columns]
    return github(lines, [*index, *levels, "mean"])
