"""Adversarial attacks on a ``tokens`` modality (integer ids): the attack changes at most a budget
of positions per row, each to an allowed id, and maximises the task's loss
(:func:`~mmbench.data.tasks.row_loss`).

- ``hotflip`` (white-box; Ebrahimi et al. 2018): the gradient of the loss at the output of the
  model's embedding layer gives, for every position t and replacement v, a first-order estimate
  of the loss change ``(E[v] - E[x_t]) . g_t``; each step evaluates the ``beam`` best estimated
  flips of every row exactly and keeps the best, until the budget is spent;
- ``greedy_substitution`` (black-box, DeepWordBug / TextFooler-style without external
  embeddings): positions ranked by the loss change when their id is replaced by the mask id,
  then, position by position, ``candidates`` replacement ids tried by querying the model and the
  best kept;
- ``random_substitution``: ``budget`` random positions, each given a random allowed id, one at a
  time, each kept where it raises the row's loss (the baseline the searches must beat).

Random draws are seeded by the rows attacked (:func:`batch_seed`), not by the cell, so every
budget draws the same candidates and a larger budget continues a smaller one's search: with no
fooled row ever made right, robust accuracy never rises with the budget.

The budget ``eps`` is a number of positions (an integer >= 1) or, below 1, a fraction of each
row's changeable positions (rounded up). Positions holding a protected id (``protected``,
default ``[0]``: the padding / unknown id that ``token_dropout`` writes; the modality's
``pad_id`` is always protected) are never changed, and no protected id is ever written.
``neighbours`` (a table [V, k] of allowed replacements per id, e.g. synonyms or typos; entries
< 0 or >= V are unused slots) restricts each position to the neighbours of its clean id. A flip
is kept only when it raises the row's loss and turns no wrong decision right (the class; each
label of a multilabel task), so an attack never makes a row better.

The cells belong to the family ``token_attacks`` (budgets in positions, not in the normalised
units of the continuous attacks; :data:`mmbench.perturb.adversarial.TOKEN_FAMILY`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mmbench.data.base import Batch, ModalitySpec
from mmbench.data.tasks import CLASSIFICATION, MULTILABEL, row_loss
from mmbench.errors import MMBenchError
from mmbench.perturb.base import Perturbation

#: the token attacks, and whether each needs the model's embedding layer (white-box)
TOKEN_ATTACKS = {"hotflip": True, "greedy_substitution": False, "random_substitution": False}
#: scores of (row, position, id) computed at once by hotflip, at most (memory bound)
CHUNK = 1 << 24


@dataclass(frozen=True)
class TokenAttack(Perturbation):
    """One token attack at one budget (``severity``: ``eps``) on one token modality."""

    attack: str = "hotflip"
    spec: ModalitySpec | None = None
    protected: tuple[int, ...] = (0,)
    beam: int = 20
    candidates: int = 20
    task: str = CLASSIFICATION
    task_loss: str = "l1"
    #: allowed replacements per clean id, [V][k] (empty: the whole vocabulary)
    neighbours: tuple[tuple[int, ...], ...] = ()

    def facts(self) -> dict[str, Any]:
        return {"attack": self.attack, "norm": "tokens", "ensemble": ""}

    @property
    def embedding_of(self) -> tuple[str, ...]:
        return (self.spec.name,) if TOKEN_ATTACKS.get(self.attack) and self.spec is not None else ()

    def protected_ids(self) -> tuple[int, ...]:
        """``protected`` and the modality's padding id."""
        pad = () if self.spec is None or self.spec.pad_id is None else (self.spec.pad_id,)
        return tuple(sorted(set(self.protected) | set(pad)))

    def apply(self, model: nn.Module, batch: Batch, labels: Tensor, seed: int) -> dict[str, Tensor]:
        assert self.spec is not None
        ids = batch[self.spec.name]
        reads = getattr(model, "input_modalities", None)
        if reads is not None and self.spec.name not in reads:
            return dict(batch)
        search = Search(model, dict(batch), self.spec.name, labels, self)
        # seeded by the rows (not the cell): every budget draws the same candidates, so a larger
        # budget extends a smaller one's search and is never weaker
        generator = torch.Generator().manual_seed(batch_seed(ids, labels, self.attack))
        run = {"hotflip": search.hotflip, "greedy_substitution": search.greedy,
               "random_substitution": search.random}[self.attack]
        with torch.no_grad():
            adv = run(generator)
        return {**batch, self.spec.name: adv.to(ids.dtype)}

    def budget(self, changeable: Tensor) -> Tensor:
        """Positions each row may change: ``eps`` itself, or that fraction of its changeable ones."""
        if self.severity >= 1:
            return torch.full_like(changeable, int(self.severity))
        return torch.ceil(self.severity * changeable.float()).long()


