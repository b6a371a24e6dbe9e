"""The suite reference documents every built-in component and each of its parameters."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mmbench.engine.params import DATASET_HARNESS_ARGS, HARNESS_ARGS, param_defaults
from mmbench.registry import REGISTRIES

DOC = (Path(__file__).resolve().parents[1] / "docs" / "suites.md").read_text()

BUILTINS = [(kind, e) for kind, reg in sorted(REGISTRIES.items()) for e in reg.entries()
            if e.source == "builtin"]


@pytest.mark.parametrize("kind,entry", BUILTINS, ids=[f"{k}:{e.name}" for k, e in BUILTINS])
def test_reference_names_every_builtin_and_parameter(kind: str, entry) -> None:
    assert f"`{entry.name}`" in DOC, f"docs/suites.md does not mention {kind} '{entry.name}'"
    if kind in ("metrics", "corruptions"):  # no suite parameters (corruptions: severity only)
        return
    target = entry.obj.config_type if kind == "recipes" else entry.obj
    reserved = DATASET_HARNESS_ARGS if kind == "datasets" else HARNESS_ARGS
    for param in param_defaults(target, reserved):
        assert re.search(rf"`{param}`", DOC), f"docs/suites.md lacks {entry.name}'s parameter '{param}'"
