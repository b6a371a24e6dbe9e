"""The recipe contract: a config dataclass plus ``fit(model, dataset, config, seed)``."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from mmbench.data.base import MultimodalDataset, Split
from mmbench.data.tasks import CLASSIFICATION


@dataclass(frozen=True)
class TrainReport:
    """What training did, stored beside the checkpoint and in results.json."""

    epochs_run: int
    best_epoch: int
    best_val_accuracy: float  # the best validation value of ``val_metric`` (accuracy by default)
    seconds: float
    val_metric: str = "accuracy"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Recipe(abc.ABC):
    """A training procedure; ``config_type`` is the dataclass of its suite parameters."""

    config_type: ClassVar[type]
    #: whether mixed precision (``--amp``) may be used for this recipe's forward passes;
    #: recipes that attack the model while training keep float32
    amp_safe: ClassVar[bool] = True
    #: whether ``fit`` changes the weights (``pretrained`` does not)
    trains: ClassVar[bool] = True
    #: set by the executor: run forward passes under bfloat16 autocast
    amp: bool = False

    def check(self, config: Any, data: MultimodalDataset) -> None:  # noqa: B027 (optional hook)
        """Reject a configuration that does not fit ``data`` (before anything is trained)."""

    def needs_native_missing(self, config: Any) -> bool:
        """Whether training with ``config`` needs a model that handles missing modalities."""
        return False

    @abc.abstractmethod
    def fit(self, model: nn.Module, data: MultimodalDataset, config: Any, seed: int,
            progress: bool = False) -> TrainReport:
        """Train ``model`` in place on ``data.train`` (model selection on ``data.val``)."""


@torch.no_grad()
def split_accuracy(model: nn.Module, split: Split, batch_size: int = 1024) -> float:
    """Accuracy of ``model`` (in eval mode) on a whole split."""
    was_training = model.training
    model.eval()
    correct = 0
    for start in range(0, len(split), batch_size):
        batch, labels = split.rows(slice(start, start + batch_size))
        correct += int((model(batch).argmax(dim=1) == labels).sum())
    model.train(was_training)
    return correct / max(len(split), 1)


@torch.no_grad()
def split_metric(model: nn.Module, split: Split, metric: Any, task: str = CLASSIFICATION,
                 batch_size: int = 1024) -> float:
    """``metric`` (a :class:`~mmbench.metrics.base.Metric` instance) of ``model`` (in eval
    mode) on a whole split of a ``task`` dataset."""
    from mmbench.metrics.outcomes import Collector, SampleSet, stack

    was_training = model.training
    model.eval()
    collector = Collector(full=True, task=task)
    for start in range(0, len(split), batch_size):
        batch, y = split.rows(slice(start, start + batch_size))
        collector.update(model(batch).float(), y)
    model.train(was_training)
    if not len(split):
        return 0.0
    cell = collector.samples(SampleSet("val", "val"))
    return float(metric.value(stack([cell], metric.n_classes, full=task == CLASSIFICATION))[0])
