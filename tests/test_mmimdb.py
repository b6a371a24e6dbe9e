"""MM-IMDb from MultiBench's multimodal_imdb.hdf5 (text and image vectors, multilabel genres) on a
small file in exactly that layout, and the affect pickles' ``labels: regression`` (MOSI / MOSEI)."""

from __future__ import annotations

import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import mmbench
from mmbench.data.mmimdb import (FILE, MULTIBENCH_ROWS, MULTIBENCH_SPLIT, fuel_split_array, load_mmimdb,
                                 write_fixture)
from mmbench.errors import MMBenchError
from mmbench.registry import DATASETS


def one_line_error(match: str, call, *args, **kwargs) -> str:
    """The message of the MMBenchError ``call`` raises, checked to be one line matching ``match``."""
    with pytest.raises(MMBenchError, match=match) as info:
        call(*args, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


def raw(path: str, name: str) -> np.ndarray:
    with h5py.File(path, "r") as f:
        return np.asarray(f[name])


def test_the_fixture_loads_as_a_multilabel_dataset(tmp_path: Path) -> None:
    params = DATASETS.entry("mmimdb").meta["fixture"](tmp_path)
    data = mmbench.load_dataset("mmimdb", **params)
    assert data.task == "multilabel" and data.n_classes == 5
    assert [(m.name, m.kind.value, m.shape, m.lo, m.hi) for m in data.modalities] == [
        ("text", "vector", (12,), 0.0, 1.0), ("image", "vector", (20,), 0.0, 1.0)]
    assert (len(data.train), len(data.val), len(data.test)) == (48, 16, 16)
    genres = raw(params["path"], "genres")
    for split, (start, stop) in zip((data.train, data.val, data.test), ((0, 48), (48, 64), (64, 80)), strict=True):
        assert split.labels.dtype == torch.float32 and tuple(split.labels.shape) == (stop - start, 5)
        assert split.labels.numpy().tolist() == genres[start:stop].tolist()  # the rows of the file, in order
        assert all(0.0 <= float(x.min()) and float(x.max()) <= 1.0 for x in split.inputs.values())
    assert "split from the file's split attribute (rows: train 48, val 16, test 16)" in data.notes[0]


def test_scaling_uses_the_training_rows_only(tmp_path: Path) -> None:
    params = write_fixture(tmp_path)
    data = load_mmimdb(**params)
    for modality, name in (("text", "features"), ("image", "vgg_features")):
        x = raw(params["path"], name).astype(np.float64)
        lo, hi = x[:48].min(axis=0), x[:48].max(axis=0)
        expected = np.clip((x[48:64] - lo) / np.where(hi > lo, hi - lo, 1.0), 0, 1)
        assert np.allclose(data.val.inputs[modality].numpy(), expected, atol=1e-5)
        train = data.train.inputs[modality]
        assert float(train.min()) == 0.0 and float(train.max()) == 1.0
    with h5py.File(params["path"], "r+") as f:  # test rows far outside: the training rows do not change
        f["features"][64:] = 1e6
    again = load_mmimdb(**params)
    assert torch.equal(again.train.inputs["text"], data.train.inputs["text"])
    assert float(again.test.inputs["text"].max()) == 1.0


def test_max_rows_keeps_the_first_rows_of_each_split(tmp_path: Path) -> None:
    params = write_fixture(tmp_path)
    data = load_mmimdb(**params, max_rows=10)
    assert (len(data.train), len(data.val), len(data.test)) == (10, 10, 10)
    genres = raw(params["path"], "genres")
    assert data.val.labels.numpy().tolist() == genres[48:58].tolist()
    assert float(data.train.inputs["image"].min()) == 0.0 and float(data.train.inputs["image"].max()) == 1.0
    assert "max_rows keeps the first rows of each split (train 10 of 48, val 10 of 16, test 10 of 16)" in data.notes[1]
    assert len(load_mmimdb(**params, max_rows=1000).train) == 48
    one_line_error("max_rows must be a positive integer or none, got 0", load_mmimdb, **params, max_rows=0)


def test_the_fixture_genres_can_be_learned(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    data = load_mmimdb(**write_fixture(tmp_path))
    features = lambda split: torch.cat([split.inputs["text"], split.inputs["image"]], 1).numpy()  # noqa: E731
    model = OneVsRestClassifier(LogisticRegression(max_iter=1000)).fit(features(data.train), data.train.labels.numpy())
    right = (model.predict(features(data.test)) == data.test.labels.numpy()).mean()
    majority = ((data.train.labels.mean(0) > 0.5).float() == data.test.labels).float().mean().item()
    assert right > majority + 0.1


def test_without_a_split_attribute_multibench_fixed_split(tmp_path: Path) -> None:
    path = tmp_path / FILE
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f["features"] = rng.normal(size=(MULTIBENCH_ROWS, 2)).astype(np.float32)
        f["vgg_features"] = rng.normal(size=(MULTIBENCH_ROWS, 3)).astype(np.float32)
        f["genres"] = rng.integers(0, 2, (MULTIBENCH_ROWS, 4)).astype(np.int32)
    data = load_mmimdb(path=str(path))
    assert (len(data.train), len(data.val), len(data.test)) == (15552, 2608, 7799)
    assert MULTIBENCH_SPLIT["val"] == (15552, 18160) and "MultiBench's fixed split" in data.notes[0]
    with h5py.File(path, "a") as f:  # a split attribute with other ranges is used, and a note says so
        f.attrs["split"] = fuel_split_array({"train": (0, 20000), "val": (20000, 22000), "test": (22000, 25959)},
                                             ["features"])
    data = load_mmimdb(path=str(path))
    assert (len(data.train), len(data.val), len(data.test)) == (20000, 2000, 3959)
    assert "the file's split differs from MultiBench's fixed one" in data.notes[1]
    small = tmp_path / "small"
    small.mkdir()
    params = write_fixture(small)
    with h5py.File(params["path"], "r+") as f:
        del f.attrs["split"]
    one_line_error("has 80 rows and no 'split' attribute; MultiBench's fixed split needs its 25959 rows",
                   load_mmimdb, **params)


def test_a_split_attribute_that_cannot_be_used_is_refused(tmp_path: Path) -> None:
    params = write_fixture(tmp_path)
    for bounds, match in (({"train": (0, 50), "val": (48, 64), "test": (64, 80)}, "lets train and val share rows"),
                          ({"train": (0, 48), "val": (48, 64), "test": (64, 90)}, r"test rows \[64, 90\), outside")):
        with h5py.File(params["path"], "a") as f:
            f.attrs["split"] = fuel_split_array(bounds, ["features", "genres"])
        one_line_error(match, load_mmimdb, **params)
    with h5py.File(params["path"], "a") as f:
        f.attrs["split"] = np.arange(3)
    one_line_error("the 'split' attribute has fields .*expected Fuel's split array", load_mmimdb, **params)


def test_missing_file_and_location_are_one_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("MMBENCH_DATA", raising=False)
    one_line_error("mmimdb: no data location; give data_dir in the suite", load_mmimdb)
    message = one_line_error(f"{FILE} not found; the file comes with MM-IMDb", load_mmimdb, data_root=str(tmp_path))
    assert "lisi1.unal.edu.co/mmimdb/multimodal_imdb.hdf5" in message
    (tmp_path / FILE).write_text("not hdf5")
    one_line_error("cannot read .* as HDF5", load_mmimdb, data_root=str(tmp_path))


def test_a_file_without_the_expected_datasets(tmp_path: Path) -> None:
    path = tmp_path / FILE
    with h5py.File(path, "w") as f:
        f["features"] = np.zeros((4, 3), dtype=np.float32)
        f["genres"] = np.zeros((4, 2), dtype=np.int32)
    one_line_error("has no 'vgg_features' dataset; expected MultiBench's multimodal_imdb.hdf5", load_mmimdb,
                   path=str(path))
    with h5py.File(path, "a") as f:
        f["vgg_features"] = np.zeros((5, 3), dtype=np.float32)
    one_line_error("different row counts .*vgg_features 5", load_mmimdb, path=str(path))


def test_genres_other_than_0_or_1_and_bad_features_are_refused(tmp_path: Path) -> None:
    params = write_fixture(tmp_path)
    with h5py.File(params["path"], "r+") as f:
        f["genres"][50, 2] = 2
    one_line_error(r"genres hold 2 \(row 50, column 2\); each genre must be 0 or 1", load_mmimdb, **params)
    with h5py.File(params["path"], "r+") as f:
        f["genres"][50, 2] = 1
        f["vgg_features"][70, 0] = np.nan
    one_line_error(r"'vgg_features' holds NaN or inf \(row 70\)", load_mmimdb, **params)


def test_without_h5py_the_error_names_the_extra(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "h5py", None)
    one_line_error(r"needs h5py, which is not installed; pip install 'mmbench\[mmimdb\]'", load_mmimdb,
                   path=str(tmp_path / FILE))


def test_affect_regression_labels(tmp_path: Path) -> None:
    params = DATASETS.entry("mosi").meta["fixture"](tmp_path)
    data = mmbench.load_dataset("mosi", **params, labels="regression")
    assert data.task == "regression" and data.n_classes == 1
    for split in (data.train, data.val, data.test):
        assert split.labels.dtype == torch.float32 and split.labels.dim() == 2 and split.labels.shape[1] == 1
        assert -3.0 <= float(split.labels.min()) and float(split.labels.max()) <= 3.0
    binary = mmbench.load_dataset("mosi", **params)
    assert binary.task == "classification" and binary.n_classes == 2
    assert torch.equal(binary.test.labels, (data.test.labels[:, 0] > 0).long())
    one_line_error("labels must be one of binary, 7class, regression", mmbench.load_dataset, "mosi", **params,
                   labels="continuous")
