"""The metric contract: one function of per-row outcomes and per-row weights.

An evaluation cell keeps, for every row it evaluated, the predicted class, the label and the
softmax probability of the true class (and, when a metric of the suite ``needs_probs``, every
class's probability); on a regression or multilabel task, each row's output (the predicted
values, or every label's probability) and target instead: its :class:`Outcomes`. A metric is computed from those, never from the
model, so every metric of a suite, built-in or plugin, gets the same paired-bootstrap intervals:
a bootstrap replicate is just another weighting of the rows. The plain value weights every row 1.

A metric is implemented once, vectorised over cells (columns) and weightings::

    compute(outcomes, weights[B, n]) -> values[B, k]

:class:`RowMetric` (a weighted mean of one number per row, e.g. accuracy) and
:class:`ClassCountMetric` (from weighted per-class counts, e.g. macro-F1) cover most metrics with
one small method. Metrics declare ``higher_is_better`` (used to rank boards), the ``tasks``
they are defined for and, if they read full probability vectors, ``needs_probs``.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from mmbench.data.tasks import CLASSIFICATION


@dataclass(frozen=True)
class Outcomes:
    """Per-row outcomes of ``k`` cells over the same ``n`` rows (one column per cell)."""

    preds: np.ndarray       # int [n, k]: predicted class
    labels: np.ndarray      # int [n, k]: true class
    true_prob: np.ndarray   # float [n, k]: softmax probability of the true class
    n_classes: int
    probs: np.ndarray | None = None  # float [n, k, C]: every class's probability (needs_probs)
    #: regression / multilabel only: float [n, k, D], each row's predicted values (regression) or
    #: every label's sigmoid probability (multilabel); ``preds``/``labels``/``true_prob`` are 0
    outputs: np.ndarray | None = None
    targets: np.ndarray | None = None  # float [n, k, D]: the targets (multilabel: 0/1)
    task: str = CLASSIFICATION

    @property
    def n(self) -> int:
        return int(self.preds.shape[0])

    @property
    def k(self) -> int:
        return int(self.preds.shape[1])

    @classmethod
    def single(cls, preds: Sequence[int], labels: Sequence[int], n_classes: int,
               true_prob: Sequence[float] | None = None, probs: np.ndarray | None = None) -> Outcomes:
        """One cell's outcomes from 1-D arrays (``probs``: [n, C]); handy in tests and notebooks."""
        p, y = np.asarray(preds).reshape(-1, 1), np.asarray(labels).reshape(-1, 1)
        if true_prob is None:
            true_prob = (p == y).astype(np.float64).ravel() if probs is None else \
                np.asarray(probs)[np.arange(len(y)), y.ravel()]
        full = None if probs is None else np.asarray(probs, dtype=np.float64)[:, None, :]
        return cls(p, y, np.asarray(true_prob, dtype=np.float64).reshape(-1, 1), n_classes, full)

    @classmethod
    def of_task(cls, task: str, outputs: np.ndarray, targets: np.ndarray) -> Outcomes:
        """One cell's outcomes of a regression or multilabel task from ``[n]`` or ``[n, D]``
        outputs (values, or label probabilities) and targets."""
        out = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), 1, -1)
        tgt = np.asarray(targets, dtype=np.float64).reshape(len(targets), 1, -1)
        zeros = np.zeros((len(out), 1), np.int64)
        return cls(zeros, zeros, np.zeros((len(out), 1)), out.shape[2], None, out, tgt, task)


class Metric(abc.ABC):
    """A metric of per-row outcomes (see the module docstring)."""

    #: whether larger values are better (ranks boards; worst cases take the other end)
    higher_is_better: ClassVar[bool] = True
    #: whether :meth:`compute` reads ``outcomes.probs`` (the full probability vectors)
    needs_probs: ClassVar[bool] = False
    #: the tasks whose outcomes the metric is defined on (see :mod:`mmbench.data.tasks`)
    tasks: ClassVar[tuple[str, ...]] = (CLASSIFICATION,)
    #: a share of rows (a mean of one 0/1 number per row, like accuracy): near 0 and 1 its
    #: interval is the exact Clopper-Pearson one, which never has zero width
    proportion: ClassVar[bool] = False
    #: the value reached exactly when every row is right, 0 exactly when none is (macro-F1,
    #: balanced accuracy: 1): a cell at either end gets the exact interval of n (or 0) of n rows
    #: right instead of a zero-width bootstrap one
    perfect: ClassVar[float | None] = None

    def __init__(self, n_classes: int) -> None:
        self.n_classes = n_classes

    def counted(self, outcomes: Outcomes, rows: int) -> np.ndarray:
        """``[k]``: how many of the ``rows`` rows (of the first draw) a ``proportion`` or
        ``perfect`` metric is a share of, per cell; every row unless the metric leaves rows out
        (e.g. Acc-2 without the zero targets). Sizes the exact interval near 0 and 1."""
        return np.full(outcomes.k, rows)

    @abc.abstractmethod
    def compute(self, outcomes: Outcomes, weights: np.ndarray) -> np.ndarray:
        """``[B, k]``: the metric of each cell under each row weighting ``weights`` ``[B, n]``
        (non-negative; a row of ones gives the plain value, bootstrap replicates are counts)."""

    def value(self, outcomes: Outcomes) -> np.ndarray:
        """``[k]``: the plain value of each cell (every row weighted 1)."""
        return self.compute(outcomes, np.ones((1, outcomes.n)))[0]


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` elementwise, 0 where ``den`` is 0 (no row, no positive, no variance)."""
    return np.where(den > 0, num, 0.0) / np.where(den > 0, den, 1.0)


class RowMetric(Metric):
    """The weighted mean of one number per row (accuracy, true-class probability, ...)."""

    @abc.abstractmethod
    def row_values(self, outcomes: Outcomes) -> np.ndarray:
        """``[n, k]``: the number each row contributes."""

    def compute(self, outcomes: Outcomes, weights: np.ndarray) -> np.ndarray:
        total = weights.sum(axis=1, keepdims=True)
        return weights @ self.row_values(outcomes).astype(np.float64) / np.where(total > 0, total, 1)


class ClassCountMetric(Metric):
    """A metric of weighted per-class counts: true positives, predicted and actual totals,
    each ``[B, k, C]`` (macro-F1, balanced accuracy, ...)."""

    @abc.abstractmethod
    def from_counts(self, tp: np.ndarray, predicted: np.ndarray, actual: np.ndarray) -> np.ndarray:
        """``[B, k]`` from the ``[B, k, C]`` count arrays."""

    def compute(self, outcomes: Outcomes, weights: np.ndarray) -> np.ndarray:
        shape = (len(weights), outcomes.k, self.n_classes)
        tp, predicted, actual = np.zeros(shape), np.zeros(shape), np.zeros(shape)
        for c in range(self.n_classes):
            is_pred, is_true = outcomes.preds == c, outcomes.labels == c
            tp[:, :, c] = weights @ (is_pred & is_true).astype(np.float64)
            predicted[:, :, c] = weights @ is_pred.astype(np.float64)
            actual[:, :, c] = weights @ is_true.astype(np.float64)
        return self.from_counts(tp, predicted, actual)
