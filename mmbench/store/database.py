"""The results store: one embedded SQLite database (WAL) per results folder.

Every finished cell is one row of ``cells``, written in its own transaction together with what
it measured and its per-row outcomes, so a run killed at any point leaves only whole cells
behind and ``mmbench run`` resumes by skipping them. Metric values are not stored: they are
computed from the outcomes whenever results are published, so an edited metric never serves a
stale value and adding a metric recomputes no cell. ``plan`` holds the cells of the latest run (for ``mmbench status``);
``results.csv``, ``results.json`` and the boards are exports of the stored rows of that plan.

Tables::

    cells(key PRIMARY KEY, kind 'train'|'eval', name, status 'done'|'failed', error,
          seconds, finished REAL (unix time), rows TEXT (an eval cell's facts as JSON),
          info TEXT (a train cell's seed key and code versions, JSON))
    plan(key PRIMARY KEY, kind, name, position)      -- the latest run's cells, in order
    meta(name PRIMARY KEY, value TEXT)               -- suite config of the latest run (JSON)
    samples(key PRIMARY KEY, sample_set, preds, labels, probs, full, dataset, split, subset,
        draws, radius, row_ids, task, outputs, targets)
        -- per-row outcomes of an evaluation cell (int16 / int16 / float32 arrays;
        full: float32 [n, classes] or NULL) and the rows it evaluated (dataset, split or group,
        subset size or NULL for all; draws: how many times each row was drawn; radius: float32
        certified radii of a certifying cell, else NULL; row_ids: int32 position in the split
        of each row evaluated; task: the dataset's task, NULL for classification; outputs and
        targets: float32 [n, D] of a regression or multilabel cell, else NULL)
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mmbench.data.tasks import CLASSIFICATION
from mmbench.errors import MMBenchError
from mmbench.metrics.outcomes import Samples, SampleSet
from mmbench.store.rows import REQUIRED_FACTS, CellFacts

log = logging.getLogger(__name__)

FILENAME = "store.sqlite"
SCHEMA = """
CREATE TABLE IF NOT EXISTS cells (key TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL,
    status TEXT NOT NULL, error TEXT, seconds REAL, finished REAL, rows TEXT, info TEXT);
