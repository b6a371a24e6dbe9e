"""``attention_fusion``: a small transformer over one token per modality plus a class token."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mmbench.bounds import PositiveInt
from mmbench.data.base import ModalitySpec
from mmbench.models.base import FusionModel
from mmbench.registry import MODELS


class AttentionFusion(FusionModel):
    def __init__(self, modalities: Sequence[ModalitySpec], n_classes: int, dim: int, hidden: int,
                 heads: int, layers: int):
        super().__init__(modalities, n_classes)
        self.build_encoders(dim, hidden)
        self.modality_embed = nn.Parameter(torch.randn(len(self.modalities), dim) * 0.02)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        layer = nn.TransformerEncoderLayer(
            dim, heads, dim_feedforward=2 * dim, dropout=0.0, batch_first=True
        )
        self.transformer = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, n_classes))

    def fuse_and_classify(self, features: dict[str, Tensor]) -> Tensor:
        tokens = torch.stack([features[m.name] for m in self.modalities], dim=1)
        tokens = tokens + self.modality_embed
        cls = self.cls.expand(len(tokens), -1, -1)
        out = self.transformer(torch.cat([cls, tokens], dim=1))
        return self.head(out[:, 0])


@MODELS.register("attention_fusion", family="attention")
def attention_fusion(
    modalities: Sequence[ModalitySpec], n_classes: int, dim: PositiveInt = 64, hidden: PositiveInt = 128,
    heads: PositiveInt = 4, layers: PositiveInt = 1,
) -> FusionModel:
    """One token per modality (+ modality embedding) -> transformer encoder -> class token."""
    return AttentionFusion(modalities, n_classes, dim, hidden, heads, layers)
