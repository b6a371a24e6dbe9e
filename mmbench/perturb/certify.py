"""Randomized smoothing (Cohen, Rosenfeld and Kolter, ICML 2019, "Certified Adversarial
Robustness via Randomized Smoothing"), per modality: the smoothed classifier predicts the class
the base model returns most often under Gaussian noise of scale ``sigma`` on the target
modalities. CERTIFY draws ``n0`` noisy copies to pick the class c_A, ``n`` more to bound
p_A = P(f(x + noise) = c_A) from below (one-sided Clopper-Pearson at confidence 1 - alpha), and
certifies c_A within the L2 radius sigma * Phi^-1(p_A_lower) of the target modalities; it
abstains when that bound is <= 1/2. The noise runs batched on the model's device.

Units: sigma and the radius are in the normalised unit of each target modality (its [lo, hi]
bounds mapped to [0, 1], as attack budgets are), the L2 norm taken over all target features
together. Noisy inputs are clamped to the bounds, which makes the base classifier f(clamp(.)),
still a fixed function of its input, so the certificate holds as stated."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import beta, norm
from torch import Tensor

from mmbench.data.base import ModalitySpec
from mmbench.hashing import derive_seed

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
    """Per row: the smoothed prediction (``ABSTAIN`` = -1) and its certified L2 radius (0 when
    abstaining), with the lower bound of p_A it rests on."""

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


def noisy_counts(logits: Callable[[Mapping[str, Tensor]], Tensor], batch: Mapping[str, Tensor],
                 specs: Sequence[ModalitySpec], sigma: float, draws: int, n_classes: int, seed: int,
                 phase: str, chunk: int = 4096) -> np.ndarray:
    """How often the base model predicts each class over ``draws`` noisy copies of each row
    (:func:`add_noise` with :func:`draw_generator` of ``seed``, ``phase`` and the draw), with
    as many copies of the batch per forward pass as fit in ``chunk`` rows: [rows, n_classes]."""
    first = next(iter(batch.values()))
    rows, device = len(first), first.device
    counts = torch.zeros(rows, n_classes, dtype=torch.int64, device=device)
    per = max(1, chunk // max(rows, 1))
    for start in range(0, draws, per):
        copies = [add_noise(batch, specs, sigma, draw_generator(seed, phase, j, device))
                  for j in range(start, min(draws, start + per))]
        stacked = {k: torch.cat([c[k] for c in copies]) for k in batch}
        with torch.no_grad():
            pred = logits(stacked).argmax(dim=1).view(len(copies), rows)
        counts += torch.nn.functional.one_hot(pred, n_classes).sum(dim=0)
    return counts.cpu().numpy()
