"""Boards as HTML tables for ``report.html``: typed cells carry their number (``data-v``, which
the page's script sorts by), a background colour for their place within the column (green for
the column's best, red for its worst when the column has a direction; blue intensity when it
has none), and a hover title saying what they are. Wide grids (eps, severity, views) fold
behind a selector. Every piece of text is escaped; nothing here emits script."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from mmbench.render.tables import Board, Column, Num, Table

#: a table with more grid columns than this shows one grid level at a time (a selector)
FOLD = 8
#: columns that name a row (joined in hover titles)
KEYS = ("model", "recipe", "imputation")


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def term_id(term: str) -> str:
    """The glossary anchor of a term."""
    return "term-" + re.sub(r"[^a-z0-9]+", "-", term.lower()).strip("-")


def board_html(board: Board, table_id: str, terms: Mapping[str, str], level: int = 4) -> str:
    """The board's heading, its table (typed or, for a Markdown board, parsed) and its note."""
    table = board.table if board.table is not None else markdown_table(board.text)
    parts = [f"<h{level}>{esc(board.heading)}</h{level}>"]
    if table is not None:
        folded = _folds(table)
        if folded:
            parts.append(_selector(table, table_id, folded))
        parts.append(f'<div class="tablewrap"><table class="board" id="{esc(table_id)}">'
                     f"{_head(table, terms, bool(folded))}{_body(table, terms, bool(folded))}</table></div>")
    if board.table is None:  # a Markdown board's paragraphs
        parts += [f'<p class="note">{esc(html.unescape(line.strip()))}</p>' for line in board.text.splitlines()
                  if line.strip() and not line.startswith("|")]
    if board.note:
        parts.append(f'<p class="note">{esc(board.note)}</p>')
    return "\n".join(parts)


def _folds(table: Table) -> list[str]:
    """The grid levels to choose from, when the grid is too wide to show at once."""
    groups = list(dict.fromkeys(c.group for c in table.columns if c.group))
    grid = sum(1 for c in table.columns if c.group)
    return groups if len(groups) > 1 and grid > FOLD else []


def _selector(table: Table, table_id: str, groups: Sequence[str]) -> str:
    options = "".join(f'<option value="{esc(g)}">{esc(g)}</option>' for g in groups)
    return (f'<label class="fold">{esc(table.axis or "grid")}: <select class="fold-select" '
            f'data-table="{esc(table_id)}">{options}<option value="">all ({len(groups)})</option>'
            "</select></label>")


def _numeric(table: Table, i: int) -> bool:
    return any(isinstance(row[i], (Num, int, float)) and not isinstance(row[i], bool) for row in table.rows)


def _head(table: Table, terms: Mapping[str, str], folded: bool) -> str:
    cells = []
    for i, col in enumerate(table.columns):
        attrs = "" if _numeric(table, i) else ' data-kind="text"'
        if col.better is not None:
            attrs += f' data-better="{int(col.better)}"'
        if folded and col.group:
            attrs += f' data-group="{esc(col.group)}"'
        name = col.short if folded and col.group and col.short else col.header
        link = ""
        if col.term in terms:
            link = f' <a class="term" href="#{term_id(col.term)}" title="{esc(terms[col.term])}">?</a>'
        cells.append(f'<th scope="col" title="{esc(col.header)}"{attrs}><button class="sort" type="button">'
                     f"{esc(name).replace('_', '_<wbr>')}</button>{link}</th>")
    return f"<thead><tr>{''.join(cells)}</tr></thead>"


def _body(table: Table, terms: Mapping[str, str], folded: bool) -> str:
    colours = [_colours(table, i, col) for i, col in enumerate(table.columns)]
    heads = [c.header for c in table.columns]
    rows = []
    for r, row in enumerate(table.rows):
        label = ", ".join(str(row[heads.index(k)]) for k in KEYS if k in heads)
        model = f' data-model="{esc(row[heads.index("model")])}"' if "model" in heads else ""
        cells = [_cell(value, col, label, colours[i][r], terms, folded) for i, (value, col)
                 in enumerate(zip(row, table.columns, strict=True))]
        rows.append(f"<tr{model}>{''.join(cells)}</tr>")
    return f"<tbody>{''.join(rows)}</tbody>"


