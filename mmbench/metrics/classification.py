"""Accuracy and macro-F1 from a confusion matrix (checked against scikit-learn in the tests), and
the mean probability of the true class."""

from __future__ import annotations

import torch
from torch import Tensor

from mmbench.metrics.base import Metric, as_labels
from mmbench.registry import METRICS


class ConfusionMetric(Metric):
    """Accumulates an ``n_classes x n_classes`` confusion matrix (rows: truth, columns: pred)."""

    def reset(self) -> None:
        self.confusion = torch.zeros(self.n_classes, self.n_classes, dtype=torch.int64)

    def update(self, preds: Tensor, target: Tensor) -> None:
        flat = target.detach().cpu().long() * self.n_classes + as_labels(preds).detach().cpu().long()
        counts = torch.bincount(flat, minlength=self.n_classes ** 2)
        self.confusion += counts.reshape(self.n_classes, self.n_classes)

    @property
    def n(self) -> int:
        return int(self.confusion.sum())


@METRICS.register("accuracy", description="fraction of samples classified correctly")
class Accuracy(ConfusionMetric):
    def compute(self) -> float:
        return float(self.confusion.diagonal().sum()) / max(self.n, 1)


@METRICS.register("macro_f1", description="unweighted mean of per-class F1 over classes present")
class MacroF1(ConfusionMetric):
    def compute(self) -> float:
        """Mean F1 over classes that occur in the truth or the predictions (sklearn's labels)."""
        tp = self.confusion.diagonal().double()
        predicted = self.confusion.sum(dim=0).double()
        actual = self.confusion.sum(dim=1).double()
        present = (predicted + actual) > 0
        f1 = torch.where(present, 2 * tp / (predicted + actual).clamp(min=1), torch.zeros_like(tp))
        return float(f1[present].mean()) if bool(present.any()) else 0.0


@METRICS.register("true_class_prob", description="mean softmax probability of the true class")
class TrueClassProbability(Metric):
    """Mean over samples of softmax(logits)[true class]; needs logits, not class indices."""

    def reset(self) -> None:
        self.total, self.count = 0.0, 0

    def update(self, preds: Tensor, target: Tensor) -> None:
        if preds.dim() != 2:
            raise ValueError("true_class_prob needs logits [N, C], not class indices")
        probs = torch.softmax(preds.detach().double(), dim=1)
        self.total += float(probs.gather(1, target.long().view(-1, 1)).sum())
        self.count += len(target)

    def compute(self) -> float:
        return self.total / max(self.count, 1)
