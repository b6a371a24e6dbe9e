"""``natural_shift``: evaluation on a dataset's held-out groups (real, measured shift).

A dataset with evaluation ``groups`` (``mfeat`` with ``ood_attribute``, ``digits_cross``) was
trained on in-distribution rows only. This perturbation changes no input; it evaluates the model
on the in-distribution test split (``target: id``) and on each group (``target``: the group's
name, e.g. ``q1``..``q3`` and ``ood``). Worst-group accuracy is the minimum over the groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor, nn

from mmbench.data.base import Batch, ModalitySpec
from mmbench.errors import MMBenchError
from mmbench.perturb.base import Perturbation
from mmbench.registry import PERTURBATIONS

ID = "id"
NATURAL_SHIFT = "natural_shift"


@dataclass(frozen=True)
class Natural(Perturbation):
    """The inputs as they are, on the rows of ``group`` (``None``: the evaluation split). Not a
    compound stage: it changes which rows are evaluated, not the inputs."""

    stageable = False

    def apply(self, model: nn.Module, batch: Batch, labels: Tensor, seed: int) -> dict[str, Tensor]:
        return dict(batch)


@PERTURBATIONS.register("natural_shift", family=NATURAL_SHIFT, kinds=("image", "sequence", "vector", "tokens"))
def natural_shift(modalities: Sequence[ModalitySpec], n_classes: int,
                  groups: Sequence[str]) -> list[Perturbation]:
    """In-distribution test rows and each held-out group of the dataset (ID/OOD/worst group)."""
    if not groups:
        raise MMBenchError("natural_shift needs a dataset with held-out groups: use mfeat with "
                           "ood_attribute (e.g. 'mor:5') or digits_cross")
    return [Natural(family=NATURAL_SHIFT, name="natural", target=ID),
            *(Natural(family=NATURAL_SHIFT, name="natural", target=g, group=g) for g in groups)]
