"""Bad user data refused (or warned about) at load time in one line naming the real problem
(issue 22 point 6): labels that are not class ids, values float32 cannot hold or compute with,
precision float32 loses, and splits that no recipe can train on. The checks live in the loader
(``make_dataset``) and the pre-training probe, so ``mmbench validate`` and ``mmbench run`` share
them."""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import run_cli, write_suite

import mmbench
from mmbench.cli import main
from mmbench.data.arrays import MAX_CLASSES, load_arrays, make_dataset
from mmbench.data.base import SAFE_MAGNITUDE, ModalityKind, ModalitySpec, MultimodalDataset, Split
from mmbench.errors import MMBenchError
from mmbench.execution.probe import check_rows

KINDS = {"a": "vector", "b": "sequence"}
N = 300


def generate(seed: int = 0) -> dict[str, np.ndarray]:
    """Two modalities (a vector [N, 4], a one-channel sequence [N, 1, 6]) and 5 classes."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 5, N)
    a = rng.normal(size=(N, 4)) + labels[:, None]
    b = rng.normal(size=(N, 1, 6)) + labels[:, None, None]
    return {"a": a, "b": b, "labels": labels}


def build(change: dict[str, Any] | None = None, **kwargs: Any) -> MultimodalDataset:
    data = {**generate(), **(change or {})}
    return make_dataset({k: data[k] for k in KINDS}, KINDS, data["labels"], **kwargs)


def refused(match: str, call, *args: Any, **kwargs: Any) -> str:
    """``call`` raises a one-line MMBenchError matching ``match``, and numpy warns nothing."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(MMBenchError) as info:
            call(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message and re.search(match, message), message
    return message


def at(row: int, value: Any, array: np.ndarray) -> np.ndarray:
    """``array`` with the first value of ``row`` set to ``value`` (in a dtype that holds it)."""
    out = array.astype(np.result_type(array, np.asarray(value)))
    out.reshape(len(out), -1)[row, 0] = value
    return out


def save(folder: Path, **arrays: np.ndarray) -> str:
    path = folder / "bad.npz"
    np.savez(path, **{**generate(), **arrays})
    return str(path)


# -- 1, 2: labels that are not class ids ------------------------------------------------------

def test_uint64_labels_beyond_int64_are_named_so_not_negative(tmp_path: Path) -> None:
    labels = at(3, np.uint64(2**63 + 5), generate()["labels"].astype(np.uint64))
    message = refused(r"^arrays: array 'target' holds 9223372036854775813 \(row 3\), beyond the int64 range; it is "
                      r"not a class id; labels must be class ids 0\.\.C-1: remap them with "
                      r"np\.unique\(y, return_inverse=True\)\[1\]$",
                      load_arrays, save(tmp_path, target=labels), KINDS, label="target")
    assert "negative" not in message


def test_a_label_implying_absurdly_many_classes_is_refused_naming_the_array(tmp_path: Path) -> None:
    labels = at(7, 10**9, generate()["labels"])
    refused(r"^arrays: array 'y' holds the label 1000000000 \(row 7\), which would mean 1000000001 classes \(the "
            rf"limit of {MAX_CLASSES}\) for 300 rows with 6 distinct labels; labels must be class ids 0\.\.C-1",
            load_arrays, save(tmp_path, y=labels), KINDS, label="y")
    refused(r"labels holds the label 300 \(row 0\), which would mean 301 classes \(more classes than rows\)",
            build, {"labels": at(0, 300, generate()["labels"])})
    gaps = build({"labels": at(0, 9, generate()["labels"])})  # a few unused ids are still class ids
    assert gaps.n_classes == 10


# -- 3, 4: values float32 cannot hold or compute with ------------------------------------------

def test_float64_values_beyond_float32_are_one_line_naming_modality_and_row() -> None:
    message = refused(r"^arrays: array 'a' holds 1 value\(s\) beyond float32's range \(\|x\| > 3\.4e38; largest "
                      r"1e\+300, first at row 17\): they would become inf in float32",
                      build, {"a": at(17, 1e300, generate()["a"])})
    assert "NaN" not in message


def test_values_beyond_the_safe_magnitude_are_refused_with_scale_none() -> None:
    huge = np.sign(generate()["a"]) * 3e38
    refused(r"^arrays: array 'a' holds values up to 3e\+38 in magnitude \(row 0\) with scale: none; beyond 1e\+09, "
            r"float32 arithmetic on them .* overflows to inf: use scale: minmax or rescale the array$",
            build, {"a": huge}, scale="none")
    refused(r"array 'b' holds values up to 2e\+09", build, {"b": at(5, 2e9, generate()["b"])}, scale="none")
    refused(r"^arrays: bounds of 'a' reach 1e\+38 in magnitude", build, scale="none", bounds={"a": [-1e38, 1e38]})
    scaled = build({"a": huge})  # min-max scaling makes the same values safe
    assert float(scaled.train.inputs["a"].abs().max()) == 1.0
    outlier = {"a": at(0, 1e12, generate()["a"])}
    fold = np.array(["test"] + ["train", "val", "test"] * 99 + ["val"] * 2)  # the outlier row 0 is a test row
    assert build(outlier, split=fold).spec("a").hi == 1.0  # clipped
    refused(r"array 'a' reaches \d\.\d+e\+11 after min-max scaling \(row 0, .*\); beyond 1e\+09, .*: set clip: "
            r"true or drop that row$", build, outlier, clip=False, split=fold)


def test_large_unscaled_values_are_accepted_with_a_warning(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="mmbench.data.arrays"):
        data = build({"a": generate()["a"] * 1e8}, scale="none")
    assert data.spec("a").hi < SAFE_MAGNITUDE
    [note] = [n for n in data.notes if "unscaled" in n]
    assert re.fullmatch(r"array 'a' reaches \d\.\d+e\+08 unscaled \(scale: none\): .* gradient attacks may find no "
                        r"gradient \(robust = clean\) .*; use scale: minmax unless the raw units matter", note), note
    assert note in caplog.text
    assert not [n for n in build({"a": generate()["a"] * 100}, scale="none").notes if "unscaled" in n]


def test_a_plugin_dataset_with_huge_bounds_is_refused_by_the_probe_checks() -> None:
    spec = ModalitySpec("x", ModalityKind.VECTOR, (2,), -3e38, 3e38)
    part = Split({"x": torch.zeros(4, 2)}, torch.tensor([0, 1, 0, 1]))
    data = MultimodalDataset("plug", (spec,), 2, part, part, part)
    refused(r"^dataset 'plug': modality 'x' has bounds \[-3e\+38, 3e\+38\], beyond 1e\+09 in magnitude",
            check_rows, {"plug": data})


# -- 5: precision float32 loses ----------------------------------------------------------------

def test_integer_features_with_a_large_offset_are_min_max_scaled_exactly(caplog) -> None:
    ticks = (generate()["a"] * 1000).astype(np.int64) + 1_700_000_000_000_000_000  # nanosecond timestamps
    with caplog.at_level(logging.WARNING):
        data = build({"a": ticks})
    train_rows = np.isin(np.arange(N), _train_rows(data))
    distinct = len(np.unique(data.train.inputs["a"][:, 0].numpy()))
    assert distinct == len(np.unique(ticks[train_rows, 0])) > 100  # float32 alone keeps 1
    assert "loses precision" not in caplog.text and not [n for n in data.notes if "precision" in n]
    for same in (-ticks, ticks.astype(np.uint64)):
        assert len(np.unique(build({"a": same}).train.inputs["a"][:, 0].numpy())) == distinct


def _train_rows(data: MultimodalDataset) -> np.ndarray:
    """The original row numbers of the training rows (read off a row-index modality)."""
    rows = build({"b": np.arange(N, dtype=np.float64)[:, None]}, scale="none")
    assert torch.equal(rows.train.labels, data.train.labels)
    return rows.train.inputs["b"][:, 0, 0].numpy().astype(int)


def test_precision_lost_without_scaling_is_a_warning_naming_modality_and_fix(caplog) -> None:
    offset = generate()["a"] + 1e8  # float32's spacing at 1e8 is 8: every value of a column merges into a few
    with caplog.at_level(logging.WARNING, logger="mmbench.data.arrays"):
        data = build({"a": offset}, scale="none")
    [note] = [n for n in data.notes if "precision" in n]
    assert re.fullmatch(r"array 'a' loses precision: column \d has \d+ distinct values in the training rows checked "
                        r"\(largest magnitude 1e\+08\) but \d once converted to float32; subtract an offset \(e\.g\. "
                        r"x - x\.min\(\)\) or use scale: minmax", note), note
    assert note in caplog.text
    assert not [n for n in build({"a": offset}).notes if "precision" in n]  # minmax from float64: nothing lost
    ids = np.arange(N)[:, None] * 3 + 2**26  # exact integers above 2**24: float32 keeps only every 8th
    assert [n for n in build({"a": np.repeat(ids, 4, axis=1)}, scale="none").notes if "precision" in n]


def test_a_training_range_too_wide_for_the_differences_is_a_warning() -> None:
    values = np.arange(N, dtype=np.int64)[:, None] + 10**9
    values[::7] = 0  # outliers far below: min-max scaling leaves the rest within float32's last bits
    data = build({"a": np.repeat(values, 4, axis=1)})
    [note] = [n for n in data.notes if "precision" in n]
    assert "once min-max scaled to float32; its training range is too wide" in note, note


def test_ordinary_float64_data_gives_no_precision_warning() -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 20_000)
    data = make_dataset({"a": rng.normal(size=(20_000, 8)), "b": rng.normal(size=(20_000, 2, 16))}, KINDS, labels)
    assert not [n for n in data.notes if "precision" in n]


