"""Re-checking a results folder by hand: :func:`outcomes` gives each evaluated row's outcome
with its row id (its position in the split), :func:`load_model` the exact trained module the
cells of one model used, so any cell can be recomputed with plain torch.

Both read the folder's store read-only; nothing is trained or evaluated.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from mmbench.api import MODEL_ENTRY
from mmbench.config.build import build_model
from mmbench.config.datasets import load_datasets
from mmbench.config.suite import Suite, label_of, parse_suite
from mmbench.data.base import MultimodalDataset
from mmbench.errors import MMBenchError, did_you_mean
from mmbench.metrics.outcomes import Samples
from mmbench.models.calling import PlainModel
from mmbench.plan.cells import expand_models
from mmbench.runner import cache_folder
from mmbench.store.database import CellStatus, Store, open_existing
from mmbench.store.rows import BASE_COLUMNS, SORT_KEYS, CellFacts
from mmbench.train.cache import CheckpointCache

log = logging.getLogger(__name__)

#: the per-row columns of :func:`outcomes`, after the cell's columns
ROW_COLUMNS = ("row", "draw", "pred", "label", "prob", "correct")
#: the per-row columns of a regression or multilabel cell instead of pred ... correct
TASK_COLUMNS = ("output", "truth", "error")
#: what identifies a trained model in a results folder (the columns load_model narrows by)
TRAIN_COLUMNS = ("dataset", "model", "recipe", "seed")


def outcomes(results_dir: str | Path, *, dataset: Any = None, model: Any = None, recipe: Any = None,
             seed: Any = None, family: Any = None, perturbation: Any = None, target: Any = None,
             severity: Any = None, split: Any = None, **facts: Any) -> pd.DataFrame:
    """One row per evaluated row per finished cell of the folder's latest run: the cell's
    columns as in ``results.csv`` (fact columns too) and its store key ``cell``, then ``row``
    (the row's position in its split), ``draw``, ``pred``, ``label``, ``prob`` (the softmax
    probability of the true class), ``correct``, and ``radius`` where a cell certified; on a
    regression or multilabel task ``output`` (the row's predicted values, or every label's
    probability, an array), ``truth`` (the targets, an array) and ``error`` (the row's mean absolute error,
    or mean binary cross-entropy) instead of ``pred`` ... ``correct``.

    Each filter keeps the cells whose column equals it (a list: any of its values); fact
    columns filter too (``attack="fgsm"``). A filter that matches nothing is a one-line error
    listing the values there are."""
    folder = Path(results_dir)
    wanted = {"dataset": dataset, "model": model, "recipe": recipe, "seed": seed, "family": family,
              "perturbation": perturbation, "target": target, "severity": severity, "split": split, **facts}
    store = open_existing(folder)
    try:
        cells = finished_cells(store, folder)
        chosen = narrow(cells, {k: v for k, v in wanted.items() if v is not None}, f"no cell of {folder}")
        samples = store.samples(list(chosen))
    finally:
        store.close()
    if not samples:
        raise MMBenchError(f"the chosen cells of {folder} have no stored per-row outcomes (written by an "
                           "older mmbench); rerun its suite once to store them")
    return cells_frame({k: cells[k] for k in chosen if k in samples}, samples)


def finished_cells(store: Store, folder: Path) -> dict[str, dict[str, Any]]:
    """Key -> the columns (common and fact) of every finished evaluation cell of the latest
    run, in the run's order."""
    keys = [s.key for s in store.statuses() if s.kind == "eval" and s.status == "done"]
    facts = store.facts(keys)
    if not facts:
        raise MMBenchError(f"{folder} has no finished evaluation cell; run its suite first "
                           f"('mmbench status {folder}' says what is pending or failed)")
    return {k: cell_columns(facts[k]) for k in keys if k in facts}


def cell_columns(facts: CellFacts) -> dict[str, Any]:
    return {**{c: getattr(facts, c) for c in BASE_COLUMNS}, **facts.facts}


