"""The FusionModel contract and model creation.

``forward(batch) -> logits`` where ``batch`` maps modality names to tensors. Models with encoders
split the forward pass into :meth:`FusionModel.encode` (one feature tensor per modality) and
:meth:`FusionModel.fuse_and_classify`, so the harness can reuse encoder outputs.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from mmbench.data.base import Batch, ModalitySpec
from mmbench.engine.params import HARNESS_ARGS, check_params
from mmbench.models.encoders import build_encoder
from mmbench.registry import MODELS


#: Batch key of an optional [N, M] bool presence mask (modalities in ``model.modalities`` order),
#: set for models that handle missing modalities natively (registered ``handles_missing=True``).
PRESENT = "__present__"


class FusionModel(nn.Module, abc.ABC):
    """Base class: ``encoders`` (one per modality), a fusion step and a head."""

    def __init__(self, modalities: Sequence[ModalitySpec], n_classes: int) -> None:
        super().__init__()
        self.modalities = tuple(modalities)
        self.n_classes = n_classes
        self.encoders = nn.ModuleDict()

    @property
    def has_encoders(self) -> bool:
        return len(self.encoders) > 0

    @property
    def input_modalities(self) -> tuple[str, ...]:
        """The modalities the output depends on (all of them unless a model says otherwise)."""
        return tuple(m.name for m in self.modalities)

    def build_encoders(self, out_dim: int, hidden: int, names: Sequence[str] | None = None) -> None:
        for spec in self.modalities:
            if names is None or spec.name in names:
                self.encoders[spec.name] = build_encoder(spec, out_dim, hidden)

    def encode(self, batch: Batch) -> dict[str, Tensor]:
        return {name: enc(batch[name]) for name, enc in self.encoders.items()}

    @abc.abstractmethod
    def fuse_and_classify(self, features: dict[str, Tensor]) -> Tensor:
        """Logits from per-modality features (the output of :meth:`encode`)."""

    def forward(self, batch: Batch) -> Tensor:
        features = self.encode(batch)
        if PRESENT in batch:
            features[PRESENT] = batch[PRESENT]
        return self.fuse_and_classify(features)


def create_model(
    name: str, modalities: Sequence[ModalitySpec], n_classes: int, **overrides: Any
) -> FusionModel:
    """Build registered model ``name``; ``None`` overrides are dropped (timm's convention)."""
    factory = MODELS.get(name)
    kwargs = {k: v for k, v in overrides.items() if v is not None}
    check_params(factory, kwargs, f"model '{name}'", HARNESS_ARGS)
    return factory(modalities=tuple(modalities), n_classes=n_classes, **kwargs)
