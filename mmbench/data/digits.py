"""``digits_cross``: one handwritten-digit image modality from two real sources (cross-source shift).

mfeat's pixel view (15x16 pixel averages of 2x3 windows, values 0-6, Dutch utility maps) and
scikit-learn's ``load_digits`` (UCI optdigits: 8x8 counts of 4x4 blocks, values 0-16, US
Census forms) are both scaled to [0, 1] by their value range and resampled (bilinear) to a
common 16x16 grid. A model is trained on one source (split seeded and stratified) and evaluated
on its test split and on all rows of the other source, held out as an evaluation group.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from mmbench.data.base import ModalityKind, ModalitySpec, MultimodalDataset, Split
from mmbench.data.mfeat import find_data_dir, read_views
from mmbench.data.splits import stratified_split
from mmbench.errors import MMBenchError
from mmbench.registry import DATASETS

GRID = (16, 16)
SOURCES = ("mfeat", "optdigits")


def source_images(source: str, data_dir: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """All images of ``source`` as [N, 1, 16, 16] floats in [0, 1], and their labels."""
    if source == "mfeat":
        views, labels = read_views(find_data_dir(data_dir))
        raw, max_value = views["pix"].reshape(-1, 1, 16, 15), 6.0
    else:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        raw, labels, max_value = bunch.images.reshape(-1, 1, 8, 8), bunch.target, 16.0
    x = torch.as_tensor(np.asarray(raw) / max_value, dtype=torch.float32)
    x = F.interpolate(x, size=GRID, mode="bilinear", align_corners=False).clamp(0.0, 1.0)
    return x, torch.as_tensor(np.asarray(labels), dtype=torch.int64)


@DATASETS.register("digits_cross", description="digit images: mfeat vs sklearn optdigits, 16x16")
def load_digits_cross(train_on: str = "mfeat", split_seed: int = 0, val_fraction: float = 0.2,
                      test_fraction: float = 0.2, data_dir: str | None = None) -> MultimodalDataset:
    """Train/val/test from source ``train_on``; the other source is the held-out group."""
    if train_on not in SOURCES:
        raise MMBenchError(f"digits_cross: train_on must be one of {', '.join(SOURCES)}, got {train_on!r}")
    other = SOURCES[1 - SOURCES.index(train_on)]
    x, y = source_images(train_on, data_dir)
    idx = stratified_split(y.numpy(), val_fraction, test_fraction, split_seed)
    part = {k: Split({"img": x[getattr(idx, k)]}, y[getattr(idx, k)]) for k in ("train", "val", "test")}
    held_x, held_y = source_images(other, data_dir)
    spec = ModalitySpec("img", ModalityKind.IMAGE, (1, *GRID), 0.0, 1.0)
    return MultimodalDataset("digits_cross", (spec,), 10, **part, groups={other: Split({"img": held_x}, held_y)})
