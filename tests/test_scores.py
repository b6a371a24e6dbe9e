"""Every leaderboard score against a hand-computed example (docs/metrics.md has the formulas)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from mmbench.stats.curves import area_under
from mmbench.stats.direction import ScoreMetric
from mmbench.families.base import Context
from mmbench.families.scoring import compute_scores, score_replicates, score_specs, with_intervals

SCORES = score_specs()


def scores_of(frame: pd.DataFrame, reference: str = "", metric: ScoreMetric | None = None) -> pd.DataFrame:
    return compute_scores(Context(frame, metric or ScoreMetric(), reference, players={"d": ("a", "b")}))


def _row(model, family, perturbation, target, severity, value, seed=0, **facts):
    return dict(suite="s", dataset="d", model=model, recipe="r", seed=seed, family=family,
                perturbation=perturbation, target=target, severity=float(severity), split="test", rows=0,
                **facts, metric="accuracy", value=value, n=100,
                cell=f"{model}/{family}/{perturbation}/{target}/{severity}/{seed}")


#: missing set (old ``target``) -> kept set, with players a and b
KEPT = {"a": "b", "b": "a", "none": "a+b", "all": "none"}


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
        rows += [_row(m, "adversarial", f"{a}-Linf", "x", eps, v, attack=a, norm="Linf")
                 for (eps, a), v in adv.items()]
        rows += [_row(m, "missing", "missing-zeros", t, 1, v, imputation="zeros", kept=KEPT[t])
                 for t, v in subsets.items()]
        rows += [_row(m, "random_dropout", "random-zeros", "all", r, v, imputation="zeros") for r, v in rates.items()]
        rows += [_row(m, "shift", "noise", "x", s, v, corruption="noise", draws=3)
                 for s, v in zip((1, 2), shift, strict=True)]
        rows += [_row(m, "natural_shift", "natural", g, 0, v) for g, v in natural.items()]
        certified = {"A": {(1, 0): 0.8, (1, 1): 0.6, (2, 0): 0.85, (2, 1): 0.7},
                     "B": {(1, 0): 0.7, (1, 1): 0.5, (2, 0): 0.75, (2, 1): 0.3}}[m]
        rows += [_row(m, "subset_vote", f"subset_vote[s={size}]", f"k={k}", size, v, imputation="zeros")
                 for (size, k), v in certified.items()]
        rows += _compound_rows(m, *{"A": (0.45, 0.6, 0.5), "B": (0.3, 0.5, 0.4)}[m])
        smoothed = {"A": {(0.25, "a"): (0.9, 0.8, 0.6), (0.25, "all"): (0.8, 0.7, 0.3), (0.5, "a"): (0.9, 0.9, 0.8)},
                    "B": {(0.25, "a"): (0.8, 0.7, 0.5), (0.25, "all"): (0.7, 0.6, 0.1), (0.5, "a"): (0.6, 0.5, 0.4)}}[m]
        for (sigma, target), (clean_value, *certified_at) in smoothed.items():
            rows.append(_row(m, "smoothing", "smoothed", target, sigma, clean_value, sigma=sigma))
            rows += [_row(m, "smoothing", "certified", target, sigma, v, sigma=sigma, radius=r, acr=0.3, acr_hw=0.01)
                     for r, v in zip((0.0, 0.5), certified_at, strict=True)]
        masked = {"A": {2.0: (0.9, 0.8, 0.5), 0.5: (0.85, 0.85, 0.7)},
                  "B": {2.0: (0.8, 0.6, 0.2), 0.5: (0.7, 0.6, 0.5)}}[m]
        for keep, (clean_value, *certified_at) in masked.items():
            rows.append(_row(m, "masking", "masked", "t", keep, clean_value, keep=keep))
            rows += [_row(m, "masking", "certified", "t", keep, v, keep=keep, k=k)
                     for k, v in zip((0, 2), certified_at, strict=True)]
        rows += _token_rows(m)
    return pd.DataFrame(rows)


def _token_rows(model: str) -> list[dict]:
    """Token attacks at 1 and 2 positions, a joint cell and the diagnostic (neither counts)."""
    values = {"A": {(1, "hotflip"): 0.6, (1, "random_substitution"): 0.7, (2, "hotflip"): 0.4,
                    (2, "random_substitution"): 0.65},
              "B": {(1, "hotflip"): 0.5, (1, "random_substitution"): 0.45, (2, "hotflip"): 0.3,
                    (2, "random_substitution"): 0.35}}[model]
    rows = [_row(model, "token_attacks", f"{a}-tokens", "t", k, v, attack=a, norm="tokens")
            for (k, a), v in values.items()]
    rows.append(_row(model, "token_attacks", "pgd-Linf+hotflip-tokens", "all", 1, 0.1, attack="pgd+hotflip",
                     norm="Linf+tokens", continuous_eps=0.1, parts="x|t"))
    rows.append(_row(model, "token_attacks", "embedding_pgd-diagnostic", "t", 0.5, 0.05, attack="embedding_pgd",
                     norm="embedding L2 (diagnostic)"))
    return rows


def _compound_rows(model: str, both: float, first: float, second: float) -> list[dict]:
    """A missing stage then an attack, and each stage alone."""
    one = {"stage1_perturbation": "missing-zeros", "stage1_target": "a", "stage1_severity": 1.0, "stage1_key": "k1"}
    two = {"stage1_perturbation": "pgd-Linf", "stage1_target": "b", "stage1_severity": 0.1, "stage1_key": "k2"}
    return [_row(model, "compound", "missing-zeros>pgd-Linf", "a+b", 0.1, both, stages=2, **one,
                 **{k.replace("1", "2"): v for k, v in two.items()}),
            _row(model, "compound", "missing-zeros", "a", 1, first, stages=1, **one),
            _row(model, "compound", "pgd-Linf", "b", 0.1, second, stages=1, **two)]


COMPOSITE = ((0.5 + 0.5 + 0.5 + 2.3 / 3 + 0.7 + 0.7 + 0.45) / 7, (0.35 + 0.375 + 0.4 + 0.6 + 0.6 + 0.5 + 0.3) / 7)
EXPECTED = {  # (A, B), worked out by hand in the comments
    "clean_accuracy": (0.9, 0.8),
    "adv_robust_accuracy": ((0.6 + 0.4) / 2, (0.5 + 0.2) / 2),               # worst attack per eps
    "adv_relative_robustness": ((0.1 * 1.5 / 2 + 0.1 * 1.0 / 2) / 0.2,       # clean at eps 0
                                (0.1 * 1.3 / 2 + 0.1 * 0.7 / 2) / 0.2),
    "adv_clean_accuracy": (0.9, 0.8),                                         # clean on the attacked rows
    # worst realisable token attack per budget: joint cells and the diagnostic do not count
    "token_robust_accuracy": ((0.6 + 0.4) / 2, (0.45 + 0.3) / 2),
    "missing_worst_subset": (0.5, 0.4),                                       # 'all' (none kept) excluded
    "missing_worst_single": (0.5, 0.4),                                       # one of two missing: a or b
    "missing_mean_rate": ((0.9 + 0.8 + 0.6) / 3, (0.8 + 0.6 + 0.4) / 3),
    "missing_relative_robustness": ((0.2 * 1.7 / 2 + 0.2 * 1.4 / 2) / 0.4, (0.2 * 1.4 / 2 + 0.2 * 1.0 / 2) / 0.4),
    "missing_relative_robustness_fixed_step": (0.1 * 1.7 / 2 + 0.1 * 1.4 / 2, 0.1 * 1.4 / 2 + 0.1 * 1.0 / 2),
    "shift_mean_accuracy": (0.7, 0.6),
    "shift_relative_robustness": ((0.2 * 1.7 / 2 + 0.2 * 1.4 / 2) / 0.4, (0.2 * 1.5 / 2 + 0.2 * 1.2 / 2) / 0.4),
    "mce": (1.0, 0.8 / 0.6),
    "relative_mce": (1.0, (0.8 - 2 * 0.2) / (0.6 - 2 * 0.1)),
    "relative_mce_conditions": (1.0, 1.0),                                    # the one condition hurts A
    "ood_accuracy": (0.7, 0.5),
    "subset_vote_certified": (0.7, 0.5),                                      # best s at k=1; k=0 is g_s
    "worst_group_accuracy": (0.7, 0.5),
    "compound_worst": (0.45, 0.3),
    # best sigma of the mean over (target, radius) of certified values; 'smoothed' rows do not count
    "smoothing_certified": (max((0.8 + 0.6 + 0.7 + 0.3) / 4, (0.9 + 0.8) / 2), max((0.7 + 0.5 + 0.6 + 0.1) / 4, 0.45)),
    # best keep of the mean over (target, k) of certified values; 'masked' rows do not count
    "masking_certified": (max((0.8 + 0.5) / 2, (0.85 + 0.7) / 2), max((0.6 + 0.2) / 2, (0.6 + 0.5) / 2)),                                            # the stages alone do not count
    # every family present contributes its declared part: adversarial, token attacks, missing (worst subset),
    # random dropout (mean rate), shift (mean), natural shift (worst group) and compound (worst)
    "composite": COMPOSITE,
    "effective_robustness": (0.0, (COMPOSITE[1] - COMPOSITE[0]) - (0.8 - 0.9)),
}


@pytest.mark.parametrize("score", [s.name for s in SCORES])
def test_every_score_by_hand(score: str) -> None:
    table = scores_of(_frame(), reference="A")
    got = table[table["score"] == score].set_index("model")["value"]
    assert (got["A"], got["B"]) == pytest.approx(EXPECTED[score]), score
    assert next(s for s in SCORES if s.name == score).description


def test_seeds_are_averaged_first() -> None:
    frame = _frame()
    clean = frame[frame["family"] == "clean"].copy()
    frame = pd.concat([frame, clean.assign(seed=1, value=clean["value"] - 0.1)])
    got = scores_of(frame).query("score == 'clean_accuracy'").set_index("model")["value"]
    assert (got["A"], got["B"]) == pytest.approx((0.85, 0.75))


def test_area_under_uses_the_real_spacing() -> None:
    assert area_under(np.array([0.0, 0.1, 0.5]), np.array([1.0, 1.0, 0.0])) == pytest.approx((0.1 + 0.2) / 0.5)
    assert area_under(np.array([0.0, 0.1, 0.5]), np.array([1.0, 1.0, 0.0]), fixed_step=0.1) == pytest.approx(0.15)


def test_score_intervals_come_from_replicates() -> None:
    frame = _frame()
    reps = {c: v + np.linspace(-0.05, 0.05, 101) for c, v in zip(frame["cell"], frame["value"], strict=True)}
    ctx = Context(frame, ScoreMetric(), "A")
    table = with_intervals(compute_scores(ctx), score_replicates(ctx, reps)).set_index(["model", "score"])
    row = table.loc[("B", "clean_accuracy")]
    assert row["ci_low"] == pytest.approx(0.8 - 0.0475) and row["ci_high"] == pytest.approx(0.8 + 0.0475)
    assert table.loc[("A", "mce"), "ci_low"] == pytest.approx(1.0)  # the reference against itself


def test_every_score_is_documented_under_its_anchor() -> None:
    """Each score's row sits in the docs/metrics.md section its family names as its anchor."""
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "metrics.md").read_text()
    sections = {_anchor(h): body for h, body in re.findall(r"^### (.+?)\n(.*?)(?=^##|\Z)", doc, re.S | re.M)}
    for score in SCORES:
        direction = "metric" if score.follows_metric else "no"
        assert score.anchor in sections, f"docs/metrics.md has no section #{score.anchor}"
        assert f"| `{score.name}` | {direction} |" in sections[score.anchor], score.name


