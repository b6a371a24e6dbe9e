"""The ``arrays`` dataset (the user's own .npz / .npy files) and ``make_dataset``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

import mmbench
from mmbench.config.params import DATASET_HARNESS_ARGS, param_defaults
from mmbench.data.arrays import load_arrays, make_dataset, write_fixture
from mmbench.data.base import ModalityKind
from mmbench.errors import MMBenchError
from mmbench.registry import DATASETS

KINDS = {"img": "image", "aud": "sequence", "tab": "vector", "txt": "tokens"}


def generate(n_per_class: int = 20, seed: int = 0) -> dict[str, np.ndarray]:
    """Three classes, one modality of each kind, in raw (unscaled) units."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(3), n_per_class))
    n = len(labels)
    img = rng.normal(100.0, 20.0, (n, 2, 4, 4))
    img[:, 1] = img[:, 1] * 0.01 - 5.0  # a second channel on a very different scale
    img[:, 0, 0, 0] += 80.0 * labels
    aud = np.sin(np.linspace(0, 6, 8) * (labels[:, None, None] + 1)) + rng.normal(0, 0.1, (n, 3, 8))
    tab = rng.normal(0, 1, (n, 5)) * np.array([1, 10, 100, 0.1, 5]) + labels[:, None] * 3.0
    txt = rng.integers(0, 8, (n, 6)) + 8 * (rng.random((n, 6)) < 0.5) * labels[:, None] // 2
    return {"img": img.astype(np.float32), "aud": aud.astype(np.float32), "tab": tab, "txt": txt,
            "labels": labels}


def build(data: dict[str, Any] | None = None, **kwargs: Any) -> mmbench.data.MultimodalDataset:
    data = generate() if data is None else data
    return make_dataset({k: data[k] for k in KINDS}, KINDS, data["labels"], **kwargs)


def one_line_error(match: str, call, *args: Any, **kwargs: Any) -> str:
    """Run ``call``; it must raise a one-line MMBenchError matching ``match``."""
    with pytest.raises(MMBenchError) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message, message
    assert re.search(match, message), message
    return message


# -- loading ----------------------------------------------------------------------------------

def test_the_fixture_loads_with_separable_classes(tmp_path: Path) -> None:
    params = write_fixture(tmp_path)
    data = mmbench.load_dataset("arrays", **params)
    assert [(m.name, m.kind, m.shape) for m in data.modalities] == [
        ("image", ModalityKind.IMAGE, (1, 8, 8)), ("signal", ModalityKind.SEQUENCE, (2, 16)),
        ("features", ModalityKind.VECTOR, (12,)), ("words", ModalityKind.TOKENS, (10,))]
    assert (len(data.train), len(data.val), len(data.test), data.n_classes) == (54, 18, 18, 3)
    assert data.spec("words").vocab_size == 20 and data.train.inputs["words"].dtype == torch.int64
    assert data.train.inputs["image"].dtype == torch.float32 and data.train.labels.dtype == torch.int64
    x, y = data.train.inputs["features"].numpy(), data.train.labels.numpy()
    probe = LogisticRegression(max_iter=2000).fit(x, y)
    assert probe.score(data.test.inputs["features"].numpy(), data.test.labels.numpy()) > 0.8


def test_a_folder_of_npy_files_equals_the_npz(tmp_path: Path) -> None:
    data = generate()
    np.savez(tmp_path / "all.npz", **data)
    (tmp_path / "folder").mkdir()
    for name, array in data.items():
        np.save(tmp_path / "folder" / f"{name}.npy", array)
    from_npz = load_arrays(str(tmp_path / "all.npz"), KINDS)
    from_folder = load_arrays(str(tmp_path / "folder"), KINDS)
    assert from_npz.fingerprint() == from_folder.fingerprint() == build(data).fingerprint()


