"""The randomized-masking certificate of token modalities (issue 27, point 2): the bound checked by
brute force on every short row (exact ablation probabilities from every kept set, every change of
up to k tokens evaluated exactly), the harness against an independent reimplementation on a
trained model (own ablation loop, scipy's beta quantile, exact binomial coefficients), the
invariants (certified accuracy never rising with k nor above the masked classifier's, seeded,
independent of chunking), one-line refusals, and the board of a suite run."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.stats import beta, chisquare
from torch import nn

from mmbench.config.suite import Component
from mmbench.data.base import ModalityKind, ModalitySpec
from mmbench.errors import MMBenchError
from mmbench.execution.evaluate import EvalSettings, eval_rows, evaluate
from mmbench.families.masking import TOKENS
from mmbench.families.smoothing import CERTIFIED, certified_cells
from mmbench.hashing import derive_seed
from mmbench.metrics.outcomes import SampleSet
from mmbench.perturb.certify import draw_generator
from mmbench.perturb.masking import Masking, ablate, certified_changes, deltas, kept_positions, masking
from mmbench.plan.cells import expand_perturbation
from mmbench.store.rows import CellFacts

VOCAB, T = 3, 5
KEEPS = (1, 2, 3, 0.5, 5)  # 0.5 of 5 keeps 3; 5 keeps every position (no certificate beyond k = 0)


# ---------------------------------------------------------------- brute force on short rows

def majority(row: tuple[int, ...]) -> int:
    """Class 1 or 2 by the more frequent of those ids among the row, else 0."""
    ones, twos = row.count(1), row.count(2)
    return 1 if ones > twos else 2 if twos > ones else 0


def linear(seed: int):
    """A position-dependent classifier: the argmax of random weights per (position, id)."""
    weights = np.random.default_rng(seed).normal(size=(T, VOCAB, 3))
    return lambda row: int(weights[np.arange(T), list(row)].sum(axis=0).argmax())


def first_token(row: tuple[int, ...]) -> int:
    """The first id that is not 0 (the mask), else 0: an order-dependent classifier."""
    return next((t for t in row if t != 0), 0)


def layouts(pad: int | None) -> list[tuple[int, ...]]:
    """Every row of T positions: over all ids without padding; else d = 0..T changeable ids
    (never the pad id) followed by padding."""
    if pad is None:
        return list(itertools.product(range(VOCAB), repeat=T))
    ids = [v for v in range(VOCAB) if v != pad]
    return [(*head, *([pad] * (T - d))) for d in range(T + 1) for head in itertools.product(ids, repeat=d)]


def exact_probs(f, row: tuple[int, ...], pad: int | None, keep: float, mask_id: int) -> np.ndarray:
    """P(f(ablate(row)) = c) for each class, from every kept set of the changeable positions."""
    free = [t for t in range(T) if row[t] != pad]
    h = min(int(keep), len(free)) if keep >= 1 else math.ceil(keep * len(free))
    counts = np.zeros(3)
    for kept in itertools.combinations(free, h):
        counts[f(tuple(v if t in kept or t not in free else mask_id for t, v in enumerate(row)))] += 1
    return counts / counts.sum()


@pytest.mark.parametrize("pad", [None, 0])
@pytest.mark.parametrize("name,f", [("majority", majority), ("linear", linear(0)), ("first", first_token)])
def test_every_certified_row_keeps_its_class_under_every_change_within_its_radius(pad, name, f) -> None:
    rows = layouts(pad)
    index = {row: i for i, row in enumerate(rows)}
    free = np.array([[v != pad for v in row] for row in rows])
    d = free.sum(axis=1)
    certified_beyond_zero = 0
    for keep in KEEPS:
        probs = np.stack([exact_probs(f, row, pad, keep, 0) for row in rows])
        h = kept_positions(torch.as_tensor(d), float(keep)).numpy()
        assert (h == [min(int(keep), n) if keep >= 1 else math.ceil(keep * n) for n in d]).all()
        top = probs.argmax(axis=1)
        radius = certified_changes(probs[np.arange(len(rows)), top], d, h, T)  # the alpha-free path
        for i in np.flatnonzero(~np.isnan(radius)):
            r = int(min(radius[i], d[i]))
            certified_beyond_zero += r >= 1
            for near in within(rows[i], r, pad):  # every x' within Hamming distance r, padding untouched
                assert probs[index[near], top[i]] > 0.5, (name, keep, rows[i], near, radius[i])
        # the lemma itself, for every pair of rows of the same layout: |p_c(x) - p_c(x')| <= Delta(|D|)
        for size in set(d.tolist()):
            group = np.flatnonzero(d == size)
            hamming = (np.array([rows[i] for i in group])[:, None] != np.array([rows[i] for i in group])[None]).sum(-1)
            gap = np.abs(probs[group][:, None] - probs[group][None]).max(axis=-1)
            delta = np.asarray(deltas(size, int(h[group[0]])))[hamming]
            assert (gap <= delta + 1e-12).all(), (name, keep, size)
    if name == "majority":
        assert certified_beyond_zero > 0  # the bound is not vacuous


def within(row: tuple[int, ...], k: int, pad: int | None):
    """Every row that differs from ``row`` in at most k non-padding positions, writing no pad id."""
    free = [t for t in range(T) if row[t] != pad]
    ids = [v for v in range(VOCAB) if v != pad]
    for size in range(k + 1):
        for where in itertools.combinations(free, size):
            for values in itertools.product(*([v for v in ids if v != row[t]] for t in where)):
                near = list(row)
                for t, v in zip(where, values, strict=True):
                    near[t] = v
                yield tuple(near)


def test_delta_is_the_chance_a_kept_set_meets_the_changed_positions() -> None:
    for d, h in [(5, 1), (5, 2), (6, 3), (10, 4), (1, 1), (0, 0)]:
        for k in range(d + 1):
            sets = list(itertools.combinations(range(d), h))
            meets = sum(any(t < k for t in s) for s in sets) / len(sets)
            assert deltas(d, h)[k] == pytest.approx(meets, abs=1e-15)
    assert deltas(50, 5)[1] == pytest.approx(5 / 50)  # Delta(1) = h / d


def test_ablation_draws_kept_sets_uniformly_and_leaves_padding() -> None:
    ids = torch.tensor([[2, 1, 2, 1, 2, 0, 0]]).repeat(6000, 1)  # d = 5, two padding positions
    free = ids != 0
    keep = kept_positions(free.sum(dim=1), 2.0)
    out = ablate(ids, free, keep, 0, draw_generator(7, "estimate", 0, ids.device))
    assert ((out != 0).sum(dim=1) == 2).all() and (out[:, 5:] == 0).all()
    kept = (out[:, :5] != 0).numpy()
    assert ((out[:, :5] == ids[:, :5]) | (out[:, :5] == 0)).all()
    sets = [tuple(np.flatnonzero(r)) for r in kept]
    counts = [sets.count(s) for s in itertools.combinations(range(5), 2)]
    assert sum(counts) == 6000 and chisquare(counts).pvalue > 1e-3  # 10 kept sets, equally often


class Majority(nn.Module):
    """:func:`majority` as a model on a batch mapping (one-hot logits)."""

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ids = batch["t"]
        ones, twos = (ids == 1).sum(dim=1), (ids == 2).sum(dim=1)
        pred = torch.where(ones > twos, 1, torch.where(twos > ones, 2, 0))
        return nn.functional.one_hot(pred, 3).double()


def test_the_harness_estimates_the_exact_probabilities_and_certifies_no_more_than_they_allow() -> None:
    rows = [r for r in layouts(0) if sum(v != 0 for v in r) >= 3][::3]
    spec = ModalitySpec("t", ModalityKind.TOKENS, (T,), 0, VOCAB - 1, pad_id=0)
    (case,) = masking([spec], 3, keep=[1], n0=50, n=2000, alpha=1e-6)  # p_lower > p: 1e-6 a row
    out = case.logits(Majority(), {"t": torch.tensor(rows)}, torch.zeros(len(rows), dtype=torch.long), 3, {})
    exact = np.stack([exact_probs(majority, r, 0, 1, 0) for r in rows])
    assert np.abs(out.logits.exp().numpy() - exact).max() < 0.05
    top = exact.argmax(axis=1)
    d = np.array([sum(v != 0 for v in r) for r in rows])
    bound = certified_changes(exact[np.arange(len(rows)), top], d, np.ones_like(d), T)
    got = out.radius.numpy()
    assert ((np.isnan(got)) | (got <= np.nan_to_num(bound, nan=-1))).all()  # p_lower <= p: never more
    assert (out.preds.numpy()[~np.isnan(got)] == top[~np.isnan(got)]).all() and (got >= 1).any()


# --------------------------------------------- an independent reimplementation on a trained model

N0, N, ALPHA, ROWS, BATCH, SEED = 16, 160, 0.01, 24, 10, 4321


@pytest.fixture(scope="module")
def trained(synth) -> tuple:
    import mmbench
    from mmbench.train.standard import StandardConfig, StandardRecipe

    torch.manual_seed(0)  # the text alone, so that masking it moves the votes
    model = mmbench.create_model("unimodal", synth.modalities, synth.n_classes, modality="txt")
    StandardRecipe().fit(model, synth, StandardConfig(epochs=10, batch_size=32, patience=0), seed=0)
    return synth, model.double().eval()


def _double(split):
    from mmbench.data.base import Split

    return Split({k: v.double() if v.is_floating_point() else v for k, v in split.inputs.items()}, split.labels)


def _cases(data, **params) -> list[Masking]:
    base = {"keep": [1, 0.5], "targets": ["txt"], "n0": N0, "n": N, "alpha": ALPHA, "changes": [0, 1, 2, 3],
            "max_rows": ROWS, "chunk": 64}
    return expand_perturbation(Component("masking", {**base, **params}), data)


def independent(model, split, name: str, keep: float, n_classes: int,
                pad: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The certificate written out per row from the formulas: draw j of batch i scores the
    positions with torch.rand from a generator seeded derive_seed(SEED + i, phase, j); a row keeps
    the h lowest-scored of its d positions that do not hold ``pad``, writes 0 at its other ones;
    Clopper-Pearson with scipy's beta; Delta with exact binomial coefficients as a product."""
    rows = eval_rows(len(split), ROWS, split.labels.device)
    preds, radii, labels = [], [], []
    for i, start in enumerate(range(0, len(rows), BATCH)):
        batch, y = split.rows(rows[start:start + BATCH])
        ids = batch[name].numpy()
        scores = {phase: [torch.rand(ids.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(
            derive_seed(SEED + i, phase, j))).numpy() for j in range(draws)] for phase, draws in (("select", N0),
                                                                                                   ("estimate", N))}
        for r in range(len(y)):
            free = np.flatnonzero(ids[r] != pad)
            d = len(free)
            h = min(int(keep), d) if keep >= 1 else math.ceil(keep * d)
            counts = {}
            for phase, drawn in scores.items():
                copies = np.repeat(ids[r:r + 1], len(drawn), axis=0)
                for j, u in enumerate(drawn):
                    copies[j, free[np.argsort(u[r][free])[h:]]] = 0
                x = {k: v[r:r + 1].expand(len(drawn), *v.shape[1:]) for k, v in batch.items()}
                x[name] = torch.as_tensor(copies)
                with torch.no_grad():
                    counts[phase] = np.bincount(model(x).argmax(1).numpy(), minlength=n_classes)
            top = int(np.argmax(counts["select"]))
            hits = int(counts["estimate"][top])
            low = beta.ppf(ALPHA, hits, N - hits + 1) if hits > 0 else 0.0
            ok = [k for k in range(ids.shape[1] + 1)
                  if low - (1 - math.prod((d - min(k, d) - t) / (d - t) for t in range(h))) > 0.5]
            preds.append(top)
            radii.append(max(ok) if ok else np.nan)
        labels.extend(y.tolist())
    return np.array(preds), np.array(radii, dtype=float), np.array(labels)


