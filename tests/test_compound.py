"""Compound perturbations: each stage sees the previous stage's output and touches only its own
targets (bit-identical elsewhere, the attack within eps of its input), attacks are kept off
missing modalities, stages become structured columns, the shorthand grids have the documented
size, and the family scores, boards and flags a compound against its stages alone."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import tiny_suite, write_suite

import mmbench
from mmbench.stats.direction import ScoreMetric
from mmbench.config.suite import Component
from mmbench.data.base import MultimodalDataset
from mmbench.data.synthetic import make_synthetic
from mmbench.errors import MMBenchError
from mmbench.families.base import Context
from mmbench.families.compound import Compound as CompoundFamily
from mmbench.families.compound import label, stage_checks, worst_board
from mmbench.families.scoring import compute_scores
from mmbench.hashing import derive_seed
from mmbench.perturb.adversarial import Attack
from mmbench.perturb.compound import Compound
from mmbench.perturb.dropout import Missing
from mmbench.perturb.shift import Shift
from mmbench.plan.cells import expand_perturbation
from mmbench.render.tables import Num
from mmbench.runner import RunOptions, run_suite
from mmbench.train.standard import StandardConfig, StandardRecipe

THREE = [
    {"name": "img", "kind": "image", "shape": [1, 6, 6], "informativeness": 0.8},
    {"name": "aud", "kind": "sequence", "shape": [2, 8], "informativeness": 0.8},
    {"name": "tab", "kind": "vector", "shape": [8], "informativeness": 0.8},
]
EPS = 0.1
ATTACK = {"name": "adversarial", "params": {"attacks": ["pgd"], "eps": [EPS], "options": {"pgd": {"steps": 5}}}}


@pytest.fixture(scope="module")
def data() -> MultimodalDataset:
    return make_synthetic(modalities=THREE, n_samples=240, n_classes=3, noise=0.8, seed=5)


@pytest.fixture(scope="module")
def model(data: MultimodalDataset) -> torch.nn.Module:
    torch.manual_seed(0)
    net = mmbench.create_model("seed_concat", data.modalities, data.n_classes)
    StandardRecipe().fit(net, data, StandardConfig(epochs=5, batch_size=32), seed=0)
    return net.eval()


def _expand(data: MultimodalDataset, stages: list[dict], name: str = "compound", **params) -> list:
    return expand_perturbation(Component(name, {"stages": stages, **params} if stages else params), data)


def _with_targets(stage: dict, targets: list[str]) -> dict:
    return {"name": stage["name"], "params": {**stage["params"], "targets": targets}}


def _missing(*kept: str) -> dict:
    return {"name": "missing", "params": {"subsets": [list(kept)], "imputation": ["mean"]}}


def _staged(compound: Compound, model, batch, labels, seed: int) -> list[dict[str, torch.Tensor]]:
    """The input and each stage's output, computed stage by stage with the compound's seeds."""
    outs = [dict(batch)]
    for i, stage in enumerate(compound.stages, start=1):
        outs.append(stage.apply(model, outs[-1], labels, derive_seed(seed, "stage", i)))
    return outs


def _two_stage(cases: list) -> Compound:
    (case,) = [c for c in cases if len(c.stages) == 2]
    return case


def test_missing_then_attack_keeps_the_imputed_modality_and_the_budget(data, model) -> None:
    batch, labels = data.test.rows(slice(0, 48))
    case = _two_stage(_expand(data, [_missing("aud", "tab"), _with_targets(ATTACK, ["aud"])]))
    missing, attack = case.stages
    assert isinstance(missing, Missing) and isinstance(attack, Attack) and case.target == "img+aud"
    out = case.apply(model, batch, labels, seed=7)
    before, after_missing, after_attack = _staged(case, model, batch, labels, seed=7)
    imputed = missing.fill.impute(data.spec("img"), batch["img"], "mean", labels)
    assert torch.equal(out["img"], imputed) and torch.equal(after_missing["img"], imputed)
    assert torch.equal(out["tab"], after_missing["tab"]) and torch.equal(out["tab"], batch["tab"])
    for name in out:
        assert torch.equal(out[name], after_attack[name]), f"{name}: the compound is not its stages in order"
    assert bool((attack.distance(after_missing, out) <= EPS * (1 + 1e-6) + 1e-6).all())
    assert not torch.equal(out["aud"], batch["aud"])  # the attack moved something
    again = case.apply(model, batch, labels, seed=7)
    assert all(torch.equal(out[k], again[k]) for k in out)


def test_a_joint_attack_after_missing_is_restricted_to_the_remaining_modalities(data, model) -> None:
    batch, labels = data.test.rows(slice(0, 48))
    case = _two_stage(_expand(data, [_missing("aud", "tab"), _with_targets(ATTACK, ["all"])]))
    attack = case.stages[1]
    assert attack.target == "aud+tab" and [s.name for s in attack.specs] == ["aud", "tab"]
    assert case.target == "all" and case.facts()["stage2_target"] == "aud+tab"
    out = case.apply(model, batch, labels, seed=3)
    _, after_missing, _ = _staged(case, model, batch, labels, seed=3)
    assert torch.equal(out["img"], after_missing["img"])
    assert bool((attack.distance(after_missing, out) <= EPS * (1 + 1e-6) + 1e-6).all())
    # 'each' leaves the missing modality out instead of attacking it
    each = _expand(data, [_missing("aud", "tab"), _with_targets(ATTACK, ["each"])])
    assert sorted(c.stages[-1].target for c in each if len(c.stages) == 2) == ["aud", "tab"]


def test_shift_then_attack_leaves_the_corrupted_modality_to_the_corruption(data, model) -> None:
    batch, labels = data.test.rows(slice(0, 48))
    shift = {"name": "shift", "params": {"corruptions": ["gaussian_noise"], "severities": [3], "targets": ["img"],
                                         "draws": 1}}
    case = _two_stage(_expand(data, [shift, _with_targets(ATTACK, ["tab"])]))
    assert isinstance(case.stages[0], Shift)
    out = case.apply(model, batch, labels, seed=11)
    _, corrupted, _ = _staged(case, model, batch, labels, seed=11)
    assert not torch.equal(corrupted["img"], batch["img"])
    assert torch.equal(out["img"], corrupted["img"]) and torch.equal(out["aud"], batch["aud"])
    assert bool((case.stages[1].distance(corrupted, out) <= EPS * (1 + 1e-6) + 1e-6).all())
    # attacking the corrupted modality itself attacks the corrupted view, within eps of it
    on_img = _two_stage(_expand(data, [shift, _with_targets(ATTACK, ["img"])]))
    out = on_img.apply(model, batch, labels, seed=11)
    _, corrupted, _ = _staged(on_img, model, batch, labels, seed=11)
    assert torch.equal(out["tab"], batch["tab"]) and not torch.equal(out["img"], corrupted["img"])
    assert bool((on_img.stages[1].distance(corrupted, out) <= EPS * (1 + 1e-6) + 1e-6).all())


def test_stage_seeds_differ_and_derive_from_the_cell_seed(data) -> None:
    noise = {"name": "shift", "params": {"corruptions": ["gaussian_noise"], "severities": [5], "targets": ["tab"],
                                         "draws": 1}}
    case = _two_stage(_expand(data, [noise, noise]))
    batch, labels = data.test.rows(slice(0, 16))
    out = case.apply(None, batch, labels, seed=1)
    once = case.stages[0].apply(None, batch, labels, derive_seed(1, "stage", 1))
    twice = case.stages[1].apply(None, once, labels, derive_seed(1, "stage", 2))
    assert torch.equal(out["tab"], twice["tab"]) and not torch.equal(out["tab"], once["tab"])
    assert not torch.equal(case.apply(None, batch, labels, seed=2)["tab"], out["tab"])


@pytest.mark.parametrize("stages,message", [
    ([_missing("aud", "tab"), _with_targets(ATTACK, ["img"])], "stage 2 targets 'img', but img is missing after"),
    ([_missing("aud", "tab"), _with_targets(ATTACK, ["img+aud"])], "targets 'img\\+aud', but img is missing"),
    ([_missing(), _with_targets(ATTACK, ["all"])],
     "every combination of the stages' cases leaves a stage nothing to touch"),
    ([_missing("tab")], "at least two stages"),
    ([_missing("tab"), {"name": "random_dropout", "params": {"rates": [0.5]}}], "'random-zeros' cannot be a stage"),
    ([_missing("tab"), {"name": "compound", "params": {"stages": [_missing("tab"), ATTACK]}}],
     "compounds do not nest"),
    ([_missing("tab"), {"name": "adversarial", "params": {"attacks": ["fgsm", "pgd"], "eps": [0.1],
                                                          "ensemble": True}}], "'ensemble' is not supported"),
    ([_missing("tab"), {"name": "adversarial", "params": {"attack": ["fgsm"], "eps": [0.1]}}],
     "unknown parameter 'attack' \\(did you mean 'attacks'\\?\\)"),
    ([_missing("tab"), {"name": "adversarail", "params": {}}], "stage 2: unknown perturbation 'adversarail'"),
    ([_missing("tab"), {"name": "adversarial", "params": {"attacks": ["fgsm"], "eps": [0.1], "targets": ["pix"]}}],
     "stage 2 \\(adversarial\\): adversarial: unknown target modality 'pix'"),
    ([_missing("tab"), {"name": "adversarial", "prams": {}}], "stage 2 must be a mapping"),
])
def test_bad_stages_are_one_line_errors(data, stages: list, message: str) -> None:
    with pytest.raises(MMBenchError, match=message) as info:
        _expand(data, stages)
    assert "\n" not in str(info.value)


def test_missing_accepts_kept_sets_as_lists_or_joined_names(data) -> None:
    as_lists = expand_perturbation(Component("missing", {"subsets": [["img", "tab"], [], ["aud"]]}), data)
    as_names = expand_perturbation(Component("missing", {"subsets": ["img+tab", "none", "aud"]}), data)
    assert [repr(c) for c in as_lists] == [repr(c) for c in as_names]
    for bad, message in (([["img", 3]], "a kept set must be a name"), ([{"img": 1}], "a kept set must be a name"),
                         ([["pix"]], "unknown modality 'pix'"), ([["img"], "img"], "lists 'img' twice")):
        with pytest.raises(MMBenchError, match=message):
            expand_perturbation(Component("missing", {"subsets": bad}), data)


def test_the_grids_have_the_documented_size(data) -> None:
    """M continuous modalities: M(M-1) + M compounds with the joint attack (M(M-1) without) and
    each stage alone; shift_then_attack: corruptions * M * (M-1)."""
    attack = {"attacks": ["fgsm"], "eps": [0.05]}
    cases = expand_perturbation(Component("missing_then_attack", attack), data)
    multi = [c for c in cases if len(c.stages) == 2]
    assert len(multi) == 3 * 2 + 3
    assert {(c.stages[0].target, c.stages[1].target) for c in multi} == {
        (gone, t) for gone in ("img", "aud", "tab") for t in
        [*(m for m in ("img", "aud", "tab") if m != gone), "+".join(m for m in ("img", "aud", "tab") if m != gone)]}
    # alone: each single missing modality, each single attack, each pair attacked jointly
    assert len(cases) - len(multi) == 3 + 3 + 3 and all(len(c.stages) == 1 for c in cases[len(multi):])
    without = expand_perturbation(Component("missing_then_attack", {**attack, "joint": False, "missing": ["img"]}),
                                  data)
    assert len([c for c in without if len(c.stages) == 2]) == 2
    vectors = make_synthetic(modalities=[{"name": n, "kind": "vector", "shape": [6]} for n in ("a", "b", "c")],
                             n_samples=60, n_classes=3, seed=0)
    shifted = expand_perturbation(Component("shift_then_attack", {
        **attack, "corruptions": ["gaussian_noise", "feature_dropout"], "severity": 2}), vectors)
    assert len([c for c in shifted if len(c.stages) == 2]) == 2 * 3 * 2
    assert len(shifted) == 2 * 3 * 2 + 2 * 3 + 3
    with pytest.raises(MMBenchError, match="severity must be one integer from 1 to 5"):
        expand_perturbation(Component("shift_then_attack", {**attack, "corruptions": ["gaussian_noise"],
                                                           "severity": 0}), vectors)
    with pytest.raises(MMBenchError, match="unknown modality 'd' in 'missing'"):
        expand_perturbation(Component("missing_then_attack", {**attack, "missing": ["d"]}), vectors)


def test_on_mfeat_the_issue_example_expands_and_an_attack_on_the_lost_view_is_refused() -> None:
    mfeat = mmbench.load_dataset("mfeat")
    pix_lost = {"name": "missing", "params": {"subsets": [["fou", "fac", "kar", "zer", "mor"]], "imputation": ["mean"]}}
    pgd = {"name": "adversarial", "params": {"attacks": ["pgd"], "eps": [0.05], "targets": ["fac"]}}
    cases = _expand(mfeat, [pix_lost, pgd])
    assert [(c.name, c.target, len(c.stages)) for c in cases] == [
        ("missing-mean>pgd-Linf", "fac+pix", 2), ("missing-mean", "pix", 1), ("pgd-Linf", "fac", 1)]
    facts = cases[0].facts()
    assert facts["stage1_kept"] == "fou+fac+kar+zer+mor" and facts["stage2_attack"] == "pgd"
    with pytest.raises(MMBenchError, match="targets 'pix', but pix is missing"):
        _expand(mfeat, [pix_lost, _with_targets(pgd, ["pix"])])
    grid = expand_perturbation(Component("missing_then_attack", {"attacks": ["fgsm"], "eps": [0.05]}), mfeat)
    assert len([c for c in grid if len(c.stages) == 2]) == 6 * 5 + 6


@pytest.fixture(scope="module")
def compound_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("compound")
    suite = tiny_suite(models=["late_fusion"], perturbations=["clean", {
        "name": "compound", "params": {"max_rows": 24, "stages": [
            {"name": "missing", "params": {"subsets": [["aud", "tab", "txt"]], "imputation": ["mean"]}},
            {"name": "adversarial", "params": {"attacks": ["fgsm"], "eps": [0.1], "targets": ["all"]}}]}},
        {"name": "shift_then_attack", "params": {"corruptions": ["gaussian_noise"], "severity": 4, "draws": 2,
                                                 "attacks": ["fgsm"], "eps": [0.1], "max_rows": 24}}])
    suite["recipes"] = [{"name": "standard", "params": {"epochs": 2, "batch_size": 32}}]
    result = run_suite(write_suite(root, suite), RunOptions(out_dir=root / "out", cache_dir=root / "cache",
                                                            progress=False))
    return root, result


def test_stages_are_structured_columns_of_the_results(compound_run) -> None:
    root, result = compound_run
    assert not result.failed
    frame = pd.read_csv(root / "out" / "results.csv")
    rows = frame[(frame["family"] == "compound") & (frame["metric"] == "accuracy")]
    for column in ("stages", "stage1_family", "stage1_perturbation", "stage1_target", "stage1_severity",
                   "stage1_key", "stage1_kept", "stage1_imputation", "stage1_corruption", "stage1_draws",
                   "stage2_attack", "stage2_norm", "stage2_target", "stage2_severity"):
        assert column in frame.columns, column
    missing = rows[(rows["stages"] == 2) & (rows["stage1_family"] == "missing")]
    assert len(missing) == 1 and missing["stage1_kept"].iloc[0] == "aud+tab+txt"
    assert missing["stage2_target"].iloc[0] == "aud+tab" and missing["stage2_attack"].iloc[0] == "fgsm"
    assert missing["perturbation"].iloc[0] == "missing-mean>fgsm-Linf" and (rows["n"] == 24).all()
    shifted = rows[(rows["stages"] == 2) & (rows["stage1_family"] == "shift")]
    assert len(shifted) == 3 * 2 and set(shifted["stage1_severity"]) == {4.0}
    alone = rows[rows["stages"] == 1]
    assert set(alone["stage1_key"]) >= set(missing["stage2_key"]) | set(missing["stage1_key"])


def test_compound_worst_joins_the_composite_and_the_board_and_sanity_show(compound_run) -> None:
    root, result = compound_run
    scores = pd.read_csv(root / "out" / "scores.csv")
    frame = result.frame
    multi = frame[(frame["family"] == "compound") & (frame["metric"] == "accuracy") & (frame["stages"] == 2)]
    worst = scores.loc[scores["score"] == "compound_worst", "value"]
    assert len(worst) == 1 and worst.iloc[0] == pytest.approx(multi["value"].min())
    assert "compound_worst" in result.leaderboard.split("## ")[1]  # a column of the main board
    assert "compound perturbations (worst condition, accuracy)" in result.leaderboard
    sanity = json.loads((root / "out" / "results.json").read_text())["sanity"]
    flags = [s for s in sanity if s["check"] == "compound_vs_stage"]
    assert len(flags) == len(multi)


def _frame(compound: float, first: float, second: float, seed: int = 0, n: int = 100) -> pd.DataFrame:
    base = {"dataset": "d", "model": "m", "recipe": "r", "seed": seed, "family": "compound", "split": "test",
            "rows": 0, "metric": "accuracy", "n": n, "ci_low": np.nan, "ci_high": np.nan}
    stage = {"missing": {"stage1_family": "missing", "stage1_perturbation": "missing-mean", "stage1_target": "a",
                         "stage1_severity": 1.0, "stage1_key": "k1"},
             "attack": {"stage1_family": "adversarial", "stage1_perturbation": "pgd-Linf", "stage1_target": "b",
                        "stage1_severity": 0.05, "stage1_key": "k2"}}
    both = {**stage["missing"], "stage2_family": "adversarial", "stage2_perturbation": "pgd-Linf",
            "stage2_target": "b", "stage2_severity": 0.05, "stage2_key": "k2"}
    return pd.DataFrame([
        {**base, **both, "perturbation": "missing-mean>pgd-Linf", "target": "a+b", "severity": 0.05, "stages": 2,
         "value": compound},
        {**base, **stage["missing"], "perturbation": "missing-mean", "target": "a", "severity": 1.0, "stages": 1,
         "value": first},
        {**base, **stage["attack"], "perturbation": "pgd-Linf", "target": "b", "severity": 0.05, "stages": 1,
         "value": second}])


def test_the_sanity_flag_fires_when_a_compound_beats_its_worse_stage() -> None:
    flagged = stage_checks(_frame(0.70, 0.80, 0.60), higher_is_better=True)
    assert list(flagged["check"]) == ["compound_vs_stage"] and not flagged["passed"].iloc[0]
    assert "compound 0.700 > worse stage alone 0.600" in flagged["detail"].iloc[0]
    assert "missing-mean on a @1 → pgd-Linf on b @0.05" in flagged["detail"].iloc[0]
    assert stage_checks(_frame(0.50, 0.80, 0.60), True)["passed"].all()
    assert stage_checks(_frame(0.605, 0.80, 0.60), True)["passed"].all()  # within one row of 100
    assert not stage_checks(_frame(0.62, 0.80, 0.60), True)["passed"].any()
    # lower is better (an error-like metric): the worse stage is the larger value
    assert not stage_checks(_frame(0.30, 0.20, 0.40), False)["passed"].any()
    assert stage_checks(_frame(0.45, 0.20, 0.40), False)["passed"].all()
    # a compound whose stages did not all run alone is not checked
    assert stage_checks(_frame(0.7, 0.8, 0.6).iloc[:2], True).empty


def test_the_family_scores_the_worst_compound_and_boards_it() -> None:
    frame = pd.concat([_frame(0.50, 0.80, 0.60, seed=0), _frame(0.40, 0.70, 0.60, seed=1)], ignore_index=True)
    ctx = Context(frame)
    family = CompoundFamily()
    (worst,) = family.compute(ctx).values()
    assert worst[("d", "m", "r")] == pytest.approx(0.45)  # mean over seeds of the only compound
    scores = compute_scores(ctx, [family])
    assert set(scores["score"]) == {"compound_worst", "composite"}
    assert scores.set_index("score")["value"]["composite"] == pytest.approx(0.45)
    table = worst_board(frame, ctx)
    (row,) = table.rows
    compound, single, extra = row[3:]
    assert isinstance(compound, Num) and compound.value == pytest.approx(0.45)
    assert compound.note == label(frame.iloc[0]) and single.value == pytest.approx(0.60)
    assert single.note == "pgd-Linf on b @0.05" and extra.value == pytest.approx(0.15)
    checks = family.checks(ctx)
    assert len(checks) == 2 and checks["passed"].all()
    errors = frame.assign(metric="nll")
    nll = Context(errors, ScoreMetric("nll", higher_is_better=False))
    assert family.compute(nll)["compound_worst"][("d", "m", "r")] == pytest.approx(0.45)
    (row,) = worst_board(errors, nll).rows
    assert row[4].value == pytest.approx(0.75) and row[5].value == pytest.approx(0.45 - 0.75)


def test_only_stageable_perturbations_have_stage_capability() -> None:
    from mmbench.perturb.dropout import RandomDropout
    from mmbench.perturb.natural import Natural

    assert Missing.stageable and Attack.stageable and Shift.stageable
    assert not RandomDropout.stageable and not Natural.stageable and not Compound.stageable
