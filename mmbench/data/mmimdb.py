"""``mmimdb``: MM-IMDb (Arevalo et al. 2017) as MultiBench ships it, ``multimodal_imdb.hdf5``.

The file (written by the MM-IMDb authors' ``make_dataset.py``, github.com/johnarevalo/gmu-mmimdb;
MultiBench's README links it) holds one row per movie in HDF5 datasets, of which this loader reads:

- ``features``: float32 ``[N, 300]``, the mean word2vec vector of the plot (modality ``text``);
- ``vgg_features``: float32 ``[N, 4096]``, VGG-16 features of the poster (modality ``image``);
- ``genres``: int32 ``[N, 23]``, 0/1 per genre (names in its ``target_names`` attribute, JSON).

(``images``, ``sequences``, ``three_grams``, ``word_grams`` and ``imdb_ids`` are not read.)

**Split.** MultiBench's ``datasets/imdb/get_data.py`` (checked) fixes train rows 0-15551,
val 15552-18159 and test 18160-25958 (15552 / 2608 / 7799 rows, the MM-IMDb paper's split). The
file also declares its split in Fuel's ``split`` attribute (``attrs['split']``, one record per
split and source with the fields ``split``, ``source``, ``start``, ``stop``; splits ``train``,
``dev``, ``test``), which ``make_dataset.py`` writes as contiguous ranges of the paper's split
sizes, i.e. the same rows (not checked against the real file, which was not at hand: a note says
when a file of 25959 rows declares other ranges). The loader reads that attribute (the records of
source ``features``; ``val`` or ``valid`` may name the validation split) and falls back to
MultiBench's fixed boundaries for a file without one, which must then have MultiBench's 25959
rows. Reading the attribute is what lets a small file in this layout (:func:`write_fixture`) be
split at all.

**Scaling and labels.** Each feature of ``text`` and ``image`` (kind ``vector``) is min-max
scaled on the training rows loaded (clipped to [0, 1] elsewhere). The task is ``multilabel``:
labels are float32 0/1 ``[N, K]`` with ``n_classes`` = K genre columns; a value other than 0 or
1 is refused. ``max_rows`` keeps the first ``max_rows`` rows of each split (and scales on the
kept training rows), for quick runs; the dataset's notes say so. h5py is imported only here
(``pip install 'mmbench[mmimdb]'``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmbench.bounds import PositiveInt
from mmbench.data.base import ModalityKind, ModalitySpec, MultimodalDataset, Split
from mmbench.data.files import MAX_BYTES_ENV, array_limit
from mmbench.data.location import data_path, require
from mmbench.data.splits import MinMaxScaler
from mmbench.data.tasks import MULTILABEL
from mmbench.errors import MMBenchError
from mmbench.registry import DATASETS

FILE = "multimodal_imdb.hdf5"
SOURCE = ("the file comes with MM-IMDb (MultiBench's README links it: "
          "http://lisi1.unal.edu.co/mmimdb/multimodal_imdb.hdf5)")
INSTALL = "pip install 'mmbench[mmimdb]'"
#: modality name -> the HDF5 dataset it is read from
MODALITIES = {"text": "features", "image": "vgg_features"}
LABELS = "genres"
#: MultiBench's fixed split (datasets/imdb/get_data.py): [start, stop) rows of the file
MULTIBENCH_SPLIT = {"train": (0, 15552), "val": (15552, 18160), "test": (18160, 25959)}
MULTIBENCH_ROWS = 25959
#: names a Fuel split attribute may give each split
SPLIT_NAMES = {"train": ("train",), "val": ("dev", "val", "valid"), "test": ("test",)}


def _h5py() -> Any:
    """The h5py module, or a one-line error saying how to install it."""
    try:
        import h5py
    except ImportError:
        raise MMBenchError(f"mmimdb: reading {FILE} needs h5py, which is not installed; {INSTALL}") from None
    return h5py


def _text(value: Any) -> str:
    """A Fuel string field (bytes) as text."""
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _datasets(f: Any, file: Path) -> dict[str, Any]:
    """The HDF5 datasets read: 2-D, with one row count; a one-line error otherwise."""
    found = {}
    for name in (*MODALITIES.values(), LABELS):
        ds = f.get(name)
        if ds is None or not hasattr(ds, "shape"):
            raise MMBenchError(f"mmimdb: {file} has no '{name}' dataset; expected MultiBench's {FILE} "
                               f"(HDF5 datasets features, vgg_features, genres); {SOURCE}")
        if len(ds.shape) != 2 or ds.shape[1] < 1:
            raise MMBenchError(f"mmimdb: {file}: '{name}' has shape {tuple(ds.shape)}, expected [rows, columns]")
        found[name] = ds
    rows = {name: ds.shape[0] for name, ds in found.items()}
    if len(set(rows.values())) != 1:
        raise MMBenchError(f"mmimdb: {file}: the datasets have different row counts "
                           f"({', '.join(f'{k} {v}' for k, v in rows.items())}); each needs one row per movie")
    return found


def _fuel_split(f: Any, file: Path) -> dict[str, tuple[int, int]] | None:
    """[start, stop) of train / val / test from Fuel's ``split`` attribute, or None without one."""
    if "split" not in f.attrs:
        return None
    records = np.asarray(f.attrs["split"])
    names = records.dtype.names or ()
    if not {"split", "start", "stop"} <= set(names):
        raise MMBenchError(f"mmimdb: {file}: the 'split' attribute has fields {list(names)}, expected Fuel's "
                           "split array (split, source, start, stop); remove it to use MultiBench's fixed split")
    if "source" in names:
        records = records[[_text(s) == MODALITIES["text"] for s in records["source"]]]
    bounds = {}
    for split, aliases in SPLIT_NAMES.items():
        hits = [r for r in records if _text(r["split"]) in aliases]
        if len(hits) != 1:
            raise MMBenchError(f"mmimdb: {file}: the 'split' attribute has {len(hits)} records of split "
                               f"{'/'.join(aliases)} for source 'features', expected 1")
        bounds[split] = (int(hits[0]["start"]), int(hits[0]["stop"]))
    return bounds


