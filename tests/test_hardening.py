"""Hardening (issue 14): every mistake in the input is one line and exit 2 before anything is
written; every environment fault is one line; results are never thrown away; resources are
bounded; nothing is written outside the results root; one run per results folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import Completed, run_cli, tiny_suite, write_suite

REPO = Path(__file__).resolve().parents[1]
ADV = {"name": "adversarial", "params": {"attacks": ["fgsm"], "eps": [0.1]}}


def mmbench(*args: str, cwd: Path = REPO) -> Completed:
    """``mmbench ARGS`` in this process (a subprocess only where a test needs one: a signal, a
    pipe, a lock held by another process)."""
    return run_cli(*args, cwd=cwd)


cli = mmbench  # the name the tests of the store use


def one_line(out: Completed, code: int, *needles: str) -> str:
    assert out.returncode == code, (out.returncode, out.stderr[-2000:])
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.strip().splitlines() if line.startswith("mmbench: error")]
    assert len(lines) == 1 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def perturbed(**params: Any) -> dict:
    return tiny_suite(perturbations=["clean", {"name": "adversarial", "params": {"attacks": ["fgsm"], **params}}])


#: (suite, extra CLI arguments, what the one line says): each was "validate ok, run fails",
#: "silently accepted" or "internal error" before
BAD_INPUT = [
    (perturbed(eps=[0.1, 0.1]), [], "adversarial: eps lists 0.1 twice"),
    (tiny_suite(perturbations=[{"name": "random_dropout", "params": {"rates": [0.2, 0.2]}}]), [], "rates lists 0.2 twice"),
    (tiny_suite(perturbations=[{"name": "shift", "params": {"severities": [1, 1]}}]), [], "severities lists 1 twice"),
    (tiny_suite(models=["late_fusion", {"name": "late_fusion", "label": "again"}]), [],
     "models 'late_fusion' and 'again' are the same late_fusion"),
    ({**tiny_suite(), "recipes": [{"name": "standard", "params": {"lr": float("nan")}}]}, [], "must be a finite number"),
    (tiny_suite(models=[{"name": "late_fusion", "params": {"dim": -1}}]), [], "parameter 'dim' must be >= 1"),
    (tiny_suite(models=[{"name": "late_fusion", "params": {"dim": 0}}]), [], "parameter 'dim' must be >= 1"),
    (perturbed(eps=[0.1], options={"fgsm": {}}, attacks=["pgd"]), [], "not in attacks"),
    (tiny_suite(perturbations=[{"name": "adversarial", "params": {"attacks": ["pgd"], "eps": [0.1],
                                                                  "options": {"pgd": {"steps": "ten"}}}}]), [],
     "option 'steps' of attack 'pgd' must be int"),
    (perturbed(eps=[float("nan")]), [], "must be a finite number"),
    (tiny_suite(perturbations=[{"name": "clean", "models": ["late_fushion"]}]), [], "unknown model 'late_fushion'"),
    (tiny_suite(perturbations=[{"name": "missing", "params": {"subsets": [1]}}]), [], "must be list or str, got int"),
    (perturbed(eps=[0.1], targets=[["img"]]), [], "must be str"),
    ({**tiny_suite(), "datasets": [{"name": "synthetic", "params": {
        "modalities": [{"name": "x", "kind": "image", "shape": [3, 4096, 4096]}], "n_samples": 1000}}]}, [],
     "more than"),
]


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("suite,extra,needle", BAD_INPUT, ids=[str(i) for i in range(len(BAD_INPUT))])
def test_a_mistake_is_one_line_before_anything_is_written(suite: dict, extra: list[str], needle: str,
                                                          command: str, tmp_path: Path) -> None:
    path = write_suite(tmp_path, suite)
    args = [command, str(path), *extra] + (["--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c")]
                                           if command == "run" else [])
    one_line(cli(*args), 2, needle)
    assert not (tmp_path / "o").exists() and not (tmp_path / "c").exists()


@pytest.mark.parametrize("seeds", [["0", "0"], ["-1"], ["1", "-2"]])
def test_seeds_on_the_command_line_are_checked_like_the_suites(seeds: list[str], tmp_path: Path) -> None:
    path = write_suite(tmp_path, tiny_suite())
    one_line(cli("run", str(path), "--seeds", *seeds, "--out", str(tmp_path / "o")), 2,
             "distinct non-negative integers")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("text,needle", [
    ("name: x\nname: y\ndatasets: [mfeat]\nmodels: [late_fusion]\n", "duplicate key 'name'"),
    ("a: &a [1, 2]\n" + "".join(f"b{i}: [*a, *a, *a]\n" for i in range(100)), "aliases"),
    ("x: " + "[" * 100 + "]" * 100 + "\n", "nested deeper than"),
])
def test_yaml_bounds_and_duplicate_keys(text: str, needle: str, tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    one_line(cli("validate", str(path)), 2, needle)


def test_non_utf8_and_huge_suites(tmp_path: Path) -> None:
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    one_line(cli("validate", str(latin)), 2, "not UTF-8")
    huge = tmp_path / "huge.yaml"
    huge.write_text("# " + "x" * (2 << 20) + "\n")
    one_line(cli("validate", str(huge)), 2, "a suite file is at most")


def test_an_error_message_quotes_only_an_excerpt(tmp_path: Path) -> None:
    suite = tiny_suite(models=[{"name": "late_fusion", "params": {"dim": "w" * 10_000}}])
    line = one_line(cli("validate", str(write_suite(tmp_path, suite))), 2, "'dim' must be int")
    assert len(line) < 400


def test_labels_outside_the_classes_are_refused_at_load(tmp_path: Path) -> None:
    from mmbench.errors import MMBenchError
    from mmbench.registry import DATASETS
    from mmbench.runner import RunOptions, run_suite

    def bad_labels():
        from mmbench.data.synthetic import make_synthetic

        data = make_synthetic(n_samples=60, n_classes=3, seed=0)
        return type(data)(data.name, data.modalities, 2, data.train, data.val, data.test)

    DATASETS.register("bad_labels", bad_labels)
    try:
        with pytest.raises(MMBenchError, match=r"labels of the train split lie in \[0, 2\] but the dataset "
                                               r"declares 2 classes"):
            run_suite(write_suite(tmp_path, {**tiny_suite(), "datasets": ["bad_labels"]}),
                      RunOptions(out_dir=tmp_path / "o", cache_dir=tmp_path / "c"))
    finally:
        DATASETS.unregister("bad_labels")
    assert not (tmp_path / "o").exists()


def test_unusable_out_summary_and_cache_are_found_before_any_work(tmp_path: Path) -> None:
    suite = str(write_suite(tmp_path, tiny_suite()))
    a_file = tmp_path / "file"
    a_file.write_text("x")
    one_line(cli("run", suite, "--out", str(a_file)), 2, "is a file, not a folder")
    one_line(cli("run", suite, "--out", str(a_file / "under")), 2, "is not writable (a parent is a file)")
    one_line(cli("run", suite, "--out", str(tmp_path / "o"), "--cache-dir", str(a_file)), 2,
             "checkpoint cache (--cache-dir)", "is a file")
    one_line(cli("run", suite, "--out", str(tmp_path / "o2"), "--summary", str(tmp_path)), 2,
             "--summary", "is a folder")
    assert not (tmp_path / "o2" / "store.sqlite").exists()


def test_a_closed_pipe_is_not_a_traceback(tmp_path: Path) -> None:
    suite = str(write_suite(tmp_path, tiny_suite()))
    assert mmbench("run", suite, "--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c")).returncode == 0
    done = subprocess.run(f"{sys.executable} -m mmbench ls corruptions | head -1", shell=True, cwd=REPO,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert "Traceback" not in done.stderr and len(done.stdout.splitlines()) == 1


# -- the store: damaged, read-only, locked -------------------------------------------------------------

def _run(tmp_path: Path, suite: dict | None = None, out: Path | None = None, *extra: str) -> Completed:
    """``mmbench run`` of a small suite, in this process (the CLI's own exit paths; a subprocess
    only where a test needs one: signals, locks held by another process)."""
    path = write_suite(tmp_path, suite or tiny_suite(perturbations=["clean", ADV]))
    return cli("run", str(path), "--out", str(out or tmp_path / "o"), "--cache-dir", str(tmp_path / "c"), *extra)


def test_a_damaged_store_is_salvaged_and_the_rerun_computes_only_what_was_lost(tmp_path: Path) -> None:
    assert _run(tmp_path).returncode == 0
    original = (tmp_path / "o" / "results.csv").read_text()
    store = tmp_path / "o" / "store.sqlite"
    subprocess.run([sys.executable, "-c", f"import sqlite3; sqlite3.connect('{store}').execute('PRAGMA wal_checkpoint(TRUNCATE)')"],
                   check=True)
    data = bytearray(store.read_bytes())
    middle = len(data) // 2 // 4096 * 4096
    data[middle:middle + 4096] = b"\xff" * 4096  # one page of garbage
    store.write_bytes(bytes(data))
    status = mmbench("status", str(tmp_path / "o"))
    assert status.returncode == 1 and "damaged" in status.stderr and "mmbench repair" in status.stderr
    assert "Traceback" not in status.stderr
    repaired = mmbench("repair", str(tmp_path / "o"))
    assert repaired.returncode == 0, repaired.stderr
    assert "kept" in repaired.stdout and list((tmp_path / "o").glob("store.sqlite.damaged-*"))
    rerun = _run(tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert (tmp_path / "o" / "results.csv").read_text() == original


def test_a_damaged_row_is_reported_and_recomputed(tmp_path: Path) -> None:
    import sqlite3

    assert _run(tmp_path).returncode == 0
    original = (tmp_path / "o" / "results.csv").read_text()
    db = sqlite3.connect(tmp_path / "o" / "store.sqlite")
    keys = [k for (k,) in db.execute("SELECT key FROM cells WHERE kind = 'eval' ORDER BY key LIMIT 2")]
    db.execute("UPDATE cells SET rows = '{broken' WHERE key = ?", (keys[0],))
    db.execute("UPDATE samples SET probs = x'00' WHERE key = ?", (keys[1],))
    db.commit()
    db.close()
    status = cli("status", str(tmp_path / "o"))
    assert status.returncode == 0 and "2 damaged" in status.stdout and "recomputes it" in status.stdout
    rerun = _run(tmp_path)
    assert rerun.returncode == 0 and "2 cells to run" in rerun.stderr, rerun.stderr
    assert (tmp_path / "o" / "results.csv").read_text() == original


@contextmanager
def tmpfs(path: Path, size: str) -> Any:
    """A small tmpfs at ``path``, unmounted afterwards. Mounting needs root (CI runs as root); a
    run without mount rights fails here rather than passing without testing anything."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.fail(f"needs a tmpfs (run the tests as root, with mount rights): {mounted.stderr.strip()[:100]}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_a_read_only_results_folder_can_still_be_read(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "64m") as folder:
        assert _run(tmp_path, out=folder / "o").returncode == 0
        other = _run(tmp_path, out=tmp_path / "b")
        assert other.returncode == 0
        remount = subprocess.run(["mount", "-o", "remount,ro", str(folder)], capture_output=True, text=True)
        assert remount.returncode == 0, remount.stderr
        status = mmbench("status", str(folder / "o"))
        assert status.returncode == 0 and "0 pending, 0 failed" in status.stdout, status.stderr
        report = mmbench("report", str(folder / "o"))
        assert report.returncode == 0 and "Leaderboard" in report.stdout and "read-only" in report.stderr
        compare = mmbench("compare", str(folder / "o"), str(tmp_path / "b"))
        assert compare.returncode == 0 and "paired differences" in compare.stdout, compare.stderr
        one_line(_run(tmp_path, out=folder / "new"), 2, "is not writable (read-only file system)")


