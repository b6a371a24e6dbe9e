"""The subset-vote certificate (issue 16): the counting is checked by brute force on every small
case, and the certified rows of a real sweep are read from stored predictions only."""

from __future__ import annotations

from itertools import combinations, product
from math import comb

import numpy as np
import pytest

from mmbench.stats.subset_vote import affected_votes, certified, complete_sizes, subsets_of, vote

CLASSES = 3


def test_affected_votes_counts_subsets_that_touch_a_changed_modality() -> None:
    for m in range(1, 6):
        names = [f"m{i}" for i in range(m)]
        for s in range(1, m + 1):
            for k in range(0, m + 1):
                changed = set(names[:k])
                brute = sum(1 for sub in combinations(names, s) if changed & set(sub))
                assert affected_votes(m, s, k) == brute == comb(m, s) - comb(m - k, s)


def test_vote_breaks_ties_to_the_lower_class_and_measures_the_margin() -> None:
    winner, margin, counts = vote(np.array([[2, 1, 1, 2], [0, 0, 0, 1], [2, 2, 1, 0]]), CLASSES)
    assert winner.tolist() == [1, 0, 2] and margin.tolist() == [0, 2, 1]
    assert counts.tolist() == [[0, 2, 2], [3, 1, 0], [1, 1, 2]]


def _all_changes(base: np.ndarray, voters: list[frozenset], changed: set[str]) -> np.ndarray:
    """Every assignment of votes to the voters that contain a changed modality, for every row of
    ``base`` [rows, voters]: [rows, assignments, voters]."""
    hit = [i for i, sub in enumerate(voters) if sub & changed]
    assignments = np.array(list(product(range(CLASSES), repeat=len(hit))), dtype=np.int64).reshape(-1, len(hit))
    out = np.repeat(base[:, None, :], len(assignments), axis=1)
    out[:, :, hit] = assignments[None, :, :]
    return out


@pytest.mark.parametrize("m", [2, 3, 4])
def test_no_certified_winner_changes_and_one_vote_short_can_flip(m: int) -> None:
    names = [f"m{i}" for i in range(m)]
    for s in range(1, m + 1):
        voters = subsets_of(names, s)
        base = np.array(list(product(range(CLASSES), repeat=len(voters))), dtype=np.int64)
        winner, margin, _ = vote(base, CLASSES)
        for k in range(1, m + 1):
            safe = certified(margin, m, s, k)
            flippable = np.zeros(len(base), dtype=bool)
            for changed in combinations(names, k):
                variants = _all_changes(base, voters, set(changed))
                new, _, _ = vote(variants.reshape(-1, len(voters)), CLASSES)
                flips = (new.reshape(len(base), -1) != winner[:, None]).any(axis=1)
                assert not flips[safe].any(), f"m={m} s={s} k={k}: a certified winner changed"
                flippable |= flips
            bound = 2 * affected_votes(m, s, k)
            short = (margin == bound) | (margin == bound - 1)
            if bound <= len(voters):
                assert (short & flippable).any(), f"m={m} s={s} k={k}: the bound is not tight"


def test_complete_sizes_need_every_subset_of_a_size() -> None:
    names = ["a", "b", "c"]
    everything = {sub: 0 for s in (1, 2, 3) for sub in subsets_of(names, s)}
    assert complete_sizes(everything) == (names, [1, 2, 3])
    partial = {k: v for k, v in everything.items() if k != frozenset({"a", "c"})}
    assert complete_sizes(partial) == (names, [1, 3])


def test_a_real_sweep_is_certified_from_its_stored_predictions(tmp_path) -> None:
    """Rows of g_s and its certificates equal a plain recount of the stored votes, and the
    certified share never exceeds g_s's accuracy."""
    from collections import Counter

    from conftest import tiny_suite, write_suite

    from mmbench.runner import RunOptions, run_suite
    from mmbench.store.database import open_existing

    sweep = {"name": "missing", "params": {"subsets": "all", "imputation": ["mean", "zeros"]}}
    result = run_suite(write_suite(tmp_path, tiny_suite(models=["late_fusion"], perturbations=["clean", sweep])),
                       RunOptions(out_dir=tmp_path / "o", cache_dir=tmp_path / "c", progress=False))
    frame = result.frame[(result.frame["family"] == "subset_vote") & (result.frame["metric"] == "accuracy")]
    store = open_existing(tmp_path / "o")
    keys = [c.key for c in store.statuses() if c.kind == "eval"]
    facts, samples = store.facts(keys), store.samples(keys)
    store.close()
    m = 4  # img, aud, tab, txt
    assert set(frame["severity"]) == {1.0, 2.0, 3.0, 4.0} and set(frame["imputation"]) == {"mean", "zeros"}
    for imputation in ("mean", "zeros"):
        cells = {frozenset(f.facts["kept"].split("+")): samples[k] for k, f in facts.items()
                 if f.family == "missing" and f.facts["imputation"] == imputation and f.facts["kept"] != "none"}
        for s in range(1, m + 1):
            voters = [c for kept, c in cells.items() if len(kept) == s]
            assert len(voters) == comb(m, s)
            labels = voters[0].labels
            right, sure = {0: 0, 1: 0, 2: 0}, {1: 0, 2: 0}
            for row in range(len(labels)):
                counts = Counter(int(v.preds[row]) for v in voters)
                top = max(counts.values())
                winner = min(c for c, n in counts.items() if n == top)
                margin = top - max([n for c, n in counts.items() if c != winner] or [0])
                right[0] += winner == labels[row]
                for k in (1, 2):
                    sure[k] += winner == labels[row] and margin > 2 * (comb(m, s) - comb(m - k, s))
            got = frame[(frame["imputation"] == imputation) & (frame["severity"] == s)].set_index("target")["value"]
            assert got["k=0"] == pytest.approx(right[0] / len(labels))
            for k in (1, 2):
                if 2 * (comb(m, s) - comb(m - k, s)) >= comb(m, s):
                    assert f"k={k}" not in got.index  # no row can be certified: no cell
                else:
                    assert got[f"k={k}"] == pytest.approx(sure[k] / len(labels)) and got[f"k={k}"] <= got["k=0"]
    full = frame[frame["severity"] == m].set_index(["imputation", "target"])["value"]
    clean = result.frame.query("family == 'clean' and metric == 'accuracy'")["value"].iloc[0]
    assert full[("mean", "k=0")] == pytest.approx(clean) and ("mean", "k=1") not in full.index
    assert (frame["target"] == "k=1").any()  # s = 1 can be certified against one changed modality
    assert "certified against k corrupted modalities" in result.leaderboard
    assert (result.scores["score"] == "subset_vote_certified").any()
