"""``pretrained``: no training. The model is evaluated with the weights its factory built, e.g. a
factory that loads a checkpoint of the researcher's own, or an in-memory model handed to
:func:`mmbench.evaluate`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from torch import nn

from mmbench.data.base import MultimodalDataset
from mmbench.data.tasks import DEFAULT_METRIC
from mmbench.registry import METRICS, RECIPES
from mmbench.train.base import Recipe, TrainReport, split_metric


@dataclass(frozen=True)
class PretrainedConfig:
    """The ``pretrained`` recipe has no parameters."""


@RECIPES.register("pretrained", description="no training: evaluate the weights the model factory built")
class PretrainedRecipe(Recipe):
    config_type = PretrainedConfig
    trains = False

    def fit(self, model: nn.Module, data: MultimodalDataset, config: Any, seed: int,
            progress: bool = False) -> TrainReport:
        """Leave the weights alone; report the validation value they have in the task's default
        metric (accuracy for classification)."""
        start = time.perf_counter()
        model.eval()
        name = DEFAULT_METRIC[data.task]
        value = split_metric(model, data.val, METRICS.get(name)(data.n_classes), data.task)
        return TrainReport(0, 0, value, time.perf_counter() - start, name)
