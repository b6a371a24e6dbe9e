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

REPO = Path(__file__).resolve().parents[1]

PERTURBATION = '''
"""``misalignment``: one modality of some rows comes from another row (misaligned pairs)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mmbench.perturb.base import Perturbation
from mmbench.registry import PERTURBATIONS

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


@PERTURBATIONS.register(NAME, family=NAME, kinds=("image", "sequence", "vector", "tokens"))
def misalignment(modalities, n_classes, rates=None):
    """Misaligned pairs: one modality of some rows comes from another row."""
    return [Shuffle(family=NAME, name="shuffle", target=m.name, severity=float(r))
            for m in modalities for r in (rates or [0.5])]
'''

FAMILY = '''
"""``misalignment``'s scores, board, plot and reading."""

from __future__ import annotations

from mmbench.stats.curves import KEY, seed_mean
from mmbench.families.base import Family, ScoreSpec
from mmbench.perturb.misalignment import NAME
from mmbench.registry import FAMILIES
from mmbench.render.plots import curves
from mmbench.render.tables import level_table


@FAMILIES.register(NAME)
class Misalignment(Family):
    name = NAME
    title = "misaligned modalities"
    order = 60
    scores = (ScoreSpec("misaligned_accuracy", "mean value over shuffled modalities and rates",
                        "misalignment", main=True),)
    composite = "misaligned_accuracy"
    terms = {"shuffled": "The modality taken from another row (misaligned pairs)."}

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

    def reading(self, ctx, dataset):
        rows = ctx.rows(NAME)
        worst = rows[rows["dataset"] == dataset].groupby("target")["value"].mean().idxmin()
        return f"Misaligning {worst} hurts most."
'''


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("two_files")
    shutil.copytree(REPO / "mmbench", site / "mmbench", ignore=shutil.ignore_patterns("__pycache__"))
    added = {"perturb/misalignment.py": PERTURBATION, "families/misalignment.py": FAMILY}
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
