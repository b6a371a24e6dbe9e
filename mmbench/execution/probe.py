"""Running each model once before anything trains (``mmbench validate`` and ``mmbench run``).

Every model of a plan is built on every dataset it is trained on and does one forward and one
backward pass on two training rows, on the CPU. A signature, shape or dtype mistake thus becomes
a one-line error naming the model, the dataset and the inputs it was given, before any work.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from mmbench.config.build import build_model
from mmbench.data.base import MultimodalDataset
from mmbench.errors import MMBenchError, first_line
from mmbench.plan.cells import Plan, TrainCell

log = logging.getLogger(__name__)
ROWS = 2


def probe_plan(plan: Plan, datasets: Mapping[str, MultimodalDataset]) -> list[str]:
    """Probe each (dataset, model) of the plan once; return warnings (also logged)."""
    warnings: list[str] = []
    seen: set[tuple[str, str]] = set()
    for cell in plan.train_cells:
        if (cell.dataset, cell.model) not in seen:
            seen.add((cell.dataset, cell.model))
            warnings += probe_cell(cell, datasets[cell.dataset])
    for text in warnings:
        log.warning("%s", text)
    return warnings


def probe_cell(cell: TrainCell, data: MultimodalDataset) -> list[str]:
    comp = cell.model_component
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model(comp.name, data.modalities, data.n_classes, comp.params, cell.model,
                            f"dataset '{cell.dataset}'")
        return probe_model(model, data, f"model '{cell.model}' on dataset '{cell.dataset}'")


def probe_model(model: nn.Module, data: MultimodalDataset, what: str) -> list[str]:
    """One forward and backward pass on two CPU training rows of ``data``; raises a one-line
    :class:`MMBenchError` on a mistake, returns warnings for what would make attacks vacuous."""
    model = model.cpu().train()
    batch, labels = data.train.to("cpu").rows(slice(0, ROWS))
    batch = {k: v.clone().requires_grad_(v.is_floating_point()) for k, v in batch.items()}
    reads = set(getattr(model, "input_modalities", batch))
    inputs = describe({k: v for k, v in batch.items() if k in reads})
    try:
        logits = model(batch)
    except MMBenchError:
        raise
    except Exception as exc:
        raise MMBenchError(f"{what}: a forward pass on {ROWS} rows failed: {type(exc).__name__}: "
                           f"{first_line(exc)} (inputs: {inputs})") from None
    check_logits(logits, len(labels), data.n_classes, what)
    try:
        nn.functional.cross_entropy(logits.float(), labels).backward()
    except Exception as exc:
        raise MMBenchError(f"{what}: the backward pass failed: {type(exc).__name__}: "
                           f"{first_line(exc)}") from None
    check_trainable(model, what)
    return _gradient_warnings(model, batch, what)


def check_logits(logits: Tensor, rows: int, n_classes: int, what: str) -> None:
    if not logits.is_floating_point() or logits.dim() != 2:
        raise MMBenchError(f"{what}: forward returned {logits.dtype} {list(logits.shape)}; it must return "
                           f"floating-point logits [rows, {n_classes}]")
    if tuple(logits.shape) != (rows, n_classes):
        raise MMBenchError(f"{what}: forward returned shape {list(logits.shape)} for {rows} rows; the "
                           f"dataset has {n_classes} classes, so it must be [{rows}, {n_classes}]")
    if not bool(torch.isfinite(logits).all()):
        raise MMBenchError(f"{what}: forward returned NaN/Inf logits on {rows} clean rows")


def check_trainable(model: nn.Module, what: str) -> None:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise MMBenchError(f"{what}: the model has no trainable parameters; the training recipes need some")
    if all(p.grad is None for p in params):
        raise MMBenchError(f"{what}: the loss does not reach any parameter (is the output detached?)")


def _gradient_warnings(model: nn.Module, batch: dict[str, Tensor], what: str) -> list[str]:
    reads = set(getattr(model, "input_modalities", batch))
    blocked = [k for k, v in batch.items() if v.is_floating_point() and k in reads and v.grad is None]
    return [f"{what}: no gradient reaches modality '{k}' from the loss, so gradient attacks on "
            "it cannot move the prediction" for k in blocked]


def describe(batch: Mapping[str, Tensor]) -> str:
    """``name [shape] dtype`` of each input, e.g. ``vision [2, 1, 8, 8] float32``."""
    return ", ".join(f"{k} {list(v.shape)} {str(v.dtype).replace('torch.', '')}" for k, v in batch.items())
