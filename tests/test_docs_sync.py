"""The docs follow the tree: docs/design.md's module table lists every module and nothing that
is gone, its layer table every folder, its data-flow picture only names that exist; the README
layout names every folder; each package docstring names only modules it has; docs/suites.md
gives each perturbation the family it is registered with."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "mmbench"
DESIGN = (REPO / "docs" / "design.md").read_text()
FOLDERS = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))


def section(text: str, heading: str) -> str:
    return text.split(heading, 1)[1].split("\n## ", 1)[0]


def listed_modules() -> set[str]:
    """Paths of the module table: in each first cell, a name with a folder sets the folder of
    the bare names after it."""
    found = set()
    for line in section(DESIGN, "## Modules").splitlines():
        if not line.startswith("| `"):
            continue
        folder = ""
        for name in re.findall(r"`([^`]+)`", line.split(" | ")[0]):
            if "/" in name:
                folder, _, name = name.rpartition("/")
            found.add(f"{folder}/{name}" if folder and name else f"{folder}/" if folder else name)
    return found


def actual_modules() -> set[str]:
    out = set()
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "testing":
            out.add("testing/")
        elif not (len(relative.parts) > 1 and relative.name == "__init__.py"):
            out.add(str(relative))
    return out


def test_the_module_table_lists_every_module_and_nothing_gone() -> None:
    listed, actual = listed_modules(), actual_modules()
    assert not actual - listed, f"modules missing from docs/design.md: {sorted(actual - listed)}"
    assert not listed - actual, f"docs/design.md lists what is gone: {sorted(listed - actual)}"


def test_the_layer_table_names_every_folder() -> None:
    layers = section(DESIGN, "## Layers")
    named = set(re.findall(r"`(\w+)/`", layers))
    assert named == set(FOLDERS), (sorted(set(FOLDERS) - named), sorted(named - set(FOLDERS)))


def test_the_data_flow_names_only_what_exists() -> None:
    picture = section(DESIGN, "## Data flow").split("```")[1]
    for name in sorted(set(re.findall(r"\b([a-z_]+\.[a-z_]+(?:\.[A-Za-z_]+)*)\b", picture))):
        if name.endswith((".yaml", ".csv", ".json", ".md", ".html")):
            continue
        module, attributes = name if name.startswith("mmbench.") else f"mmbench.{name}", []
        while module.count(".") > 0 and not _is_module(module):
            module, last = module.rsplit(".", 1)
            attributes.insert(0, last)
        found: object = importlib.import_module(module)
        for attribute in attributes:
            assert hasattr(found, attribute), f"docs/design.md data flow names {name}, which does not exist"
            found = getattr(found, attribute)


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def test_the_readme_layout_names_every_folder() -> None:
    layout = section((REPO / "README.md").read_text(), "## Layout")
    missing = [f for f in FOLDERS if f"`{f}/`" not in layout]
    assert not missing, f"README's layout omits {missing}"


@pytest.mark.parametrize("folder", FOLDERS)
def test_package_docstrings_name_only_their_modules(folder: str) -> None:
    doc = importlib.import_module(f"mmbench.{folder}").__doc__ or ""
    for name in re.findall(r"``(\w+)\.py``", doc):
        assert (PACKAGE / folder / f"{name}.py").is_file(), f"mmbench/{folder}/__init__.py names {name}.py"


def test_suites_doc_gives_each_perturbation_its_family() -> None:
    from mmbench.registry import PERTURBATIONS

    text = (REPO / "docs" / "suites.md").read_text()
    for heading in re.findall(r"^### (.+\((?:family|families) .+\))$", text, re.M):
        names = re.findall(r"`(\w+)`", heading.split("(fam")[0])
        families = re.findall(r"`(\w+)`", heading.split("(fam")[1])
        for name in names:
            assert PERTURBATIONS.entry(name).meta.get("family") in families, heading


def test_every_test_file_has_a_budget() -> None:
    from conftest import budgets

    files = {str(p.relative_to(REPO)) for folder in ("tests", "mmbench/testing") for p in (REPO / folder).glob("test_*.py")}
    listed = set(budgets())
    assert files == listed, (sorted(files - listed), sorted(listed - files))