def _anchor(heading: str) -> str:
    import re

    return re.sub(r"[^a-z0-9 -]", "", heading.lower()).strip().replace(" ", "-")


#: how each score of an error metric (1 - accuracy, lower is better) relates to the accuracy one
AS_ERROR = {"mce": lambda x: x, "relative_mce": lambda x: x, "relative_mce_conditions": lambda x: x,
            "effective_robustness": lambda x: -x,
            "missing_relative_robustness_fixed_step": lambda x: 0.1 * 2 - x}  # 3 levels: 2 steps


@pytest.mark.parametrize("score", [s.name for s in SCORES])
def test_a_lower_is_better_score_metric_mirrors_accuracy(score: str) -> None:
    """With ``score_metric`` an error rate, worst cases take the maximum and errors are the
    values themselves: every score is the accuracy score mirrored (1 - x), mCE is unchanged."""
    errors = _frame().assign(metric="error_rate", value=lambda f: 1 - f["value"])
    table = scores_of(errors, reference="A", metric=ScoreMetric("error_rate", False))
    got = table[table["score"] == score].set_index("model")["value"]
    mirror = AS_ERROR.get(score, lambda x: 1 - x)
    assert got["A"] == pytest.approx(mirror(EXPECTED[score][0]))
    assert got["B"] == pytest.approx(mirror(EXPECTED[score][1]))


