"""Randomized smoothing (Cohen, Rosenfeld and Kolter, ICML 2019, "Certified Adversarial
Robustness via Randomized Smoothing"), per modality: the smoothed classifier predicts the class
the base model returns most often under Gaussian noise of scale ``sigma`` on the target
modalities. CERTIFY draws ``n0`` noisy copies to pick the class c_A, ``n`` more to bound
p_A = P(f(x + noise) = c_A) from below (one-sided Clopper-Pearson at confidence 1 - alpha), and
certifies c_A within the L2 radius sigma * Phi^-1(p_A_lower) of the target modalities; it
abstains when that bound is <= 1/2. The noise runs batched on the model's device.

The draw loop (:func:`vote_counts`: each draw from its own seeded generator, batched copies), the
base classifier on copies (:func:`base_classifier`) and the bound are shared with the ``masking``
certificate of token modalities (:mod:`mmbench.perturb.masking`).

Units: sigma and the radius are in the normalised unit of each target modality (its [lo, hi]
bounds mapped to [0, 1], as attack budgets are), the L2 norm taken over all target features
together. Noisy inputs are clamped to the bounds, which makes the base classifier f(clamp(.)),
still a fixed function of its input, so the certificate holds as stated."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.stats import beta, norm
from torch import Tensor, nn

from mmbench.bounds import check_size
from mmbench.data.base import Batch, ModalitySpec
from mmbench.errors import MMBenchError
from mmbench.hashing import derive_seed
from mmbench.models.base import PRESENT
from mmbench.perturb.base import NonFiniteLogits
from mmbench.perturb.dropout import reuses_encoders

#: a base classifier on stacked copies of a batch: inputs -> logits
Logits = Callable[[Mapping[str, Tensor]], Tensor]
#: one random draw of a batch (what the base classifier sees), from its own generator
Draw = Callable[[Mapping[str, Tensor], torch.Generator], dict[str, Tensor]]

#: the prediction of an abstaining smoothed classifier
ABSTAIN = -1


def lower_confidence_bound(successes: np.ndarray | int, trials: int, alpha: float) -> np.ndarray:
    """One-sided (1 - alpha) Clopper-Pearson lower bound of a binomial proportion."""
    k = np.asarray(successes, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bound = beta.ppf(alpha, k, trials - k + 1)
    return np.where(k > 0, bound, 0.0)


@dataclass(frozen=True)
class Certificate:
    """Per row: the smoothed prediction (``ABSTAIN`` = -1) and its certified radius (0 when
    abstaining; an L2 radius for smoothing, a number of changed tokens for masking), with the
    lower bound of p_A it rests on."""

    prediction: np.ndarray
    radius: np.ndarray
    p_lower: np.ndarray


def certify(selection: np.ndarray, estimation: np.ndarray, sigma: float, alpha: float) -> Certificate:
    """CERTIFY from class counts: ``selection`` [rows, classes] of the n0 draws picks c_A,
    ``estimation`` [rows, classes] of the n draws bounds p_A."""
    rows = np.arange(len(selection))
    top = selection.argmax(axis=1)
    n = int(estimation[0].sum()) if len(estimation) else 0
    p_lower = lower_confidence_bound(estimation[rows, top], n, alpha)
    ok = p_lower > 0.5
    radius = np.where(ok, sigma * norm.ppf(np.clip(p_lower, 0.5, 1.0)), 0.0)
    return Certificate(np.where(ok, top, ABSTAIN), radius, p_lower)


def draw_generator(seed: int, phase: str, draw: int, device: torch.device) -> torch.Generator:
    """The generator of one noise draw: each draw of each phase (``select``: the n0 draws that pick
    c_A, ``estimate``: the n draws that bound p_A) has its own seed, so the counts do not depend
    on how draws are grouped into forward passes."""
    return torch.Generator(device=device).manual_seed(derive_seed(seed, phase, draw))


def add_noise(batch: Mapping[str, Tensor], specs: Sequence[ModalitySpec], sigma: float,
              generator: torch.Generator) -> dict[str, Tensor]:
    """``batch`` with N(0, sigma^2) noise in the normalised unit of each target modality in
    ``specs`` (in their order; data units: sigma * (hi - lo)), clamped to its bounds; the other
    entries unchanged."""
    out = dict(batch)
    for spec in specs:
        x = batch[spec.name]
        z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        out[spec.name] = (x + (sigma * (spec.hi - spec.lo)) * z).clamp(spec.lo, spec.hi)
    return out


def noisy_counts(logits: Logits, batch: Mapping[str, Tensor], specs: Sequence[ModalitySpec], sigma: float,
                 draws: int, n_classes: int, seed: int, phase: str, chunk: int = 4096) -> np.ndarray:
    """How often the base model predicts each class over ``draws`` noisy copies of each row
    (:func:`add_noise` with :func:`draw_generator` of ``seed``, ``phase`` and the draw), with
    as many copies of the batch per forward pass as fit in ``chunk`` rows: [rows, n_classes]."""
    return vote_counts(logits, batch, lambda b, g: add_noise(b, specs, sigma, g), draws, n_classes, seed, phase,
                       chunk)


def vote_counts(logits: Logits, batch: Mapping[str, Tensor], draw: Draw, draws: int, n_classes: int, seed: int,
                phase: str, chunk: int = 4096) -> np.ndarray:
    """How often the base model predicts each class over ``draws`` random copies of each row,
    copy j drawn by ``draw`` with :func:`draw_generator` of ``seed``, ``phase`` and j (so the
    counts do not depend on ``chunk``), with as many copies of the batch per forward pass as fit
    in ``chunk`` rows: [rows, n_classes]."""
    first = next(iter(batch.values()))
    rows, device = len(first), first.device
    counts = torch.zeros(rows, n_classes, dtype=torch.int64, device=device)
    per = max(1, chunk // max(rows, 1))
    for start in range(0, draws, per):
        copies = [draw(batch, draw_generator(seed, phase, j, device)) for j in range(start, min(draws, start + per))]
        stacked = {k: torch.cat([c[k] for c in copies]) for k in batch}
        with torch.no_grad():
            pred = logits(stacked).argmax(dim=1).view(len(copies), rows)
        counts += torch.nn.functional.one_hot(pred, n_classes).sum(dim=0)
    return counts.cpu().numpy()


def base_classifier(model: nn.Module, batch: Batch, targets: Collection[str], under: str) -> tuple[Logits, Batch]:
    """The base classifier on stacked random copies of the ``targets`` of ``batch``, and the part
    of ``batch`` to copy. For a model on the encode / fuse contract the other modalities are
    encoded once and only the targets are copied and encoded per draw (equal to the full forward
    pass up to float rounding); any other model gets whole copies of the batch. NaN/Inf logits
    raise :class:`NonFiniteLogits` naming ``under`` (what the copies are drawn under)."""
    if not reuses_encoders(model):
        return _finite(model, under), batch
    rows = len(next(iter(batch.values())))
    with torch.no_grad():
        clean = {n: enc(batch[n]) for n, enc in model.encoders.items() if n not in targets}

    def fused(x: Mapping[str, Tensor]) -> Tensor:
        copies = len(next(iter(x.values()))) // rows
        features = {n: f.repeat(copies, *([1] * (f.dim() - 1))) for n, f in clean.items()}
        features.update({n: enc(x[n]) for n, enc in model.encoders.items() if n in targets})
        if PRESENT in x:
            features[PRESENT] = x[PRESENT]
        return model.fuse_and_classify(features)

    return _finite(fused, under), {n: x for n, x in batch.items() if n in targets or n == PRESENT}


def _finite(call: Logits, under: str) -> Logits:
    def checked(x: Mapping[str, Tensor]) -> Tensor:
        out = call(x)
        if not bool(torch.isfinite(out).all()):
            raise NonFiniteLogits(f"the model gave NaN/Inf logits under {under}")
        return out

    return checked


def positive_int(value: Any, name: str, owner: str, low: int = 1, high: int | None = None,
                 unit: str = "noise draws per row") -> int:
    """``value`` as an integer >= ``low`` (and, with ``high``, at most that many ``unit``), else
    one line naming ``owner``'s parameter ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise MMBenchError(f"{owner}: {name} must be an integer >= {low}, got {str(value)[:40]!r}")
    if high is not None:
        check_size(value, high, f"{owner}: {name} ({unit})",
                   "CERTIFY's usual n is 100,000; use fewer draws")
    return value


def check_alpha(alpha: Any, owner: str) -> float:
    """The certificate's error probability ``alpha`` in (0, 0.5), else one line."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 0.5:
        raise MMBenchError(f"{owner}: alpha must lie in (0, 0.5), got {str(alpha)[:40]!r}")
    return float(alpha)
