"""The results store: one embedded SQLite database (WAL) per results folder.

Every finished cell is one row of ``cells``, written in its own transaction together with its
tidy rows, so a run killed at any point leaves only whole cells behind and ``mmbench run``
resumes by skipping them. ``plan`` holds the cells of the latest run (for ``mmbench status``);
``results.csv``, ``results.json`` and the boards are exports of the stored rows of that plan.

Tables::

    cells(key PRIMARY KEY, kind 'train'|'eval', name, status 'done'|'failed', error,
          seconds, finished REAL (unix time), rows TEXT (JSON list of tidy rows))
    plan(key PRIMARY KEY, kind, name, position)      -- the latest run's cells, in order
    meta(name PRIMARY KEY, value TEXT)               -- suite config of the latest run (JSON)
    samples(key PRIMARY KEY, sample_set, preds, labels, probs)  -- per-row outcomes of an
        evaluation cell (int16 / int16 / float32 arrays), for bootstrap intervals
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mmbench.engine.rows import TidyRow
from mmbench.errors import MMBenchError
from mmbench.metrics.bootstrap import Samples

FILENAME = "store.sqlite"
SCHEMA = """
CREATE TABLE IF NOT EXISTS cells (key TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL,
    status TEXT NOT NULL, error TEXT, seconds REAL, finished REAL, rows TEXT);
CREATE TABLE IF NOT EXISTS plan (key TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL,
    position INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS samples (key TEXT PRIMARY KEY, sample_set TEXT NOT NULL, preds BLOB,
    labels BLOB, probs BLOB);
"""


@dataclass(frozen=True)
class PlannedCell:
    key: str
    kind: str  # "train" or "eval"
    name: str


@dataclass(frozen=True)
class CellStatus:
    key: str
    kind: str
    name: str
    status: str  # "done", "failed" or "pending"
    error: str | None = None


class Store:
    """Open (or create) the store of results folder ``folder``."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / FILENAME
        try:
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise MMBenchError(f"{self.path} is not a readable mmbench store ({exc}); move it "
                               "away to start afresh") from None

    def close(self) -> None:
        self._db.close()

    def begin_run(self, config: dict[str, Any], cells: Sequence[PlannedCell],
                  datasets: dict[str, Any] | None = None) -> None:
        """Record the suite, what publishing needs about its datasets, and the planned cells
        of this run (finished cells are kept)."""
        with self._transaction():
            self._db.execute("DELETE FROM plan")
            self._db.executemany("INSERT INTO plan VALUES (?, ?, ?, ?)",
                                 [(c.key, c.kind, c.name, i) for i, c in enumerate(cells)])
            for name, value in (("config", config), ("datasets", datasets or {})):
                self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, json.dumps(value)))

    def done(self) -> set[str]:
        return {k for (k,) in self._db.execute("SELECT key FROM cells WHERE status = 'done'")}

    def record(self, cell: PlannedCell, rows: Iterable[TidyRow] = (), error: str | None = None,
               seconds: float = 0.0, samples: Samples | None = None) -> None:
        """Store one finished (``error`` None) or failed cell with its per-row outcomes,
        atomically."""
        payload = json.dumps([asdict(r) for r in rows])
        with self._transaction():
            self._db.execute("INSERT OR REPLACE INTO cells VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             (cell.key, cell.kind, cell.name, "failed" if error else "done", error,
                              seconds, time.time(), payload))
            if samples is not None:
                self._db.execute("INSERT OR REPLACE INTO samples VALUES (?, ?, ?, ?, ?)",
                                 (cell.key, samples.sample_set, *samples.to_blobs()))

    def forget(self, keys: Iterable[str]) -> None:
        """Drop stored cells (``--force``)."""
        with self._transaction():
            self._db.executemany("DELETE FROM cells WHERE key = ?", [(k,) for k in keys])

    def rows_by_key(self, keys: Sequence[str]) -> dict[str, list[TidyRow]]:
        """The tidy rows of each given cell that is done."""
        wanted = set(keys)
        return {k: [TidyRow(**r) for r in json.loads(rows)] for k, rows in
                self._db.execute("SELECT key, rows FROM cells WHERE status = 'done'") if k in wanted}

    def samples(self, keys: Sequence[str]) -> dict[str, Samples]:
        """Per-row outcomes of the given cells (those that have them)."""
        wanted = set(keys)
        return {k: Samples.from_blobs(*rest) for k, *rest in
                self._db.execute("SELECT key, sample_set, preds, labels, probs FROM samples") if k in wanted}

    def statuses(self) -> list[CellStatus]:
        """Every cell of the latest run's plan with its state."""
        query = """SELECT p.key, p.kind, p.name, COALESCE(c.status, 'pending'), c.error
                   FROM plan p LEFT JOIN cells c ON c.key = p.key ORDER BY p.position"""
        return [CellStatus(*row) for row in self._db.execute(query)]

    def config(self) -> dict[str, Any] | None:
        return self.meta("config")

    def meta(self, name: str) -> Any:
        """A value recorded by :meth:`begin_run` (``config``, ``datasets``), or None."""
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return json.loads(row[0]) if row else None

    def _transaction(self) -> Any:
        return _Transaction(self._db)


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error) on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: Any, *_: Any) -> None:
        self.db.execute("ROLLBACK" if kind else "COMMIT")


def open_existing(folder: Path) -> Store:
    """The store of an existing results folder (``mmbench status``), or a one-line error."""
    if not (folder / FILENAME).is_file():
        raise MMBenchError(f"{folder} holds no mmbench store ({FILENAME}); give the folder a "
                           "run wrote to, e.g. results/smoke")
    return Store(folder)
