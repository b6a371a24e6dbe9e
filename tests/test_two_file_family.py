"""A built-in family is two files: a perturbation module in ``mmbench/perturb/`` and its family
module in ``mmbench/families/``. On a copy of the package with exactly those two files added
(nothing else changed), a run shows the family's score on the main board and in the composite,
its glossary terms, board, plot and its sentence of the reading."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from conftest import tiny_suite, write_suite
from misaligned import FAMILY, PERTURBATION, REGISTER_FAMILY, REGISTER_PERTURBATION

REPO = Path(__file__).resolve().parents[1]

@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("two_files")
    shutil.copytree(REPO / "mmbench", site / "mmbench", ignore=shutil.ignore_patterns("__pycache__"))
    added = {"perturb/misalignment.py": PERTURBATION + REGISTER_PERTURBATION,
             "families/misalignment.py": FAMILY + REGISTER_FAMILY}
    for relative, text in added.items():
        (site / "mmbench" / relative).write_text(textwrap.dedent(text))
    changed = [p for p in (site / "mmbench").rglob("*.py")
               if str(p.relative_to(site / "mmbench")) not in added
               and p.read_bytes() != (REPO / "mmbench" / p.relative_to(site / "mmbench")).read_bytes()]
    assert not changed
    folder = tmp_path_factory.mktemp("two_files_run")
    suite = write_suite(folder, tiny_suite(["late_fusion", "seed_concat"], perturbations=[
        "clean", {"name": "misalignment", "params": {"rates": [0.25, 0.75]}}]))
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run([sys.executable, "-m", "mmbench", "run", "--no-plugins", str(suite), "--out",
                           str(folder / "o"), "--cache-dir", str(folder / "c")], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return folder / "o"


def test_its_score_is_a_composite_part_on_the_main_board(run: Path) -> None:
    scores = pd.read_csv(run / "scores.csv").set_index(["model", "score"])
    for model in ("late_fusion", "seed_concat"):
        ours = scores.loc[(model, "misaligned_accuracy")]
        assert ours["ci_low"] <= ours["value"] <= ours["ci_high"] and ours["ci_high"] > ours["ci_low"]
        assert scores.loc[(model, "composite"), "value"] == pytest.approx(ours["value"])
    main = (run / "LEADERBOARD.md").read_text().split("main board")[1].split("\n## ")[0]
    assert "misaligned_accuracy" in main.splitlines()[2] and "composite = mean of misaligned_accuracy" in main


def test_its_board_plot_terms_and_reading_appear(run: Path) -> None:
    board = (run / "LEADERBOARD.md").read_text()
    assert "## synthetic: misaligned modalities (accuracy vs share of rows shuffled)" in board
    assert "hurts most." in board.split("main board")[1].split("\n## ")[0]
    assert (run / "plots" / "misalignment_synthetic.png").is_file()
    page = (run / "report.html").read_text()
    assert "The modality taken from another row (misaligned pairs)." in page
    assert "mean value over shuffled modalities and rates" in page and 'alt="misalignment synthetic"' in page
