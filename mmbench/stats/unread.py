"""Cells that perturb only modalities a model does not read.

Attacking, corrupting or dropping a modality that a model never takes cannot change its output,
so such a cell's value equals the clean one: shown as a number, it would look like perfect
robustness. These cells are identified from each row's ``target`` (the perturbed modalities:
``a``, ``a+b`` or ``all``) and the modalities each model takes; the analysis leaves them out of
every average, score and the composite (results.csv keeps them, with ``read`` false), and the
boards say "not read".
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

ALL = "all"
NOT_READ = "not read"


def perturbed(target: str, modalities: tuple[str, ...]) -> frozenset[str] | None:
    """The modalities ``target`` perturbs (None when it does not name modalities, e.g. ``k=1``)."""
    if target == ALL:
        return frozenset(modalities)
    parts = frozenset(str(target).split("+"))
    return parts if parts <= set(modalities) else None


def unread_rows(frame: pd.DataFrame, modalities: Mapping[str, tuple[str, ...]],
                reads: Mapping[str, Mapping[str, tuple[str, ...]]]) -> pd.Series:
    """Per row of ``frame``: whether it perturbs only modalities its model does not take
    (``modalities``: dataset -> its modalities; ``reads``: dataset -> model -> those taken)."""
    out = np.zeros(len(frame), dtype=bool)
    if frame.empty:
        return pd.Series(out, index=frame.index)
    keys = frame[["dataset", "model", "target"]].astype(str)
    for (dataset, model, target), index in keys.groupby(["dataset", "model", "target"]).groups.items():
        if not_read(target, model, modalities.get(dataset, ()), reads.get(dataset, {})):
            out[frame.index.get_indexer(index)] = True
    return pd.Series(out, index=frame.index)


def masked(frame: pd.DataFrame, unread: pd.Series) -> pd.DataFrame:
    """``frame`` without its ``unread`` rows: no score, average or board reads them (a board
    shows "not read" where a model lacks the cell)."""
    return frame[~unread] if unread.any() else frame


def not_read(target: str, model: str, modalities: tuple[str, ...],
             reads: Mapping[str, tuple[str, ...]]) -> bool:
    """Whether a board column of ``target`` perturbs nothing ``model`` reads."""
    taken = reads.get(model)
    touched = perturbed(target, modalities)
    return taken is not None and touched is not None and not touched & set(taken)
