"""``arrays``: a dataset from the user's own arrays, and :func:`make_dataset`, its building block.

A dataset is a set of numpy arrays with the rows first: one per modality (``image`` [N, C, H, W],
``sequence`` [N, C, T], ``vector`` [N, D], ``tokens`` [N, T] of integer ids), integer class
labels [N], optionally a ``split`` array ('train' / 'val' / 'test' per row) and a ``groups``
array (one value per row; the rows outside the in-distribution group become held-out evaluation
groups, for ``natural_shift``). The ``arrays`` loader reads them from an ``.npz`` file or a
folder of ``NAME.npy`` files, always with ``allow_pickle=False``.

Continuous modalities are min-max scaled to [0, 1] with statistics of the training rows only
(per feature for vectors, per channel for images and sequences; other rows are clipped to
[0, 1] unless ``clip=False``), or kept as they are (``scale='none'``) with declared or derived
bounds. Token ids are never scaled; every row's ids must lie below the vocabulary size. A tokens
modality may declare its padding id (``pad_id``): models get an attention mask from it.

Before anything trains, the loader refuses what would silently corrupt a run: labels that are not
class ids (beyond int64, or a largest label implying more than :data:`MAX_CLASSES` classes or more
classes than rows), values float32 cannot hold, magnitudes beyond
:data:`~mmbench.data.base.SAFE_MAGNITUDE` (float32 arithmetic on them overflows), an empty
validation split and training rows of a single class. It warns when float32 merges a column's
distinct values (a large offset such as nanosecond timestamps: with ``minmax`` such integer data
are scaled exactly instead, so only ``scale='none'`` or a too-wide training range keeps the loss).
"""

from __future__ import annotations

import logging
import os
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmbench.data.base import SAFE_MAGNITUDE, ModalityKind, ModalitySpec, MultimodalDataset, Split
from mmbench.data.files import check_npy_size, check_npz_members, npy_header, regular_file
from mmbench.data.location import DATA_ENV
from mmbench.data.splits import MinMaxScaler, stratified_split
from mmbench.data.tasks import CLASSIFICATION, REGRESSION, TASKS
from mmbench.errors import MMBenchError, did_you_mean
from mmbench.registry import DATASETS

log = logging.getLogger(__name__)

KINDS: dict[str, ModalityKind] = {k.value: k for k in ModalityKind}
#: The array shapes each kind accepts (rows first); the second is a one-channel shorthand.
RANKS: dict[ModalityKind, tuple[int, ...]] = {
    ModalityKind.IMAGE: (4, 3), ModalityKind.SEQUENCE: (3, 2),
    ModalityKind.VECTOR: (2,), ModalityKind.TOKENS: (2,),
}
SHAPES: dict[ModalityKind, str] = {
    ModalityKind.IMAGE: "[N, C, H, W] (or [N, H, W])", ModalityKind.SEQUENCE: "[N, C, T] (or [N, T])",
    ModalityKind.VECTOR: "[N, D]", ModalityKind.TOKENS: "[N, T] of integer ids >= 0",
}
#: Axes that min-max statistics are taken over: all but the feature / channel axis.
STAT_AXES: dict[ModalityKind, tuple[int, ...]] = {
    ModalityKind.IMAGE: (0, 2, 3), ModalityKind.SEQUENCE: (0, 2), ModalityKind.VECTOR: (0,),
}
SPLIT_NAMES = ("train", "val", "test")
SCALES = ("minmax", "none")
#: Held-out groups may not use this name: it means the in-distribution rows elsewhere.
RESERVED_GROUP = "id"
#: The most classes labels may imply (their largest value + 1); more means ids, not class ids.
MAX_CLASSES = 100_000
#: The precision check compares distinct values per column on at most this many values of the
#: training rows (an evenly spaced subsample), and warns below this share of them kept.
PRECISION_SAMPLE = 2**22
PRECISION_KEEP = 0.9
#: With scale 'none', values beyond this magnitude get a warning: large raw inputs saturate the
#: softmax, so gradient attacks find no gradient (measured: FGSM at eps 0.1 left the accuracy of
#: some built-in models unchanged with features around 5e3).
UNSCALED_WARNING = 1e3
REMAP = "labels must be class ids 0..C-1: remap them with np.unique(y, return_inverse=True)[1]"
_INT64_MAX = int(np.iinfo(np.int64).max)
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_NPY_MAGIC = b"\x93NUMPY"


class _Bad(MMBenchError):
    """A problem with the arrays; :func:`make_dataset` prefixes the dataset name."""


@contextmanager
def _prefixed(name: str) -> Iterator[None]:
    """Turn a :class:`_Bad` raised inside into a one-line ``"NAME: ..."`` MMBenchError."""
    try:
        yield
    except _Bad as exc:
        raise MMBenchError(f"{name}: {exc}") from None


# -- the building block -----------------------------------------------------------------------

