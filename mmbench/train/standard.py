"""``standard``: Adam with the task's loss (cross-entropy, optionally class-weighted; L1 or MSE
for regression; binary cross-entropy for multilabel), mini-batches in a seeded order, early
stopping on a validation metric in its direction (the suite's score metric unless
``early_stop`` names another; the best validation epoch's weights are kept)."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from mmbench.data.base import Batch, MultimodalDataset
from mmbench.data.tasks import CLASSIFICATION, DEFAULT_METRIC, REGRESSION_LOSSES, row_loss
from mmbench.errors import MMBenchError, did_you_mean
from mmbench.registry import METRICS, RECIPES
from mmbench.train.base import Recipe, TrainReport, split_metric

#: loss(model, batch, labels, generator) for one mini-batch
LossFn = Callable[[nn.Module, Batch, Tensor, torch.Generator], Tensor]
#: criterion(logits, labels): the task's mean loss over a mini-batch
Criterion = Callable[[Tensor, Tensor], Tensor]


CLASS_WEIGHTS = ("none", "balanced")


def class_weights(config: StandardConfig, data: MultimodalDataset) -> Tensor | None:
    """Per-class loss weights: ``balanced`` weights class c by n / (C * n_c) over the training
    rows (scikit-learn's convention), so a minority class counts as much as the majority."""
    if config.class_weights == "none":
        return None
    labels = data.train.labels.long()
    counts = torch.bincount(labels, minlength=data.n_classes).float()
    return (len(labels) / (data.n_classes * counts.clamp(min=1))).to(labels.device)


def criterion(config: StandardConfig, data: MultimodalDataset) -> Criterion:
    """The task's training loss: cross-entropy (with ``class_weights``), the L1 or MSE error
    (``regression_loss``) or binary cross-entropy, each the mean over the mini-batch's rows."""
    if data.task == CLASSIFICATION:
        weight = class_weights(config, data)
        return lambda logits, labels: nn.functional.cross_entropy(logits, labels, weight=weight)
    return lambda logits, labels: row_loss(data.task, logits, labels, config.regression_loss).mean()


def model_loss(crit: Criterion) -> LossFn:
    """``crit`` of the model's logits on a mini-batch."""

    def loss(model: nn.Module, batch: Batch, labels: Tensor, generator: torch.Generator) -> Tensor:
        return crit(model(batch), labels)

    return loss


def perturbed_loss(perturb: Callable[[nn.Module, Batch, Tensor, int], Batch], clean_weight: float,
                   crit: Criterion) -> LossFn:
    """``crit`` on ``perturb(model, batch, labels, seed)``, with a fresh seed per mini-batch
    from the training generator, mixed with the clean loss at ``clean_weight`` (0: perturbed only)."""

    def loss(model: nn.Module, batch: Batch, labels: Tensor, generator: torch.Generator) -> Tensor:
        seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
        out = crit(model(perturb(model, batch, labels, seed)), labels)
        if clean_weight:
            out = (1 - clean_weight) * out + clean_weight * crit(model(batch), labels)
        return out

    return loss


@dataclass(frozen=True)
class StandardConfig:
    """Suite parameters of the ``standard`` recipe."""

    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 8  # epochs without a better validation value before stopping; 0: never
    #: ``balanced``: weight each class's loss by n / (C * n_c) (imbalanced data); ``none``
    class_weights: str = "none"
    #: the validation metric that selects the epoch, in its declared direction; empty: the
    #: suite's score metric (the planner fills it in)
    early_stop: str = ""
    #: the loss of a regression task: ``l1`` (MultiBench's) or ``mse``; attacks maximise it too
    regression_loss: str = "l1"

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.weight_decay < 0:
            raise ValueError("need epochs >= 1, batch_size >= 1, lr > 0 and weight_decay >= 0")
        if self.patience < 0:
            raise ValueError("patience must be >= 0")
        if self.class_weights not in CLASS_WEIGHTS:
            raise ValueError(f"class_weights must be one of {', '.join(CLASS_WEIGHTS)}, got {self.class_weights!r}")
        if self.regression_loss not in REGRESSION_LOSSES:
            raise ValueError(f"regression_loss must be one of {', '.join(REGRESSION_LOSSES)}, "
                             f"got {self.regression_loss!r}")
        if self.early_stop and self.early_stop not in METRICS:
            raise ValueError(f"early_stop names unknown metric '{self.early_stop}'"
                             f"{did_you_mean(self.early_stop, METRICS.names())}")


@RECIPES.register("standard", description="Adam + the task's loss, early stopping on validation")
class StandardRecipe(Recipe):
    config_type = StandardConfig

    def check(self, config: StandardConfig, data: MultimodalDataset) -> None:
        if config.class_weights != "none" and data.task != CLASSIFICATION:
            raise MMBenchError(f"recipe 'standard': class_weights weighs classes, and dataset '{data.name}' is a {data.task} "
                             "task; leave class_weights out")
        if config.early_stop and data.task not in METRICS.get(config.early_stop).tasks:
            raise MMBenchError(f"recipe 'standard': early_stop metric '{config.early_stop}' is not defined for the {data.task} "
                             f"task of dataset '{data.name}'; name one that is (mmbench ls metrics)")

    def loss_fn(self, config: StandardConfig, data: MultimodalDataset) -> LossFn:
        """The loss of one mini-batch; other recipes change the batch or the loss."""
        return model_loss(criterion(config, data))

    def fit(self, model: nn.Module, data: MultimodalDataset, config: StandardConfig, seed: int,
            progress: bool = False) -> TrainReport:
        start = time.perf_counter()
        generator = torch.Generator().manual_seed(seed)
        optimiser = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        name = config.early_stop or DEFAULT_METRIC[data.task]
        metric = METRICS.get(name)(data.n_classes)
        sign = 1.0 if metric.higher_is_better else -1.0
        best = (-math.inf, 0, copy.deepcopy(model.state_dict()))
        epochs = tqdm(range(1, config.epochs + 1), desc="train", leave=False, disable=not progress)
        epoch = 0
        loss_fn = self.loss_fn(config, data)
        for epoch in epochs:
            self._epoch(model, data, config, optimiser, generator, loss_fn)
            value = split_metric(model, data.val, metric, data.task)
            epochs.set_postfix({f"val_{name}": f"{value:.3f}"})
            if sign * value > best[0]:
                best = (sign * value, epoch, copy.deepcopy(model.state_dict()))
            elif config.patience and epoch - best[1] >= config.patience:
                break
        model.load_state_dict(best[2])
        model.eval()
        return TrainReport(epoch, best[1], sign * best[0], time.perf_counter() - start, name)

    def _epoch(self, model: nn.Module, data: MultimodalDataset, config: StandardConfig,
               optimiser: torch.optim.Optimizer, generator: torch.Generator, loss_fn: LossFn) -> None:
        model.train()
        order = torch.randperm(len(data.train), generator=generator).to(data.train.labels.device)
        for start in range(0, len(order), config.batch_size):
            batch, labels = data.train.rows(order[start:start + config.batch_size])
            optimiser.zero_grad(set_to_none=True)
            device = labels.device.type
            with torch.autocast(device, dtype=torch.bfloat16, enabled=self.amp):  # --amp only
                loss = loss_fn(model, batch, labels, generator)
            loss.float().backward()
            optimiser.step()
