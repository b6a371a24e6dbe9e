"""Issue 27, point 3: a model whose forward asks for ``attention_mask`` (or ``<modality>_mask``)
gets the mask of the padding of the ids it is called with, under every registered perturbation
(token corruptions, missing-modality imputation, token and joint attacks, certificates), and a
randomly initialised Hugging Face text encoder fused with an image encoder runs every family."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

import mmbench
from mmbench.config.suite import Component
from mmbench.data.synthetic import make_synthetic
from mmbench.errors import MMBenchError
from mmbench.execution.evaluate import BatchCache
from mmbench.models.base import adapt
from mmbench.plan.cells import expand_perturbation
from mmbench.registry import FAMILIES, PERTURBATIONS

PAD = 0
MODALITIES = [{"name": "image", "kind": "image", "shape": [1, 6, 6], "informativeness": 0.6},
              {"name": "table", "kind": "vector", "shape": [4], "informativeness": 0.4},
              {"name": "text", "kind": "tokens", "shape": [10], "vocab_size": 16, "key_positions": 2,
               "pad_id": PAD, "min_length": 4}]


@pytest.fixture(scope="module")
def data():
    return make_synthetic(modalities=MODALITIES, n_samples=150, n_classes=3, seed=4, ood_shift=2.0)


class Recorder(nn.Module):
    """Image, table and masked bag of words; every (ids, mask) pair it is called with is kept."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(16, 8)
        self.head = nn.Linear(36 + 4 + 8, 3)
        self.seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, image: torch.Tensor, table: torch.Tensor, text: torch.Tensor,
                attention_mask: torch.Tensor) -> torch.Tensor:
        self.seen.append((text.detach().clone(), attention_mask.detach().clone()))
        weights = attention_mask.unsqueeze(-1).float()
        words = (self.embed(text.long()) * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)
        return self.head(torch.cat([image.flatten(1), table, words], dim=1))


def _examples() -> list[tuple[str, dict]]:
    return [(e.name, dict(example)) for e in PERTURBATIONS.entries()
            for example in [e.meta.get("example", {}), *e.meta.get("more_examples", ())]]


def test_the_mask_follows_the_ids_under_every_perturbation(data) -> None:
    recorder = Recorder().eval()
    model = adapt(recorder, {}, data.modalities, data.n_classes, "model 'recorder'", "data")
    assert "attention_mask=mask of text" in model.call.describe()
    batch, labels = data.test.rows(slice(0, 12))
    for name, example in _examples():
        for case in expand_perturbation(Component(name, example), data):
            case.logits(model, batch, labels, 0, BatchCache({}, (0,)))
    assert len(recorder.seen) > 100
    for ids, mask in recorder.seen:
        assert torch.equal(mask, (ids != PAD).long())
    # the masks really moved: text emptied by imputation, and words dropped inside rows
    assert any(bool((m.sum(dim=1) == 0).any()) for _, m in recorder.seen)
    inner = [(m[:, :-1] < m[:, 1:]).any() for _, m in recorder.seen]
    assert any(bool(x) for x in inner)


class TwoTexts(nn.Module):
    def forward(self, title: torch.Tensor, body: torch.Tensor, title_mask: torch.Tensor,
                body_mask: torch.Tensor) -> torch.Tensor:
        return torch.stack([title_mask.sum(dim=1), body_mask.sum(dim=1)], dim=1).float()


class OneMask(nn.Module):
    def forward(self, title: torch.Tensor, body: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return attention_mask.float()[:, :2]


def test_each_tokens_modality_has_its_own_mask_and_an_ambiguous_one_is_refused() -> None:
    two = [{"name": n, "kind": "tokens", "shape": [6], "vocab_size": 9, "pad_id": 0, "min_length": 2}
           for n in ("title", "body")]
    data = make_synthetic(modalities=two, n_samples=40, n_classes=2, seed=0)
    batch, _ = data.test.rows(slice(0, 5))
    model = adapt(TwoTexts(), {}, data.modalities, 2, "model 'two'", "data")
    out = model(batch)
    assert torch.equal(out[:, 0], (batch["title"] != 0).sum(dim=1).float())
    assert torch.equal(out[:, 1], (batch["body"] != 0).sum(dim=1).float())
    with pytest.raises(MMBenchError, match="name the parameter <modality>_mask") as info:
        adapt(OneMask(), {}, data.modalities, 2, "model 'one'", "data")
    assert "\n" not in str(info.value)


def test_a_hugging_face_text_encoder_runs_every_family(data, tmp_path: Path) -> None:
    pytest.importorskip("transformers", reason="the text extra (transformers) is part of the dev install")
    from mmbench.models.hf import hf_text_fusion
    torch.manual_seed(0)
    model = hf_text_fusion(data.modalities, data.n_classes, hidden=16, layers=1)
    perturbations = [{"name": name, **({"label": f"{name}_{i}"} if i else {}), "params": example}
                     for i, (name, example) in enumerate(_examples())]
    mmbench.evaluate(model, data, perturbations=perturbations, label="hf", out_dir=tmp_path / "run")
    rows = pd.read_csv(tmp_path / "run" / "results.csv")
    for family in FAMILIES.names():
        source = FAMILIES.get(family).source or family
        assert (rows["family"] == source).any() or (rows["family"] == family).any(), family
    board = (tmp_path / "run" / "LEADERBOARD.md").read_text()
    assert "token attacks" in board and "embedding_pgd (diagnostic)" in board
