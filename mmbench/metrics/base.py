"""The metric contract: accumulate with :meth:`update`, read with :meth:`compute`."""

from __future__ import annotations

import abc
from typing import ClassVar

from torch import Tensor


class Metric(abc.ABC):
    """A metric over model outputs and true class indices, accumulated batch by batch.

    ``update`` receives logits ``[N, C]`` (the harness always passes them) or predicted class
    indices ``[N]``; metrics that need scores reject the latter."""

    #: Whether larger values are better (used to rank leaderboards).
    higher_is_better: ClassVar[bool] = True

    def __init__(self, n_classes: int) -> None:
        self.n_classes = n_classes
        self.reset()

    @abc.abstractmethod
    def reset(self) -> None:
        """Forget everything seen so far."""

    @abc.abstractmethod
    def update(self, preds: Tensor, target: Tensor) -> None:
        """Add a batch of logits (or predicted class indices) and true class indices."""

    @abc.abstractmethod
    def compute(self) -> float:
        """The metric over every batch seen since the last reset."""


def as_labels(preds: Tensor) -> Tensor:
    """Predicted class indices from logits ``[N, C]`` or indices ``[N]``."""
    return preds.argmax(dim=1) if preds.dim() == 2 else preds
