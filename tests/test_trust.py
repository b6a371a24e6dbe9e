"""Conclusions a reader cannot be misled by (issue 21, points 1-3): degenerate models flagged and
never named by the reading, modalities a model does not read reported as "not read" and kept out
of the scores, and every robust-vs-clean comparison on the same rows (row ids stored)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import mmbench
from mmbench.errors import MMBenchError
from mmbench.execution.evaluate import eval_rows
from mmbench.metrics.outcomes import Samples, SampleSet
from mmbench.registry import MODELS

COUNTS = (480, 30, 30, 30, 30)  # 80% one class


def imbalanced(folder: Path) -> Path:
    """Five imbalanced classes; two informative vector modalities and one of pure noise."""
    rng = np.random.default_rng(0)
    y = np.concatenate([np.full(c, i) for i, c in enumerate(COUNTS)])
    centers = rng.normal(size=(5, 8))
    arrays = {"sig": centers[y] * 0.9 + rng.normal(size=(len(y), 8)),
              "tab": centers[y][:, :4] * 0.9 + rng.normal(size=(len(y), 4)),
              "vitals": rng.normal(size=(len(y), 3))}
    path = folder / "clinic.npz"
    np.savez(path, labels=y, **{k: v.astype(np.float32) for k, v in arrays.items()})
    return path


def suite(path: Path, models: list, class_weights: str = "none", **extra) -> dict:
    return {"name": "clinic", "datasets": [{"name": "arrays", "params": {
                "path": str(path), "modalities": {"sig": "vector", "tab": "vector", "vitals": "vector"}}}],
            "models": models, "recipes": [{"name": "standard", "params": {"epochs": 15, "class_weights": class_weights}}],
            "metrics": ["balanced_accuracy", "accuracy"], "score_metric": "balanced_accuracy", "seeds": [0], **extra}


ATTACK = {"name": "adversarial", "params": {"attacks": ["fgsm"], "eps": [0.05], "targets": ["each", "all"],
                                            "max_rows": 60}}


@pytest.fixture(scope="module")
def clinic(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("clinic")
    return root, imbalanced(root)


def _run(root: Path, path: Path, tag: str, models: list, class_weights: str = "none"):
    return mmbench.run(suite(path, models, class_weights, perturbations=["clean", ATTACK]),
                       out_dir=root / tag, cache_dir=root / "cache", progress=False)


def test_a_majority_class_model_is_flagged_and_never_crowned(clinic) -> None:
    root, path = clinic
    result = _run(root, path, "plain", ["late_fusion", "early_fusion"])
    sanity = pd.DataFrame(__import__("json").loads((root / "plain" / "results.json").read_text())["sanity"])
    flags = sanity[sanity["check"] == "degenerate"]
    assert len(flags) == 2 and not flags["passed"].any()  # both collapsed onto the majority class
    assert "[degenerate]" in result.summary and "most robust" not in result.summary
    assert "weakest modality" not in result.summary and "largest drop" not in result.summary
    assert "no conclusion about robustness can be drawn" in result.summary
    clean_board = result.boards["arrays (clean, test split)"]
    assert "(majority class)" in clean_board and "(chance)" in clean_board
    html = (root / "plain" / "report.html").read_text()
    assert "late_fusion [degenerate]" in html
    baselines = pd.read_csv(root / "plain" / "baselines.csv")
    majority = baselines[(baselines["perturbation"] == "majority_class") & (baselines["metric"] == "accuracy")]
    assert majority["value"].round(4).eq(0.8).all()  # 80% of the test rows are the majority class


def test_balanced_class_weights_train_a_model_that_is_not_flagged(clinic) -> None:
    root, path = clinic
    result = _run(root, path, "balanced", ["late_fusion"], "balanced")
    clean = result.frame[(result.frame["family"] == "clean") & (result.frame["metric"] == "balanced_accuracy")]
    assert float(clean["value"].iloc[0]) > 0.4  # well above 0.2, the majority class's balanced accuracy
    assert "[degenerate]" not in result.summary and "late_fusion is the most robust model" in result.summary


class TwoInputs(nn.Module):
    """A plain model that takes sig and tab by name, never vitals."""

    def __init__(self, n_classes: int = 5) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(8, 16), nn.Linear(4, 16)
        self.head = nn.Linear(16, n_classes)

    def forward(self, sig: torch.Tensor, tab: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.a(sig) + self.b(tab)))


@pytest.fixture
def two_inputs():
    MODELS.register("two_inputs", TwoInputs, source="test")
    MODELS.register("two_declared", type("Declared", (TwoInputs,), {}), source="test",
                    modalities={"sig": "vector", "tab": "vector"})
    yield
    MODELS.unregister("two_inputs")
    MODELS.unregister("two_declared")


def test_an_unread_modality_is_said_not_scored(clinic, two_inputs, capsys) -> None:
    root, path = clinic
    spec = suite(path, ["two_inputs"], "balanced", perturbations=["clean", ATTACK])
    (root / "unread.yaml").write_text(__import__("yaml").safe_dump(spec))
    from mmbench.cli import main
    assert main(["validate", str(root / "unread.yaml")]) == 0
    assert "model 'two_inputs' does not take modality 'vitals' of dataset 'arrays'" in capsys.readouterr().err
    result = mmbench.run(spec, out_dir=root / "unread", cache_dir=root / "cache", progress=False)
    board = result.boards["arrays: robust balanced_accuracy (worst attack per target@eps)"]
    assert "not read" in board and "vitals@0.05" in board
    frame = result.frame
    adv = frame[(frame["family"] == "adversarial") & (frame["metric"] == "balanced_accuracy")]
    assert set(adv.loc[~adv["read"].astype(bool), "target"]) == {"vitals"}  # kept in results.csv, marked
    scores = result.scores.set_index("score")["value"]
    read = adv[adv["read"].astype(bool)]
    assert scores["adv_robust_accuracy"] == pytest.approx(read["value"].mean())
    assert scores["composite"] == pytest.approx(read["value"].mean())  # vitals has no effect on it


def test_metadata_that_declares_modalities_must_declare_every_one(clinic, two_inputs) -> None:
    root, path = clinic
    with pytest.raises(MMBenchError, match="also has vitals, which it would never read"):
        mmbench.run(suite(path, ["two_declared"]), out_dir=root / "declared", cache_dir=root / "cache",
                    progress=False)


def test_max_rows_compares_with_clean_on_the_same_rows(clinic) -> None:
    root, path = clinic
    result = _run(root, path, "balanced", ["late_fusion"], "balanced")  # the run above, resumed
    rows = mmbench.outcomes(root / "balanced")
    clean = rows[rows["family"] == "clean"].set_index("row")
    attacked = rows[rows["family"] == "adversarial"]
    n = len(clean)
    expected = eval_rows(n, 60, torch.device("cpu")).numpy()
    sanity = pd.DataFrame(__import__("json").loads((root / "balanced" / "results.json").read_text())["sanity"])
    checks = sanity[sanity["check"] == "robust_le_clean"].set_index("target")["passed"]
    for _, cell in attacked.groupby("cell"):
        assert np.array_equal(cell["row"].to_numpy(), expected)  # the stored row ids of max_rows
        same = clean.loc[cell["row"], "correct"].to_numpy()
        # compared with clean on exactly those rows: an attack that makes wrong rows right (FGSM
        # can) is flagged by the sanity check, never hidden behind clean on all rows
        above = cell["correct"].mean() > same.mean() + 1e-12
        assert bool(checks[cell["target"].iloc[0]]) == (not above)
    # the analysis compares with clean on exactly those rows (not on all n)
    balanced = clean.loc[expected]
    per_class = balanced.groupby("label")["correct"].mean()
    scores = result.scores.set_index("score")["value"]
    assert scores["adv_clean_accuracy"] == pytest.approx(per_class.mean())
    assert (sanity["check"] == "robust_le_clean").any()


def test_restricted_outcomes_keep_every_draw_of_the_chosen_rows() -> None:
    full = Samples(SampleSet("d", "test"), np.arange(8, dtype=np.int16), np.zeros(8, np.int16),
                   np.linspace(0, 1, 8).astype(np.float32), draws=2, row_ids=np.array([0, 3, 5, 9], np.int32))
    part = full.restricted(SampleSet("d", "test", 2), np.array([3, 9], np.int32))
    assert part.preds.tolist() == [1, 3, 5, 7] and part.row_ids.tolist() == [3, 9] and part.draws == 2
    with pytest.raises(ValueError):
        full.restricted(SampleSet("d", "test", 1), np.array([4], np.int32))


def test_leaving_out_an_unread_modality_is_not_read_on_the_views_board(clinic, two_inputs) -> None:
    root, path = clinic
    spec = suite(path, ["two_inputs"], "balanced", perturbations=["clean", {"name": "missing",
                                                                             "params": {"imputation": ["zeros"]}}])
    result = mmbench.run(spec, out_dir=root / "views", cache_dir=root / "cache", progress=False)
    board = next(b for h, b in result.boards.items() if "left out" in h)
    header, _, line = [r for r in board.splitlines() if r.startswith("|")][:3]
    cells = dict(zip([c.strip() for c in header.split("|")], [c.strip() for c in line.split("|")], strict=True))
    assert cells["-vitals"] == "not read" and cells["-sig"] != "not read"
    shapley = pd.read_csv(root / "views" / "shapley.csv")
    vitals = shapley[(shapley["modality"] == "vitals") & (shapley["metric"] == "balanced_accuracy")]
    assert np.allclose(vitals["shapley"], 0.0)  # the sweep still counts it: it contributes nothing


def test_an_only_column_that_removes_nothing_the_model_reads_is_not_read() -> None:
    from mmbench.families.missing import views_board
    from mmbench.render.tables import Board
    from mmbench.report.marks import mark_board

    every = pd.DataFrame([dict(dataset="d", metric="accuracy", model=m, recipe="r", imputation="zeros", view=v,
                               modality=x, value=0.5) for m in ("both", "solo") for v in ("leave_one_out", "only_one")
                          for x in ("a", "b")])
    views = every[~((every["model"] == "solo") & ((every["view"] == "only_one") == (every["modality"] == "a")))]
    table = views_board(views, "accuracy", "d", every=every)
    marked = mark_board(Board("views", table), set(), ("a", "b"), {"solo": ("a",)}).table
    solo = dict(zip([c.header for c in marked.columns], next(r for r in marked.rows if r[0] == "solo"), strict=True))
    assert [str(solo[c]) for c in ("-a", "-b", "only a", "only b")] == ["0.5000", "not read", "not read", "0.5000"]