def test_score_metric_picks_the_rows_scores_read() -> None:
    both = pd.concat([_frame(), _frame().assign(metric="macro_f1", value=lambda f: f["value"] / 2)])
    halved = scores_of(both, "A", ScoreMetric("macro_f1", True)).set_index(["model", "score"])["value"]
    plain = scores_of(_frame(), "A").set_index(["model", "score"])["value"]
    assert halved[("A", "clean_accuracy")] == pytest.approx(plain[("A", "clean_accuracy")] / 2)
    assert halved[("B", "composite")] == pytest.approx(plain[("B", "composite")] / 2)


def test_main_board_ranks_a_lower_is_better_composite_ascending() -> None:
    from mmbench.report.analysis import Analysis, Reading
    from mmbench.report.leaderboard import main_board

    errors = _frame().assign(metric="error_rate", value=lambda f: 1 - f["value"])
    with registered_error_rate():
        analysis = Analysis.build(errors, {}, {}, Reading(("error_rate",), "error_rate", "A"))
    board = main_board(analysis, "d").markdown()
    rows = [line.split("|")[2].strip() for line in board.splitlines()[2:4]]
    assert rows == ["A", "B"]  # A has the lower composite error
    assert "Scores read error_rate" in board
    parts = ("adv_robust_accuracy, token_robust_accuracy, missing_worst_single, missing_mean_rate, "
             "shift_mean_accuracy, compound_worst, worst_group_accuracy")
    assert f"Ranked by composite = mean of {parts}" in board


