"""Which attacks the shipped model contract tests run (mmbench.testing.attacks): a representative
attack per mode and norm by default, every one on request; and every other attack of the
catalogue keeps the invariants on one cheap model here, so that the repository's tests cover the
whole catalogue."""

from __future__ import annotations

import pytest
import torch

from mmbench.config.build import create_model
from mmbench.errors import MMBenchError
from mmbench.perturb.attacks import CATALOGUE, attack_spec
from mmbench.testing.attacks import (
    ENV,
    MODES,
    case_id,
    check_invariants,
    every_case,
    representative,
    selected,
)
from mmbench.testing.fitting import ALL_KINDS, synthetic

#: for attacks that fit no modality of ALL_KINDS (TIFGSM convolves three channels)
RGB = [{"name": "rgb", "kind": "image", "shape": [3, 8, 8]}, ALL_KINDS[2]]
OTHERS = [case for case in every_case() if case not in representative()]


def test_the_representative_set_has_one_attack_per_mode_and_norm() -> None:
    pairs = {(s.mode, s.norms[0]) for s in CATALOGUE.values()}
    cases = representative()
    assert sorted((attack_spec(a).mode, n) for a, n in cases) == sorted(pairs)
    assert {mode for mode, _ in pairs} == set(MODES) and {n for _, n in cases} == {"Linf", "L2", "L1", "L0"}
    # the widely applicable, fastest one of each pair (no target restriction, no class minimum)
    assert cases == [("fgsm", "Linf"), ("pgdl2", "L2"), ("eadl1", "L1"), ("apgd", "Linf"), ("pgdrs", "Linf"),
                     ("deepfool", "L2"), ("onepixel", "L0")]


def test_the_switch_selects_the_cases(monkeypatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    assert selected() == representative() == selected("representative")
    monkeypatch.setenv(ENV, "all")
    assert selected() == every_case()
    assert set(representative()) < set(every_case())
    assert sorted(a for a, _ in every_case()) == sorted(CATALOGUE)
    assert selected("CW, fab") == [("cw", "L2"), ("fab", "Linf")]
    with pytest.raises(MMBenchError, match=f"^{ENV} must be 'representative', 'all' or attack names .*'pgd2' is none"):
        selected("fgsm,pgd2")


@pytest.fixture(scope="module")
def late_fusion():
    """late_fusion on ALL_KINDS, and on an RGB image with a vector."""
    out = {}
    for name, kinds in (("all_kinds", ALL_KINDS), ("rgb", RGB)):
        data = synthetic(kinds)
        torch.manual_seed(0)
        out[name] = create_model("late_fusion", data.modalities, data.n_classes).eval(), data
    return out


@pytest.mark.parametrize("case", OTHERS, ids=case_id)
def test_every_other_attack_keeps_the_invariants(late_fusion, case: tuple[str, str]) -> None:
    spec = attack_spec(case[0])
    model, data = late_fusion["all_kinds"]
    if spec.target_check is not None and all(spec.target_check((m,)) for m in data.modalities if m.is_continuous):
        model, data = late_fusion["rgb"]
    check_invariants(model, data, *case)
