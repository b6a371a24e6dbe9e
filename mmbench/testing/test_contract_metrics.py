"""Every registered metric honours the contract: one value per cell from per-row outcomes and row
weights (so the generic paired bootstrap applies), weights act as row counts, cells are
independent columns, and perfect predictions score best in the declared direction. Each metric
is tested on outcomes of every task it declares (``tasks``): classification, regression or
multilabel."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mmbench.data.tasks import CLASSIFICATION, MULTILABEL, REGRESSION
from mmbench.metrics.base import Outcomes
from mmbench.registry import METRICS
from mmbench.testing.fitting import random_outcomes

K = 5
CASES = [pytest.param(name, task, id=f"{name}-{task}") for name in METRICS.names()
         for task in METRICS.get(name).tasks]


def task_outcomes(seed: int, task: str, n: int = 300) -> Outcomes:
    """One cell's realistic outcomes of ``task``: classification right about 60% of the time;
    regression targets in [-3, 3] on a grid of thirds (some exactly 0, like averaged sentiment
    ratings) with outputs the targets plus noise; ``K`` multilabel 0/1 targets with
    probabilities correlated with them."""
    if task == CLASSIFICATION:
        return random_outcomes(seed, n=n, k=K)[0]
    rng = np.random.default_rng(seed)
    if task == REGRESSION:
        targets = np.round(rng.uniform(-3, 3, n) * 3) / 3
        return Outcomes.of_task(task, targets + rng.normal(0, 0.8, n), targets)
    targets = (rng.random((n, K)) < 0.4).astype(np.float64)
    logits = 2.0 * (2 * targets - 1) + rng.normal(0, 1.5, (n, K))
    return Outcomes.of_task(MULTILABEL, 1 / (1 + np.exp(-logits)), targets)


def perfect_outcomes(outcomes: Outcomes, task: str) -> Outcomes:
    """Perfect predictions for the same labels or targets."""
    if task == CLASSIFICATION:
        labels = outcomes.labels[:, 0]
        return Outcomes.single(labels, labels, K, probs=0.999 * np.eye(K)[labels] + 0.001 / K)
    assert outcomes.targets is not None
    targets = outcomes.targets[:, 0]
    return Outcomes.of_task(task, targets if task == REGRESSION else 0.999 * targets + 0.0005, targets)


def _arrays(outcomes: Outcomes) -> dict[str, np.ndarray]:
    """The per-row array fields of ``outcomes`` (rows first, cells second)."""
    return {f.name: getattr(outcomes, f.name) for f in dataclasses.fields(outcomes)
            if isinstance(getattr(outcomes, f.name), np.ndarray)}


def take(outcomes: Outcomes, rows: np.ndarray) -> Outcomes:
    """The outcomes of the rows ``rows`` (repeats allowed), in that order."""
    return dataclasses.replace(outcomes, **{name: a[rows] for name, a in _arrays(outcomes).items()})


def side_by_side(a: Outcomes, b: Outcomes) -> Outcomes:
    """The cells of ``a`` then those of ``b``, over the same rows."""
    return dataclasses.replace(a, **{name: np.concatenate([x, getattr(b, name)], axis=1)
                                     for name, x in _arrays(a).items()})


@pytest.mark.parametrize(("name", "task"), CASES)
def test_value_is_one_finite_number_per_cell(name: str, task: str) -> None:
    outcomes = task_outcomes(0, task)
    metric = METRICS.get(name)(K)
    table = np.asarray(metric.compute(outcomes, np.ones((3, outcomes.n))))
    assert table.shape == (3, 1) and np.isfinite(table).all()
    assert np.allclose(table, table[0]) and metric.value(outcomes) == pytest.approx(table[0])


@pytest.mark.parametrize(("name", "task"), CASES)
def test_weights_count_rows(name: str, task: str) -> None:
    """Doubling every weight changes nothing; a weight of 0 drops a row; a weight of 2 is the
    row twice (a bootstrap replicate is the metric of the rows drawn)."""
    outcomes = task_outcomes(1, task)
    metric = METRICS.get(name)(K)
    value = metric.value(outcomes)
    assert metric.compute(outcomes, np.full((1, outcomes.n), 2.0))[0] == pytest.approx(value, rel=1e-9)
    weights = np.ones(outcomes.n)
    weights[:100], weights[100:150] = 0, 2
    rows = np.concatenate([np.arange(100, outcomes.n), np.arange(100, 150)])
    drawn = take(outcomes, rows)
    assert metric.compute(outcomes, weights[None])[0] == pytest.approx(metric.value(drawn), rel=1e-9)


@pytest.mark.parametrize(("name", "task"), CASES)
def test_perfect_predictions_score_best(name: str, task: str) -> None:
    outcomes = task_outcomes(2, task)
    metric = METRICS.get(name)(K)
    perfect = perfect_outcomes(outcomes, task)
    assert (metric.value(perfect)[0] > metric.value(outcomes)[0]) == metric.higher_is_better


@pytest.mark.parametrize(("name", "task"), CASES)
def test_cells_are_independent_columns(name: str, task: str) -> None:
    a, b = task_outcomes(3, task), task_outcomes(4, task)
    metric = METRICS.get(name)(K)
    assert metric.value(side_by_side(a, b)) == pytest.approx(np.concatenate([metric.value(a), metric.value(b)]))
