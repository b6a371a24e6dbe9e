"""Attacking a regression or multilabel model with torchattacks' cross-entropy attacks.

torchattacks' gradient attacks (FGSM, BIM, PGD, PGD-L2, MI-FGSM, ...) maximise the mean
cross-entropy of the model's logits at the given labels. :class:`TaskLossModel` hands them a
two-logit model ``[0, L(x)]`` whose label is always 0, where ``L`` is the row's task loss
(:func:`~mmbench.data.tasks.row_loss`: L1 or MSE error, binary cross-entropy). Its
cross-entropy is ``softplus(L)``, strictly increasing in ``L`` with derivative
``sigmoid(L) > 0``: every sign step is exactly a sign step on ``L`` (FGSM, BIM, PGD), every
normalised step (PGD-L2, the momentum attacks) one on ``L`` too, and every ascent on it an
ascent on the task loss. Attacks that read class decisions (whether a row is already
misclassified, margins between logits, target classes) would read this model's argmax, which
means nothing here; they are refused for other tasks at planning
(:data:`~mmbench.perturb.attacks.AttackSpec.any_task`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mmbench.data.tasks import row_loss


class TaskLossModel(nn.Module):
    """``[0, L(x)]`` per row for the wrapped model (``model(x)``: the attack tensor's outputs)
    against ``targets`` (one row per row of every batch the attack evaluates)."""

    def __init__(self, model: nn.Module, task: str, targets: Tensor, regression_loss: str = "l1") -> None:
        super().__init__()
        self.model, self.task, self.regression_loss = model, task, regression_loss
        self.targets = targets

    def forward(self, x: Tensor) -> Tensor:
        loss = row_loss(self.task, self.model(x).float(), self.targets, self.regression_loss)
        return torch.stack([torch.zeros_like(loss), loss], dim=1)

    @staticmethod
    def labels(targets: Tensor) -> Tensor:
        """The class the attack is told every row has: 0, the logit held at zero."""
        return torch.zeros(len(targets), dtype=torch.long, device=targets.device)
