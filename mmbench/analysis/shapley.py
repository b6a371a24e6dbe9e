"""Exact Shapley values of modalities from a missing-modality sweep.

With players N (the modalities) and v(S) the score when only S is present (the others imputed),
phi_i = sum over S in N \\ {i} of |S|! (|N| - |S| - 1)! / |N|! * (v(S + i) - v(S)). The values sum
to v(N) - v(empty set) (efficiency). v comes from the tidy rows of the ``missing`` perturbation,
whose ``target`` is the missing set.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

import pandas as pd

GROUP = ["dataset", "model", "recipe", "seed", "perturbation", "metric"]


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


def kept_set(target: str, players: Sequence[str]) -> frozenset[str]:
    """The present modalities of a ``missing`` row, from its missing-set ``target``."""
    if target == "none":
        return frozenset(players)
    if target == "all":
        return frozenset()
    return frozenset(players) - set(target.split("+"))


def modality_shapley(frame: pd.DataFrame, players_by_dataset: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """One row per (dataset, model, recipe, seed, imputation, metric, modality) with its Shapley
    value, for every group whose sweep covers all subsets; also v(all) and v(none)."""
    rows = frame[(frame["family"] == "dropout") & frame["perturbation"].str.startswith("missing-")]
    out = []
    for key, g in rows.groupby(GROUP, sort=True):
        players = list(players_by_dataset.get(key[0], ()))
        v = {kept_set(t, players): val for t, val in zip(g["target"], g["value"], strict=True)}
        if len(v) < 2 ** len(players) or not players:
            continue
        for modality, phi in shapley_values(v, players).items():
            out.append(dict(zip(GROUP, key, strict=True), imputation=key[4].split("-", 1)[1], modality=modality,
                            shapley=phi, v_all=v[frozenset(players)], v_none=v[frozenset()]))
    columns = GROUP + ["imputation", "modality", "shapley", "v_all", "v_none"]
    return pd.DataFrame(out, columns=columns)


def worst_single_missing(frame: pd.DataFrame) -> pd.DataFrame:
    """Per group, the lowest score with exactly one modality missing, and which one it was."""
    rows = frame[(frame["family"] == "dropout") & frame["perturbation"].str.startswith("missing-")
                 & (frame["severity"] == 1.0)]
    if rows.empty:
        return pd.DataFrame(columns=GROUP + ["modality", "value"])
    idx = rows.groupby(GROUP, sort=True)["value"].idxmin()
    worst = rows.loc[idx, GROUP + ["target", "value"]].rename(columns={"target": "modality"})
    return worst.reset_index(drop=True)


def single_modality_views(frame: pd.DataFrame, players_by_dataset: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """The two views of a sweep one modality at a time: ``leave_one_out`` (only that modality
    missing) and ``only_one`` (only that modality present). One row per group, view and modality
    for which the sweep has that subset."""
    rows = frame[(frame["family"] == "dropout") & frame["perturbation"].str.startswith("missing-")]
    out = []
    for key, g in rows.groupby(GROUP, sort=True):
        players = list(players_by_dataset.get(key[0], ()))
        v = {kept_set(t, players): val for t, val in zip(g["target"], g["value"], strict=True)}
        for m in players:
            for view, kept in (("leave_one_out", frozenset(players) - {m}), ("only_one", frozenset({m}))):
                if kept in v and len(players) > 1:
                    out.append(dict(zip(GROUP, key, strict=True), imputation=key[4].split("-", 1)[1],
                                    view=view, modality=m, value=v[kept]))
    return pd.DataFrame(out, columns=GROUP + ["imputation", "view", "modality", "value"])
