"""Exact Shapley values of modalities from a missing-modality sweep.

With players N (the modalities) and v(S) the score when only S is present (the others imputed),
phi_i = sum over S in N \\ {i} of |S|! (|N| - |S| - 1)! / |N|! * (v(S + i) - v(S)). The values sum
to v(N) - v(empty set) (efficiency). v comes from the rows of a missing-modality sweep: their
``kept`` column is the present set (``a+b``, ``none``), ``imputation`` how the rest was filled.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

import pandas as pd

GROUP = ["dataset", "model", "recipe", "seed", "imputation", "metric"]
NONE = "none"


def shapley_values(v: Mapping[frozenset[str], float], players: Sequence[str]) -> dict[str, float]:
    """Exact Shapley values; ``v`` must hold every subset of ``players``."""
    n = len(players)
    weights = [math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n) for k in range(n)]
    phi = {}
    for i in players:
        others = [p for p in players if p != i]
        phi[i] = sum(
            weights[k] * (v[frozenset(s) | {i}] - v[frozenset(s)])
            for k in range(n) for s in itertools.combinations(others, k)
        )
    return phi


def kept_set(kept: str) -> frozenset[str]:
    """The present modalities of a row from its ``kept`` column."""
    return frozenset() if kept == NONE else frozenset(kept.split("+"))


def modality_shapley(rows: pd.DataFrame, players_by_dataset: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """One row per (dataset, model, recipe, seed, imputation, metric, modality) with its Shapley
    value, for every group of sweep ``rows`` that covers all subsets; also v(all) and v(none)."""
    out = []
    for key, g in rows.groupby(GROUP, sort=True):
        players = list(players_by_dataset.get(key[0], ()))
        v = {kept_set(k): val for k, val in zip(g["kept"], g["value"], strict=True)}
        if len(v) < 2 ** len(players) or not players:
            continue
        for modality, phi in shapley_values(v, players).items():
            out.append(dict(zip(GROUP, key, strict=True), modality=modality, shapley=phi,
                            v_all=v[frozenset(players)], v_none=v[frozenset()]))
    return pd.DataFrame(out, columns=GROUP + ["modality", "shapley", "v_all", "v_none"])


def worst_single_missing(rows: pd.DataFrame, players_by_dataset: Mapping[str, Sequence[str]],
                         higher_is_better: bool = True) -> pd.DataFrame:
    """Per group, the worst value with exactly one modality missing, and which one it was."""
    out = []
    for key, g in rows.groupby(GROUP, sort=True):
        players = frozenset(players_by_dataset.get(key[0], ()))
        one = [(next(iter(players - kept_set(k))), val) for k, val in zip(g["kept"], g["value"], strict=True)
               if len(players - kept_set(k)) == 1]
        if one:
            modality, value = (min if higher_is_better else max)(one, key=lambda x: x[1])
            out.append(dict(zip(GROUP, key, strict=True), modality=modality, value=value))
    return pd.DataFrame(out, columns=GROUP + ["modality", "value"])


def single_modality_views(rows: pd.DataFrame, players_by_dataset: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """The two views of a sweep one modality at a time: ``leave_one_out`` (only that modality
    missing) and ``only_one`` (only that modality present). One row per group, view and modality
    for which the sweep has that subset."""
    out = []
    for key, g in rows.groupby(GROUP, sort=True):
        players = list(players_by_dataset.get(key[0], ()))
        v = {kept_set(k): val for k, val in zip(g["kept"], g["value"], strict=True)}
        for m in players:
            for view, kept in (("leave_one_out", frozenset(players) - {m}), ("only_one", frozenset({m}))):
                if kept in v and len(players) > 1:
                    out.append(dict(zip(GROUP, key, strict=True), view=view, modality=m, value=v[kept]))
    return pd.DataFrame(out, columns=GROUP + ["view", "modality", "value"])
