"""Salvaging a damaged store (``mmbench repair DIR``): every row that can still be read is
copied into a fresh store, so a rerun computes only what was lost; the damaged file is kept
beside it (``store.sqlite.damaged``), never deleted.

Rows are read table by table; where a whole-table read hits a damaged page, each row is read
on its own by rowid and the unreadable ones are skipped.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mmbench.errors import MMBenchError
from mmbench.store.database import FILENAME, Store
from mmbench.store.folders import FolderLock, refuse_links

TABLES = ("cells", "plan", "meta", "samples")
#: the first bytes of every SQLite 3 database file
SQLITE_HEADER = b"SQLite format 3\x00"


@dataclass(frozen=True)
class Salvage:
    """How many rows of each table could be read (``kept``) out of those found (``seen``)."""

    kept: dict[str, int]
    seen: dict[str, int]
    damaged: Path | None = None

    def summary(self) -> str:
        return ", ".join(f"{self.kept[t]} of {self.seen[t]} {t}" for t in TABLES)


def readable_rows(path: Path, table: str) -> tuple[list[tuple], int]:
    """The readable rows of ``table`` and how many rows it seems to hold."""
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        try:
            rows = db.execute(f"SELECT * FROM {table}").fetchall()  # noqa: S608 (a fixed table name)
            return rows, len(rows)
        except sqlite3.DatabaseError:
            return _row_by_row(db, table)
    except sqlite3.DatabaseError:
        return [], 0
    finally:
        db.close()


def _row_by_row(db: sqlite3.Connection, table: str) -> tuple[list[tuple], int]:
    try:
        top = db.execute(f"SELECT max(rowid) FROM {table}").fetchone()[0] or 0  # noqa: S608
    except sqlite3.DatabaseError:
        top = 100_000
    rows = []
    for rowid in range(1, top + 1):
        try:
            row = db.execute(f"SELECT * FROM {table} WHERE rowid = ?", (rowid,)).fetchone()  # noqa: S608
        except sqlite3.DatabaseError:
            continue
        if row is not None:
            rows.append(row)
    return rows, top


def inspect_store(folder: Path) -> Salvage:
    """What is readable in a results folder's store, without changing it."""
    path = folder / FILENAME
    refuse_links(folder)
    if not path.is_file():
        raise MMBenchError(f"{folder} holds no mmbench store ({FILENAME})")
    counts = {t: readable_rows(path, t) for t in TABLES}
    return Salvage({t: len(r) for t, (r, _) in counts.items()}, {t: n for t, (_, n) in counts.items()})


def repair(folder: Path) -> Salvage:
    """Copy every readable row into a fresh store; keep the damaged one as ``.damaged``. Holds
    the folder's run lock throughout, so a run cannot write into the store being replaced."""
    path = folder / FILENAME
    refuse_links(folder)
    if not path.is_file():
        raise MMBenchError(f"{folder} holds no mmbench store ({FILENAME})")
    check_sqlite(path)
    with FolderLock(folder):
        return _salvage(folder, path)


def check_sqlite(path: Path) -> None:
    """One line when ``path`` is not an SQLite database at all (nothing to salvage)."""
    with path.open("rb") as handle:
        header = handle.read(len(SQLITE_HEADER))
    if header != SQLITE_HEADER:
        raise MMBenchError(f"{path} is not an SQLite database (not an mmbench store, nothing to repair); "
                           "move it away and rerun the suite")


def _salvage(folder: Path, path: Path) -> Salvage:
    fresh_dir = folder / f".repair-{os.getpid()}"
    fresh_dir.mkdir(exist_ok=True)
    kept, seen = {}, {}
    store = Store(fresh_dir)
    try:
        for table in TABLES:
            rows, seen[table] = readable_rows(path, table)
            kept[table] = _insert(store, table, rows)
    finally:
        store.close()
    damaged = folder / f"{FILENAME}.damaged-{time.strftime('%Y%m%d-%H%M%S')}"
    for suffix in ("", "-wal", "-shm"):
        if (folder / (FILENAME + suffix)).exists():
            os.replace(folder / (FILENAME + suffix), Path(str(damaged) + suffix))
    for item in _files(fresh_dir):
        os.replace(item, folder / item.name)
    fresh_dir.rmdir()
    return Salvage(kept, seen, damaged)


def _insert(store: Store, table: str, rows: list[tuple]) -> int:
    if not rows:
        return 0
    kept = 0
    for row in rows:
        try:
            store.restore(table, row)
            kept += 1
        except sqlite3.Error:
            continue
    return kept


def _files(folder: Path) -> Iterator[Path]:
    return (p for p in folder.iterdir() if p.name.startswith(FILENAME))
