"""Built-in classification metrics, each implemented once on per-row outcomes (checked against
scikit-learn in the tests)."""

from __future__ import annotations

import numpy as np

from mmbench.data.tasks import CLASSIFICATION, MULTILABEL
from mmbench.metrics.base import ClassCountMetric, Outcomes, RowMetric
from mmbench.metrics.multilabel import label_counts
from mmbench.registry import METRICS


@METRICS.register("accuracy", description="fraction of samples classified correctly")
class Accuracy(RowMetric):
    proportion = True

    def row_values(self, outcomes: Outcomes) -> np.ndarray:
        return outcomes.preds == outcomes.labels


def _mean_over_present(per_class: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Mean over the classes marked present (0 where none is)."""
    count = present.sum(axis=2)
    return np.where(present, per_class, 0.0).sum(axis=2) / np.maximum(count, 1)


@METRICS.register("macro_f1", description="unweighted mean of per-class F1 over classes present (multilabel: "
                                          "over every label)")
class MacroF1(ClassCountMetric):
    """Mean F1 over the classes that occur in the truth or the predictions (sklearn's rule). On
    a multilabel task, the mean F1 over all K labels, a label neither present nor predicted
    scoring 0 (sklearn's ``f1_score(average="macro")`` on label indicators)."""

    perfect = 1.0
    tasks = (CLASSIFICATION, MULTILABEL)

    def compute(self, outcomes: Outcomes, weights: np.ndarray) -> np.ndarray:
        if outcomes.task != MULTILABEL:
            return super().compute(outcomes, weights)
        tp, predicted, actual = label_counts(outcomes, weights)
        both = predicted + actual
        return (2 * tp / np.where(both > 0, both, 1)).mean(axis=2)

    def from_counts(self, tp: np.ndarray, predicted: np.ndarray, actual: np.ndarray) -> np.ndarray:
        both = predicted + actual
        f1 = 2 * tp / np.where(both > 0, both, 1)
        return _mean_over_present(f1, both > 0)


@METRICS.register("balanced_accuracy", description="mean recall over the classes in the truth")
class BalancedAccuracy(ClassCountMetric):
    perfect = 1.0

    def from_counts(self, tp: np.ndarray, predicted: np.ndarray, actual: np.ndarray) -> np.ndarray:
        return _mean_over_present(tp / np.where(actual > 0, actual, 1), actual > 0)


@METRICS.register("true_class_prob", description="mean softmax probability of the true class")
class TrueClassProbability(RowMetric):
    def row_values(self, outcomes: Outcomes) -> np.ndarray:
        return outcomes.true_prob


@METRICS.register("nll", description="mean negative log-likelihood of the true class (lower is better)")
class NegativeLogLikelihood(RowMetric):
    higher_is_better = False
    FLOOR = 1e-12  # a probability of exactly 0 (float32 underflow) counts as 1e-12

    def row_values(self, outcomes: Outcomes) -> np.ndarray:
        return -np.log(np.maximum(outcomes.true_prob.astype(np.float64), self.FLOOR))


@METRICS.register("brier", description="mean multi-class Brier score (lower is better)")
class Brier(RowMetric):
    """Mean over rows of the squared distance between the probability vector and the one-hot
    label (Brier 1950, multi-class form; 0 is perfect, 2 the worst)."""

    higher_is_better = False
    needs_probs = True

    def row_values(self, outcomes: Outcomes) -> np.ndarray:
        assert outcomes.probs is not None
        onehot = np.eye(self.n_classes)[outcomes.labels]          # [n, k, C]
        return ((outcomes.probs - onehot) ** 2).sum(axis=2)
