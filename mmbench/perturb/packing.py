"""Handing one or several modalities of a multimodal batch to a single-input attack.

torchattacks calls ``model(x)`` with one tensor in [0, 1]; several attacks call it on subsets or
single rows of the batch. A :class:`Layout` maps the target modalities (in the normalised unit
of their :class:`~mmbench.data.base.ModalitySpec` bounds) to one 4-D tensor and back:

- one image target ``[C, H, W]`` stays ``[N, C, H, W]``; one sequence ``[C, T]`` becomes
  ``[N, C, 1, T]``; anything else (vectors, several targets) is flattened to ``[N, 1, 1, F]``;
- in ``indexed`` mode an extra block of columns carries each row's index as binary code plus its
  complement (values exactly 0 or 1). The model wrapper decodes it with a 0.5 threshold, which has
  no gradient and which no perturbation below 0.5 can flip; a code whose bits and complement
  disagree raises :class:`AlignmentError` instead of silently pairing a row with another row's
  modalities.

Three wrappers turn the attack's tensor back into a batch for the fusion model:
:class:`BatchModel` (closes over the full batch, refuses any other batch size),
:class:`IndexedModel` (looks the clean other modalities up by decoded row index) and
:class:`BroadcastModel` (one row; repeats its other modalities for population batches).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mmbench.data.base import Batch, ModalityKind, ModalitySpec


class AlignmentError(RuntimeError):
    """An attack changed rows in a way that breaks the pairing with the other modalities."""


class Layout:
    """How target modalities are packed into, and unpacked from, one attack tensor."""

    def __init__(self, targets: Sequence[ModalitySpec], n_rows: int = 0, code: bool = False):
        self.targets = tuple(targets)
        self.sizes = [math.prod(s.shape) for s in self.targets]
        only = self.targets[0] if len(self.targets) == 1 else None
        if only is not None and only.kind is ModalityKind.IMAGE:
            self.base: tuple[int, int, int] = tuple(only.shape)  # type: ignore[assignment]
        elif only is not None and only.kind is ModalityKind.SEQUENCE:
            self.base = (only.shape[0], 1, only.shape[1])
        else:
            self.base = (1, 1, sum(self.sizes))
        self.bits = max(1, math.ceil(math.log2(max(n_rows, 2)))) if code else 0
        c, h, _ = self.base
        self.code_cols = math.ceil(2 * self.bits / (c * h)) if code else 0

    @property
    def n_features(self) -> int:
        return sum(self.sizes)

    def pack(self, batch: Batch, rows: Tensor | None = None) -> Tensor:
        """Targets in [0, 1] as ``[N, C, H, W]`` (plus the index code of ``rows`` when coded)."""
        units = [s.to_unit(batch[s.name]).clamp(0, 1).flatten(1) for s in self.targets]
        x = torch.cat(units, dim=1).reshape(-1, *self.base)
        if not self.code_cols:
            return x
        assert rows is not None, "indexed layouts need the row indices"
        return torch.cat([x, self._code(rows, x)], dim=3)

    def _code(self, rows: Tensor, like: Tensor) -> Tensor:
        c, h, _ = self.base
        powers = 2 ** torch.arange(self.bits, device=rows.device)
        bits = ((rows.unsqueeze(1) // powers) % 2).to(like.dtype)
        block = torch.zeros(len(rows), c * h * self.code_cols, dtype=like.dtype, device=like.device)
        block[:, : 2 * self.bits] = torch.cat([bits, 1 - bits], dim=1)
        return block.reshape(len(rows), c, h, self.code_cols)

    def decode_rows(self, x: Tensor) -> Tensor:
        """Row indices carried by ``x`` (no gradient); raises if a code was corrupted."""
        width = self.base[2]
        block = x.detach()[..., width:].reshape(len(x), -1)[:, : 2 * self.bits] > 0.5
        bits, complement = block[:, : self.bits], block[:, self.bits:]
        if not bool((bits ^ complement).all()):
            raise AlignmentError(
                "the attack changed the row-index code of some rows; run this attack in "
                "'per_sample' mode"
            )
        powers = 2 ** torch.arange(self.bits, device=x.device)
        return (bits.long() * powers).sum(dim=1)

    def unit_features(self, x: Tensor) -> Tensor:
        """The target part of ``x`` as ``[N, F]`` in [0, 1] units (code columns dropped)."""
        return x[..., : self.base[2]].reshape(len(x), -1)

    def unpack(self, x: Tensor) -> dict[str, Tensor]:
        """Target modalities in data units, shaped as in the batch."""
        flat = self.unit_features(x)
        out, start = {}, 0
        for spec, size in zip(self.targets, self.sizes, strict=True):
            part = flat[:, start:start + size].reshape(len(x), *spec.shape)
            out[spec.name] = spec.from_unit(part)
            start += size
        return out


class _Wrapper(nn.Module):
    def __init__(self, model: nn.Module, layout: Layout, clean: Batch) -> None:
        super().__init__()
        self.model = model
        self.layout = layout
        self.clean = dict(clean)
        self.others = [k for k in clean if k not in {s.name for s in layout.targets}]
        # torchattacks restores the wrapper's mode after an attack: mirror the model's mode so
        # that an attack during evaluation does not leave the model in training mode
        self.train(model.training)

    def logits(self, batch: dict[str, Tensor], x: Tensor) -> Tensor:
        """The model's logits, kept in the graph of ``x`` even when the model ignores the
        target (a unimodal baseline attacked on another modality gets a zero gradient instead
        of autograd's 'tensor not used in the graph' error)."""
        return self.model(batch) + 0.0 * x.sum()


class BatchModel(_Wrapper):
    """For attacks that only ever evaluate the whole batch: closes over the other modalities."""

    def forward(self, x: Tensor) -> Tensor:
        n = len(next(iter(self.clean.values())))
        if len(x) != n:
            raise AlignmentError(
                f"the attack evaluated {len(x)} rows of a batch of {n}; run it in 'indexed' mode"
            )
        return self.logits({**{k: self.clean[k] for k in self.others}, **self.layout.unpack(x)}, x)


class IndexedModel(_Wrapper):
    """For attacks that evaluate subsets: other modalities are looked up by decoded row index."""

    def forward(self, x: Tensor) -> Tensor:
        rows = self.layout.decode_rows(x)
        others = {k: self.clean[k][rows] for k in self.others}
        return self.logits({**others, **self.layout.unpack(x)}, x)


class BroadcastModel(_Wrapper):
    """For one row at a time: any batch is copies of that row (e.g. a search population)."""

    def forward(self, x: Tensor) -> Tensor:
        others = {k: self.clean[k].expand(len(x), *self.clean[k].shape[1:]) for k in self.others}
        return self.logits({**others, **self.layout.unpack(x)}, x)