def _padded(data):
    """The test split with the last (row mod 4) text positions set to 0, declared the pad id,
    and its masking cases."""
    from dataclasses import replace

    from mmbench.data.base import Split

    text = data.test.inputs["txt"].clone()
    for t in range(1, 4):
        text[torch.arange(len(text)) % 4 >= t, -t] = 0
    spec = replace(next(m for m in data.modalities if m.name == "txt"), pad_id=0)
    cases = masking([spec], data.n_classes, keep=[1, 0.5], n0=N0, n=N, alpha=ALPHA, changes=[0, 1, 2, 3],
                    max_rows=ROWS, chunk=64)
    return _double(Split({**data.test.inputs, "txt": text}, data.test.labels)), cases


@pytest.mark.parametrize("padding", [False, True])
def test_the_certificate_agrees_with_an_independent_reimplementation(trained, padding: bool) -> None:
    data, model = trained
    split, cases = _padded(data) if padding else (_double(data.test), _cases(data))
    abstained = beyond = 0
    for case in cases:
        got = evaluate(model, split, case, EvalSettings(BATCH, SEED)).samples(SampleSet("synthetic", "test", ROWS))
        preds, radius, labels = independent(model, split, "txt", case.severity, data.n_classes, 0 if padding else None)
        assert got.preds.tolist() == preds.tolist() and got.labels.tolist() == labels.tolist(), case.severity
        assert np.array_equal(got.radius, radius, equal_nan=True), (case.severity, got.radius, radius)
        abstained += int(np.isnan(radius).sum())
        beyond += int((radius >= 1).sum())
    assert abstained and beyond >= 3  # masking the text moves the votes; some rows certified beyond k = 0


