"""Suite YAML: structure validation, includes, registry checks, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import tiny_suite, write_suite

import mmbench
from mmbench.config.checks import check_suite
from mmbench.config.suite import Component, load_suite
from mmbench.errors import MMBenchError


def _load_and_check(tmp_path: Path, data) -> None:
    check_suite(load_suite(write_suite(tmp_path, data)))


def test_minimal_suite_gets_defaults(tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path, {"datasets": ["mfeat"], "models": ["late_fusion"]}, "mini.yaml"))
    assert suite.name == "mini"
    assert suite.recipes == (Component("standard"),)
    assert suite.perturbations == (Component("clean"),)
    assert suite.metrics == ("accuracy", "macro_f1") and suite.seeds == (0,)
    check_suite(suite)


def test_include_merges_and_the_including_file_wins(tmp_path: Path) -> None:
    write_suite(tmp_path, tiny_suite(seeds=[0, 1, 2]), "base.yaml")
    (tmp_path / "sub").mkdir()
    child = write_suite(tmp_path / "sub", {"include": "../base.yaml", "name": "child", "seeds": [7]})
    suite = load_suite(child)
    assert suite.name == "child" and suite.seeds == (7,)
    assert [m.name for m in suite.models] == ["late_fusion", "seed_concat"]


def test_include_cycle_is_reported(tmp_path: Path) -> None:
    write_suite(tmp_path, {"include": "b.yaml"}, "a.yaml")
    write_suite(tmp_path, {"include": "a.yaml"}, "b.yaml")
    with pytest.raises(MMBenchError, match="include cycle"):
        load_suite(tmp_path / "a.yaml")


BAD_SUITES = [
    ({**tiny_suite(), "modles": ["x"]}, r"unknown key 'modles' \(did you mean 'models'\?\)"),
    ({**tiny_suite(), "models": []}, "'models' is missing or empty"),
    ({**tiny_suite(), "seeds": ["a"]}, "'seeds' must be a list of distinct non-negative integers"),
    ({**tiny_suite(), "seeds": [1, 1]}, "distinct"),
    ({**tiny_suite(), "name": 3}, "'name' must be str"),
    ({**tiny_suite(), "models": [{"name": "late_fusion", "prams": {}}]}, r"unknown key 'prams' \(did you mean 'params'\?\)"),
    ({**tiny_suite(), "models": [{"name": "late_fusion", "params": {"dim": "big"}}]}, "parameter 'dim' must be int, got str"),
    ({**tiny_suite(), "models": [{"name": "late_fusion", "params": {"dims": 3}}]}, r"unknown parameter 'dims' \(did you mean 'dim'\?\)"),
    ({**tiny_suite(), "models": ["late_fuson"]}, r"unknown model 'late_fuson' \(did you mean 'late_fusion'\?\)"),
    ({**tiny_suite(), "datasets": ["mfet"]}, r"unknown dataset 'mfet' \(did you mean 'mfeat'\?\)"),
    ({**tiny_suite(), "metrics": ["acuracy"]}, r"unknown metric 'acuracy' \(did you mean 'accuracy'\?\)"),
    ({**tiny_suite(), "recipes": [{"name": "standard", "params": {"lr": -1.0}}]}, "lr > 0"),
    ({**tiny_suite(), "perturbations": ["clen"]}, r"unknown perturbation 'clen' \(did you mean 'clean'\?\)"),
    ({**tiny_suite(), "models": ["late_fusion", "late_fusion"]}, "appears twice; give each a distinct 'label'"),
    ({**tiny_suite(), "eval": {"split": "train"}}, "split 'val' or 'test'"),
    ({**tiny_suite(), "models": [42]}, "must be a name or a mapping"),
]


@pytest.mark.parametrize("data,match", BAD_SUITES)
def test_bad_suites_give_one_line_errors(tmp_path: Path, data, match: str) -> None:
    with pytest.raises(MMBenchError, match=match) as info:
        _load_and_check(tmp_path, data)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text,match", [
    ("models: [late_fusion\ndatasets: [mfeat]\n", "malformed YAML"),
    ("- just\n- a list\n", "must be a YAML mapping"),
    ("datasets: [mfeat]\nmodels: [a]\n\tbad: tab\n", "malformed YAML"),
])
def test_malformed_yaml(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(MMBenchError, match=match) as info:
        load_suite(path)
    assert "\n" not in str(info.value)


def test_missing_suite_file(tmp_path: Path) -> None:
    with pytest.raises(MMBenchError, match="suite file not found"):
        load_suite(tmp_path / "nope.yaml")


@pytest.mark.parametrize("path", sorted(Path(__file__).parents[1].glob("suites/*.yaml")))
def test_shipped_suites_validate(path: Path) -> None:
    check_suite(load_suite(path))


def test_a_model_restricted_to_some_datasets_is_planned_only_there(tmp_path: Path) -> None:
    base = tiny_suite(["late_fusion", {"name": "unimodal", "datasets": ["second"]}])
    first = base["datasets"][0]
    base["datasets"] = [first, {**first, "label": "second", "params": {**first["params"], "seed": 2}}]
    checked = mmbench.validate(write_suite(tmp_path, base))
    assert checked.models == 1 + (1 + 4)  # late_fusion on both; unimodal (4 modalities) on one
    with pytest.raises(MMBenchError, match="model 'unimodal': unknown dataset 'secnd' in 'datasets'.*'second'"):
        _load_and_check(tmp_path, {**base, "models": [{"name": "unimodal", "datasets": ["secnd"]}]})
    with pytest.raises(MMBenchError, match="'models' is a list of model names, allowed on perturbations only"):
        load_suite(write_suite(tmp_path, {**base, "models": [{"name": "unimodal", "models": ["x"]}]}))
