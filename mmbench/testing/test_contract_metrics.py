"""Every registered metric honours the contract: one value per cell from per-row outcomes and row
weights (so the generic paired bootstrap applies), weights act as row counts, cells are
independent columns, and perfect predictions score best in the declared direction."""

from __future__ import annotations

import numpy as np
import pytest

from mmbench.metrics.base import Outcomes
from mmbench.registry import METRICS
from mmbench.testing.fitting import random_outcomes

K = 5


@pytest.mark.parametrize("name", METRICS.names())
def test_value_is_one_finite_number_per_cell(name: str) -> None:
    outcomes, *_ = random_outcomes(0, k=K)
    metric = METRICS.get(name)(K)
    table = np.asarray(metric.compute(outcomes, np.ones((3, outcomes.n))))
    assert table.shape == (3, 1) and np.isfinite(table).all()
    assert np.allclose(table, table[0]) and metric.value(outcomes) == pytest.approx(table[0])


@pytest.mark.parametrize("name", METRICS.names())
def test_weights_count_rows(name: str) -> None:
    """Doubling every weight changes nothing; a weight of 0 drops a row; a weight of 2 is the
    row twice (a bootstrap replicate is the metric of the rows drawn)."""
    outcomes, labels, preds, probs = random_outcomes(1, k=K)
    metric = METRICS.get(name)(K)
    value = metric.value(outcomes)
    assert metric.compute(outcomes, np.full((1, outcomes.n), 2.0))[0] == pytest.approx(value, rel=1e-9)
    weights = np.ones(outcomes.n)
    weights[:100], weights[100:150] = 0, 2
    rows = np.concatenate([np.arange(100, outcomes.n), np.arange(100, 150)])
    drawn = Outcomes.single(preds[rows], labels[rows], K, probs=probs[rows])
    assert metric.compute(outcomes, weights[None])[0] == pytest.approx(metric.value(drawn), rel=1e-9)


@pytest.mark.parametrize("name", METRICS.names())
def test_perfect_predictions_score_best(name: str) -> None:
    outcomes, labels, _, _ = random_outcomes(2, k=K)
    metric = METRICS.get(name)(K)
    perfect = Outcomes.single(labels, labels, K, probs=0.999 * np.eye(K)[labels] + 0.001 / K)
    assert (metric.value(perfect)[0] > metric.value(outcomes)[0]) == metric.higher_is_better


@pytest.mark.parametrize("name", METRICS.names())
def test_cells_are_independent_columns(name: str) -> None:
    a, *_ = random_outcomes(3, k=K)
    b, *_ = random_outcomes(4, k=K)
    both = Outcomes(np.hstack([a.preds, b.preds]), np.hstack([a.labels, b.labels]),
                    np.hstack([a.true_prob, b.true_prob]), K, np.concatenate([a.probs, b.probs], axis=1))
    metric = METRICS.get(name)(K)
    assert metric.value(both) == pytest.approx(np.concatenate([metric.value(a), metric.value(b)]))
