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
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from mmbench.data.base import Batch

#: ``target`` value meaning "every modality".
ALL = "all"


class NonFiniteLogits(ArithmeticError):
    """A model produced NaN or Inf logits (the cell is recorded as failed)."""


@dataclass(frozen=True)
class Certified:
    """What a certifying perturbation returns from :meth:`Perturbation.logits` instead of bare
    logits: scores per class (for probability metrics), the classifier's decision per row (not
    necessarily their argmax) and the certified radius of that decision (NaN: abstained)."""

    logits: Tensor
    preds: Tensor
    radius: Tensor


@dataclass(frozen=True)
class Perturbation(abc.ABC):
    """One concrete perturbation: its family, name, target modality set and strength.

    Capabilities the engine reads instead of testing names: ``amp_safe`` (may run under
    ``--amp`` mixed precision), ``stageable`` (may be a stage of a compound perturbation),
    :attr:`needs_native_missing` (the model must handle missing modalities itself), ``draws``
    (how many independent random draws are averaged). What a
    row measured beyond the common columns comes from :meth:`facts` (e.g. ``attack``, ``norm``,
    ``imputation``, ``kept``, ``corruption``), stored as columns, never parsed from names."""

    family: str
    name: str
    target: str = ALL
    severity: float = 0.0
    #: evaluate on this many test rows (a fixed seeded subset, the same for every model) or all
    max_rows: int | None = None
    #: evaluate on this held-out group of the dataset instead of the suite's evaluation split
    group: str | None = None
    #: independent random draws of the perturbation per row, averaged (1: one draw)
    draws: int = 1

    #: whether mixed precision (``--amp``) may be used for this perturbation's forward passes
    amp_safe: ClassVar[bool] = False
    #: whether it can be a stage of a ``compound`` perturbation (its ``apply`` is the whole effect)
    stageable: ClassVar[bool] = True

    @property
    def embedding_of(self) -> tuple[str, ...]:
        """The token modalities whose embedding layer it needs (white-box token attacks); the
        probe refuses a model without one before anything trains."""
        return ()

    @property
    def needs_native_missing(self) -> bool:
        """Whether the model must handle missing modalities natively (a presence mask)."""
        return False

    def facts(self) -> dict[str, Any]:
        """What this case measured beyond family, name, target and severity (row columns)."""
        return {}

    @abc.abstractmethod
    def apply(self, model: nn.Module, batch: Batch, labels: Tensor, seed: int) -> dict[str, Tensor]:
        """Return the perturbed batch; modalities outside ``target`` must be returned unchanged."""

    def logits(self, model: nn.Module, batch: Batch, labels: Tensor, seed: int,
               cache: dict[Any, Any]) -> Tensor | Certified:
        """The model's logits on the perturbed batch (what the harness scores). Perturbations may
        override it with an exactly equivalent, cheaper computation that uses ``cache``; a
        certifying one returns :class:`Certified` decisions with their radii."""
        perturbed = self.apply(model, batch, labels, seed)
        with torch.no_grad():
            return model(perturbed)
