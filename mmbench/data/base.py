"""The data contract every dataset, model and perturbation agrees on.

A :class:`ModalitySpec` describes one modality: its name, kind, per-sample shape and value bounds.
The bounds map the modality to the normalised unit ``[0, 1]`` in which attack budgets and
corruption severities are stated. A :class:`Split` holds whole tensors (a mapping modality name ->
tensor, plus labels); a *batch* is the same mapping for a slice of rows.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor

from mmbench.data.tasks import CLASSIFICATION, MULTILABEL, check_task

#: A batch: modality name -> tensor with the batch dimension first.
Batch = Mapping[str, Tensor]

#: The largest magnitude a continuous modality may reach (its values and bounds). Models and
#: perturbations compute in float32 (max 3.4e38); a product of two input-scale values squared
#: (fusion products under Adam's squared gradients, variances of products) is then at most 1e36,
#: still finite. Measured: unscaled inputs around 5e14 already stop tensor fusion from training.
SAFE_MAGNITUDE = 1e9


class ModalityKind(str, enum.Enum):
    """What a modality is; it chooses the encoder and which corruptions apply."""

    IMAGE = "image"        # [C, H, W] floats
    SEQUENCE = "sequence"  # [C, T] floats (audio, time series, spectrogram rows)
    VECTOR = "vector"      # [D] floats (tabular features)
    TOKENS = "tokens"      # [T] integer ids in [0, vocab_size)


@dataclass(frozen=True)
class ModalitySpec:
    """One modality: ``name``, ``kind``, per-sample ``shape`` and value bounds ``[lo, hi]``.

    For ``tokens`` the bounds are ``[0, vocab_size - 1]``, and ``pad_id`` (optional) is the id
    that fills the positions after a row's text: a model may be given an attention mask from it
    (:mod:`mmbench.models.calling`), token attacks never change or write it, and certificates
    count only the other positions. ``pad_id`` is left out of the repr (and so of the content
    hashes of specs without one); datasets hash it themselves.
    """

    name: str
    kind: ModalityKind
    shape: tuple[int, ...]
    lo: float = 0.0
    hi: float = 1.0
    pad_id: int | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.hi > self.lo:
            raise ValueError(f"modality {self.name!r}: hi ({self.hi}) must exceed lo ({self.lo})")
        expected_rank = {ModalityKind.IMAGE: 3, ModalityKind.SEQUENCE: 2,
                         ModalityKind.VECTOR: 1, ModalityKind.TOKENS: 1}[self.kind]
        if len(self.shape) != expected_rank:
            raise ValueError(
                f"modality {self.name!r} of kind {self.kind.value} needs a shape of rank "
                f"{expected_rank}, got {self.shape}"
            )
        if self.pad_id is not None and (self.kind is not ModalityKind.TOKENS
                                        or not 0 <= self.pad_id <= self.hi):
            raise ValueError(f"modality {self.name!r}: pad_id {self.pad_id} must be a token id in "
                             f"[0, {int(self.hi)}] of a tokens modality")

    @property
    def is_continuous(self) -> bool:
        return self.kind is not ModalityKind.TOKENS

    @property
    def vocab_size(self) -> int:
        if self.kind is not ModalityKind.TOKENS:
            raise AttributeError(f"modality {self.name!r} is not a token modality")
        return int(self.hi) + 1

    def attention_mask(self, ids: Tensor) -> Tensor:
        """``[rows, T]`` long: 1 where ``ids`` is not the padding id (all ones without one)."""
        if self.pad_id is None:
            return torch.ones_like(ids, dtype=torch.long)
        return (ids != self.pad_id).long()

    def to_unit(self, x: Tensor) -> Tensor:
        """Map values in ``[lo, hi]`` to ``[0, 1]``."""
        return (x - self.lo) / (self.hi - self.lo)

    def from_unit(self, u: Tensor) -> Tensor:
        """Map values in ``[0, 1]`` back to ``[lo, hi]``."""
        return u * (self.hi - self.lo) + self.lo


@dataclass(frozen=True)
class Split:
    """All rows of one split: ``inputs`` (modality -> tensor) and ``labels`` (class ids ``[N]``,
    or ``[N, D]`` float targets / 0-1 labels for the other tasks, see :mod:`mmbench.data.tasks`)."""

    inputs: dict[str, Tensor]
    labels: Tensor

    def __post_init__(self) -> None:
        n = len(self.labels)
        for name, tensor in self.inputs.items():
            if len(tensor) != n:
                raise ValueError(f"modality {name!r} has {len(tensor)} rows but labels have {n}")

    def __len__(self) -> int:
        return len(self.labels)

    def rows(self, index: Tensor | slice) -> tuple[dict[str, Tensor], Tensor]:
        """The batch and labels of the given rows."""
        return {k: v[index] for k, v in self.inputs.items()}, self.labels[index]

    def to(self, device: torch.device | str) -> Split:
        return Split({k: v.to(device) for k, v in self.inputs.items()}, self.labels.to(device))


@dataclass(frozen=True)
class MultimodalDataset:
    """A dataset with named modalities and train/val/test splits, plus optional held-out
    evaluation ``groups`` (e.g. out-of-distribution rows; see ``natural_shift``).

    ``task`` is ``classification`` (``n_classes`` classes), ``regression`` (``n_classes``
    target columns) or ``multilabel`` (``n_classes`` binary labels): ``n_classes`` is always
    the width of the model's output (:mod:`mmbench.data.tasks`).

    ``in_distribution`` names the group whose rows were split into train/val/test, when the
    loader knows it; ``notes`` are one-line facts about how the loader built the dataset (rows
    left out, values clipped), printed by ``mmbench validate``. Neither is part of the fingerprint.
    """

    name: str
    modalities: tuple[ModalitySpec, ...]
    n_classes: int
    train: Split
    val: Split
    test: Split
    groups: Mapping[str, Split] = field(default_factory=dict)
    in_distribution: str | None = None
    notes: tuple[str, ...] = ()
    task: str = CLASSIFICATION

    def __post_init__(self) -> None:
        check_task(self.task, f"dataset {self.name!r}")
        names = [m.name for m in self.modalities]
        for split_name, split in self.splits():
            if sorted(split.inputs) != sorted(names):
                raise ValueError(
                    f"{self.name}: {split_name} split has modalities {sorted(split.inputs)}, "
                    f"expected {sorted(names)}"
                )
            self._check_labels(split_name, split.labels)

    def _check_labels(self, split_name: str, labels: Tensor) -> None:
        """Class ids ``[N]``, or float ``[N, n_classes]`` (0/1 for multilabel)."""
        if self.task == CLASSIFICATION:
            if labels.dim() != 1 or labels.is_floating_point():
                raise ValueError(f"{self.name}: {split_name} labels must be integer class ids [N], got "
                                 f"{labels.dtype} {list(labels.shape)}")
            return
        if labels.dim() != 2 or labels.shape[1] != self.n_classes or not labels.is_floating_point():
            raise ValueError(f"{self.name}: {split_name} labels of a {self.task} task must be float "
                             f"[N, {self.n_classes}], got {labels.dtype} {list(labels.shape)}")
        if self.task == MULTILABEL and len(labels) and not bool(((labels == 0) | (labels == 1)).all()):
            raise ValueError(f"{self.name}: {split_name} multilabel labels must be 0 or 1")

    @property
    def modality_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.modalities)

    def spec(self, name: str) -> ModalitySpec:
        for m in self.modalities:
            if m.name == name:
                return m
        raise KeyError(name)

    def splits(self) -> list[tuple[str, Split]]:
        """(name, split) of train, val, test and every held-out group."""
        return [("train", self.train), ("val", self.val), ("test", self.test),
                *((f"group {g}", s) for g, s in sorted(self.groups.items()))]

    def to(self, device: torch.device | str) -> MultimodalDataset:
        """The same dataset with every split on ``device``."""
        return dataclasses.replace(self, train=self.train.to(device), val=self.val.to(device),
                                   test=self.test.to(device),
                                   groups={g: s.to(device) for g, s in self.groups.items()})

    def _described(self) -> tuple:
        """What the fingerprints hash besides tensors (the task only when it is not the default,
        and padding ids only where declared, so the fingerprints of earlier versions hold)."""
        pads = tuple((m.name, m.pad_id) for m in self.modalities if m.pad_id is not None)
        described = (self.modalities, self.n_classes) if self.task == CLASSIFICATION else \
            (self.modalities, self.n_classes, self.task)
        return described + (pads,) if pads else described

    def split_fingerprints(self) -> dict[str, str]:
        """A content hash of each split's inputs and labels, by the name a cell's rows carry
        (``train``, ``val``, ``test`` or a group's name): ``mmbench compare`` checks that two
        runs evaluated the same data with them."""
        out = {}
        for tag, split in self.splits():
            h = hashlib.sha256(repr(self._described()).encode())
            for name in sorted(split.inputs):
                h.update(name.encode())
                h.update(split.inputs[name].detach().cpu().contiguous().numpy().tobytes())
            h.update(split.labels.detach().cpu().contiguous().numpy().tobytes())
            out[tag.removeprefix("group ")] = h.hexdigest()[:16]
        return out

    def fingerprint(self) -> str:
        """A content hash of all tensors, specs and labels (part of every cache key)."""
        h = hashlib.sha256(repr((self.name, *self._described())).encode())
        for tag, split in self.splits():
            if tag.startswith("group "):
                h.update(tag.encode())
            for name in sorted(split.inputs):
                h.update(name.encode())
                h.update(split.inputs[name].detach().cpu().contiguous().numpy().tobytes())
            h.update(split.labels.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()
