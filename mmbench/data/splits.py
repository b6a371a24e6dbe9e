"""Seeded stratified splitting and train-only normalisation (no test-set leakage)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SplitIndices:
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def stratified_split(
    labels: np.ndarray, val_fraction: float, test_fraction: float, seed: int
) -> SplitIndices:
    """Split row indices per class, so that every split keeps the class proportions.

    Each class is shuffled with a generator seeded by ``seed``; its first ``test_fraction`` rows go
    to test, the next ``val_fraction`` to validation, the rest to training.
    """
    if not (0 < test_fraction < 1 and 0 <= val_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError("need 0 < test_fraction, 0 <= val_fraction and their sum below 1")
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for cls in np.unique(labels):
        rows = np.flatnonzero(labels == cls)
        rows = rows[rng.permutation(len(rows))]
        n_test = int(round(test_fraction * len(rows)))
        n_val = int(round(val_fraction * len(rows)))
        parts["test"].append(rows[:n_test])
        parts["val"].append(rows[n_test:n_test + n_val])
        parts["train"].append(rows[n_test + n_val:])
    return SplitIndices(**{k: np.sort(np.concatenate(v)) for k, v in parts.items()})


@dataclass(frozen=True)
class MinMaxScaler:
    """Affine map of each feature to [0, 1] using statistics of the rows it was fitted on."""

    lo: np.ndarray
    hi: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, per_feature: bool = True) -> MinMaxScaler:
        if per_feature:
            return cls(x.min(axis=0), x.max(axis=0))
        return cls(np.asarray(x.min()), np.asarray(x.max()))

    def transform(self, x: np.ndarray, clip: bool = True) -> np.ndarray:
        """Scale, then (``clip``) clip to [0, 1]: unseen rows may fall outside the training range."""
        span = np.where(self.hi > self.lo, self.hi - self.lo, 1.0)
        scaled = (x - self.lo) / span
        return np.clip(scaled, 0.0, 1.0) if clip else scaled


def attribute_bins(values: np.ndarray, labels: np.ndarray, n_groups: int) -> np.ndarray:
    """Bin 0..n_groups-1 of each row by the quantile of ``values`` within its class (ties broken
    by row order), so every bin holds every class in the same proportion: a covariate shift,
    not a label shift."""
    bins = np.empty(len(values), dtype=np.int64)
    for cls in np.unique(labels):
        rows = np.flatnonzero(labels == cls)
        rank = np.argsort(np.argsort(values[rows], kind="stable"), kind="stable")
        bins[rows] = np.minimum(rank * n_groups // len(rows), n_groups - 1)
    return bins


def attribute_split(labels: np.ndarray, seed: int, val_fraction: float, test_fraction: float,
                    attribute: np.ndarray | None = None, n_groups: int = 4) -> dict[str, np.ndarray]:
    """Row indices of train/val/test (seeded, stratified) and, with an ``attribute`` per row, of
    the evaluation groups of a natural shift: rows in the top of ``n_groups`` within-class
    quantile bins are held out as ``ood``, the others are split, and the in-distribution test
    rows of each lower bin form ``q1``..``q{n-1}``."""
    if attribute is None:
        idx = stratified_split(labels, val_fraction, test_fraction, seed)
        return {"train": idx.train, "val": idx.val, "test": idx.test}
    bins = attribute_bins(attribute, labels, n_groups)
    inside = np.flatnonzero(bins < n_groups - 1)
    idx = stratified_split(labels[inside], val_fraction, test_fraction, seed)
    out = {"train": inside[idx.train], "val": inside[idx.val], "test": inside[idx.test]}
    for b in range(n_groups - 1):
        out[f"q{b + 1}"] = out["test"][bins[out["test"]] == b]
    out["ood"] = np.flatnonzero(bins == n_groups - 1)
    return out