def make_dataset(
    arrays: Mapping[str, Any],
    modalities: Mapping[str, str],
    labels: Any,
    *,
    split: Any = None,
    groups: Any = None,
    in_distribution: str | int | None = None,
    scale: str = "minmax",
    bounds: Mapping[str, Any] | None = None,
    split_seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    name: str = "arrays",
    vocab_sizes: Mapping[str, int] | None = None,
    clip: bool = True,
    task: str = CLASSIFICATION,
    pad_id: int | Mapping[str, int] | None = None,
) -> MultimodalDataset:
    """A :class:`MultimodalDataset` from in-memory arrays (numpy arrays or torch tensors).

    ``arrays`` maps modality name -> array (rows first); ``modalities`` maps name -> kind
    (``image``, ``sequence``, ``vector``, ``tokens``) in the order the dataset lists them;
    ``labels`` are integer class ids [N] (``task`` classification), numeric targets [N] or
    [N, D] (regression) or 0/1 labels [N, K] (multilabel). ``split`` ('train'/'val'/'test' per row) decides the
    rows if given (without 'val' rows, ``val_fraction`` of the training rows become validation
    rows); otherwise a seeded split, stratified by class for a classification. With ``groups``, only the rows of the
    in-distribution group (``in_distribution``, default the most frequent value) are split; every
    other value is a held-out group keyed by ``str(value)``. ``scale``: ``minmax`` (fitted on the
    training rows, bounds [0, 1]; ``clip``: other rows' values outside the training range are
    clipped to [0, 1], else kept and the bounds widened to cover them) or ``none``
    (``bounds[name]`` = [lo, hi], else the data range). ``vocab_sizes[name]``: a token modality's
    vocabulary size (default: its largest id + 1, or its pad id + 1 when larger). ``pad_id``: the
    id that pads token rows after their text, one integer for every tokens modality or
    ``{name: id}``; it must lie within the vocabulary, and the spec declares it (models get an
    attention mask from it). Every problem is a one-line :class:`MMBenchError` naming the array.
    """
    with _prefixed(name):
        _check_options(scale, bounds, val_fraction, test_fraction, clip)
        kinds = _kinds(modalities)
        y, n_classes = _labels_of(task, labels, "labels")
        data = {m: _as_modality(m, _pick(arrays, m), kind, len(y)) for m, kind in kinds.items()}
        strata = y if task == CLASSIFICATION else np.zeros(len(y), np.int64)  # one stratum: a seeded shuffle
        rows = _row_sets(strata, split, groups, in_distribution, split_seed, val_fraction, test_fraction,
                         task == CLASSIFICATION)
        pads = _pad_ids(pad_id, kinds)
        specs, tensors, clipped, lost = _encode(data, kinds, rows.parts, scale, clip, dict(bounds or {}),
                                                dict(vocab_sizes or {}), pads)
    for text in (*rows.notes, *lost):
        log.warning("%s: %s", name, text)
    if clipped:
        log.info("%s: %s", name, clipped)
    splits = {p: Split(tensors[p], torch.from_numpy(y[r])) for p, r in rows.parts.items()}
    main = {p: splits.pop(p) for p in SPLIT_NAMES}
    notes = (*rows.notes, *lost, *([clipped] if clipped else []))
    return MultimodalDataset(name, specs, n_classes, **main, groups=splits, in_distribution=rows.inside,
                             notes=notes, task=task)


def _check_options(scale: Any, bounds: Any, val_fraction: Any, test_fraction: Any, clip: Any) -> None:
    if not isinstance(clip, (bool, np.bool_)):
        raise _Bad(f"clip must be true or false, got {clip!r}")
    if scale not in SCALES:
        raise _Bad(f"scale must be 'minmax' or 'none', got {scale!r}{did_you_mean(str(scale), SCALES)}")
    if bounds and scale != "none":
        raise _Bad("bounds apply only with scale 'none' (minmax always declares [0, 1]); "
                   "drop bounds or set scale: none")
    numbers = _is_number(val_fraction) and _is_number(test_fraction)
    if not (numbers and 0 < test_fraction < 1 and 0 <= val_fraction < 1 and val_fraction + test_fraction < 1):
        raise _Bad(f"need 0 < test_fraction, 0 <= val_fraction and their sum below 1; got "
                   f"val_fraction={val_fraction!r}, test_fraction={test_fraction!r}")


def _is_number(value: Any) -> bool:
    """A real number, not a bool."""
    real = isinstance(value, (int, float, np.integer, np.floating))
    return real and not isinstance(value, (bool, np.bool_))


def _kinds(modalities: Any) -> dict[str, ModalityKind]:
    """Name -> kind, checked, in the given order."""
    if not isinstance(modalities, Mapping) or not modalities:
        raise _Bad("modalities must be a non-empty mapping of array name -> kind "
                   f"({', '.join(KINDS)}), got {modalities!r}")
    out: dict[str, ModalityKind] = {}
    for name, kind in modalities.items():
        if not isinstance(name, str) or not name or not isinstance(kind, str):
            raise _Bad(f"modalities must map array names to kind names, got {name!r}: {kind!r}")
        if kind not in KINDS:
            raise _Bad(f"modality '{name}' has unknown kind {kind!r}{did_you_mean(kind, KINDS)}; "
                       f"kinds: {', '.join(KINDS)}")
        out[name] = KINDS[kind]
    return out


def _pad_ids(pad_id: Any, kinds: dict[str, ModalityKind]) -> dict[str, int]:
    """Tokens modality -> its padding id: ``pad_id`` for every one, or the mapping's, checked to
    be integers >= 0 (the vocabulary is checked with the ids)."""
    if pad_id is None:
        return {}
    tokens = [m for m, k in kinds.items() if k is ModalityKind.TOKENS]
    if isinstance(pad_id, Mapping):
        _check_keys(dict(pad_id), "pad_id", tokens, "token")
        given = dict(pad_id)
    elif _is_integer(pad_id):
        if not tokens:
            raise _Bad(f"pad_id {pad_id} applies to tokens modalities, and there is none; drop pad_id or "
                       "declare the token arrays with kind tokens")
        given = {m: pad_id for m in tokens}
    else:
        raise _Bad(f"pad_id must be an integer token id (for every tokens modality) or a mapping "
                   f"{{name: id}}, got {pad_id!r}")
    for name, value in given.items():
        if not _is_integer(value) or value < 0:
            raise _Bad(f"pad_id of '{name}' must be an integer token id >= 0, got {value!r}")
    return {name: int(value) for name, value in given.items()}


