"""A results folder cannot be turned against the user (issue 22, point 1): a symbolic link
planted in it as the lock, the store, an export, a board or a plot is refused in one line, and
nothing is written through it; exports are replaced atomically."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import tiny_suite, write_suite

from mmbench.errors import MMBenchError
from mmbench.store.folders import FolderLock, write_text_atomic

PLANTED = (".mmbench.lock", "store.sqlite", "results.csv", "results.json", "LEADERBOARD.md", "report.html",
           "scores.csv", "plots", "plots/profile_synthetic.png")


def _cli(*args: str) -> tuple[int, str]:
    import contextlib
    import io

    from mmbench.cli import main

    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, err.getvalue()


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("links")
    suite = write_suite(root, tiny_suite(models=["late_fusion"]))
    code, err = _cli("run", str(suite), "--out", str(root / "done"), "--cache-dir", str(root / "cache"), "-q")
    assert code == 0, err
    return root, suite


@pytest.mark.parametrize("name", PLANTED)
def test_a_planted_link_is_refused_and_nothing_is_written_through_it(finished, tmp_path: Path, name: str) -> None:
    root, suite = finished
    victim = tmp_path / "victim"
    victim.write_text("precious")
    out = tmp_path / "o"
    (out / "plots").mkdir(parents=True)
    link = out / name
    if name == "plots":
        (out / "plots").rmdir()
    link.symlink_to(victim)
    code, err = _cli("run", str(suite), "--out", str(out), "--cache-dir", str(root / "cache"), "-q")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "is a symbolic link" in lines[0] and name.split("/")[-1] in lines[0]
    assert victim.read_text() == "precious" and link.is_symlink()


def test_report_and_repair_refuse_a_planted_link_too(finished, tmp_path: Path) -> None:
    root, _ = finished
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (root / "done" / "LEADERBOARD.md").unlink()
    (root / "done" / "LEADERBOARD.md").symlink_to(victim)
    try:
        for command in ("report", "repair"):
            code, err = _cli(command, str(root / "done"))
            assert code == 2 and "is a symbolic link" in err and len(err.strip().splitlines()) == 1, err
        assert victim.read_text() == "precious"
    finally:
        (root / "done" / "LEADERBOARD.md").unlink()
    code, err = _cli("report", str(root / "done"))
    assert code == 0 and not (root / "done" / "LEADERBOARD.md").is_symlink()


def test_the_lock_never_follows_a_link(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / ".mmbench.lock").symlink_to(victim)
    with pytest.raises(MMBenchError, match="is a symbolic link"), FolderLock(tmp_path / "o"):
        pass
    assert victim.read_text() == "precious"


def test_an_atomic_write_replaces_a_link_instead_of_following_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / "board.md").symlink_to(victim)
    write_text_atomic(tmp_path / "board.md", "new")
    assert victim.read_text() == "precious" and (tmp_path / "board.md").read_text() == "new"
    assert not (tmp_path / "board.md").is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["board.md", "victim"]  # no temporary left
    assert oct(os.stat(tmp_path / "board.md").st_mode & 0o777) == "0o644"


def test_repair_refuses_a_file_that_is_not_a_store(tmp_path: Path) -> None:
    (tmp_path / "store.sqlite").write_text("a text file\n" * 1000)
    code, err = _cli("repair", str(tmp_path))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "is not an SQLite database" in err, err
    assert (tmp_path / "store.sqlite").read_text().startswith("a text file")  # left as it was


def test_repair_takes_the_run_lock(finished) -> None:
    root, _ = finished
    with FolderLock(root / "done"):
        code, err = _cli("repair", str(root / "done"))
    assert code == 2 and "another mmbench run" in err and len(err.strip().splitlines()) == 1, err
    code, err = _cli("repair", str(root / "done"))
    assert code == 0, err
