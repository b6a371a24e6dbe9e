"""Missing modalities: masks and imputation on known inputs, seeded random dropout, the cached
encoder path equal to full forward passes, and exact Shapley values' axioms."""

from __future__ import annotations

import itertools

import pytest
import torch

import mmbench
from mmbench.stats.shapley import kept_set, shapley_values
from mmbench.config.suite import Component
from mmbench.data.base import MultimodalDataset
from mmbench.data.synthetic import make_synthetic
from mmbench.errors import MMBenchError
from mmbench.models.base import PRESENT
from mmbench.perturb.dropout import random_presence
from mmbench.plan.cells import expand_perturbation
from mmbench.train.standard import StandardConfig, StandardRecipe


def _cases(data: MultimodalDataset, name: str = "missing", **params):
    return expand_perturbation(Component(name, params), data)


def test_all_subsets_are_swept(synth: MultimodalDataset) -> None:
    cases = _cases(synth, subsets="all", imputation=["zeros", "mean"])
    assert len(cases) == 2 * 2 ** 4
    kept = {frozenset(c.keep) for c in cases if c.imputation == "zeros"}
    assert len(kept) == 16
    assert {c.target for c in cases} >= {"none", "all", "img", "img+aud"}


def test_masks_and_imputation_on_known_inputs(synth: MultimodalDataset) -> None:
    batch, labels = synth.test.rows(slice(0, 5))
    train_mean = synth.train.inputs["tab"].double().mean(0).float()
    (zeros, mean, noise, native) = [
        c for how in ("zeros", "mean", "noise", "native")
        for c in _cases(synth, subsets=["img+aud"], imputation=[how])]
    for case in (zeros, mean, noise, native):
        out = case.apply(None, batch, labels, seed=0)
        assert torch.equal(out["img"], batch["img"]) and torch.equal(out["aud"], batch["aud"])
        assert case.target == "tab+txt" and case.severity == 2.0
    z = zeros.apply(None, batch, labels, 0)
    assert torch.equal(z["tab"], torch.zeros_like(batch["tab"])) and (z["txt"] == 0).all()
    torch.testing.assert_close(mean.apply(None, batch, labels, 0)["tab"], train_mean.expand(5, -1))
    n1, n2 = noise.apply(None, batch, labels, 0), noise.apply(None, batch, labels, 99)
    assert torch.equal(n1["tab"], n2["tab"]), "noise must depend on the rows only"
    assert not torch.equal(n1["tab"], z["tab"]) and float(n1["tab"].min()) >= 0 and float(n1["tab"].max()) <= 1
    assert int(n1["txt"].max()) < 12
    mask = native.apply(None, batch, labels, 0)[PRESENT]
    assert mask.tolist() == [[True, True, False, False]] * 5


def test_random_dropout_keeps_one_and_is_seeded() -> None:
    a, b, c = random_presence(500, 4, 0.9, 1), random_presence(500, 4, 0.9, 1), random_presence(500, 4, 0.9, 2)
    assert a.any(dim=1).all() and torch.equal(a, b) and not torch.equal(a, c)
    assert 0.05 < float(a.float().mean()) < 0.35
    assert random_presence(50, 3, 0.0, 0).all()


def test_random_dropout_rates_and_rows(synth: MultimodalDataset) -> None:
    cases = _cases(synth, "random_dropout", rates=[0.0, 0.5], imputation=["zeros"])
    batch, labels = synth.test.rows(slice(None))
    clean = cases[0].apply(None, batch, labels, seed=3)
    assert all(torch.equal(clean[k], batch[k]) for k in batch)
    half = cases[1].apply(None, batch, labels, seed=3)
    changed = sum(int((half[k] != batch[k]).flatten(1).any(1).sum()) for k in batch)
    assert changed > 0


def test_late_fusion_native_averages_present_logits(synth: MultimodalDataset) -> None:
    torch.manual_seed(0)
    model = mmbench.create_model("late_fusion", synth.modalities, synth.n_classes).eval()
    batch, _ = synth.test.rows(slice(0, 3))
    with torch.no_grad():
        only_img = model.encode(batch)["img"]  # late fusion's per-modality output is its logits
        present = torch.tensor([[True, False, False, False]] * 3)
        torch.testing.assert_close(model({**batch, PRESENT: present}), only_img)
        assert torch.equal(model({**batch, PRESENT: torch.zeros(3, 4, dtype=torch.bool)}),
                           torch.zeros(3, synth.n_classes))


