"""The shift family: corruption cases, corruption errors (mCE) by hand, natural shift splits."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from mmbench.stats.corruption import corruption_errors, natural_summary, shift_summary
from mmbench.config.suite import Component
from mmbench.data.base import MultimodalDataset
from mmbench.errors import MMBenchError
from mmbench.plan.cells import expand_perturbation
from mmbench.registry import CORRUPTIONS


def _row(model, perturbation, target, severity, value, family="shift", seed=0):
    return dict(suite="s", dataset="d", model=model, recipe="r", seed=seed, family=family,
                perturbation=perturbation, target=target, severity=float(severity),
                corruption=perturbation, metric="accuracy", value=value, n=100)


def _corrupted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[(frame["family"] == "shift") & (frame["severity"] > 0)]


def _clean(frame: pd.DataFrame) -> pd.Series:
    clean = frame[frame["family"] == "clean"]
    return clean.groupby(["dataset", "model", "recipe"])["value"].mean()


def _errors(frame: pd.DataFrame, baseline: str = "") -> pd.DataFrame:
    return corruption_errors(_corrupted(frame), _clean(frame), baseline)


def _hand_frame() -> pd.DataFrame:
    rows = [_row("A", "clean", "all", 0, 0.9, "clean"), _row("B", "clean", "all", 0, 0.8, "clean")]
    for model, cond, accs in (("A", ("noise", "x"), (0.8, 0.6)), ("A", ("drop", "all"), (0.85, 0.85)),
                              ("B", ("noise", "x"), (0.7, 0.5)), ("B", ("drop", "all"), (0.8, 0.8))):
        for severity, acc in enumerate(accs, start=1):
            if model == "B":  # two training seeds whose mean is acc
                rows += [_row(model, *cond, severity, acc + 0.02, seed=0),
                         _row(model, *cond, severity, acc - 0.02, seed=1)]
            else:
                rows.append(_row(model, *cond, severity, acc))
    return pd.DataFrame(rows)


def test_corruption_errors_by_hand() -> None:
    """A (baseline): errors 0.2+0.4 and 0.15+0.15, clean 0.1; B: 0.3+0.5 and 0.2+0.2, clean 0.2."""
    table = _errors(_hand_frame(), "A").set_index(["model", "corruption"])
    assert table.loc[("A", "noise"), "ce"] == pytest.approx(1.0)
    assert table.loc[("B", "noise"), "ce"] == pytest.approx(0.8 / 0.6)
    assert table.loc[("B", "drop"), "ce"] == pytest.approx(0.4 / 0.3)
    assert table.loc[("B", "noise"), "rel_ce"] == pytest.approx((0.8 - 0.4) / (0.6 - 0.2))
    assert table.loc[("B", "drop"), "rel_ce"] == pytest.approx(0.0, abs=1e-12)
    assert table.loc[("B", "noise"), "ra"] == pytest.approx(0.6 / 0.8)
    summary = shift_summary(_errors(_hand_frame(), "A")).set_index("model")
    assert summary.loc["B", "mce"] == pytest.approx(4 / 3)
    assert summary.loc["B", "rel_mce"] == pytest.approx(0.5)
    assert summary.loc["B", "mean_ra"] == pytest.approx((0.75 + 1.0) / 2)
    assert summary.loc["A", "mce"] == pytest.approx(1.0) and summary.loc["A", "rel_mce"] == pytest.approx(1.0)


def test_severity_means_by_hand() -> None:
    from mmbench.stats.corruption import severity_means

    frame = _hand_frame()
    means = severity_means(_corrupted(frame), _clean(frame)).set_index(["model", "severity"])["value"]
    assert means[("B", 0.0)] == pytest.approx(0.8)                 # clean
    assert means[("B", 1.0)] == pytest.approx((0.7 + 0.8) / 2)     # mean over the two conditions
    assert means[("A", 2.0)] == pytest.approx((0.6 + 0.85) / 2)


def test_without_a_baseline_there_is_no_mce() -> None:
    summary = shift_summary(_errors(_hand_frame()))
    assert summary["mce"].isna().all() and summary["mean_acc"].notna().all()


def test_natural_summary_worst_group() -> None:
    rows = [_row("A", "natural", g, 0, v, "natural_shift") for g, v in (("id", 0.9), ("q1", 0.95), ("ood", 0.7))]
    table = natural_summary(pd.DataFrame(rows)).set_index("model")
    assert table.loc["A", "worst_group"] == pytest.approx(0.7)
    assert list(table.columns) == ["dataset", "recipe", "id", "ood", "q1", "worst_group"]


def _shift_cases(data: MultimodalDataset, **params):
    return expand_perturbation(Component("shift", params), data)


def test_shift_cases_cover_each_modality_and_all(synth: MultimodalDataset) -> None:
    cases = _shift_cases(synth, corruptions=["gaussian_noise"], severities=[1, 5])
    assert sorted({c.target for c in cases}) == ["all", "aud", "img", "tab"]  # not the tokens
    assert {c.severity for c in cases} == {1.0, 5.0} and all(c.family == "shift" for c in cases)
    every = _shift_cases(synth)
    for case in every:  # every case only targets modalities its corruption supports
        assert all(CORRUPTIONS.get(case.name).unsupported(s) is None for s in case.specs)
    applicable = {n for n in CORRUPTIONS.names()
                  if any(CORRUPTIONS.get(n).unsupported(s) is None for s in synth.modalities)}
    assert {c.name for c in every} == applicable and "freq_mask" not in applicable  # aud: 2 bins


@pytest.mark.parametrize("params,match", [
    ({"severities": [6]}, "severities must be integers 0-5"),
    ({"severities": [-1]}, "severities must be integers 0-5"),
    ({"corruptions": ["gaussian_nose"]}, "did you mean 'gaussian_noise'"),
    ({"corruptions": ["gaussian_noise"], "targets": ["txt"]}, "applies to image/sequence/vector"),
    ({"targets": ["nope"]}, "unknown target 'nope'"),
])
def test_bad_shift_parameters(synth: MultimodalDataset, params, match) -> None:
    with pytest.raises(MMBenchError, match=match):
        _shift_cases(synth, **params)


def test_shift_leaves_other_modalities_alone(synth: MultimodalDataset) -> None:
    (case,) = [c for c in _shift_cases(synth, corruptions=["gaussian_noise"], severities=[3])
               if c.target == "tab"]
    batch, labels = synth.test.rows(slice(0, 8))
    out = case.apply(torch.nn.Identity(), batch, labels, seed=1)
    assert not torch.equal(out["tab"], batch["tab"])
    assert all(torch.equal(out[k], batch[k]) for k in ("img", "aud", "txt"))


def test_mfeat_attribute_split_holds_out_the_top_bin() -> None:
    from mmbench.data.mfeat import find_data_dir, load_mfeat, read_views
    from mmbench.data.splits import attribute_bins

    data = load_mfeat(ood_attribute="mor:5", n_groups=4)
    views, labels = read_views(find_data_dir())
    bins = attribute_bins(views["mor"][:, 5], labels, 4)
    assert sorted(data.groups) == ["ood", "q1", "q2", "q3"]
    assert len(data.groups["ood"]) == int((bins == 3).sum()) == 500
    assert len(data.train) + len(data.val) + len(data.test) == 1500
    assert sum(len(data.groups[q]) for q in ("q1", "q2", "q3")) == len(data.test)
    assert torch.bincount(data.groups["ood"].labels).tolist() == [50] * 10  # no label shift
    # the held-out rows have more ink than any training row of their class, before scaling
    raw = views["mor"][:, 5]
    for cls in range(10):
        assert raw[(labels == cls) & (bins == 3)].min() >= raw[(labels == cls) & (bins < 3)].max()


@pytest.mark.parametrize("params,match", [
    ({"ood_attribute": "mor:9"}, "ood_attribute must be 'view:column'"),
    ({"ood_attribute": "mor:5", "n_groups": 1}, "n_groups must be 2-20"),
])
def test_bad_attribute_split(params, match) -> None:
    from mmbench.data.mfeat import load_mfeat

    with pytest.raises(MMBenchError, match=match):
        load_mfeat(**params)


def test_digits_cross_sources() -> None:
    from mmbench.data.digits import load_digits_cross

    data = load_digits_cross()
    assert data.modalities[0].shape == (1, 16, 16) and list(data.groups) == ["optdigits"]
    assert len(data.groups["optdigits"]) == 1797 and len(data.train) == 1200
    reverse = load_digits_cross(train_on="optdigits")
    assert list(reverse.groups) == ["mfeat"] and len(reverse.groups["mfeat"]) == 2000
    for split in (data.train, data.groups["optdigits"]):
        x = split.inputs["img"]
        assert float(x.min()) >= 0 and float(x.max()) <= 1


def test_natural_shift_end_to_end(tmp_path) -> None:
    """Trained on in-distribution mfeat rows, evaluated on ID, each bin and OOD; the OOD rows
    (heavier strokes than anything seen in training) cost accuracy."""
    from conftest import write_suite

    from mmbench.runner import RunOptions, run_suite

    suite = {"name": "nat", "datasets": [{"name": "mfeat", "params": {"ood_attribute": "mor:5"}}],
             "models": ["late_fusion", {"name": "unimodal", "params": {"modality": "pix"}}],
             "recipes": [{"name": "standard", "params": {"epochs": 10}}],
             "perturbations": ["natural_shift"], "metrics": ["accuracy"]}
    result = run_suite(write_suite(tmp_path, suite), RunOptions(out_dir=tmp_path / "o", cache_dir=tmp_path / "c"))
    rows = result.frame.set_index(["model", "target"])["value"]
    for model in ("late_fusion", "unimodal"):
        assert set(rows[model].index) == {"id", "q1", "q2", "q3", "ood"}
        assert rows[(model, "ood")] < rows[(model, "id")]
    assert "natural shift" in result.leaderboard and "worst_group" in result.leaderboard


def test_natural_shift_needs_groups(tmp_path) -> None:
    from conftest import tiny_suite, write_suite

    from mmbench.runner import RunOptions, run_suite

    with pytest.raises(MMBenchError, match="natural_shift needs a dataset with held-out groups"):
        run_suite(write_suite(tmp_path, tiny_suite(perturbations=["natural_shift"])),
                  RunOptions(out_dir=tmp_path / "o", cache_dir=tmp_path / "c"))


def test_shift_suite_with_baseline(tmp_path) -> None:
    """mCE against a named baseline: the baseline's own CE is 1; all models see the same noise."""
    from conftest import tiny_suite, write_suite

    from mmbench.config.datasets import load_datasets
    from mmbench.config.suite import load_suite
    from mmbench.plan.cells import make_plan
    from mmbench.runner import RunOptions, run_suite

    suite = tiny_suite(baseline="late_fusion", perturbations=["clean", {
        "name": "shift", "params": {"corruptions": ["gaussian_noise", "token_typo"], "severities": [1, 3, 5]}}])
    path = write_suite(tmp_path, suite)
    result = run_suite(path, RunOptions(out_dir=tmp_path / "o", cache_dir=tmp_path / "c"))
    errors = pd.read_csv(tmp_path / "o" / "corruptions.csv")
    assert (errors.loc[errors["model"] == "late_fusion", "ce"] == 1.0).all()
    assert errors.loc[errors["model"] == "seed_concat", "ce"].notna().all()
    assert "mCE (vs late_fusion)" in result.leaderboard
    # regressions: the heading names the severities that ran (not "1-5"); the severity board's
    # mean leaves out severity 0 (the clean reference it shows)
    assert "corruptions (severities 1, 3, 5, all conditions)" in result.leaderboard
    heading = "accuracy vs corruption severity (mean over conditions; 0 is clean, not in the mean)"
    board = result.boards[f"synthetic: {heading}"]
    header, _, *rows = [line for line in board.splitlines() if line.startswith("|")]
    assert [c.strip() for c in header.split("|")[3:-1]] == ["0", "1", "3", "5", "mean"]
    for row in rows:
        cells = [float(c) for c in row.split("|")[3:-1]]
        assert cells[-1] == pytest.approx(sum(cells[1:4]) / 3, abs=1e-4)
        assert cells[0] == cells[1] or cells[-1] != pytest.approx(sum(cells[:4]) / 4, abs=1e-6)
    assert (tmp_path / "o" / "plots" / "shift_synthetic_mean_all.png").is_file()
    loaded = load_suite(path)
    plan = make_plan(loaded, load_datasets(loaded))
    by_case: dict = {}
    for cell in plan.eval_cells:
        by_case.setdefault(repr(cell.perturbation), set()).add(cell.inputs_key)
    assert all(len(keys) == 1 for keys in by_case.values())  # one noise seed per case, any model


