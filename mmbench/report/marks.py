"""Marks on boards that keep a reader from a wrong conclusion: degenerate models (at or below
the majority-class baseline, or collapsed onto one class) are labelled on every board, and
cells that perturb only modalities a model does not take say "not read" instead of a number."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import pandas as pd

from mmbench.stats.unread import NOT_READ, not_read
from mmbench.render.tables import Board, Column, Num, Table

DEGENERATE = "degenerate"
TAG = f" [{DEGENERATE}]"
NOTES = {
    DEGENERATE: f"[{DEGENERATE}]: the model's clean score is not above always predicting the majority class by "
                "more than its interval, or it predicts one class for nearly all rows (sanity check "
                "'degenerate'); its robustness numbers mean nothing.",
    NOT_READ: f"{NOT_READ}: the perturbed modalities are ones the model does not take, so the cell measures "
              "nothing and is left out of every average and the composite.",
}


def degenerate_models(sanity: pd.DataFrame) -> frozenset[tuple[str, str, str]]:
    """(dataset, model, recipe) of every model flagged by the ``degenerate`` check (any seed)."""
    if sanity.empty:
        return frozenset()
    flagged = sanity[(sanity["check"] == DEGENERATE) & ~sanity["passed"].astype(bool)]
    return frozenset(zip(flagged["dataset"], flagged["model"], flagged["recipe"], strict=True))


def mark_board(board: Board, degenerate: set[tuple[str, str]], modalities: tuple[str, ...],
               reads: Mapping[str, tuple[str, ...]]) -> Board:
    """``board`` with degenerate models' labels tagged and "not read" cells explained; boards
    without a typed table or a ``model`` column come back unchanged."""
    table = board.table
    headers = [c.header for c in table.columns] if table is not None else []
    if table is None or "model" not in headers:
        return board
    at_model = headers.index("model")
    at_recipe = headers.index("recipe") if "recipe" in headers else None
    used: set[str] = set()
    rows = tuple(_mark_row(row, table.columns, at_model, at_recipe, degenerate, modalities, reads, used)
                 for row in table.rows)
    if not used:
        return board
    note = " ".join([board.note, *(NOTES[u] for u in sorted(used))]).strip()
    return replace(board, table=Table(table.columns, rows, table.axis), note=note)


def _mark_row(row: tuple, columns: tuple[Column, ...], at_model: int, at_recipe: int | None,
              degenerate: set[tuple[str, str]], modalities: tuple[str, ...],
              reads: Mapping[str, tuple[str, ...]], used: set[str]) -> tuple:
    model = str(row[at_model])
    cells = list(row)
    for i, (value, column) in enumerate(zip(row, columns, strict=False)):
        target = column.target or column.short or column.header.split("@")[0]
        if isinstance(value, Num) and value.blank and not_read(target, model, modalities, reads):
            cells[i] = Num(None, note=NOT_READ)
            used.add(NOT_READ)
    recipe = str(row[at_recipe]) if at_recipe is not None else None
    if any(m == model and (recipe is None or r == recipe) for m, r in degenerate):
        cells[at_model] = model + TAG
        used.add(DEGENERATE)
    return tuple(cells)
