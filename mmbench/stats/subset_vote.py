"""Certified robustness to whole corrupted modalities from the kept-subset sweep.

The subset-vote classifier g_s predicts, for a row, the majority vote of the model's
predictions on every kept subset of exactly ``s`` of the sweep's ``M`` modalities (the others
imputed); ties go to the lower class index. An adversary who replaces ``k`` whole modalities
arbitrarily changes only the votes of subsets that contain one of them: at most
``C(M, s) - C(M - k, s)`` votes. Each changed vote lowers the winner's count by at most one and
raises one rival's by at most one, so the winner cannot change while its margin (its count minus
the runner-up's) exceeds twice that number. No forward pass is needed: the votes are the stored
per-row predictions of the sweep's cells.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations
from math import comb

import numpy as np


def affected_votes(m: int, s: int, k: int) -> int:
    """How many of the C(m, s) kept subsets of size ``s`` contain at least one of ``k`` given
    modalities (the votes an adversary on ``k`` whole modalities can change)."""
    return comb(m, s) - comb(m - k, s) if k <= m else comb(m, s)


def vote(preds: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The vote of ``preds`` [rows, voters]: per row the winner (ties to the lower class index),
    its margin over the runner-up, and every class's count [rows, n_classes]."""
    rows = np.arange(preds.shape[0])
    counts = np.zeros((preds.shape[0], n_classes), dtype=np.int64)
    for column in preds.T:
        np.add.at(counts, (rows, column.astype(np.int64)), 1)
    winner = counts.argmax(axis=1)  # argmax returns the first maximum: the lower class index
    rest = counts.copy()
    rest[rows, winner] = -1
    margin = counts[rows, winner] - rest.max(axis=1) if n_classes > 1 else counts[rows, winner]
    return winner, margin, counts


def certified(margin: np.ndarray, m: int, s: int, k: int) -> np.ndarray:
    """Rows whose vote winner no change of ``k`` whole modalities can alter."""
    return margin > 2 * affected_votes(m, s, k)


def subsets_of(modalities: Sequence[str], s: int) -> list[frozenset[str]]:
    return [frozenset(c) for c in combinations(sorted(modalities), s)]


def complete_sizes(kept: Mapping[frozenset[str], object]) -> tuple[list[str], list[int]]:
    """The sweep's modalities (the union of its kept subsets) and the subset sizes ``s`` for which
    every kept subset of that size is present."""
    modalities = sorted(set().union(*kept)) if kept else []
    sizes = [s for s in range(1, len(modalities) + 1)
             if all(sub in kept for sub in subsets_of(modalities, s))]
    return modalities, sizes
