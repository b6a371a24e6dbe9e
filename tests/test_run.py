"""End-to-end runs: result files, cache reuse, determinism, corrupted checkpoints."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import tiny_suite, write_suite

from mmbench.config.suite import load_suite
from mmbench.metrics.outcomes import stack
from mmbench.registry import METRICS
from mmbench.runner import RunOptions, run_suite
from mmbench.store.rows import BASE_COLUMNS, MEASURE_COLUMNS

REQUIRED = ["suite", "dataset", "model", "recipe", "seed", "family", "perturbation", "target",
            "severity", "metric", "value", "n"]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    path = write_suite(root, tiny_suite(models=["late_fusion", "unimodal"], seeds=[0, 1]))
    result = run_suite(path, RunOptions(out_dir=root / "out", cache_dir=root / "cache", progress=False))
    return root, path, result


def test_rows_and_files(first_run) -> None:
    root, _, result = first_run
    frame = pd.read_csv(root / "out" / "results.csv")
    assert list(frame.columns) == [*BASE_COLUMNS, *MEASURE_COLUMNS] and set(REQUIRED) <= set(frame.columns)
    # late_fusion + unimodal expanded to the four modalities, two seeds, two metrics
    assert len(frame) == (1 + 4) * 2 * 2
    assert set(frame["model"]) == {"late_fusion", "unimodal[img]", "unimodal[aud]",
                                   "unimodal[tab]", "unimodal[txt]"}
    assert set(frame["metric"]) == {"accuracy", "macro_f1"}
    assert frame["value"].between(0, 1).all() and (frame["n"] == 33).all()  # 54+53+53 rows, 20% per class
    doc = json.loads((root / "out" / "results.json").read_text())
    assert doc["schema_version"] == 2 and len(doc["rows"]) == len(frame)
    assert {"config", "versions", "git", "device", "timings"} <= set(doc)
    assert doc["versions"]["torch"] and doc["device"] == "cpu"
    assert doc["models_trained"] == 10 and doc["models_from_cache"] == 0
    assert doc["config"]["seeds"] == [0, 1]


def test_leaderboard_ranks_models_with_mean_and_std(first_run) -> None:
    root, _, result = first_run
    board = (root / "out" / "LEADERBOARD.md").read_text()
    assert board == result.leaderboard
    lines = [line for line in board.splitlines() if line.startswith("| ")]
    header, body = lines[0], lines[1:]
    assert "accuracy" in header and "macro_f1" in header and len(body) == 5 + 2  # + the trivial baselines
    assert all(" ± " in line for line in body)
    assert "(majority class)" in body[-2] and "(chance)" in body[-1]
    frame = result.frame[result.frame["metric"] == "accuracy"]
    best = frame.groupby("model")["value"].mean().sort_values(ascending=False, kind="stable")
    assert f"| {best.index[0]} " in body[0].replace("| 1 ", "", 1)


def test_second_run_trains_nothing_and_gives_identical_tables(first_run) -> None:
    root, path, first = first_run
    again = run_suite(path, RunOptions(out_dir=root / "out2", cache_dir=root / "cache", progress=False))
    assert again.models_trained == 0 and again.models_from_cache == 10
    assert (root / "out" / "results.csv").read_bytes() == (root / "out2" / "results.csv").read_bytes()


def test_fresh_cache_reproduces_the_same_table(first_run, tmp_path: Path) -> None:
    root, path, first = first_run
    fresh = run_suite(path, RunOptions(out_dir=tmp_path / "o", cache_dir=tmp_path / "c", progress=False))
    assert fresh.models_trained == 10
    pd.testing.assert_frame_equal(fresh.frame, first.frame)


def test_changed_recipe_retrains_only_what_changed(first_run, tmp_path: Path) -> None:
    root, path, _ = first_run
    suite = load_suite(path).with_seeds((0, 5))
    result = run_suite(suite, RunOptions(out_dir=tmp_path / "o", cache_dir=root / "cache", progress=False))
    assert result.models_from_cache == 5 and result.models_trained == 5


def test_corrupted_checkpoint_is_retrained(tmp_path: Path) -> None:
    path = write_suite(tmp_path, tiny_suite(models=["seed_concat"]))
    opts = RunOptions(out_dir=tmp_path / "o", cache_dir=tmp_path / "c", progress=False)
    first = run_suite(path, opts)
    (checkpoint,) = (tmp_path / "c").glob("*.pt")
    checkpoint.write_bytes(b"not a checkpoint")
    second = run_suite(path, RunOptions(out_dir=tmp_path / "o2", cache_dir=tmp_path / "c", progress=False))
    assert second.models_trained == 1
    pd.testing.assert_frame_equal(first.frame, second.frame)


def test_adversarial_suite_end_to_end(tmp_path: Path) -> None:
    """Attacks in a suite: rows per (attack, target, eps), the robust board and sanity checks."""
    suite = tiny_suite(models=["late_fusion"], perturbations=["clean", {
        "name": "adversarial",
        "params": {"attacks": ["fgsm", "pgd"], "eps": [0.05, 0.2], "targets": ["img", "all"],
                   "ensemble": True, "options": {"pgd": {"steps": 3}}}}])
    path = write_suite(tmp_path, suite)
    result = run_suite(path, RunOptions(out_dir=tmp_path / "o", cache_dir=tmp_path / "c", progress=False))
    adv = result.frame[(result.frame["family"] == "adversarial") & (result.frame["metric"] == "accuracy")]
    assert set(adv["perturbation"]) == {"fgsm-Linf", "pgd-Linf", "worst[fgsm,pgd]-Linf"}
    # 'all' covers the continuous modalities and says so: the data also has tokens (txt)
    assert set(adv["target"]) == {"img", "img+aud+tab"} and set(adv["severity"]) == {0.05, 0.2}
    assert len(adv) == 3 * 2 * 2
    clean = result.frame[(result.frame["family"] == "clean") & (result.frame["metric"] == "accuracy")]
    assert (adv["value"] <= float(clean["value"].iloc[0]) + 1e-9).all()
    assert "robust accuracy (worst attack per target@eps)" in result.leaderboard
    assert "img+aud+tab@0.2" in result.leaderboard and "Sanity checks:" in result.leaderboard
    robust = result.leaderboard.split("robust accuracy (worst attack per target@eps)")[1].split("##")[0]
    assert robust.count(" ± ") >= 4  # value ± half-width of the worst attack's interval
    doc = json.loads((tmp_path / "o" / "results.json").read_text())
    assert doc["sanity"] and {"check", "passed", "detail"} <= set(doc["sanity"][0])


def test_the_harness_scores_what_the_perturbation_returns(synth) -> None:
    """Accuracy comes from the model on the returned batch, never from the perturbation."""
    from dataclasses import dataclass

    import torch

    import mmbench
    from mmbench.execution.evaluate import EvalSettings, evaluate
    from mmbench.perturb.base import Perturbation

    seen = []

    @dataclass(frozen=True)
    class Scramble(Perturbation):
        def apply(self, model, batch, labels, seed):
            out = {k: (v.flip(0) if k == "img" else v) for k, v in batch.items()}
            seen.append(out)
            return out

    torch.manual_seed(0)
    model = mmbench.create_model("unimodal", synth.modalities, synth.n_classes, modality="img").eval()
    samples = evaluate(model, synth.test, Scramble("test", "scramble"), EvalSettings(7, 0)).samples("s")
    preds = torch.cat([model(b).argmax(1) for b in seen])
    assert np.array_equal(samples.preds, preds.numpy()) and len(samples.preds) == len(synth.test)
    value = METRICS.get("accuracy")(synth.n_classes).value(stack([samples], synth.n_classes, False))[0]
    assert value == pytest.approx(float((preds == synth.test.labels).float().mean()))


ROBUST = ["clean", {"name": "adversarial", "params": {"attacks": ["fgsm"], "eps": [0.1], "targets": ["all"]}}]
HITS = '''
from mmbench.metrics.base import RowMetric


class Hits(RowMetric):
    def row_values(self, outcomes):
        return (outcomes.preds == outcomes.labels) * {scale}
'''


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """A suite scored by balanced_accuracy, its checkpoints cached: (folder, suite path, options)."""
    root = tmp_path_factory.mktemp("scored")
    suite = tiny_suite(models=["late_fusion"], perturbations=ROBUST, metrics=["accuracy", "balanced_accuracy"],
                       score_metric="balanced_accuracy")
    path = write_suite(root, suite)
    return root, path, run_suite(path, RunOptions(out_dir=root / "first", cache_dir=root / "cache", progress=False))


def _published(folder: Path) -> dict[str, int]:
    """Modification time of every file a publish writes (the store and the lock left out)."""
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")
            if p.is_file() and not p.name.startswith((".", "store.sqlite"))}


def test_boards_name_the_metric_their_scores_are_computed_from(scored) -> None:
    root, _, result = scored
    heading = "synthetic: main board, scores of balanced_accuracy"
    board = (root / "first" / "LEADERBOARD.md").read_text()
    assert f"## {heading} (scores: docs/metrics.md)" in board
    assert "Scores read balanced_accuracy where they say accuracy." in board
    assert f"<h3>{heading}</h3>" in (root / "first" / "report.html").read_text().replace("\n", "")
    assert f"## {heading}\n" in result.summary and "Scores read balanced_accuracy" in result.summary
    assert "clean_accuracy" in result.summary  # score names are identifiers: they keep their names


def test_a_rerun_with_nothing_changed_keeps_the_files_and_prints_the_board(scored, tmp_path: Path, capsys) -> None:
    from mmbench.cli import main

    root, path, _ = scored
    opts = RunOptions(out_dir=tmp_path / "o", cache_dir=root / "cache", progress=False)
    first = run_suite(path, opts)
    written = _published(tmp_path / "o")
    assert not first.kept and "plots/profile_synthetic.png" in written
    capsys.readouterr()
    assert main(["run", str(path), "--out", str(tmp_path / "o"), "--cache-dir", str(root / "cache")]) == 0
    printed = capsys.readouterr()
    assert printed.out == first.summary and "## synthetic: main board" in printed.out
    assert "0 cells to run" in printed.err and "nothing changed since the last publish: kept the files" in printed.err
    assert f"kept {tmp_path / 'o' / 'results.csv'}" in printed.err
    again = run_suite(path, opts)
    assert again.kept and _published(tmp_path / "o") == written
    assert again.leaderboard == first.leaderboard and again.boards == first.boards
    pd.testing.assert_frame_equal(again.frame, first.frame)
    pd.testing.assert_frame_equal(again.scores.reset_index(drop=True), first.scores.reset_index(drop=True))
    assert main(["report", str(tmp_path / "o"), "-q"]) == 0  # report always re-renders
    rendered = _published(tmp_path / "o")
    assert rendered.keys() == written.keys() and rendered["report.html"] != written["report.html"]


def test_a_change_republishes(scored, tmp_path: Path, caplog) -> None:
    """--force, a metric added to the suite, a published file deleted: each publishes again."""
    root, path, _ = scored
    out = tmp_path / "o"
    run_suite(path, RunOptions(out_dir=out, cache_dir=root / "cache", progress=False))
    added = write_suite(tmp_path, {**yaml.safe_load(path.read_text()),
                                   "metrics": ["accuracy", "balanced_accuracy", "macro_f1"]})
    logs = {}
    for change, suite, extra in (("forced", path, {"force": True}), ("metric added", added, {}),
                                 ("file deleted", added, {})):
        if change == "file deleted":
            (out / "report.html").unlink()
        before = _published(out)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="mmbench"):
            result = run_suite(suite, RunOptions(out_dir=out, cache_dir=root / "cache", progress=False, **extra))
        logs[change] = caplog.text
        assert not result.kept and "nothing changed" not in caplog.text, change
        after = _published(out)
        assert after["LEADERBOARD.md"] != before["LEADERBOARD.md"] and "report.html" in after, change
    rows = int((result.frame["metric"] == "macro_f1").sum())
    assert f"metric 'macro_f1' is new since the last publish: its {rows} rows computed from stored outcomes" \
        in logs["metric added"]
    assert "metric '" not in logs["forced"] + logs["file deleted"]
    assert run_suite(added, RunOptions(out_dir=out, cache_dir=root / "cache", progress=False)).kept


def test_the_log_names_a_metric_whose_code_changed(scored, tmp_path: Path, caplog) -> None:
    import importlib.util
    import sys

    root, path, _ = scored
    suite = write_suite(tmp_path, {**yaml.safe_load(path.read_text()),
                                   "metrics": ["accuracy", "balanced_accuracy", "hits"]})
    source = tmp_path / "edited_hits.py"

    def register(scale: str) -> None:
        source.write_text(HITS.format(scale=scale))
        spec = importlib.util.spec_from_file_location("edited_hits", source)
        module = importlib.util.module_from_spec(spec)
        sys.modules["edited_hits"] = module
        spec.loader.exec_module(module)
        METRICS.unregister("hits")
        METRICS.register("hits", module.Hits, source="edited_hits")

    opts = RunOptions(out_dir=tmp_path / "o", cache_dir=root / "cache", progress=False)
    try:
        register("1")
        first = run_suite(suite, opts)
        assert run_suite(suite, opts).kept
        register("0.5")
        with caplog.at_level(logging.INFO, logger="mmbench"):
            edited = run_suite(suite, opts)
    finally:
        METRICS.unregister("hits")
        sys.modules.pop("edited_hits", None)
    assert not edited.kept
    rows = int((edited.frame["metric"] == "hits").sum())
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("metric ")]
    assert lines == [f"metric 'hits' changed since the last publish: its {rows} rows recomputed from stored outcomes"]
    hits = [r[r["metric"] == "hits"].set_index("cell")["value"] for r in (first.frame, edited.frame)]
    assert np.allclose(hits[1], hits[0][hits[1].index] / 2)
