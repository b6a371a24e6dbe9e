"""``late_fusion``: one classifier per modality, logits averaged (decision-level fusion)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mmbench.data.base import ModalitySpec
from mmbench.models.base import FusionModel
from mmbench.registry import MODELS


class LateFusion(FusionModel):
    def __init__(self, modalities: Sequence[ModalitySpec], n_classes: int, dim: int, hidden: int):
        super().__init__(modalities, n_classes)
        self.build_encoders(dim, hidden)
        self.heads = nn.ModuleDict({m.name: nn.Linear(dim, n_classes) for m in self.modalities})

    def fuse_and_classify(self, features: dict[str, Tensor]) -> Tensor:
        logits = [self.heads[name](feat) for name, feat in features.items()]
        return torch.stack(logits, dim=0).mean(dim=0)


@MODELS.register("late_fusion", family="late", handles_missing=True)
def late_fusion(
    modalities: Sequence[ModalitySpec], n_classes: int, dim: int = 64, hidden: int = 128
) -> FusionModel:
    """Per-modality encoder + linear classifier; the logits of present modalities are averaged."""
    return LateFusion(modalities, n_classes, dim, hidden)
