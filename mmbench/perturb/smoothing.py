"""``smoothing``: certified L2 robustness per modality by randomized smoothing (Cohen, Rosenfeld
and Kolter, ICML 2019).

Each case certifies the smoothed classifier g(x) = argmax_c P(f(x + noise) = c), with Gaussian
noise of scale ``sigma`` (normalised units) on one target modality, a named subset, or all of
them, by CERTIFY (:mod:`mmbench.perturb.certify`): ``n0`` draws pick c_A, ``n`` draws bound
p_A from below at confidence 1 - ``alpha``, the radius is sigma * Phi^-1(p_A_lower), abstaining
when the bound is <= 1/2. A cell stores, per row, g's prediction c_A (so its accuracy is the
smoothed classifier's clean accuracy), the estimated probability of the true class under the
noise, and the certified radius (NaN when CERTIFY abstains); the ``smoothing`` family derives the
certified accuracy at each radius of ``radii`` and the average certified radius from them.
Rows: ``family: smoothing``, ``perturbation: smoothed``, ``target``, ``severity`` = sigma.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from mmbench.bounds import MAX_CASES, MAX_DRAWS, check_distinct, check_size
from mmbench.data.base import Batch, ModalitySpec
from mmbench.data.tasks import CLASSIFICATION
from mmbench.errors import MMBenchError
from mmbench.perturb.adversarial import EACH, resolve_targets
from mmbench.perturb.base import ALL, Certified, Perturbation
from mmbench.perturb.certify import (add_noise, base_classifier, certify, check_alpha, draw_generator, noisy_counts,
                                     positive_int)
from mmbench.registry import PERTURBATIONS

SMOOTHING = "smoothing"
SMOOTHED = "smoothed"
#: the default radius grid (normalised L2 units over the target features)
RADII = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class Smoothing(Perturbation):
    """CERTIFY with noise of scale ``severity`` (sigma) on the ``specs`` modalities."""

    specs: tuple[ModalitySpec, ...] = ()
    n_classes: int = 2
    n0: int = 100
    n: int = 1000
    alpha: float = 0.001
    radii: tuple[float, ...] = RADII
    #: rows per forward pass of noisy copies
    chunk: int = 4096

    stageable: ClassVar[bool] = False  # its result is a decision with a radius, not a batch

    def facts(self) -> dict[str, Any]:
        return {"sigma": self.severity, "select_draws": self.n0, "estimate_draws": self.n, "alpha": self.alpha,
                "radii": ",".join(f"{r:g}" for r in self.radii)}

    def apply(self, model: nn.Module, batch: Batch, labels: Tensor, seed: int) -> dict[str, Tensor]:
        """One draw of the smoothing noise (what the base classifier sees)."""
        device = next(iter(batch.values())).device
        return add_noise(batch, self.specs, self.severity, draw_generator(seed, "apply", 0, device))

    def logits(self, model: nn.Module, batch: Batch, labels: Tensor, seed: int, cache: Any) -> Certified:
        base, inputs = self._base(model, batch)
        counts = [noisy_counts(base, inputs, self.specs, self.severity, draws, self.n_classes, seed, phase,
                               self.chunk) for phase, draws in (("select", self.n0), ("estimate", self.n))]
        cert = certify(counts[0], counts[1], self.severity, self.alpha)
        device = labels.device
        top = torch.as_tensor(counts[0].argmax(axis=1), device=device)
        radius = torch.as_tensor(cert.radius, dtype=torch.float32, device=device)
        radius = torch.where(torch.as_tensor(cert.prediction >= 0, device=device), radius, math.nan)
        share = torch.as_tensor(counts[1], dtype=torch.float32, device=device) / max(self.n, 1)
        return Certified(share.clamp_min(1e-6).log(), top, radius)

    def _base(self, model: nn.Module, batch: Batch) -> tuple[Callable[[dict[str, Tensor]], Tensor], Batch]:
        """The base classifier on stacked noisy copies, and the part of ``batch`` to copy
        (:func:`~mmbench.perturb.certify.base_classifier`)."""
        return base_classifier(model, batch, {s.name for s in self.specs}, f"smoothing noise on {self.target}")


def _positive_int(value: Any, name: str, low: int = 1, high: int | None = None) -> int:
    return positive_int(value, name, SMOOTHING, low, high)


def _numbers(values: Any, name: str, example: str, positive: bool) -> list[float]:
    if not isinstance(values, list) or not values:
        raise MMBenchError(f"smoothing: '{name}' must be a non-empty list of numbers (e.g. {name}: {example})")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 \
                or (positive and v == 0):
            raise MMBenchError(f"smoothing: {name} must be finite numbers {'> 0' if positive else '>= 0'}, "
                               f"got {str(v)[:40]!r}")
    check_distinct([float(v) for v in values], f"smoothing: {name}")
    return sorted(float(v) for v in values)


@PERTURBATIONS.register(
    SMOOTHING, family=SMOOTHING, kinds=("image", "sequence", "vector"),
    example={"sigma": [0.25], "n0": 8, "n": 32, "alpha": 0.01, "radii": [0.0, 0.1]},
)
def smoothing(modalities: Sequence[ModalitySpec], n_classes: int, sigma: list[float] | None = None,
              targets: list[str] | None = None, n0: int = 100, n: int = 1000, alpha: float = 0.001,
              radii: list[float] | None = None, max_rows: int | None = None,
              chunk: int = 4096, task: str = CLASSIFICATION) -> list[Perturbation]:
    """CERTIFY per (target, sigma); targets default to [each, all]. Classification only: the
    certificate is a statement about the smoothed classifier's top class."""
    if task != CLASSIFICATION:
        raise MMBenchError(f"smoothing: randomized smoothing certifies a classifier's top class (Cohen et al. "
                           f"2019), and this dataset is a {task} task; drop smoothing for it (list the "
                           "classification datasets under the perturbation's 'datasets')")
    sigmas = _numbers(sigma, "sigma", "[0.12, 0.25]", positive=True)
    grid = _numbers(list(RADII) if radii is None else radii, "radii", "[0, 0.25, 0.5]", positive=False)
    n0, n = _positive_int(n0, "n0", high=MAX_DRAWS), _positive_int(n, "n", high=MAX_DRAWS)
    chunk = _positive_int(chunk, "chunk", high=MAX_DRAWS)
    check_alpha(alpha, SMOOTHING)
    if max_rows is not None:
        _positive_int(max_rows, "max_rows")
    check_distinct(list(targets or []), "smoothing: targets")
    resolved = resolve_targets(targets or [EACH, ALL], modalities, SMOOTHING, "Gaussian noise")
    check_size(len(resolved) * len(sigmas), MAX_CASES, "smoothing: sigma x targets", "list fewer of either")
    return [Smoothing(family=SMOOTHING, name=SMOOTHED, target=label, severity=s, max_rows=max_rows,
                      specs=specs, n_classes=n_classes, n0=n0, n=n, alpha=float(alpha), radii=tuple(grid),
                      chunk=chunk)
            for label, specs in resolved for s in sigmas]
