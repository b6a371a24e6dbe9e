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

REPO = Path(__file__).resolve().parents[1]

CODE = '''
from dataclasses import dataclass

import torch

from mmbench.stats.curves import KEY, seed_mean
from mmbench.families.base import Family, ScoreSpec
from mmbench.perturb.base import Perturbation
from mmbench.render.plots import curves
from mmbench.render.tables import level_table

NAME = "misalignment"


@dataclass(frozen=True)
class Shuffle(Perturbation):
    """A fraction ``severity`` of the rows get another row's ``target`` modality."""

    def facts(self):
        return {"shuffled": self.target}

    def apply(self, model, batch, labels, seed):
        g = torch.Generator().manual_seed(seed)
        n = len(labels)
        moved = torch.rand(n, generator=g) < self.severity
        index = torch.where(moved, torch.randperm(n, generator=g), torch.arange(n)).to(labels.device)
        return {**batch, self.target: batch[self.target][index]}


def misalignment(modalities, n_classes, rates: list = None):
    """Misaligned pairs: one modality of some rows comes from another row."""
    return [Shuffle(family=NAME, name="shuffle", target=m.name, severity=float(r))
            for m in modalities for r in (rates or [0.5])]


class Misalignment(Family):
    name = NAME
    title = "misaligned modalities"
    order = 60
    scores = (ScoreSpec("misaligned_accuracy", "mean value over shuffled modalities and rates",
                        "misalignment", main=True),)
    composite = "misaligned_accuracy"

    def compute(self, ctx):
        rows = seed_mean(ctx.rows(NAME), ["target", "severity"])
        return {"misaligned_accuracy": rows.groupby(KEY)["value"].mean()}

    def boards(self, ctx, dataset):
        rows = ctx.rows(NAME)
        board = level_table(rows[rows["dataset"] == dataset], ["model", "recipe", "shuffled"])
        return [(f"{dataset}: misaligned modalities ({ctx.scorer.name} vs share of rows shuffled)", board)]

    def plots(self, ctx, out_dir):
        rows = ctx.rows(NAME).rename(columns={"severity": "level"})
        return [curves(g, out_dir, [NAME, dataset], "share of rows shuffled", ctx.scorer.name,
                       f"misaligned modalities, {dataset}") for dataset, g in rows.groupby("dataset")]
'''

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