def test_certified_accuracy_falls_with_k_and_never_exceeds_the_masked_classifiers(trained) -> None:
    data, model = trained
    split = _double(data.test)
    for case in _cases(data):
        got = evaluate(model, split, case, EvalSettings(BATCH, SEED)).samples(SampleSet("synthetic", "test", ROWS))
        masked = float((got.preds == got.labels).mean())
        facts = CellFacts("s", "synthetic", "unimodal[txt]", "standard", 0, "masking", "masked", "txt", case.severity,
                          facts=case.facts())
        cells = sorted(certified_cells("key", facts, got, TOKENS).values(), key=lambda c: c[0].facts["k"])
        assert [c.facts["k"] for c, _ in cells] == [0, 1, 2, 3] and all(c.perturbation == CERTIFIED for c, _ in cells)
        values = [float((s.preds == s.labels).mean()) for _, s in cells]
        assert values == sorted(values, reverse=True) and values[0] <= masked
        certified = ~np.isnan(got.radius)
        assert values[0] == pytest.approx(float((certified & (got.preds == got.labels)).mean()))


def test_same_seed_same_certificate_whatever_the_chunk(trained) -> None:
    data, model = trained
    split = _double(data.test)
    sample = SampleSet("synthetic", "test", ROWS)

    def run(seed: int, **params):
        (case, _) = _cases(data, **params)
        return evaluate(model, split, case, EvalSettings(BATCH, seed)).samples(sample)

    one, again, chunked, other = run(SEED), run(SEED), run(SEED, chunk=7), run(SEED + 1)
    for same in (again, chunked):
        assert np.array_equal(one.radius, same.radius, equal_nan=True) and np.array_equal(one.probs, same.probs)
    assert not np.array_equal(one.probs, other.probs)


