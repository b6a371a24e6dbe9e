"""End-to-end runs: result files, cache reuse, determinism, corrupted checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
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
    assert "accuracy" in header and "macro_f1" in header and len(body) == 5
    assert all(" ± " in line for line in body)
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
    assert set(adv["target"]) == {"img", "all"} and set(adv["severity"]) == {0.05, 0.2}
    assert len(adv) == 3 * 2 * 2
    clean = result.frame[(result.frame["family"] == "clean") & (result.frame["metric"] == "accuracy")]
    assert (adv["value"] <= float(clean["value"].iloc[0]) + 1e-9).all()
    assert "robust accuracy (worst attack per target@eps)" in result.leaderboard
    assert "all@0.2" in result.leaderboard and "Sanity checks:" in result.leaderboard
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