def _is_integer(value: Any) -> bool:
    """An integer, not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _pick(arrays: Mapping[str, Any], name: str) -> Any:
    if not isinstance(arrays, Mapping):
        raise _Bad(f"arrays must be a mapping of modality name -> array, got {type(arrays).__name__}")
    if name not in arrays:
        present = [str(k) for k in arrays]
        raise _Bad(f"no array for modality '{name}'{did_you_mean(name, present)}; "
                   f"arrays given: {', '.join(present) or 'none'}")
    return arrays[name]


# -- checking arrays --------------------------------------------------------------------------

def _to_numpy(values: Any, what: str) -> np.ndarray:
    """A numpy view of an array or a torch tensor."""
    if isinstance(values, torch.Tensor):
        tensor = values.detach().cpu()
        return (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()
    try:
        return np.asarray(values)
    except (ValueError, TypeError) as exc:
        raise _Bad(f"{what} is not an array ({str(exc).splitlines()[0]})") from None


def _numeric(values: Any, what: str, expected: str) -> np.ndarray:
    """A numeric (bool, integer or float) array without NaN/Inf."""
    x = _to_numpy(values, what)
    if x.dtype.kind == "O":
        raise _Bad(f"{what} holds Python objects (dtype object); expected {expected} as a numeric array")
    if x.dtype.kind not in "biuf":
        raise _Bad(f"{what} has dtype {x.dtype}; expected {expected}")
    if x.dtype.kind == "f":
        bad = int(np.count_nonzero(~np.isfinite(x)))
        if bad:
            raise _Bad(f"{what} holds {bad} NaN/Inf values; clean or impute them first")
    return x


def _integral(x: np.ndarray, what: str, expected: str, fix: str = "") -> np.ndarray:
    """``x`` as int64; floats must hold whole numbers, and every value must fit in int64 (else
    ``fix``, by default the ``expected`` values)."""
    if x.dtype.kind == "f":
        fractional = x != np.round(x)
        if fractional.any():
            example = x[fractional].flat[0]
            raise _Bad(f"{what} holds non-integral values (e.g. {example}); expected {expected}")
    beyond = _beyond_int64(x)
    if beyond.any():
        row = _first_row(beyond)
        value = x.reshape(len(x), -1)[row][beyond.reshape(len(x), -1)[row]][0]
        raise _Bad(f"{what} holds {value} (row {row}), beyond the int64 range; {fix or 'expected ' + expected}")
    return x.astype(np.int64)


def _beyond_int64(x: np.ndarray) -> np.ndarray:
    """Where ``x`` (integers or whole floats) lies outside the int64 range."""
    if x.dtype.kind == "u":
        return x > np.uint64(_INT64_MAX)
    if x.dtype.kind == "f":
        return (x >= 2.0**63) | (x < -(2.0**63))
    return np.zeros(x.shape, dtype=bool)


def _first_row(mask: np.ndarray) -> int:
    """The first row (first axis) where ``mask`` holds anywhere."""
    return int(np.flatnonzero(mask.reshape(len(mask), -1).any(axis=1))[0])


def _labels_of(task: Any, values: Any, what: str) -> tuple[np.ndarray, int]:
    """The labels of ``task`` (checked) and the model's output width."""
    if task not in TASKS:
        raise _Bad(f"task must be one of {', '.join(TASKS)}, got {str(task)[:40]!r}{did_you_mean(str(task), TASKS)}")
    if task == CLASSIFICATION:
        return _as_labels(values, what)
    if task == REGRESSION:
        return _as_targets(values, what)
    return _as_multilabel(values, what)


def _as_targets(values: Any, what: str) -> tuple[np.ndarray, int]:
    """Regression targets [N] or [N, D] as float32 [N, D] (finite, within float32's range)."""
    expected = "numeric regression targets [N] or [N, D]"
    x = _numeric(values, what, expected)
    if x.ndim not in (1, 2) or (x.ndim == 2 and x.shape[1] == 0):
        raise _Bad(f"{what} has shape {tuple(x.shape)}; expected {expected}")
    _check_float32_range(x, what)
    y = x.reshape(len(x), -1).astype(np.float32)
    if len(y) and np.all(y == y[0]):
        raise _Bad(f"{what} holds one value ({float(y[0, 0]):g}) for every row; there is nothing to regress")
    return y, int(y.shape[1])


def _as_multilabel(values: Any, what: str) -> tuple[np.ndarray, int]:
    """Multilabel labels [N, K] of 0/1 (bool, integers or floats) as float32."""
    expected = "0/1 labels [N, K], one column per label"
    x = _numeric(values, what, expected)
    if x.ndim != 2 or x.shape[1] == 0:
        raise _Bad(f"{what} has shape {tuple(x.shape)}; expected {expected}")
    bad = (x != 0) & (x != 1)
    if bad.any():
        row = _first_row(bad)
        value = x[row][bad[row]][0]
        raise _Bad(f"{what} holds {value!r} at row {row}; multilabel labels must be 0 or 1 ({expected})")
    return x.astype(np.float32), int(x.shape[1])


def _as_labels(values: Any, what: str) -> tuple[np.ndarray, int]:
    """Class ids [N] as int64 and the number of classes (max + 1)."""
    expected = "integer class labels [N] (0, 1, 2, ...)"
    x = _numeric(values, what, expected)
    if x.ndim != 1:
        raise _Bad(f"{what} has shape {tuple(x.shape)}; expected {expected}")
    y = _integral(x, what, expected, f"it is not a class id; {REMAP}")
    if x.dtype.kind == "f":
        raise _Bad(f"{what} holds floats (dtype {x.dtype}, whole numbers); class labels must be integers: "
                   "convert them with y.astype(int)")
    if len(y) and y.min() < 0:
        raise _Bad(f"{what} holds negative values (smallest {y.min()}); expected {expected}")
    distinct = len(np.unique(y))
    if distinct < 2:
        raise _Bad(f"{what} holds {distinct} distinct class(es); a classification dataset needs at least 2")
    _check_class_count(y, distinct, what)
    return y, int(y.max()) + 1


def _check_class_count(y: np.ndarray, distinct: int, what: str) -> None:
    """Labels are class ids 0..C-1 (C = largest + 1): refuse a C above :data:`MAX_CLASSES` or
    above the number of rows (most classes would have no row; models would size a head for C)."""
    largest = int(y.max())
    if largest < min(MAX_CLASSES, len(y)):
        return
    limit = f"the limit of {MAX_CLASSES}" if largest >= MAX_CLASSES else "more classes than rows"
    raise _Bad(f"{what} holds the label {largest} (row {int(np.argmax(y))}), which would mean {largest + 1} "
               f"classes ({limit}) for {len(y)} rows with {distinct} distinct labels; {REMAP}")