def test_native_needs_a_model_that_handles_missing(tmp_path) -> None:
    from conftest import tiny_suite, write_suite

    from mmbench.runner import RunOptions, run_suite

    suite = tiny_suite(models=["seed_concat"], perturbations=[
        {"name": "missing", "params": {"subsets": ["img"], "imputation": ["native"]}}])
    with pytest.raises(MMBenchError, match="handle missing modalities natively.*late_fusion"):
        run_suite(write_suite(tmp_path, suite), RunOptions(out_dir=tmp_path / "o", cache_dir=tmp_path / "c"))


@pytest.mark.parametrize("params,match", [
    ({"subsets": ["img+imgg"]}, r"unknown modality 'imgg' in subset 'img\+imgg' \(did you mean 'img'\?\)"),
    ({"imputation": ["zero"]}, r"unknown imputation 'zero' \(did you mean 'zeros'\?\)"),
    ({"subsets": "some"}, "'subsets' must be 'all' or a list"),
])
def test_bad_missing_parameters(synth: MultimodalDataset, params, match) -> None:
    with pytest.raises(MMBenchError, match=match):
        _cases(synth, **params)


@pytest.mark.parametrize("rate", [1.0, -0.1, 1.5])
def test_bad_rates(synth: MultimodalDataset, rate) -> None:
    with pytest.raises(MMBenchError, match=r"rates must lie in \[0, 1\)"):
        _cases(synth, "random_dropout", rates=[rate])


def test_shapley_axioms_by_hand() -> None:
    players = ["a", "b", "c"]
    # a game: a is worth 0.3, b and c are identical (0.2 each, 0.3 together), plus a synergy
    def v(s):
        return 0.1 + 0.3 * ("a" in s) + (0.3 if {"b", "c"} <= s else 0.2 if s & {"b", "c"} else 0) \
            + 0.1 * ({"a", "b"} <= s)
    game = {frozenset(s): v(set(s)) for k in range(4) for s in itertools.combinations(players, k)}
    phi = shapley_values(game, players)
    assert sum(phi.values()) == pytest.approx(game[frozenset(players)] - game[frozenset()])
    assert phi["a"] == pytest.approx(0.3 + 0.05)
    null = shapley_values({s: 0.5 + 0.1 * ("a" in s) for s in game}, players)
    assert null["b"] == pytest.approx(0) and null["c"] == pytest.approx(0)
    assert kept_set("b+c") == {"b", "c"} and kept_set("none") == set()
    assert kept_set("a+b+c") == set(players)


@pytest.fixture(scope="module")
def reliance():
    """Shapley values on data with an informative modality, its exact copy, and noise."""
    from mmbench.stats.shapley import modality_shapley
    from mmbench.execution.evaluate import EvalSettings, evaluate
    from mmbench.metrics.outcomes import SampleSet, stack
    from mmbench.registry import METRICS
    from mmbench.store.rows import CellFacts, rows_to_frame

    data = make_synthetic(modalities=[
        {"name": "sig", "kind": "vector", "shape": [8], "informativeness": 0.9},
        {"name": "twin", "copy_of": "sig"},
        {"name": "junk", "kind": "vector", "shape": [8], "informativeness": 0.0}],
        n_samples=600, n_classes=4, noise=0.8, seed=4)
    torch.manual_seed(0)
    model = mmbench.create_model("late_fusion", data.modalities, data.n_classes)
    StandardRecipe().fit(model, data, StandardConfig(epochs=20), seed=0)
    # make the model itself symmetric in the twins, so the game is: tie twin's weights to sig's
    model.encoders["twin"].load_state_dict(model.encoders["sig"].state_dict())

    rows = []
    for case in _cases(data, subsets="all", imputation=["mean"]):
        samples = evaluate(model.eval(), data.test, case, EvalSettings(512, 0)).samples(SampleSet("syn", "test"))
        facts = CellFacts("s", "syn", "late_fusion", "standard", 0, case.family, case.name, case.target,
                          case.severity, facts=case.facts())
        for metric in ("accuracy", "true_class_prob"):
            value = METRICS.get(metric)(4).value(stack([samples], 4, False))[0]
            rows.append(facts.row(metric, float(value), len(samples.preds)))
    frame = rows_to_frame(rows)
    return modality_shapley(frame, {"syn": ["sig", "twin", "junk"]}), frame


def test_shapley_on_a_trained_model(reliance) -> None:
    table, frame = reliance
    for metric in ("accuracy", "true_class_prob"):
        phi = table[table["metric"] == metric].set_index("modality")["shapley"]
        v = table[table["metric"] == metric].iloc[0]
        assert phi.sum() == pytest.approx(v["v_all"] - v["v_none"])      # efficiency
        assert abs(phi["junk"]) < 0.03                                      # null player
        assert phi["sig"] > 0.1 and phi["twin"] > 0.1
    acc = table[table["metric"] == "accuracy"].set_index("modality")["shapley"]
    assert acc["sig"] == pytest.approx(acc["twin"], abs=1e-12)              # symmetry (copies)


