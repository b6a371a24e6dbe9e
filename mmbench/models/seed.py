"""``seed_concat``: the seed project's model, with its bugs fixed.

Per-modality encoders, concatenation, one linear layer. The seed computed the flattened size by
hand (wrong for non-square inputs), ran encoders inside the dataset and trained multi-class logits
with BCE; here encoders live in the model, adaptive pooling fixes the sizes, and training uses
cross-entropy.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mmbench.bounds import PositiveInt
from mmbench.data.base import ModalitySpec
from mmbench.models.base import FusionModel
from mmbench.registry import MODELS


class ConcatFusion(FusionModel):
    def __init__(self, modalities: Sequence[ModalitySpec], n_classes: int, dim: int, hidden: int):
        super().__init__(modalities, n_classes)
        self.build_encoders(dim, hidden)
        self.head = nn.Linear(dim * len(self.modalities), n_classes)

    def fuse_and_classify(self, features: dict[str, Tensor]) -> Tensor:
        return self.head(torch.cat([features[m.name] for m in self.modalities], dim=1))


@MODELS.register("seed_concat", family="concat")
def seed_concat(
    modalities: Sequence[ModalitySpec], n_classes: int, dim: PositiveInt = 64, hidden: PositiveInt = 128
) -> FusionModel:
    """Encoders -> concatenation -> one linear layer."""
    return ConcatFusion(modalities, n_classes, dim, hidden)