# ----------------------------------------------------------------------------- refusals

@pytest.mark.parametrize("params,message", [
    ({}, "'keep' must be a non-empty list"),
    ({"keep": [0]}, "keep must be a whole number of positions >= 1 or a fraction"),
    ({"keep": [1.5]}, "keep must be a whole number"),
    ({"keep": [2, 2.0]}, "masking: keep lists 2.0 twice"),
    ({"keep": [1], "changes": [-1]}, "changes must be whole numbers >= 0"),
    ({"keep": [1], "changes": [1, 1]}, "changes lists 1 twice"),
    ({"keep": [1], "alpha": 0.7}, "alpha must lie in"),
    ({"keep": [1], "n": 0}, "n must be an integer >= 1"),
    ({"keep": [1], "mask_id": 12}, r"mask_id must be a token id of 'txt' \(0 to 11\)"),
    ({"keep": [1], "targets": ["img"]}, "masking: modality 'img' is not a tokens modality"),
    ({"keep": [1], "targets": ["txtt"]}, "masking: unknown target modality 'txtt'.*did you mean 'txt'"),
])
def test_bad_masking_parameters_are_one_line_errors(synth, params: dict, message: str) -> None:
    with pytest.raises(MMBenchError, match=message) as info:
        expand_perturbation(Component("masking", params), synth)
    assert "\n" not in str(info.value)