def cells_frame(cells: Mapping[str, dict[str, Any]], samples: Mapping[str, Samples]) -> pd.DataFrame:
    """The per-row frame of :func:`outcomes`, sorted like ``results.csv`` (cells of equal
    sort keys in the run's order, rows in draw then row order)."""
    frames = [rows_frame(key, columns, samples[key]) for key, columns in cells.items()]
    frame = pd.concat(frames, ignore_index=True)
    facts = sorted({c for columns in cells.values() for c in columns} - set(BASE_COLUMNS))
    per_row = [c for c in (*ROW_COLUMNS, *TASK_COLUMNS, "radius") if c in frame.columns]
    frame = frame[[*BASE_COLUMNS, *facts, "cell", *per_row]]
    keys = [c for c in SORT_KEYS if c in frame.columns]
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def rows_frame(key: str, columns: dict[str, Any], samples: Samples) -> pd.DataFrame:
    """One cell's rows: its columns repeated, then each row's outcome per draw."""
    n = len(samples.preds)
    per_row: dict[str, Any] = {
        "row": np.tile(samples.ids.astype(np.int64), samples.draws),
        "draw": np.repeat(np.arange(samples.draws), samples.rows),
    }
    if samples.outputs is not None and samples.targets is not None:
        per_row.update(output=list(samples.outputs.astype(np.float64)), truth=list(samples.targets.astype(np.float64)),
                       error=samples.badness)
    else:
        preds, labels = samples.preds.astype(np.int64), samples.labels.astype(np.int64)
        per_row.update(pred=preds, label=labels, prob=samples.probs.astype(np.float64), correct=preds == labels)
    if samples.radius is not None:
        per_row["radius"] = samples.radius.astype(np.float64)
    return pd.DataFrame({**{c: [v] * n for c, v in columns.items()}, "cell": [key] * n, **per_row})


def narrow(records: Mapping[str, dict[str, Any]], filters: Mapping[str, Any], nothing: str) -> list[str]:
    """Keys of the records that match every filter, applied in order; a filter naming no
    column or matching none of the remaining records is a one-line error (``nothing``: how
    it starts) listing what there is."""
    known = sorted({c for record in records.values() for c in record})
    keys = list(records)
    for column, wanted in filters.items():
        if column not in known:
            raise MMBenchError(f"unknown column '{column}'{did_you_mean(column, known)}; filter by "
                               f"{', '.join(known)}")
        kept = [k for k in keys if matches(records[k].get(column), wanted)]
        if not kept:
            values = distinct(records[k].get(column) for k in keys)
            hint = did_you_mean(str(wanted), values) if isinstance(wanted, str) else ""
            raise MMBenchError(f"{nothing} has {column} {wanted!r}{hint}; {column} there is one of "
                               f"{', '.join(values)}")
        keys = kept
    return keys


def matches(value: Any, wanted: Any) -> bool:
    """``value`` equals ``wanted``, or one of its values when ``wanted`` is a list, tuple or set
    (numbers compare as numbers, so ``severity=1`` matches 1.0)."""
    if same(value, wanted):
        return True
    return isinstance(wanted, (list, tuple, set, frozenset)) and any(same(value, w) for w in wanted)


def same(value: Any, wanted: Any) -> bool:
    numbers = (int, float, np.integer, np.floating)
    if isinstance(value, numbers) and isinstance(wanted, numbers):
        return bool(float(value) == float(wanted))
    return bool(value == wanted)


def distinct(values: Iterable[Any]) -> list[str]:
    return list(dict.fromkeys(str(v) for v in values if v is not None))


def load_model(results_dir: str | Path, *, dataset: str, model: str, recipe: str = "standard",
               seed: int | None = None, device: str | torch.device = "cpu",
               cache_dir: str | Path | None = None, data_root: str | None = None,
               trust_pickle: bool = False) -> nn.Module:
    """The trained module that the cells of ``model`` trained with ``recipe`` (and ``seed``;
    needed when the suite trained several) on ``dataset`` used: built as the run built it,
    its checkpoint loaded from the cache, on ``device``, in eval mode. A plain module comes
    back as itself (not wrapped), so it is called the way its ``forward`` declares.

    ``cache_dir``: the checkpoint cache the run used (``--cache-dir``); by default
    ``results/.cache/checkpoints`` and the ``.cache/checkpoints`` next to ``results_dir``.
    ``data_root`` / ``trust_pickle``: as for the run, to load the dataset (its modalities and
    classes shape the model)."""
    folder = Path(results_dir)
    store = open_existing(folder)
    try:
        trained, config = train_cells(store), store.config() or {}
    finally:
        store.close()
    cell = one_train_cell(trained, folder, {"dataset": dataset, "model": model, "recipe": recipe, "seed": seed})
    suite = parse_suite(dict(config), f"{folder}'s suite")
    data = load_one(suite, dataset, trust_pickle, data_root)
    built = build_trained(suite, data, cell, model, dataset)
    load_checkpoint(built, cell, cache_roots(folder, cache_dir))
    module = built.module if isinstance(built, PlainModel) else built
    return module.to(device).eval()


