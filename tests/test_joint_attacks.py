"""Issue 27, point 1, the rest: the joint token + continuous attack is never weaker than either of
its parts on the same rows, whatever their random draws (it is derived per row from the stored
cells of the sequence and of both parts), the family's check says so when a cell is, a neighbour
table restricts every token attack's replacements, and the embedding-space PGD diagnostic never
makes a row better, returns no realisable input and grows with its radius."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import tiny_suite
from test_token_attacks import SPECS, VOCAB, BagOfWords, _batch

from mmbench.api import run
from mmbench.config.build import create_model
from mmbench.data.base import ModalityKind, ModalitySpec
from mmbench.data.synthetic import make_synthetic
from mmbench.data.tasks import CLASSIFICATION, row_loss
from mmbench.families.token_attacks import joint_checks
from mmbench.perturb.adversarial import adversarial
from mmbench.perturb.embedding_pgd import EmbeddingPGD
from mmbench.perturb.joint_attacks import JointAttack
from mmbench.perturb.token_attacks import TOKEN_ATTACKS, TokenAttack
from mmbench.train.standard import StandardConfig, StandardRecipe

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


@pytest.fixture(scope="module")
def joint_run(tmp_path_factory) -> Path:
    """A suite whose entry lists PGD and every token attack on image + text, ``each`` and ``all``."""
    root = tmp_path_factory.mktemp("joint")
    suite = tiny_suite(models=["late_fusion", "early_fusion"], perturbations=["clean", {
        "name": "adversarial", "params": {"attacks": ["pgd", *TOKEN_ATTACKS], "eps": [0.1], "token_eps": [1, 2],
                                          "targets": ["each", "all"], "max_rows": 40, "options": {"pgd": {"steps": 3}}}}])
    suite["datasets"] = [{"name": "synthetic", "params": {"modalities": TEXT_DATA, "n_samples": 300, "n_classes": 3,
                                                          "seed": 2}}]
    suite["recipes"][0]["params"]["epochs"] = 8
    run(suite, out_dir=root / "out", cache_dir=root / "cache", progress=False)
    return root / "out"


def test_the_joint_attack_is_never_weaker_than_either_part_on_the_same_rows(joint_run: Path) -> None:
    frame = pd.read_csv(joint_run / "results.csv")
    rows = frame[frame["metric"] == "accuracy"]
    joint = rows[rows["joint"] == "worst of parts"]
    assert len(joint) == 2 * 2 * len(TOKEN_ATTACKS) and set(joint["target"]) == {"all"}
    stronger = 0
    for _, cell in joint.iterrows():
        same = (rows["model"] == cell["model"]) & (rows["joint"].isna())
        cont = rows[same & (rows["family"] == "adversarial") & (rows["target"] == "image")]
        token = rows[same & (rows["target"] == "text") & (rows["attack"] == cell["attack"].split("+")[1])
                     & (rows["severity"] == cell["severity"])]
        assert len(cont) == 1 and len(token) == 1
        parts = (float(cont["value"].iloc[0]), float(token["value"].iloc[0]))
        assert cell["value"] <= min(parts) + 1e-12
        stronger += cell["value"] < min(parts) - 1e-12
    assert stronger > 0  # attacking both at once fools rows neither part fools alone
    checks = json.loads((joint_run / "results.json").read_text())["sanity"]
    joint_checks_run = [c for c in checks if c["check"] == "joint_not_weaker"]
    assert len(joint_checks_run) == len(joint) and all(c["passed"] for c in joint_checks_run)
    board = (joint_run / "LEADERBOARD.md").read_text()
    assert "all pgd@0.1+hotflip@2" in board and "pgd-Linf>hotflip" not in board.split("token attacks")[1]


def test_the_sequence_alone_respects_both_budgets(trained) -> None:
    model, batch, labels = trained
    specs = tuple(ModalitySpec(n, ModalityKind.VECTOR if n == "image" else ModalityKind.TOKENS,
                               tuple(batch[n].shape[1:]), 0.0, 1.0 if n == "image" else 19.0,
                               pad_id=None if n == "image" else 0) for n in ("image", "text"))
    cases = adversarial(specs, 3, attacks=["fgsm", *TOKEN_ATTACKS], eps=[0.1], token_eps=[2], targets=["all"])
    joint = [c for c in cases if isinstance(c, JointAttack)]
    assert {c.target for c in joint} == {"all"} and len(joint) == len(TOKEN_ATTACKS)
    assert {c.target for c in cases if not isinstance(c, JointAttack)} == {"image", "text"}  # the parts
    for case in joint:
        adv = case.apply(model, batch, labels, seed=5)
        assert bool(((adv["text"] != batch["text"]).sum(dim=1) <= 2).all())
        assert bool((adv["text"][batch["text"] == 0] == 0).all())
        assert float((adv["image"] - batch["image"]).abs().max()) <= 0.1 + 1e-6


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


TWO_TEXTS = (ModalitySpec("image", ModalityKind.VECTOR, (4,)),
             ModalitySpec("title", ModalityKind.TOKENS, (6,), 0, 11, pad_id=0),
             ModalitySpec("body", ModalityKind.TOKENS, (8,), 0, 11, pad_id=0))


class TwoTexts(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(12, 6)
        self.head = torch.nn.Linear(6 + 6 + 4, 3)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(torch.cat([self.embed(batch["title"]).mean(dim=1), self.embed(batch["body"]).mean(dim=1),
                                    batch["image"]], dim=1))


def test_a_subset_of_token_modalities_is_attacked_at_once_alone_and_jointly() -> None:
    g = torch.Generator().manual_seed(3)
    batch = {"image": torch.rand(20, 4, generator=g), "title": torch.randint(1, 12, (20, 6), generator=g),
             "body": torch.randint(1, 12, (20, 8), generator=g)}
    batch["body"][:, -3:] = 0
    labels = torch.randint(0, 3, (20,), generator=g)
    torch.manual_seed(0)
    model = TwoTexts().eval()
    both = adversarial(TWO_TEXTS, 3, attacks=["hotflip", "random_substitution"], eps=[2], targets=["title+body"])
    assert {c.target for c in both} == {"title+body"} and len(both) == 2
    for case in both:
        adv = case.apply(model, batch, labels, seed=0)
        assert torch.equal(adv["image"], batch["image"])
        for name in ("title", "body"):
            assert bool(((adv[name] != batch[name]).sum(dim=1) <= 2).all())
        assert bool((adv["body"][:, -3:] == 0).all())
    with torch.no_grad():
        hot = next(c for c in both if c.facts()["attack"] == "hotflip").apply(model, batch, labels, 0)
        assert float(row_loss(CLASSIFICATION, model(hot), labels).mean()) > \
            float(row_loss(CLASSIFICATION, model(batch), labels).mean())
    mixed = adversarial(TWO_TEXTS, 3, attacks=["fgsm", "hotflip"], eps=[0.1], token_eps=[1], targets=["all"])
    joint = [c for c in mixed if isinstance(c, JointAttack)]
    assert len(joint) == 1 and joint[0].facts()["parts"] == "image|title+body"
    assert {c.target for c in mixed if not isinstance(c, JointAttack)} == {"image", "title+body"}


def _wrong(model: torch.nn.Module, batch: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(batch).argmax(dim=1) != labels


@pytest.mark.parametrize("attack", list(TOKEN_ATTACKS))
def test_a_larger_budget_continues_a_smaller_ones_search(trained, attack: str) -> None:
    """Cells of different budgets get different seeds from the harness; the rows fooled at k are
    still fooled at k + 1 all the same (the draws are seeded by the rows)."""
    model, batch, labels = trained
    text = ModalitySpec("text", ModalityKind.TOKENS, (12,), 0, 19, pad_id=0)
    image = ModalitySpec("image", ModalityKind.VECTOR, (6,))
    cases = adversarial((image, text), 3, attacks=[attack], eps=[1, 2, 3], targets=["text"])
    fooled = [_wrong(model, case.apply(model, batch, labels, seed=100 + i), labels) for i, case in enumerate(cases)]
    clean = _wrong(model, batch, labels)
    for before, after in zip([clean, *fooled], fooled, strict=False):
        assert bool((after >= before).all())
    assert int(fooled[-1].sum()) > int(clean.sum())


def test_on_a_multilabel_task_no_wrong_label_turns_right_as_the_budget_grows() -> None:
    data = make_synthetic(modalities=TEXT_DATA, n_samples=240, n_classes=3, seed=5, task="multilabel", outputs=4)
    torch.manual_seed(0)
    model = create_model("late_fusion", data.modalities, data.n_classes)
    StandardRecipe().fit(model, data, StandardConfig(epochs=6, batch_size=32, lr=3e-3, patience=0), seed=0)
    model.eval()
    batch, labels = data.test.rows(slice(0, 40))
    specs = tuple(data.modalities)
    for attack in TOKEN_ATTACKS:
        cases = adversarial(specs, data.n_classes, attacks=[attack], eps=[1, 2, 3], targets=["text"], task="multilabel")
        with torch.no_grad():
            right = [(model(batch) >= 0) == (labels > 0.5)]
            right += [(model(c.apply(model, batch, labels, seed=i)) >= 0) == (labels > 0.5) for i, c in enumerate(cases)]
        for before, after in zip(right, right[1:], strict=False):
            assert not bool((after & ~before).any()), attack