def _as_modality(name: str, values: Any, kind: ModalityKind, n: int) -> np.ndarray:
    """The modality's array in its kind's full rank: numbers within float32's range (in their
    dtype: :func:`_continuous` converts them), or int64 token ids."""
    what = f"array '{name}'"
    x = _numeric(values, what, f"numbers for kind {kind.value}, shaped {SHAPES[kind]}")
    if x.ndim not in RANKS[kind]:
        raise _Bad(f"{what} has shape {tuple(x.shape)} but kind {kind.value} needs {SHAPES[kind]}; "
                   "reshape it or choose another kind")
    if x.ndim < RANKS[kind][0]:
        x = x[:, None]
    if len(x) != n:
        raise _Bad(f"{what} has {len(x)} rows but the labels have {n}; every array needs one row per sample")
    if 0 in x.shape[1:]:
        raise _Bad(f"{what} has shape {tuple(x.shape)}: no values per row")
    if kind is not ModalityKind.TOKENS:
        _check_float32_range(x, what)
        return x
    ids = _integral(x, what, "integer token ids >= 0")
    if ids.min() < 0:
        raise _Bad(f"{what} holds negative token ids (smallest {ids.min()}); token ids must be >= 0")
    return ids


def _check_float32_range(x: np.ndarray, what: str) -> None:
    """Refuse values that float32, the precision models compute in, turns into inf."""
    if x.dtype.kind != "f" or x.dtype.itemsize <= 4:
        return
    big = np.abs(x) > _FLOAT32_MAX
    if big.any():
        raise _Bad(f"{what} holds {int(big.sum())} value(s) beyond float32's range (|x| > 3.4e38; largest "
                   f"{float(np.abs(x).max()):.3g}, first at row {_first_row(big)}): they would become inf "
                   "in float32, which models compute in; rescale the array (e.g. divide it by a constant)")


def _texts(values: Any, n: int, what: str, numbers_ok: bool) -> np.ndarray:
    """One string per row (bytes decoded; integers as ``str`` when ``numbers_ok``)."""
    x = _to_numpy(values, what)
    if x.ndim != 1:
        raise _Bad(f"{what} has shape {tuple(x.shape)}; expected one value per row [N]")
    if len(x) != n:
        raise _Bad(f"{what} has {len(x)} rows but the labels have {n}; it needs one value per row")
    if x.dtype.kind == "S":
        return np.char.decode(x, "utf-8", errors="replace")
    if x.dtype.kind in "UT" or (numbers_ok and x.dtype.kind in "iu"):
        return x.astype(str)
    items = x.tolist() if x.dtype.kind == "O" else None
    if items is not None and all(isinstance(v, (str, bytes)) or (numbers_ok and type(v) is int)
                                 for v in items):
        decoded = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in items]
        return np.array(decoded, dtype=str)
    expected = "integers or strings" if numbers_ok else "the strings 'train', 'val' and 'test'"
    raise _Bad(f"{what} has dtype {x.dtype}; expected {expected}")


def _as_split(values: Any, n: int, what: str) -> np.ndarray:
    """'train' / 'val' / 'test' per row."""
    names = _texts(values, n, what, numbers_ok=False)
    bad = sorted(set(names.tolist()) - set(SPLIT_NAMES))
    if bad:
        raise _Bad(f"{what} holds {bad[0]!r}{did_you_mean(bad[0], SPLIT_NAMES)}; "
                   "each value must be 'train', 'val' or 'test'")
    return names


def _as_groups(values: Any, n: int, what: str) -> np.ndarray:
    """The group of each row, as strings."""
    return _texts(values, n, what, numbers_ok=True)


# -- rows of each split and group -------------------------------------------------------------

@dataclass(frozen=True)
class _Rows:
    """Row indices of train / val / test and of every held-out group (``parts``), the name of the
    in-distribution group (``None`` without groups), and notes on rows left out of training."""

    parts: dict[str, np.ndarray]
    inside: str | None
    notes: tuple[str, ...]


def _row_sets(y: np.ndarray, split: Any, groups: Any, in_distribution: Any, seed: int,
              val_fraction: float, test_fraction: float, classes: bool = True) -> _Rows:
    """The rows of each split and held-out group (``y``: the strata; ``classes``: they are class
    labels, and the training rows need two)."""
    keys = None if groups is None else _as_groups(groups, len(y), "groups")
    name, inside, held = _group_rows(keys, in_distribution, len(y))
    notes: tuple[str, ...] = ()
    if split is None:
        main = _stratified(y, inside, val_fraction, test_fraction, seed)
        where = f"of the {len(inside)} in-distribution rows" if keys is not None else f"of the {len(y)} rows"
        hint = "give more rows or change val_fraction / test_fraction"
    else:
        names = _as_split(split, len(y), "split")
        main = _given_split(names, y, inside, val_fraction, seed)
        notes = _untrained(names, keys, name)
        where = "in the split array" + (" among the in-distribution rows" if keys is not None else "")
        hint = "mark at least one row 'train' and one 'test'"
    for part in ("train", "test"):
        if not len(main[part]):
            raise _Bad(f"no {part} rows {where}; {hint}")
    scope = "" if name is None else f" (in-distribution group '{name}')"
    _check_val(main, scope, split is not None, val_fraction)
    if classes:
        _check_train_classes(y[main["train"]], scope, split is not None)
    return _Rows({**main, **held}, name, notes)


def _check_val(main: dict[str, np.ndarray], scope: str, given: bool, val_fraction: float) -> None:
    """Refuse an empty validation split: every recipe selects its model on it or reports it."""
    if len(main["val"]):
        return
    if not val_fraction:
        fix = ("mark some rows 'val' in the split array or " if given else "") + "set val_fraction above 0"
    elif given:
        fix = (f"mark some rows 'val' in the split array (val_fraction {val_fraction} of the "
               f"{len(main['train'])} train rows rounds to none per class)")
    else:
        fix = f"raise val_fraction (now {val_fraction}; it rounds to no row per class) or give more rows"
    raise _Bad(f"the validation split is empty{scope}: training selects its model on the validation rows "
               f"and every recipe reports on them, so every cell would fail; {fix}")


def _check_train_classes(y: np.ndarray, scope: str, given: bool) -> None:
    """Refuse training rows of a single class: there is nothing to learn."""
    classes = np.unique(y)
    if len(classes) > 1:
        return
    if scope:
        fix = "choose another in_distribution group or regroup the rows so that it holds several classes"
    else:
        fix = "mark rows of other classes 'train' in the split array" if given else "give rows of more classes"
    raise _Bad(f"the train split{scope} holds 1 class (label {classes[0]}, {len(y)} rows); training needs "
               f"at least 2 classes: {fix}")


