"""Sanity checks on adversarial results (Carlini et al. 2019's checklist, RobustBench's rules).

From the accuracy rows of attacks (columns ``attack`` and ``norm``):

- ``monotone``: robust accuracy does not increase with eps (one sample of slack);
- ``large_eps``: when a joint attack on every modality reaches a very large eps, accuracy falls to
  about chance (at most 1/n_classes + 0.1);
- ``gradient_masking``: no black-box attack beats the best white-box attack by more than 0.05 at
  the same target and eps (if it does, gradients are probably masked);
- ``robust_le_clean``: accuracy under an attack is never above clean accuracy on the same rows
  (an attack that fails everywhere leaves it equal; above means the attack made wrongly
  classified rows right, i.e. it does not maximise the loss it should).

Each check gives one row: what was checked, whether it passed, and a one-line detail.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from mmbench.perturb.attacks import CATALOGUE

#: eps from which a joint attack must drive accuracy to about chance, per norm
LARGE_EPS = {"Linf": 0.3, "L2": 3.0, "L1": 30.0, "L0": 0.5}
MASKING_MARGIN = 0.05
CHANCE_MARGIN = 0.1
GROUP = ["dataset", "model", "recipe", "seed"]


@dataclass(frozen=True)
class DatasetFacts:
    """What the checks need to know about a dataset."""

    n_classes: int
    all_attackable: bool  # 'all' covers every modality (no token modality left clean)


def check_monotone(rows: pd.DataFrame) -> list[dict]:
    out = []
    for key, g in rows.groupby(GROUP + ["perturbation", "target"], sort=True):
        g = g.sort_values("severity")
        slack = 1.0 / g["n"].max()
        rises = g["value"].diff().fillna(0) > slack + 1e-9
        detail = "" if not rises.any() else (
            f"accuracy rises at eps={', '.join(str(e) for e in g.loc[rises, 'severity'])}")
        out.append(_flag(key, "monotone", not rises.any(), detail))
    return out


def check_large_eps(rows: pd.DataFrame, facts: dict[str, DatasetFacts]) -> list[dict]:
    out = []
    joint = rows[rows["target"] == "all"]
    for key, g in joint.groupby(GROUP + ["perturbation", "target"], sort=True):
        top = g.loc[g["severity"].idxmax()]
        info = facts.get(top["dataset"])
        if info is None or not info.all_attackable or top["severity"] < LARGE_EPS[top["norm"]]:
            continue
        limit = 1.0 / info.n_classes + CHANCE_MARGIN
        ok = top["value"] <= limit
        detail = "" if ok else f"accuracy {top['value']:.3f} at eps={top['severity']} exceeds {limit:.3f}"
        out.append(_flag(key, "large_eps", ok, detail))
    return out


def check_gradient_masking(rows: pd.DataFrame) -> list[dict]:
    out = []
    known = rows[rows["attack"].isin(CATALOGUE)]
    black = known["attack"].map(lambda a: CATALOGUE[a].black_box)
    for key, g in known.groupby(GROUP + ["target", "severity", "norm"], sort=True):
        is_black = black[g.index]
        if is_black.all() or not is_black.any():
            continue
        best_black, best_white = g.loc[is_black, "value"].min(), g.loc[~is_black, "value"].min()
        ok = best_black >= best_white - MASKING_MARGIN
        detail = "" if ok else (f"black-box {best_black:.3f} < white-box {best_white:.3f} at "
                                f"eps={key[-2]} ({key[-1]})")
        out.append(_flag(key[:4] + ("*", key[4]), "gradient_masking", ok, detail))
    return out


def check_robust_le_clean(rows: pd.DataFrame, clean: pd.DataFrame) -> list[dict]:
    """``clean``: the clean accuracy of the same rows (columns as :meth:`Context.clean_on`)."""
    on = ["dataset", "model", "recipe", "seed", "split", "rows"]
    merged = rows.merge(clean.rename(columns={"value": "unperturbed"}), on=on)
    out = []
    for key, g in merged.groupby(GROUP + ["perturbation", "target"], sort=True):
        above = g["value"] > g["unperturbed"] + 1e-12
        detail = "" if not above.any() else (
            f"accuracy {g.loc[above, 'value'].max():.4f} above clean {g.loc[above, 'unperturbed'].iloc[0]:.4f} on the same "
            f"{int(g['n'].iloc[0])} rows at eps={', '.join(f'{e:g}' for e in g.loc[above, 'severity'])}")
        out.append(_flag(key, "robust_le_clean", not above.any(), detail))
    return out


def _flag(key: tuple, check: str, passed: bool, detail: str) -> dict:
    dataset, model, recipe, seed, perturbation, target = key[:6]
    return {"dataset": dataset, "model": model, "recipe": recipe, "seed": seed, "check": check,
            "perturbation": perturbation, "target": target, "passed": bool(passed), "detail": detail}


CHECK_COLUMNS = ["dataset", "model", "recipe", "seed", "check", "perturbation", "target", "passed", "detail"]


def sanity_checks(rows: pd.DataFrame, facts: dict[str, DatasetFacts],
                  clean: pd.DataFrame | None = None) -> pd.DataFrame:
    """All checks of attack accuracy ``rows`` as a frame (empty when there are none); ``clean``:
    clean accuracy on the same rows (see :func:`check_robust_le_clean`)."""
    flags = check_monotone(rows) + check_large_eps(rows, facts) + check_gradient_masking(rows)
    if clean is not None:
        flags += check_robust_le_clean(rows, clean)
    return pd.DataFrame(flags, columns=CHECK_COLUMNS)
