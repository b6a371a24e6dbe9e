"""A seeded generator of multimodal data with known structure, for every task.

Every sample has a class ``y`` and a latent vector ``z = mu_y + noise * e``. Modality ``m`` sees
``a_m * z + (1 - a_m) * u_m`` where ``u_m`` is independent noise and ``a_m`` its
*informativeness* (1 = as informative as the latent, 0 = independent of the class), pushed through
a fixed random projection into its kind's shape. ``copy_of`` makes a modality an exact copy of
another (fully redundant). Continuous kinds lie in [0, 1]; tokens are drawn from a
class-dependent categorical distribution over ``vocab_size`` ids.

The ``task`` decides what is predicted: the class (``classification``); ``outputs`` targets
``3 tanh(z w_j / (||w_j|| sd(z)))`` in [-3, 3], like sentiment scores (``regression``); or ``outputs``
labels ``[z v_j > t_j]`` whose thresholds give prevalences from 15% to 50% (``multilabel``).
Either way a modality carries as much of the signal as its informativeness, and the task's
weights come from their own generator, so the inputs are those of the classification dataset
with the same seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import torch

from mmbench.bounds import Fraction, NonNegative, NonNegativeInt, PositiveInt, Range
from mmbench.data.base import ModalityKind, ModalitySpec, MultimodalDataset, Split
from mmbench.data.splits import stratified_split
from mmbench.data.tasks import CLASSIFICATION, REGRESSION, TASKS
from mmbench.errors import MMBenchError
from mmbench.registry import DATASETS

LATENT_DIM = 8

DEFAULT_MODALITIES: tuple[dict[str, Any], ...] = (
    {"name": "image", "kind": "image", "shape": [1, 8, 8], "informativeness": 1.0},
    {"name": "audio", "kind": "sequence", "shape": [2, 16], "informativeness": 0.8},
    {"name": "table", "kind": "vector", "shape": [12], "informativeness": 0.6},
    {"name": "text", "kind": "tokens", "shape": [10], "informativeness": 0.8, "vocab_size": 16},
)


@dataclass(frozen=True)
class SyntheticModality:
    """How one synthetic modality is generated."""

    name: str
    kind: ModalityKind = ModalityKind.VECTOR
    shape: tuple[int, ...] = (8,)
    informativeness: float = 1.0
    vocab_size: int = 16
    copy_of: str | None = None

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> SyntheticModality:
        if not isinstance(raw, dict) or "name" not in raw:
            raise MMBenchError(f"synthetic modality {raw!r} needs at least a 'name'")
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise MMBenchError(
                f"synthetic modality '{raw['name']}': unknown key(s) {sorted(unknown)}; "
                f"allowed: {sorted(cls.__dataclass_fields__)}"
            )
        values = dict(raw)
        try:
            values["kind"] = ModalityKind(values.get("kind", "vector"))
        except ValueError:
            kinds = [k.value for k in ModalityKind]
            raise MMBenchError(f"synthetic modality '{raw['name']}': kind must be one of {kinds}") from None
        name = str(raw["name"])[:40]
        shape = values.get("shape", (8,))
        if not isinstance(shape, (list, tuple)) or not shape or not all(
                isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in shape):
            raise MMBenchError(f"synthetic modality '{name}': shape must be a list of positive integers")
        values["shape"] = tuple(shape)
        info = values.get("informativeness", 1.0)
        if isinstance(info, bool) or not isinstance(info, (int, float)) or not 0.0 <= info <= 1.0:
            raise MMBenchError(f"synthetic modality '{name}': informativeness must be in [0, 1]")
        vocab = values.get("vocab_size", 16)
        if isinstance(vocab, bool) or not isinstance(vocab, int) or vocab < 2:
            raise MMBenchError(f"synthetic modality '{name}': vocab_size must be an integer >= 2")
        try:
            spec = cls(**values)
            spec.spec()  # the shape's rank must fit the kind
        except ValueError as exc:
            raise MMBenchError(f"synthetic modality '{name}': {exc}") from None
        return spec

    def spec(self) -> ModalitySpec:
        hi = float(self.vocab_size - 1) if self.kind is ModalityKind.TOKENS else 1.0
        return ModalitySpec(self.name, self.kind, self.shape, 0.0, hi)


def _generate(mod: SyntheticModality, z: np.ndarray, rng: np.random.Generator,
              weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Draw modality values for latents ``z`` (one row per sample), with the modality's
    embedding / projection ``weights`` (drawn here, after the row noise, when not given)."""
    a = mod.informativeness
    latent = a * z + (1.0 - a) * rng.normal(size=z.shape) * z.std(axis=0, keepdims=True)
    if mod.kind is ModalityKind.TOKENS:
        embedding = rng.normal(size=(mod.vocab_size, LATENT_DIM)) if weights is None else weights
        logits = latent @ embedding.T
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        cdf = probs.cumsum(axis=1)
        draws = rng.random(size=(len(z), mod.shape[0], 1))
        tokens = (draws > cdf[:, None, :]).sum(axis=2)
        return np.minimum(tokens, mod.vocab_size - 1).astype(np.int64), embedding
    width = int(np.prod(mod.shape))
    projection = rng.normal(size=(LATENT_DIM, width)) / np.sqrt(LATENT_DIM) if weights is None else weights
    values = 1.0 / (1.0 + np.exp(-(latent @ projection)))
    return values.reshape(len(z), *mod.shape).astype(np.float32), projection