def _untrained(names: np.ndarray, keys: np.ndarray | None, inside: str | None) -> tuple[str, ...]:
    """A note when rows labelled 'train' belong to other groups than the in-distribution one:
    they are evaluated as held-out rows, never trained on."""
    if keys is None:
        return ()
    labelled = names == "train"
    outside = labelled & (keys != inside)
    if not outside.any():
        return ()
    values, counts = np.unique(keys[outside], return_counts=True)
    per_group = ", ".join(f"'{v}' {c}" for v, c in zip(values.tolist(), counts.tolist(), strict=True))
    return (f"{int(outside.sum())} of the {int(labelled.sum())} rows labelled 'train' are outside the "
            f"in-distribution group '{inside}' ({per_group}): they are not trained on, only evaluated "
            "as held-out groups",)


def _group_rows(keys: np.ndarray | None, in_distribution: Any,
                n: int) -> tuple[str | None, np.ndarray, dict[str, np.ndarray]]:
    """The in-distribution group's name and rows, and group name -> rows of every other group."""
    if keys is None:
        if in_distribution is not None:
            raise _Bad("in_distribution needs a groups array (one group value per row)")
        return None, np.arange(n), {}
    values, counts = np.unique(keys, return_counts=True)  # sorted by str: ties -> smallest
    inside = str(values[np.argmax(counts)]) if in_distribution is None else str(in_distribution)
    names = [str(v) for v in values]
    if inside not in names:
        shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
        raise _Bad(f"in_distribution {in_distribution!r} is not a value of groups"
                   f"{did_you_mean(inside, names)}; the groups are {shown}")
    if RESERVED_GROUP in names and inside != RESERVED_GROUP:
        raise _Bad(f"groups holds the value '{RESERVED_GROUP}', a reserved group name (it means the "
                   "in-distribution rows); rename it or make it the in_distribution group")
    clash = sorted(set(names) & set(SPLIT_NAMES) - {inside})
    if clash:
        raise _Bad(f"groups holds the value '{clash[0]}', the name of a split; rename that group "
                   "or make it the in_distribution group")
    held = {v: np.flatnonzero(keys == v) for v in names if v != inside}
    return inside, np.flatnonzero(keys == inside), held


def _stratified(y: np.ndarray, rows: np.ndarray, val_fraction: float, test_fraction: float,
                seed: int) -> dict[str, np.ndarray]:
    try:
        idx = stratified_split(y[rows], val_fraction, test_fraction, seed)
    except ValueError as exc:
        raise _Bad(str(exc)) from None
    return {"train": rows[idx.train], "val": rows[idx.val], "test": rows[idx.test]}


def _given_split(names: np.ndarray, y: np.ndarray, inside: np.ndarray, val_fraction: float,
                 seed: int) -> dict[str, np.ndarray]:
    """The rows the split array names; without 'val' rows, validation rows are carved out of the
    training rows (``val_fraction`` of them, stratified and seeded)."""
    parts = {p: inside[names[inside] == p] for p in SPLIT_NAMES}
    if len(parts["val"]) or not val_fraction or not len(parts["train"]):
        return parts
    train = parts["train"]
    idx = stratified_split(y[train], 0.0, val_fraction, seed)  # its "test" rows are the val rows
    return {"train": train[idx.train], "val": train[idx.test], "test": parts["test"]}


# -- scaling and tensors ----------------------------------------------------------------------

def _encode(data: dict[str, np.ndarray], kinds: dict[str, ModalityKind], parts: dict[str, np.ndarray],
            scale: str, clip: bool, bounds: dict[str, Any], vocab_sizes: dict[str, Any],
            pads: dict[str, int] | None = None,
            ) -> tuple[tuple[ModalitySpec, ...], dict[str, dict[str, torch.Tensor]], str, list[str]]:
    """Each modality's spec (token modalities with their ``pads`` id), its (scaled) tensor for
    every split and group, a note on the evaluation values outside the training range (minmax
    only; else '') and warnings on precision that float32 loses."""
    pads = pads or {}
    tokens = [m for m, k in kinds.items() if k is ModalityKind.TOKENS]
    _check_keys(bounds, "bounds", [m for m in kinds if m not in tokens], "continuous")
    _check_keys(vocab_sizes, "vocab_sizes", tokens, "token")
    specs, warnings = [], []
    outside: dict[str, dict[str, float]] = {}
    tensors: dict[str, dict[str, torch.Tensor]] = {p: {} for p in parts}
    for name, kind in kinds.items():
        x = data[name]
        if kind is ModalityKind.TOKENS:
            spec = _token_spec(name, x, vocab_sizes.get(name), parts, pads.get(name))
        else:
            spec, x, shares, said = _continuous(name, kind, x, parts, scale, clip, bounds.get(name))
            outside.update({name: shares} if shares is not None else {})
            warnings += said
        specs.append(spec)
        for part, rows in parts.items():
            tensors[part][name] = torch.from_numpy(np.ascontiguousarray(x[rows]))
    return tuple(specs), tensors, _clip_note(outside, specs, clip), warnings


def _continuous(name: str, kind: ModalityKind, raw: np.ndarray, parts: dict[str, np.ndarray], scale: str,
                clip: bool, given: Any) -> tuple[ModalitySpec, np.ndarray, dict[str, float] | None, list[str]]:
    """A continuous modality as float32: its spec, values, the share of values outside the
    training range per evaluation split (minmax; else None) and warnings (float32 merges the
    distinct values of a column; large unscaled values). Min-max scaling starts from the exact
    values (integers less their smallest value) when float32 would merge them."""
    x32 = raw.astype(np.float32)
    train = parts["train"]
    if scale == "none":
        spec, x, shares = _unscaled_spec(name, kind, x32, given), x32, None
    else:
        lossy = not _exact_in_float32(raw) and _merged(raw, x32, train) is not None
        spec, x, shares = _minmax(name, kind, _exact(raw) if lossy else x32, parts, clip)
    _check_magnitude(spec, x, scale, given)
    said = [] if scale == "none" and _exact_in_float32(raw) else [_precision_warning(name, raw, x, train, scale)]
    return spec, x, shares, [w for w in (*said, _unscaled_warning(spec, x, scale)) if w]


