"""The corruption library of the ``shift`` family: seeded, batched torch ops by modality kind.

A :class:`Corruption` maps a whole batch of one modality to its corrupted version at a
severity 1-5 (0 is the identity). Continuous kinds (image, sequence, vector) are corrupted in
the normalised unit ``[0, 1]`` of the modality (its ``lo``/``hi`` bounds), and the result is
clamped back into bounds; token ids stay integers in ``[0, vocab_size)``. Every random draw
comes from a ``torch.Generator`` on the batch's device seeded with ``seed``, and no function
loops over samples in Python, so a corruption costs a few kernel launches on any device.

Levels per severity are stated in the docstring of each function and listed by
``mmbench ls corruptions``. Plugins register more with ``@corruption(...)`` (entry-point group
``mmbench.corruptions``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from mmbench.data.base import ModalityKind, ModalitySpec
from mmbench.errors import MMBenchError
from mmbench.registry import CORRUPTIONS

#: ``fn(x, level, generator, spec) -> Tensor``: ``x`` in the unit for continuous kinds, ids for
#: tokens; ``level`` is the corruption's parameter at the requested severity.
CorruptFn = Callable[[Tensor, float, torch.Generator, ModalitySpec], Tensor]
SEVERITIES = (0, 1, 2, 3, 4, 5)


@dataclass(frozen=True)
class Corruption:
    """One corruption: the kinds it applies to and its parameter at severities 1..5."""

    name: str
    fn: CorruptFn
    kinds: tuple[str, ...]
    levels: tuple[float, float, float, float, float]
    unit: str
    #: extra applicability rule beyond the kind: returns why ``spec`` is unsupported, or None
    requires: Callable[[ModalitySpec], str | None] | None = None
    #: whether it draws anything at random (the ``shift`` family then averages several draws)
    random: bool = True

    def unsupported(self, spec: ModalitySpec) -> str | None:
        """Why this corruption cannot run on ``spec`` (None when it can)."""
        if spec.kind.value not in self.kinds:
            return (f"corruption '{self.name}' applies to {'/'.join(self.kinds)} modalities, "
                    f"not to '{spec.name}' ({spec.kind.value})")
        return self.requires(spec) if self.requires else None

    def check(self, spec: ModalitySpec) -> None:
        reason = self.unsupported(spec)
        if reason:
            raise MMBenchError(reason)

    def apply(self, x: Tensor, spec: ModalitySpec, severity: int, seed: int) -> Tensor:
        """``x`` (a batch of modality ``spec``) corrupted at ``severity``; same shape, dtype and
        device; severity 0 returns ``x`` itself."""
        if severity not in SEVERITIES:
            raise MMBenchError(f"corruption '{self.name}': severity must be 0-5, got {severity!r}")
        if severity == 0:
            return x
        g = torch.Generator(device=x.device).manual_seed(seed)
        level = self.levels[severity - 1]
        if not spec.is_continuous:
            return self.fn(x, level, g, spec).to(x.dtype)
        out = self.fn(spec.to_unit(x.float()), level, g, spec).clamp(0.0, 1.0)
        return spec.from_unit(out).to(x.dtype)


def corruption(name: str, kinds: tuple[str, ...], levels: tuple[float, float, float, float, float],
               unit: str, requires: Callable[[ModalitySpec], str | None] | None = None,
               random: bool = True) -> Callable[[CorruptFn], CorruptFn]:
    """Register ``fn`` as corruption ``name`` (decorator); ``random=False`` for one that draws
    nothing at random (evaluated once instead of averaged over draws)."""

    def decorate(fn: CorruptFn) -> CorruptFn:
        doc = (fn.__doc__ or "").strip().splitlines()
        CORRUPTIONS.register(name, Corruption(name, fn, kinds, levels, unit, requires, random),
                             kinds=kinds, description=f"{doc[0] if doc else name} "
                             f"[{', '.join(kinds)}; {unit}: {', '.join(f'{v:g}' for v in levels)}]")
        return fn

    return decorate


def _uniform(x: Tensor, g: torch.Generator) -> Tensor:
    """Uniform [0, 1) draws shaped like ``x``, on its device."""
    return torch.rand(x.shape, generator=g, device=x.device)


def _normal(x: Tensor, g: torch.Generator) -> Tensor:
    return torch.randn(x.shape, generator=g, device=x.device)


CONTINUOUS = (ModalityKind.IMAGE.value, ModalityKind.SEQUENCE.value, ModalityKind.VECTOR.value)


@corruption("gaussian_noise", CONTINUOUS, (0.04, 0.08, 0.12, 0.18, 0.26), "std in the unit")
def gaussian_noise(x: Tensor, level: float, g: torch.Generator, spec: ModalitySpec) -> Tensor:
    """Additive Gaussian noise on every value."""
    return x + level * _normal(x, g)


# -- helpers --------------------------------------------------------------------------------------
def _span_mask(n: int, length: int, span: int, g: torch.Generator,
               device: torch.device) -> Tensor:
    """[n, length] bool: one contiguous run of ``span`` True per row, at a random start."""
    start = (torch.rand(n, generator=g, device=device) * (length - span + 1)).floor()
    pos = torch.arange(length, device=device)
    return (pos >= start[:, None]) & (pos < start[:, None] + span)


def _pair_swap_index(x: Tensor, p: float, g: torch.Generator) -> Tensor:
    """[N, D] gather index that swaps adjacent entries of each row in disjoint pairs
    ``(o + 2k, o + 2k + 1)`` (random parity ``o`` per row), each pair with probability ``p``."""
    n, d = x.shape
    idx = torch.arange(d, device=x.device).expand(n, d)
    rel = idx - torch.randint(0, 2, (n, 1), generator=g, device=x.device)
    partner = torch.where(rel % 2 == 0, idx + 1, idx - 1)
    pair_draw = torch.rand(n, d // 2 + 1, generator=g, device=x.device)
    swap = pair_draw.gather(1, rel.clamp(min=0) // 2) < p
    return torch.where(swap & (rel >= 0) & (partner < d), partner, idx)


def _depthwise(x: Tensor, kernel: Tensor) -> Tensor:
    """Convolve every channel of images ``x`` [N, C, H, W] with one 2-D ``kernel`` [kh, kw]
    (odd sizes), replicate padding."""
    n, c, h, w = x.shape
    kh, kw = kernel.shape
    pad = (kw // 2, kw // 2, kh // 2, kh // 2)
    padded = F.pad(x.reshape(n * c, 1, h, w), pad, mode="replicate")
    return F.conv2d(padded, kernel[None, None]).reshape(n, c, h, w)


def _pixelate_matrix(size: int, small: int, x: Tensor) -> Tensor:
    """[size, size]: row j holds the weights of the low-resolution cell that pixel j falls in,
    for area downsampling to ``small`` cells (exact fractional overlaps, so cells never overlap
    as in ``adaptive_avg_pool``) followed by nearest upsampling."""
    edges = torch.arange(small + 1, device=x.device, dtype=x.dtype) * (size / small)
    pix = torch.arange(size, device=x.device, dtype=x.dtype)
    overlap = torch.minimum(edges[1:, None], pix + 1) - torch.maximum(edges[:-1, None], pix)
    cell = ((pix + 0.5) * (small / size)).long()
    return (overlap.clamp(min=0) * (small / size))[cell]


IMAGE = (ModalityKind.IMAGE.value,)
SEQUENCE = (ModalityKind.SEQUENCE.value,)
VECTOR = (ModalityKind.VECTOR.value,)
TOKENS = (ModalityKind.TOKENS.value,)


# -- image ----------------------------------------------------------------------------------------
@corruption("shot_noise", IMAGE, (60.0, 25.0, 12.0, 5.0, 3.0), "photons per unit intensity")
def shot_noise(x: Tensor, level: float, g: torch.Generator, spec: ModalitySpec) -> Tensor:
    """Poisson (photon) noise: each value becomes a photon count at the given rate, rescaled."""
    return torch.poisson(x * level, generator=g) / level


@corruption("impulse_noise", IMAGE, (0.03, 0.06, 0.09, 0.17, 0.27), "fraction of values")
def impulse_noise(x: Tensor, level: float, g: torch.Generator, spec: ModalitySpec) -> Tensor:
    """Salt-and-pepper noise: a fraction of the values set to 0 or 1 (half each)."""
    u = _uniform(x, g)
    return torch.where(u < level, (u >= level / 2).to(x.dtype), x)


@corruption("gaussian_blur", IMAGE, (0.5, 0.75, 1.0, 1.25, 1.5), "sigma in pixels", random=False)
def gaussian_blur(x: Tensor, level: float, g: torch.Generator, spec: ModalitySpec) -> Tensor:
    """Separable Gaussian blur of each channel (replicate padding)."""
    radius = math.ceil(3 * level)
    taps = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-0.5 * (taps / level) ** 2)
    k = k / k.sum()
    return _depthwise(_depthwise(x, k[None, :]), k[:, None])


@corruption("defocus_blur", IMAGE, (1.0, 1.5, 2.0, 2.5, 3.0), "disk radius in pixels", random=False)
def defocus_blur(x: Tensor, level: float, g: torch.Generator, spec: ModalitySpec) -> Tensor:
    """Defocus blur: each channel averaged over a disk of the given radius."""
    taps = torch.arange(-math.floor(level), math.floor(level) + 1, device=x.device, dtype=x.dtype)
    disk = ((taps[:, None] ** 2 + taps[None, :] ** 2) <= level**2).to(x.dtype)
    return _depthwise(x, disk / disk.sum())


@corruption("motion_blur", IMAGE, (2.0, 3.0, 4.0, 5.0, 6.0), "streak length in pixels")
def motion_blur(x: Tensor, level: float, g: torch.Generator, spec: ModalitySpec) -> Tensor:
    """Motion blur along a line through each pixel, at a random angle per sample."""
    n, c, h, w = x.shape
    half = (level - 1) / 2
    r = math.ceil(half) + 1
    angle = torch.rand(n, generator=g, device=x.device) * math.pi
    u = torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)  # [N, 2] as (dx, dy)
    taps = torch.arange(-r, r + 1, device=x.device, dtype=x.dtype)
    grid = torch.stack(torch.meshgrid(taps, taps, indexing="xy"), dim=-1)  # [K, K, (dx, dy)]
    t = (grid[None] * u[:, None, None]).sum(-1).clamp(-half, half)  # projection onto the line
    dist = (grid[None] - t[..., None] * u[:, None, None]).norm(dim=-1)
    kernel = (1 - dist).clamp(min=0)  # [N, K, K]: anti-aliased segment
    kernel = (kernel / kernel.sum(dim=(1, 2), keepdim=True)).repeat_interleave(c, dim=0)
    padded = F.pad(x.reshape(1, n * c, h, w), (r, r, r, r), mode="replicate")
    return F.conv2d(padded, kernel[:, None], groups=n * c).reshape(n, c, h, w)


@corruption("contrast", IMAGE, (0.4, 0.3, 0.2, 0.1, 0.05), "contrast factor", random=False)
def contrast(x: Tensor, level: float, g: torch.Generator, spec: ModalitySpec) -> Tensor:
    """Reduced contrast: each image pulled towards its mean by the given factor."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * level + mean


