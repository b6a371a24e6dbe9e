"""``late_fusion``: one classifier per modality, logits averaged (decision-level fusion)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mmbench.bounds import PositiveInt
from mmbench.data.base import ModalitySpec
from mmbench.models.base import PRESENT, FusionModel
from mmbench.registry import MODELS


class LateFusion(FusionModel):
    """Each modality's "encoder" is a whole unimodal classifier (feature encoder + linear head),
    so its output is that modality's logits and fusion is their mean. Decision-level fusion has
    no shared head: this split lets a missing-modality sweep compute each modality's logits once
    and re-run only the mean per subset."""

    def __init__(self, modalities: Sequence[ModalitySpec], n_classes: int, dim: int, hidden: int):
        super().__init__(modalities, n_classes)
        self.build_encoders(dim, hidden)
        for m in self.modalities:
            self.encoders[m.name] = nn.Sequential(self.encoders[m.name], nn.Linear(dim, n_classes))

    def fuse_and_classify(self, features: dict[str, Tensor]) -> Tensor:
        """Mean of the per-modality logits; with a presence mask, of the present ones only (zero
        logits for a row with nothing present)."""
        logits = torch.stack([features[m.name] for m in self.modalities])  # [M, N, C]
        present = features.get(PRESENT)
        if present is None:
            return logits.mean(dim=0)
        weights = present.t().to(logits.dtype).unsqueeze(2)  # [M, N, 1]
        return (logits * weights).sum(dim=0) / weights.sum(dim=0).clamp(min=1)


@MODELS.register("late_fusion", family="late", handles_missing=True)
def late_fusion(
    modalities: Sequence[ModalitySpec], n_classes: int, dim: PositiveInt = 64, hidden: PositiveInt = 128
) -> FusionModel:
    """Per-modality encoder + linear classifier; the logits of present modalities are averaged."""
    return LateFusion(modalities, n_classes, dim, hidden)