# -- 6, 7: splits no recipe can train on ------------------------------------------------------

def test_groups_that_leave_one_training_class_are_refused() -> None:
    labels = generate()["labels"]
    sites = np.where(labels == 0, "A", "B")
    refused(r"^arrays: the train split \(in-distribution group 'A'\) holds 1 class \(label 0, \d+ rows\); training "
            r"needs at least 2 classes: choose another in_distribution group", build, groups=sites, in_distribution="A")
    fold = np.where(labels == 2, "train", np.where(np.arange(N) % 2, "val", "test"))
    refused(r"the train split holds 1 class \(label 2, \d+ rows\); training needs at least 2 classes: mark rows of "
            r"other classes 'train' in the split array", build, split=fold)


def test_an_empty_validation_split_is_refused() -> None:
    refused(r"^arrays: the validation split is empty: training selects its model on the validation rows .*; set "
            r"val_fraction above 0$", build, val_fraction=0.0)
    fold = np.where(np.arange(N) % 4 == 0, "test", "train")
    refused(r"the validation split is empty: .*; mark some rows 'val' in the split array or set val_fraction above 0",
            build, split=fold, val_fraction=0.0)
    labels = generate()["labels"]  # group A: 3 rows of each of two classes: 10% of 3 rounds to no row
    small = np.where(np.isin(np.arange(N), [*np.flatnonzero(labels == 0)[:3], *np.flatnonzero(labels == 1)[:3]]),
                     "A", "B")
    refused(r"the validation split is empty \(in-distribution group 'A'\): .*; raise val_fraction \(now 0\.1; it "
            r"rounds to no row per class\) or give more rows", build, groups=small, in_distribution="A",
            val_fraction=0.1)