def test_only_the_named_arrays_are_read(tmp_path: Path) -> None:
    data = generate()
    np.save(tmp_path / "unrelated.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    for name, array in data.items():
        np.save(tmp_path / f"{name}.npy", array)
    assert len(load_arrays(str(tmp_path), {"tab": "vector"}).test) == 12


def test_shape_shorthands_add_one_channel() -> None:
    data = generate()
    flat = {"img": data["img"][:, 0], "aud": data["aud"][:, 0]}
    ds = make_dataset(flat, {"img": "image", "aud": "sequence"}, data["labels"])
    assert ds.spec("img").shape == (1, 4, 4) and ds.spec("aud").shape == (1, 8)
    assert ds.train.inputs["img"].shape[1:] == (1, 4, 4)


# -- splits -----------------------------------------------------------------------------------

def _row_ids(n: int, labels: np.ndarray, **kwargs: Any) -> tuple[mmbench.data.MultimodalDataset, dict]:
    """A dataset whose only feature is the row index, so that each split's rows can be read off."""
    ds = make_dataset({"row": np.arange(n, dtype=np.float64)[:, None]}, {"row": "vector"}, labels,
                      scale="none", **kwargs)
    rows = {p: sorted(int(v) for v in s.inputs["row"][:, 0]) for p, s in [*ds.splits()]}
    return ds, rows


def test_a_given_split_decides_the_rows() -> None:
    labels = np.tile([0, 1], 30)
    split = np.array(["train"] * 36 + ["val"] * 12 + ["test"] * 12)
    _, rows = _row_ids(60, labels, split=split)
    assert rows["train"] == list(range(36)) and rows["val"] == list(range(36, 48))
    assert rows["test"] == list(range(48, 60))
    _, as_bytes = _row_ids(60, labels, split=split.astype("S"))
    assert as_bytes == rows


def test_without_val_rows_validation_is_carved_out_of_train_seeded() -> None:
    labels = np.tile([0, 1, 2], 20)
    split = np.array(["train"] * 48 + ["test"] * 12)
    ds, rows = _row_ids(60, labels, split=split, val_fraction=0.25, split_seed=1)
    assert rows["test"] == list(range(48, 60))
    assert len(rows["val"]) == 12 and len(rows["train"]) == 36
    assert sorted(rows["train"] + rows["val"]) == list(range(48))
    assert torch.bincount(ds.val.labels).tolist() == [4, 4, 4]  # stratified
    assert _row_ids(60, labels, split=split, val_fraction=0.25, split_seed=1)[1] == rows
    assert _row_ids(60, labels, split=split, val_fraction=0.25, split_seed=2)[1]["val"] != rows["val"]


def test_the_default_split_is_stratified_and_seeded() -> None:
    data = generate()
    a, b, c = build(data, split_seed=3), build(data, split_seed=3), build(data, split_seed=4)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    assert (len(a.train), len(a.val), len(a.test)) == (36, 12, 12)
    assert torch.bincount(a.test.labels).tolist() == [4, 4, 4]
    assert build(data, val_fraction=0.1, test_fraction=0.5).test.labels.numel() == 30


# -- scaling ----------------------------------------------------------------------------------

def test_minmax_is_fitted_on_training_rows_only() -> None:
    data = generate()
    ds = build(data)
    tab = ds.train.inputs["tab"]
    assert torch.equal(tab.min(0).values, torch.zeros(5)) and torch.equal(tab.max(0).values, torch.ones(5))
    img = ds.train.inputs["img"]  # per channel: both channels span [0, 1] despite their scales
    assert img.amin((0, 2, 3)).tolist() == [0.0, 0.0] and img.amax((0, 2, 3)).tolist() == [1.0, 1.0]
    aud = ds.train.inputs["aud"]
    assert aud.amin((0, 2)).tolist() == [0.0] * 3 and aud.amax((0, 2)).tolist() == [1.0] * 3
    assert all((s.lo, s.hi) == (0.0, 1.0) for s in ds.modalities if s.is_continuous)
    # push one test row far outside the training range: it is clipped, the training rows stay put
    test_row = int(_default_split(data).test[0])
    shifted = {**data, "tab": data["tab"].copy()}
    shifted["tab"][test_row] = [1e6, -1e6, 1e6, -1e6, 1e6]
    moved = build(shifted)
    assert torch.equal(moved.train.inputs["tab"], tab)
    assert torch.equal(moved.val.inputs["tab"], ds.val.inputs["tab"])
    assert any(row.tolist() == [1.0, 0.0, 1.0, 0.0, 1.0] for row in moved.test.inputs["tab"])
    assert float(moved.test.inputs["tab"].max()) <= 1.0 and float(moved.test.inputs["tab"].min()) >= 0.0


def test_clip_false_keeps_values_outside_the_training_range_within_wider_bounds() -> None:
    data = generate()
    groups = np.array(["a"] * 48 + ["b"] * 12)
    data["tab"][48:] += 500.0  # group b far outside the training range
    clipped, kept = build(data, groups=groups), build(data, groups=groups, clip=False)
    assert torch.equal(clipped.train.inputs["tab"], kept.train.inputs["tab"])
    assert float(clipped.groups["b"].inputs["tab"].max()) == 1.0 < float(kept.groups["b"].inputs["tab"].max())
    spec = kept.spec("tab")
    everything = torch.cat([s.inputs["tab"] for _, s in kept.splits()])
    assert (spec.lo, spec.hi) == (min(0.0, float(everything.min())), max(1.0, float(everything.max())))
    assert spec.hi > 1.0 and (clipped.spec("tab").lo, clipped.spec("tab").hi) == (0.0, 1.0)
    assert kept.spec("txt") == clipped.spec("txt")  # token ids are never scaled
    note = clipped.notes[-1]
    assert re.fullmatch(r"values outside the training range, clipped to \[0, 1\] \(clip: true\): test: img .*%, "
                        r"aud .*%, tab .*%; group 'b': img .*%, aud .*%, tab 100.0%", note), note
    assert kept.notes[-1].startswith("values outside the training range, kept (clip: false): test: img")
    assert f"tab [{spec.lo:.3g}, {spec.hi:.3g}]" in kept.notes[-1]
    assert not build(data, groups=groups, scale="none").notes


def _default_split(data: dict[str, np.ndarray]):
    from mmbench.data.splits import stratified_split

    return stratified_split(data["labels"], 0.2, 0.2, 0)


def test_scale_none_keeps_values_with_declared_or_derived_bounds() -> None:
    data = generate()
    groups = np.array(["a"] * 50 + ["b"] * 10)
    data["tab"][55, 1] = 9999.0  # the largest value sits in the held-out group
    ds = build(data, scale="none", bounds={"img": [-10.0, 300.0]}, groups=groups)
    assert (ds.spec("img").lo, ds.spec("img").hi) == (-10.0, 300.0)
    tab = ds.spec("tab")
    assert tab.hi == 9999.0 and tab.lo == float(data["tab"].astype(np.float32).min())
    assert float(ds.groups["b"].inputs["tab"].max()) == 9999.0
    all_aud = torch.cat([s.inputs["aud"] for _, s in ds.splits()])
    assert float(all_aud.min()) == ds.spec("aud").lo and float(all_aud.max()) == ds.spec("aud").hi
    original = {float(v) for v in data["tab"][:, 0].astype(np.float32)}
    assert {float(v) for v in ds.train.inputs["tab"][:, 0]} <= original  # unchanged values
    constant = make_dataset({"c": np.full((60, 3), 7.0)}, {"c": "vector"}, data["labels"], scale="none")
    assert (constant.spec("c").lo, constant.spec("c").hi) == (7.0, 8.0)
    one_line_error(r"array 'img' has \d+ values outside its bounds \[0.0, 1.0\]", build, data, scale="none",
                   bounds={"img": [0, 1]})
    one_line_error(r"bounds of 'img' must be \[lo, hi\]", build, data, scale="none", bounds={"img": [1, 0]})
    one_line_error(r"bounds apply only with scale 'none'", build, data, bounds={"img": [0, 300]})
    one_line_error(r"bounds names 'txt', which is not a continuous modality", build, data, scale="none",
                   bounds={"txt": [0, 9]})


# -- groups and tokens ------------------------------------------------------------------------

def test_groups_become_held_out_evaluation_groups() -> None:
    data = generate()
    sites = np.array([3] * 40 + [7] * 12 + [11] * 8)
    ds = build(data, groups=sites)
    assert sorted(ds.groups) == ["11", "7"] and len(ds.groups["7"]) == 12 and len(ds.groups["11"]) == 8
    assert len(ds.train) + len(ds.val) + len(ds.test) == 40
    assert torch.equal(ds.groups["11"].labels, torch.from_numpy(data["labels"][52:]))
    chosen = build(data, groups=sites, in_distribution=7)
    assert sorted(chosen.groups) == ["11", "3"] and len(chosen.test) + len(chosen.train) + len(chosen.val) == 12
    assert sorted(build(data, groups=sites.astype(str), in_distribution="7").groups) == ["11", "3"]
    tie = build(data, groups=np.array(["b"] * 30 + ["a"] * 30))  # a tie: the smallest value is in-distribution
    assert list(tie.groups) == ["b"]
    split = np.array((["train"] * 3 + ["val", "test"]) * 12)
    with_split = build(data, groups=sites, split=split)
    assert len(with_split.train) + len(with_split.val) + len(with_split.test) == 40
    assert len(with_split.groups["7"]) == 12
    one_line_error(r"'id', a reserved group name", build, data, groups=np.array(["site"] * 40 + ["id"] * 20))
    one_line_error(r"in_distribution 'sitte' is not a value of groups \(did you mean 'site'\?\)", build, data,
                   groups=np.array(["site"] * 40 + ["other"] * 20), in_distribution="sitte")


def test_token_vocabulary_from_the_data_or_given() -> None:
    data = generate()
    ds = build(data)
    assert ds.spec("txt").vocab_size == int(data["txt"].max()) + 1
    all_ids = torch.cat([s.inputs["txt"] for _, s in ds.splits()])
    assert torch.equal(all_ids.flatten().sort().values, torch.from_numpy(np.sort(data["txt"].ravel())))  # unscaled
    assert build(data, vocab_sizes={"txt": 50}).spec("txt").vocab_size == 50
    as_floats = build({**data, "txt": data["txt"].astype(np.float64)})
    assert as_floats.fingerprint() == ds.fingerprint()
    one_line_error(r"array 'txt' holds token id \d+ \(in a (train|val|test) row\) but its vocabulary size is 5; "
                   r"raise vocab_sizes\['txt'\] above \d+ or map the ids below it", build, data, vocab_sizes={"txt": 5})
    in_group = {**data, "txt": np.where(np.arange(60)[:, None] == 55, 49, data["txt"])}
    one_line_error(r"array 'txt' holds token id 49 \(in a row of group 'b'\) but its vocabulary size is 20", build,
                   in_group, vocab_sizes={"txt": 20}, groups=np.array(["a"] * 50 + ["b"] * 10))
    one_line_error(r"array 'txt' holds negative token ids", build, {**data, "txt": data["txt"] - 1})
    one_line_error(r"array 'txt' holds non-integral values", build, {**data, "txt": data["txt"] + 0.5})


def test_make_dataset_accepts_torch_tensors() -> None:
    data = generate()
    tensors = {k: torch.from_numpy(v) for k, v in data.items()}
    assert build(tensors).fingerprint() == build(data).fingerprint()
    torch_split = build(tensors, groups=torch.from_numpy(np.repeat([0, 1], 30)))
    assert list(torch_split.groups) == ["1"]


# -- errors -----------------------------------------------------------------------------------

class _Tripwire:
    """Unpickling this creates the marker file: proof that an object array was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_object_arrays_are_never_unpickled(tmp_path: Path) -> None:
    data = generate()
    marker = tmp_path / "unpickled"
    trap = np.array([_Tripwire(marker)] * 60, dtype=object)
    np.savez(tmp_path / "data.npz", **{**data, "labels": trap})  # np.savez pickles object arrays
    one_line_error(r"array 'labels' in .*data.npz holds Python objects, which are never unpickled",
                   load_arrays, str(tmp_path / "data.npz"), KINDS)
    (tmp_path / "folder").mkdir()
    for name, array in data.items():
        np.save(tmp_path / "folder" / f"{name}.npy", array)
    np.save(tmp_path / "folder" / "tab.npy", trap, allow_pickle=True)
    one_line_error(r"array 'tab' in .*tab.npy holds Python objects", load_arrays, str(tmp_path / "folder"), KINDS)
    assert not marker.exists()
    one_line_error(r"array 'tab' holds Python objects", build, {**data, "tab": np.array([None] * 60)})


def test_an_object_array_of_strings_gets_the_fixed_width_fix(tmp_path: Path) -> None:
    data = generate()
    fold = np.array(["train", "train", "val", "test"] * 15, dtype=object)  # as pandas' .values gives it
    np.savez(tmp_path / "d.npz", **data, fold=fold)
    one_line_error(r"array 'fold' in .*d.npz holds Python objects, which are never unpickled; save strings as "
                   r"fixed-width strings \(np.asarray\(x, dtype=str\)\)", load_arrays, str(tmp_path / "d.npz"),
                   KINDS, split="fold")
    np.savez(tmp_path / "d.npz", **data, fold=np.asarray(fold, dtype=str))  # the fix
    assert len(load_arrays(str(tmp_path / "d.npz"), KINDS, split="fold").test) == 15


def test_file_errors_are_one_line(tmp_path: Path) -> None:
    data = generate()
    np.savez(tmp_path / "data.npz", **data)
    one_line_error(r"no array 'lables' in .*data.npz \(did you mean 'labels'\?\); it holds: .*aud",
                   load_arrays, str(tmp_path / "data.npz"), KINDS, label="lables")
    one_line_error(r"no array 'audio' in .*\(did you mean 'aud'\?\)", load_arrays,
                   str(tmp_path / "data.npz"), {"audio": "sequence"})
    (tmp_path / "bad.npz").write_bytes(b"not a zip file at all")
    one_line_error(r"bad.npz is neither an .npz file", load_arrays, str(tmp_path / "bad.npz"), KINDS)
    blob = (tmp_path / "data.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(blob[:len(blob) // 2] + blob[-200:])
    with pytest.raises(MMBenchError) as info:
        load_arrays(str(tmp_path / "cut.npz"), KINDS)
    assert "\n" not in str(info.value) and "cut.npz" in str(info.value)
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "tab.npy").write_bytes(b"garbage")
    np.save(tmp_path / "folder" / "labels.npy", data["labels"])
    one_line_error(r"tab.npy is not a .npy file", load_arrays, str(tmp_path / "folder"), {"tab": "vector"})
    one_line_error(r"modalities must be a non-empty mapping", load_arrays, str(tmp_path / "data.npz"), {})


@pytest.mark.parametrize("change,kwargs,match", [
    ({"img": lambda d: d["img"].reshape(60, -1)}, {}, r"array 'img' has shape \(60, 32\) but kind image needs "
     r"\[N, C, H, W\] \(or \[N, H, W\]\); reshape it or choose another kind"),
    ({"tab": lambda d: d["tab"][:, :, None]}, {},
     r"array 'tab' has shape \(60, 5, 1\) but kind vector needs \[N, D\]"),
    ({"labels": lambda d: d["labels"] + 0.5}, {}, r"labels holds non-integral values \(e.g. \d.5\)"),
    ({"labels": lambda d: d["labels"].astype(np.float64)}, {},
     r"labels holds floats \(dtype float64, whole numbers\); class labels must be integers: convert them with "
     r"y.astype\(int\)$"),
    ({"labels": lambda d: d["labels"] - 1}, {}, r"labels holds negative values \(smallest -1\)"),
    ({"labels": lambda d: d["labels"].astype(str)}, {}, r"labels has dtype <U21; expected integer class labels"),
    ({"labels": lambda d: d["labels"][:, None]}, {}, r"labels has shape \(60, 1\); expected integer class labels"),
    ({"labels": lambda d: np.zeros(60, int)}, {}, r"labels holds 1 distinct class\(es\)"),
    ({"tab": lambda d: np.where(np.eye(60, 5) > 0, np.nan, d["tab"])}, {}, r"array 'tab' holds 5 NaN/Inf values"),
    ({"aud": lambda d: np.full_like(d["aud"], np.inf)}, {}, r"array 'aud' holds 1440 NaN/Inf values"),
    ({"aud": lambda d: d["aud"][:50]}, {}, r"array 'aud' has 50 rows but the labels have 60"),
    ({}, {"split": np.array(["train", "training", "test"] * 20)},
     r"split holds 'training' \(did you mean 'train'\?\); each value must be 'train', 'val' or 'test'"),
    ({}, {"split": np.array(["train"] * 59)}, r"split has 59 rows but the labels have 60"),
    ({}, {"split": np.array(["train"] * 60)}, r"no test rows in the split array"),
    ({}, {"scale": "minmaxx"}, r"scale must be 'minmax' or 'none', got 'minmaxx' \(did you mean 'minmax'\?\)"),
    ({}, {"val_fraction": 0.5, "test_fraction": 0.6},
     r"their sum below 1; got val_fraction=0.5, test_fraction=0.6"),
    ({}, {"in_distribution": 1}, r"in_distribution needs a groups array"),
    ({}, {"groups": np.array(["site"] * 40 + ["test"] * 20)},
     r"groups holds the value 'test', the name of a split; rename that group or make it the in_distribution group"),
    ({}, {"clip": "no"}, r"clip must be true or false, got 'no'"),
    ({}, {"groups": np.linspace(0, 1, 60)}, r"groups has dtype float64; expected integers or strings"),
])
def test_bad_arrays_give_one_line_errors(change, kwargs, match) -> None:
    data = generate()
    data.update({k: f(data) for k, f in change.items()})
    message = one_line_error(match, build, data, **kwargs)
    assert message.startswith("arrays: ")


def test_unknown_kind_and_missing_array() -> None:
    data = generate()
    one_line_error(r"modality 'img' has unknown kind 'imag' \(did you mean 'image'\?\); kinds: image, sequence",
                   make_dataset, {"img": data["img"]}, {"img": "imag"}, data["labels"])
    one_line_error(r"^mine: no array for modality 'im' \(did you mean 'img'\?\)", make_dataset,
                   {"img": data["img"]}, {"im": "image"}, data["labels"], name="mine")


def test_loader_errors_name_the_file_arrays(tmp_path: Path) -> None:
    data = generate()
    np.savez(tmp_path / "d.npz", **data, y=data["labels"] * 1.5, fold=np.array(["train", "dev", "test"] * 20))
    one_line_error(r"array 'y' holds non-integral values", load_arrays, str(tmp_path / "d.npz"), KINDS, label="y")
    one_line_error(r"array 'fold' holds 'dev'", load_arrays, str(tmp_path / "d.npz"), KINDS, split="fold")


# -- locating the file ------------------------------------------------------------------------

def test_relative_paths_resolve_against_data_root_then_suite_dir_then_cwd(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("MMBENCH_DATA", raising=False)
    roots = {}
    for i, where in enumerate(("root", "suite", "cwd")):
        roots[where] = tmp_path / where
        roots[where].mkdir()
        np.savez(roots[where] / "d.npz", **generate(n_per_class=10 * (i + 1)))
    monkeypatch.chdir(roots["cwd"])

    def rows(**kwargs: Any) -> int:
        ds = load_arrays("d.npz", {"tab": "vector"}, **kwargs)
        return len(ds.train) + len(ds.val) + len(ds.test)

    assert rows(data_root=str(roots["root"]), suite_dir=str(roots["suite"])) == 30
    assert rows(suite_dir=str(roots["suite"])) == 60
    assert rows() == 90
    monkeypatch.setenv("MMBENCH_DATA", str(roots["root"]))
    assert rows(suite_dir=str(roots["suite"])) == 30
    (roots["root"] / "d.npz").unlink()
    assert rows(suite_dir=str(roots["suite"])) == 60  # falls through to the next candidate
    assert load_arrays(str(roots["cwd"] / "d.npz"), {"tab": "vector"}, data_root=str(roots["suite"])).test
    message = one_line_error(r"arrays: nothing.npz not found \(tried .*root.nothing.npz, .*suite.nothing.npz, "
                             r".*cwd.nothing.npz\); .*--data-dir ROOT or \$MMBENCH_DATA", load_arrays, "nothing.npz",
                             {"tab": "vector"}, suite_dir=str(roots["suite"]))
    assert "relative to the suite file" in message


def test_registration_and_harness_arguments() -> None:
    assert "arrays" in DATASETS and DATASETS.get("arrays") is load_arrays
    assert "suite_dir" in DATASET_HARNESS_ARGS and "data_root" in DATASET_HARNESS_ARGS
    suite_params = param_defaults(load_arrays, DATASET_HARNESS_ARGS)
    assert "suite_dir" not in suite_params and "data_root" not in suite_params
    assert suite_params["path"] is ... and suite_params["scale"] == "minmax"
