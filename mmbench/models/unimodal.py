"""``unimodal``: a baseline that sees one modality only (suites expand it to every modality)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from mmbench.bounds import PositiveInt
from mmbench.data.base import ModalitySpec
from mmbench.errors import MMBenchError, did_you_mean
from mmbench.models.base import FusionModel
from mmbench.registry import MODELS


class Unimodal(FusionModel):
    def __init__(self, modalities: Sequence[ModalitySpec], n_classes: int, modality: str,
                 dim: int, hidden: int):
        super().__init__(modalities, n_classes)
        names = [m.name for m in self.modalities]
        if modality not in names:
            raise MMBenchError(
                f"unimodal: unknown modality '{modality}'{did_you_mean(modality, names)}; "
                f"the dataset has {', '.join(names)}"
            )
        self.modality = modality
        self.build_encoders(dim, hidden, names=[modality])
        self.head = nn.Sequential(nn.Linear(dim, n_classes))

    @property
    def input_modalities(self) -> tuple[str, ...]:
        return (self.modality,)

    def fuse_and_classify(self, features: dict[str, Tensor]) -> Tensor:
        return self.head(features[self.modality])


@MODELS.register("unimodal", family="unimodal", per_modality=True)
def unimodal(
    modalities: Sequence[ModalitySpec], n_classes: int, modality: str | None = None,
    dim: PositiveInt = 64, hidden: PositiveInt = 128,
) -> FusionModel:
    """Encoder + linear classifier on ``modality`` alone (default: the first modality)."""
    return Unimodal(modalities, n_classes, modality or modalities[0].name, dim, hidden)
