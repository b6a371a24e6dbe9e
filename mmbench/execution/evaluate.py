"""Evaluation of one trained model under one perturbation, producing per-row outcomes."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from mmbench.data.base import Split
from mmbench.data.tasks import CLASSIFICATION
from mmbench.hashing import derive_seed
from mmbench.metrics.outcomes import Collector
from mmbench.perturb.base import Certified, NonFiniteLogits, Perturbation


@dataclass(frozen=True)
class EvalSettings:
    """How one evaluation runs: rows per forward pass, the seed of the perturbation's noise,
    a progress bar, whether every class's probability is kept (for metrics that need it), and
    the dataset's task (what each row's outcome is, :mod:`mmbench.data.tasks`)."""

    batch_size: int
    seed: int
    progress: bool = False
    full_probs: bool = False
    task: str = CLASSIFICATION


def evaluate(model: nn.Module, split: Split, perturbation: Perturbation, settings: EvalSettings,
             shared: dict | None = None) -> Collector:
    """Perturb each batch, predict, and collect each row's outcome (the harness, not the
    perturbation, scores the result; metrics are computed from the outcomes).

    ``shared`` is shared by the evaluations of one trained model on one split, so that
    perturbations can reuse work across cells (encoder outputs in missing-modality sweeps)."""
    store = {} if shared is None else shared
    if model.training:
        model.eval()
    rows = eval_rows(len(split), perturbation.max_rows, split.labels.device)
    collector = Collector(full=settings.full_probs, row_ids=None if rows is None else rows.cpu().numpy(),
                          task=settings.task)
    n, size = (len(split) if rows is None else len(rows)), settings.batch_size
    starts = range(0, n, size)
    if settings.progress:  # a disabled tqdm still costs more than a whole sweep cell's fusion pass
        starts = tqdm(starts, desc="eval", leave=False)
    for i, start in enumerate(starts):
        batch_cache = BatchCache(store, (id(split), n, size, start))
        index = slice(start, start + size) if rows is None else rows[start:start + size]
        # a slice is a view, not a copy; cached so that a sweep's cells share the batch dict
        batch, labels = batch_cache.get("rows", lambda ix=index: split.rows(ix))
        for draw in range(perturbation.draws):
            seed = settings.seed + i if draw == 0 else derive_seed(settings.seed + i, "draw", draw)
            out = perturbation.logits(model, batch, labels, seed, batch_cache)
            certified = out if isinstance(out, Certified) else None
            logits = (out.logits if certified else out).float()
            if not bool(torch.isfinite(logits).all()):
                raise NonFiniteLogits(f"the model gave NaN/Inf logits on rows {start}-{start + len(labels) - 1}"
                                      f" under {perturbation.name}/{perturbation.target}")
            if certified:
                collector.update(logits, labels, draw, certified.preds, certified.radius)
            else:
                collector.update(logits, labels, draw)
    return collector


class BatchCache:
    """Values computed once per batch of rows and shared by the evaluations of one model."""

    def __init__(self, store: dict[Any, Any], batch_key: tuple[int, ...]) -> None:
        self.store, self.batch_key = store, batch_key

    def get(self, tag: Hashable, compute: Callable[[], Any]) -> Any:
        key = (self.batch_key, tag)
        if key not in self.store:
            self.store[key] = compute()
        return self.store[key]


def eval_rows(n: int, max_rows: int | None, device: torch.device) -> torch.Tensor | None:
    """A fixed seeded subset of ``max_rows`` of the ``n`` row indices (in order), or ``None``
    for all rows."""
    if max_rows is None or max_rows >= n:
        return None
    subset = torch.randperm(n, generator=torch.Generator().manual_seed(0))[:max_rows]
    return subset.sort().values.to(device)