class Search:
    """The state of one attack on one batch: the clean and current ids, which positions may
    still change, and the row losses."""

    def __init__(self, model: nn.Module, batch: dict[str, Tensor], name: str, labels: Tensor,
                 attack: TokenAttack) -> None:
        self.model, self.batch, self.name, self.labels, self.attack = model, batch, name, labels, attack
        self.clean = batch[name]
        self.vocab = attack.spec.vocab_size if attack.spec is not None else int(self.clean.max()) + 1
        protected = torch.tensor(attack.protected_ids(), dtype=self.clean.dtype, device=self.clean.device)
        self.allowed = torch.ones(self.vocab, dtype=torch.bool, device=self.clean.device)
        self.allowed[protected[protected < self.vocab]] = False
        self.options = self._options(attack.neighbours)  # [rows, T, V]: allowed id per position, or None
        self.free = ~torch.isin(self.clean, protected)  # positions that may change
        if self.options is not None:
            self.free &= self.options.any(dim=2)
        self.left = attack.budget(self.free.sum(dim=1))
        with torch.no_grad():  # the clean loss, and the decisions the current ids leave right
            self.clean_loss, self.right = self.scored(self.clean)

    def _options(self, neighbours: tuple[tuple[int, ...], ...]) -> Tensor | None:
        """With a neighbour table: which ids each position may take (its clean id's allowed
        neighbours)."""
        if not neighbours:
            return None
        table = torch.tensor(neighbours, dtype=torch.long, device=self.clean.device)  # [V, k]
        valid = (table >= 0) & (table < self.vocab)
        table = torch.where(valid, table, 0)
        per_id = torch.zeros(len(table), self.vocab, dtype=torch.bool, device=self.clean.device)
        per_id.scatter_(1, table, valid)
        per_id &= self.allowed
        per_id.fill_diagonal_(False)  # a replacement changes the id
        return per_id[self.clean.long()]

    def choices(self, row: int, position: int) -> Tensor:
        """The ids position ``position`` of row ``row`` may take (1-D, on the ids' device)."""
        if self.options is None:
            return self.allowed.nonzero().view(-1)
        return self.options[row, position].nonzero().view(-1)

    def loss(self, ids: Tensor) -> Tensor:
        """``[rows]``: each row's task loss with ``ids`` as the token modality."""
        return self.scored(ids)[0]

    def scored(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        """Each row's task loss, and which of its decisions are right ``[rows, K]``: the class
        (K = 1), each label of a multilabel task, none of a regression (its loss is the error)."""
        logits = self.model({**self.batch, self.name: ids}).float()
        loss = row_loss(self.attack.task, logits, self.labels, self.attack.task_loss)
        if self.attack.task == CLASSIFICATION:
            return loss, (logits.argmax(dim=1) == self.labels)[:, None]
        if self.attack.task == MULTILABEL:
            return loss, (logits >= 0) == (self.labels > 0.5)
        return loss, torch.zeros((len(loss), 1), dtype=torch.bool, device=loss.device)

    def keep_if_worse(self, ids: Tensor, trial: Tensor, current: Tensor, rows: Tensor,
                      reference: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Adopt ``trial`` for ``rows`` where it raises the loss above ``current`` without making
        a wrong decision right (with many classes a higher loss can move the argmax to the true
        class; a multilabel loss can rise while one label turns right): what is fooled stays
        fooled, so accuracy and F1 never improve along the search. ``reference``: the decisions
        ``trial`` is compared with, when it was made from other ids than ``ids`` (a beam)."""
        new, right = self.scored(trial)
        before = self.right if reference is None else reference
        better = (new > current) & rows & ~(right & ~before).any(dim=1)
        self.right = torch.where(better[:, None], right, self.right)
        ids = torch.where(better[:, None], trial, ids)
        return ids, torch.where(better, new, current)

    # -- random -----------------------------------------------------------------------------

    def random(self, generator: torch.Generator) -> Tensor:
        """Random positions given random allowed ids, one at a time, each kept where it raises the
        row's loss; the draws do not depend on the budget (a larger one continues the same walk)."""
        ids, current = self.clean.clone(), self.clean_loss
        order, picks = self._random_plan(generator)
        for j in range(min(int(self.left.max()), ids.shape[1]) if len(ids) else 0):
            rows = (order[:, j] >= 0) & (j < self.left)
            if not bool(rows.any()):
                break
            where = rows.nonzero().view(-1)
            trial = ids.clone()
            trial[where, order[where, j]] = picks[where, j]
            ids, current = self.keep_if_worse(ids, trial, current, rows)
        return ids

    def _random_plan(self, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Per row, its changeable positions in a random order (-1 after them) and a random
        allowed id for each step: ``[rows, T]`` each."""
        rows, length = self.clean.shape
        order = torch.full((rows, length), -1, dtype=torch.long)
        picks = torch.zeros((rows, length), dtype=self.clean.dtype)
        ok = self.allowed.nonzero().view(-1).cpu()
        for row in range(rows):
            free = self.free[row].nonzero().view(-1).cpu()
            order[row, :len(free)] = free[torch.randperm(len(free), generator=generator)]
            draws = torch.randint(1 << 30, (length,), generator=generator)
            for j, t in enumerate(order[row, :len(free)].tolist()):
                some = ok if self.options is None else self.choices(row, t).cpu()
                picks[row, j] = some[int(draws[j]) % len(some)]
        return order.to(self.clean.device), picks.to(self.clean.device)

    # -- greedy (black-box) -------------------------------------------------------------------

    def greedy(self, generator: torch.Generator) -> Tensor:
        ids, current = self.clean.clone(), self.clean_loss
        mask_id = self.attack.protected[0] if self.attack.protected else 0
        gain = torch.full(ids.shape, -math.inf, device=ids.device)
        for t in range(ids.shape[1]):
            masked = ids.clone()
            masked[:, t] = mask_id
            gain[:, t] = torch.where(self.free[:, t], self.loss(masked) - current, gain[:, t])
        order = gain.argsort(dim=1, descending=True)
        spent = torch.zeros_like(self.left)
        for rank in range(ids.shape[1]):
            t = order[:, rank]
            rows = self.free.gather(1, t[:, None]).view(-1) & (spent < self.left)
            if not bool(rows.any()):
                break
            before = ids.clone()
            for picks in self.candidate_ids(t, generator):  # [rows] each
                trial = ids.clone()
                kept = ids[torch.arange(len(ids)), t]
                trial[torch.arange(len(ids)), t] = torch.where(picks >= 0, picks.to(ids.dtype), kept)
                ids, current = self.keep_if_worse(ids, trial, current, rows & (picks >= 0))
            spent += (ids != before).any(dim=1).long()
        return ids

    def candidate_ids(self, t: Tensor, generator: torch.Generator) -> list[Tensor]:
        """``candidates`` draws of a replacement for position ``t[row]`` of each row: the same
        random allowed ids for every row, or (with neighbours) a random neighbour of each row's
        clean id (-1: none left)."""
        count = self.attack.candidates
        if self.options is None:
            ok = self.allowed.nonzero().view(-1)
            picks = ok[torch.randint(len(ok), (count,), generator=generator).to(ok.device)]
            return [v.expand(len(t)) for v in picks]
        allowed = self.options[torch.arange(len(t)), t]  # [rows, V]
        scores = torch.rand(allowed.shape, generator=generator).to(allowed.device)
        scores = torch.where(allowed, scores, -1.0)
        top = scores.topk(min(count, allowed.shape[1]), dim=1)
        return [torch.where(top.values[:, j] >= 0, top.indices[:, j], -1) for j in range(top.indices.shape[1])]

    # -- hotflip (white-box) ----------------------------------------------------------------

    def hotflip(self, generator: torch.Generator) -> Tensor:
        embedding = find_embedding(self.model, self.batch, self.name)
        if embedding is None:
            raise MMBenchError(f"hotflip needs the embedding layer that modality '{self.name}' reaches and found "
                               "none; use greedy_substitution or random_substitution, which only query the model")
        ids, current = self.clean.clone(), self.clean_loss
        changed = torch.zeros_like(self.free)
        for _ in range(int(self.left.max()) if len(self.left) else 0):
            rows = (changed.sum(dim=1) < self.left)
            if not bool(rows.any()):
                break
            estimate = flip_estimates(self, embedding, ids)[:, :, :self.vocab]  # [rows, T, V]: ids of the modality
            estimate[~(self.free & ~changed)] = -math.inf
            estimate[:, :, ~self.allowed] = -math.inf
            if self.options is not None:
                estimate[~self.options] = -math.inf
            estimate.scatter_(2, ids[:, :, None].long(), -math.inf)  # a flip changes the id
            top = estimate.flatten(1).topk(min(self.attack.beam, estimate[0].numel()), dim=1)
            best_ids, best, at_ids = ids, current, self.right.clone()
            for j in range(top.indices.shape[1]):
                t, v = top.indices[:, j] // self.vocab, top.indices[:, j] % self.vocab
                trial = ids.clone()
                trial[torch.arange(len(ids)), t] = v.to(ids.dtype)
                allowed = rows & torch.isfinite(top.values[:, j])  # -inf: no allowed flip left
                best_ids, best = self.keep_if_worse(best_ids, trial, best, allowed, at_ids)
            changed |= best_ids != ids
            if torch.equal(best_ids, ids):
                break  # no estimated flip raises any row's loss
            ids, current = best_ids, best
        return ids


def flip_estimates(search: Search, embedding: nn.Embedding, ids: Tensor) -> Tensor:
    """``[rows, T, V]``: the first-order loss change of setting position t to id v,
    ``(E[v] - E[x_t]) . g_t``, with ``g`` the gradient of the summed row losses at the
    embedding's output for ``ids``."""
    captured: dict[str, Tensor] = {}

    def keep(module: nn.Module, args: tuple, out: Tensor) -> None:
        if args and isinstance(args[0], Tensor) and args[0].shape == ids.shape and torch.equal(args[0], ids):
            captured["out"] = out

    handle = embedding.register_forward_hook(keep)
    try:
        with torch.enable_grad():
            loss = search.loss(ids).sum()
            if "out" not in captured or not captured["out"].requires_grad:
                raise MMBenchError(f"hotflip: the embedding of '{search.name}' has no gradient (frozen or "
                                   "detached); use greedy_substitution")
            grad = torch.autograd.grad(loss, captured["out"])[0].detach().float()  # [rows, T, d]
    finally:
        handle.remove()
    weight = embedding.weight.detach().float()  # [V, d]
    current = (grad * weight[ids.long()]).sum(dim=2, keepdim=True)  # [rows, T, 1]
    rows_per_chunk = max(1, CHUNK // max(1, ids.shape[1] * weight.shape[0]))
    parts = [grad[i:i + rows_per_chunk] @ weight.T for i in range(0, len(ids), rows_per_chunk)]
    return torch.cat(parts) - current


def find_embedding(model: nn.Module, batch: Batch, name: str) -> nn.Embedding | None:
    """The ``nn.Embedding`` the model declares for modality ``name`` (``mmbench_meta`` /
    attribute ``embeddings: {modality: module path}``), else the one whose input is exactly the
    modality's ids in a forward pass; None when there is none."""
    declared = _declared(model, name)
    if declared is not None:
        return declared
    found: list[nn.Embedding] = []
    ids = batch[name]

    def spot(module: nn.Module, args: tuple) -> None:
        if args and isinstance(args[0], Tensor) and args[0].shape == ids.shape and torch.equal(args[0], ids):
            found.append(module)  # type: ignore[arg-type]

    forward_watched(model, batch, {m: spot for m in model.modules() if isinstance(m, nn.Embedding)})
    return found[0] if len(set(map(id, found))) == 1 else None


def forward_watched(model: nn.Module, batch: Batch, pre_hooks: dict[nn.Module, Any]) -> None:
    """One forward pass of ``model`` on ``batch`` without gradients, with each module's forward
    pre-hook in place (removed afterwards, whatever happens)."""
    handles = [module.register_forward_pre_hook(hook) for module, hook in pre_hooks.items()]
    try:
        with torch.no_grad():
            model(batch)
    finally:
        for handle in handles:
            handle.remove()


def _declared(model: nn.Module, name: str) -> nn.Embedding | None:
    for holder in (model, getattr(model, "module", None)):
        meta = getattr(holder, "mmbench_meta", None)
        path = (meta or {}).get("embeddings", {}).get(name) if isinstance(meta, dict) else None
        if holder is not None and isinstance(path, str):
            module = holder.get_submodule(path)
            if isinstance(module, nn.Embedding):
                return module
    return None


def token_attacks(family: str, names: Sequence[str], budgets: Sequence[float], specs: Sequence[ModalitySpec],
                  options: dict[str, dict[str, Any]], task: str, regression_loss: str,
                  max_rows: int | None,
                  neighbours: dict[str, tuple[tuple[int, ...], ...]] | None = None) -> list[Perturbation]:
    """The cases (of ``family``) of token attacks ``names`` at ``budgets`` on each token
    modality ``specs`` (``neighbours``: a checked table per modality, see :func:`neighbour_table`)."""
    neighbours = neighbours or {}
    out: list[Perturbation] = []
    for spec in specs:
        for eps in budgets:
            if eps <= 0 or (eps >= 1 and eps != int(eps)):
                raise MMBenchError(f"adversarial: a token budget is a whole number of positions >= 1 or a "
                                   f"fraction in (0, 1), got {eps}")
            for name in names:
                opts = dict(options.get(name, {}))
                protected = tuple(int(i) for i in opts.pop("protected", (0,)))
                table = neighbours.get(spec.name, ())
                out.append(TokenAttack(family=family, name=f"{name}-tokens", target=spec.name,
                                       severity=float(eps), max_rows=max_rows, attack=name, spec=spec,
                                       protected=protected, task=task, task_loss=regression_loss,
                                       neighbours=table, **opts))
    return out


def neighbour_table(raw: Any, spec: ModalitySpec) -> tuple[tuple[int, ...], ...]:
    """A ``neighbours`` table for token modality ``spec``: a [V, k] list of lists or the path of
    an ``.npy`` file holding one, integer ids (< 0: an unused slot)."""
    where = f"adversarial: neighbours of '{spec.name}'"
    try:
        table = np.load(raw, allow_pickle=False) if isinstance(raw, str) else np.asarray(raw)
    except (OSError, ValueError) as exc:
        raise MMBenchError(f"{where}: cannot read {str(raw)[:80]!r} ({str(exc)[:80]}); give a [V, k] .npy file "
                           "or a list of lists of ids") from None
    if table.ndim != 2 or table.shape[0] != spec.vocab_size or table.shape[1] < 1:
        raise MMBenchError(f"{where}: the table must be [vocab_size={spec.vocab_size}, k] (one row of allowed "
                           f"replacement ids per id), got shape {list(table.shape)}")
    if table.dtype.kind not in "iu":
        raise MMBenchError(f"{where}: the table must hold integer ids, got {table.dtype}")
    return tuple(tuple(int(v) for v in row) for row in table)


@dataclass(frozen=True)
class TokenSequence(Perturbation):
    """One token attack on several token modalities at once (target ``a+b``): each gets the
    budget, attacked in turn against the others' attacked ids."""

    tokens: tuple[TokenAttack, ...] = ()

    @property
    def embedding_of(self) -> tuple[str, ...]:
        return tuple(n for t in self.tokens for n in t.embedding_of)

    def facts(self) -> dict[str, Any]:
        return self.tokens[0].facts()

    def apply(self, model: nn.Module, batch: Batch, labels: Tensor, seed: int) -> dict[str, Tensor]:
        out = dict(batch)
        for attack in self.tokens:
            out = attack.apply(model, out, labels, seed)
        return out


def token_sequences(cases: Sequence[Perturbation], label: str) -> list[Perturbation]:
    """The per-modality token attacks ``cases`` grouped by (attack, budget) into one
    :class:`TokenSequence` each, labelled ``label``."""
    groups: dict[tuple[str, float], list[TokenAttack]] = {}
    for case in cases:
        if isinstance(case, TokenAttack):
            groups.setdefault((case.attack, case.severity), []).append(case)
    return [TokenSequence(family=group[0].family, name=group[0].name, target=label, severity=budget,
                          max_rows=group[0].max_rows, tokens=tuple(group))
            for (_, budget), group in groups.items()]


def batch_seed(*parts: Tensor | str) -> int:
    """A seed from the content of tensors (and names): the same rows give the same draws."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part.detach().cpu().contiguous().numpy().tobytes())
    return int(h.hexdigest()[:8], 16)