CREATE TABLE IF NOT EXISTS plan (key TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL,
    position INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS samples (key TEXT PRIMARY KEY, sample_set TEXT NOT NULL, preds BLOB,
    labels BLOB, probs BLOB, full BLOB, dataset TEXT, split TEXT, subset INTEGER, draws INTEGER,
    radius BLOB, row_ids BLOB, task TEXT, outputs BLOB, targets BLOB);
"""
#: the store's layout version, kept in ``meta`` as ``schema``: a store of a newer version is only
#: read (its unknown facts are kept), never written; an older one is upgraded in place
SCHEMA_VERSION = 3
#: optional facts of a stored evaluation cell and their JSON type
OPTIONAL_FACTS = {"split": "text", "rows": "integer", "facts": "object"}


def _facts_readable(column: str) -> str:
    """SQL: ``column`` holds a JSON object with every required fact of the right type."""
    checks = [f"json_type({column}) = 'object'"]
    checks += [f"json_type({column}, '$.{k}') IN ({', '.join(repr(t) for t in types)})"
               for k, types in REQUIRED_FACTS.items()]
    checks += [f"COALESCE(json_type({column}, '$.{k}'), '{t}') = '{t}'" for k, t in OPTIONAL_FACTS.items()]
    return f"(CASE WHEN json_valid({column}) THEN COALESCE(({' AND '.join(checks)}), 0) ELSE 0 END)"


def intact(columns: set[str]) -> str:
    """SQL: a finished cell's stored data can be read back. A training cell with no ``info`` or
    a JSON object; an evaluation cell whose facts are readable and whose outcome arrays have
    consistent lengths (int16 / int16 / float32, ``full`` whole rows of classes, one radius
    per outcome, one row id per row). ``columns``: the samples columns this store has."""
    optional = {"full": "length(s.full) % (2 * length(s.preds)) = 0",
                "radius": "length(s.radius) = 2 * length(s.preds)",
                "row_ids": "length(s.row_ids) * COALESCE(s.draws, 1) = 2 * length(s.preds)",
                "outputs": "length(s.outputs) % (2 * length(s.preds)) = 0",
                "targets": "length(s.targets) = length(s.outputs)"}
    arrays = " AND ".join(f"(s.{c} IS NULL OR (typeof(s.{c}) = 'blob' AND {rule}))"
                          for c, rule in optional.items() if c in columns)
    train = ("(cells.info IS NULL OR (CASE WHEN json_valid(cells.info) THEN json_type(cells.info) = 'object' "
             "ELSE 0 END))")
    return f"""COALESCE((cells.kind = 'train' AND {train}) OR (cells.kind = 'eval' AND {_facts_readable('cells.rows')}
    AND EXISTS (SELECT 1 FROM samples s WHERE s.key = cells.key AND s.dataset IS NOT NULL
    AND typeof(s.preds) = 'blob' AND typeof(s.labels) = 'blob' AND typeof(s.probs) = 'blob'
    AND length(s.preds) > 0 AND length(s.preds) % 2 = 0 AND length(s.labels) = length(s.preds)
    AND length(s.probs) = 2 * length(s.preds) AND COALESCE(s.draws, 1) >= 1
    AND length(s.preds) % (2 * COALESCE(s.draws, 1)) = 0 {'AND ' + arrays if arrays else ''})), 0)"""


#: columns added since the first schema: (table, column) of stores written before them
ADDED_COLUMNS = (("cells", "info"), ("samples", "full"), ("samples", "dataset"), ("samples", "split"),
                 ("samples", "subset"), ("samples", "draws"), ("samples", "radius"),
                 ("samples", "row_ids"), ("samples", "task"), ("samples", "outputs"), ("samples", "targets"))


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
    """Open (or create) the store of results folder ``folder``; ``readonly``: only read an
    existing store (``status``, ``report``, ``compare``), which also works in a read-only folder."""

    def __init__(self, folder: Path, readonly: bool = False) -> None:
        self.path = folder / FILENAME
        self.readonly = readonly
        try:
            self._db = self._read_only() if readonly else self._writable(folder)
        except sqlite3.DatabaseError as exc:
            raise MMBenchError(f"{self.path} cannot be read as an mmbench store ({exc}); 'mmbench status "
                               f"{folder}' shows what is readable and 'mmbench repair {folder}' keeps it") from None
        # a damaged page met here is an sqlite3.DatabaseError, as for any later read
        self.schema = self._schema()
        self._intact = intact({row[1] for row in self._db.execute("PRAGMA table_info(samples)")})

    @property
    def newer(self) -> bool:
        """Written by a newer mmbench (its store schema is above :data:`SCHEMA_VERSION`)."""
        return self.schema > SCHEMA_VERSION

    def _schema(self) -> int:
        """The schema version recorded in ``meta`` (1: a store from before versions were kept)."""
        row = self._db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
        try:
            return int(json.loads(row[0])) if row else 1
        except (TypeError, ValueError):
            raise MMBenchError(f"{self.path}: its schema version {str(row[0])[:20]!r} is not a number; "
                               f"'mmbench repair {self.path.parent}' keeps what is readable") from None

    def _writable(self, folder: Path) -> sqlite3.Connection:
        folder.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(SCHEMA)
        self._db = db
        found = self._schema()
        if found > SCHEMA_VERSION:
            db.close()
            raise MMBenchError(
                f"{self.path} was written by a newer mmbench (store schema {found}; this version writes "
                f"{SCHEMA_VERSION}), so it is read-only here: 'mmbench report/status' read it; run into "
                "another --out or upgrade mmbench")
        self._migrate()
        if found < SCHEMA_VERSION:
            self.set_meta("schema", SCHEMA_VERSION)
        return db

    def _read_only(self) -> sqlite3.Connection:
        """A read-only connection; ``immutable`` where the folder itself cannot be written (no
        WAL index can be created there), which is safe for a finished run."""
        writable = os.access(self.path.parent, os.W_OK) and os.access(self.path, os.W_OK)
        mode = "mode=ro" if writable else "immutable=1"
        db = sqlite3.connect(f"{self.path.resolve().as_uri()}?{mode}", uri=True, timeout=30,
                             isolation_level=None)
        have = {row[1] for row in db.execute("PRAGMA table_info(samples)")}
        if "dataset" not in have:
            db.close()
            raise MMBenchError(f"{self.path} was written by an older mmbench; rerun its suite once (finished "
                               "cells are kept) to update it")
        return db

    def close(self) -> None:
        self._db.close()

    def restore(self, table: str, columns: Sequence[str], row: Sequence[Any]) -> None:
        """Insert a row copied from another store (``mmbench repair``): ``columns`` name its
        values; a column this table lacks (a newer mmbench's) is added first, so nothing is lost."""
        if table not in ("cells", "plan", "meta", "samples"):
            raise ValueError(f"unknown table {table!r}")
        have = {c[1] for c in self._db.execute(f"PRAGMA table_info({table})")}
        names = [_quoted(c) for c in columns]
        for column, name in zip(columns, names):
            if column not in have:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {name}")
                have.add(column)
        marks = ", ".join("?" * len(row))
        self._db.execute(f"INSERT OR REPLACE INTO {table} ({', '.join(names)}) VALUES ({marks})", tuple(row))  # noqa: S608

    def unreadable(self) -> list[tuple[str, str]]:
        """(key, name) of every finished cell whose stored data cannot be read back."""
        query = f"SELECT key, name FROM cells WHERE status = 'done' AND NOT {self._intact}"
        return list(self._db.execute(query))

    def _migrate(self) -> None:
        """Add the columns a store written by an older mmbench lacks."""
        for table, column in ADDED_COLUMNS:
            have = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")

    def begin_run(self, config: dict[str, Any], cells: Sequence[PlannedCell],
                  datasets: dict[str, Any] | None = None) -> None:
        """Record the suite, what publishing needs about its datasets, and the planned cells
        of this run (finished cells are kept)."""
        with self._transaction():
            self._db.execute("DELETE FROM plan")
            self._db.executemany("INSERT INTO plan (key, kind, name, position) VALUES (?, ?, ?, ?)",
                                 [(c.key, c.kind, c.name, i) for i, c in enumerate(cells)])
            for name, value in (("config", config), ("datasets", datasets or {})):
                self._db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, json.dumps(value)))

    def done(self) -> set[str]:
        """Keys of the finished cells whose stored data is intact (a damaged row is not done:
        the next run recomputes it)."""
        query = f"SELECT key FROM cells WHERE status = 'done' AND {self._intact}"
        return {k for (k,) in self._db.execute(query)}

    def record(self, cell: PlannedCell, facts: CellFacts | None = None, error: str | None = None,
               seconds: float = 0.0, samples: Samples | None = None,
               info: dict[str, Any] | None = None) -> None:
        """Store one finished (``error`` None) or failed cell with its facts and per-row
        outcomes (evaluation) or its ``info`` (training), atomically."""
        payload = json.dumps(asdict(facts)) if facts is not None else None
        with self._transaction():
            self._db.execute("INSERT OR REPLACE INTO cells (key, kind, name, status, error, seconds, finished, "
                             "rows, info) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             (cell.key, cell.kind, cell.name, "failed" if error else "done", error,
                              seconds, time.time(), payload, json.dumps(info) if info else None))
            if samples is not None:
                rows = samples.sample_set
                preds, labels, probs, full, radius, ids, outputs, targets = samples.to_blobs()
                task = None if samples.task == CLASSIFICATION else samples.task
                self._db.execute("INSERT OR REPLACE INTO samples (key, sample_set, preds, labels, probs, full, "
                                 "dataset, split, subset, draws, radius, row_ids, task, outputs, targets) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                 (cell.key, rows.key, preds, labels, probs, full, rows.dataset, rows.split,
                                  rows.rows, samples.draws, radius, ids, task, outputs, targets))

    def forget(self, keys: Iterable[str]) -> None:
        """Drop stored cells (``--force``)."""
        with self._transaction():
            self._db.executemany("DELETE FROM cells WHERE key = ?", [(k,) for k in keys])

    def facts(self, keys: Sequence[str]) -> dict[str, CellFacts]:
        """What each given evaluation cell that is done measured (facts a newer mmbench wrote are
        kept as extra fact columns; a cell whose facts cannot be read is not done)."""
        wanted = set(keys)
        query = f"SELECT key, rows FROM cells WHERE kind = 'eval' AND status = 'done' AND {self._intact}"
        return {key: CellFacts.from_record(json.loads(payload))
                for key, payload in self._db.execute(query) if key in wanted}

    def samples(self, keys: Sequence[str]) -> dict[str, Samples]:
        """Per-row outcomes of the given cells (those that have them; cells stored by an older
        mmbench without the sample-set columns are left out)."""
        wanted, out = set(keys), {}
        have = {row[1] for row in self._db.execute("PRAGMA table_info(samples)")}
        # a read-only store of an older mmbench lacks the newer columns
        newer = ", ".join(c if c in have else "NULL" for c in ("radius", "row_ids", "task", "outputs", "targets"))
        query = (f"SELECT key, preds, labels, probs, full, dataset, split, subset, draws, {newer} "  # noqa: S608
                 "FROM samples WHERE dataset IS NOT NULL")
        for key, preds, labels, probs, full, dataset, split, subset, draws, *rest in self._db.execute(query):
            if key not in wanted:
                continue
            try:
                out[key] = Samples.from_blobs(SampleSet(dataset, split, subset), preds, labels, probs,
                                              full, int(draws or 1), *rest)
            except (ValueError, TypeError):
                log.warning("cell %s: its stored outcomes are damaged; the next run recomputes it", key[:12])
        return out

    def train_info(self) -> dict[str, dict[str, Any]]:
        """Key -> the ``info`` of every finished training cell that recorded one."""
        query = ("SELECT key, info FROM cells WHERE kind = 'train' AND status = 'done' AND info IS NOT NULL "
                 f"AND {self._intact}")
        return {k: json.loads(v) for k, v in self._db.execute(query)}

    def statuses(self) -> list[CellStatus]:
        """Every cell of the latest run's plan with its state."""
        damaged = f"c.status = 'done' AND NOT ({self._intact.replace('cells.', 'c.')})"
        query = f"""SELECT p.key, p.kind, p.name,
                       CASE WHEN {damaged} THEN 'damaged' ELSE COALESCE(c.status, 'pending') END,
                       CASE WHEN {damaged}
                            THEN 'its stored row is damaged; the next run recomputes it' ELSE c.error END
                   FROM plan p LEFT JOIN cells c ON c.key = p.key ORDER BY p.position"""
        return [CellStatus(*row) for row in self._db.execute(query)]

    def config(self) -> dict[str, Any] | None:
        return self.meta("config")

    def meta(self, name: str) -> Any:
        """A value recorded by :meth:`begin_run` (``config``, ``datasets``), or None."""
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        try:
            return json.loads(row[0]) if row else None
        except (TypeError, ValueError):
            raise MMBenchError(f"{self.path}: its recorded {name!r} is damaged; 'mmbench repair "
                               f"{self.path.parent}' drops it and keeps every readable cell") from None

    def set_meta(self, name: str, value: Any) -> None:
        """Record a JSON-able ``value`` under ``name`` (e.g. what the last publish depended on)."""
        with self._transaction():
            self._db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, json.dumps(value)))

    def _transaction(self) -> Any:
        return _Transaction(self._db)


def _quoted(identifier: str) -> str:
    """``identifier`` as an SQL identifier, whatever characters it holds."""
    return '"' + str(identifier).replace('"', '""') + '"'


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error) on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: Any, *_: Any) -> None:
        self.db.execute("ROLLBACK" if kind else "COMMIT")


def open_existing(folder: Path) -> Store:
    """The store of an existing results folder, read-only (``status``, ``report``,
    ``compare``), or a one-line error."""
    if not (folder / FILENAME).is_file():
        raise MMBenchError(f"{folder} holds no mmbench store ({FILENAME}); give the folder a "
                           "run wrote to, e.g. results/smoke")
    store = Store(folder, readonly=True)
    if store.newer:
        log.warning("%s was written by a newer mmbench (store schema %d; this version knows %d): it is "
                    "only read, and facts this version does not know are kept as extra columns",
                    store.path, store.schema, SCHEMA_VERSION)
    return store
