"""Boards as data: a :class:`Board` is a heading, a :class:`Table` of typed cells and a note.
The same board renders as a GitHub Markdown table (via tabulate, for ``LEADERBOARD.md``) and as
an HTML table (``report.html``, which sorts by the cells' numbers, colours them by their
column's direction and folds grid columns behind a selector)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from tabulate import tabulate

from mmbench.text import escaped


#: an interval whose longer side exceeds the shorter this many times is written ``[lo, hi]``
SKEW = 1.5


@dataclass(frozen=True)
class Num:
    """A number in a board: ``value`` (None: missing), the half-width ``hw`` of its 95% interval,
    the standard deviation ``sd`` across seeds, ``note`` (a short text after the number, such as
    the modality a worst case came from; without a number, why there is none, e.g. "not read"),
    ``fmt`` (its format), and where known the interval ``lo``/``hi`` and whether the model is
    ``separated`` from the column's best."""

    value: float | None
    hw: float | None = None
    sd: float | None = None
    note: str = ""
    fmt: str = ".4f"
    #: the interval itself, where known: written ``[lo, hi]`` instead of ``± hw`` when skewed
    lo: float | None = None
    hi: float | None = None
    #: whether the paired interval of the difference to the column's best excludes 0 (None:
    #: not known; boards then compare the intervals themselves)
    separated: bool | None = None

    @property
    def blank(self) -> bool:
        return self.value is None or bool(pd.isna(self.value))

    @property
    def skewed(self) -> bool:
        """The interval reaches further on one side than :data:`SKEW` times the other."""
        if self.blank or self.lo is None or self.hi is None or pd.isna(self.lo) or pd.isna(self.hi):
            return False
        down, up = float(self.value) - self.lo, self.hi - float(self.value)
        return max(down, up) > SKEW * min(down, up)

    def interval(self) -> str:
        """`` ± hw`` or, for a skewed interval, `` [lo, hi]``; empty without one."""
        if self.skewed:
            return f" [{self.lo:{self.fmt}}, {self.hi:{self.fmt}}]"
        return f" ± {self.hw:.4f}" if self.hw is not None and not pd.isna(self.hw) else ""

    def __str__(self) -> str:
        if self.blank:
            return self.note or "-"  # e.g. "not read": why there is no number
        text = f"{self.value:{self.fmt}}" + self.interval()
        if self.sd is not None and not pd.isna(self.sd):
            text += f" (sd {self.sd:.4f})"
        return f"{text} ({self.note})" if self.note else text


@dataclass(frozen=True)
class Column:
    """A board column. ``header`` is its full name (the Markdown header); ``better``: True when
    higher values are better, False when lower are, None when neither (colour then shows the
    value only); ``group``/``short``: the column belongs to a grid level (e.g. ``eps 0.05``) and
    is called ``short`` within it (e.g. ``fac``), so a wide grid can show one level at a time;
    ``term``: the glossary entry that defines it; ``target``: the modalities its cells perturb
    (``a+b``) where that is not ``short`` (an "only m" column removes every other one)."""

    header: str
    better: bool | None = None
    group: str = ""
    short: str = ""
    term: str = ""
    target: str = ""


@dataclass(frozen=True)
class Table:
    """Rows of cells (text, ints or :class:`Num`) under ``columns``; ``axis`` names what the
    columns' groups are (``eps``, ``severity``, ...)."""

    columns: tuple[Column, ...]
    rows: tuple[tuple[Any, ...], ...]
    axis: str = ""

    def markdown(self) -> str:
        return github(self.rows, [c.header for c in self.columns])


@dataclass(frozen=True)
class Board:
    """A heading, its table (or, from a family that renders its own, Markdown ``text``) and a
    note under it."""

    heading: str
    table: Table | None = None
    note: str = ""
    text: str = ""

    def markdown(self) -> str:
        body = self.table.markdown() if self.table is not None else self.text
        return f"{body}\n\n{self.note}" if self.note else body

    @classmethod
    def of(cls, board: Board | tuple[str, Any]) -> Board:
        """A family's board: a :class:`Board`, or a ``(heading, Markdown text or Table)`` pair."""
        if isinstance(board, Board):
            return board
        heading, body = board
        return cls(heading, table=body) if isinstance(body, Table) else cls(heading, text=str(body))


def github(lines: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """A GitHub Markdown table; cells are shown as given (no number parsing), with ``|`` and
    line breaks in text (user labels) escaped so they cannot break the table."""
    return tabulate([[cell(str(v) if isinstance(v, Num) else v) for v in line] for line in lines],
                    headers=[cell(h) for h in headers], tablefmt="github", disable_numparse=True)


def cell(value: Any) -> Any:
    """Text for a Markdown table cell or heading: HTML's ``& < >`` as entities (a label is never
    markup), ``|`` escaped as ``\\|``, line breaks as spaces, other control characters as
    visible escapes (``\\x1b``)."""
    if not isinstance(value, str):
        return value
    text = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")
    return escaped(text)


def half_width(rows: pd.DataFrame) -> pd.Series:
    """Half the width of each row's 95% interval."""
    return (rows["ci_high"] - rows["ci_low"]) / 2


def level_table(rows: pd.DataFrame, index: list[str], ascending: bool = False,
                zero_is_reference: bool = False, axis: str = "level") -> Table | None:
    """Mean value (over seeds) per ``index`` at each ``severity`` (one column per level of
    ``axis``), with the mean over the levels (without level 0 when ``zero_is_reference``: the
    unperturbed value shown for reference); rows sorted by that mean (best first)."""
    if rows.empty:
        return None
    table = rows.pivot_table(index=index, columns="severity", values="value", aggfunc="mean", sort=True)
    above = [c for c in table.columns if c > 0 or not zero_is_reference] or list(table.columns)
    mean = table[above].mean(axis=1).sort_values(ascending=ascending, kind="stable")
    lines = tuple((*(key if isinstance(key, tuple) else (key,)), *(Num(v) for v in table.loc[key]), Num(mean[key]))
                  for key in mean.index)
    better = not ascending
    levels = tuple(Column(f"{c:g}", better, group=f"{axis} {c:g}", short=f"{c:g}", term=axis)
                   for c in table.columns)
    return Table((*(Column(i, term=i) for i in index), *levels, Column("mean", better, term="mean")),
                 lines, axis)
