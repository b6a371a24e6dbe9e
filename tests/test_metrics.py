"""Metrics, parametrized over the registry, against scikit-learn where a reference exists."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, log_loss

from mmbench.metrics.base import Outcomes
from mmbench.registry import METRICS

K = 5
REFERENCES = {  # metric -> reference(labels, preds, probs) from scikit-learn or by hand
    "accuracy": lambda y, p, q: accuracy_score(y, p),
    "macro_f1": lambda y, p, q: f1_score(y, p, average="macro"),
    "balanced_accuracy": lambda y, p, q: balanced_accuracy_score(y, p),
    "true_class_prob": lambda y, p, q: float(np.mean(q[np.arange(len(y)), y])),
    "nll": lambda y, p, q: log_loss(y, q, labels=list(range(K))),
    "brier": lambda y, p, q: float(np.mean(((q - np.eye(K)[y]) ** 2).sum(axis=1))),
}


def _outcomes(seed: int, n: int = 300) -> tuple[Outcomes, np.ndarray, np.ndarray, np.ndarray]:
    """Probabilities whose argmax is right about 60% of the time, and the true classes."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, K, n)
    guess = np.where(rng.random(n) < 0.6, labels, rng.integers(0, K, n))
    logits = 3.0 * np.eye(K)[guess] + 0.5 * rng.random((n, K))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    preds = probs.argmax(axis=1)
    return Outcomes.single(preds, labels, K, probs=probs), labels, preds, probs


@pytest.mark.parametrize("name", METRICS.names())
def test_value_is_one_number_per_cell_and_weights_are_rows(name: str) -> None:
    """The contract: [B, k] from [B, n] weights; a row of ones is the value; doubling every
    weight changes nothing; a weight of 0 drops a row."""
    outcomes, *_ = _outcomes(0)
    metric = METRICS.get(name)(K)
    value = metric.value(outcomes)
    assert value.shape == (1,) and np.isfinite(value).all()
    twice = metric.compute(outcomes, np.full((1, outcomes.n), 2.0))[0]
    assert twice == pytest.approx(value, rel=1e-9)
    dropped = np.ones((1, outcomes.n))
    dropped[0, :100] = 0
    sub, *_ = _outcomes(0)
    rows = Outcomes(sub.preds[100:], sub.labels[100:], sub.true_prob[100:], K,
                    None if sub.probs is None else sub.probs[100:])
    assert metric.compute(outcomes, dropped)[0] == pytest.approx(metric.value(rows), rel=1e-9)


@pytest.mark.parametrize("name", METRICS.names())
def test_perfect_predictions_score_best(name: str) -> None:
    outcomes, labels, _, _ = _outcomes(1)
    metric = METRICS.get(name)(K)
    perfect = Outcomes.single(labels, labels, K, probs=0.999 * np.eye(K)[labels] + 0.001 / K)
    better = metric.value(perfect)[0] > metric.value(outcomes)[0]
    assert better == metric.higher_is_better


@pytest.mark.parametrize("name", sorted(REFERENCES))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_the_reference(name: str, seed: int) -> None:
    outcomes, labels, preds, probs = _outcomes(seed)
    if seed == 2:  # a class that is never predicted nor present
        keep = (labels < K - 1) & (preds < K - 1)
        labels, preds, probs = labels[keep], preds[keep], probs[keep]
        outcomes = Outcomes.single(preds, labels, K, probs=probs)
    expected = REFERENCES[name](labels, preds, probs)
    assert METRICS.get(name)(K).value(outcomes)[0] == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_every_builtin_metric_has_a_reference() -> None:
    builtin = [e.name for e in METRICS.entries() if e.source == "builtin"]
    assert set(builtin) <= set(REFERENCES)


def test_cells_are_columns() -> None:
    a, *_ = _outcomes(3)
    b, *_ = _outcomes(4)
    both = Outcomes(np.hstack([a.preds, b.preds]), np.hstack([a.labels, b.labels]),
                    np.hstack([a.true_prob, b.true_prob]), K, np.concatenate([a.probs, b.probs], axis=1))
    for name in METRICS.names():
        metric = METRICS.get(name)(K)
        assert metric.value(both) == pytest.approx(np.concatenate([metric.value(a), metric.value(b)]))
