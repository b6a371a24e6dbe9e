"""Token attacks (issue 27, point 1): hotflip, greedy and random substitution on a tokens modality
keep their invariants (at most the budget of positions changed per row, only allowed ids, protected
positions untouched, other modalities bit-identical, no row made better), hotflip's first-order
estimates track the exact loss changes, and what cannot be attacked is refused in one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mmbench.data.base import ModalityKind, ModalitySpec
from mmbench.data.synthetic import make_synthetic
from mmbench.data.tasks import CLASSIFICATION, row_loss
from mmbench.errors import MMBenchError
from mmbench.perturb.adversarial import adversarial
from mmbench.perturb.token_attacks import TOKEN_ATTACKS, Search, flip_estimates, find_embedding
from mmbench.train.standard import StandardConfig, StandardRecipe

VOCAB, T = 12, 8
SPECS = (ModalitySpec("image", ModalityKind.VECTOR, (4,)), ModalitySpec("text", ModalityKind.TOKENS, (T,), 0, VOCAB - 1))


class BagOfWords(nn.Module):
    """Mean token embedding and an image vector into a linear head (a small model whose loss is
    smooth in the embedding)."""

    input_modalities = ("image", "text")

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 6)
        self.head = nn.Linear(6 + 4, classes)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(torch.cat([self.embed(batch["text"]).mean(dim=1), batch["image"]], dim=1))


class OneHot(BagOfWords):
    """The same without an nn.Embedding: token ids one-hot encoded and multiplied in."""

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        onehot = nn.functional.one_hot(batch["text"], VOCAB).float()
        return self.head(torch.cat([(onehot @ self.embed.weight).mean(dim=1), batch["image"]], dim=1))


def _batch(seed: int = 0, rows: int = 24) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    text = torch.randint(1, VOCAB, (rows, T), generator=g)
    text[:, -2:] = 0  # padding at the end of every row
    text[::3, -4:] = 0
    return {"image": torch.rand(rows, 4, generator=g), "text": text}, torch.randint(0, 3, (rows,), generator=g)


def _cases(eps: list[float], **options: dict) -> list:
    return adversarial(SPECS, 3, attacks=list(TOKEN_ATTACKS), eps=eps, targets=["text"], options=options)


@pytest.mark.parametrize("eps", [1, 3, 0.25])
def test_every_token_attack_keeps_the_invariants(eps: float) -> None:
    torch.manual_seed(0)
    model = BagOfWords().eval()
    batch, labels = _batch()
    for case in _cases([eps]):
        adv = case.apply(model, batch, labels, seed=1)
        assert torch.equal(adv["image"], batch["image"]), case.attack
        changed = adv["text"] != batch["text"]
        free = (batch["text"] != 0).sum(dim=1)
        budget = torch.full_like(free, int(eps)) if eps >= 1 else torch.ceil(eps * free.float()).long()
        assert (changed.sum(dim=1) <= budget).all(), case.attack
        assert not changed[batch["text"] == 0].any(), case.attack  # padding positions untouched
        assert (adv["text"] != 0).sum() == (batch["text"] != 0).sum() and adv["text"].max() < VOCAB
        with torch.no_grad():
            before = row_loss(CLASSIFICATION, model(batch), labels)
            after = row_loss(CLASSIFICATION, model(adv), labels)
        assert (after >= before - 1e-6).all(), case.attack  # no row made better
        assert bool((after > before + 1e-6).any()), case.attack  # and some made worse


def test_protected_ids_are_never_changed_nor_written() -> None:
    torch.manual_seed(1)
    model = BagOfWords().eval()
    batch, labels = _batch(2)
    batch["text"][:, 0] = 5  # a special id at the start of every row
    for case in _cases([4], hotflip={"protected": [0, 5]}, greedy_substitution={"protected": [0, 5]},
                       random_substitution={"protected": [0, 5]}):
        adv = case.apply(model, batch, labels, seed=0)["text"]
        assert (adv[:, 0] == 5).all() and int((adv == 5).sum()) == int((batch["text"] == 5).sum()), case.attack


def test_hotflip_estimates_track_the_exact_loss_changes() -> None:
    """First-order estimates of every single flip against the exactly evaluated loss change."""
    torch.manual_seed(2)
    model = BagOfWords().eval()
    batch, labels = _batch(3, rows=4)
    case = _cases([1])[0]
    search = Search(model, dict(batch), "text", labels, case)
    embedding = find_embedding(model, batch, "text")
    assert embedding is model.embed
    estimate = flip_estimates(search, embedding, batch["text"])
    with torch.no_grad():
        clean = search.loss(batch["text"])
        exact = torch.empty_like(estimate)
        for t in range(T):
            for v in range(VOCAB):
                trial = batch["text"].clone()
                trial[:, t] = v
                exact[:, t, v] = search.loss(trial) - clean
    est, ex = estimate.flatten().numpy(), exact.flatten().numpy()
    assert np.corrcoef(est, ex)[0, 1] > 0.95
    assert np.abs(est - ex).max() < 0.1 * np.abs(ex).max() + 1e-3


def test_hotflip_beats_random_substitution_on_a_trained_model() -> None:
    data = make_synthetic(n_samples=300, seed=4)
    torch.manual_seed(0)
    from mmbench.config.build import build_model

    model = build_model("late_fusion", data.modalities, data.n_classes, {}, "m", "d")
    StandardRecipe().fit(model, data, StandardConfig(epochs=8), 0)
    model.eval()
    batch, labels = data.test.rows(slice(0, 60))
    losses = {}
    for case in adversarial(data.modalities, data.n_classes, attacks=list(TOKEN_ATTACKS), eps=[2], targets=["text"]):
        with torch.no_grad():
            losses[case.attack] = float(row_loss(CLASSIFICATION, model(case.apply(model, batch, labels, 0)), labels).mean())
    assert losses["hotflip"] >= losses["random_substitution"] and losses["greedy_substitution"] >= losses["random_substitution"]


def test_hotflip_without_an_embedding_is_one_line() -> None:
    model = OneHot().eval()
    batch, labels = _batch()
    with pytest.raises(MMBenchError, match="hotflip needs the embedding layer") as info:
        _cases([1])[0].apply(model, batch, labels, 0)
    assert "\n" not in str(info.value)
    for case in _cases([1])[1:]:  # the black-box ones only query the model
        assert case.apply(model, batch, labels, 0)["text"].shape == batch["text"].shape


@pytest.mark.parametrize(("params", "fragment"), [
    ({"attacks": ["hotflip", "pgd"], "eps": [0.1]}, "need 'token_eps'"),
    ({"attacks": ["hotflip", "embedding_pgd"], "eps": [1]}, "give it an entry of its own"),
    ({"attacks": ["pgd"], "eps": [0.1], "token_eps": [1]}, "apply to token attacks"),
    ({"attacks": ["hotflip"], "eps": [1], "neighbours": [[1, 2]]}, "must be \\[vocab_size=12, k\\]"),
    ({"attacks": ["hotflip"], "eps": [1], "neighbours": {"words": [[1]]}}, "not a tokens modality"),
    ({"attacks": ["hotflip"], "eps": [1], "options": {"hotflip": {"candidates": 3}}}, "option 'candidates'"),
    ({"attacks": ["hotflip"], "eps": [1], "targets": ["image"]}, "target a tokens modality"),
    ({"attacks": ["hotflip"], "eps": [1.5]}, "whole numbers of positions"),
    ({"attacks": ["hotflip"]}, "need 'eps'"),
    ({"attacks": ["hotflip"], "eps": [1], "options": {"hotflip": {"beam": 0}}}, "option 'beam'"),
    ({"attacks": ["hotflip"], "eps": [1], "targets": ["txt"]}, "unknown target modality 'txt'"),
])
def test_bad_token_attack_entries_are_one_line_errors(params: dict, fragment: str) -> None:
    with pytest.raises(MMBenchError, match=fragment) as info:
        adversarial(SPECS, 3, **params)
    assert "\n" not in str(info.value)


def test_a_white_box_token_attack_on_a_model_without_an_embedding_is_refused_before_it_runs(tmp_path) -> None:
    import mmbench

    data = make_synthetic(modalities=[{"name": "image", "kind": "vector", "shape": [4]},
                                      {"name": "text", "kind": "tokens", "shape": [T], "vocab_size": VOCAB}],
                          n_samples=60, n_classes=3, seed=0)
    for attack in ("hotflip", "embedding_pgd"):
        with pytest.raises(MMBenchError, match=f"{attack}.* needs the embedding layer that modality 'text'") as info:
            mmbench.evaluate(OneHot(), data, perturbations=[
                {"name": "adversarial", "params": {"attacks": [attack], "eps": [1]}}], out_dir=tmp_path / attack)
        assert "\n" not in str(info.value) and not (tmp_path / attack / "results.csv").exists()
    done = mmbench.evaluate(OneHot(), data, perturbations=[
        {"name": "adversarial", "params": {"attacks": ["greedy_substitution"], "eps": [1]}}])
    assert not done.failed


def test_a_model_that_does_not_read_the_tokens_is_not_refused_for_hotflip(tmp_path) -> None:
    import mmbench

    data = make_synthetic(modalities=[{"name": "image", "kind": "vector", "shape": [4]},
                                      {"name": "text", "kind": "tokens", "shape": [T], "vocab_size": VOCAB}],
                          n_samples=60, n_classes=3, seed=0)
    image_only = torch.nn.Linear(4, 3)  # forward(image): never sees the text
    done = mmbench.evaluate(image_only, data, inputs=["image"], perturbations=[
        "clean", {"name": "adversarial", "params": {"attacks": ["hotflip"], "eps": [1]}}])
    assert not done.failed  # its cells are "not read", never robustness
