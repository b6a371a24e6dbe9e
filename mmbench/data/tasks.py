"""What a dataset asks a model to predict: its *task*, and everything that depends on it.

- ``classification`` (single label): labels are class ids ``[N]`` (int64); the model returns
  logits ``[N, C]``; the loss is cross-entropy.
- ``regression``: labels are float targets ``[N, D]`` (a scalar target is ``D = 1``); the model
  returns ``[N, D]`` (or ``[N]`` when ``D = 1``); the loss is L1 (MultiBench's default for the
  affect datasets) or MSE.
- ``multilabel``: labels are ``K`` binary labels per row, ``[N, K]`` of 0/1 (stored as float32);
  the model returns one logit per label ``[N, K]``; the loss is binary cross-entropy with logits,
  and a label is predicted present when its sigmoid is at least :data:`THRESHOLD`.

A dataset's ``n_classes`` is the width of the model's output: classes, target dimensions or
labels. The same per-row loss the model is trained with is what attacks maximise
(:func:`row_loss`); a cell stores each row's *output* (regression values, multilabel
probabilities) and *target* for the metrics (:mod:`mmbench.metrics.outcomes`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

CLASSIFICATION, REGRESSION, MULTILABEL = "classification", "regression", "multilabel"
TASKS = (CLASSIFICATION, REGRESSION, MULTILABEL)
#: the losses a regression task may be trained and attacked with (L1 first: the default)
REGRESSION_LOSSES = ("l1", "mse")
#: a multilabel label is predicted present when its sigmoid probability is at least this
THRESHOLD = 0.5
#: the metric a task is scored and early-stopped by unless the suite names another
DEFAULT_METRIC = {CLASSIFICATION: "accuracy", REGRESSION: "mae", MULTILABEL: "micro_f1"}


def check_task(task: str, what: str = "dataset") -> str:
    """``task`` if it is a known task, else a one-line ``ValueError`` naming the choices."""
    if task not in TASKS:
        raise ValueError(f"{what}: task must be one of {', '.join(TASKS)}, got {str(task)[:40]!r}")
    return task


def as_outputs(task: str, logits: Tensor) -> Tensor:
    """What a cell stores of a model's raw output for a non-classification task: the regression
    values themselves, or each label's sigmoid probability."""
    return torch.sigmoid(logits) if task == MULTILABEL else logits


def as_2d(task: str, logits: Tensor) -> Tensor:
    """A regression model's ``[N]`` output (one target) as ``[N, 1]``; anything else as is."""
    return logits.unsqueeze(1) if task == REGRESSION and logits.dim() == 1 else logits


def row_loss(task: str, logits: Tensor, labels: Tensor, regression_loss: str = "l1") -> Tensor:
    """Per-row loss ``[N]`` of raw outputs ``logits`` against ``labels``: cross-entropy; the
    mean absolute (``l1``) or squared (``mse``) error over the targets; the mean binary
    cross-entropy over the labels. Attacks maximise it; training minimises its mean."""
    if task == CLASSIFICATION:
        return nn.functional.cross_entropy(logits, labels.long(), reduction="none")
    out, target = as_2d(task, logits).float(), labels.float().view(len(labels), -1)
    if task == MULTILABEL:
        return nn.functional.binary_cross_entropy_with_logits(out, target, reduction="none").mean(dim=1)
    error = out - target
    return (error.abs() if regression_loss == "l1" else error.square()).mean(dim=1)


def loss_name(task: str, regression_loss: str = "l1") -> str:
    """How :func:`row_loss` is called in messages and docs."""
    return {CLASSIFICATION: "cross-entropy", MULTILABEL: "binary cross-entropy"}.get(
        task, "L1 (mean absolute error)" if regression_loss == "l1" else "MSE (mean squared error)")


def row_badness(task: str, outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """A per-row error of stored outcomes (``[n, D]`` each), larger is worse: the mean absolute
    error of a regression, the mean binary cross-entropy of multilabel probabilities (which
    orders rows with the same number of wrong labels by how confidently wrong they are)."""
    if task == REGRESSION:
        return np.abs(outputs.astype(np.float64) - targets).mean(axis=1)
    p = np.clip(outputs.astype(np.float64), 1e-7, 1 - 1e-7)
    return -(targets * np.log(p) + (1 - targets) * np.log(1 - p)).mean(axis=1)
