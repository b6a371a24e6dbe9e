"""``early_fusion``: concatenate the raw inputs, then one MLP. No per-modality encoders; token
modalities are embedded and mean-pooled, since their ids are not numbers to concatenate."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mmbench.bounds import PositiveInt
from mmbench.data.base import Batch, ModalityKind, ModalitySpec
from mmbench.models.base import FusionModel
from mmbench.registry import MODELS


class EarlyFusion(FusionModel):
    def __init__(self, modalities: Sequence[ModalitySpec], n_classes: int, hidden: int,
                 token_dim: int):
        super().__init__(modalities, n_classes)
        self.token_embed = nn.ModuleDict({
            m.name: nn.Embedding(m.vocab_size, token_dim)
            for m in self.modalities if m.kind is ModalityKind.TOKENS
        })
        width = sum(
            token_dim if m.kind is ModalityKind.TOKENS else int(torch.tensor(m.shape).prod())
            for m in self.modalities
        )
        self.mlp = nn.Sequential(
            nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, n_classes),
        )

    def raw_features(self, batch: Batch) -> dict[str, Tensor]:
        out = {}
        for m in self.modalities:
            x = batch[m.name]
            if m.name in self.token_embed:
                out[m.name] = self.token_embed[m.name](x.long()).mean(dim=1)
            else:
                out[m.name] = x.flatten(1)
        return out

    def fuse_and_classify(self, features: dict[str, Tensor]) -> Tensor:
        return self.mlp(torch.cat([features[m.name] for m in self.modalities], dim=1))

    def forward(self, batch: Batch) -> Tensor:
        return self.fuse_and_classify(self.raw_features(batch))


@MODELS.register("early_fusion", family="early")
def early_fusion(
    modalities: Sequence[ModalitySpec], n_classes: int, hidden: PositiveInt = 256, token_dim: PositiveInt = 16
) -> FusionModel:
    """Raw inputs concatenated -> 3-layer MLP."""
    return EarlyFusion(modalities, n_classes, hidden, token_dim)
