"""Multiplicative fusion: ``tensor_fusion`` (TFN, Zadeh et al. 2017) and its low-rank
factorisation ``lowrank_fusion`` (LMF, Liu et al. 2018).

Each modality feature is extended with a constant 1 so the fused tensor keeps the unimodal and
bimodal terms. TFN's outer product grows as prod(d_m + 1); by default ``dim`` is chosen so that it
stays below ``max_fused`` whatever the number of modalities.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mmbench.bounds import PositiveInt
from mmbench.data.base import ModalitySpec
from mmbench.models.base import FusionModel
from mmbench.registry import MODELS


def _with_one(x: Tensor) -> Tensor:
    return torch.cat([x, torch.ones_like(x[:, :1])], dim=1)


def default_tfn_dim(n_modalities: int, max_fused: int) -> int:
    """The largest d with (d + 1) ** n_modalities <= max_fused (at least 1)."""
    d = 1
    while (d + 2) ** n_modalities <= max_fused:
        d += 1
    return d


class TensorFusion(FusionModel):
    def __init__(self, modalities: Sequence[ModalitySpec], n_classes: int, dim: int, hidden: int):
        super().__init__(modalities, n_classes)
        self.build_encoders(dim, hidden)
        fused = (dim + 1) ** len(self.modalities)
        self.head = nn.Sequential(nn.Linear(fused, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))

    def fuse_and_classify(self, features: dict[str, Tensor]) -> Tensor:
        fused = None
        for m in self.modalities:
            z = _with_one(features[m.name])
            fused = z if fused is None else (fused.unsqueeze(2) * z.unsqueeze(1)).flatten(1)
        return self.head(fused)


class LowRankFusion(FusionModel):
    def __init__(self, modalities: Sequence[ModalitySpec], n_classes: int, dim: int, hidden: int,
                 rank: int):
        super().__init__(modalities, n_classes)
        self.build_encoders(dim, hidden)
        self.factors = nn.ParameterDict({
            m.name: nn.Parameter(torch.randn(rank, dim + 1, hidden) * (dim + 1) ** -0.5)
            for m in self.modalities
        })
        self.rank_weights = nn.Parameter(torch.full((rank,), 1.0 / rank))
        self.bias = nn.Parameter(torch.zeros(hidden))
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(hidden, n_classes))

    def fuse_and_classify(self, features: dict[str, Tensor]) -> Tensor:
        product = None
        for m in self.modalities:
            # [B, d+1] x [r, d+1, h] -> [r, B, h]
            proj = torch.einsum("bd,rdh->rbh", _with_one(features[m.name]), self.factors[m.name])
            product = proj if product is None else product * proj
        fused = torch.einsum("r,rbh->bh", self.rank_weights, product) + self.bias
        return self.head(fused)


@MODELS.register("tensor_fusion", family="tensor")
def tensor_fusion(
    modalities: Sequence[ModalitySpec], n_classes: int, dim: PositiveInt | None = None,
    hidden: PositiveInt = 128, max_fused: PositiveInt = 4096,
) -> FusionModel:
    """TFN: outer product of (features, 1) over all modalities -> MLP."""
    dim = dim or default_tfn_dim(len(modalities), max_fused)
    return TensorFusion(modalities, n_classes, dim, hidden)


@MODELS.register("lowrank_fusion", family="tensor")
def lowrank_fusion(
    modalities: Sequence[ModalitySpec], n_classes: int, dim: PositiveInt = 32, hidden: PositiveInt = 64,
    rank: PositiveInt = 4,
) -> FusionModel:
    """LMF: rank-``rank`` factorisation of the TFN weight tensor."""
    return LowRankFusion(modalities, n_classes, dim, hidden, rank)
