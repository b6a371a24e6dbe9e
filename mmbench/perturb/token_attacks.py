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
- ``random_substitution``: ``budget`` random positions, each given a random allowed id, kept
  where this one query raises the row's loss (the baseline the searches must beat).

The budget ``eps`` is a number of positions (an integer >= 1) or, below 1, a fraction of each
row's changeable positions (rounded up). Positions holding a protected id (``protected``,
default ``[0]``: the padding / unknown id that ``token_dropout`` writes) are never changed, and
no protected id is ever written. A flip is kept only when it raises the row's loss, so an
attack never makes a row better.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from mmbench.data.base import Batch, ModalitySpec
from mmbench.data.tasks import CLASSIFICATION, row_loss
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
    beam: int = 5
    candidates: int = 20
    task: str = CLASSIFICATION
    task_loss: str = "l1"

    def facts(self) -> dict[str, Any]:
        return {"attack": self.attack, "norm": "tokens", "ensemble": ""}

    def apply(self, model: nn.Module, batch: Batch, labels: Tensor, seed: int) -> dict[str, Tensor]:
        assert self.spec is not None
        ids = batch[self.spec.name]
        reads = getattr(model, "input_modalities", None)
        if reads is not None and self.spec.name not in reads:
            return dict(batch)
        search = Search(model, dict(batch), self.spec.name, labels, self)
        generator = torch.Generator().manual_seed(seed)
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
        protected = torch.tensor(sorted(attack.protected), dtype=self.clean.dtype, device=self.clean.device)
        self.free = ~torch.isin(self.clean, protected)  # positions that may change
        self.allowed = torch.ones(self.vocab, dtype=torch.bool, device=self.clean.device)
        self.allowed[protected[protected < self.vocab]] = False
        self.left = attack.budget(self.free.sum(dim=1))

    def loss(self, ids: Tensor) -> Tensor:
        """``[rows]``: each row's task loss with ``ids`` as the token modality."""
        logits = self.model({**self.batch, self.name: ids}).float()
        return row_loss(self.attack.task, logits, self.labels, self.attack.task_loss)

    def keep_if_worse(self, ids: Tensor, trial: Tensor, current: Tensor, rows: Tensor) -> tuple[Tensor, Tensor]:
        """Adopt ``trial`` for ``rows`` where it raises the loss above ``current``."""
        new = self.loss(trial)
        better = (new > current) & rows
        ids = torch.where(better[:, None], trial, ids)
        return ids, torch.where(better, new, current)

    # -- random -----------------------------------------------------------------------------

    def random(self, generator: torch.Generator) -> Tensor:
        ids = self.clean.clone()
        ok = self.allowed.nonzero().view(-1).cpu()
        for row in range(len(ids)):
            free = self.free[row].nonzero().view(-1).cpu()
            count = int(min(self.left[row], len(free)))
            where = free[torch.randperm(len(free), generator=generator)[:count]]
            ids[row, where.to(ids.device)] = ok[torch.randint(len(ok), (count,), generator=generator)].to(ids)
        everywhere = torch.ones(len(ids), dtype=torch.bool, device=ids.device)
        return self.keep_if_worse(self.clean, ids, self.loss(self.clean), everywhere)[0]

    # -- greedy (black-box) -------------------------------------------------------------------

    def greedy(self, generator: torch.Generator) -> Tensor:
        ids, current = self.clean.clone(), self.loss(self.clean)
        mask_id = self.attack.protected[0] if self.attack.protected else 0
        gain = torch.full(ids.shape, -math.inf, device=ids.device)
        for t in range(ids.shape[1]):
            masked = ids.clone()
            masked[:, t] = mask_id
            gain[:, t] = torch.where(self.free[:, t], self.loss(masked) - current, gain[:, t])
        order = gain.argsort(dim=1, descending=True)
        ok = self.allowed.nonzero().view(-1)
        spent = torch.zeros_like(self.left)
        for rank in range(ids.shape[1]):
            t = order[:, rank]
            rows = self.free.gather(1, t[:, None]).view(-1) & (spent < self.left)
            if not bool(rows.any()):
                break
            picks = ok[torch.randint(len(ok), (self.attack.candidates,), generator=generator).to(ok.device)]
            before = ids.clone()
            for v in picks:
                trial = ids.clone()
                trial[torch.arange(len(ids)), t] = v.to(ids.dtype)
                ids, current = self.keep_if_worse(ids, trial, current, rows)
            spent += (ids != before).any(dim=1).long()
        return ids

    # -- hotflip (white-box) ----------------------------------------------------------------

    def hotflip(self, generator: torch.Generator) -> Tensor:
        embedding = find_embedding(self.model, self.batch, self.name)
        if embedding is None:
            raise MMBenchError(f"hotflip needs the embedding layer that modality '{self.name}' reaches and found "
                               "none; use greedy_substitution or random_substitution, which only query the model")
        ids, current = self.clean.clone(), self.loss(self.clean)
        changed = torch.zeros_like(self.free)
        for _ in range(int(self.left.max()) if len(self.left) else 0):
            rows = (changed.sum(dim=1) < self.left)
            if not bool(rows.any()):
                break
            estimate = flip_estimates(self, embedding, ids)  # [rows, T, V]
            estimate[~(self.free & ~changed)] = -math.inf
            estimate[:, :, ~self.allowed] = -math.inf
            estimate.scatter_(2, ids[:, :, None].long(), -math.inf)  # a flip changes the id
            top = estimate.flatten(1).topk(min(self.attack.beam, estimate[0].numel()), dim=1)
            best_ids, best = ids, current
            for j in range(top.indices.shape[1]):
                t, v = top.indices[:, j] // self.vocab, top.indices[:, j] % self.vocab
                trial = ids.clone()
                trial[torch.arange(len(ids)), t] = v.to(ids.dtype)
                allowed = rows & torch.isfinite(top.values[:, j])  # -inf: no allowed flip left
                best_ids, best = self.keep_if_worse(best_ids, trial, best, allowed)
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

    handles = [m.register_forward_pre_hook(spot) for m in model.modules() if isinstance(m, nn.Embedding)]
    try:
        with torch.no_grad():
            model(batch)
    finally:
        for handle in handles:
            handle.remove()
    return found[0] if len(set(map(id, found))) == 1 else None


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
                  max_rows: int | None) -> list[Perturbation]:
    """The cases (of ``family``) of token attacks ``names`` at ``budgets`` on each token
    modality ``specs``."""
    out: list[Perturbation] = []
    for spec in specs:
        for eps in budgets:
            if eps <= 0 or (eps >= 1 and eps != int(eps)):
                raise MMBenchError(f"adversarial: a token budget is a whole number of positions >= 1 or a "
                                   f"fraction in (0, 1), got {eps}")
            for name in names:
                opts = dict(options.get(name, {}))
                protected = tuple(int(i) for i in opts.pop("protected", (0,)))
                out.append(TokenAttack(family=family, name=f"{name}-tokens", target=spec.name,
                                       severity=float(eps), max_rows=max_rows, attack=name, spec=spec,
                                       protected=protected, task=task, task_loss=regression_loss, **opts))
    return out
