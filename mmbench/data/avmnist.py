"""``avmnist``: AV-MNIST (MNIST digits paired with spoken-digit spectrograms) in MultiBench's
layout: ``image/{train,test}_data.npy`` (N x 784 pixels, 0-255), ``audio/{train,test}_data.npy``
(N x 112 x 112 spectrograms, 0-255) and ``{train,test}_labels.npy``. As in MultiBench, both
are divided by 255 and the last ``val_rows`` (5000) training rows are the validation split.
Files are read with ``allow_pickle=False``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmbench.data.base import ModalityKind, ModalitySpec, MultimodalDataset, Split
from mmbench.data.location import data_path, require
from mmbench.errors import MMBenchError
from mmbench.registry import DATASETS

SOURCE = ("AV-MNIST comes with MultiBench (github.com/pliang279/MultiBench, datasets/avmnist: "
          "the avmnist folder with image/, audio/ and the label files)")
SHAPES = {"image": (1, 28, 28), "audio": (1, 112, 112)}


def _load(folder, part: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    arrays = {}
    for name, shape in SHAPES.items():
        raw = np.load(require("avmnist", folder / name / f"{part}_data.npy", SOURCE), allow_pickle=False)
        if int(np.prod(raw.shape[1:])) != int(np.prod(shape)):
            raise MMBenchError(f"avmnist: {name}/{part}_data.npy has rows of shape {raw.shape[1:]}, "
                               f"expected {int(np.prod(shape))} values ({'x'.join(map(str, shape[1:]))})")
        arrays[name] = np.clip(raw.reshape(-1, *shape).astype(np.float32) / 255.0, 0.0, 1.0)
    labels = np.load(require("avmnist", folder / f"{part}_labels.npy", SOURCE), allow_pickle=False)
    if not len(labels) == len(arrays["image"]) == len(arrays["audio"]):
        raise MMBenchError(f"avmnist: the {part} files disagree on the number of rows")
    return arrays, labels.reshape(-1).astype(np.int64)


def _split(arrays: dict[str, np.ndarray], labels: np.ndarray, rows: slice) -> Split:
    return Split({k: torch.from_numpy(v[rows].copy()) for k, v in arrays.items()},
                 torch.from_numpy(labels[rows].copy()))


def write_fixture(root: Path, n_train: int = 60, n_test: int = 20, seed: int = 0) -> dict[str, Any]:
    """Small files in exactly MultiBench's layout under ``root/avmnist`` (image N x 784 and
    audio N x 112 x 112 in 0-255, labels); returns the loader parameters that read them.
    Tests and plugin authors use it; the registry's contract test loads it."""
    rng = np.random.default_rng(seed)
    folder = root / "avmnist"
    for part, n in (("train", n_train), ("test", n_test)):
        labels = np.arange(n) % 10
        image = rng.integers(0, 40, (n, 784)).astype(np.float32)
        image[np.arange(n), labels * 70] = 255.0  # a label-dependent bright pixel
        for name in SHAPES:
            (folder / name).mkdir(parents=True, exist_ok=True)
        np.save(folder / "image" / f"{part}_data.npy", image)
        np.save(folder / "audio" / f"{part}_data.npy", rng.integers(0, 255, (n, 112, 112)).astype(np.float32))
        np.save(folder / f"{part}_labels.npy", labels)
    return {"data_dir": str(folder), "val_rows": 10}


@DATASETS.register("avmnist", description="AV-MNIST from MultiBench's files: digit image + audio spectrogram",
                   fixture=write_fixture)
def load_avmnist(data_dir: str | None = None, val_rows: int = 5000,
                 data_root: str | None = None) -> MultimodalDataset:
    """Load AV-MNIST from ``data_dir`` (else ``<data root>/avmnist``)."""
    folder = data_path("avmnist", data_dir, data_root, "avmnist", SOURCE)
    train, train_labels = _load(folder, "train")
    test, test_labels = _load(folder, "test")
    if not 0 < val_rows < len(train_labels):
        raise MMBenchError(f"avmnist: val_rows must be between 1 and {len(train_labels) - 1}, got {val_rows}")
    cut = len(train_labels) - val_rows
    specs = tuple(ModalitySpec(n, ModalityKind.IMAGE, s, 0.0, 1.0) for n, s in SHAPES.items())
    return MultimodalDataset("avmnist", specs, 10, _split(train, train_labels, slice(0, cut)),
                             _split(train, train_labels, slice(cut, None)), _split(test, test_labels, slice(None)))
