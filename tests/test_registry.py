"""The generic registry: decorator registration, wildcards, did-you-mean, duplicates."""

from __future__ import annotations

import subprocess
import sys

import pytest

import mmbench
from mmbench.errors import MMBenchError
from mmbench.registry import REGISTRIES, Registry


def test_decorator_registration_and_lookup() -> None:
    reg: Registry[object] = Registry("widget")

    @reg.register("alpha_fusion", family="x")
    def alpha() -> str:
        return "a"

    assert reg.get("alpha_fusion") is alpha
    assert reg.entry("alpha_fusion").meta == {"family": "x"}
    assert "alpha_fusion" in reg


def test_wildcard_listing_is_sorted() -> None:
    reg: Registry[int] = Registry("widget")
    for name, value in [("late_b", 1), ("early_a", 2), ("late_a", 3)]:
        reg.register(name, value)
    assert reg.names() == ["early_a", "late_a", "late_b"]
    assert reg.names("late*") == ["late_a", "late_b"]
    assert reg.names("nothing*") == []


def test_unknown_name_suggests_the_closest() -> None:
    reg: Registry[int] = Registry("widget")
    reg.register("late_fusion", 1)
    with pytest.raises(MMBenchError, match=r"unknown widget 'late_fuson' \(did you mean 'late_fusion'\?\)"):
        reg.get("late_fuson")
    with pytest.raises(MMBenchError) as info:
        reg.get("zzz")
    assert "did you mean" not in str(info.value)


def test_duplicate_names_are_rejected_but_reregistering_the_same_object_is_not() -> None:
    reg: Registry[object] = Registry("widget")
    obj = object()
    reg.register("a", obj)
    reg.register("a", obj)
    with pytest.raises(MMBenchError, match="registered twice"):
        reg.register("a", object())


def test_invalid_names_are_rejected() -> None:
    reg: Registry[int] = Registry("widget")
    with pytest.raises(ValueError):
        reg.register("bad name!", 1)


def test_builtins_load_lazily_on_first_lookup() -> None:
    """'import mmbench' imports no model code and no torch; the first lookup does."""
    code = (
        "import sys, mmbench\n"
        "assert 'torch' not in sys.modules and 'mmbench.models.late' not in sys.modules\n"
        "assert 'late_fusion' in mmbench.list_models()\n"
        "assert 'mmbench.models.late' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("kind", sorted(REGISTRIES))
def test_every_registry_has_builtins_and_public_listing(kind: str) -> None:
    names = REGISTRIES[kind].names()
    assert names, f"no built-in {kind}"
    assert getattr(mmbench, f"list_{kind}")() == names


def test_model_zoo_is_complete() -> None:
    expected = {"seed_concat", "early_fusion", "late_fusion", "tensor_fusion", "lowrank_fusion",
                "attention_fusion", "gated_fusion", "unimodal", "hf_text_fusion"}
    assert expected <= set(mmbench.list_models())
    assert mmbench.list_models("*fusion") == sorted(n for n in expected if n.endswith("fusion"))
