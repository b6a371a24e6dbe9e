"""Randomized smoothing (Cohen, Rosenfeld and Kolter, ICML 2019, "Certified Adversarial
Robustness via Randomized Smoothing"), per modality: the smoothed classifier predicts the class
the base model returns most often under Gaussian noise of scale ``sigma`` on the target
modalities. CERTIFY draws ``n0`` noisy copies to pick the class c_A, ``n`` more to bound
p_A = P(f(x + noise) = c_A) from below (one-sided Clopper-Pearson at confidence 1 - alpha), and
certifies c_A within the L2 radius sigma * Phi^-1(p_A_lower) of the target modalities; it
abstains when that bound is <= 1/2. The noise runs batched on the model's device."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import beta, norm
from torch import Tensor

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


def noisy_counts(logits: Callable[[Mapping[str, Tensor]], Tensor], batch: Mapping[str, Tensor],
                 targets: Sequence[str], sigma: float, draws: int, n_classes: int,
                 generator: torch.Generator, chunk: int = 1024) -> np.ndarray:
    """How often the base model predicts each class over ``draws`` copies of each row with
    N(0, sigma^2) noise on ``targets`` (others untouched), batched: [rows, n_classes]."""
    rows = len(next(iter(batch.values())))
    counts = torch.zeros(rows, n_classes, dtype=torch.int64, device=next(iter(batch.values())).device)
    per = max(1, chunk // max(rows, 1))  # copies of the whole batch per forward pass
    done = 0
    while done < draws:
        copies = min(per, draws - done)
        noisy = {}
        for name, x in batch.items():
            tiled = x.repeat(copies, *([1] * (x.dim() - 1)))
            if name in targets:
                noise = torch.randn(tiled.shape, generator=generator, device="cpu", dtype=torch.float32)
                tiled = tiled + sigma * noise.to(tiled.device, tiled.dtype)
            noisy[name] = tiled
        with torch.no_grad():
            pred = logits(noisy).argmax(dim=1).view(copies, rows)
        counts += torch.nn.functional.one_hot(pred, n_classes).sum(dim=0)
        done += copies
    return counts.cpu().numpy()
