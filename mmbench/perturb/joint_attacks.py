"""A joint attack on token ids and continuous modalities together: text + image.

An ``adversarial`` entry that lists a continuous attack (``pgd``, ...) and a token attack
(``hotflip``, ...) attacks a target that mixes both kinds (``all``, or a subset such as
``image+text``) jointly: the continuous attack changes the continuous targets within ``eps``, the
token attack changes at most ``token_eps`` positions of each token target. Three candidates are
computed per row: the continuous part alone, the token part alone (each exactly the cell of that
part run on its own, same rows and seed) and the token attack run on the continuous part's output;
each row keeps the candidate that fools the model (a wrong class), else the one of highest loss.
So the joint attack is never weaker than either part alone on the same rows, by construction;
the ``token_attacks`` family checks that it holds in the stored cells (a failure is a bug).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from mmbench.data.base import Batch
from mmbench.data.tasks import CLASSIFICATION, row_loss
from mmbench.perturb.base import Perturbation
from mmbench.perturb.token_attacks import TokenAttack


@dataclass(frozen=True)
class JointAttack(Perturbation):
    """``continuous`` (an attack on the continuous targets) and ``tokens`` (one token attack per
    token target, applied in turn) at once; ``severity`` is the token budget."""

    continuous: Perturbation | None = None
    tokens: tuple[TokenAttack, ...] = ()
    task: str = CLASSIFICATION
    task_loss: str = "l1"

    def facts(self) -> dict[str, Any]:
        assert self.continuous is not None
        cont = self.continuous.facts()
        return {"attack": f"{cont['attack']}+{self.tokens[0].attack}", "norm": f"{cont['norm']}+tokens",
                "ensemble": "", "continuous_eps": float(self.continuous.severity),
                "parts": f"{self.continuous.target}|{self.token_target}"}

    @property
    def token_target(self) -> str:
        return "+".join(t.target for t in self.tokens)

    def apply(self, model: nn.Module, batch: Batch, labels: Tensor, seed: int) -> dict[str, Tensor]:
        assert self.continuous is not None
        moved = self.continuous.apply(model, batch, labels, seed)
        candidates = [self._tokens(model, moved, labels, seed), moved, self._tokens(model, batch, labels, seed)]
        return worst_rows(model, candidates, labels, self.task, self.task_loss)

    def _tokens(self, model: nn.Module, batch: Batch, labels: Tensor, seed: int) -> dict[str, Tensor]:
        out = dict(batch)
        for attack in self.tokens:
            out = attack.apply(model, out, labels, seed)
        return out


def worst_rows(model: nn.Module, candidates: list[dict[str, Tensor]], labels: Tensor, task: str,
               task_loss: str) -> dict[str, Tensor]:
    """Per row, the candidate batch the model gets most wrong: for a classification one it
    misclassifies, else (and among those) the one of highest loss; the first on ties."""
    with torch.no_grad():
        logits = [model(c).float() for c in candidates]
    loss = torch.stack([row_loss(task, x, labels, task_loss) for x in logits])  # [candidates, rows]
    if task == CLASSIFICATION:
        wrong = torch.stack([x.argmax(dim=1) != labels for x in logits])
        loss = torch.where(wrong | ~wrong.any(dim=0), loss, -torch.inf)
    choice = loss.nan_to_num(nan=-torch.inf).argmax(dim=0)  # the first maximum
    out = {}
    for name in candidates[0]:
        stacked = torch.stack([c[name] for c in candidates])
        index = choice.view(1, -1, *([1] * (stacked.dim() - 2))).expand(1, *stacked.shape[1:])
        out[name] = stacked.gather(0, index)[0]
    return out
