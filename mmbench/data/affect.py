"""``mosi``, ``mosei``, ``sarcasm``, ``humor``: MultiBench's affect pickles.

Each file is a pickle of ``{'train', 'valid', 'test'}``, each a mapping with ``'vision'``,
``'audio'``, ``'text'`` (arrays [N, T, D]; MOSI raw: T = 50 and D = 35, 74, 300) and
``'labels'`` (continuous sentiment in [-3, 3], shape [N, 1] or [N, 1, 1]). Pickles can run code
when loaded, so they are read only under ``--trust-pickle``. As in MultiBench, audio ``-inf``
becomes 0. Each feature is min-max scaled on the training rows (clipped to [0, 1] elsewhere),
and each modality becomes a ``sequence`` [D, T]. Labels: ``binary`` (label > 0, the default) or
``7class`` (rounded, clipped to [-3, 3], shifted to 0..6), both classification; or ``regression``:
the continuous sentiment itself as a float32 target [N, 1] (``task="regression"``, ``n_classes=1``),
MultiBench's protocol for MOSI and MOSEI (trained with L1; reported as MAE, correlation, Acc-2, F1
and Acc-7, which the metrics derive from the stored outputs and targets). Regression targets are
kept as stored (MOSI / MOSEI: within [-3, 3]); NaN or inf is refused.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmbench.data.base import ModalityKind, ModalitySpec, MultimodalDataset, Split
from mmbench.data.location import data_path, require
from mmbench.data.pickles import load_pickle
from mmbench.data.splits import MinMaxScaler
from mmbench.data.tasks import CLASSIFICATION, REGRESSION
from mmbench.errors import MMBenchError
from mmbench.registry import DATASETS

MODALITIES = ("vision", "audio", "text")
LABELS = ("binary", "7class", "regression")
#: the number of output columns (classes, or targets of the regression) for each ``labels``
WIDTH = {"binary": 2, "7class": 7, "regression": 1}
FILES = {"mosi": "mosi_raw.pkl", "mosei": "mosei_raw.pkl", "sarcasm": "sarcasm.pkl", "humor": "humor.pkl"}
SOURCE = ("the affect pickles come with MultiBench (github.com/pliang279/MultiBench, "
          "datasets/affect: mosi_raw.pkl, mosei_raw.pkl, sarcasm.pkl, humor.pkl)")


def classes(labels: np.ndarray, mode: str) -> np.ndarray:
    """Class ids from continuous labels: ``binary`` (> 0) or ``7class`` (round, clip, + 3)."""
    y = np.asarray(labels, dtype=np.float64).reshape(len(labels), -1)[:, 0]
    if mode == "binary":
        return (y > 0).astype(np.int64)
    return (np.clip(np.round(y), -3, 3) + 3).astype(np.int64)


def targets(name: str, labels: np.ndarray, mode: str, split: str) -> np.ndarray:
    """What the model predicts: class ids (:func:`classes`) or, for ``regression``, the
    continuous sentiment as float32 [N, 1]; a non-finite regression target is a one-line error."""
    if mode != "regression":
        return classes(labels, mode)
    y = np.asarray(labels, dtype=np.float32).reshape(len(labels), -1)[:, :1]
    bad = np.flatnonzero(~np.isfinite(y[:, 0]))
    if len(bad):
        raise MMBenchError(f"{name}: the '{split}' labels hold NaN or inf (row {int(bad[0])}); "
                           "regression needs finite sentiment scores")
    return np.ascontiguousarray(y)


def _arrays(name: str, part: dict[str, Any], split: str) -> dict[str, np.ndarray]:
    out = {}
    for m in MODALITIES:
        if m not in part:
            raise MMBenchError(f"{name}: the '{split}' split has no '{m}' array; expected MultiBench's "
                               "affect format ({'train','valid','test'} -> vision/audio/text/labels)")
        x = np.asarray(part[m], dtype=np.float32)
        if x.ndim != 3:
            raise MMBenchError(f"{name}: {split}/{m} has shape {x.shape}, expected [N, T, D]")
        out[m] = np.where(np.isneginf(x), 0.0, x) if m == "audio" else x
    return out


def _load(name: str, path: str | None, data_root: str | None, labels: str,
          trust_pickle: bool) -> MultimodalDataset:
    if labels not in LABELS:
        raise MMBenchError(f"{name}: labels must be one of {', '.join(LABELS)}, got {labels!r}")
    file = require(name, data_path(name, path, data_root, FILES[name], SOURCE), SOURCE)
    raw = load_pickle(file, trust_pickle)
    parts = {s: raw.get(s) for s in ("train", "valid", "test")} if isinstance(raw, dict) else {}
    if any(v is None for v in parts.values()) or not parts:
        raise MMBenchError(f"{name}: {file} is not MultiBench's affect format (a dict with train, valid, test)")
    arrays = {s: _arrays(name, p, s) for s, p in parts.items()}
    scalers = {m: MinMaxScaler.fit(arrays["train"][m].reshape(-1, arrays["train"][m].shape[2])) for m in MODALITIES}
    splits = {s: _split(arrays[s], targets(name, parts[s]["labels"], labels, s), scalers) for s in parts}
    specs = tuple(ModalitySpec(m, ModalityKind.SEQUENCE, tuple(splits["train"].inputs[m].shape[1:]), 0.0, 1.0)
                  for m in MODALITIES)
    return MultimodalDataset(name, specs, WIDTH[labels], splits["train"], splits["valid"], splits["test"],
                             task=REGRESSION if labels == "regression" else CLASSIFICATION)


def _split(arrays: dict[str, np.ndarray], y: np.ndarray, scalers: dict[str, MinMaxScaler]) -> Split:
    inputs = {}
    for m, x in arrays.items():
        scaled = scalers[m].transform(x.reshape(-1, x.shape[2])).reshape(x.shape)
        inputs[m] = torch.from_numpy(np.ascontiguousarray(scaled.transpose(0, 2, 1), dtype=np.float32))
    return Split(inputs, torch.from_numpy(y))


def write_fixture(root: Path, name: str = "mosi", sizes: tuple[int, int, int] = (40, 12, 12),
                  seed: int = 0) -> dict[str, Any]:
    """A small pickle in exactly MultiBench's affect format (vision/audio/text [N, 50, D] with
    MOSI's D, padded audio at -inf, continuous labels [N, 1]) at ``root/<its file name>``;
    returns the loader parameters that read it (trusting the file, which this wrote)."""
    rng = np.random.default_rng(seed)
    data = {}
    for split, n in zip(("train", "valid", "test"), sizes, strict=True):
        labels = rng.uniform(-3, 3, (n, 1)).astype(np.float32)
        audio = rng.normal(size=(n, 50, 74)).astype(np.float32)
        audio[:, :3, :] = -np.inf  # MultiBench's padded audio
        data[split] = {"vision": rng.normal(size=(n, 50, 35)).astype(np.float32) + labels[:, :, None],
                       "audio": audio, "text": rng.normal(size=(n, 50, 300)).astype(np.float32),
                       "labels": labels, "id": np.arange(n)}
    path = root / FILES[name]
    path.write_bytes(pickle.dumps(data))
    return {"path": str(path), "trust_pickle": True}


def _register(name: str) -> Callable[..., MultimodalDataset]:
    def loader(path: str | None = None, labels: str = "binary", data_root: str | None = None,
               trust_pickle: bool = False) -> MultimodalDataset:
        return _load(name, path, data_root, labels, trust_pickle)

    loader.__doc__ = f"MultiBench's {FILES[name]} (pickle: needs --trust-pickle): vision, audio, text sequences."
    DATASETS.register(name, loader, description=f"{name} from MultiBench's affect pickle ({FILES[name]})",
                      fixture=lambda root: write_fixture(root, name), tasks=("classification", "regression"))
    return loader


for _name in FILES:
    _register(_name)