def registered_error_rate():
    import contextlib

    from mmbench.metrics.base import RowMetric
    from mmbench.registry import METRICS

    class ErrorRate(RowMetric):
        higher_is_better = False

        def row_values(self, outcomes):
            return outcomes.preds != outcomes.labels

    @contextlib.contextmanager
    def registered():
        METRICS.register("error_rate", ErrorRate)
        try:
            yield
        finally:
            METRICS.unregister("error_rate")

    return registered()


def test_a_suite_scores_with_a_plugin_metric(tmp_path) -> None:
    from conftest import tiny_suite, write_suite

    from mmbench.errors import MMBenchError
    from mmbench.metrics.base import RowMetric
    from mmbench.registry import METRICS
    from mmbench.report.compare import compare
    from mmbench.runner import RunOptions, run_suite

    class Miss(RowMetric):
        higher_is_better = False

        def row_values(self, outcomes):
            return outcomes.preds != outcomes.labels

    METRICS.register("miss", Miss)
    try:
        adv = {"name": "adversarial", "params": {"attacks": ["fgsm"], "eps": [0.1], "targets": ["each", "all"]}}
        missing = {"name": "missing", "params": {"subsets": "all", "imputation": ["mean"]}}
        opts = {"cache_dir": tmp_path / "c", "progress": False}
        suite = tiny_suite(metrics=["miss", "accuracy"], score_metric="miss", perturbations=["clean", adv, missing])
        result = run_suite(write_suite(tmp_path, suite), RunOptions(out_dir=tmp_path / "a", **opts))
        scores = result.scores.set_index(["model", "score"])
        acc = result.frame[(result.frame["metric"] == "miss") & (result.frame["family"] == "clean")]
        for model, value in acc.set_index("model")["value"].items():
            assert scores.loc[(model, "clean_accuracy"), "value"] == pytest.approx(value)
            assert np.isfinite(scores.loc[(model, "composite"), ["ci_low", "ci_high"]]).all()
        # the reading speaks of an error: a rise, not a drop
        assert "The largest rise in miss from clean to robust" in result.summary
        assert re.search(r"attacking it alone at eps 0.1 raises miss to 0\.\d{3}", result.summary)
        assert re.search(r"without it their miss is 0\.\d{3} on average", result.summary)
        board = (tmp_path / "a" / "LEADERBOARD.md").read_text()  # a constant classifier's error is the floor
        assert "a certified value at or above it shows no robustness" in board
        other = tiny_suite(metrics=["accuracy"], perturbations=["clean", adv, missing])
        run_suite(write_suite(tmp_path, other, "other.yaml"), RunOptions(out_dir=tmp_path / "b", **opts))
        with pytest.raises(MMBenchError, match="scores miss and .* scores accuracy"):
            compare(tmp_path / "a", tmp_path / "b")
    finally:
        METRICS.unregister("miss")


