"""``clean``: the identity perturbation (clean accuracy)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor, nn

from mmbench.data.base import Batch, ModalitySpec
from mmbench.perturb.base import Perturbation
from mmbench.registry import PERTURBATIONS


@dataclass(frozen=True)
class Clean(Perturbation):
    amp_safe = True  # nothing is attacked: bfloat16 autocast is safe

    def apply(self, model: nn.Module, batch: Batch, labels: Tensor, seed: int) -> dict[str, Tensor]:
        return dict(batch)


#: the clean perturbation and its family: the reference every robustness score is read against
CLEAN = "clean"


@PERTURBATIONS.register(CLEAN, family=CLEAN, kinds=("image", "sequence", "vector", "tokens"))
def clean(modalities: Sequence[ModalitySpec], n_classes: int) -> list[Perturbation]:
    """No perturbation: the clean test split."""
    return [Clean(family=CLEAN, name=CLEAN)]
