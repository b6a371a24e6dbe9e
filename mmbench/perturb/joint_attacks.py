"""A joint attack on token ids and continuous modalities together: text + image.

An ``adversarial`` entry that lists a continuous attack (``pgd``, ...) and a token attack
(``hotflip``, ...) attacks a target that mixes both kinds (``all``, or a subset such as
``image+text``) jointly: the continuous attack changes the continuous targets within ``eps``, the
token attack changes at most ``token_eps`` positions of each token target. This case runs them in
sequence (the token attack searches against the continuous part's output) and is stored as
``<continuous>><token>``; the entry also runs each part alone. The ``token_attacks`` family then
derives the joint cell ``<continuous>+<token>`` from the stored outcomes: per row, the worst of
the sequence and the two parts alone, so on the same rows it is never weaker than either part
(exactly the parts' cells, whatever their random draws) and the family's check says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from mmbench.data.base import Batch
from mmbench.perturb.base import Perturbation
from mmbench.perturb.token_attacks import TokenAttack, batch_seed

#: the ``joint`` fact of the stored sequence (the derived joint cell says ``worst of parts``)
SEQUENCE = "sequence"


@dataclass(frozen=True)
class JointAttack(Perturbation):
    """``continuous`` (an attack on the continuous targets), then ``tokens`` (one token attack
    per token target, in turn) on its output; ``severity`` is the token budget."""

    continuous: Perturbation | None = None
    tokens: tuple[TokenAttack, ...] = ()

    @property
    def embedding_of(self) -> tuple[str, ...]:
        return tuple(n for t in self.tokens for n in t.embedding_of)

    def facts(self) -> dict[str, Any]:
        assert self.continuous is not None
        cont = self.continuous.facts()
        return {"attack": f"{cont['attack']}+{self.tokens[0].attack}", "norm": f"{cont['norm']}+tokens",
                "ensemble": "", "continuous_eps": float(self.continuous.severity),
                "parts": f"{self.continuous.target}|{'+'.join(t.target for t in self.tokens)}", "joint": SEQUENCE}

    def apply(self, model: nn.Module, batch: Batch, labels: Tensor, seed: int) -> dict[str, Tensor]:
        assert self.continuous is not None
        # seeded by the rows, like the token attacks: every token budget continues from the same
        # continuous output, so the joint cells never get weaker as the budget grows
        out = self.continuous.apply(model, batch, labels, batch_seed(labels, self.continuous.name))
        for attack in self.tokens:
            out = attack.apply(model, out, labels, seed)
        return out