def split_bounds(f: Any, file: Path, rows: int) -> tuple[dict[str, tuple[int, int]], str]:
    """[start, stop) rows of train / val / test and where they come from: the file's split
    attribute, else MultiBench's fixed split (for a file of its 25959 rows)."""
    bounds = _fuel_split(f, file)
    origin = "the file's split attribute"
    if bounds is None:
        if rows != MULTIBENCH_ROWS:
            raise MMBenchError(f"mmimdb: {file} has {rows} rows and no 'split' attribute; MultiBench's fixed split "
                               f"needs its {MULTIBENCH_ROWS} rows: use the original file or add a Fuel split attribute")
        bounds, origin = dict(MULTIBENCH_SPLIT), "MultiBench's fixed split"
    for split, (start, stop) in bounds.items():
        if not 0 <= start < stop <= rows:
            raise MMBenchError(f"mmimdb: {file}: {origin} gives {split} rows [{start}, {stop}), outside the "
                               f"file's {rows} rows or empty; every split needs rows")
    ordered = sorted(bounds.items(), key=lambda kv: kv[1])
    for (a, (_, stop)), (b, (start, _)) in zip(ordered, ordered[1:]):
        if start < stop:
            raise MMBenchError(f"mmimdb: {file}: {origin} lets {a} and {b} share rows; splits must not overlap")
    return bounds, origin


def _check_size(ds: Any, rows: int, file: Path) -> None:
    """One line when ``rows`` rows of ``ds`` as float32 would exceed the array byte limit."""
    size = rows * int(ds.shape[1]) * 4
    if size > array_limit():
        raise MMBenchError(f"mmimdb: {file}: '{ds.name.lstrip('/')}' would take {size:,} bytes as float32, more "
                           f"than the limit of {array_limit():,} (${MAX_BYTES_ENV} raises it, max_rows reads fewer)")


