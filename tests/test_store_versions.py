"""Stores that survive other versions and repair that keeps what is good (issue 22, points 2
and 3): a schema version in ``meta``; a newer store is read, never written, never reported as
empty; facts this version does not know are kept and exported; a cell whose stored data cannot
be read back is never done; repair keeps every readable cell whatever extra columns exist and
drops (and lists) rows whose JSON is bad."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import tiny_suite, write_suite

from mmbench.store.database import SCHEMA_VERSION


def cli(*args: str) -> tuple[int, str, str]:
    from mmbench.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("versions")
    suite = write_suite(root, tiny_suite(models=["late_fusion"], perturbations=[
        "clean", {"name": "adversarial", "params": {"attacks": ["fgsm"], "eps": [0.1]}}]))
    code, _, err = cli("run", str(suite), "--out", str(root / "done"), "--cache-dir", str(root / "cache"), "-q")
    assert code == 0, err
    return root, suite


def copied(finished: tuple[Path, Path], tmp_path: Path) -> Path:
    out = tmp_path / "o"
    shutil.copytree(finished[0] / "done", out)
    return out


def rerun(finished: tuple[Path, Path], out: Path) -> tuple[int, str, str]:
    root, suite = finished
    return cli("run", str(suite), "--out", str(out), "--cache-dir", str(root / "cache"))


def edit(out: Path, *statements: tuple[str, tuple]) -> None:
    db = sqlite3.connect(out / "store.sqlite")
    for sql, args in statements:
        db.execute(sql, args)
    db.commit()
    db.close()


def with_unknown_fact(out: Path, schema: int | None = None) -> None:
    """Every evaluation cell gets a fact this version does not know, as a newer one would write."""
    db = sqlite3.connect(out / "store.sqlite")
    for key, rows in db.execute("SELECT key, rows FROM cells WHERE kind = 'eval'").fetchall():
        db.execute("UPDATE cells SET rows = ? WHERE key = ?", (json.dumps({**json.loads(rows), "novel": 7}), key))
    if schema is not None:
        db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (json.dumps(schema),))
    db.commit()
    db.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_store_records_its_schema_version(finished) -> None:
    db = sqlite3.connect(finished[0] / "done" / "store.sqlite")
    assert json.loads(db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()[0]) == SCHEMA_VERSION


def test_unknown_facts_are_kept_and_exported_never_damaged(finished, tmp_path: Path) -> None:
    out = copied(finished, tmp_path)
    before = pd.read_csv(out / "results.csv")
    with_unknown_fact(out)
    code, stdout, _ = cli("status", str(out))
    assert code == 0 and "damaged" not in stdout and "0 pending" in stdout, stdout
    code, _, err = cli("report", str(out))
    assert code == 0 and "damaged" not in err, err
    after = pd.read_csv(out / "results.csv")
    assert len(after) == len(before) and set(after["novel"]) == {7}
    code, _, err = rerun(finished, out)
    assert code == 0 and "0 cells to run" in err, err


def test_a_newer_store_is_read_only_and_never_reported_empty(finished, tmp_path: Path) -> None:
    out = copied(finished, tmp_path)
    rows = len(pd.read_csv(out / "results.csv"))
    with_unknown_fact(out, schema=SCHEMA_VERSION + 1)
    store = digest(out / "store.sqlite")
    code, _, err = rerun(finished, out)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "newer mmbench" in lines[0], err
    code, _, err = cli("repair", str(out))
    assert code == 2 and "newer mmbench" in err and len(err.strip().splitlines()) == 1, err
    code, stdout, err = cli("report", str(out))
    assert code == 0 and "newer mmbench" in err and "damaged" not in err, err
    assert len(pd.read_csv(out / "results.csv")) == rows and "Leaderboard" in stdout
    code, stdout, _ = cli("status", str(out))
    assert code == 0 and "0 pending, 0 failed" in stdout
    assert digest(out / "store.sqlite") == store  # never written


@pytest.mark.parametrize("damage", [
    ("UPDATE cells SET rows = json_remove(rows, '$.seed') WHERE key = ?", "a fact is missing"),
    ("UPDATE cells SET rows = '[1, 2]' WHERE key = ?", "facts are not an object"),
    ("UPDATE samples SET row_ids = x'0000' WHERE key = ?", "row ids do not match the rows"),
    ("UPDATE samples SET full = x'000000' WHERE key = ?", "class probabilities are not whole rows"),
], ids=lambda d: d[1] if isinstance(d, tuple) else d)
def test_a_cell_that_cannot_be_read_back_is_never_done(finished, tmp_path: Path, damage) -> None:
    out = copied(finished, tmp_path)
    original = (out / "results.csv").read_text()
    db = sqlite3.connect(out / "store.sqlite")
    key = db.execute("SELECT key FROM cells WHERE kind = 'eval' ORDER BY key LIMIT 1").fetchone()[0]
    db.close()
    edit(out, (damage[0], (key,)))
    code, stdout, _ = cli("status", str(out))
    assert code == 0 and "1 damaged" in stdout, stdout
    code, _, err = rerun(finished, out)
    assert code == 0 and "1 cells to run" in err, err
    assert (out / "results.csv").read_text() == original


def test_repair_keeps_every_cell_of_a_store_with_extra_columns(finished, tmp_path: Path) -> None:
    out = copied(finished, tmp_path)
    edit(out, ("ALTER TABLE cells ADD COLUMN extra_a TEXT", ()), ("ALTER TABLE samples ADD COLUMN extra_b", ()),
         ("UPDATE cells SET extra_a = 'kept'", ()))
    db = sqlite3.connect(out / "store.sqlite")
    cells = db.execute("SELECT count(*) FROM cells").fetchone()[0]
    db.close()
    code, stdout, err = cli("repair", str(out))
    assert code == 0 and f"kept {cells} of {cells} cells" in stdout and "dropped" not in stdout, (stdout, err)
    db = sqlite3.connect(out / "store.sqlite")
    assert db.execute("SELECT count(*) FROM cells WHERE extra_a = 'kept'").fetchone()[0] == cells
    db.execute("DELETE FROM cells WHERE key = (SELECT min(key) FROM cells WHERE kind = 'eval')")
    db.commit()
    db.close()
    original = (out / "results.csv").read_text()
    code, _, err = rerun(finished, out)  # the lost cell is written into the store with extra columns
    assert code == 0 and "1 cells to run" in err, err
    assert (out / "results.csv").read_text() == original


def test_repair_drops_and_lists_rows_whose_json_is_bad(finished, tmp_path: Path) -> None:
    out = copied(finished, tmp_path)
    original = (out / "results.csv").read_text()
    edit(out, ("UPDATE cells SET info = '{not json' WHERE kind = 'train'", ()),
         ("INSERT OR REPLACE INTO meta VALUES ('stray', '{not json')", ()))
    code, _, err = rerun(finished, out)  # a damaged training record is retrained, never a crash
    assert code == 0 and "internal error" not in err, err
    edit(out, ("UPDATE cells SET info = '{not json' WHERE kind = 'train'", ()))
    code, stdout, err = cli("repair", str(out))
    assert code == 0, err
    assert "dropped 2 rows" in stdout and "meta 'stray'" in stdout and "cannot be read back" in stdout, stdout
    code, _, err = rerun(finished, out)
    assert code == 0 and "internal error" not in err, err
    assert (out / "results.csv").read_text() == original


def test_compare_refuses_runs_on_other_data_with_the_same_labels(finished, tmp_path: Path) -> None:
    from mmbench.report.publish import load_run

    root, suite = finished
    raw = yaml.safe_load(suite.read_text())
    raw["datasets"][0]["params"]["noise"] = 1.3  # other inputs, the same labels
    other = write_suite(tmp_path, raw, "other.yaml")
    code, _, err = cli("run", str(other), "--out", str(tmp_path / "other"), "--cache-dir", str(root / "cache"), "-q")
    assert code == 0, err
    mine, theirs = load_run(root / "done"), load_run(tmp_path / "other")
    shared = set(mine.labels) & set(theirs.labels)
    assert shared and all((mine.labels[k] == theirs.labels[k]).all() for k in shared)
    code, _, err = cli("compare", str(root / "done"), str(tmp_path / "other"))
    assert code == 2 and "evaluated different data" in err and len(err.strip().splitlines()) == 1, err
    code, out, err = cli("compare", str(root / "done"), str(root / "done"))
    assert code == 0 and "could not be checked" not in out, err


def test_every_compare_error_names_its_folder(finished, tmp_path: Path) -> None:
    root, _ = finished
    broken = copied(finished, tmp_path)
    edit(broken, ("UPDATE meta SET value = '{broken' WHERE name = 'datasets'", ()))
    for pair in ((root / "done", broken), (broken, root / "done")):
        code, _, err = cli("compare", *map(str, pair))
        assert code == 2 and str(broken) in err and len(err.strip().splitlines()) == 1, err
    (tmp_path / "empty").mkdir()
    code, _, err = cli("compare", str(root / "done"), str(tmp_path / "empty"))
    assert code == 2 and str(tmp_path / "empty") in err, err