def test_unknown_baseline_is_refused(tmp_path) -> None:
    from conftest import tiny_suite, write_suite

    from mmbench.runner import RunOptions, run_suite

    with pytest.raises(MMBenchError, match="baseline 'late_fushion' is not a model.*did you mean 'late_fusion'"):
        run_suite(write_suite(tmp_path, tiny_suite(baseline="late_fushion")),
                  RunOptions(out_dir=tmp_path / "o", cache_dir=tmp_path / "c"))


def test_perturbations_restricted_to_datasets(tmp_path) -> None:
    from conftest import tiny_suite, write_suite

    from mmbench.config.checks import check_suite
    from mmbench.config.datasets import load_datasets
    from mmbench.config.suite import load_suite
    from mmbench.plan.cells import make_plan

    suite = tiny_suite(models=["late_fusion"])
    first = suite["datasets"][0]
    suite["datasets"].append({**first, "params": {**first["params"], "seed": 2}, "label": "other"})
    suite["perturbations"] = ["clean", {"name": "shift", "datasets": ["other"],
                                        "params": {"corruptions": ["gaussian_noise"], "severities": [1]}}]
    loaded = load_suite(write_suite(tmp_path, suite))
    plan = make_plan(loaded, load_datasets(loaded))
    families = {(c.train.dataset, c.perturbation.family) for c in plan.eval_cells}
    assert families == {("synthetic", "clean"), ("other", "clean"), ("other", "shift")}
    suite["perturbations"][1]["datasets"] = ["othr"]
    bad = load_suite(write_suite(tmp_path, suite))
    with pytest.raises(MMBenchError, match="unknown dataset 'othr'.*did you mean 'other'"):
        check_suite(bad)  # what prepare runs before it loads the data and plans