@corruption("brightness", IMAGE, (0.1, 0.2, 0.3, 0.4, 0.5), "offset in the unit", random=False)
def brightness(x: Tensor, level: float, g: torch.Generator, spec: ModalitySpec) -> Tensor:
    """Increased brightness: a constant added to every value."""
    return x + level


@corruption("pixelate", IMAGE, (0.75, 0.625, 0.5, 0.375, 0.25), "downsampled size / size", random=False)
def pixelate(x: Tensor, level: float, g: torch.Generator, spec: ModalitySpec) -> Tensor:
    """Pixelation: area-downsampled to a fraction of the size, then nearest-upsampled back."""
    h, w = x.shape[-2:]
    rows, cols = (_pixelate_matrix(n, max(1, round(n * level)), x) for n in (h, w))
    return rows @ x @ cols.T


@corruption("occlusion", IMAGE, (0.25, 0.35, 0.5, 0.6, 0.75), "square side / min(H, W)")
def occlusion(x: Tensor, level: float, g: torch.Generator, spec: ModalitySpec) -> Tensor:
    """Occlusion: a black square cutout at a random position per sample (all channels)."""
    n, _, h, w = x.shape
    side = max(1, round(level * min(h, w)))
    rows = _span_mask(n, h, side, g, x.device)
    cols = _span_mask(n, w, side, g, x.device)
    return x.masked_fill((rows[:, :, None] & cols[:, None, :])[:, None], 0.0)


