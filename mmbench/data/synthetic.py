"""A seeded generator of multimodal data with known structure, for every task.

Every sample has a class ``y`` and a latent vector ``z = mu_y + noise * e``. Modality ``m`` sees
``a_m * z + (1 - a_m) * u_m`` where ``u_m`` is independent noise and ``a_m`` its
*informativeness* (1 = as informative as the latent, 0 = independent of the class), pushed through
a fixed random projection into its kind's shape. ``copy_of`` makes a modality an exact copy of
another (fully redundant). Continuous kinds lie in [0, 1]; tokens are drawn from a
class-dependent categorical distribution over ``vocab_size`` ids.

A tokens modality may put its signal in a few places and pad its rows (each key optional; without
them the data are those of earlier versions, draw for draw):

- ``key_positions: K``: only K positions, the same for every row, carry the class-dependent
  draw; every other position holds ids drawn uniformly from the vocabulary (never the pad id),
  independent of the class. The positions are drawn once per dataset by a generator of their own
  (seeded with ``seed`` and the modality's name) among the first ``min_length`` positions, so
  every row's text holds all of them; the dataset's ``notes`` name them
  (:meth:`SyntheticModality.key_index` computes them).
- ``pad_id: P``: the id reserved for padding: drawn ids never equal it (the categorical runs over
  the other ``vocab_size - 1`` ids, shifted past P), and the spec declares it.
- ``min_length: L`` (with ``pad_id``; default ``ceil(T / 2)``): each row's text is ``L`` to ``T``
  ids long (uniform), and the positions after it hold ``pad_id``.

The noise ids and lengths come from generators of their own, so every other modality is that of
the same seed without these keys, and so are the class-dependent ids at the key positions when
there is no ``pad_id`` (with one, the same uniform draws pick among the other ids).

The ``task`` decides what is predicted: the class (``classification``); ``outputs`` targets
``3 tanh(z w_j / (||w_j|| sd(z)))`` in [-3, 3], like sentiment scores (``regression``); or ``outputs``
labels ``[z v_j > t_j]`` whose thresholds give prevalences from 15% to 50% (``multilabel``).
Either way a modality carries as much of the signal as its informativeness, and the task's
weights come from their own generator, so the inputs are those of the classification dataset
with the same seed.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace
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
#: The optional keys of a tokens modality (issue 27): where its signal sits, and its padding.
TOKEN_KEYS = ("key_positions", "pad_id", "min_length")
#: Streams of the generators of their own: the key positions, and the noise ids and lengths.
KEY_STREAM, LAYOUT_STREAM = 4099, 4111

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
    key_positions: int | None = None
    pad_id: int | None = None
    min_length: int | None = None

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
            ModalitySpec(spec.name, spec.kind, spec.shape)  # the shape's rank must fit the kind
        except ValueError as exc:
            raise MMBenchError(f"synthetic modality '{name}': {exc}") from None
        spec._check_token_keys(name)
        return spec

    def _check_token_keys(self, name: str) -> None:
        """``key_positions``, ``pad_id`` and ``min_length``: integers, on a tokens modality, in range."""
        given = [k for k in TOKEN_KEYS if getattr(self, k) is not None]
        if not given:
            return
        if self.copy_of is not None:
            raise MMBenchError(f"synthetic modality '{name}': {', '.join(given)} cannot be set on a copy "
                               f"(copy_of takes them from '{self.copy_of}'); set them there")
        if self.kind is not ModalityKind.TOKENS:
            raise MMBenchError(f"synthetic modality '{name}': only a tokens modality takes "
                               f"{', '.join(given)}, not a {self.kind.value} one; drop them or use kind: tokens")
        for key in given:
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int):
                raise MMBenchError(f"synthetic modality '{name}': {key} must be an integer, got {value!r}")
        length = self.shape[0]
        if self.pad_id is not None and not 0 <= self.pad_id < self.vocab_size:
            raise MMBenchError(f"synthetic modality '{name}': pad_id must be in [0, {self.vocab_size}) "
                               f"(vocab_size {self.vocab_size}), got {self.pad_id}")
        if self.pad_id is not None and self.vocab_size < 3:
            raise MMBenchError(f"synthetic modality '{name}': pad_id needs vocab_size >= 3 (two ids besides "
                               f"the pad id), got {self.vocab_size}")
        if self.min_length is not None and self.pad_id is None:
            raise MMBenchError(f"synthetic modality '{name}': min_length needs pad_id (the id after a "
                               "row's text); set pad_id or drop min_length")
        if self.min_length is not None and not 1 <= self.min_length <= length:
            raise MMBenchError(f"synthetic modality '{name}': min_length must be in [1, {length}] "
                               f"(the sequence length), got {self.min_length}")
        if self.key_positions is not None and not 1 <= self.key_positions <= self.shortest:
            within = "min_length" if self.pad_id is not None else "the sequence length"
            raise MMBenchError(f"synthetic modality '{name}': key_positions must be in [1, {self.shortest}] "
                               f"({within}: every row's text holds them), got {self.key_positions}")

    @property
    def shortest(self) -> int:
        """The fewest ids a row's text has: ``min_length`` (default ``ceil(T / 2)``) with a pad
        id, else ``T``."""
        length = self.shape[0]
        if self.pad_id is None:
            return length
        return self.min_length if self.min_length is not None else (length + 1) // 2

    def key_index(self, seed: int) -> np.ndarray | None:
        """The sorted positions that carry the class signal (``key_positions`` of the first
        ``shortest``), drawn by a generator of their own; None without ``key_positions``."""
        if self.key_positions is None:
            return None
        rng = np.random.default_rng([seed, KEY_STREAM, zlib.crc32(self.name.encode())])
        return np.sort(rng.choice(self.shortest, size=self.key_positions, replace=False))

    def spec(self) -> ModalitySpec:
        hi = float(self.vocab_size - 1) if self.kind is ModalityKind.TOKENS else 1.0
        return ModalitySpec(self.name, self.kind, self.shape, 0.0, hi, pad_id=self.pad_id)


def _generate(mod: SyntheticModality, z: np.ndarray, rng: np.random.Generator,
              weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Draw modality values for latents ``z`` (one row per sample), with the modality's
    embedding / projection ``weights`` (drawn here, after the row noise, when not given)."""
    a = mod.informativeness
    latent = a * z + (1.0 - a) * rng.normal(size=z.shape) * z.std(axis=0, keepdims=True)
    if mod.kind is ModalityKind.TOKENS:
        embedding = rng.normal(size=(mod.vocab_size, LATENT_DIM)) if weights is None else weights
        # with a pad id, the categorical runs over the other ids, shifted past it (same draws)
        drawn = embedding if mod.pad_id is None else np.delete(embedding, mod.pad_id, axis=0)
        logits = latent @ drawn.T
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        cdf = probs.cumsum(axis=1)
        draws = rng.random(size=(len(z), mod.shape[0], 1))
        tokens = (draws > cdf[:, None, :]).sum(axis=2)
        tokens = np.minimum(tokens, len(drawn) - 1)
        if mod.pad_id is not None:
            tokens += tokens >= mod.pad_id
        return tokens.astype(np.int64), embedding
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
    or the labels (default 5); ``n_classes`` is the number of latent clusters either way. A tokens
    modality may add ``key_positions``, ``pad_id`` and ``min_length`` (see the module's docstring)."""
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
    arrays, weights = _observe_all(mods, z, rng, {}, seed, part=0)
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
        ood, _ = _observe_all(mods, z_ood, rng, weights, seed, part=1)
        groups["ood"] = _split(ood, target(ood_labels, z_ood), np.arange(len(ood_labels)))
    width = n_classes if task == CLASSIFICATION else target.width
    return MultimodalDataset("synthetic", specs, width, **splits, groups=groups, task=task,
                             notes=_layout_notes(mods, seed))


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
                 weights: dict[str, np.ndarray], seed: int,
                 part: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Every modality's values for latents ``z`` (copies last), and the weights used. ``part``
    (0: the main rows, 1: the ood group) seeds the noise ids and lengths of token modalities."""
    arrays: dict[str, np.ndarray] = {}
    used = dict(weights)
    for m in mods:
        if m.copy_of is None:
            arrays[m.name], used[m.name] = _generate(m, z, rng, weights.get(m.name))
            arrays[m.name] = _layout(m, arrays[m.name], seed, part)
    for m in mods:
        if m.copy_of is not None:
            arrays[m.name] = arrays[m.copy_of].copy()
    return arrays, used


def _split(arrays: dict[str, np.ndarray], labels: np.ndarray, rows: np.ndarray) -> Split:
    return Split({k: torch.as_tensor(v[rows]) for k, v in arrays.items()}, torch.as_tensor(labels[rows]))


def _layout(mod: SyntheticModality, ids: np.ndarray, seed: int, part: int) -> np.ndarray:
    """Token ids with uniform noise ids outside the key positions and ``pad_id`` after each row's
    length, from a generator of their own (``ids`` unchanged without those keys)."""
    keys = mod.key_index(seed)
    if mod.kind is not ModalityKind.TOKENS or (keys is None and mod.pad_id is None):
        return ids
    side = np.random.default_rng([seed, LAYOUT_STREAM, zlib.crc32(mod.name.encode()), part])
    out = ids.copy()
    rows, length = out.shape
    if keys is not None:
        noise = side.integers(0, mod.vocab_size - (mod.pad_id is not None), size=(rows, length))
        if mod.pad_id is not None:
            noise += noise >= mod.pad_id
        elsewhere = np.ones(length, dtype=bool)
        elsewhere[keys] = False
        out[:, elsewhere] = noise[:, elsewhere]
    if mod.pad_id is not None:
        lengths = side.integers(mod.shortest, length + 1, size=rows)
        out[np.arange(length)[None, :] >= lengths[:, None]] = mod.pad_id
    return out


def _layout_notes(mods: list[SyntheticModality], seed: int) -> tuple[str, ...]:
    """One line per token modality with key positions or padding: where its signal and pad are."""
    notes = []
    for m in mods:
        keys = m.key_index(seed) if m.copy_of is None else None
        if keys is not None:
            notes.append(f"synthetic modality '{m.name}': the class signal sits at positions "
                         f"{', '.join(str(int(k)) for k in keys)} (key_positions); the others hold "
                         "uniform noise ids")
        if m.copy_of is None and m.pad_id is not None:
            notes.append(f"synthetic modality '{m.name}': rows hold {m.shortest} to {m.shape[0]} ids, "
                         f"then pad id {m.pad_id}")
    return tuple(notes)


def _copied(m: SyntheticModality, mods: list[SyntheticModality]) -> SyntheticModality:
    """A copy's generator settings: its source's, under its own name."""
    source = next(s for s in mods if s.name == m.copy_of)
    return replace(source, name=m.name, copy_of=m.copy_of)