def test_single_modality_views(reliance) -> None:
    """Leave-one-out and only-one rows are read off the sweep at the right subsets."""
    from mmbench.stats.shapley import single_modality_views
    from mmbench.families.missing import views_board

    _, frame = reliance
    views = single_modality_views(frame, {"syn": ["sig", "twin", "junk"]})
    acc = frame[frame["metric"] == "accuracy"].set_index("target")["value"]
    got = views[views["metric"] == "accuracy"].set_index(["view", "modality"])["value"]
    assert len(got) == 6
    assert got[("leave_one_out", "junk")] == acc["junk"]          # only junk missing
    assert got[("only_one", "sig")] == acc["twin+junk"]           # only sig present
    assert got[("only_one", "junk")] < got[("only_one", "sig")] - 0.2
    board = views_board(views, "accuracy", "syn").markdown()
    assert "-sig" in board and "only junk" in board and "late_fusion" in board


def test_modality_dropout_training_helps_when_a_modality_is_missing() -> None:
    from mmbench.config.params import build_config
    from mmbench.registry import RECIPES

    data = make_synthetic(modalities=[
        {"name": "a", "kind": "vector", "shape": [8], "informativeness": 0.9},
        {"name": "b", "kind": "vector", "shape": [8], "informativeness": 0.9}],
        n_samples=600, n_classes=4, noise=0.8, seed=5)
    recipe = RECIPES.get("modality_dropout")()
    config = build_config(recipe.config_type, {"epochs": 20, "rate": 0.5}, "recipe")
    accs = {}
    for name, rec, cfg in (("standard", StandardRecipe(), StandardConfig(epochs=20)),
                           ("dropout", recipe, config)):
        torch.manual_seed(0)
        model = mmbench.create_model("early_fusion", data.modalities, data.n_classes)
        rec.fit(model, data, cfg, seed=0)
        (only_a,) = _cases(data, subsets=["a"], imputation=["zeros"])
        batch, labels = data.test.rows(slice(None))
        with torch.no_grad():
            accs[name] = float((model(only_a.apply(model, batch, labels, 0)).argmax(1) == labels).float().mean())
    assert accs["dropout"] > accs["standard"] + 0.05, accs


def test_native_recipe_needs_a_capable_model(tmp_path) -> None:
    from conftest import tiny_suite, write_suite

    from mmbench.runner import RunOptions, run_suite

    suite = tiny_suite(models=["gated_fusion"], recipes=[
        {"name": "modality_dropout", "params": {"epochs": 1, "imputation": "native"}}])
    with pytest.raises(MMBenchError, match="recipe modality_dropout.*natively"):
        run_suite(write_suite(tmp_path, suite), RunOptions(out_dir=tmp_path / "o", cache_dir=tmp_path / "c"))


def test_shapley_bar_plots_are_written(reliance, tmp_path) -> None:
    from mmbench.families.base import Context
    from mmbench.families.missing import Missing

    _, frame = reliance
    (plot,) = Missing().plots(Context(frame, players={"syn": ("sig", "twin", "junk")}), tmp_path)
    path, data = plot.path, plot.path.read_bytes()
    assert plot.dataset == "syn" and "late_fusion" in plot.caption
    assert path.name == "shapley_syn_late_fusion_standard.png"
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_rate_curve_board_and_plots(tmp_path) -> None:
    """A suite with random dropout gets an accuracy-vs-rate table in LEADERBOARD.md and one line
    chart per imputation; on informative data, dropping more modalities costs accuracy."""
    from conftest import tiny_suite, write_suite

    from mmbench.runner import RunOptions, run_suite

    suite = tiny_suite(models=["late_fusion"], perturbations=[
        {"name": "random_dropout", "params": {"rates": [0.0, 0.5, 0.9], "imputation": ["zeros", "mean"]}}])
    suite["recipes"][0]["params"]["epochs"] = 15
    result = run_suite(write_suite(tmp_path, suite), RunOptions(out_dir=tmp_path / "o", cache_dir=tmp_path / "c"))
    assert "accuracy vs random modality-dropout rate" in result.leaderboard
    header = next(line for line in result.leaderboard.splitlines() if line.startswith("| model"))
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "model", "recipe", "imputation", "0", "0.5", "0.9", "mean"]
    acc = result.frame[(result.frame["perturbation"] == "random-zeros")
                       & (result.frame["metric"] == "accuracy")].set_index("severity")["value"]
    assert acc[0.0] > acc[0.9] + 0.1, acc
    plots = sorted(p.name for p in (tmp_path / "o" / "plots").glob("random_dropout_*.png"))
    assert plots == ["random_dropout_synthetic_mean.png", "random_dropout_synthetic_zeros.png"]