def _unscaled_warning(spec: ModalitySpec, x: np.ndarray, scale: str) -> str:
    """One line when unscaled values exceed :data:`UNSCALED_WARNING` ('' if not)."""
    top = float(np.abs(x).max()) if scale == "none" else 0.0
    if top <= UNSCALED_WARNING:
        return ""
    return (f"array '{spec.name}' reaches {top:.3g} unscaled (scale: none): models see raw values this large, "
            "which saturate the softmax, so gradient attacks may find no gradient (robust = clean) and "
            "training may stall; use scale: minmax unless the raw units matter")


def _exact_in_float32(x: np.ndarray) -> bool:
    """Whether float32 holds every value of ``x`` exactly (bools, small integers, float32 or less)."""
    if x.dtype.kind in "iu":
        return x.dtype.itemsize <= 2 or not x.size or max(abs(int(x.min())), abs(int(x.max()))) <= 2**24
    return x.dtype.kind == "b" or x.dtype.itemsize <= 4


def _exact(x: np.ndarray) -> np.ndarray:
    """``x`` as float64; integers less their smallest value first, exactly (wrapping uint64
    arithmetic), so that a large offset costs no precision. Min-max scaling ignores the offset."""
    if x.dtype.kind not in "iu":
        return x.astype(np.float64)
    return np.subtract(x.astype(np.uint64), np.asarray(x.min()).astype(np.uint64)).astype(np.float64)