def test_the_probe_refuses_plugin_datasets_no_recipe_can_train_on() -> None:
    spec = ModalitySpec("x", ModalityKind.VECTOR, (2,))
    rows = Split({"x": torch.zeros(4, 2)}, torch.tensor([0, 1, 0, 1]))
    empty = Split({"x": torch.zeros(0, 2)}, torch.zeros(0, dtype=torch.int64))
    one_class = Split({"x": torch.zeros(4, 2)}, torch.zeros(4, dtype=torch.int64))
    no_val = MultimodalDataset("p", (spec,), 2, rows, empty, rows)
    refused(r"^dataset 'p': the val split is empty, and training and evaluation need val rows; give the dataset val "
            r"rows \(check its val_fraction\)$", check_rows, {"p": no_val})
    refused(r"^dataset 'p': the train split holds 1 class \(4 rows\); training needs at least 2",
            check_rows, {"p": MultimodalDataset("p", (spec,), 2, one_class, rows, rows)})
    check_rows({"p": MultimodalDataset("p", (spec,), 2, rows, rows, rows)})


# -- the shared path: mmbench.run refuses before training, the CLI in one line ------------------

def suite_file(folder: Path, **params: Any) -> Path:
    dataset = {"name": "arrays", "params": {"path": str(folder / "bad.npz"), "modalities": KINDS, **params}}
    return write_suite(folder, {"name": "bad", "datasets": [dataset], "models": ["late_fusion"],
                                "recipes": [{"name": "standard", "params": {"epochs": 1}}],
                                "perturbations": ["clean"], "seeds": [0]})


def test_run_refuses_before_anything_trains(tmp_path: Path) -> None:
    save(tmp_path, labels=at(7, 10**9, generate()["labels"]))
    out = tmp_path / "results"
    refused(r"array 'labels' holds the label 1000000000", mmbench.run, suite_file(tmp_path), out_dir=str(out),
            cache_dir=str(tmp_path / "cache"))
    assert not out.exists() and not (tmp_path / "cache").exists()
    save(tmp_path)
    refused(r"the validation split is empty", mmbench.run, suite_file(tmp_path, val_fraction=0.0), out_dir=str(out))
    assert not out.exists()


def test_validate_in_process_prints_one_line(tmp_path: Path, capsys) -> None:
    save(tmp_path, a=at(17, 1e300, generate()["a"]))
    assert main(["validate", str(suite_file(tmp_path))]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("mmbench: error: arrays: array 'a' holds 1 value(s) beyond float32's range (|x| > 3.4e38; largest "
                   "1e+300, first at row 17): they would become inf in float32, which models compute in; rescale the "
                   "array (e.g. divide it by a constant)"), err


@pytest.mark.parametrize("command,change,params,expected", [
    ("validate", {"labels": lambda d: at(3, np.uint64(2**63 + 5), d["labels"].astype(np.uint64))}, {},
     "holds 9223372036854775813 (row 3), beyond the int64 range"),
    ("run", {"a": lambda d: np.sign(d["a"]) * 3e38}, {"scale": "none"}, "holds values up to 3e+38 in magnitude"),
])
def test_the_cli_exits_2_with_one_line(tmp_path: Path, command, change, params, expected) -> None:
    data = generate()
    save(tmp_path, **{k: f(data) for k, f in change.items()})
    args = [command, str(suite_file(tmp_path, **params))]
    if command == "run":
        args += ["--out", str(tmp_path / "results")]
    done = run_cli(*args)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert len(lines) == 1 and lines[0].startswith("mmbench: error: arrays: array ") and expected in lines[0], lines