def _features(ds: Any, start: int, stop: int, file: Path) -> np.ndarray:
    """Rows [start, stop) of a feature dataset as float32; NaN or inf is a one-line error."""
    x = np.asarray(ds[start:stop], dtype=np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        row = start + int(np.flatnonzero(bad.any(axis=1))[0])
        raise MMBenchError(f"mmimdb: {file}: '{ds.name.lstrip('/')}' holds NaN or inf (row {row}); "
                           "features must be finite numbers")
    return x


def _genres(ds: Any, start: int, stop: int, file: Path) -> np.ndarray:
    """Rows [start, stop) of the genres as float32 0/1; any other value is a one-line error."""
    y = np.asarray(ds[start:stop])
    bad = ~((y == 0) | (y == 1))
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise MMBenchError(f"mmimdb: {file}: genres hold {y[row, col].item()!r} (row {start + int(row)}, "
                           f"column {int(col)}); each genre must be 0 or 1 (MultiBench's multilabel format)")
    return y.astype(np.float32)


def _notes(bounds: dict[str, tuple[int, int]], origin: str, kept: dict[str, tuple[int, int]],
           n_genres: int, rows: int) -> tuple[str, ...]:
    """What the loader did: the split's origin and sizes (and whether a file of MultiBench's
    size is split otherwise), and the rows max_rows kept."""
    sizes = ", ".join(f"{s} {b - a}" for s, (a, b) in bounds.items())
    notes = [f"mmimdb: split from {origin} (rows: {sizes}); {n_genres} genres"]
    if rows == MULTIBENCH_ROWS and bounds != MULTIBENCH_SPLIT:
        notes.append("mmimdb: the file's split differs from MultiBench's fixed one (train rows 0-15551, val "
                     "15552-18159, test 18160-25958); results are not comparable with MultiBench's")
    if kept != bounds:
        notes.append("mmimdb: max_rows keeps the first rows of each split (" +
                     ", ".join(f"{s} {b - a} of {bounds[s][1] - bounds[s][0]}" for s, (a, b) in kept.items()) +
                     "); min-max statistics come from the kept training rows")
    return tuple(notes)


def load_mmimdb(path: str | None = None, data_root: str | None = None,
                max_rows: PositiveInt | None = None) -> MultimodalDataset:
    """MultiBench's multimodal_imdb.hdf5: text (plot word2vec) and image (poster VGG) vectors,
    multilabel genres; ``max_rows`` keeps the first rows of each split."""
    if max_rows is not None and (isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1):
        raise MMBenchError(f"mmimdb: max_rows must be a positive integer or none, got {repr(max_rows)[:40]}")
    h5py = _h5py()
    file = require("mmimdb", data_path("mmimdb", path, data_root, FILE, SOURCE), SOURCE)
    try:
        handle = h5py.File(file, "r")
    except OSError as exc:
        raise MMBenchError(f"mmimdb: cannot read {file} as HDF5 ({str(exc).splitlines()[0][:120]}); "
                           f"expected MultiBench's {FILE}") from None
    with handle as f:
        found = _datasets(f, file)
        rows = int(found[LABELS].shape[0])
        bounds, origin = split_bounds(f, file, rows)
        kept = {s: (a, b if max_rows is None else min(b, a + max_rows)) for s, (a, b) in bounds.items()}
        for name in MODALITIES.values():
            _check_size(found[name], sum(b - a for a, b in kept.values()), file)
        raw = {s: ({m: _features(found[d], a, b, file) for m, d in MODALITIES.items()},
                   _genres(found[LABELS], a, b, file)) for s, (a, b) in kept.items()}
    scalers = {m: MinMaxScaler.fit(raw["train"][0][m]) for m in MODALITIES}
    splits = {s: Split({m: torch.from_numpy(scalers[m].transform(x).astype(np.float32)) for m, x in inputs.items()},
                       torch.from_numpy(y)) for s, (inputs, y) in raw.items()}
    specs = tuple(ModalitySpec(m, ModalityKind.VECTOR, (found[d].shape[1],), 0.0, 1.0) for m, d in MODALITIES.items())
    n_genres = int(found[LABELS].shape[1])
    return MultimodalDataset("mmimdb", specs, n_genres, splits["train"], splits["val"], splits["test"],
                             notes=_notes(bounds, origin, kept, n_genres, rows), task=MULTILABEL)


def fuel_split_array(bounds: dict[str, tuple[int, int]], sources: list[str]) -> np.ndarray:
    """Fuel's split array (as ``H5PYDataset.create_split_array`` builds it) for contiguous
    ranges: one record per split and source, a null ``indices`` reference."""
    h5py = _h5py()
    names = {"train": "train", "val": "dev", "test": "test"}
    dtype = np.dtype([("split", "S5"), ("source", f"S{max(map(len, sources))}"), ("start", np.int64),
                      ("stop", np.int64), ("indices", h5py.ref_dtype), ("available", np.bool_), ("comment", "S1")])
    records = np.zeros(len(bounds) * len(sources), dtype=dtype)
    for i, ((split, (start, stop)), source) in enumerate((b, s) for b in bounds.items() for s in sources):
        records[i] = (names[split], source, start, stop, h5py.Reference(), True, b".")
    return records


def write_fixture(root: Path, sizes: tuple[int, int, int] = (48, 16, 16), dims: tuple[int, int] = (12, 20),
                  n_genres: int = 5, seed: int = 0) -> dict[str, Any]:
    """A small ``multimodal_imdb.hdf5`` at ``root`` in exactly MultiBench's layout (``features``
    and ``vgg_features`` float32, ``genres`` int32 0/1 with ``target_names``, Fuel's ``split``
    attribute): genres are thresholded latent factors that both feature sets are noisy linear
    views of (the image ones non-negative, as after a ReLU), so a model can learn them. Returns
    the loader parameters that read it."""
    h5py = _h5py()
    rng = np.random.default_rng(seed)
    n = sum(sizes)
    latent = rng.normal(size=(n, n_genres))
    genres = (latent + 0.3 * rng.normal(size=latent.shape) > 0.5).astype(np.int32)
    text = latent @ rng.normal(size=(n_genres, dims[0])) + 0.5 * rng.normal(size=(n, dims[0]))
    image = np.maximum(0.0, latent @ rng.normal(size=(n_genres, dims[1])) + 0.5 * rng.normal(size=(n, dims[1])))
    ends = np.cumsum(sizes)
    bounds = {"train": (0, int(ends[0])), "val": (int(ends[0]), int(ends[1])), "test": (int(ends[1]), n)}
    path = root / FILE
    with h5py.File(path, "w") as f:
        f.create_dataset("features", data=text.astype(np.float32))
        f.create_dataset("vgg_features", data=image.astype(np.float32))
        f.create_dataset(LABELS, data=genres).attrs["target_names"] = json.dumps(
            [f"genre{i}" for i in range(n_genres)])
        f.attrs["split"] = fuel_split_array(bounds, ["features", "genres", "vgg_features"])
    return {"path": str(path)}


DATASETS.register("mmimdb", load_mmimdb, fixture=write_fixture, tasks=("multilabel",),
                  description="MM-IMDb from MultiBench's multimodal_imdb.hdf5: plot text and poster image "
                              "features, multilabel genres (needs h5py: the mmimdb extra)")
