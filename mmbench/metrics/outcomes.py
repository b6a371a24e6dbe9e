"""Per-row outcomes of an evaluation cell: what every metric is computed from.

Every evaluation cell keeps, per evaluated row, the predicted class, the label and the softmax
probability of the true class, plus every class's probability when a metric needs them
(:class:`Samples`); :func:`stack` puts the outcomes of several cells over the same rows side by
side as the :class:`~mmbench.metrics.base.Outcomes` a metric reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from mmbench.metrics.base import Outcomes


@dataclass(frozen=True)
class Samples:
    """Per-row outcomes of one evaluation cell on sample set ``sample_set``."""

    sample_set: str
    preds: np.ndarray   # int16 [n]
    labels: np.ndarray  # int16 [n]
    probs: np.ndarray   # float32 [n], softmax probability of the true class
    full: np.ndarray | None = None  # float32 [n, C], every class's probability (if kept)

    def to_blobs(self) -> tuple[bytes, bytes, bytes, bytes | None]:
        full = None if self.full is None else self.full.astype(np.float32).tobytes()
        return self.preds.tobytes(), self.labels.tobytes(), self.probs.tobytes(), full

    @classmethod
    def from_blobs(cls, sample_set: str, preds: bytes, labels: bytes, probs: bytes,
                   full: bytes | None = None) -> Samples:
        p = np.frombuffer(preds, np.int16)
        f = None if full is None else np.frombuffer(full, np.float32).reshape(len(p), -1)
        return cls(sample_set, p, np.frombuffer(labels, np.int16), np.frombuffer(probs, np.float32), f)


class Collector:
    """Accumulates a cell's per-row outcomes batch by batch (``full``: keep every class's
    probability too)."""

    def __init__(self, full: bool = False) -> None:
        self.keep_full = full
        self.preds: list[Tensor] = []
        self.labels: list[Tensor] = []
        self.probs: list[Tensor] = []
        self.full: list[Tensor] = []

    def update(self, logits: Tensor, labels: Tensor) -> None:
        logits = logits.detach().float()
        log_norm = logits.logsumexp(dim=1, keepdim=True)
        true = logits.gather(1, labels.long().view(-1, 1))
        self.probs.append((true - log_norm).exp().view(-1).cpu())  # softmax of the label
        self.preds.append(logits.argmax(dim=1).to(torch.int16).cpu())
        self.labels.append(labels.to(torch.int16).cpu())
        if self.keep_full:
            self.full.append((logits - log_norm).exp().cpu())

    def samples(self, sample_set: str) -> Samples:
        full = torch.cat(self.full).numpy() if self.keep_full else None
        return Samples(sample_set, torch.cat(self.preds).numpy(), torch.cat(self.labels).numpy(),
                       torch.cat(self.probs).numpy(), full)


def stack(cells: list[Samples], n_classes: int, full: bool) -> Outcomes:
    """The :class:`Outcomes` of cells over the same rows (one column each)."""
    probs = np.stack([c.full for c in cells], axis=1).astype(np.float64) if full else None  # type: ignore[misc]
    return Outcomes(np.stack([c.preds for c in cells], axis=1).astype(np.int64),
                    np.stack([c.labels for c in cells], axis=1).astype(np.int64),
                    np.stack([c.probs for c in cells], axis=1).astype(np.float64), n_classes, probs)