def train_cells(store: Store) -> dict[str, dict[str, Any]]:
    """Key -> dataset, model, recipe, seed (from the cell's name ``d/m/r/seedN``), name, status
    and error of every training cell of the latest run."""
    return {s.key: train_record(s) for s in store.statuses() if s.kind == "train"}


def train_record(status: CellStatus) -> dict[str, Any]:
    dataset, model, recipe, seed = status.name.rsplit("/", 3)
    return {"dataset": dataset, "model": model, "recipe": recipe, "seed": int(seed.removeprefix("seed")),
            "name": status.name, "status": status.status, "error": status.error}


def one_train_cell(trained: Mapping[str, dict[str, Any]], folder: Path,
                   wanted: dict[str, Any]) -> dict[str, Any]:
    """The one training cell matching ``wanted`` (a one-line error for none, several, or one
    that failed), with its ``key``."""
    filters = {k: v for k, v in wanted.items() if v is not None}
    keys = narrow(trained, filters, f"no training cell of {folder}")
    if len(keys) > 1:
        seeds = ", ".join(str(trained[k]["seed"]) for k in keys)
        raise MMBenchError(f"{wanted['model']} ({wanted['recipe']}) on {wanted['dataset']} was trained with "
                           f"seeds {seeds} in {folder}; pass seed= one of them")
    cell = {**trained[keys[0]], "key": keys[0]}
    if cell["status"] != "done":
        raise MMBenchError(f"{cell['name']} has no trained model: its training is {cell['status']}"
                           f"{': ' + cell['error'] if cell['error'] else ''}; rerun its suite")
    return cell


def load_one(suite: Suite, dataset: str, trust_pickle: bool, data_root: str | None) -> MultimodalDataset:
    """The dataset labelled ``dataset`` of the suite, loaded as the run loaded it."""
    comp = next(c for c in suite.datasets if label_of(c) == dataset)
    return load_datasets(dataclasses.replace(suite, datasets=(comp,)), trust_pickle, data_root)[dataset]


def build_trained(suite: Suite, data: MultimodalDataset, cell: dict[str, Any], model: str,
                  dataset: str) -> nn.Module:
    """The untrained model of ``cell``, built as the run built it (the caller's random state
    is left as it was)."""
    comp = next(c for c in expand_models(suite, data) if label_of(c) == model)
    if comp.name == MODEL_ENTRY:
        raise MMBenchError(f"{cell['name']} was evaluated by mmbench.evaluate(), which trains and stores no "
                           "model: it is the module you passed")
    with torch.random.fork_rng(devices=[]):
        return build_model(comp.name, data.modalities, data.n_classes, comp.params, model, f"dataset '{dataset}'")


def cache_roots(folder: Path, cache_dir: str | Path | None) -> list[Path]:
    """Where to look for checkpoints: ``cache_dir``, else the runner's default cache and the
    one next to the results folder."""
    if cache_dir is not None:
        return [Path(cache_dir)]
    roots = [cache_folder(None), folder.parent / ".cache" / "checkpoints"]
    return list({root.resolve(): root for root in roots}.values())


def load_checkpoint(model: nn.Module, cell: dict[str, Any], roots: Sequence[Path]) -> None:
    """Load the cell's cached weights into ``model``; a one-line error naming the caches
    looked in when none holds them."""
    for root in roots:
        cache = CheckpointCache(root)
        if cache.path(cell["key"]).is_file():
            if cache.load(cell["key"], model) is None:
                raise MMBenchError(f"the checkpoint {cache.path(cell['key'])} of {cell['name']} fails its "
                                   "check (see the warning above); rerun the suite to retrain it")
            log.info("loaded %s from %s", cell["name"], cache.path(cell["key"]))
            return
    looked = ", ".join(str(root) for root in roots)
    raise MMBenchError(f"the checkpoint of {cell['name']} (key {cell['key'][:12]}) is not in {looked}; pass "
                       "cache_dir= the checkpoint cache the run used (its --cache-dir)")
