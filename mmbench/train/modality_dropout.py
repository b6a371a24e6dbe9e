"""``modality_dropout``: standard training where each modality of each training row is missing
with probability ``rate`` (at least one kept), filled in with ``imputation``, so the model learns
to cope with absent inputs; compare it with ``standard`` on the dropout family."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mmbench.data.base import Batch, MultimodalDataset
from mmbench.perturb.dropout import IMPUTATIONS, NATIVE, ZEROS, Fill, fill_missing, random_presence
from mmbench.registry import RECIPES
from mmbench.train.standard import LossFn, StandardConfig, StandardRecipe, criterion


@dataclass(frozen=True)
class ModalityDropoutConfig(StandardConfig):
    """Suite parameters of ``modality_dropout`` (plus those of ``standard``)."""

    rate: float = 0.3
    imputation: str = ZEROS

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.rate < 1:
            raise ValueError(f"rate must lie in [0, 1), got {self.rate}")
        if self.imputation not in IMPUTATIONS:
            raise ValueError(f"imputation must be one of {', '.join(IMPUTATIONS)}")


@RECIPES.register("modality_dropout", description="random modality dropout during training")
class ModalityDropoutRecipe(StandardRecipe):
    config_type = ModalityDropoutConfig

    def needs_native_missing(self, config: ModalityDropoutConfig) -> bool:
        return config.imputation == NATIVE

    def loss_fn(self, config: ModalityDropoutConfig, data: MultimodalDataset) -> LossFn:
        fill = Fill.from_split(data.modalities, data.train)
        specs = data.modalities
        crit = criterion(config, data)

        def dropout_loss(model: nn.Module, batch: Batch, labels: Tensor,
                         generator: torch.Generator) -> Tensor:
            seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
            present = random_presence(len(labels), len(specs), config.rate, seed).to(labels.device)
            dropped = fill_missing(batch, specs, present, config.imputation, fill, labels)
            return crit(model(dropped), labels)

        return dropout_loss