def test_disk_full_is_one_line_and_the_rerun_resumes(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", "300k") as folder:
        full = _run(tmp_path, out=folder / "o")
        assert full.returncode == 1 and "Traceback" not in full.stderr
        assert "disk full" in full.stderr.strip().splitlines()[-1]
        assert "finished cells are kept" in full.stderr
        grown = subprocess.run(["mount", "-o", "remount,size=64m", str(folder)], capture_output=True, text=True)
        assert grown.returncode == 0, grown.stderr
        resumed = _run(tmp_path, out=folder / "o")
        assert resumed.returncode == 0 and "already done" in resumed.stderr, resumed.stderr
        assert (folder / "o" / "results.csv").read_text() == (_run(tmp_path, out=tmp_path / "ref").returncode == 0
                                                              and (tmp_path / "ref" / "results.csv").read_text())


def test_one_run_per_results_folder_and_a_stale_lock_is_taken_over(tmp_path: Path) -> None:
    from mmbench.store.folders import LOCK

    path = write_suite(tmp_path, tiny_suite(models=["late_fusion"], recipes=[
        {"name": "standard", "params": {"epochs": 200, "patience": 0}}]))
    args = [sys.executable, "-m", "mmbench", "run", str(path), "--out", str(tmp_path / "o"),
            "--cache-dir", str(tmp_path / "c")]
    first = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (tmp_path / "o" / "store.sqlite").exists():
            time.sleep(0.2)
        second = mmbench("run", str(path), "--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c2"))
        one_line(second, 2, f"pid {first.pid}", "--wait")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert json.loads((tmp_path / "o" / LOCK).read_text())["pid"] == first.pid  # left behind by kill -9
    quick = tiny_suite(models=["late_fusion"])
    resumed = _run(tmp_path, quick, tmp_path / "o")
    assert resumed.returncode == 0, resumed.stderr


