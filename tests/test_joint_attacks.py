"""Issue 27, point 1, the rest: the joint token + continuous attack is never weaker than either of
its parts on the same rows (and the family's check says so when a stored cell is), a neighbour
table restricts every token attack's replacements, and the embedding-space PGD diagnostic never
makes a row better, returns no realisable input and grows with its radius."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from mmbench.config.build import create_model
from mmbench.data.base import ModalityKind, ModalitySpec
from mmbench.data.synthetic import make_synthetic
from mmbench.data.tasks import CLASSIFICATION, row_loss
from mmbench.families.token_attacks import joint_checks
from mmbench.perturb.adversarial import adversarial
from mmbench.perturb.embedding_pgd import EmbeddingPGD
from mmbench.perturb.joint_attacks import JointAttack, worst_rows
from mmbench.perturb.token_attacks import TOKEN_ATTACKS, TokenAttack
from mmbench.train.standard import StandardConfig, StandardRecipe
from test_token_attacks import SPECS, VOCAB, BagOfWords, _batch

TEXT_DATA = [{"name": "image", "kind": "vector", "shape": [6], "informativeness": 0.6},
             {"name": "text", "kind": "tokens", "shape": [12], "vocab_size": 20, "key_positions": 3,
              "pad_id": 0, "min_length": 6}]


@pytest.fixture(scope="module")
def trained() -> tuple[torch.nn.Module, dict[str, torch.Tensor], torch.Tensor]:
    """A late-fusion model trained on image + padded text whose signal sits in key positions."""
    data = make_synthetic(modalities=TEXT_DATA, n_samples=300, n_classes=3, seed=2)
    torch.manual_seed(0)
    model = create_model("late_fusion", data.modalities, data.n_classes)
    StandardRecipe().fit(model, data, StandardConfig(epochs=12, batch_size=32, lr=3e-3, patience=0), seed=0)
    batch, labels = data.test.rows(slice(0, 48))
    return model.eval(), batch, labels


def _joint_cases(data_specs: tuple[ModalitySpec, ...], token_eps: list[float]) -> list:
    return adversarial(data_specs, 3, attacks=["fgsm", *TOKEN_ATTACKS], eps=[0.1], token_eps=token_eps,
                       targets=["each", "all"])


def _wrong(model: torch.nn.Module, batch: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(batch).argmax(dim=1) != labels


def test_the_joint_attack_is_never_weaker_than_either_part_on_the_same_rows(trained) -> None:
    model, batch, labels = trained
    specs = tuple(ModalitySpec(n, ModalityKind.VECTOR if n == "image" else ModalityKind.TOKENS,
                               tuple(batch[n].shape[1:]), 0.0, 1.0 if n == "image" else 19.0,
                               pad_id=None if n == "image" else 0) for n in ("image", "text"))
    cases = _joint_cases(specs, [1, 2])
    joint = [c for c in cases if isinstance(c, JointAttack)]
    assert {c.target for c in joint} == {"all"} and len(joint) == 2 * len(TOKEN_ATTACKS)
    parts = {(c.target, getattr(c, "attack", ""), c.severity): c for c in cases if not isinstance(c, JointAttack)}
    stronger = 0
    for case in joint:
        adv = case.apply(model, batch, labels, seed=5)
        assert case.continuous is not None
        cont = parts[("image", "fgsm", 0.1)].apply(model, batch, labels, seed=5)
        tokens = parts[("text", case.tokens[0].attack, case.severity)].apply(model, batch, labels, seed=5)
        wrong = _wrong(model, adv, labels)
        assert bool((wrong >= _wrong(model, cont, labels)).all())
        assert bool((wrong >= _wrong(model, tokens, labels)).all())
        stronger += int(wrong.sum()) > max(int(_wrong(model, cont, labels).sum()), int(_wrong(model, tokens, labels).sum()))
        changed = (adv["text"] != batch["text"]).sum(dim=1)
        assert bool((changed <= case.severity).all()) and bool((adv["text"][batch["text"] == 0] == 0).all())
        assert float((adv["image"] - batch["image"]).abs().max()) <= 0.1 + 1e-6
    assert stronger > 0  # attacking both at once fools rows neither part fools alone


def test_worst_rows_prefers_a_misclassified_candidate_then_the_highest_loss() -> None:
    model = BagOfWords().eval()
    batch, labels = _batch(rows=30)
    candidates = [batch, {**batch, "image": batch["image"] + 2.0}, {**batch, "image": batch["image"] - 2.0}]
    chosen = worst_rows(model, candidates, labels, CLASSIFICATION, "l1")
    with torch.no_grad():
        wrong = torch.stack([model(c).argmax(dim=1) != labels for c in candidates]).any(dim=0)
        loss = torch.stack([row_loss(CLASSIFICATION, model(c), labels) for c in candidates]).max(dim=0).values
        got = model(chosen)
    assert torch.equal(got.argmax(dim=1) != labels, wrong)
    assert bool((row_loss(CLASSIFICATION, got, labels)[~wrong] >= loss[~wrong] - 1e-6).all())


def test_the_check_flags_a_joint_cell_weaker_than_a_part() -> None:
    key = {"dataset": "d", "model": "m", "recipe": "r", "seed": 0, "rows": 50}
    tokens = pd.DataFrame([{**key, "target": "text", "attack": "hotflip", "severity": 1.0, "value": 0.6,
                            "perturbation": "hotflip-tokens", "continuous_eps": float("nan"), "parts": None},
                           {**key, "target": "all", "attack": "pgd+hotflip", "severity": 1.0, "value": 0.5,
                            "perturbation": "pgd-Linf+hotflip-tokens", "continuous_eps": 0.05,
                            "parts": "image|text"}])
    continuous = pd.DataFrame([{**key, "target": "image", "attack": "pgd", "severity": 0.05, "value": 0.55}])
    assert joint_checks(tokens, continuous, True)["passed"].all()
    doctored = tokens.assign(value=[0.6, 0.58])  # weaker than the continuous part alone
    failed = joint_checks(doctored, continuous, True)
    assert not failed["passed"].any() and "0.5500" in failed["detail"].iloc[0]


@pytest.mark.parametrize("attack", list(TOKEN_ATTACKS))
def test_a_neighbour_table_restricts_every_replacement(attack: str) -> None:
    model = BagOfWords().eval()
    batch, labels = _batch(rows=30)
    table = [[(i + 1) % VOCAB, (i + 2) % VOCAB, -1] for i in range(VOCAB)]
    table[5] = [-1, -1, -1]  # id 5 has no neighbour: never changed
    (case,) = adversarial(SPECS, 3, attacks=[attack], eps=[3], targets=["text"], neighbours=table,
                          options={attack: {"protected": [0, 1]}})
    assert isinstance(case, TokenAttack)
    adv = case.apply(model, batch, labels, seed=1)["text"]
    moved = adv != batch["text"]
    assert bool(moved.any())
    for row, pos in moved.nonzero().tolist():
        old, new = int(batch["text"][row, pos]), int(adv[row, pos])
        assert new in table[old] and new not in (0, 1)
    assert not bool(moved[batch["text"] == 5].any())


def test_embedding_pgd_is_a_diagnostic_that_never_helps_and_grows_with_its_radius(trained) -> None:
    model, batch, labels = trained
    text = ModalitySpec("text", ModalityKind.TOKENS, (12,), 0, 19, pad_id=0)
    clean = row_loss(CLASSIFICATION, model(batch).detach(), labels)
    errors = []
    for radius in (0.0, 0.25, 1.0):
        case = EmbeddingPGD(family="token_attacks", name="embedding_pgd-diagnostic", target="text",
                            severity=radius, spec=text)
        assert case.apply(model, batch, labels, 0) == dict(batch)  # nothing realisable to return
        logits = case.logits(model, batch, labels, 0, {})
        assert bool((row_loss(CLASSIFICATION, logits, labels) >= clean - 1e-5).all())
        errors.append(int((logits.argmax(dim=1) != labels).sum()))
    assert errors[0] == int((model(batch).argmax(dim=1) != labels).sum())
    assert errors[0] <= errors[1] <= errors[2] and errors[2] > errors[0]
