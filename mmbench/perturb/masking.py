"""``masking``: certified robustness of a token modality to changed tokens by randomized ablation
(Levine and Feizi, AAAI 2020, "Robustness Certificates for Sparse Adversarial Attacks by
Randomized Ablation"; RanMASK, Zeng et al. 2021).

The masked classifier g(x) = argmax_c P(f(ablate(x)) = c) keeps ``keep`` of a row's d
non-padding positions of the target, drawn uniformly without replacement, and writes ``mask_id``
at the others (padding positions stay as they are). With p_A_lower the one-sided (1 - ``alpha``)
Clopper-Pearson lower bound of P(f(ablate(x)) = c_A) (``n0`` draws pick c_A, ``n`` more bound it,
as CERTIFY does: :mod:`mmbench.perturb.certify`) and Delta(k) = 1 - C(d - k, keep) / C(d, keep),
the probability that a kept set meets k given positions, g(x') = c_A for every x' that differs
from x in at most k non-padding positions (and writes no padding id) when
p_A_lower - Delta(k) > 1/2 (Levine and Feizi, Theorem 1). A row's certified radius is the
largest such k (the row length when d = 0: no position can change), NaN when p_A_lower <= 1/2.
A cell stores, per row, g's prediction c_A, the share of draws on each class and the radius;
the ``masking`` family derives the certified accuracy at each k of ``changes``.
Rows: ``family: masking``, ``perturbation: masked``, ``target``, ``severity`` = keep.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from mmbench.bounds import MAX_CASES, MAX_DRAWS, check_distinct, check_size
from mmbench.data.base import Batch, ModalityKind, ModalitySpec
from mmbench.data.tasks import CLASSIFICATION
from mmbench.errors import MMBenchError, did_you_mean
from mmbench.perturb.base import Certified, Perturbation
from mmbench.perturb.certify import (ABSTAIN, Certificate, base_classifier, check_alpha, draw_generator,
                                     lower_confidence_bound, positive_int, vote_counts)
from mmbench.registry import PERTURBATIONS

MASKING = "masking"
MASKED = "masked"
#: the default grid of changed-token counts k
CHANGES = (0, 1, 2, 4)
#: ``targets`` entry meaning every tokens modality, each on its own
EACH = "each"
#: draws per row for the size bound (``n``, ``n0``)
UNIT = "ablated copies per row"


@dataclass(frozen=True)
class Masking(Perturbation):
    """Randomized ablation of ``spec`` keeping ``severity`` positions per row (a count >= 1, or a
    fraction in (0, 1) of the row's non-padding positions, rounded up)."""

    spec: ModalitySpec | None = None
    #: the padding id of ``spec`` (its positions are neither ablated nor attackable), if any
    pad_id: int | None = None
    mask_id: int = 0
    n_classes: int = 2
    n0: int = 100
    n: int = 1000
    alpha: float = 0.001
    changes: tuple[int, ...] = CHANGES
    #: rows per forward pass of ablated copies
    chunk: int = 4096

    stageable: ClassVar[bool] = False  # its result is a decision with a radius, not a batch

    def facts(self) -> dict[str, Any]:
        return {"keep": self.severity, "select_draws": self.n0, "estimate_draws": self.n, "alpha": self.alpha,
                "mask_id": self.mask_id, "changes": ",".join(str(k) for k in self.changes)}

    def positions(self, ids: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Per row of ``ids``: which positions may be ablated and changed (not padding), how many
        (d) and how many of them each draw keeps."""
        free = torch.ones_like(ids, dtype=torch.bool) if self.pad_id is None else ids != self.pad_id
        d = free.sum(dim=1)
        return free, d, kept_positions(d, self.severity)

    def apply(self, model: nn.Module, batch: Batch, labels: Tensor, seed: int) -> dict[str, Tensor]:
        """One ablation draw (what the base classifier sees)."""
        assert self.spec is not None
        ids = batch[self.spec.name]
        free, _, keep = self.positions(ids)
        out = dict(batch)
        out[self.spec.name] = ablate(ids, free, keep, self.mask_id, draw_generator(seed, "apply", 0, ids.device))
        return out

    def logits(self, model: nn.Module, batch: Batch, labels: Tensor, seed: int, cache: Any) -> Certified:
        assert self.spec is not None
        name, ids = self.spec.name, batch[self.spec.name]
        free, d, keep = self.positions(ids)
        base, inputs = base_classifier(model, batch, {name}, f"randomized masking of {self.target}")

        def draw(b: Batch, generator: torch.Generator) -> dict[str, Tensor]:
            return {**b, name: ablate(b[name], free, keep, self.mask_id, generator)}

        counts = [vote_counts(base, inputs, draw, draws, self.n_classes, seed, phase, self.chunk)
                  for phase, draws in (("select", self.n0), ("estimate", self.n))]
        cert = certify_ablation(counts[0], counts[1], self.alpha, d.cpu().numpy(), keep.cpu().numpy(), ids.shape[1])
        device = labels.device
        top = torch.as_tensor(counts[0].argmax(axis=1), device=device)
        radius = torch.as_tensor(np.where(cert.prediction >= 0, cert.radius, np.nan), dtype=torch.float32,
                                 device=device)
        share = torch.as_tensor(counts[1], dtype=torch.float32, device=device) / max(self.n, 1)
        return Certified(share.clamp_min(1e-6).log(), top, radius)


def kept_positions(d: Tensor, keep: float) -> Tensor:
    """Positions kept per row of ``d`` ablatable ones: ``keep`` (at most d) when it is a count,
    else the fraction ``keep`` of d rounded up (a hair below, so that 0.3 of 10 is 3, not 4)."""
    if keep >= 1:
        return d.clamp(max=int(keep))
    return torch.ceil(keep * d.double() - 1e-9).long().clamp(min=0)


def ablate(ids: Tensor, free: Tensor, keep: Tensor, mask_id: int, generator: torch.Generator) -> Tensor:
    """``ids`` with ``keep[i]`` of row i's ``free`` positions kept, drawn uniformly without
    replacement (the smallest of uniform scores), ``mask_id`` at its other free positions and
    the positions that are not free unchanged."""
    scores = torch.rand(ids.shape, generator=generator, device=ids.device, dtype=torch.float64)
    rank = scores.masked_fill(~free, 2.0).argsort(dim=1).argsort(dim=1)
    kept = (rank < keep[:, None]) | ~free
    return torch.where(kept, ids, torch.full_like(ids, mask_id))


@lru_cache(maxsize=4096)
def deltas(d: int, keep: int) -> tuple[float, ...]:
    """Delta(k) = 1 - C(d - k, keep) / C(d, keep) for k = 0..d: the probability that ``keep`` of
    ``d`` positions drawn uniformly without replacement include one of k given positions
    (exact integers, one rounding)."""
    return tuple(1.0 - math.comb(d - k, keep) / math.comb(d, keep) for k in range(d + 1))


def certified_changes(p_lower: np.ndarray, d: np.ndarray, keep: np.ndarray, length: int) -> np.ndarray:
    """Per row: the largest k <= ``length`` with p_lower - Delta(min(k, d)) > 1/2 (Levine and
    Feizi's Theorem 1 for ablations keeping ``keep`` of d positions), NaN where p_lower <= 1/2.
    Delta(d) = 1 for d >= 1, so k < d; a row with d = 0 is certified at ``length``."""
    p = np.asarray(p_lower, dtype=np.float64)
    d, keep = np.asarray(d, dtype=np.int64), np.asarray(keep, dtype=np.int64)
    out = np.full(len(p), np.nan)
    for size, kept in sorted(set(zip(d.tolist(), keep.tolist(), strict=True))):
        rows = (d == size) & (keep == kept)
        ok = p[rows, None] - np.asarray(deltas(size, kept))[None, :] > 0.5  # a prefix: Delta rises with k
        largest = (ok.sum(axis=1) - 1).astype(np.float64)
        if size == 0:
            largest = np.where(ok[:, 0], float(length), -1.0)
        out[rows] = np.where(largest >= 0, largest, np.nan)
    return out


def certify_ablation(selection: np.ndarray, estimation: np.ndarray, alpha: float, d: np.ndarray,
                     keep: np.ndarray, length: int) -> Certificate:
    """The certificate of each row from class counts: ``selection`` [rows, classes] of the n0
    draws picks c_A, ``estimation`` of the n draws bounds p_A; the radius is the certified
    number of changed tokens (0 where it abstains: prediction ``ABSTAIN``)."""
    rows = np.arange(len(selection))
    top = selection.argmax(axis=1)
    n = int(estimation[0].sum()) if len(estimation) else 0
    p_lower = lower_confidence_bound(estimation[rows, top], n, alpha)
    radius = certified_changes(p_lower, d, keep, length)
    ok = ~np.isnan(radius)
    return Certificate(np.where(ok, top, ABSTAIN), np.where(ok, radius, 0.0), p_lower)


def token_targets(targets: Sequence[str] | None, modalities: Sequence[ModalitySpec]) -> list[ModalitySpec]:
    """The tokens modalities ``targets`` names (``each`` or none: every one, each on its own)."""
    tokens = {m.name: m for m in modalities if m.kind is ModalityKind.TOKENS}
    names = [m.name for m in modalities]
    if not tokens:
        raise MMBenchError("masking: the dataset has no tokens modality to mask; randomized masking certifies "
                           "token ids (list the datasets with text under the perturbation's 'datasets')")
    check_distinct(list(targets or []), "masking: targets")
    out: list[ModalitySpec] = []
    for target in targets or [EACH]:
        if target == EACH:
            out += list(tokens.values())
        elif target not in names:
            raise MMBenchError(f"masking: unknown target modality '{str(target)[:40]}'"
                               f"{did_you_mean(str(target), names + [EACH])}; the dataset's tokens modalities "
                               f"are {', '.join(tokens)} (or use 'each')")
        elif target not in tokens:
            raise MMBenchError(f"masking: modality '{target}' is not a tokens modality, and randomized masking "
                               f"ablates token positions; target {', '.join(tokens)} (smoothing certifies "
                               "continuous modalities)")
        else:
            out.append(tokens[target])
    return list(dict.fromkeys(out))


def _keeps(keep: Any) -> list[float]:
    """The ``keep`` grid: counts >= 1 (whole numbers) or fractions in (0, 1), sorted."""
    if not isinstance(keep, list) or not keep:
        raise MMBenchError("masking: 'keep' must be a non-empty list of positions kept per row "
                           "(e.g. keep: [2, 0.5]: two positions, or half of them rounded up)")
    out = []
    for v in keep:
        fine = not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v) and v > 0
        if not fine or (v >= 1 and v != int(v)):
            raise MMBenchError(f"masking: keep must be a whole number of positions >= 1 or a fraction in "
                               f"(0, 1), got {str(v)[:40]!r}")
        out.append(float(v) if v < 1 else float(int(v)))
    check_distinct(out, "masking: keep")
    return sorted(out)


def _changes(changes: Any) -> tuple[int, ...]:
    """The grid of changed-token counts k: distinct whole numbers >= 0, sorted."""
    if not isinstance(changes, list) or not changes:
        raise MMBenchError("masking: 'changes' must be a non-empty list of changed-token counts (e.g. "
                           "changes: [0, 1, 2, 4])")
    for v in changes:
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise MMBenchError(f"masking: changes must be whole numbers >= 0, got {str(v)[:40]!r}")
    check_distinct(list(changes), "masking: changes")
    check_size(len(changes), MAX_CASES, "masking: changes", "list fewer counts")
    return tuple(sorted(changes))


def _mask_id(mask_id: Any, spec: ModalitySpec) -> int:
    """The id written at ablated positions of ``spec``: ``mask_id``, else its padding id, else 0."""
    chosen = mask_id if mask_id is not None else spec.pad_id if spec.pad_id is not None else 0
    if isinstance(chosen, bool) or not isinstance(chosen, int) or not 0 <= chosen <= int(spec.hi):
        raise MMBenchError(f"masking: mask_id must be a token id of '{spec.name}' (0 to {int(spec.hi)}), got "
                           f"{str(chosen)[:40]!r}")
    return chosen


@PERTURBATIONS.register(
    MASKING, family=MASKING, kinds=("tokens",),
    example={"keep": [2], "n0": 8, "n": 32, "alpha": 0.01, "changes": [0, 1]},
)
def masking(modalities: Sequence[ModalitySpec], n_classes: int, keep: list[float] | None = None,
            changes: list[int] | None = None, targets: list[str] | None = None, n0: int = 100, n: int = 1000,
            alpha: float = 0.001, mask_id: int | None = None, max_rows: int | None = None, chunk: int = 4096,
            task: str = CLASSIFICATION) -> list[Perturbation]:
    """The certificate per (target, keep); targets default to every tokens modality, each on its
    own. Classification only: the certificate is a statement about the masked classifier's top
    class."""
    if task != CLASSIFICATION:
        raise MMBenchError(f"masking: randomized masking certifies a classifier's top class (Levine and Feizi "
                           f"2020), and this dataset is a {task} task; drop masking for it (list the "
                           "classification datasets under the perturbation's 'datasets')")
    keeps = _keeps(keep)
    grid = _changes(list(CHANGES) if changes is None else changes)
    n0 = positive_int(n0, "n0", MASKING, high=MAX_DRAWS, unit=UNIT)
    n = positive_int(n, "n", MASKING, high=MAX_DRAWS, unit=UNIT)
    chunk = positive_int(chunk, "chunk", MASKING, high=MAX_DRAWS, unit=UNIT)
    alpha = check_alpha(alpha, MASKING)
    if max_rows is not None:
        positive_int(max_rows, "max_rows", MASKING)
    specs = token_targets(targets, modalities)
    check_size(len(specs) * len(keeps), MAX_CASES, "masking: keep x targets", "list fewer of either")
    return [Masking(family=MASKING, name=MASKED, target=spec.name, severity=k, max_rows=max_rows, spec=spec,
                    pad_id=spec.pad_id, mask_id=_mask_id(mask_id, spec), n_classes=n_classes, n0=n0, n=n,
                    alpha=alpha, changes=grid, chunk=chunk)
            for spec in specs for k in keeps]
