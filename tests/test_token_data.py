"""Token data with key positions and padding (issue 27, points 3 and 4, data side): ``synthetic``
token modalities whose signal sits in a few key positions and whose rows are padded, ``pad_id``
for the ``arrays`` loader, and the zoo's token encoder pooling over the text only. Without the new
keys every dataset is byte for byte what it was."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ALL_KINDS
from test_arrays import one_line_error
from sklearn.linear_model import LogisticRegression

import mmbench
from mmbench.data.arrays import make_dataset, write_fixture
from mmbench.data.base import ModalityKind, ModalitySpec, MultimodalDataset
from mmbench.data.synthetic import SyntheticModality, make_synthetic
from mmbench.models.encoders import TokenEncoder, build_encoder


def tensors_sha(data: MultimodalDataset) -> str:
    """sha256 of every split's tensors and labels, in order."""
    h = hashlib.sha256()
    for tag, split in data.splits():
        h.update(tag.encode())
        for name in sorted(split.inputs):
            h.update(name.encode())
            h.update(split.inputs[name].contiguous().numpy().tobytes())
        h.update(split.labels.contiguous().numpy().tobytes())
    return h.hexdigest()


# -- synthetic: nothing changes without the new keys ------------------------------------------

#: Recorded from the code before token keys existed (committed results depend on these data).
BEFORE = {
    "default": ({}, "bb88861bb1af7e1757333952926e0be71049a74efd80d9f5b4142be39758e702",
                "e185c6df21d95a8130ce1e0ca6695fa34c2233cf0dd4a87c1e98bf788e21e6fd",
                {"train": "2535e36853e085c6", "val": "28d9efc408b76707", "test": "438a87ef2e7c80af"}),
    "all_kinds_ood": (dict(modalities=ALL_KINDS, n_samples=240, n_classes=3, noise=0.8, seed=3, ood_shift=3.0),
                      "3574bd19e78056fbdd1ff4a50245db9e27c83fc5323e5e905cb79df3c34ad5b8",
                      "ecca2a8c41e23531184dd0ff74697abea6b70ded16e6c647529206afb7d69e10",
                      {"train": "971e5e0f4a039208", "val": "5ad6308e51414408", "test": "08c55816d318fe4d",
                       "ood": "f41030e96ed0e829"}),
    "multilabel": (dict(modalities=ALL_KINDS, n_samples=200, n_classes=3, seed=5, task="multilabel"),
                   "90c8b0c399955b31ad4d1d6778fe82c231682dde53b10d6bce5ba43c15a3f0f8",
                   "771f9df5c3f17706a7c304198b791110e24aca628d273d1832d01f36366e949c",
                   {"train": "2b40dccd24ebcfc9", "val": "8b8d203ae9aa036c", "test": "3d2685bfab006cb6"}),
}


@pytest.mark.parametrize("case", sorted(BEFORE))
def test_synthetic_without_the_new_keys_is_byte_identical(case: str) -> None:
    params, tensors, fingerprint, splits = BEFORE[case]
    data = make_synthetic(**params)
    assert tensors_sha(data) == tensors
    assert data.fingerprint() == fingerprint and data.split_fingerprints() == splits
    assert all(m.pad_id is None for m in data.modalities) and data.notes == ()


def test_arrays_without_pad_id_keep_their_fingerprint(tmp_path: Path) -> None:
    data = mmbench.load_dataset("arrays", **write_fixture(tmp_path))
    assert data.fingerprint() == "f4fc3eaf7b5d2ca175e1d1c747af47f8714eef1ac5ad55bc6ec7f11cdd6d456a"
    assert data.spec("words").pad_id is None


# -- synthetic: key positions -----------------------------------------------------------------

TEXT = {"name": "text", "kind": "tokens", "shape": [16], "vocab_size": 12, "informativeness": 1.0}
OTHERS = [{"name": "image", "kind": "image", "shape": [1, 4, 4]}, {"name": "table", "kind": "vector", "shape": [6]}]


