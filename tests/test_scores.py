"""Every leaderboard score against a hand-computed example (docs/metrics.md has the formulas)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmbench.metrics.scores import BY_NAME, SCORES, area_under, compute_scores, score_intervals


def _row(model, family, perturbation, target, severity, value, seed=0):
    return dict(suite="s", dataset="d", model=model, recipe="r", seed=seed, family=family,
                perturbation=perturbation, target=target, severity=float(severity), metric="accuracy",
                value=value, n=100, cell=f"{model}/{family}/{perturbation}/{target}/{severity}/{seed}")


def _frame() -> pd.DataFrame:
    rows = []
    for m, clean, adv, subsets, rates, shift, natural in (
        ("A", 0.9, {(0.1, "fgsm"): 0.7, (0.1, "pgd"): 0.6, (0.2, "fgsm"): 0.5, (0.2, "pgd"): 0.4},
         {"a": 0.7, "b": 0.5, "none": 0.9, "all": 0.25}, {0.0: 0.9, 0.2: 0.8, 0.4: 0.6}, (0.8, 0.6),
         {"id": 0.9, "ood": 0.7, "q1": 0.95}),
        ("B", 0.8, {(0.1, "fgsm"): 0.5, (0.1, "pgd"): 0.55, (0.2, "fgsm"): 0.3, (0.2, "pgd"): 0.2},
         {"a": 0.6, "b": 0.4, "none": 0.8, "all": 0.25}, {0.0: 0.8, 0.2: 0.6, 0.4: 0.4}, (0.7, 0.5),
         {"id": 0.8, "ood": 0.5, "q1": 0.85}),
    ):
        rows.append(_row(m, "clean", "clean", "all", 0, clean))
        rows += [_row(m, "adversarial", f"{a}-Linf", "x", eps, v) for (eps, a), v in adv.items()]
        rows += [_row(m, "dropout", "missing-zeros", t, 1, v) for t, v in subsets.items()]
        rows += [_row(m, "dropout", "random-zeros", "all", r, v) for r, v in rates.items()]
        rows += [_row(m, "shift", "noise", "x", s, v) for s, v in zip((1, 2), shift, strict=True)]
        rows += [_row(m, "shift", "natural", g, 0, v) for g, v in natural.items()]
    return pd.DataFrame(rows)


EXPECTED = {  # (A, B), worked out by hand in the comments
    "clean_accuracy": (0.9, 0.8),
    "adv_robust_accuracy": ((0.6 + 0.4) / 2, (0.5 + 0.2) / 2),               # worst attack per eps
    "adv_relative_robustness": ((0.1 * 1.5 / 2 + 0.1 * 1.0 / 2) / 0.2,       # clean at eps 0
                                (0.1 * 1.3 / 2 + 0.1 * 0.7 / 2) / 0.2),
    "missing_worst_subset": (0.5, 0.4),                                       # 'all' (none kept) excluded
    "missing_mean_rate": ((0.9 + 0.8 + 0.6) / 3, (0.8 + 0.6 + 0.4) / 3),
    "missing_relative_robustness": ((0.2 * 1.7 / 2 + 0.2 * 1.4 / 2) / 0.4, (0.2 * 1.4 / 2 + 0.2 * 1.0 / 2) / 0.4),
    "missing_relative_robustness_fixed_step": (0.1 * 1.7 / 2 + 0.1 * 1.4 / 2, 0.1 * 1.4 / 2 + 0.1 * 1.0 / 2),
    "shift_mean_accuracy": (0.7, 0.6),
    "shift_relative_robustness": ((0.2 * 1.7 / 2 + 0.2 * 1.4 / 2) / 0.4, (0.2 * 1.5 / 2 + 0.2 * 1.2 / 2) / 0.4),
    "mce": (1.0, 0.8 / 0.6),
    "relative_mce": (1.0, (0.8 - 2 * 0.2) / (0.6 - 2 * 0.1)),
    "ood_accuracy": (0.7, 0.5),
    "worst_group_accuracy": (0.7, 0.5),
    "composite": ((0.5 + 2.3 / 3 + 0.7) / 3, (0.35 + 0.6 + 0.6) / 3),
    "effective_robustness": (0.0, ((0.35 + 0.6 + 0.6) / 3 - (0.5 + 2.3 / 3 + 0.7) / 3) - (0.8 - 0.9)),
}


@pytest.mark.parametrize("score", [s.name for s in SCORES])
def test_every_score_by_hand(score: str) -> None:
    table = compute_scores(_frame(), reference="A")
    got = table[table["score"] == score].set_index("model")["value"]
    assert (got["A"], got["B"]) == pytest.approx(EXPECTED[score]), score
    assert BY_NAME[score].description


def test_seeds_are_averaged_first() -> None:
    frame = _frame()
    clean = frame[frame["family"] == "clean"].copy()
    frame = pd.concat([frame, clean.assign(seed=1, value=clean["value"] - 0.1)])
    got = compute_scores(frame).query("score == 'clean_accuracy'").set_index("model")["value"]
    assert (got["A"], got["B"]) == pytest.approx((0.85, 0.75))


def test_area_under_uses_the_real_spacing() -> None:
    assert area_under(np.array([0.0, 0.1, 0.5]), np.array([1.0, 1.0, 0.0])) == pytest.approx((0.1 + 0.2) / 0.5)
    assert area_under(np.array([0.0, 0.1, 0.5]), np.array([1.0, 1.0, 0.0]), fixed_step=0.1) == pytest.approx(0.15)


def test_score_intervals_come_from_replicates() -> None:
    frame = _frame()
    reps = {c: v + np.linspace(-0.05, 0.05, 101) for c, v in zip(frame["cell"], frame["value"], strict=True)}
    table = score_intervals(frame, reps, "A").set_index(["model", "score"])
    row = table.loc[("B", "clean_accuracy")]
    assert row["ci_low"] == pytest.approx(0.8 - 0.0475) and row["ci_high"] == pytest.approx(0.8 + 0.0475)
    assert table.loc[("A", "mce"), "ci_low"] == pytest.approx(1.0)  # the reference against itself


def test_every_score_is_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "metrics.md").read_text()
    for score in SCORES:
        assert f"| `{score.name}` | {'yes' if score.higher_is_better else 'no'} |" in doc, score.name