@corruption("affine", IMAGE, (6.0, 12.0, 18.0, 24.0, 30.0),
            "max rotation in degrees; max shift = degrees / 120 of the size")
def affine(x: Tensor, level: float, g: torch.Generator, spec: ModalitySpec) -> Tensor:
    """Random small rotation and translation per sample (bilinear, zeros outside)."""
    n, _, h, w = x.shape
    u = torch.rand(n, 3, generator=g, device=x.device) * 2 - 1
    angle, shift = u[:, 0] * math.radians(level), u[:, 1:] * (level / 120) * 2  # normalised coords
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([cos, -sin * h / w, shift[:, 0]], dim=1),
                         torch.stack([sin * w / h, cos, shift[:, 1]], dim=1)], dim=1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


# -- sequence -------------------------------------------------------------------------------------
@corruption("time_mask", SEQUENCE, (0.1, 0.2, 0.3, 0.4, 0.5), "fraction of time steps")
def time_mask(x: Tensor, level: float, g: torch.Generator, spec: ModalitySpec) -> Tensor:
    """Time masking: one contiguous span of time steps set to 0 (all channels), random start."""
    span = max(1, round(level * x.shape[2]))
    return x.masked_fill(_span_mask(x.shape[0], x.shape[2], span, g, x.device)[:, None, :], 0.0)


