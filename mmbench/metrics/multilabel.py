"""Built-in multilabel metrics, each on per-row label probabilities and 0/1 targets
``[n, k, K]`` and checked against scikit-learn in the tests. A label is predicted present when
its probability is at least :data:`~mmbench.data.tasks.THRESHOLD` (0.5); ``macro_f1`` (in
:mod:`mmbench.metrics.classification`) also serves this task, from :func:`label_counts`.
"""

from __future__ import annotations

import numpy as np

from mmbench.data.tasks import MULTILABEL, THRESHOLD
from mmbench.metrics.base import Metric, Outcomes, RowMetric, ratio
from mmbench.registry import METRICS


def predicted_and_true(outcomes: Outcomes) -> tuple[np.ndarray, np.ndarray]:
    """``(predicted, true)``, bool ``[n, k, K]``: labels predicted present (probability at least
    the threshold) and labels present (target 1)."""
    assert outcomes.outputs is not None and outcomes.targets is not None, "multilabel outcomes needed"
    return outcomes.outputs >= THRESHOLD, outcomes.targets > 0.5


def label_counts(outcomes: Outcomes, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted per-label true positives, predicted and actual totals, each ``[B, k, K]``."""
    predicted, true = predicted_and_true(outcomes)
    n, k, labels = predicted.shape

    def count(mask: np.ndarray) -> np.ndarray:
        return (weights @ mask.reshape(n, k * labels).astype(np.float64)).reshape(len(weights), k, labels)

    return count(predicted & true), count(predicted), count(true)


@METRICS.register("micro_f1", description="F1 of the label decisions pooled over rows and labels")
class MicroF1(Metric):
    """2·TP / (2·TP + FP + FN) with TP, FP, FN summed over every row and label (0 with no label
    present nor predicted)."""

    tasks = (MULTILABEL,)
    perfect = 1.0

    def compute(self, outcomes: Outcomes, weights: np.ndarray) -> np.ndarray:
        tp, predicted, actual = (c.sum(axis=2) for c in label_counts(outcomes, weights))
        return ratio(2 * tp, predicted + actual)


class MultilabelRowMetric(RowMetric):
    """A multilabel metric that is a weighted mean of one number per row."""

    tasks = (MULTILABEL,)


@METRICS.register("samples_f1", description="mean over rows of the F1 of each row's labels")
class SamplesF1(MultilabelRowMetric):
    """A row with no label present nor predicted scores 0 (scikit-learn's default)."""

    def row_values(self, outcomes: Outcomes) -> np.ndarray:
        predicted, true = predicted_and_true(outcomes)
        tp = (predicted & true).sum(axis=2)
        return ratio(2.0 * tp, (predicted.sum(axis=2) + true.sum(axis=2)).astype(np.float64))


@METRICS.register("subset_accuracy", description="share of rows with every label right")
class SubsetAccuracy(MultilabelRowMetric):
    proportion = True

    def row_values(self, outcomes: Outcomes) -> np.ndarray:
        predicted, true = predicted_and_true(outcomes)
        return (predicted == true).all(axis=2)


@METRICS.register("hamming_loss", description="share of wrong label decisions (lower is better)")
class HammingLoss(MultilabelRowMetric):
    higher_is_better = False

    def row_values(self, outcomes: Outcomes) -> np.ndarray:
        predicted, true = predicted_and_true(outcomes)
        return (predicted != true).mean(axis=2)


@METRICS.register("map", description="mean over labels of the average precision of the probabilities")
class MeanAveragePrecision(Metric):
    """Mean over labels of the average precision Σ_t (R_t − R_{t−1}) · P_t over the distinct
    probabilities t, highest first (scikit-learn's ``average_precision_score``: tied rows enter
    together). A label without a (weighted) positive row has no average precision and is left
    out of the mean; 0 when no label has one."""

    tasks = (MULTILABEL,)

    def compute(self, outcomes: Outcomes, weights: np.ndarray) -> np.ndarray:
        assert outcomes.outputs is not None
        _, true = predicted_and_true(outcomes)
        _, k, labels = true.shape
        by_row = np.ascontiguousarray(weights.T, dtype=np.float64)  # [n, B]: rows gathered fast
        total, count = np.zeros((len(weights), k)), np.zeros((len(weights), k))
        for cell in range(k):
            for label in range(labels):
                ap, has_positive = average_precision(outcomes.outputs[:, cell, label], true[:, cell, label], by_row)
                total[:, cell] += ap
                count[:, cell] += has_positive
        return ratio(total, count)


def average_precision(scores: np.ndarray, positive: np.ndarray, by_row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(ap, has_positive)``, each ``[B]``: the average precision of ``scores`` ``[n]`` for the
    0/1 ``positive`` ``[n]`` under each row weighting (``by_row``: ``[n, B]``, the weights
    transposed), and whether the weighting has a positive row (else ``ap`` is 0).

    The rows are sorted once. Each distinct score is a threshold whose rows enter together;
    recall rises only at a threshold with a positive row, so the rows are cut into segments
    ending at those thresholds, and one sparse product sums each segment's weights (all rows,
    and positive rows) in every weighting: their cumulative sums are the predicted and true
    positives at the thresholds that count."""
    from scipy.sparse import csr_matrix

    replicates = by_row.shape[1]
    order = np.argsort(-scores, kind="stable")
    ranked, hit = scores[order], positive[order].astype(bool)
    ends = np.flatnonzero(np.r_[ranked[1:] != ranked[:-1], True]) if len(ranked) else np.zeros(0, np.int64)
    with_positive = np.add.reduceat(hit.astype(np.int64), np.r_[0, ends[:-1] + 1]) > 0 if len(ends) else ends > 0
    cuts = ends[with_positive]
    if not len(cuts):
        return np.zeros(replicates), np.zeros(replicates, dtype=bool)
    segment = np.searchsorted(cuts, np.arange(len(ranked)))  # the first cut at or after each rank
    kept = segment < len(cuts)

    def summed(rows: np.ndarray) -> np.ndarray:
        """``[cuts, B]``: each segment's weight of the ranked positions ``rows`` (bool)."""
        matrix = csr_matrix((np.ones(int(rows.sum())), (segment[rows], order[rows])), shape=(len(cuts), len(ranked)))
        return np.asarray(matrix @ by_row)

    gained = summed(kept & hit)
    tp, selected = np.cumsum(gained, axis=0), np.cumsum(summed(kept), axis=0)
    positives = tp[-1]
    return ratio((gained * ratio(tp, selected)).sum(axis=0), positives), positives > 0