def test_waiting_for_the_folder(tmp_path: Path) -> None:
    from mmbench.store.folders import FolderLock

    (tmp_path / "o").mkdir()
    with FolderLock(tmp_path / "o"):
        waiting = subprocess.Popen([sys.executable, "-m", "mmbench", "run", str(write_suite(tmp_path, tiny_suite())),
                                    "--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c"), "--wait", "-q"],
                                   cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env={**os.environ, "PYTHONPATH": str(REPO)})
        time.sleep(8)
        assert waiting.poll() is None  # still waiting for the lock
    out, err = waiting.communicate(timeout=600)
    assert waiting.returncode == 0, err and "Leaderboard" in out


# -- checkpoints, paths, escaping ----------------------------------------------------------------------

def test_a_planted_or_broken_checkpoint_is_retrained_not_trusted(tmp_path: Path) -> None:
    import torch

    assert _run(tmp_path, tiny_suite(models=["late_fusion"])).returncode == 0
    original = (tmp_path / "o" / "results.csv").read_text()
    (checkpoint,) = (tmp_path / "c").glob("*.pt")
    payload = torch.load(checkpoint, weights_only=True)
    poisoned = {k: v * float("nan") if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
    torch.save({**payload, "state_dict": poisoned}, checkpoint)  # planted: no matching hash
    rerun = _run(tmp_path, tiny_suite(models=["late_fusion"]), tmp_path / "o2")
    assert rerun.returncode == 0 and "does not match its recorded hash" in rerun.stderr
    assert (tmp_path / "o2" / "results.csv").read_text().replace("o2", "o") == original
    digest = checkpoint.with_suffix(".sha256")
    torch.save({**payload, "state_dict": poisoned}, checkpoint)
    import hashlib
    digest.write_text(hashlib.sha256(checkpoint.read_bytes()).hexdigest())  # hash matches, weights NaN
    again = _run(tmp_path, tiny_suite(models=["late_fusion"]), tmp_path / "o3")
    assert again.returncode == 0 and "non-finite weights" in again.stderr


def test_a_suite_name_never_writes_outside_the_results_root(tmp_path: Path) -> None:
    cache = tmp_path / "c"  # shared: the model is trained once, the names only change the folder
    for i, (name, folder) in enumerate([("../../escape", "_.._escape"), ("/tmp/absolute", "_tmp_absolute"),
                                        ("a/b", "a_b")]):
        work = tmp_path / f"work{i}"
        work.mkdir()
        suite = write_suite(work, {**tiny_suite(models=["late_fusion"]), "name": name})
        done = mmbench("run", str(suite), "--cache-dir", str(cache), cwd=work)
        assert done.returncode == 0, done.stderr
        assert [p.name for p in (work / "results").iterdir()] == [folder]
        assert (work / "results" / folder / "results.csv").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c", "work0", "work1", "work2"]
    assert not Path("/tmp/absolute").exists()
    dots = mmbench("run", str(write_suite(tmp_path / "work0", {**tiny_suite(), "name": "..."})), "--cache-dir",
                   str(cache), cwd=tmp_path / "work0")
    one_line(dots, 2, "cannot be a results folder name")


def test_labels_are_escaped_in_boards_and_csv_cells_cannot_run(tmp_path: Path) -> None:
    from mmbench.store.exports import read_csv

    label = "=cmd|'/c calc'!A1 <img src=x onerror=alert(1)>"
    assert _run(tmp_path, tiny_suite(models=[{"name": "late_fusion", "label": label}])).returncode == 0
    raw = pd.read_csv(tmp_path / "o" / "results.csv")
    assert set(raw["model"]) == {"'" + label}  # a spreadsheet shows text, never runs a formula
    assert set(read_csv(tmp_path / "o" / "results.csv")["model"]) == {label}  # read back losslessly
    board = (tmp_path / "o" / "LEADERBOARD.md").read_text()
    assert "<img" not in board and "&lt;img src=x onerror=alert(1)&gt;" in board  # text, not markup
    header, rule, row = [line for line in board.splitlines() if line.startswith("|")][:3]
    assert header.count("|") == row.count("|") - row.count("\\|")  # the label's pipe cannot split the row
    page = (tmp_path / "o" / "report.html").read_text()
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "=cmd|&#x27;/c calc&#x27;!A1" in page


def test_exit_codes_are_documented() -> None:
    readme = (REPO / "README.md").read_text()
    for code in ("| 0 |", "| 1 |", "| 2 |", "| 130 |", "| 141 |"):
        assert code in readme
