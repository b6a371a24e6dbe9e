"""Evaluation of one trained model under one perturbation, producing tidy rows."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from mmbench.data.base import Split
from mmbench.engine.plan import EvalCell
from mmbench.engine.rows import TidyRow
from mmbench.metrics.base import Metric
from mmbench.metrics.bootstrap import Collector
from mmbench.registry import METRICS


def evaluate(model: nn.Module, split: Split, cell: EvalCell, metric_names: tuple[str, ...],
             n_classes: int, batch_size: int, seed: int, suite: str,
             progress: bool = False, cache: dict | None = None,
             collector: Collector | None = None) -> list[TidyRow]:
    """Perturb each batch, predict, and accumulate every metric (computed by the harness).

    ``cache`` is shared by the evaluations of one trained model on one split, so that
    perturbations can reuse work across cells (encoder outputs in missing-modality sweeps);
    ``collector`` keeps per-row outcomes (for bootstrap intervals)."""
    store = {} if cache is None else cache
    if model.training:
        model.eval()
    metrics: dict[str, Metric] = {name: METRICS.get(name)(n_classes) for name in metric_names}
    rows = eval_rows(len(split), cell.perturbation.max_rows, split.labels.device)
    n = len(split) if rows is None else len(rows)
    starts = range(0, n, batch_size)
    if progress:  # a disabled tqdm still costs more than a whole sweep cell's fusion pass
        starts = tqdm(starts, desc="eval", leave=False)
    for i, start in enumerate(starts):
        batch_cache = BatchCache(store, (id(split), n, batch_size, start))
        index = slice(start, start + batch_size) if rows is None else rows[start:start + batch_size]
        # a slice is a view, not a copy; cached so that a sweep's cells share the batch dict
        batch, labels = batch_cache.get("rows", lambda ix=index: split.rows(ix))
        logits = cell.perturbation.logits(model, batch, labels, seed + i, batch_cache).float()
        if not bool(torch.isfinite(logits).all()):
            raise NonFiniteLogits(f"the model gave NaN/Inf logits on rows {start}-{start + len(labels) - 1}"
                                  f" under {cell.perturbation.name}/{cell.perturbation.target}")
        for metric in metrics.values():
            metric.update(logits, labels)
        if collector is not None:
            collector.update(logits, labels)
    tc, p = cell.train, cell.perturbation
    return [
        TidyRow(suite=suite, dataset=tc.dataset, model=tc.model, recipe=tc.recipe, seed=tc.seed,
                family=p.family, perturbation=p.name, target=p.target, severity=float(p.severity),
                metric=name, value=metric.compute(), n=n)
        for name, metric in metrics.items()
    ]


class NonFiniteLogits(ArithmeticError):
    """A model produced NaN or Inf logits (the cell is recorded as failed)."""


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