def _merged(before: np.ndarray, after: np.ndarray, rows: np.ndarray) -> tuple[int, int, int] | None:
    """(column, distinct values before, after) of the column whose distinct values ``after``
    merges most, on an evenly spaced sample of ``rows``, when it keeps fewer than
    :data:`PRECISION_KEEP` of them; else None."""
    width = int(np.prod(before.shape[1:]))
    take = rows[::max(1, -(-len(rows) * width // PRECISION_SAMPLE))]
    if len(take) < 2:
        return None
    old = _distinct(before[take].reshape(len(take), -1))
    new = _distinct(after[take].reshape(len(take), -1))
    column = int(np.argmin(new / old))
    if new[column] >= PRECISION_KEEP * old[column]:
        return None
    return column, int(old[column]), int(new[column])


def _distinct(x: np.ndarray) -> np.ndarray:
    """The number of distinct values in each column of ``x`` [rows, columns]."""
    ordered = np.sort(x, axis=0)
    return 1 + np.count_nonzero(ordered[1:] != ordered[:-1], axis=0)


def _precision_warning(name: str, raw: np.ndarray, x: np.ndarray, rows: np.ndarray, scale: str) -> str:
    """One line when float32 merges distinct values of a column of the training rows ('' if not)."""
    merged = _merged(raw, x, rows)
    if merged is None:
        return ""
    column, old, new = merged
    index = [int(i) for i in np.unravel_index(column, raw.shape[1:])]
    where = f"column {column}" if raw.ndim == 2 else f"position {index} of each row"
    top = float(np.abs(raw.reshape(len(raw), -1)[rows, column]).max())
    if scale == "none":
        how, fix = "converted to float32", "subtract an offset (e.g. x - x.min()) or use scale: minmax"
    else:
        how, fix = "min-max scaled to float32", ("its training range is too wide for the differences "
                                                 "between its values: transform it (e.g. log) or drop outliers")
    return (f"array '{name}' loses precision: {where} has {old} distinct values in the training rows checked "
            f"(largest magnitude {top:.3g}) but {new} once {how}; {fix}")


def _check_magnitude(spec: ModalitySpec, x: np.ndarray, scale: str, given: Any) -> None:
    """Refuse values or bounds beyond :data:`SAFE_MAGNITUDE` (float32 arithmetic overflows)."""
    bound = max(abs(spec.lo), abs(spec.hi)) if given is not None else 0.0
    per_row = np.abs(x).reshape(len(x), -1).max(axis=1)
    top = max(bound, float(per_row.max()))
    if top <= SAFE_MAGNITUDE:
        return
    why = (f"beyond {SAFE_MAGNITUDE:.0e}, float32 arithmetic on them (squares, fusion products, attack "
           "and noise steps) overflows to inf")
    if bound > SAFE_MAGNITUDE:
        raise _Bad(f"bounds of '{spec.name}' reach {bound:.3g} in magnitude; {why}: give bounds within "
                   f"±{SAFE_MAGNITUDE:.0e} (rescale the array) or use scale: minmax")
    row = int(np.argmax(per_row))
    if scale == "none":
        raise _Bad(f"array '{spec.name}' holds values up to {top:.3g} in magnitude (row {row}) with scale: "
                   f"none; {why}: use scale: minmax or rescale the array")
    raise _Bad(f"array '{spec.name}' reaches {top:.3g} after min-max scaling (row {row}, far outside the "
               f"training range, kept by clip: false); {why}: set clip: true or drop that row")


def _check_keys(given: dict[str, Any], what: str, allowed: list[str], kind: str) -> None:
    for key in given:
        if key not in allowed:
            listed = ", ".join(allowed) or "none"
            hint = did_you_mean(str(key), allowed)
            raise _Bad(f"{what} names '{key}', which is not a {kind} modality{hint}; "
                       f"{kind} modalities: {listed}")


def _minmax(name: str, kind: ModalityKind, x: np.ndarray, parts: dict[str, np.ndarray],
            clip: bool) -> tuple[ModalitySpec, np.ndarray, dict[str, float]]:
    """Min-max statistics of the training rows (per feature / channel), applied to all rows;
    the share of values outside [0, 1] in the test rows and each held-out group. Clipped, the
    bounds are [0, 1]; kept, [min(0, smallest value), max(1, largest value)] over all rows."""
    axes = STAT_AXES[kind]
    fit = x[parts["train"]].astype(np.float64)
    scaler = MinMaxScaler(fit.min(axis=axes, keepdims=True), fit.max(axis=axes, keepdims=True))
    unclipped = scaler.transform(x.astype(np.float64), clip=False)
    outside = {p: _share_outside(unclipped[rows]) for p, rows in parts.items() if p not in ("train", "val")}
    scaled = (np.clip(unclipped, 0.0, 1.0) if clip else unclipped).astype(np.float32)
    lo, hi = (0.0, 1.0) if clip else (min(0.0, float(scaled.min())), max(1.0, float(scaled.max())))
    return ModalitySpec(name, kind, tuple(x.shape[1:]), lo, hi), scaled, outside


def _share_outside(values: np.ndarray) -> float:
    """The share of ``values`` outside [0, 1] (0 for no values)."""
    return float(np.mean((values < 0.0) | (values > 1.0))) if values.size else 0.0


def _clip_note(outside: dict[str, dict[str, float]], specs: list[ModalitySpec], clip: bool) -> str:
    """One line: per test split and held-out group, each minmax modality's share of values
    outside the training range, and what became of them."""
    if not outside:
        return ""
    parts = next(iter(outside.values()))
    shares = "; ".join(f"{_where(p)}: " + ", ".join(f"{m} {_percent(outside[m][p])}" for m in outside)
                       for p in parts)
    if clip:
        return f"values outside the training range, clipped to [0, 1] (clip: true): {shares}"
    bounds = ", ".join(f"{s.name} [{s.lo:.3g}, {s.hi:.3g}]" for s in specs if s.name in outside)
    return f"values outside the training range, kept (clip: false): {shares}; bounds {bounds}"


def _where(part: str) -> str:
    return part if part in SPLIT_NAMES else f"group '{part}'"


def _percent(share: float) -> str:
    if share == 0.0:
        return "0%"
    return "<0.1%" if share < 0.001 else f"{100 * share:.1f}%"


def _unscaled_spec(name: str, kind: ModalityKind, x: np.ndarray, given: Any) -> ModalitySpec:
    """Bounds ``given`` as [lo, hi] (checked against the data), else the range of all rows."""
    if given is None:
        lo, hi = float(x.min()), float(x.max())
        if not hi > lo:
            hi = lo + 1.0 if lo + 1.0 > lo else lo + abs(lo)
        return ModalitySpec(name, kind, tuple(x.shape[1:]), lo, hi)
    if (not isinstance(given, (list, tuple)) or len(given) != 2
            or not all(_is_number(v) and np.isfinite(v) for v in given)
            or not given[1] > given[0]):
        raise _Bad(f"bounds of '{name}' must be [lo, hi] with finite numbers and hi > lo, got {given!r}")
    lo, hi = float(given[0]), float(given[1])
    outside = int(np.count_nonzero((x < lo) | (x > hi)))
    if outside:
        raise _Bad(f"array '{name}' has {outside} values outside its bounds [{lo}, {hi}] (data range "
                   f"[{x.min()}, {x.max()}]); widen the bounds or use scale minmax")
    return ModalitySpec(name, kind, tuple(x.shape[1:]), lo, hi)


def _token_spec(name: str, ids: np.ndarray, vocab_size: Any, parts: dict[str, np.ndarray],
                pad_id: int | None = None) -> ModalitySpec:
    """Bounds [0, vocab_size - 1]: the given vocabulary size, else the largest id (of every row:
    train, val, test and held-out groups, and the pad id) + 1; ``pad_id`` within them."""
    largest = int(ids.max())
    if vocab_size is None:
        vocab_size = max(largest + 1, 2, 0 if pad_id is None else pad_id + 1)
    elif type(vocab_size) is not int or vocab_size < 2:
        raise _Bad(f"vocab_sizes['{name}'] must be an integer >= 2, got {vocab_size!r}")
    if largest >= vocab_size:
        row = int(np.argmax(ids.reshape(len(ids), -1).max(axis=1)))
        part = next(p for p, rows in parts.items() if np.any(rows == row))  # the parts cover every row
        where = f"a {part} row" if part in SPLIT_NAMES else f"a row of group '{part}'"
        raise _Bad(f"array '{name}' holds token id {largest} (in {where}) but its vocabulary size is "
                   f"{vocab_size}; raise vocab_sizes['{name}'] above {largest} or map the ids below it")
    if pad_id is not None and pad_id >= vocab_size:
        raise _Bad(f"pad_id {pad_id} of '{name}' is outside its vocabulary (vocab_sizes['{name}'] = "
                   f"{vocab_size}: ids 0..{vocab_size - 1}); use an id below {vocab_size} or raise "
                   f"vocab_sizes['{name}'] above {pad_id}")
    return ModalitySpec(name, ModalityKind.TOKENS, tuple(ids.shape[1:]), 0.0, float(vocab_size - 1),
                        pad_id=pad_id)


# -- the registered loader --------------------------------------------------------------------

def resolve_path(path: str, data_root: str | None = None, suite_dir: str | None = None) -> Path:
    """An absolute ``path`` as is; a relative one against the data root (``data_root``, else
    ``$MMBENCH_DATA``), then ``suite_dir``, then the current directory: the first that exists."""
    given = Path(path).expanduser()
    roots = [r for r in (data_root or os.environ.get(DATA_ENV), suite_dir) if r]
    bases = [Path(r).expanduser() for r in roots] + [Path.cwd()]
    candidates = [given] if given.is_absolute() else [base / given for base in bases]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise MMBenchError(f"arrays: {path} not found (tried {tried}); give an absolute path, a path relative "
                       f"to the suite file, or the folder it is in with --data-dir ROOT or ${DATA_ENV}")


def read_arrays(file: Path, names: Iterable[str]) -> dict[str, np.ndarray]:
    """The named arrays of an ``.npz`` file or a folder of ``NAME.npy`` files (only those are
    read; never unpickled)."""
    names = list(dict.fromkeys(names))
    if regular_file(file, "arrays").is_dir():
        present = sorted(p.stem for p in file.glob("*.npy"))
        _require_names(names, present, file)
        return {n: _read_npy(file / f"{n}.npy", n) for n in names}
    if not zipfile.is_zipfile(file):
        raise MMBenchError(f"arrays: {file} is neither an .npz file (np.savez) nor a folder of .npy files")
    try:
        with np.load(file, allow_pickle=False) as npz:
            _require_names(names, list(npz.files), file)
            check_npz_members(file, names)  # from what each member declares, before inflating it
            return {n: _guarded(lambda n=n: npz[n], n, file) for n in names}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error) as exc:
        raise _unreadable(file, exc) from None


def _read_npy(file: Path, name: str) -> np.ndarray:
    with open(regular_file(file, "arrays"), "rb") as handle:
        if handle.read(len(_NPY_MAGIC)) != _NPY_MAGIC:
            raise MMBenchError(f"arrays: {file} is not a .npy file (save arrays with np.save)")
        handle.seek(0)
        try:
            header = npy_header(handle)
        except ValueError as exc:
            raise _unreadable(file, exc) from None
    check_npy_size(header, name, file)
    return _guarded(lambda: np.load(file, allow_pickle=False), name, file)


def _guarded(read: Callable[[], Any], name: str, where: Path) -> np.ndarray:
    """``read()``, with object arrays and unreadable data as one-line errors."""
    try:
        arr = read()
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise MMBenchError(f"arrays: array '{name}' in {where} holds Python objects, which are never "
                               "unpickled; save strings as fixed-width strings (np.asarray(x, dtype=str)) "
                               "and numbers as a numeric array") from None
        raise _unreadable(where, exc) from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise _unreadable(where, exc) from None
    if not isinstance(arr, np.ndarray):
        raise MMBenchError(f"arrays: '{name}' in {where} is not a numpy array; save arrays with np.savez")
    return arr


def _unreadable(where: Path, exc: BaseException) -> MMBenchError:
    reason = (str(exc).splitlines() or [type(exc).__name__])[0]
    return MMBenchError(f"arrays: cannot read {where} ({reason}); the file may be corrupt, save it again")


def _require_names(names: list[str], present: list[str], where: Path) -> None:
    for name in names:
        if name not in present:
            listed = ", ".join(present) or "no arrays"
            raise MMBenchError(f"arrays: no array '{name}' in {where}{did_you_mean(name, present)}; "
                               f"it holds: {listed}")


def write_fixture(root: Path, n_per_class: int = 30, seed: int = 0) -> dict[str, Any]:
    """A small ``.npz`` under ``root/arrays`` with an image [N, 1, 8, 8], a two-channel sequence
    [N, 2, 16], a vector [N, 12], tokens [N, 10] and 3 separable classes; returns the loader
    parameters that read it. Tests and the registry's contract test load it."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(3), n_per_class))
    n = len(labels)
    image = rng.normal(40.0, 10.0, (n, 1, 8, 8))  # raw 0-255-like pixels
    for cls, (r, c) in enumerate([(1, 1), (1, 5), (5, 3)]):
        image[labels == cls, 0, r:r + 2, c:c + 2] += 150.0  # a class-dependent bright patch
    t = np.linspace(0.0, 1.0, 16)
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    wave = np.sin(2 * np.pi * (labels[:, None] + 1) * t + phase) + rng.normal(0, 0.2, (n, 16))
    level = 0.5 * labels[:, None] + rng.normal(0, 0.3, (n, 16))
    centres = 1.5 * rng.normal(0, 1, (3, 12))
    features = 10.0 * (centres[labels] + rng.normal(0, 1, (n, 12))) + 50.0  # raw units
    preferred = rng.integers(0, 5, (n, 10)) + 5 * labels[:, None]
    words = np.where(rng.random((n, 10)) < 0.6, preferred, rng.integers(0, 20, (n, 10)))
    folder = root / "arrays"
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / "mydata.npz"
    np.savez(file, image=image.astype(np.float32), signal=np.stack([wave, level], 1).astype(np.float32),
             features=features.astype(np.float32), words=words.astype(np.int64), labels=labels)
    modalities = {"image": "image", "signal": "sequence", "features": "vector", "words": "tokens"}
    return {"path": str(file), "modalities": modalities, "label": "labels"}


@DATASETS.register("arrays", description="your own arrays: an .npz file or a folder of .npy files",
                   fixture=write_fixture, tasks=TASKS)
def load_arrays(path: str, modalities: dict, label: str = "labels", split: str | None = None,
                groups: str | None = None, in_distribution: str | int | None = None,
                scale: str = "minmax", bounds: dict | None = None, split_seed: int = 0,
                val_fraction: float = 0.2, test_fraction: float = 0.2, vocab_sizes: dict | None = None,
                clip: bool = True, data_root: str | None = None,
                suite_dir: str | None = None, task: str = CLASSIFICATION,
                pad_id: int | dict | None = None) -> MultimodalDataset:
    """Load ``path`` (an ``.npz`` file or a folder of ``NAME.npy`` files; relative paths are
    looked up under the data root, then the suite's folder, then the current directory).

    ``modalities`` maps array name -> kind; ``label``, ``split`` and ``groups`` name the label,
    split and group arrays; ``task``: classification (integer class ids [N]), regression
    (numeric targets [N] or [N, D]) or multilabel (0/1 labels [N, K]). The rest (``vocab_sizes``,
    ``pad_id``, ...) is :func:`make_dataset`'s.
    """
    if (not isinstance(modalities, Mapping) or not modalities
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in modalities.items())):
        raise MMBenchError("arrays: modalities must be a non-empty mapping of array name -> kind "
                           f"({', '.join(KINDS)}), e.g. {{pixels: image, age: vector}}; got {modalities!r}")
    wanted = [*modalities, label, *(n for n in (split, groups) if n)]
    raw = read_arrays(resolve_path(path, data_root, suite_dir), wanted)
    with _prefixed("arrays"):  # checked here too, so that errors name the arrays of the file
        y, _ = _labels_of(task, raw[label], f"array '{label}'")
        split_rows = _as_split(raw[split], len(y), f"array '{split}'") if split else None
        group_rows = _as_groups(raw[groups], len(y), f"array '{groups}'") if groups else None
    return make_dataset({m: raw[m] for m in modalities}, modalities, y, split=split_rows, groups=group_rows,
                        in_distribution=in_distribution, scale=scale, bounds=bounds, split_seed=split_seed,
                        val_fraction=val_fraction, test_fraction=test_fraction, name="arrays",
                        vocab_sizes=vocab_sizes, clip=clip, task=task, pad_id=pad_id)