def test_data_without_tokens_and_other_tasks_are_refused_in_one_line() -> None:
    vector = ModalitySpec("v", ModalityKind.VECTOR, (4,))
    token = ModalitySpec("t", ModalityKind.TOKENS, (4,), 0, 9)
    for call, message in ((lambda: masking([vector], 3, keep=[1]), "no tokens modality"),
                          (lambda: masking([token], 3, keep=[1], task="regression"), "regression task")):
        with pytest.raises(MMBenchError, match=message) as info:
            call()
        assert "\n" not in str(info.value)


def test_masking_expands_per_token_target_and_keep(synth) -> None:
    cases = expand_perturbation(Component("masking", {"keep": [3, 0.25]}), synth)
    assert [(c.target, c.severity) for c in cases] == [("txt", 0.25), ("txt", 3.0)]
    assert cases[0].facts() == {"keep": 0.25, "select_draws": 100, "estimate_draws": 1000, "alpha": 0.001,
                                "mask_id": 0, "changes": "0,1,2,4"}
    padded = ModalitySpec("t", ModalityKind.TOKENS, (4,), 0, 9, pad_id=7)
    assert masking([padded], 2, keep=[1])[0].mask_id == 7 and masking([padded], 2, keep=[1], mask_id=3)[0].mask_id == 3


# ----------------------------------------------------------------------------- a suite run

def test_a_suite_run_shows_the_board_with_intervals(tmp_path) -> None:
    import mmbench
    from conftest import tiny_suite, write_suite

    from mmbench.report.publish import load_run

    suite = tiny_suite(models=["late_fusion"], perturbations=["clean", {"name": "masking", "params": {
        "keep": [1], "n0": 8, "n": 48, "alpha": 0.05, "changes": [0, 1, 2]}}])
    result = mmbench.run(write_suite(tmp_path, suite), out_dir=tmp_path / "o", cache_dir=tmp_path / "c",
                         progress=False)
    assert not result.failed
    board = (tmp_path / "o" / "LEADERBOARD.md").read_text()
    heading = "## synthetic: certified against k changed tokens (randomized masking, accuracy)"
    assert heading in board
    table = [line for line in board.split(heading)[1].split("\n## ")[0].splitlines() if line.startswith("|")]
    assert "masked" in table[0] and "k=2" in table[0] and all("±" in line for line in table[2:]) and table[2:]
    scores = result.scores.set_index(["model", "score"])
    assert scores.loc[("late_fusion", "masking_certified"), "ci_high"] >= scores.loc[
        ("late_fusion", "masking_certified"), "value"]
    page = (tmp_path / "o" / "report.html").read_text()
    assert "certified against k changed tokens" in page and "Levine and Feizi" in page
    sanity = load_run(tmp_path / "o").analysis().sanity
    checks = sanity[sanity["check"] == "certified_le_masked"]
    assert len(checks) == 1 and checks["passed"].all()