def _accuracy(data: MultimodalDataset, positions: np.ndarray) -> float:
    """Held-out accuracy of a logistic regression on the one-hot ids at ``positions``."""
    def onehot(split):
        ids = split.inputs["text"].numpy()[:, positions]
        return np.eye(12)[ids].reshape(len(ids), -1)
    clf = LogisticRegression(max_iter=2000).fit(onehot(data.train), data.train.labels.numpy())
    return float(clf.score(onehot(data.test), data.test.labels.numpy()))


@pytest.mark.parametrize("padded", [False, True], ids=["unpadded", "padded"])
def test_the_signal_sits_in_the_key_positions(padded: bool) -> None:
    text = {**TEXT, "key_positions": 3, **({"pad_id": 5, "min_length": 8} if padded else {})}
    data = make_synthetic(modalities=[text, *OTHERS], n_samples=1600, n_classes=4, noise=0.8, seed=2,
                          test_fraction=0.4)
    keys = SyntheticModality.parse(text).key_index(2)
    assert len(keys) == 3 and keys.max() < (8 if padded else 16)
    assert ", ".join(map(str, keys)) in data.notes[0]
    others = np.setdiff1d(np.arange(8 if padded else 16), keys)  # padded: where every row has text
    assert _accuracy(data, keys) > 0.7
    assert _accuracy(data, others) < 0.25 + 0.08  # chance: 4 balanced classes


def test_key_positions_change_only_the_other_positions_of_their_modality() -> None:
    """The class-dependent draws and every other modality are those of the same seed without the key."""
    plain = make_synthetic(modalities=[TEXT, *OTHERS], n_samples=200, n_classes=4, seed=7, ood_shift=1.0)
    keyed = make_synthetic(modalities=[{**TEXT, "key_positions": 4}, *OTHERS], n_samples=200, n_classes=4,
                           seed=7, ood_shift=1.0)
    keys = SyntheticModality.parse({**TEXT, "key_positions": 4}).key_index(7)
    for tag, split in plain.splits():
        other = dict(keyed.splits())[tag]
        for name in ("image", "table"):
            assert torch.equal(split.inputs[name], other.inputs[name])
        assert torch.equal(split.inputs["text"][:, keys], other.inputs["text"][:, keys])
        assert not torch.equal(split.inputs["text"], other.inputs["text"])
    assert plain.fingerprint() != keyed.fingerprint()
    assert keyed.fingerprint() == make_synthetic(modalities=[{**TEXT, "key_positions": 4}, *OTHERS], n_samples=200,
                                                 n_classes=4, seed=7, ood_shift=1.0).fingerprint()
    other_seed = SyntheticModality.parse({**TEXT, "key_positions": 4}).key_index(8)
    assert other_seed is not None and SyntheticModality.parse(TEXT).key_index(7) is None


# -- synthetic: padding -----------------------------------------------------------------------

def test_padding_fills_the_positions_after_each_rows_length_only() -> None:
    text = {**TEXT, "shape": [10], "key_positions": 2, "pad_id": 3, "min_length": 4}
    data = make_synthetic(modalities=[text, {"name": "copy", "copy_of": "text"}, *OTHERS], n_samples=400,
                          n_classes=4, seed=1, ood_shift=2.0)
    spec = data.spec("text")
    assert spec.pad_id == 3 and data.spec("copy").pad_id == 3 and data.spec("image").pad_id is None
    lengths = []
    for _, split in data.splits():
        ids = split.inputs["text"]
        mask = spec.attention_mask(ids)
        length = mask.sum(dim=1)
        # a prefix of text, then padding only: the mask is 1 exactly before the row's length
        assert torch.equal(mask, (torch.arange(10)[None, :] < length[:, None]).long())
        assert int(length.min()) >= 4 and int(ids.min()) >= 0 and int(ids.max()) <= 11
        assert torch.equal(split.inputs["copy"], ids)
        lengths.append(length)
    every = torch.cat(lengths)
    assert int(every.min()) == 4 and int(every.max()) == 10  # the whole range occurs
    assert "rows hold 4 to 10 ids, then pad id 3" in data.notes[1]


