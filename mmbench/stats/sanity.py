"""Sanity checks on adversarial results (Carlini et al. 2019's checklist, RobustBench's rules).

From the accuracy rows of attacks (columns ``attack`` and ``norm``), or, where there is no
accuracy (a regression or multilabel task), the rows of the score metric read in its direction
(``better``: larger or smaller values are better):

- ``monotone``: the robust value does not get better as eps grows (one sample of slack: 1/n of
  the largest value's magnitude);
- ``large_eps``: when a joint attack on every modality reaches a very large eps, accuracy falls to
  about chance (at most 1/n_classes + 0.1); accuracy of a classification only;
- ``gradient_masking``: no black-box attack beats the best white-box attack by more than 0.05 at
  the same target and eps (if it does, gradients are probably masked);
- ``robust_le_clean``: the value under an attack is never better than clean on the same rows
  (an attack that fails everywhere leaves it equal; better means the attack made wrong rows
  right, i.e. it does not maximise the loss it should); for a metric other than accuracy, by
  more than one row's share (the attack ascends the task's loss, the metric follows it only
  row by row).

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


@dataclass(frozen=True)
class CheckedMetric:
    """Which metric the checks read and in which direction."""

    metric: str = "accuracy"
    higher_is_better: bool = True

    def better(self, a: pd.Series | float, b: pd.Series | float) -> pd.Series | bool:
        """Whether ``a`` is better than ``b`` (elementwise)."""
        return a > b if self.higher_is_better else a < b

    def slack(self, values: pd.Series, n: float) -> float:
        """How much better a value may be before a check flags it: none for accuracy (an attack
        ascends the very loss whose argmax it reads), one row's share of the largest magnitude
        for another metric (an attack ascends the task's loss, which a metric such as micro-F1
        or MAE follows only row by row)."""
        return 0.0 if self.metric == "accuracy" else max(1.0, float(values.abs().max())) / n


def check_monotone(rows: pd.DataFrame, reading: CheckedMetric | None = None) -> list[dict]:
    reading = reading or CheckedMetric()
    out = []
    for key, g in rows.groupby(GROUP + ["perturbation", "target"], sort=True):
        g = g.sort_values("severity")
        slack = max(reading.slack(g["value"], g["n"].max()), 1.0 / g["n"].max())  # one sample at least
        step = g["value"].diff().fillna(0)
        rises = reading.better(step, slack + 1e-9) if reading.higher_is_better else reading.better(step, -slack - 1e-9)
        word = "rises" if reading.higher_is_better else "falls"
        detail = "" if not rises.any() else (
            f"{reading.metric} {word} at eps={', '.join(str(e) for e in g.loc[rises, 'severity'])}")
        out.append(_flag(key, "monotone", not rises.any(), detail))
    return out


def check_large_eps(rows: pd.DataFrame, facts: dict[str, DatasetFacts]) -> list[dict]:
    out = []
    joint = rows[rows["target"] == "all"]
    for key, g in joint.groupby(GROUP + ["perturbation", "target"], sort=True):
        top = g.loc[g["severity"].idxmax()]
        info = facts.get(top["dataset"])
        if info is None or not info.all_attackable or top["norm"] not in LARGE_EPS \
                or top["severity"] < LARGE_EPS[top["norm"]]:
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


def check_robust_le_clean(rows: pd.DataFrame, clean: pd.DataFrame,
                          reading: CheckedMetric | None = None) -> list[dict]:
    """``clean``: the clean value of the same rows (columns as :meth:`Context.clean_on`)."""
    reading = reading or CheckedMetric()
    on = ["dataset", "model", "recipe", "seed", "split", "rows"]
    merged = rows.merge(clean.rename(columns={"value": "unperturbed"}), on=on)
    out = []
    sign = 1.0 if reading.higher_is_better else -1.0
    for key, g in merged.groupby(GROUP + ["perturbation", "target"], sort=True):
        slack = reading.slack(pd.concat([g["value"], g["unperturbed"]]), g["n"].max())
        above = sign * (g["value"] - g["unperturbed"]) > slack + 1e-12
        best = g.loc[above, "value"].max() if reading.higher_is_better else g.loc[above, "value"].min()
        side = "above" if reading.higher_is_better else "below"
        detail = "" if not above.any() else (
            f"{reading.metric} {best:.4f} {side} clean {g.loc[above, 'unperturbed'].iloc[0]:.4f} on the same "
            f"{int(g['n'].iloc[0])} rows at eps={', '.join(f'{e:g}' for e in g.loc[above, 'severity'])}")
        out.append(_flag(key, "robust_le_clean", not above.any(), detail))
    return out


def _flag(key: tuple, check: str, passed: bool, detail: str) -> dict:
    dataset, model, recipe, seed, perturbation, target = key[:6]
    return {"dataset": dataset, "model": model, "recipe": recipe, "seed": seed, "check": check,
            "perturbation": perturbation, "target": target, "passed": bool(passed), "detail": detail}


CHECK_COLUMNS = ["dataset", "model", "recipe", "seed", "check", "perturbation", "target", "passed", "detail"]


def sanity_checks(rows: pd.DataFrame, facts: dict[str, DatasetFacts],
                  clean: pd.DataFrame | None = None, reading: CheckedMetric | None = None) -> pd.DataFrame:
    """All checks of attack ``rows`` of ``reading.metric`` as a frame (empty when there are
    none); ``clean``: its clean value on the same rows (see :func:`check_robust_le_clean`)."""
    reading = reading or CheckedMetric()
    flags = check_monotone(rows, reading)
    if reading.metric == "accuracy":
        flags += check_large_eps(rows, facts) + check_gradient_masking(rows)
    if clean is not None:
        flags += check_robust_le_clean(rows, clean, reading)
    return pd.DataFrame(flags, columns=CHECK_COLUMNS)