def _cell(value: Any, col: Column, label: str, colour: str, terms: Mapping[str, str], folded: bool) -> str:
    group = f' data-group="{esc(col.group)}"' if folded and col.group else ""
    if not isinstance(value, Num):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return f'<td class="num" data-v="{value}"{group}>{esc(value)}</td>'
        return f'<td class="text"{group}>{esc(value)}</td>'
    if value.blank:
        why = value.note or "not measured"
        return f'<td class="num" data-v="" title="{esc(col.header)}: {esc(why)}"{group}>{esc(value.note or "-")}</td>'
    extra = "".join(f'<span class="extra">{esc(t)}</span>'
                    for t in (f"sd {value.sd:.4f}" if value.sd is not None and value.sd == value.sd else "",
                              f"({value.note})" if value.note else "") if t)
    shown = value.interval().strip()
    hw = f'<span class="hw">{esc(shown)}</span>' if shown else ""
    title = f"{col.header} of {label}: {value}" if label else f"{col.header}: {value}"
    if value.skewed:
        title += f" (95% interval; ± {value.hw:.4f} as a half-width)"
    elif hw:
        title += " (± half-width of the 95% interval)"
    if col.term in terms:
        title += f". {terms[col.term]}"
    style = f' style="background:{colour}"' if colour else ""
    return (f'<td class="num" data-v="{value.value:.10g}" title="{esc(title)}"{style}{group}>'
            f"{esc(format(value.value, value.fmt))}{hw}{extra}</td>")


def _colours(table: Table, i: int, col: Column) -> list[str]:
    """Each row's background for column ``i``: its value's place between the column's extremes,
    given only where the model is separated from the column's best (the paired interval of the
    difference excludes 0, else the two intervals do not overlap); one tied with the best shares
    its colour. Without intervals (Shapley values, ...) every value is placed."""
    nums = [row[i] if isinstance(row[i], Num) and not row[i].blank else None for row in table.rows]
    present = [float(n.value) for n in nums if n is not None]
    if len(present) < 2 or max(present) == min(present):
        return [""] * len(nums)
    low, high = min(present), max(present)
    lead = max((n for n in nums if n is not None), key=lambda n: n.value if col.better is not False else -n.value)
    return [_shade((float((n if col.better is None else _tied(n, lead)).value) - low) / (high - low), col.better)
            if n is not None else "" for n in nums]


def _tied(num: Num, lead: Num) -> Num:
    """``lead`` where ``num`` is not separated from it, else ``num`` (whose place then shows)."""
    if num.separated is not None:
        return num if num.separated else lead
    if num.hw is None or lead.hw is None or pd.isna(num.hw) or pd.isna(lead.hw):
        return num
    return lead if abs(float(num.value) - float(lead.value)) <= num.hw + lead.hw else num


def _shade(t: float, better: bool | None) -> str:
    if better is None:
        return f"hsl(212, 70%, {96 - 22 * t:.0f}%)"
    good = t if better else 1 - t
    return f"hsl({8 + 112 * good:.0f}, 62%, {88 - 4 * abs(good - 0.5):.0f}%)"


def markdown_table(text: str) -> Table | None:
    """The first GitHub table of a Markdown board (a family that renders its own), as a table
    of text cells (the page's script still sorts them by their leading numbers)."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    if len(lines) < 2:
        return None
    head, rows = _cells(lines[0]), [_cells(r) for r in lines[2:]]
    width = len(head)
    rows = [tuple((r + [""] * width)[:width]) for r in rows]
    return Table(tuple(Column(h) for h in head), tuple(rows))


def _cells(line: str) -> list[str]:
    """The cells of a Markdown table row: split on unescaped ``|``, escapes and entities undone
    (the caller escapes them again for HTML)."""
    inner = line.strip()[1:-1] if line.strip().endswith("|") else line.strip()[1:]
    parts = re.split(r"(?<!\\)((?:\\\\)*)\|", inner)
    cells = ["".join(parts[i:i + 2]) for i in range(0, len(parts), 2)]
    return [html.unescape(re.sub(r"\\(.)", r"\1", c).strip()) for c in cells]