def test_the_default_minimum_length_is_half_the_sequence() -> None:
    mod = SyntheticModality.parse({**TEXT, "shape": [9], "pad_id": 0})
    assert mod.shortest == 5
    data = make_synthetic(modalities=[{**TEXT, "shape": [9], "pad_id": 0}], n_samples=200, n_classes=4)
    assert int(data.spec("text").attention_mask(data.train.inputs["text"]).sum(1).min()) == 5


@pytest.mark.parametrize("keys,match", [
    ({"key_positions": 0}, r"key_positions must be in \[1, 16\]"),
    ({"key_positions": 17}, r"key_positions must be in \[1, 16\]"),
    ({"key_positions": 9, "pad_id": 0}, r"key_positions must be in \[1, 8\] \(min_length"),
    ({"key_positions": 5, "pad_id": 0, "min_length": 4}, r"key_positions must be in \[1, 4\]"),
    ({"key_positions": 2.5}, "key_positions must be an integer"),
    ({"pad_id": 12}, r"pad_id must be in \[0, 12\)"),
    ({"pad_id": -1}, r"pad_id must be in \[0, 12\)"),
    ({"pad_id": True}, "pad_id must be an integer"),
    ({"pad_id": 0, "vocab_size": 2}, "pad_id needs vocab_size >= 3"),
    ({"min_length": 3}, "min_length needs pad_id"),
    ({"pad_id": 0, "min_length": 0}, r"min_length must be in \[1, 16\]"),
    ({"pad_id": 0, "min_length": 17}, r"min_length must be in \[1, 16\]"),
])
def test_synthetic_token_keys_are_checked(keys: dict, match: str) -> None:
    message = one_line_error(match, make_synthetic, modalities=[{**TEXT, **keys}])
    assert message.startswith("synthetic modality 'text'")


def test_token_keys_belong_to_a_tokens_modality() -> None:
    one_line_error("only a tokens modality takes key_positions, not a vector one",
                   make_synthetic, modalities=[{"name": "v", "kind": "vector", "key_positions": 2}])
    one_line_error("pad_id cannot be set on a copy .*set them there",
                   make_synthetic, modalities=[TEXT, {"name": "c", "copy_of": "text", "pad_id": 0}])


# -- arrays: pad_id ---------------------------------------------------------------------------

def _arrays(n_per_class: int = 20) -> tuple[dict[str, np.ndarray], dict[str, str], np.ndarray]:
    """Two token modalities (ids 1..9, padded with 0 after a random length) and a vector."""
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.repeat(np.arange(3), n_per_class))
    n = len(labels)
    words = rng.integers(1, 10, (n, 8))
    words[np.arange(8)[None, :] >= rng.integers(2, 9, n)[:, None]] = 0
    tags = rng.integers(1, 6, (n, 4)) + labels[:, None]
    arrays = {"words": words, "tags": tags, "vec": rng.normal(size=(n, 3)) + labels[:, None]}
    return arrays, {"words": "tokens", "tags": "tokens", "vec": "vector"}, labels


def test_arrays_pad_id_for_every_tokens_modality_or_by_name() -> None:
    arrays, kinds, labels = _arrays()
    plain = make_dataset(arrays, kinds, labels)
    every = make_dataset(arrays, kinds, labels, pad_id=0)
    assert [every.spec(m).pad_id for m in kinds] == [0, 0, None]
    named = make_dataset(arrays, kinds, labels, pad_id={"words": 0})
    assert [named.spec(m).pad_id for m in kinds] == [0, None, None]
    # the tensors are the same; the declared padding is part of the fingerprint
    assert tensors_sha(plain) == tensors_sha(every) == tensors_sha(named)
    assert len({plain.fingerprint(), every.fingerprint(), named.fingerprint()}) == 3
    assert plain.spec("words") == ModalitySpec("words", ModalityKind.TOKENS, (8,), 0.0, 9.0)
    # without vocab_sizes the vocabulary reaches the pad id
    assert make_dataset(arrays, kinds, labels, pad_id={"tags": 20}).spec("tags").vocab_size == 21
    assert make_dataset(arrays, kinds, labels, pad_id=np.int64(1)).spec("tags").pad_id == 1


