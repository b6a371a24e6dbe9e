"""Paired bootstrap intervals over test samples, one generic mechanism for every metric."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_suite, write_suite
from sklearn.metrics import f1_score

from mmbench.stats.bootstrap import metric_values, row_weights
from mmbench.metrics.outcomes import Samples, SampleSet, stack
from mmbench.registry import METRICS


def _samples(rng: np.random.Generator, n: int, p: float, dataset: str = "d", draws: int = 1) -> Samples:
    labels = np.tile(rng.integers(0, 4, n).astype(np.int16), draws)
    correct = rng.random(n * draws) < p
    preds = np.where(correct, labels, (labels + 1) % 4).astype(np.int16)
    return Samples(SampleSet(dataset, "test"), preds, labels, rng.random(n * draws).astype(np.float32), None, draws)


def _value(name: str, cells: list[Samples], weights: np.ndarray) -> np.ndarray:
    metric = METRICS.get(name)(4)
    return metric.compute(stack(cells, 4, False), weights)


def test_unit_weights_reproduce_the_metrics() -> None:
    s = _samples(np.random.default_rng(0), 300, 0.7)
    ones = np.ones((1, 300))
    assert _value("accuracy", [s], ones)[0, 0] == pytest.approx(np.mean(s.preds == s.labels))
    assert _value("true_class_prob", [s], ones)[0, 0] == pytest.approx(s.probs.mean(), rel=1e-6)
    assert _value("macro_f1", [s], ones)[0, 0] == pytest.approx(f1_score(s.labels, s.preds, average="macro"))


def test_a_replicate_equals_the_metric_on_resampled_rows() -> None:
    """Weights are resampling counts: replicate b is the metric of the rows drawn, repeated."""
    s = _samples(np.random.default_rng(3), 120, 0.6)
    weights = row_weights("d|test", np.arange(120), 5)
    for b in range(5):
        rows = np.repeat(np.arange(120), weights[b].astype(int))
        drawn = Samples(s.sample_set, s.preds[rows], s.labels[rows], s.probs[rows])
        for name in ("accuracy", "macro_f1", "balanced_accuracy", "true_class_prob", "nll"):
            expected = _value(name, [drawn], np.ones((1, len(rows))))[0, 0]
            assert _value(name, [s], weights[b:b + 1])[0, 0] == pytest.approx(expected, rel=1e-9), name


def test_intervals_cover_the_true_accuracy_at_about_the_nominal_rate() -> None:
    """200 simulated test sets of 400 rows with true accuracy 0.8: about 95% of the intervals
    hold 0.8 (binomial sd of the rate over 200 draws is 1.5 points)."""
    rng = np.random.default_rng(1)
    cells = {f"c{i}": _samples(rng, 400, 0.8, f"set{i}") for i in range(200)}
    out = metric_values(cells, {"accuracy": METRICS.get("accuracy")}, {f"set{i}": 4 for i in range(200)})
    covered = np.mean([lo <= 0.8 <= hi for _, lo, hi in out.values.values()])
    assert 0.90 <= covered <= 0.99, covered


def test_cells_of_one_split_are_paired_row_by_row() -> None:
    rows = np.arange(50)
    assert np.array_equal(row_weights("a|test", rows), row_weights("a|test", rows))
    assert not np.array_equal(row_weights("a|test", rows), row_weights("b|test", rows))
    subset = np.array([3, 17, 40, 49, 6000])  # any rows, any split size: the same counts per row
    assert np.array_equal(row_weights("a|test", subset)[:, :4], row_weights("a|test", rows)[:, subset[:4]])
    assert np.array_equal(row_weights("a|test", subset, 30), row_weights("a|test", subset)[:30])
    s = _samples(np.random.default_rng(2), 200, 0.9)
    same = Samples(s.sample_set, s.preds.copy(), s.labels, s.probs)
    (a, b) = _value("accuracy", [s, same], row_weights("d|test", np.arange(200))).T
    assert np.array_equal(a, b)  # identical outcomes, identical replicates: a zero-width difference


def test_score_metric_replicates_are_the_first_of_the_interval_draws() -> None:
    s = _samples(np.random.default_rng(4), 150, 0.7)
    out = metric_values({"k": s}, {"macro_f1": METRICS.get("macro_f1")}, {"d": 4},
                        score_metric="macro_f1", score_replicates=30)
    direct = _value("macro_f1", [s], row_weights("d|test", np.arange(150), 30))[:, 0]
    assert np.array_equal(out.replicates["k"], direct)


def test_draws_are_averaged_and_rows_resampled_with_all_their_draws() -> None:
    """A cell with 3 draws per row: its value is the mean over all draws, and replicate b weights
    every draw of row i by row i's count in the sample set's draw b (so it pairs with the
    one-draw cells of the same rows)."""
    rng = np.random.default_rng(5)
    three = _samples(rng, 100, 0.7, draws=3)
    one = _samples(rng, 100, 0.7)
    out = metric_values({"three": three, "one": one}, {"accuracy": METRICS.get("accuracy")}, {"d": 4},
                        score_replicates=20)
    correct = (three.preds == three.labels).reshape(3, 100)
    assert out.values[("three", "accuracy")][0] == pytest.approx(correct.mean())
    weights = row_weights("d|test", np.arange(100), 20)
    expected = (weights @ correct.T.astype(float)).sum(axis=1) / (3 * weights.sum(axis=1))
    assert out.replicates["three"] == pytest.approx(expected)


def test_results_carry_intervals(tmp_path: Path) -> None:
    from mmbench.runner import RunOptions, run_suite

    metrics = ["accuracy", "macro_f1", "true_class_prob", "balanced_accuracy", "nll", "brier"]
    suite = tiny_suite(models=["late_fusion"], metrics=metrics)
    result = run_suite(write_suite(tmp_path, suite), RunOptions(out_dir=tmp_path / "o", cache_dir=tmp_path / "c",
                                                                progress=False))
    frame = pd.read_csv(tmp_path / "o" / "results.csv")
    assert set(frame["metric"]) == set(metrics)
    assert ((frame["ci_low"] <= frame["value"]) & (frame["value"] <= frame["ci_high"])).all()
    assert (frame["ci_high"] - frame["ci_low"] > 0).all()
    assert " ± " in result.leaderboard


def test_main_and_clean_boards_give_one_number_one_interval(tmp_path: Path) -> None:
    """Regression: the main board's clean accuracy (a score, from replicates) and the clean
    board's accuracy (a cell) used 200 and 1000 replicates; with one seed they are the same
    number and now have the same interval."""
    from mmbench.runner import RunOptions, run_suite

    adv = {"name": "adversarial", "params": {"attacks": ["fgsm"], "eps": [0.1], "targets": ["all"]}}
    result = run_suite(write_suite(tmp_path, tiny_suite(perturbations=["clean", adv])),
                       RunOptions(out_dir=tmp_path / "o", cache_dir=tmp_path / "c", progress=False))
    cells = result.frame.query("family == 'clean' and metric == 'accuracy'").set_index("model")
    scores = result.scores.query("score == 'clean_accuracy'").set_index("model")
    for column in ("value", "ci_low", "ci_high"):
        pd.testing.assert_series_equal(cells[column], scores.loc[cells.index, column], check_names=False)


def test_a_subset_cell_is_resampled_with_the_full_splits_weights_on_its_rows() -> None:
    """Issue 23 point 1: a cell on a seeded row subset (max_rows) is paired with the full-split
    cells: replicate b weights each of its rows exactly as the full split's replicate b does
    (seeding by the sample set's name resampled it independently)."""
    rng = np.random.default_rng(6)
    full = _samples(rng, 300, 0.7)
    ids = np.sort(rng.choice(300, 120, replace=False)).astype(np.int32)
    part = full.restricted(SampleSet("d", "test", 120), ids)
    out = metric_values({"full": full, "part": part}, {"accuracy": METRICS.get("accuracy")}, {"d": 4})
    weights = row_weights("d|test", np.arange(300))[:, ids]
    correct = (full.preds == full.labels)[ids].astype(float)
    assert out.replicates["part"] == pytest.approx(weights @ correct / weights.sum(axis=1))
    both = np.corrcoef(out.replicates["part"], out.replicates["full"])[0, 1]
    assert both > 0.4  # shared rows, shared weights: the replicates move together