def test_relative_mce_leaves_out_a_condition_that_leaves_the_reference_unhurt() -> None:
    """Regression: the reference's clean accuracy is the mean of two seeds (0.5, 0.535) and its
    corrupted accuracy equals it (0.5175 at both severities), but in floats their error gain is
    2.2e-16, not 0: the condition must not enter relative mCE (it gave +-1e13 intervals)."""
    rows = []
    for seed, clean in enumerate((0.5, 0.535)):
        rows.append(_row("A", "clean", "clean", "all", 0, clean, seed=seed))
        rows += [_row("A", "shift", "noise", "x", s, 0.5175, seed=seed, corruption="noise") for s in (1, 2)]
    rows.append(_row("B", "clean", "clean", "all", 0, 0.8))
    rows += [_row("B", "shift", "noise", "x", s, v, corruption="noise") for s, v in ((1, 0.7), (2, 0.6))]
    rows += [_row("B", "shift", "blur", "x", s, 0.7, corruption="blur") for s in (1, 2)]
    rows += [_row("A", "shift", "blur", "x", s, 0.4, seed=seed, corruption="blur")
             for s in (1, 2) for seed in (0, 1)]
    scores = scores_of(pd.DataFrame(rows), "A").set_index(["model", "score"])["value"]
    # only 'blur' hurts A: B's relative CE there is (0.6 - 2 * 0.2) / (1.2 - 2 * 0.4825)
    assert scores[("B", "relative_mce")] == pytest.approx((0.6 - 0.4) / (1.2 - 2 * 0.4825))


def test_every_family_present_joins_the_composite() -> None:
    """Regression: a missing-modality sweep without random dropout used to add nothing to the
    composite although the board showed missing_worst_subset beside it."""
    frame = _frame()
    only_missing = frame[frame["family"].isin(["clean", "missing"])]
    got = scores_of(only_missing).query("score == 'composite'").set_index("model")["value"]
    assert (got["A"], got["B"]) == pytest.approx((0.5, 0.4))  # missing_worst_subset alone
    two = frame[frame["family"].isin(["clean", "missing", "adversarial"])]
    got = scores_of(two).query("score == 'composite'").set_index("model")["value"]
    assert (got["A"], got["B"]) == pytest.approx(((0.5 + 0.5) / 2, (0.35 + 0.4) / 2))


def test_a_model_lacking_a_composite_part_gets_no_composite() -> None:
    frame = _frame()
    frame = frame[~((frame["model"] == "B") & (frame["family"] == "compound"))]  # compound ran on A only
    got = scores_of(frame, reference="A").pivot_table(index="model", columns="score", values="value")
    assert got.loc["A", "composite"] == pytest.approx(COMPOSITE[0])
    assert pd.isna(got.loc["B"].get("composite")) and pd.isna(got.loc["B"].get("effective_robustness"))
    assert got.loc["B", "adv_robust_accuracy"] == pytest.approx(0.35)  # its other scores stay


def test_the_missing_part_of_the_composite_separates_models() -> None:
    """Issue 23 point 6: with three modalities, keeping any one alone leaves every model at
    chance (the all-subset worst is 0.1 for both), while one modality missing separates them."""
    kept = {"b+c": 0.9, "a+c": 0.8, "a+b": 0.6, "a": 0.1, "b": 0.1, "c": 0.1}
    rows = [_row(m, "missing", "missing-zeros", "x", 3 - len(k.split("+")), v - (0.3 if m == "B" and "+" in k else 0),
                 imputation="zeros", kept=k) for m in ("A", "B") for k, v in kept.items()]
    table = compute_scores(Context(pd.DataFrame(rows), ScoreMetric(), "", players={"d": ("a", "b", "c")}))
    got = table.set_index(["model", "score"])["value"]
    assert got[("A", "missing_worst_subset")] == got[("B", "missing_worst_subset")] == pytest.approx(0.1)
    assert (got[("A", "missing_worst_single")], got[("B", "missing_worst_single")]) == pytest.approx((0.6, 0.3))
    assert got[("A", "composite")] == pytest.approx(0.6)  # the single-missing worst is the part
