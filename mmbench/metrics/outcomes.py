"""Per-row outcomes of an evaluation cell: what every metric is computed from.

Every evaluation cell keeps, per evaluated row, the predicted class, the label and the softmax
probability of the true class, plus every class's probability when a metric needs them; on a
regression or multilabel task, the row's output (values, or label probabilities) and target
(:class:`Samples`); :func:`stack` puts the outcomes of several cells over the same rows side by
side as the :class:`~mmbench.metrics.base.Outcomes` a metric reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from mmbench.data.tasks import CLASSIFICATION, as_outputs, row_badness
from mmbench.metrics.base import Outcomes


@dataclass(frozen=True)
class SampleSet:
    """Which rows a cell evaluated: a dataset's split or held-out group, all rows or a fixed
    seeded subset of ``rows``. Cells of one sample set are resampled with the same bootstrap
    weights (paired), seeded by :attr:`key`."""

    dataset: str
    split: str
    rows: int | None = None

    @property
    def key(self) -> str:
        return f"{self.dataset}|{self.split}|{self.rows or 'all'}"


@dataclass(frozen=True)
class Samples:
    """Per-row outcomes of one evaluation cell on ``sample_set``; with ``draws`` > 1 (repeated
    random perturbations) the arrays hold ``draws`` blocks of the set's rows, draw after draw."""

    sample_set: SampleSet
    preds: np.ndarray   # int16 [n * draws]
    labels: np.ndarray  # int16 [n * draws]
    probs: np.ndarray   # float32 [n * draws], softmax probability of the true class
    full: np.ndarray | None = None  # float32 [n * draws, C], every class's probability (if kept)
    draws: int = 1
    #: float32 [n * draws]: the certified radius of each row's prediction (NaN: abstained), kept
    #: by perturbations that certify (randomized smoothing); None for every other cell
    radius: np.ndarray | None = None
    #: int32 [n]: the position in its split of each row evaluated (once per row, not per draw);
    #: None only in stores of an older mmbench (then :attr:`ids` assumes the split's first rows)
    row_ids: np.ndarray | None = None
    #: a derived cell only (never stored): the cells over the same rows whose value it may never
    #: be better than, in any metric (a per-row worst case and the attacks it was taken over)
    bounded_by: tuple[str, ...] = ()
    #: the dataset's task; for regression and multilabel the outcomes are ``outputs`` and
    #: ``targets`` (float32 [n * draws, D]: values or label probabilities, and targets), and
    #: ``preds``/``labels``/``probs`` hold zeros
    task: str = CLASSIFICATION
    outputs: np.ndarray | None = None
    targets: np.ndarray | None = None

    @property
    def rows(self) -> int:
        """How many rows of the sample set (each evaluated ``draws`` times)."""
        return len(self.preds) // self.draws

    @property
    def ids(self) -> np.ndarray:
        """The row ids (positions in the split) of the rows evaluated, in order."""
        return np.arange(self.rows, dtype=np.int32) if self.row_ids is None else self.row_ids

    def restricted(self, sample_set: SampleSet, ids: np.ndarray) -> Samples:
        """These outcomes on the rows ``ids`` only (each must be one of :attr:`ids`), as the
        cell of ``sample_set`` that evaluated exactly them (every draw kept)."""
        position = np.searchsorted(self.ids, ids)
        if len(ids) and (position.max() >= self.rows or not np.array_equal(self.ids[position], ids)):
            raise ValueError("restricted to rows these outcomes do not have")
        pick = (position[None, :] + self.rows * np.arange(self.draws)[:, None]).ravel()
        def part(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[pick]

        return Samples(sample_set, self.preds[pick], self.labels[pick], self.probs[pick], part(self.full),
                       self.draws, part(self.radius), np.asarray(ids, np.int32), task=self.task,
                       outputs=part(self.outputs), targets=part(self.targets))

    @property
    def badness(self) -> np.ndarray:
        """``[n * draws]``: how wrong each row's outcome is, larger worse (a per-row worst case
        picks the largest): a wrong class beats a right one, then a lower true-class probability;
        the per-row error of other tasks (:func:`~mmbench.data.tasks.row_badness`)."""
        if self.outputs is None or self.targets is None:
            return 2.0 * (self.preds != self.labels) - self.probs.astype(np.float64)
        return row_badness(self.task, self.outputs, self.targets)

    def to_blobs(self) -> tuple[bytes, ...]:
        """preds, labels, probs, full, radius, row ids, outputs, targets (None where absent)."""
        def blob(a: np.ndarray | None) -> bytes | None:
            return None if a is None else a.astype(np.float32).tobytes()

        ids = self.ids.astype(np.int32).tobytes()
        return (self.preds.tobytes(), self.labels.tobytes(), self.probs.tobytes(), blob(self.full),
                blob(self.radius), ids, blob(self.outputs), blob(self.targets))

    @classmethod
    def from_blobs(cls, sample_set: SampleSet, preds: bytes, labels: bytes, probs: bytes,
                   full: bytes | None = None, draws: int = 1, radius: bytes | None = None,
                   row_ids: bytes | None = None, task: str | None = None, outputs: bytes | None = None,
                   targets: bytes | None = None) -> Samples:
        p = np.frombuffer(preds, np.int16)

        def matrix(blob: bytes | None) -> np.ndarray | None:
            return None if blob is None else np.frombuffer(blob, np.float32).reshape(len(p), -1)

        r = None if radius is None else np.frombuffer(radius, np.float32)
        ids = None if row_ids is None else np.frombuffer(row_ids, np.int32)
        if ids is not None and len(ids) * draws != len(p):
            raise ValueError("row ids do not match the outcomes")
        out, tgt = matrix(outputs), matrix(targets)
        if (task or CLASSIFICATION) != CLASSIFICATION and (out is None or tgt is None or out.shape != tgt.shape):
            raise ValueError("a regression or multilabel cell needs outputs and targets of one shape")
        return cls(sample_set, p, np.frombuffer(labels, np.int16), np.frombuffer(probs, np.float32), matrix(full),
                   draws, r, ids, task=task or CLASSIFICATION, outputs=out, targets=tgt)


class Collector:
    """Accumulates a cell's per-row outcomes batch by batch, per draw (``full``: keep every
    class's probability too; ``task``: the dataset's); :meth:`samples` lays the draws out one
    after another."""

    def __init__(self, full: bool = False, row_ids: np.ndarray | None = None,
                 task: str = CLASSIFICATION) -> None:
        self.keep_full = full and task == CLASSIFICATION  # class probabilities exist for classes only
        self.row_ids = row_ids  # positions in the split of the rows evaluated (None: all, in order)
        self.task = task
        self.parts: dict[int, dict[str, list[Tensor]]] = {}

    def update(self, logits: Tensor, labels: Tensor, draw: int = 0, preds: Tensor | None = None,
               radius: Tensor | None = None) -> None:
        """Add a batch: ``preds`` overrides the argmax of ``logits`` (a classifier whose decision
        is not the argmax, e.g. a smoothed one); ``radius``: per-row certified radii."""
        part = self.parts.setdefault(draw, {"preds": [], "labels": [], "probs": [], "full": [], "radius": [],
                                            "outputs": [], "targets": []})
        logits = logits.detach().float()
        if self.task != CLASSIFICATION:
            out = as_outputs(self.task, logits.view(len(labels), -1))
            part["outputs"].append(out.cpu())
            part["targets"].append(labels.detach().float().view(len(labels), -1).cpu())
            zeros = torch.zeros(len(labels), dtype=torch.int16)
            part["preds"].append(zeros)
            part["labels"].append(zeros)
            part["probs"].append(torch.zeros(len(labels)))
            return
        log_norm = logits.logsumexp(dim=1, keepdim=True)
        true = logits.gather(1, labels.long().view(-1, 1))
        part["probs"].append((true - log_norm).exp().view(-1).cpu())  # softmax of the label
        part["preds"].append((logits.argmax(dim=1) if preds is None else preds).to(torch.int16).cpu())
        part["labels"].append(labels.to(torch.int16).cpu())
        if self.keep_full:
            part["full"].append((logits - log_norm).exp().cpu())
        if radius is not None:
            part["radius"].append(radius.detach().float().cpu())

    def _cat(self, name: str) -> np.ndarray:
        return torch.cat([t for d in sorted(self.parts) for t in self.parts[d][name]]).numpy()

    def samples(self, sample_set: SampleSet) -> Samples:
        full = self._cat("full") if self.keep_full else None
        certified = any(part["radius"] for part in self.parts.values())
        preds, draws = self._cat("preds"), max(len(self.parts), 1)
        ids = np.arange(len(preds) // draws, dtype=np.int32) if self.row_ids is None else self.row_ids
        other = self.task != CLASSIFICATION
        return Samples(sample_set, preds, self._cat("labels"), self._cat("probs"), full, draws,
                       self._cat("radius") if certified else None, ids.astype(np.int32), task=self.task,
                       outputs=self._cat("outputs") if other else None,
                       targets=self._cat("targets") if other else None)


def stack(cells: list[Samples], n_classes: int, full: bool) -> Outcomes:
    """The :class:`Outcomes` of cells over the same rows (one column each)."""
    def joined(name: str) -> np.ndarray | None:
        arrays = [getattr(c, name) for c in cells]
        return None if any(a is None for a in arrays) else np.stack(arrays, axis=1).astype(np.float64)

    return Outcomes(np.stack([c.preds for c in cells], axis=1).astype(np.int64),
                    np.stack([c.labels for c in cells], axis=1).astype(np.int64),
                    np.stack([c.probs for c in cells], axis=1).astype(np.float64), n_classes,
                    joined("full") if full else None, joined("outputs"), joined("targets"), cells[0].task)
