"""Salvaging a damaged store (``mmbench repair DIR``): every row that can still be read is
copied into a fresh store, so a rerun computes only what was lost; the damaged file is kept
beside it (``store.sqlite.damaged``), never deleted.

Rows are read table by table; where a whole-table read hits a damaged page, each row is read
on its own by rowid and the unreadable ones are skipped.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mmbench.errors import MMBenchError
from mmbench.store.database import FILENAME, SCHEMA_VERSION, Store
from mmbench.store.folders import FolderLock, refuse_links

TABLES = ("cells", "plan", "meta", "samples")
#: the first bytes of every SQLite 3 database file
SQLITE_HEADER = b"SQLite format 3\x00"


@dataclass(frozen=True)
class Salvage:
    """How many rows of each table could be read (``kept``) out of those found (``seen``), and
    the rows that were read but dropped because their stored data cannot be used."""

    kept: dict[str, int]
    seen: dict[str, int]
    damaged: Path | None = None
    dropped: tuple[str, ...] = ()

    def summary(self) -> str:
        return ", ".join(f"{self.kept[t]} of {self.seen[t]} {t}" for t in TABLES)


@dataclass(frozen=True)
class TableRows:
    """The readable rows of one table, with the names of its columns."""

    columns: tuple[str, ...]
    rows: list[tuple]
    seen: int


def readable_rows(path: Path, table: str) -> TableRows:
    """The readable rows of ``table`` and how many rows it seems to hold."""
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        columns = tuple(row[1] for row in db.execute(f"PRAGMA table_info({table})"))
        try:
            rows = db.execute(f"SELECT * FROM {table}").fetchall()  # noqa: S608 (a fixed table name)
            return TableRows(columns, rows, len(rows))
        except sqlite3.DatabaseError:
            return TableRows(columns, *_row_by_row(db, table))
    except sqlite3.DatabaseError:
        return TableRows((), [], 0)
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
    found = {t: readable_rows(path, t) for t in TABLES}
    return Salvage({t: len(r.rows) for t, r in found.items()}, {t: r.seen for t, r in found.items()})


def repair(folder: Path) -> Salvage:
    """Copy every readable row into a fresh store; keep the damaged one as ``.damaged``. Holds
    the folder's run lock throughout, so a run cannot write into the store being replaced."""
    path = folder / FILENAME
    refuse_links(folder)
    if not path.is_file():
        raise MMBenchError(f"{folder} holds no mmbench store ({FILENAME})")
    check_sqlite(path)
    check_version(path)
    with FolderLock(folder):
        return _salvage(folder, path)


def check_sqlite(path: Path) -> None:
    """One line when ``path`` is not an SQLite database at all (nothing to salvage)."""
    with path.open("rb") as handle:
        header = handle.read(len(SQLITE_HEADER))
    if header != SQLITE_HEADER:
        raise MMBenchError(f"{path} is not an SQLite database (not an mmbench store, nothing to repair); "
                           "move it away and rerun the suite")


def check_version(path: Path) -> None:
    """One line when the store was written by a newer mmbench (repair it with that version)."""
    meta = readable_rows(path, "meta")
    found = {row[0]: row[1] for row in meta.rows if len(row) >= 2}
    try:
        schema = int(json.loads(found.get("schema", "1")))
    except (TypeError, ValueError):
        return  # unreadable: repair drops it and the fresh store has this version's schema
    if schema > SCHEMA_VERSION:
        raise MMBenchError(f"{path} was written by a newer mmbench (store schema {schema}; this version "
                           f"knows {SCHEMA_VERSION}); repair it with that version, nothing was changed")


def _salvage(folder: Path, path: Path) -> Salvage:
    fresh_dir = folder / f".repair-{os.getpid()}"
    fresh_dir.mkdir(exist_ok=True)
    kept, seen, dropped = {}, {}, []
    store = Store(fresh_dir)
    try:
        for table in TABLES:
            found = readable_rows(path, table)
            seen[table] = found.seen
            kept[table] = _insert(store, table, found, dropped)
        dropped += _drop_unreadable(store, kept)
    finally:
        store.close()
    damaged = folder / f"{FILENAME}.damaged-{time.strftime('%Y%m%d-%H%M%S')}"
    for suffix in ("", "-wal", "-shm"):
        if (folder / (FILENAME + suffix)).exists():
            os.replace(folder / (FILENAME + suffix), Path(str(damaged) + suffix))
    for item in _files(fresh_dir):
        os.replace(item, folder / item.name)
    fresh_dir.rmdir()
    return Salvage(kept, seen, damaged, tuple(dropped))


def _insert(store: Store, table: str, found: TableRows, dropped: list[str]) -> int:
    """Copy ``found`` into ``store``, column by name; a meta row whose value is not JSON is
    dropped (and listed)."""
    kept = 0
    for row in found.rows:
        if table == "meta" and not _json(row[1] if len(row) > 1 else None):
            dropped.append(f"meta {str(row[0])[:40]!r}: its value is not valid JSON")
            continue
        try:
            store.restore(table, found.columns[:len(row)], row)
            kept += 1
        except sqlite3.Error:
            continue
    return kept


def _json(value: object) -> bool:
    try:
        json.loads(value)  # type: ignore[arg-type]
        return True
    except (TypeError, ValueError):
        return False


def _drop_unreadable(store: Store, kept: dict[str, int]) -> list[str]:
    """Delete the finished cells whose stored data cannot be read back (a rerun recomputes
    them) and say which."""
    bad = store.unreadable()
    store.forget(key for key, _ in bad)
    kept["cells"] -= len(bad)
    return [f"cell {key[:12]} ({str(name)[:80]}): its stored facts, info or outcomes cannot be read back"
            for key, name in bad]


def _files(folder: Path) -> Iterator[Path]:
    return (p for p in folder.iterdir() if p.name.startswith(FILENAME))
