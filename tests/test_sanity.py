"""Adversarial sanity checks on hand-made attack rows: each check fires when it should, only then."""

from __future__ import annotations

import pandas as pd

from mmbench.stats.sanity import DatasetFacts, sanity_checks
from mmbench.store.rows import TidyRow, rows_to_frame

FACTS = {"d": DatasetFacts(n_classes=10, all_attackable=True)}


def _rows(spec: dict[tuple[str, str, float], float]) -> pd.DataFrame:
    """(perturbation, target, eps) -> accuracy, for one model: the attack rows (``attack`` and
    ``norm`` columns), as the adversarial family hands them to the checks."""
    adv = [TidyRow("s", "d", "m", "standard", 0, "adversarial", p, t, e,
                   facts={"attack": p.split("-")[0], "norm": p.split("-")[1]},
                   metric="accuracy", value=v, n=100) for (p, t, e), v in spec.items()]
    return rows_to_frame(adv)


def _failed(frame: pd.DataFrame, facts=FACTS) -> set[str]:
    flags = sanity_checks(frame, facts)
    return set(flags.loc[~flags["passed"], "check"])


def test_sound_results_pass_every_check() -> None:
    frame = _rows({("pgd-Linf", "all", 0.05): 0.6, ("pgd-Linf", "all", 0.4): 0.02,
                   ("square-Linf", "all", 0.05): 0.7, ("square-Linf", "all", 0.4): 0.1})
    flags = sanity_checks(frame, FACTS)
    assert set(flags["check"]) == {"monotone", "large_eps", "gradient_masking"}
    assert flags["passed"].all()


def test_accuracy_rising_with_eps_is_flagged() -> None:
    frame = _rows({("pgd-Linf", "a", 0.05): 0.6, ("pgd-Linf", "a", 0.1): 0.7})
    assert _failed(frame) == {"monotone"}
    within_one_sample = _rows({("pgd-Linf", "a", 0.05): 0.60, ("pgd-Linf", "a", 0.1): 0.61})
    assert _failed(within_one_sample) == set()


def test_large_joint_eps_must_reach_chance() -> None:
    frame = _rows({("pgd-Linf", "all", 0.4): 0.5})
    assert _failed(frame) == {"large_eps"}
    # not checked when 'all' leaves a token modality clean, or for a single-modality target
    assert _failed(frame, {"d": DatasetFacts(10, all_attackable=False)}) == set()
    assert _failed(_rows({("pgd-Linf", "a", 0.4): 0.5})) == set()
    assert _failed(_rows({("pgd-Linf", "all", 0.1): 0.5})) == set()


def test_black_box_beating_white_box_flags_gradient_masking() -> None:
    frame = _rows({("pgd-Linf", "a", 0.1): 0.8, ("fgsm-Linf", "a", 0.1): 0.85,
                   ("square-Linf", "a", 0.1): 0.5})
    flags = sanity_checks(frame, FACTS)
    failed = flags[~flags["passed"]]
    assert list(failed["check"]) == ["gradient_masking"]
    assert "black-box 0.500 < white-box 0.800" in failed["detail"].iloc[0]


def test_no_adversarial_rows_no_checks() -> None:
    assert sanity_checks(_rows({}).assign(attack=[], norm=[]), FACTS).empty
