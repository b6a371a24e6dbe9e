"""``mmbench validate`` on a user's own arrays: token ids of every row against the embeddings a
model feeds them to, a continuous modality that a model embeds, and the rows each split, group
and natural_shift evaluation uses (with the values clipped to the training range)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import write_suite
from torch import nn

from mmbench.cli import main
from mmbench.registry import MODELS

SITES = {"A": 90, "B": 60, "C": 30}


def site_data(folder: Path, **change: Any) -> Path:
    """Recordings of three sites (A, B, C): feature vectors (site B's offset by 2 units) and word
    ids (below 24), 3 classes, a given train/val/test column per row, and the site per row."""
    rng = np.random.default_rng(0)
    site = np.repeat(list(SITES), list(SITES.values()))
    n = len(site)
    labels = rng.integers(0, 3, n)
    fold = np.tile(["train", "train", "train", "val", "test"], n // 5)
    feats = rng.normal(0.0, 1.0, (n, 6)) + labels[:, None] + 2.0 * (site == "B")[:, None]
    words = rng.integers(0, 16, (n, 5)) + 4 * labels[:, None]
    arrays = {"feats": feats.astype(np.float32), "words": words, "labels": labels, "site": site, "fold": fold}
    arrays.update({k: f(arrays) for k, f in change.items()})
    path = folder / "sites.npz"
    np.savez(path, **arrays)
    return path


class WordBag(nn.Module):
    """Mean word embedding (24 entries) concatenated with the features."""

    def __init__(self, n_classes: int = 3) -> None:
        super().__init__()
        self.emb = nn.Embedding(24, 8)
        self.lin = nn.Linear(8 + 6, n_classes)

    def forward(self, feats, words):
        return self.lin(torch.cat([self.emb(words.long()).mean(1), feats], dim=1))


@pytest.fixture
def word_bag():
    MODELS.register("word_bag", WordBag)
    yield "word_bag"
    MODELS.unregister("word_bag")


def validate(folder: Path, capsys, models: list[Any], *options: str, kinds: dict[str, str] | None = None,
             **params: Any) -> tuple[int, str, str]:
    """``mmbench validate`` of a suite on the site data (in-distribution site A)."""
    dataset = {"name": "arrays", "params": {
        "path": str(folder / "sites.npz"), "modalities": kinds or {"feats": "vector", "words": "tokens"},
        "split": "fold", "groups": "site", "in_distribution": "A", **params}}
    suite = write_suite(folder, {"name": "sites", "datasets": [dataset], "models": models,
                                 "recipes": [{"name": "standard", "params": {"epochs": 1}}],
                                 "perturbations": ["clean", "natural_shift"], "seeds": [0]})
    code = main(["validate", str(suite), *options])
    out = capsys.readouterr()
    return code, out.out, out.err.strip()


def one_line(err: str) -> str:
    """The one error line of stderr (the loader's notes are log lines before it)."""
    errors = [line for line in err.splitlines() if line.startswith("mmbench: error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def test_a_token_id_only_in_test_rows_beyond_the_embedding_is_refused(word_bag, tmp_path: Path, capsys) -> None:
    site_data(tmp_path)
    code, out, _ = validate(tmp_path, capsys, [word_bag, "late_fusion"])
    assert code == 0 and "suite.yaml: ok" in out
    words = lambda a: np.where(np.arange(180)[:, None] == 9, 30, a["words"])  # row 9 is a test row of site A
    site_data(tmp_path, words=words)
    code, _, err = validate(tmp_path, capsys, [word_bag])
    assert code == 2
    assert one_line(err) == ("mmbench: error: model 'word_bag' on dataset 'arrays': modality 'words' holds token "
                             "id 30 (in a test row) but nn.Embedding 'module.emb' has 24 entries; size the "
                             "embedding from the dataset's vocabulary (31 or more) or map the ids below 24")


def test_a_held_out_id_beyond_the_embedding_names_its_group(word_bag, tmp_path: Path, capsys) -> None:
    site_data(tmp_path, words=lambda a: np.where(np.arange(180)[:, None] == 170, 25, a["words"]))  # site C
    code, _, err = validate(tmp_path, capsys, [word_bag])
    assert code == 2
    assert "holds token id 25 (in a row of group 'C') but nn.Embedding 'module.emb' has 24" in one_line(err)


def test_a_declared_vocabulary_is_checked_over_every_row(tmp_path: Path, capsys) -> None:
    site_data(tmp_path, words=lambda a: np.where(np.arange(180)[:, None] == 100, 40, a["words"]))  # site B
    code, _, err = validate(tmp_path, capsys, ["late_fusion"], vocab_sizes={"words": 24})
    assert code == 2
    assert one_line(err) == ("mmbench: error: arrays: array 'words' holds token id 40 (in a row of group 'B') but its "
                             "vocabulary size is 24; raise vocab_sizes['words'] above 40 or map the ids below it")


def test_token_ids_declared_vector_and_embedded_are_refused(word_bag, tmp_path: Path, capsys) -> None:
    site_data(tmp_path)
    code, _, err = validate(tmp_path, capsys, [word_bag], kinds={"feats": "vector", "words": "vector"})
    assert code == 2
    assert one_line(err) == ("mmbench: error: model 'word_bag' on dataset 'arrays': modality 'words' is declared "
                             "vector but the model embeds it (it reaches nn.Embedding 'module.emb' as ids); if it "
                             "holds token ids, declare it tokens (words: tokens)")


def test_validate_prints_split_sizes_groups_and_natural_shift_rows(tmp_path: Path, capsys) -> None:
    site_data(tmp_path)
    code, out, err = validate(tmp_path, capsys, ["late_fusion"], "-q")
    assert code == 0
    lines = out.splitlines()
    # site A's 90 rows as its fold column says; sites B and C held out whatever their fold
    assert lines[0] == ("dataset 'arrays': 54 train, 18 val, 18 test rows (group 'A'); "
                        "2 held-out group(s): 'B' 60, 'C' 30 rows")
    unused = ("54 of the 108 rows labelled 'train' are outside the in-distribution group 'A' ('B' 36, 'C' 18): "
              "they are not trained on, only evaluated as held-out groups")
    assert f"  {unused}" in lines
    assert err.splitlines() == [f"mmbench: arrays: {unused}"]  # a warning at load, shown even with -q
    natural = "  natural_shift: in-distribution (group 'A', 18 test rows); held-out 'B' (60 rows); held-out 'C' (30 rows)"
    assert natural in lines
    assert lines[-1].startswith(f"{tmp_path / 'suite.yaml'}: ok")


def test_validate_prints_the_share_of_clipped_values(tmp_path: Path, capsys) -> None:
    site_data(tmp_path)
    clipped = re.compile(r"  values outside the training range, clipped to \[0, 1\] \(clip: true\): "
                         r"test: feats (\d+\.\d)%; group 'B': feats (\d+\.\d)%; group 'C': feats (\d+\.\d)%")
    match = next(filter(None, map(clipped.fullmatch, validate(tmp_path, capsys, ["late_fusion"])[1].splitlines())))
    test, site_b, _ = (float(v) for v in match.groups())
    assert site_b > test  # site B's offset pushes its values past the training range
    kept = validate(tmp_path, capsys, ["late_fusion"], clip=False)[1]
    assert re.search(r"  values outside the training range, kept \(clip: false\): test: feats \d+\.\d%; .*; "
                     r"bounds feats \[-\d\.\d+, \d\.\d+\]", kept)