def test_the_arrays_loader_takes_pad_id(tmp_path: Path) -> None:
    params = write_fixture(tmp_path)
    data = mmbench.load_dataset("arrays", **params, pad_id={"words": 0})
    assert data.spec("words").pad_id == 0 and data.spec("words").vocab_size == 20
    one_line_error("pad_id", mmbench.load_dataset, "arrays", **params, pad_id="zero")


@pytest.mark.parametrize("pad_id,extra,match", [
    ({"vec": 0}, {}, r"pad_id names 'vec', which is not a token modality; token modalities: words, tags"),
    ({"word": 0}, {}, r"pad_id names 'word'.*did you mean 'words'"),
    (12, {"vocab_sizes": {"words": 10, "tags": 12}}, r"pad_id 12 of 'words' is outside its vocabulary "
                                                       r"\(vocab_sizes\['words'\] = 10.*use an id below 10"),
    ({"tags": 12}, {"vocab_sizes": {"tags": 12}}, r"pad_id 12 of 'tags' is outside its vocabulary"),
    (-1, {}, r"pad_id of 'words' must be an integer token id >= 0, got -1"),
    ({"tags": 1.5}, {}, r"pad_id of 'tags' must be an integer token id >= 0"),
    (True, {}, "pad_id must be an integer token id .* or a mapping"),
    ("0", {}, "pad_id must be an integer token id .* or a mapping"),
])
def test_arrays_pad_id_errors_name_the_modality_and_the_fix(pad_id, extra, match) -> None:
    arrays, kinds, labels = _arrays()
    message = one_line_error(match, make_dataset, arrays, kinds, labels, pad_id=pad_id, **extra)
    assert message.startswith("arrays: ")


def test_pad_id_needs_a_tokens_modality() -> None:
    arrays, _, labels = _arrays()
    one_line_error("pad_id 0 applies to tokens modalities, and there is none",
                   make_dataset, {"vec": arrays["vec"]}, {"vec": "vector"}, labels, pad_id=0)


# -- the zoo's token encoder ------------------------------------------------------------------

def _encoder(pad_id: int | None) -> TokenEncoder:
    torch.manual_seed(0)
    spec = ModalitySpec("text", ModalityKind.TOKENS, (6,), 0.0, 9.0, pad_id=pad_id)
    encoder = build_encoder(spec, out_dim=5, hidden=16)
    assert isinstance(encoder, TokenEncoder)
    return encoder


def test_the_token_encoder_ignores_padding() -> None:
    encoder = _encoder(pad_id=0)
    ids = torch.tensor([[3, 4, 5, 0, 0, 0], [1, 2, 3, 4, 5, 6], [7, 0, 0, 0, 0, 0]])
    out = encoder(ids)
    longer = torch.cat([ids, torch.zeros(3, 5, dtype=torch.long)], dim=1)
    torch.testing.assert_close(encoder(longer), out, rtol=0, atol=1e-6)
    torch.testing.assert_close(encoder(ids[:, :1]), encoder(torch.tensor([[3], [1], [7]])))
    # the mean over the text only: row 0 is the encoding of its three ids alone
    torch.testing.assert_close(encoder(ids[:1, :3]), out[:1], rtol=0, atol=1e-6)


def test_an_all_padding_row_encodes_without_nan() -> None:
    encoder = _encoder(pad_id=0)
    ids = torch.tensor([[0, 0, 0, 0, 0, 0], [1, 2, 0, 0, 0, 0]])
    out = encoder(ids)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[0], encoder.out(torch.zeros(16)))
    out.sum().backward()
    assert torch.isfinite(encoder.embed.weight.grad).all()


def test_the_token_encoder_without_pad_id_is_unchanged() -> None:
    encoder = _encoder(pad_id=None)
    ids = torch.tensor([[3, 4, 5, 0, 0, 0], [1, 2, 3, 4, 5, 6]])
    assert torch.equal(encoder(ids), encoder.out(encoder.embed(ids).mean(dim=1)))
    assert not torch.equal(encoder(ids)[:1], _encoder(pad_id=None)(ids[:1, :3]))  # zeros count here
