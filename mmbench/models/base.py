"""The FusionModel contract, and adapting any module to the harness (building a registered model
from a suite entry lives in :mod:`mmbench.config.build`).

``forward(batch) -> logits`` where ``batch`` maps modality names to tensors. Models with encoders
split the forward pass into :meth:`FusionModel.encode` (one feature tensor per modality) and
:meth:`FusionModel.fuse_and_classify`, so the harness can reuse encoder outputs.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from mmbench.data.base import Batch, ModalitySpec
from mmbench.errors import MMBenchError
from mmbench.models.calling import PlainModel, check_declared, derive_call
from mmbench.models.encoders import build_encoder

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


def adapt(model: Any, meta: dict[str, Any], modalities: Sequence[ModalitySpec], n_classes: int,
          what: str, dataset: str) -> nn.Module:
    """Check that ``model`` fits the dataset's modalities and make it callable with a batch."""
    if not isinstance(model, nn.Module):
        raise MMBenchError(f"{what}: its factory returned a {type(model).__name__}, not a "
                           "torch.nn.Module")
    names = [m.name for m in modalities]
    if isinstance(model, FusionModel):
        check_declared(meta, modalities, model.input_modalities, what, dataset)
        check_all_declared(meta, names, what, dataset)
        return model
    call = derive_call(model.forward, names, meta.get("inputs"), what, dataset, specs=modalities)
    check_declared(meta, modalities, call.modalities, what, dataset)
    check_all_declared(meta, names, what, dataset)
    return PlainModel(model, modalities, n_classes, call, what)


def check_all_declared(meta: dict[str, Any], names: Sequence[str], what: str, dataset: str) -> None:
    """A model whose ``modalities`` metadata declares its modalities must declare every modality
    of the dataset: one it never reads would otherwise look perfectly robust. (``inputs`` that
    name a subset are allowed: the others are reported as not read.)"""
    value = meta.get("modalities")
    declared = {str(k) for k in value} if isinstance(value, Mapping) else set()
    extra = [n for n in names if n not in declared]
    if declared and extra:
        them = "it" if len(extra) == 1 else "them"
        raise MMBenchError(f"{what} declares modalities {', '.join(sorted(declared))} but {dataset} also has "
                           f"{', '.join(extra)}, which it would never read (and would look perfectly robust "
                           f"to); drop {them} from the dataset or declare {them} in the model's 'modalities'")
