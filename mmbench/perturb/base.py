"""The perturbation contract.

A registered perturbation is a factory
``factory(modalities, n_classes, **params) -> list[Perturbation]``:
one suite entry may expand to a grid (targets x strengths). Each :class:`Perturbation` is a pure
function of (model, batch, labels, seed) returning the perturbed batch; the harness, not the
perturbation, computes metrics on the result.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from mmbench.data.base import Batch

#: ``target`` value meaning "every modality".
ALL = "all"


@dataclass(frozen=True)
class Perturbation(abc.ABC):
    """One concrete perturbation: its family, name, target modality set and strength."""

    family: str
    name: str
    target: str = ALL
    severity: float = 0.0
    #: evaluate on this many test rows (a fixed seeded subset, the same for every model) or all
    max_rows: int | None = None
    #: evaluate on this held-out group of the dataset instead of the suite's evaluation split
    group: str | None = None

    @abc.abstractmethod
    def apply(self, model: nn.Module, batch: Batch, labels: Tensor, seed: int) -> dict[str, Tensor]:
        """Return the perturbed batch; modalities outside ``target`` must be returned unchanged."""

    def logits(self, model: nn.Module, batch: Batch, labels: Tensor, seed: int,
               cache: dict[Any, Any]) -> Tensor:
        """The model's logits on the perturbed batch (what the harness scores). Perturbations may
        override it with an exactly equivalent, cheaper computation that uses ``cache``."""
        perturbed = self.apply(model, batch, labels, seed)
        with torch.no_grad():
            return model(perturbed)
