"""``gated_fusion``: a learned, input-dependent gate weighs each modality (GMU-style)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mmbench.bounds import PositiveInt
from mmbench.data.base import ModalitySpec
from mmbench.models.base import FusionModel
from mmbench.registry import MODELS


class GatedFusion(FusionModel):
    def __init__(self, modalities: Sequence[ModalitySpec], n_classes: int, dim: int, hidden: int):
        super().__init__(modalities, n_classes)
        self.build_encoders(dim, hidden)
        self.gate = nn.Linear(dim * len(self.modalities), len(self.modalities))
        self.head = nn.Linear(dim, n_classes)

    def fuse_and_classify(self, features: dict[str, Tensor]) -> Tensor:
        stacked = torch.stack([features[m.name] for m in self.modalities], dim=1)  # [B, M, d]
        weights = torch.softmax(self.gate(stacked.flatten(1)), dim=1)             # [B, M]
        fused = (weights.unsqueeze(2) * torch.tanh(stacked)).sum(dim=1)
        return self.head(fused)


@MODELS.register("gated_fusion", family="gated")
def gated_fusion(
    modalities: Sequence[ModalitySpec], n_classes: int, dim: PositiveInt = 64, hidden: PositiveInt = 128
) -> FusionModel:
    """Softmax gate over modalities computed from all features; gated sum -> linear head."""
    return GatedFusion(modalities, n_classes, dim, hidden)
