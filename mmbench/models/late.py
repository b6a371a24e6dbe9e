"""``late_fusion``: one classifier per modality, logits averaged (decision-level fusion)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mmbench.data.base import ModalitySpec
from mmbench.models.base import PRESENT, FusionModel
from mmbench.registry import MODELS


class LateFusion(FusionModel):
    def __init__(self, modalities: Sequence[ModalitySpec], n_classes: int, dim: int, hidden: int):
        super().__init__(modalities, n_classes)
        self.build_encoders(dim, hidden)
        self.heads = nn.ModuleDict({m.name: nn.Linear(dim, n_classes) for m in self.modalities})

    def fuse_and_classify(self, features: dict[str, Tensor]) -> Tensor:
        """Mean of the per-modality logits; with a presence mask, of the present ones only (zero
        logits for a row with nothing present)."""
        logits = torch.stack([self.heads[m.name](features[m.name]) for m in self.modalities], dim=1)
        present = features.get(PRESENT)
        if present is None:
            return logits.mean(dim=1)
        weights = present.to(logits.dtype).unsqueeze(2)
        return (logits * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)


@MODELS.register("late_fusion", family="late", handles_missing=True)
def late_fusion(
    modalities: Sequence[ModalitySpec], n_classes: int, dim: int = 64, hidden: int = 128
) -> FusionModel:
    """Per-modality encoder + linear classifier; the logits of present modalities are averaged."""
    return LateFusion(modalities, n_classes, dim, hidden)