def test_random_corruptions_are_drawn_several_times_deterministic_ones_once(synth: MultimodalDataset) -> None:
    cases = _shift_cases(synth, corruptions=["gaussian_noise", "contrast"], severities=[0, 2], targets=["img"])
    draws = {(c.name, c.severity): c.draws for c in cases}
    assert draws == {("gaussian_noise", 0.0): 1, ("gaussian_noise", 2.0): 3, ("contrast", 0.0): 1, ("contrast", 2.0): 1}
    assert {c.draws for c in _shift_cases(synth, corruptions=["gaussian_noise"], severities=[1], draws=5)} == {5}
    assert all(c.facts()["draws"] == c.draws for c in cases)
    with pytest.raises(MMBenchError, match="draws must be an integer from 1 to 100"):
        _shift_cases(synth, draws=0)


def test_severity_plots_start_at_the_clean_value_with_whole_ticks(monkeypatch, tmp_path) -> None:
    """Regression: the per-target severity plots lacked the severity-0 (clean) point and showed
    1.5 / 2.5 ticks."""
    from mmbench.families import shift as family
    from mmbench.families.base import Context

    drawn = []
    monkeypatch.setattr(family, "curves", lambda rows, *args, **kw: drawn.append((rows, kw)) or tmp_path)
    frame = _hand_frame().assign(split="test", rows=0)
    family.Shift().plots(Context(frame), tmp_path)
    assert drawn and all(kw["integer_levels"] for _, kw in drawn)
    for rows, _ in drawn:
        levels = sorted(rows["level"].unique())
        assert levels[0] == 0.0 and levels[1:] == [1.0, 2.0]
        zero = rows[rows["level"] == 0.0].set_index("model")["value"]
        assert zero["A"] == 0.9 and zero["B"] == 0.8
