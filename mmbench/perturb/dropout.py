"""``missing`` and ``random_dropout``: modalities removed and filled in (the dropout family).

- ``missing``: a fixed set of modalities is kept and the others are missing, for every subset
  of modalities (``subsets: all``: all 2^M kept sets, the empty one being the Shapley baseline)
  or listed ones; ``target`` is the missing set (``a+b``; ``none`` when nothing is missing,
  ``all`` when everything is), ``severity`` the number missing.
- ``random_dropout``: each modality of each row is missing with probability ``rate``
  independently, at least one kept per row, seeded; ``severity`` is the rate.

Missing modalities are imputed: ``zeros`` (0 in the normalised unit, i.e. the lower bound; token
id 0, or the padding id where the modality declares one: missing text is all padding), ``mean``
(training-split mean per feature; tokens as ``zeros``), ``noise`` (Gaussian with the training
mean and std per feature, clamped to bounds; uniform token ids, other than the padding id), or ``native`` (zeros plus a presence mask
under :data:`PRESENT`, for models registered with ``handles_missing=True``). Noise depends only on
the rows and the modality, so every subset sees the same fill.

For models on the encode / fuse contract, ``missing`` encodes each modality once per batch (clean
and imputed) and reruns only fusion and head per subset; results equal a full forward pass.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from mmbench.bounds import MAX_CASES, check_distinct, check_size
from mmbench.data.base import Batch, ModalitySpec, Split
from mmbench.errors import MMBenchError, did_you_mean
from mmbench.models.base import PRESENT, FusionModel
from mmbench.perturb.base import ALL, Perturbation
from mmbench.registry import PERTURBATIONS

ZEROS, NATIVE = "zeros", "native"
IMPUTATIONS = (ZEROS, "mean", "noise", NATIVE)
#: what "imputation" means on the boards of the families that remove modalities
IMPUTATION_TERM = "How a missing modality is filled in before the model sees it (zeros, the training mean, ...)."
NONE = "none"
#: the two families: a fixed kept subset per case, and random per-row dropout at a rate
MISSING, RANDOM_DROPOUT = "missing", "random_dropout"


@dataclass(frozen=True)
class Fill:
    """Training-split statistics per modality (``mean``, ``std``) used to impute."""

    mean: dict[str, Tensor]
    std: dict[str, Tensor]
    fingerprint: str

    @classmethod
    def from_split(cls, specs: Sequence[ModalitySpec], train: Split) -> Fill:
        mean, std, h = {}, {}, hashlib.sha256()
        for s in specs:
            x = train.inputs[s.name].double()
            mean[s.name], std[s.name] = x.mean(dim=0).float(), x.std(dim=0).float()
            h.update(mean[s.name].numpy().tobytes() + std[s.name].numpy().tobytes())
        return cls(mean, std, h.hexdigest()[:16])

    def impute(self, spec: ModalitySpec, x: Tensor, how: str, labels: Tensor) -> Tensor:
        """Values for modality ``spec`` in place of ``x`` (same shape, dtype and device)."""
        if how in ("zeros", NATIVE) or (how == "mean" and not spec.is_continuous):
            empty = 0 if spec.pad_id is None else spec.pad_id  # missing text: all padding
            return torch.full_like(x, spec.lo if spec.is_continuous else empty)
        if how == "mean":
            return self.mean[spec.name].to(x.device).expand_as(x).clone()
        g = torch.Generator().manual_seed(_noise_seed(labels, spec.name))
        if not spec.is_continuous:
            ids = torch.randint(0, spec.vocab_size, x.shape, generator=g)
            if spec.pad_id is not None:  # uniform over the other ids
                ids = (spec.pad_id + 1 + torch.randint(0, spec.vocab_size - 1, x.shape, generator=g)) % spec.vocab_size
            return ids.to(x.device, x.dtype)
        noise = torch.randn(x.shape, generator=g).to(x.device)
        fill = self.mean[spec.name].to(x.device) + noise * self.std[spec.name].to(x.device)
        return fill.clamp(spec.lo, spec.hi).to(x.dtype)


def _noise_seed(labels: Tensor, name: str) -> int:
    digest = hashlib.sha256(labels.detach().cpu().numpy().tobytes() + name.encode()).hexdigest()
    return int(digest[:8], 16)


def fill_missing(batch: Batch, specs: Sequence[ModalitySpec], present: Tensor, how: str,
                 fill: Fill, labels: Tensor) -> dict[str, Tensor]:
    """Impute every (row, modality) with ``present[row, m]`` False; add the mask for ``native``."""
    out = dict(batch)
    for m, spec in enumerate(specs):
        keep = present[:, m]
        if bool(keep.all()):
            continue
        mask = keep.view(-1, *([1] * (batch[spec.name].dim() - 1)))
        out[spec.name] = torch.where(mask, batch[spec.name], fill.impute(spec, batch[spec.name], how, labels))
    if how == NATIVE:
        out[PRESENT] = present
    return out


@dataclass(frozen=True)
class Imputing(Perturbation):
    """A perturbation that fills missing modalities with ``imputation`` from ``fill`` (whose
    statistics enter cell keys through ``fill_id``, not through their values)."""

    imputation: str = "zeros"
    specs: tuple[ModalitySpec, ...] = ()
    fill_id: str = ""
    fill: Fill | None = field(default=None, repr=False, compare=False)

    @property
    def needs_native_missing(self) -> bool:
        return self.imputation == NATIVE

    def facts(self) -> dict[str, Any]:
        return {"imputation": self.imputation}

    def fill_rows(self, batch: Batch, present: Tensor, labels: Tensor) -> dict[str, Tensor]:
        assert self.fill is not None
        return fill_missing(batch, self.specs, present, self.imputation, self.fill, labels)


@dataclass(frozen=True)
class Missing(Imputing):
    """Keep ``keep``, impute every other modality."""

    keep: tuple[str, ...] = ()

    def facts(self) -> dict[str, Any]:
        """``kept``: the present modalities joined by ``+`` (``none`` when nothing is kept)."""
        return {**super().facts(), "kept": "+".join(self.keep) or NONE}

    def present(self, n: int, device: torch.device) -> Tensor:
        row = torch.tensor([s.name in self.keep for s in self.specs], device=device)
        return row.expand(n, -1)

    def apply(self, model: nn.Module, batch: Batch, labels: Tensor, seed: int) -> dict[str, Tensor]:
        return self.fill_rows(batch, self.present(len(labels), labels.device), labels)

    def logits(self, model: nn.Module, batch: Batch, labels: Tensor, seed: int, cache: Any) -> Tensor:
        if not reuses_encoders(model):
            return super().logits(model, batch, labels, seed, cache)
        assert self.fill is not None
        features, encoders = {}, model.encoders
        with torch.no_grad():
            for spec in self.specs:
                if spec.name not in encoders:
                    continue
                kept = spec.name in self.keep
                tag = ("encoded", spec.name, "present" if kept else self.imputation, self.fill_id)
                features[spec.name] = cache.get(tag, lambda s=spec, k=kept: self._encode(model, s, k, batch, labels))
            if self.imputation == NATIVE:
                features[PRESENT] = self.present(len(labels), labels.device)
            return model.fuse_and_classify(features)


    def _encode(self, model: FusionModel, spec: ModalitySpec, kept: bool, batch: Batch,
                labels: Tensor) -> Tensor:
        """Encoder output of the clean or the imputed modality, on the whole batch. (Encoding one
        row of a constant fill and repeating it would be cheaper, but differs from the full pass
        in the last bit, and the two paths must agree exactly.)"""
        x = batch[spec.name]
        return model.encoders[spec.name](x if kept else self.fill.impute(spec, x, self.imputation, labels))


def reuses_encoders(model: nn.Module) -> bool:
    """True for models whose forward is exactly encode-then-fuse (the contract's default)."""
    return (isinstance(model, FusionModel) and model.has_encoders
            and type(model).forward is FusionModel.forward)


@dataclass(frozen=True)
class RandomDropout(Imputing):
    """Each (row, modality) missing with probability ``severity``; at least one kept per row.
    Not a compound stage: its missing set differs per row, so a later stage could not be kept
    off the missing modalities."""

    stageable = False

    def apply(self, model: nn.Module, batch: Batch, labels: Tensor, seed: int) -> dict[str, Tensor]:
        present = random_presence(len(labels), len(self.specs), self.severity, seed).to(labels.device)
        return self.fill_rows(batch, present, labels)


def random_presence(n: int, m: int, rate: float, seed: int) -> Tensor:
    """A seeded [n, m] presence mask: each entry absent with probability ``rate``; a row with
    nothing left keeps one modality chosen uniformly."""
    g = torch.Generator().manual_seed(seed)
    present = torch.rand(n, m, generator=g) >= rate
    rescue = torch.randint(0, m, (n,), generator=g)
    empty = ~present.any(dim=1)
    present[empty, rescue[empty]] = True
    return present


def _subsets(names: Sequence[str], subsets: str | list[str | list[str]]) -> list[tuple[str, ...]]:
    if subsets == "all":
        check_size(2 ** len(names), MAX_CASES, f"missing: subsets 'all' of {len(names)} modalities (2^M kept sets)",
                   "list the kept sets to evaluate instead")
        return [c for k in range(len(names) + 1) for c in itertools.combinations(names, k)]
    if not isinstance(subsets, list):
        raise MMBenchError("missing: 'subsets' must be 'all' or a list of kept sets like "
                           "['a+b', 'c', 'none'] or [[a, b], [c], []]")
    out = []
    for item in subsets:
        parts = _kept_names(item)
        for p in parts:
            if p not in names:
                raise MMBenchError(f"missing: unknown modality '{p}' in subset '{item}'"
                                   f"{did_you_mean(p, names)}; the dataset has {', '.join(names)}")
        out.append(tuple(n for n in names if n in parts))
    check_distinct(["+".join(keep) or NONE for keep in out], "missing: subsets")
    return out


def _kept_names(item: object) -> tuple[str, ...]:
    """One kept set: ``a+b`` (``none``: nothing kept) or a list of names (``[]``: nothing)."""
    if isinstance(item, str):
        return () if item == NONE else tuple(item.split("+"))
    if isinstance(item, list) and all(isinstance(p, str) for p in item):
        return tuple(item)
    raise MMBenchError(f"missing: a kept set must be a name like 'a+b' ('none': nothing kept) or a list of "
                       f"names like [a, b], got {str(item)[:40]!r}")


def _imputations(imputation: list[str]) -> list[str]:
    check_distinct(list(imputation), "dropout: imputation")
    for how in imputation:
        if how not in IMPUTATIONS:
            raise MMBenchError(f"dropout: unknown imputation '{how}'{did_you_mean(how, IMPUTATIONS)}; "
                               f"use {', '.join(IMPUTATIONS)}")
    return list(imputation)


@PERTURBATIONS.register("missing", family=MISSING, kinds=("image", "sequence", "vector", "tokens"),
                        example={"subsets": "all", "imputation": ["zeros", "mean", "noise"]})
def missing(modalities: Sequence[ModalitySpec], n_classes: int, train: Split,
            subsets: str | list[str | list[str]] = "all", imputation: list[str] | None = None) -> list[Perturbation]:
    """Keep each subset of modalities (default: all 2^M), impute the rest.

    A kept set is ``a+b`` (``none``: nothing kept) or a list of names ``[a, b]``."""
    names = [m.name for m in modalities]
    fill = Fill.from_split(modalities, train)
    cases: list[Perturbation] = []
    hows, kept = _imputations(imputation or ["zeros"]), _subsets(names, subsets)
    check_size(len(hows) * len(kept), MAX_CASES, "missing: subsets x imputations", "list fewer of either")
    for how in hows:
        for keep in kept:
            gone = [n for n in names if n not in keep]
            target = NONE if not gone else ALL if not keep else "+".join(gone)
            cases.append(Missing(family=MISSING, name=f"missing-{how}", target=target,
                                 severity=float(len(gone)), keep=keep, imputation=how,
                                 specs=tuple(modalities), fill_id=fill.fingerprint, fill=fill))
    return cases


@PERTURBATIONS.register("random_dropout", family=RANDOM_DROPOUT,
                        kinds=("image", "sequence", "vector", "tokens"),
                        example={"rates": [0.0, 0.5, 0.9], "imputation": ["zeros", "noise"]})
def random_dropout(modalities: Sequence[ModalitySpec], n_classes: int, train: Split,
                   rates: list[float] | None = None,
                   imputation: list[str] | None = None) -> list[Perturbation]:
    """Per-row random modality dropout at each rate (default 0, 0.1, ..., 0.9)."""
    rates = [round(0.1 * i, 1) for i in range(10)] if rates is None else rates
    for r in rates:
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not 0 <= r < 1:
            raise MMBenchError(f"random_dropout: rates must lie in [0, 1), got {str(r)[:40]!r}")
    check_distinct([float(r) for r in rates], "random_dropout: rates")
    check_size(len(rates) * len(imputation or ["zeros"]), MAX_CASES, "random_dropout: rates x imputations",
               "list fewer of either")
    fill = Fill.from_split(modalities, train)
    return [RandomDropout(family=RANDOM_DROPOUT, name=f"random-{how}", severity=float(r), imputation=how,
                          specs=tuple(modalities), fill_id=fill.fingerprint, fill=fill)
            for how in _imputations(imputation or ["zeros"]) for r in rates]

