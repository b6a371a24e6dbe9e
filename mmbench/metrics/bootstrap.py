"""Per-sample outcomes of evaluation cells and paired bootstrap intervals over test samples.

Every evaluation cell keeps, per evaluated row, the predicted class, the label and the softmax
probability of the true class (:class:`Samples`). Its rows were drawn from one *sample set*
(dataset, split or group, row subset), and every cell of a sample set is resampled with the
same bootstrap weights, seeded by the set's name: the replicates of two models (or two
perturbations) are paired, so differences get intervals too.

A bootstrap replicate of a metric is the metric of the cell's rows weighted by multinomial
resampling counts; intervals are percentile intervals (2.5%, 97.5%) of ``B`` replicates.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

B = 1000  # bootstrap replicates
LEVEL = 0.95
BOOTSTRAP_METRICS = ("accuracy", "macro_f1", "true_class_prob")


@dataclass(frozen=True)
class Samples:
    """Per-row outcomes of one evaluation cell on sample set ``sample_set``."""

    sample_set: str
    preds: np.ndarray   # int16 [n]
    labels: np.ndarray  # int16 [n]
    probs: np.ndarray   # float32 [n], softmax probability of the true class

    def to_blobs(self) -> tuple[bytes, bytes, bytes]:
        return self.preds.tobytes(), self.labels.tobytes(), self.probs.tobytes()

    @classmethod
    def from_blobs(cls, sample_set: str, preds: bytes, labels: bytes, probs: bytes) -> Samples:
        return cls(sample_set, np.frombuffer(preds, np.int16), np.frombuffer(labels, np.int16),
                   np.frombuffer(probs, np.float32))


class Collector:
    """Accumulates a cell's per-row outcomes batch by batch."""

    def __init__(self) -> None:
        self.preds: list[Tensor] = []
        self.labels: list[Tensor] = []
        self.probs: list[Tensor] = []

    def update(self, logits: Tensor, labels: Tensor) -> None:
        logits = logits.detach().float()
        true = logits.gather(1, labels.long().view(-1, 1)).view(-1)
        self.probs.append((true - logits.logsumexp(dim=1)).exp().cpu())  # softmax of the label
        self.preds.append(logits.argmax(dim=1).to(torch.int16).cpu())
        self.labels.append(labels.to(torch.int16).cpu())

    def samples(self, sample_set: str) -> Samples:
        return Samples(sample_set, torch.cat(self.preds).numpy(), torch.cat(self.labels).numpy(),
                       torch.cat(self.probs).numpy())


def resample_weights(sample_set: str, n: int, replicates: int = B) -> np.ndarray:
    """[replicates, n] multinomial counts, the same for every cell of ``sample_set``."""
    seed = int(hashlib.sha256(f"{sample_set}|{n}".encode()).hexdigest()[:8], 16)
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=replicates).astype(np.float64)


def replicates(cells: list[Samples], metric: str, n_classes: int, weights: np.ndarray) -> np.ndarray:
    """[replicates, cells]: the metric of each bootstrap replicate of each cell (all cells of
    one sample set, so one matrix product serves them all)."""
    preds = np.stack([c.preds for c in cells], axis=1)    # [n, cells]
    labels = np.stack([c.labels for c in cells], axis=1)
    total = weights.sum(axis=1, keepdims=True)
    if metric == "accuracy":
        return weights @ (preds == labels).astype(np.float64) / total
    if metric == "true_class_prob":
        return weights @ np.stack([c.probs for c in cells], axis=1).astype(np.float64) / total
    if metric == "macro_f1":
        return _macro_f1(preds, labels, n_classes, weights)
    raise KeyError(metric)


def _macro_f1(preds: np.ndarray, labels: np.ndarray, n_classes: int, weights: np.ndarray) -> np.ndarray:
    """Weighted macro-F1 over the classes present in truth or predictions (sklearn's rule)."""
    f1_sum = np.zeros((len(weights), preds.shape[1]))
    present = np.zeros_like(f1_sum)
    for c in range(n_classes):
        tp = weights @ ((preds == c) & (labels == c)).astype(np.float64)
        both = weights @ ((preds == c).astype(np.float64) + (labels == c))
        f1_sum += np.where(both > 0, 2 * tp / np.where(both > 0, both, 1), 0.0)
        present += both > 0
    return f1_sum / np.maximum(present, 1)


def by_sample_set(samples: dict[str, Samples]) -> dict[str, list[str]]:
    """Cell keys grouped by the sample set they evaluated (sorted by set name)."""
    groups: dict[str, list[str]] = {}
    for key, s in samples.items():
        groups.setdefault(s.sample_set, []).append(key)
    return dict(sorted(groups.items()))


def cell_intervals(samples: dict[str, Samples], metrics: tuple[str, ...], n_classes: dict[str, int],
                   ) -> dict[tuple[str, str], tuple[float, float]]:
    """(cell key, metric) -> 95% interval, for every cell with samples and every bootstrappable
    metric; ``n_classes`` by sample set."""
    out = {}
    for sample_set, keys in by_sample_set(samples).items():
        cells = [samples[k] for k in keys]
        weights = resample_weights(sample_set, len(cells[0].preds))
        for metric in (m for m in metrics if m in BOOTSTRAP_METRICS):
            reps = replicates(cells, metric, n_classes[sample_set], weights)
            lo, hi = np.quantile(reps, [(1 - LEVEL) / 2, (1 + LEVEL) / 2], axis=0)
            out.update({(k, metric): (float(a), float(b)) for k, a, b in zip(keys, lo, hi, strict=True)})
    return out


def accuracy_replicates(samples: dict[str, Samples], replicates_n: int = 200) -> dict[str, np.ndarray]:
    """Cell key -> the cell's accuracy under the first ``replicates_n`` paired bootstrap
    replicates of its sample set (inputs for score intervals)."""
    out = {}
    for sample_set, keys in by_sample_set(samples).items():
        cells = [samples[k] for k in keys]
        weights = resample_weights(sample_set, len(cells[0].preds))[:replicates_n]
        reps = replicates(cells, "accuracy", 0, weights)
        out.update({k: reps[:, i] for i, k in enumerate(keys)})
    return out
