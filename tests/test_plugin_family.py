"""A plugin family end to end: an installed package adds a perturbation (shuffling one modality
across rows: misaligned pairs) and its family; its score joins the main board and the
composite with an interval, its board and plot appear in LEADERBOARD.md and report.html, and
its rows carry its own fact column."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import install_package, pyproject, tiny_suite, write_suite
from misaligned import FAMILY, PERTURBATION

REPO = Path(__file__).resolve().parents[1]

CODE = PERTURBATION + FAMILY

PYPROJECT = pyproject("mmbench-demo-family", {"mmbench.perturbations": {"misalignment": "demo_family:misalignment"},
                                               "mmbench.families": {"misalignment": "demo_family:Misalignment"}})


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    site = install_package(tmp_path_factory.mktemp("family_src"), tmp_path_factory.mktemp("family_site"),
                           {"pyproject.toml": PYPROJECT, "demo_family.py": CODE})
    folder = tmp_path_factory.mktemp("family_run")
    adversarial = {"name": "adversarial", "params": {"attacks": ["fgsm"], "eps": [0.1], "targets": ["all"]}}
    misaligned = {"name": "misalignment", "params": {"rates": [0.25, 0.75]}}
    suite = write_suite(folder, tiny_suite(perturbations=["clean", adversarial, misaligned]))
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run([sys.executable, "-m", "mmbench", "run", str(suite), "--out", str(folder / "o"),
                           "--cache-dir", str(folder / "c")], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return folder / "o"


def test_its_score_joins_the_main_board_and_the_composite(run: Path) -> None:
    scores = pd.read_csv(run / "scores.csv").set_index(["model", "score"])
    for model in ("late_fusion", "seed_concat"):
        ours = scores.loc[(model, "misaligned_accuracy")]
        assert ours["ci_low"] <= ours["value"] <= ours["ci_high"] and ours["ci_high"] > ours["ci_low"]
        parts = [scores.loc[(model, s), "value"] for s in ("adv_robust_accuracy", "misaligned_accuracy")]
        assert scores.loc[(model, "composite"), "value"] == pytest.approx(sum(parts) / 2)
    board = (run / "LEADERBOARD.md").read_text()
    main = board.split("main board")[1].split("\n## ")[0]
    assert "misaligned_accuracy" in main.splitlines()[2]
    assert "composite = mean of adv_robust_accuracy, misaligned_accuracy" in main


def test_its_board_plot_and_facts_are_published(run: Path) -> None:
    board = (run / "LEADERBOARD.md").read_text()
    assert "## synthetic: misaligned modalities (accuracy vs share of rows shuffled)" in board
    assert (run / "plots" / "misalignment_synthetic.png").is_file()
    page = (run / "report.html").read_text()
    assert "misaligned modalities" in page and 'alt="misalignment synthetic"' in page
    rows = pd.read_csv(run / "results.csv")
    ours = rows[rows["family"] == "misalignment"]
    assert set(ours["shuffled"]) == {"img", "aud", "tab", "txt"} and ours["ci_low"].notna().all()