#: at most this many generated values in all (1 GiB of float32), checked before allocating
MAX_VALUES = 1 << 28


def _check_size(mods: list[SyntheticModality], n_samples: int) -> None:
    total = n_samples * sum(int(np.prod(m.shape)) for m in mods) * 5 // 4  # with an ood group
    if total > MAX_VALUES:
        raise MMBenchError(f"synthetic: {n_samples} rows of these shapes are {total:.3g} values, more than "
                           f"{MAX_VALUES:.3g}; use fewer rows or smaller shapes")


def _parse_modalities(raw: list[dict[str, Any]] | None) -> list[SyntheticModality]:
    mods = [SyntheticModality.parse(m) for m in (raw or [dict(m) for m in DEFAULT_MODALITIES])]
    names = [m.name for m in mods]
    if not mods or len(set(names)) != len(names):
        raise MMBenchError(f"synthetic modalities need distinct names, got {names}")
    for m in mods:
        if m.copy_of is not None and m.copy_of not in names:
            raise MMBenchError(f"synthetic modality '{m.name}': copy_of '{m.copy_of}' is not a modality")
    return mods


@DATASETS.register("synthetic", description="seeded multimodal data with controlled informativeness",
                   tasks=TASKS)
def make_synthetic(
    modalities: list[dict[str, Any]] | None = None,
    n_samples: PositiveInt = 600,
    n_classes: Annotated[int, Range(lo=2)] = 4,
    noise: NonNegative = 1.2,
    seed: NonNegativeInt = 0,
    val_fraction: Fraction = 0.2,
    test_fraction: Fraction = 0.2,
    ood_shift: NonNegative = 0.0,
    task: str = CLASSIFICATION,
    outputs: PositiveInt | None = None,
) -> MultimodalDataset:
    """Generate a dataset; every draw comes from one generator seeded with ``seed``. With
    ``ood_shift`` > 0, ``n_samples // 4`` more rows whose latents are moved by ``ood_shift``
    along a random direction form the held-out group ``ood`` (a covariate shift). ``task``:
    classification, regression or multilabel; ``outputs``: the regression's targets (default 1)
    or the labels (default 5); ``n_classes`` is the number of latent clusters either way."""
    if n_classes < 2 or n_samples < 5 * n_classes:
        raise MMBenchError("synthetic data needs n_classes >= 2 and n_samples >= 5 * n_classes")
    if task not in TASKS:
        raise MMBenchError(f"synthetic: task must be one of {', '.join(TASKS)}, got {str(task)[:40]!r}")
    if outputs is not None and (task == CLASSIFICATION or outputs < 1):
        raise MMBenchError("synthetic: outputs (targets or labels, >= 1) applies to the regression and "
                           "multilabel tasks; classification has n_classes")
    if ood_shift < 0:
        raise MMBenchError(f"synthetic: ood_shift must be >= 0, got {ood_shift}")
    mods = _parse_modalities(modalities)
    _check_size(mods, n_samples)
    rng = np.random.default_rng(seed)
    labels = np.arange(n_samples) % n_classes
    rng.shuffle(labels)
    means = rng.normal(size=(n_classes, LATENT_DIM)) * 2.0
    z = means[labels] + noise * rng.normal(size=(n_samples, LATENT_DIM))
    arrays, weights = _observe_all(mods, z, rng, {})
    specs = tuple((m if m.copy_of is None else _copied(m, mods)).spec() for m in mods)
    idx = stratified_split(labels, val_fraction, test_fraction, seed)
    target = TaskTargets.draw(task, outputs, z, seed)
    y = target(labels, z)
    splits = {s: _split(arrays, y, getattr(idx, s)) for s in ("train", "val", "test")}
    groups = {}
    if ood_shift > 0:  # drawn after everything else: the in-distribution rows do not change
        ood_labels = np.arange(n_samples // 4) % n_classes
        direction = rng.normal(size=LATENT_DIM)
        z_ood = (means[ood_labels] + noise * rng.normal(size=(len(ood_labels), LATENT_DIM))
                 + ood_shift * direction / np.linalg.norm(direction))
        ood, _ = _observe_all(mods, z_ood, rng, weights)
        groups["ood"] = _split(ood, target(ood_labels, z_ood), np.arange(len(ood_labels)))
    width = n_classes if task == CLASSIFICATION else target.width
    return MultimodalDataset("synthetic", specs, width, **splits, groups=groups, task=task)


@dataclass(frozen=True)
class TaskTargets:
    """What a synthetic row's label is: its class, or targets / labels computed from its latent
    with ``weights`` [LATENT_DIM, outputs] (and multilabel ``thresholds``)."""

    task: str
    weights: np.ndarray | None = None
    thresholds: np.ndarray | None = None

    @classmethod
    def draw(cls, task: str, outputs: int | None, z: np.ndarray, seed: int) -> TaskTargets:
        """The task's weights from a generator of their own (the inputs stay those of ``seed``);
        multilabel thresholds at latent quantiles giving prevalences from 15% to 50%."""
        if task == CLASSIFICATION:
            return cls(task)
        width = outputs or (1 if task == REGRESSION else 5)
        w = np.random.default_rng([seed, 7919]).normal(size=(LATENT_DIM, width))
        w /= np.linalg.norm(w, axis=0, keepdims=True)
        if task == REGRESSION:
            return cls(task, w / z.std())
        prevalence = np.linspace(0.15, 0.5, width)
        score = z @ w
        return cls(task, w, np.array([np.quantile(score[:, j], 1 - p) for j, p in enumerate(prevalence)]))

    @property
    def width(self) -> int:
        return 0 if self.weights is None else int(self.weights.shape[1])

    def __call__(self, labels: np.ndarray, z: np.ndarray) -> np.ndarray:
        if self.weights is None:
            return labels
        score = z @ self.weights
        if self.thresholds is None:
            return (3.0 * np.tanh(score)).astype(np.float32)
        return (score > self.thresholds).astype(np.float32)


def _observe_all(mods: list[SyntheticModality], z: np.ndarray, rng: np.random.Generator,
                 weights: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Every modality's values for latents ``z`` (copies last), and the weights used."""
    arrays: dict[str, np.ndarray] = {}
    used = dict(weights)
    for m in mods:
        if m.copy_of is None:
            arrays[m.name], used[m.name] = _generate(m, z, rng, weights.get(m.name))
    for m in mods:
        if m.copy_of is not None:
            arrays[m.name] = arrays[m.copy_of].copy()
    return arrays, used


def _split(arrays: dict[str, np.ndarray], labels: np.ndarray, rows: np.ndarray) -> Split:
    return Split({k: torch.as_tensor(v[rows]) for k, v in arrays.items()}, torch.as_tensor(labels[rows]))


def _copied(m: SyntheticModality, mods: list[SyntheticModality]) -> SyntheticModality:
    source = next(s for s in mods if s.name == m.copy_of)
    return SyntheticModality(m.name, source.kind, source.shape, source.informativeness,
                             source.vocab_size, m.copy_of)