def _needs_frequency_bins(spec: ModalitySpec) -> str | None:
    if spec.shape[0] < 4:
        return (f"corruption 'freq_mask' needs spectrogram-like input with at least 4 channels "
                f"(frequency bins); '{spec.name}' has {spec.shape[0]}")
    return None


@corruption("freq_mask", SEQUENCE, (0.125, 0.25, 0.375, 0.5, 0.625), "fraction of channels",
            requires=_needs_frequency_bins)
def freq_mask(x: Tensor, level: float, g: torch.Generator, spec: ModalitySpec) -> Tensor:
    """Frequency masking: one contiguous band of channels set to 0 (all times), random start."""
    band = max(1, round(level * x.shape[1]))
    return x.masked_fill(_span_mask(x.shape[0], x.shape[1], band, g, x.device)[:, :, None], 0.0)


@corruption("time_shift", SEQUENCE, (0.05, 0.1, 0.2, 0.3, 0.4), "shift / number of time steps")
def time_shift(x: Tensor, level: float, g: torch.Generator, spec: ModalitySpec) -> Tensor:
    """Time shift: each sample shifted left or right (random per sample), vacated steps set to 0."""
    n, c, t = x.shape
    steps = max(1, round(level * t))
    sign = torch.randint(0, 2, (n, 1), generator=g, device=x.device) * 2 - 1
    src = torch.arange(t, device=x.device) - sign * steps  # out[:, :, i] = x[:, :, src[i]]
    out = x.gather(2, src.clamp(0, t - 1)[:, None, :].expand(n, c, t))
    return out.masked_fill(((src < 0) | (src >= t))[:, None, :], 0.0)


@corruption("random_dropout", SEQUENCE, (0.1, 0.2, 0.3, 0.4, 0.5), "drop probability per value")
def random_dropout(x: Tensor, level: float, g: torch.Generator, spec: ModalitySpec) -> Tensor:
    """Random dropout: each value independently set to 0 with the given probability."""
    return x.masked_fill(_uniform(x, g) < level, 0.0)


@corruption("structured_dropout", SEQUENCE, (0.1, 0.2, 0.3, 0.4, 0.5),
            "about the fraction of time steps dropped")
