"""Paired bootstrap intervals over test samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_suite, write_suite
from sklearn.metrics import f1_score

from mmbench.metrics.bootstrap import BOOTSTRAP_METRICS, Samples, cell_intervals, replicates, resample_weights


def _samples(rng: np.random.Generator, n: int, p: float, sample_set: str = "d|test|all") -> Samples:
    labels = rng.integers(0, 4, n).astype(np.int16)
    correct = rng.random(n) < p
    preds = np.where(correct, labels, (labels + 1) % 4).astype(np.int16)
    return Samples(sample_set, preds, labels, rng.random(n).astype(np.float32))


def test_unit_weights_reproduce_the_metrics() -> None:
    s = _samples(np.random.default_rng(0), 300, 0.7)
    ones = np.ones((1, 300))
    assert replicates([s], "accuracy", 4, ones)[0, 0] == pytest.approx(np.mean(s.preds == s.labels))
    assert replicates([s], "true_class_prob", 4, ones)[0, 0] == pytest.approx(s.probs.mean(), rel=1e-6)
    assert replicates([s], "macro_f1", 4, ones)[0, 0] == pytest.approx(f1_score(s.labels, s.preds, average="macro"))


def test_intervals_cover_the_true_accuracy_at_about_the_nominal_rate() -> None:
    """200 simulated test sets of 400 rows with true accuracy 0.8: about 95% of the intervals
    hold 0.8 (binomial sd of the rate over 200 draws is 1.5 points)."""
    rng = np.random.default_rng(1)
    cells = {f"c{i}": _samples(rng, 400, 0.8, f"set{i}") for i in range(200)}
    intervals = cell_intervals(cells, ("accuracy",), {f"set{i}": 4 for i in range(200)})
    covered = np.mean([lo <= 0.8 <= hi for lo, hi in intervals.values()])
    assert 0.90 <= covered <= 0.99, covered


def test_cells_of_one_sample_set_are_paired() -> None:
    assert np.array_equal(resample_weights("a|test|all", 50), resample_weights("a|test|all", 50))
    assert not np.array_equal(resample_weights("a|test|all", 50), resample_weights("b|test|all", 50))
    s = _samples(np.random.default_rng(2), 200, 0.9)
    same = Samples(s.sample_set, s.preds.copy(), s.labels, s.probs)
    (a, b) = replicates([s, same], "accuracy", 4, resample_weights(s.sample_set, 200)).T
    assert np.array_equal(a, b)  # identical outcomes, identical replicates: a zero-width difference


def test_results_carry_intervals(tmp_path: Path) -> None:
    from mmbench.engine.runner import RunOptions, run_suite

    suite = tiny_suite(models=["late_fusion"], metrics=["accuracy", "macro_f1", "true_class_prob"])
    result = run_suite(write_suite(tmp_path, suite), RunOptions(out_dir=tmp_path / "o", cache_dir=tmp_path / "c",
                                                                progress=False))
    frame = pd.read_csv(tmp_path / "o" / "results.csv")
    assert set(frame["metric"]) == set(BOOTSTRAP_METRICS)
    assert ((frame["ci_low"] <= frame["value"]) & (frame["value"] <= frame["ci_high"])).all()
    assert (frame["ci_high"] - frame["ci_low"] > 0).all()
    assert " ± " in result.leaderboard
