"""Numbers that hold at the edges (issue 23): scores undefined in some replicates say so and get
no interval past a threshold; relative mCE says how many conditions it rests on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmbench.stats.corruption import corruption_errors, shift_summary
from mmbench.families.scoring import MAX_UNDEFINED, with_intervals

KEY = {"dataset": "d", "model": "m", "recipe": "r"}


def frames(rel: list[float], counts: list[float], point_count: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    point = pd.DataFrame([{**KEY, "score": "rel", "value": 2.0}, {**KEY, "score": "n", "value": point_count},
                          {**KEY, "score": "plain", "value": 0.5}])
    runs = pd.DataFrame([{**KEY, "score": s, "value": v, "b": b}
                         for b, (r, c) in enumerate(zip(rel, counts, strict=True))
                         for s, v in (("rel", r), ("n", c), ("plain", 0.4 + 0.2 * b / len(rel)))])
    return point, runs.dropna(subset=["value"])


def test_a_score_undefined_in_some_replicates_carries_the_share_and_no_interval() -> None:
    rng = np.random.default_rng(0)
    rel = list(rng.normal(2, 1, 1000))
    counts = [3.0] * 1000
    for b in range(0, 1000, 5):  # one replicate in five: the reference unhurt on a condition
        counts[b] = 2.0
    for b in range(1, 1000, 50):  # and a few where no condition is left at all
        rel[b] = np.nan
    point, runs = frames(rel, counts, 3.0)
    out = with_intervals(point, runs, 1000, {"rel": "n"}).set_index("score")
    assert out.loc["rel", "undefined"] == pytest.approx((200 + 20) / 1000)
    assert np.isnan(out.loc["rel", "ci_low"]) and np.isnan(out.loc["rel", "ci_high"])
    assert out.loc["plain", "undefined"] == 0 and out.loc["plain", "ci_low"] < 0.5 < out.loc["plain", "ci_high"]
    # below the threshold the interval stands, from the replicates where the score exists
    few = [3.0] * 1000
    few[7] = 2.0
    out = with_intervals(*frames(list(rng.normal(2, 1, 1000)), few, 3.0), 1000, {"rel": "n"}).set_index("score")
    assert out.loc["rel", "undefined"] == pytest.approx(0.001) and MAX_UNDEFINED > 0.001 and not np.isnan(out.loc["rel", "ci_low"])


def test_relative_mce_says_on_how_many_conditions_it_rests() -> None:
    rows = pd.DataFrame([{**KEY, "model": m, "corruption": c, "target": "all", "severity": 1.0, "value": v}
                         for m, c, v in (("m", "blur", 0.6), ("m", "noise", 0.7), ("m", "jpeg", 0.8),
                                         ("base", "blur", 0.5), ("base", "noise", 0.9), ("base", "jpeg", 0.9))])
    clean = pd.Series({("d", "m", "r"): 0.9, ("d", "base", "r"): 0.9})
    summary = shift_summary(corruption_errors(rows, clean, "base")).set_index("model")
    assert summary.loc["m", "conditions"] == 3 and summary.loc["m", "rel_conditions"] == 1  # base unhurt twice
    assert summary.loc["m", "rel_mce"] == (0.9 - 0.6) / (0.9 - 0.5)


def test_the_worst_case_is_never_better_than_a_reported_attack_in_any_metric() -> None:
    """Issue 23 point 5: the per-row worst case minimises correctness, not a non-decomposable
    metric (macro-F1 of the per-row worst can exceed an attack's); every built-in metric's value
    and replicates of the derived cell are bounded by the attacks', and accuracy's is the
    per-row worst itself."""
    from mmbench.stats.bootstrap import metric_values
    from mmbench.families.adversarial import worst_case
    from mmbench.metrics.outcomes import Samples, SampleSet
    from mmbench.registry import METRICS
    from mmbench.store.rows import CellFacts

    rng = np.random.default_rng(3)
    n, classes = 400, 4
    labels = rng.integers(0, classes, n).astype(np.int16)
    cells, facts = {}, {}
    for name, fool in (("fgsm", 0.2), ("pgd", 0.3)):
        wrong = rng.random(n) < fool
        preds = np.where(wrong, (labels + rng.integers(1, classes, n)) % classes, labels).astype(np.int16)
        # right answers with a slim margin, wrong ones near a tie: the row a per-row worst case
        # picks (a wrong one) can hold more true-class probability than another attack's right one
        full = np.full((n, classes), 0.74 / (classes - 1), np.float32)
        full[np.arange(n), labels] = 0.26
        full[wrong] = 0.0
        full[wrong, labels[wrong]], full[wrong, preds[wrong]] = 0.45, 0.55
        cells[name] = Samples(SampleSet("d", "test"), preds, labels, full[np.arange(n), labels], full)
        facts[name] = CellFacts("s", "d", "m", "r", 0, "adversarial", f"{name}-Linf", "all", 0.1,
                                facts={"attack": name, "norm": "Linf", "ensemble": "fgsm,pgd"})
    cells["worst"] = worst_case(["fgsm", "pgd"], facts, cells)[1]
    names = [m for m in METRICS.names() if "classification" in METRICS.get(m).tasks]
    out = metric_values(cells, {m: METRICS.get(m) for m in names}, {"d": classes})
    for metric in names:
        sign = 1 if METRICS.get(metric).higher_is_better else -1
        worst = out.values[("worst", metric)]
        for attack in ("fgsm", "pgd"):
            mine = out.values[(attack, metric)]
            assert sign * worst[0] <= sign * mine[0] + 1e-12, metric
    correct = np.minimum(cells["fgsm"].preds == labels, cells["pgd"].preds == labels)
    assert out.values[("worst", "accuracy")][0] == pytest.approx(correct.mean())


@pytest.mark.parametrize("correct,n", [(92, 92), (0, 60), (58, 60), (30, 60)], ids=["n/n", "0/n", "near 1", "mid"])
def test_a_proportion_interval_never_has_zero_width(correct: int, n: int) -> None:
    """Issue 23 point 3: accuracy near 0 or 1 gets the exact (Clopper-Pearson) interval, checked
    against scipy; a mid value keeps the bootstrap's, which is close to it."""
    from scipy.stats import binomtest

    from mmbench.stats.bootstrap import metric_values
    from mmbench.metrics.outcomes import Samples, SampleSet
    from mmbench.registry import METRICS

    labels = np.zeros(n, np.int16)
    preds = np.where(np.arange(n) < correct, 0, 1).astype(np.int16)
    cell = Samples(SampleSet("d", "test"), preds, labels, np.full(n, 0.5, np.float32))
    value, lo, hi = metric_values({"c": cell}, {"accuracy": METRICS.get("accuracy")}, {"d": 2}).values[("c", "accuracy")]
    exact = binomtest(correct, n).proportion_ci(0.95, method="exact")
    assert value == correct / n and hi > lo
    tolerance = 0.003 if min(correct, n - correct) < 5 else 0.05
    assert lo == pytest.approx(exact.low, abs=tolerance) and hi == pytest.approx(exact.high, abs=tolerance)


@pytest.mark.parametrize("right", [True, False], ids=["every row right", "no row right"])
def test_macro_f1_at_its_ends_gets_the_exact_interval_of_the_rows_right(right: bool) -> None:
    from scipy.stats import binomtest

    from mmbench.stats.bootstrap import metric_values
    from mmbench.metrics.outcomes import Samples, SampleSet
    from mmbench.registry import METRICS

    labels = (np.arange(80) % 2).astype(np.int16)
    preds = labels if right else 1 - labels
    cell = Samples(SampleSet("d", "test"), preds.astype(np.int16), labels, np.full(80, 0.5, np.float32))
    out = metric_values({"c": cell}, {m: METRICS.get(m) for m in ("macro_f1", "balanced_accuracy")}, {"d": 2})
    exact = binomtest(80 if right else 0, 80).proportion_ci(0.95, method="exact")
    for metric in ("macro_f1", "balanced_accuracy"):
        value, lo, hi = out.values[("c", metric)]
        assert value == (1.0 if right else 0.0) and hi > lo
        assert (lo, hi) == pytest.approx((exact.low, exact.high), abs=0.003)


def test_abstentions_are_misses_that_are_no_class_false_positive_in_every_family() -> None:
    """Issue 23 point 4: smoothing's abstentions and the subset vote's uncertified rows are the
    same thing (-1): macro-F1 equals scikit-learn's with the real classes as explicit labels."""
    from sklearn.metrics import f1_score

    from mmbench.families.subset_vote import SubsetVote
    from mmbench.metrics.outcomes import Samples, SampleSet, stack
    from mmbench.perturb.certify import ABSTAIN
    from mmbench.registry import METRICS
    from mmbench.store.rows import CellFacts

    rng = np.random.default_rng(8)
    n, classes = 300, 3
    labels = rng.integers(0, classes, n).astype(np.int16)
    facts, samples = {}, {}
    for kept in ("a", "b", "c"):  # three single-modality voters that mostly agree with the labels
        preds = np.where(rng.random(n) < 0.7, labels, rng.integers(0, classes, n)).astype(np.int16)
        key = f"missing-{kept}"
        facts[key] = CellFacts("s", "d", "m", "r", 0, "missing", "missing-zeros", "x", 1.0,
                               facts={"kept": kept, "imputation": "zeros"})
        samples[key] = Samples(SampleSet("d", "test"), preds, labels, np.full(n, 0.5, np.float32))
    derived = SubsetVote().derive(facts, samples)
    certified = [s for f, s in derived.values() if f.facts.get("k", 0) > 0]
    assert certified and all((s.preds == ABSTAIN).any() for s in certified)
    for cell in certified:
        present = sorted((set(cell.labels.tolist()) | set(cell.preds.tolist())) - {ABSTAIN})
        expected = f1_score(cell.labels, cell.preds, labels=present, average="macro", zero_division=0)
        got = METRICS.get("macro_f1")(classes).value(stack([cell], classes, False))[0]
        assert got == pytest.approx(expected)
    smoothed = np.where(rng.random(n) < 0.2, ABSTAIN, labels).astype(np.int16)  # smoothing abstains
    got = METRICS.get("macro_f1")(classes).value(stack([Samples(SampleSet("d", "test"), smoothed, labels,
                                                                np.full(n, 0.5, np.float32))], classes, False))[0]
    assert got == pytest.approx(f1_score(labels, smoothed, labels=[0, 1, 2], average="macro"))


def test_certified_boards_give_the_chance_level(tmp_path) -> None:
    """Issue 23 point 6: a certified score at one class's share is what a constant classifier
    scores; the certificate boards say so with the number."""
    import mmbench
    from conftest import tiny_suite, write_suite

    suite = tiny_suite(models=["late_fusion"], perturbations=["clean", {"name": "missing", "params": {}}])
    result = mmbench.run(write_suite(tmp_path, suite), out_dir=tmp_path / "o", cache_dir=tmp_path / "c",
                         progress=False)
    board = next(b for h, b in result.boards.items() if "certified against k" in h)
    assert "Chance level: always predicting the majority class scores 0." in board


def test_only_separated_cells_are_coloured_apart_and_skewed_intervals_show_their_ends() -> None:
    """Issue 23 point 7: 0.980 and 0.985 whose paired difference does not exclude 0 share the
    best's colour; a model the paired interval separates gets its own; a skewed interval is
    written [lo, hi] (mCE 0.6816 +- 0.6072 is really [0.23, 1.44])."""
    from mmbench.render.tables import Column, Num, Table
    from mmbench.report.html_tables import _colours
    from mmbench.report.leaderboard import separated

    rng = np.random.default_rng(9)
    base = rng.normal(0.98, 0.01, 1000)
    runs = pd.DataFrame([{"dataset": "d", "model": m, "recipe": "r", "score": "clean_accuracy", "b": b, "value": v}
                         for b in range(1000)
                         for m, v in (("A", base[b] + 0.005), ("B", base[b] + rng.normal(0, 0.01)), ("C", base[b] - 0.2))])
    part = pd.DataFrame([{"dataset": "d", "model": m, "recipe": "r", "score": "clean_accuracy", "value": v}
                         for m, v in (("A", 0.985), ("B", 0.980), ("C", 0.780))])
    apart = separated(runs, part, {"clean_accuracy": True})
    assert apart == {("A", "r", "clean_accuracy"): False, ("B", "r", "clean_accuracy"): False,
                     ("C", "r", "clean_accuracy"): True}
    table = Table((Column("model"), Column("clean_accuracy", True)),
                  tuple((m, Num(v, 0.01, separated=apart[(m, "r", "clean_accuracy")]))
                        for m, v in (("A", 0.985), ("B", 0.980), ("C", 0.780))))
    a, b, c = _colours(table, 1, table.columns[1])
    assert a == b != c
    assert str(Num(0.6816, 0.6072, lo=0.23, hi=1.44)) == "0.6816 [0.2300, 1.4400]"
    assert str(Num(0.5, 0.01, lo=0.49, hi=0.511)) == "0.5000 ± 0.0100"


def test_composite_intervals_equal_an_explicit_paired_bootstrap_over_shared_rows(tmp_path) -> None:
    """Issue 23 point 1, end to end: attacks on a seeded 20-row subset, missing modalities on every
    test row; recomputing each replicate by hand from the stored per-row outcomes, with one
    Poisson count per row of the split shared by every cell, gives the composite's interval."""
    import hashlib

    import mmbench
    from conftest import tiny_suite, write_suite

    adv = {"name": "adversarial", "params": {"attacks": ["fgsm"], "eps": [0.1], "targets": ["all"], "max_rows": 20}}
    suite = tiny_suite(models=["late_fusion"], perturbations=["clean", adv, {"name": "missing", "params": {}}])
    suite["datasets"][0]["params"]["noise"] = 2.5  # no part near 0 or 1 (those get exact intervals)
    result = mmbench.run(write_suite(tmp_path, suite), out_dir=tmp_path / "o", cache_dir=tmp_path / "c",
                         progress=False)
    rows = mmbench.outcomes(tmp_path / "o")
    seed = int(hashlib.sha256(b"synthetic|test|rows").hexdigest()[:8], 16)
    weights = np.random.default_rng(seed).poisson(1.0, size=(int(rows["row"].max()) + 1, 1000))

    def replicates(cell: pd.DataFrame) -> np.ndarray:
        w = weights[cell["row"].to_numpy()]
        correct = cell["correct"].to_numpy(float)
        assert 5 <= correct.sum() <= len(correct) - 5
        return correct @ w / w.sum(axis=0)

    attacked = rows[rows["family"] == "adversarial"]
    assert attacked["row"].nunique() == 20
    missing = rows[(rows["family"] == "missing") & (rows["kept"] != "none")]
    players = max(len(k.split("+")) for k in missing["kept"])
    single = missing[missing["kept"].map(lambda k: len(k.split("+"))) == players - 1]
    worst = np.min([replicates(g) for _, g in single.groupby("cell")], axis=0)
    composite = (replicates(attacked) + worst) / 2
    assert "Parts on a seeded row subset (adv_robust_accuracy on 20 rows) are paired" in result.leaderboard
    got = result.scores.set_index("score").loc["composite"]
    assert (got["ci_low"], got["ci_high"]) == pytest.approx(tuple(np.quantile(composite, [0.025, 0.975])), abs=1e-9)