def structured_dropout(x: Tensor, level: float, g: torch.Generator, spec: ModalitySpec) -> Tensor:
    """Structured dropout: blocks of T // 8 consecutive time steps (all channels) set to 0."""
    n, _, t = x.shape
    block = max(1, t // 8)
    starts = (torch.rand(n, 1, t, generator=g, device=x.device) < level / block).to(x.dtype)
    dropped = F.max_pool1d(F.pad(starts, (block - 1, 0)), block, stride=1) > 0  # [N, 1, T]
    return x.masked_fill(dropped, 0.0)


# -- vector ---------------------------------------------------------------------------------------
@corruption("feature_dropout", VECTOR, (0.1, 0.2, 0.3, 0.4, 0.5), "drop probability per feature")
def feature_dropout(x: Tensor, level: float, g: torch.Generator, spec: ModalitySpec) -> Tensor:
    """Feature dropout: each feature independently set to 0 with the given probability."""
    return x.masked_fill(_uniform(x, g) < level, 0.0)


@corruption("calibration_drift", VECTOR, (0.03, 0.06, 0.1, 0.15, 0.2), "scale of gain/offset drift")
def calibration_drift(x: Tensor, level: float, g: torch.Generator, spec: ModalitySpec) -> Tensor:
    """Calibration drift: per-feature gain and offset errors, shared by the whole batch."""
    a = torch.randn(x.shape[1:], generator=g, device=x.device)
    b = torch.randn(x.shape[1:], generator=g, device=x.device)
    return x * (1 + level * a) + level * b


@corruption("neighbour_swap", VECTOR, (0.1, 0.2, 0.3, 0.4, 0.5), "swap probability per pair")
def neighbour_swap(x: Tensor, level: float, g: torch.Generator, spec: ModalitySpec) -> Tensor:
    """Neighbour swap: disjoint pairs of adjacent features swapped with the given probability."""
    return x.gather(1, _pair_swap_index(x, level, g))


# -- tokens ---------------------------------------------------------------------------------------
@corruption("token_dropout", TOKENS, (0.05, 0.1, 0.2, 0.3, 0.4), "drop probability per token")
def token_dropout(x: Tensor, level: float, g: torch.Generator, spec: ModalitySpec) -> Tensor:
    """Token dropout: each token replaced by id 0 with the given probability (by the padding id,
    where the modality declares one: the word is gone and an attention mask leaves it out)."""
    drop = _uniform(x, g) < level
    if spec.pad_id is None:
        return x.masked_fill(drop, 0)
    return x.masked_fill(drop, spec.pad_id)


@corruption("token_swap", TOKENS, (0.1, 0.2, 0.3, 0.4, 0.5), "swap probability per pair")
def token_swap(x: Tensor, level: float, g: torch.Generator, spec: ModalitySpec) -> Tensor:
    """Token swap: disjoint pairs of adjacent tokens swapped with the given probability (never a
    token with padding)."""
    index = _pair_swap_index(x, level, g)
    if spec.pad_id is not None:
        text = x != spec.pad_id
        index = torch.where(text & text.gather(1, index), index, torch.arange(x.shape[1], device=x.device))
    return x.gather(1, index)


@corruption("token_typo", TOKENS, (0.05, 0.1, 0.15, 0.2, 0.3), "replace probability per token")
def token_typo(x: Tensor, level: float, g: torch.Generator, spec: ModalitySpec) -> Tensor:
    """Token typo: each token replaced with the given probability by a random id in [1, vocab)
    (padding positions, where declared, kept, and the padding id never written)."""
    random_ids = torch.randint(1, spec.vocab_size, x.shape, generator=g, device=x.device)
    typo = _uniform(x, g) < level
    if spec.pad_id is not None:
        random_ids = _skip_id(random_ids, spec.pad_id, spec.vocab_size)
        typo &= x != spec.pad_id
    return torch.where(typo, random_ids.to(x.dtype), x)


def _skip_id(ids: Tensor, banned: int, vocab: int) -> Tensor:
    """``ids`` drawn from [1, vocab) with ``banned`` mapped to another id of that range."""
    if vocab <= 2 or banned < 1:
        return ids
    return torch.where(ids == banned, 1 + (ids % (vocab - 1)), ids)
