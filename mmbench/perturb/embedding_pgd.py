"""``embedding_pgd``: PGD in the embedding space of a ``tokens`` modality, a **diagnostic**.

The attack adds a perturbation to the output of the modality's embedding layer (found as for
``hotflip``: :func:`~mmbench.perturb.token_attacks.find_embedding`) at every changeable position
and ascends the task's loss by projected gradient steps, each position's perturbation within an
L2 ball of radius ``eps`` times the median L2 norm of the embedding's rows (so ``eps`` 0.5 is half
a typical token vector). The result is no realisable input: no sequence of ids need embed to the
perturbed vectors, and it bounds no token attack either way (one changed id can move its position
further than the radius). It shows how sensitive the model is around the embeddings of its
inputs; boards label it "(diagnostic)" and it takes no part in a score.

Each row keeps the step of highest loss (the clean embedding included), so it is never made
better. ``apply`` returns the batch unchanged (there is no perturbed input to return); the
logits are computed with the perturbation in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from mmbench.data.base import Batch, ModalitySpec
from mmbench.data.tasks import CLASSIFICATION, row_loss
from mmbench.errors import MMBenchError
from mmbench.perturb.base import Certified, Perturbation
from mmbench.perturb.token_attacks import find_embedding

#: the attack's name in an ``adversarial`` entry
EMBEDDING_PGD = "embedding_pgd"
#: what its cells are called (boards show it as such)
DIAGNOSTIC = "embedding_pgd-diagnostic"


@dataclass(frozen=True)
class EmbeddingPGD(Perturbation):
    """PGD of ``steps`` steps in the embedding space of token modality ``spec`` at radius
    ``severity`` (times the median embedding norm), positions with ``protected`` ids fixed."""

    spec: ModalitySpec | None = None
    steps: int = 10
    protected: tuple[int, ...] = (0,)
    task: str = CLASSIFICATION
    task_loss: str = "l1"

    stageable: ClassVar[bool] = False  # its effect is not a batch a later stage could take

    @property
    def embedding_of(self) -> tuple[str, ...]:
        return () if self.spec is None else (self.spec.name,)

    def facts(self) -> dict[str, Any]:
        return {"attack": EMBEDDING_PGD, "norm": "embedding L2 (diagnostic)", "ensemble": ""}

    def apply(self, model: nn.Module, batch: Batch, labels: Tensor, seed: int) -> dict[str, Tensor]:
        return dict(batch)  # nothing realisable to return: see logits

    def logits(self, model: nn.Module, batch: Batch, labels: Tensor, seed: int,
               cache: dict[Any, Any]) -> Tensor | Certified:
        assert self.spec is not None
        embedding = find_embedding(model, batch, self.spec.name)
        if embedding is None:
            raise MMBenchError(f"embedding_pgd needs the embedding layer that modality '{self.spec.name}' "
                               "reaches and found none; declare it in mmbench_meta 'embeddings'")
        ids = batch[self.spec.name]
        pad = () if self.spec.pad_id is None else (self.spec.pad_id,)
        protected = torch.tensor(sorted(set(self.protected) | set(pad)), dtype=ids.dtype, device=ids.device)
        free = ~torch.isin(ids, protected)
        radius = float(self.severity) * float(embedding.weight.detach().norm(dim=1).median())
        return Ascent(model, batch, labels, self, embedding, free[:, :, None].float()).run(radius)


class Ascent:
    """PGD on a perturbation ``delta`` [rows, T, d] added to the embedding's output."""

    def __init__(self, model: nn.Module, batch: Batch, labels: Tensor, attack: EmbeddingPGD,
                 embedding: nn.Embedding, free: Tensor) -> None:
        self.model, self.batch, self.labels, self.attack = model, dict(batch), labels, attack
        self.embedding, self.free = embedding, free
        self.delta: Tensor | None = None

    def _add(self, module: nn.Module, args: tuple, out: Tensor) -> Tensor:
        return out + self.delta * self.free if self.delta is not None else out

    def forward(self, delta: Tensor) -> tuple[Tensor, Tensor]:
        """Logits and row losses with ``delta`` in place."""
        self.delta = delta
        handle = self.embedding.register_forward_hook(self._add)
        try:
            logits = self.model(self.batch).float()
        finally:
            handle.remove()
            self.delta = None
        return logits, row_loss(self.attack.task, logits, self.labels, self.attack.task_loss)

    def run(self, radius: float) -> Tensor:
        with torch.no_grad():
            shape = self.embedding(self.batch[self.attack.spec.name].long()).shape  # type: ignore[union-attr]
            best, best_loss = self.forward(torch.zeros(shape, device=self.labels.device))
        delta = torch.zeros(shape, device=self.labels.device)
        step = 2.5 * radius / max(self.attack.steps, 1)
        for _ in range(self.attack.steps if radius > 0 else 0):
            delta.requires_grad_(True)
            with torch.enable_grad():
                _, loss = self.forward(delta)
                grad = torch.autograd.grad(loss.sum(), delta)[0]
            with torch.no_grad():
                delta = delta + step * grad / grad.norm(dim=2, keepdim=True).clamp_min(1e-12)
                delta = delta * (radius / delta.norm(dim=2, keepdim=True).clamp_min(radius)).clamp(max=1.0)
                logits, loss = self.forward(delta)
                better = loss > best_loss
                best = torch.where(better[:, None], logits, best)
                best_loss = torch.where(better, loss, best_loss)
        return best.detach()


def embedding_cases(entry: Any, specs: Any) -> list[Perturbation]:
    """The cases of an ``adversarial`` entry listing ``embedding_pgd``: one per token modality
    of ``specs`` and radius of ``entry.budgets`` (``entry``: its checked token side)."""
    opts = dict(entry.options.get(EMBEDDING_PGD, {}))
    unknown = set(opts) - {"steps", "protected"}
    if unknown:
        raise MMBenchError(f"adversarial: {EMBEDDING_PGD} takes the options steps and protected, not "
                           f"{', '.join(sorted(unknown))}")
    protected = tuple(int(i) for i in opts.pop("protected", (0,)))
    return [EmbeddingPGD(family=entry.family, name=DIAGNOSTIC, target=spec.name, severity=eps, max_rows=entry.max_rows,
                         spec=spec, protected=protected, task=entry.task, task_loss=entry.regression_loss, **opts)
            for spec in specs for eps in entry.budgets]
