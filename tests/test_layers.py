"""The package's architecture holds: walking every import of every module (function-level ones
included), there is no import cycle and no folder imports a layer above it. Each folder's
``__init__`` docstring says what lives there."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mmbench"

#: top to bottom; a module may import its own layer and any layer below it
LAYERS: tuple[tuple[str, ...], ...] = (
    ("mmbench", "mmbench.__main__", "mmbench.cli", "mmbench.api", "mmbench.runner", "mmbench.testing"),
    ("mmbench.report",),
    ("mmbench.families",),
    ("mmbench.render",),
    ("mmbench.stats",),
    ("mmbench.execution",),
    ("mmbench.plan",),
    ("mmbench.config",),
    ("mmbench.store",),
    ("mmbench.perturb", "mmbench.train", "mmbench.models", "mmbench.data", "mmbench.metrics"),
    ("mmbench.registry", "mmbench.errors", "mmbench.hashing", "mmbench.version", "mmbench.bounds", "mmbench.text",
     "mmbench.plugins"),
)


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ("mmbench", *path.relative_to(PACKAGE).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = _modules()


def layer(module: str) -> int:
    best = max((prefix for group in LAYERS for prefix in group
                if module == prefix or module.startswith(prefix + ".")), key=len)
    return next(i for i, group in enumerate(LAYERS) if best in group)


def imports(module: str) -> set[str]:
    """The mmbench modules ``module`` imports (``from a import b``: ``a.b`` where that is a
    module, else ``a``)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names}
    return {m for m in found if m in MODULES and m != module}


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        assert layer(module) >= 0


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_reaches_a_higher_layer(module: str) -> None:
    upward = [m for m in imports(module) if layer(m) < layer(module)]
    assert not upward, f"{module} (layer {layer(module)}) imports {upward}"


def test_there_is_no_import_cycle() -> None:
    graph = {m: imports(m) for m in MODULES}
    graph = {m: {t for t in targets if t != "mmbench"} for m, targets in graph.items()}  # the package root
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycle = trail[trail.index(target):] + [target] if target in trail else [node, target]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if target not in state:
                visit(target, [*trail, target])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


@pytest.mark.parametrize("folder", sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py")))
def test_each_folder_says_what_lives_there(folder: str) -> None:
    doc = importlib.import_module(f"mmbench.{folder}").__doc__
    assert doc and len(doc.split()) >= 8, f"mmbench/{folder}/__init__.py needs a docstring"


def _literals(path: Path) -> set[str]:
    """String constants of a module's code (docstrings left out)."""
    tree = ast.parse(path.read_text())
    docs = {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return {n.value for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs}


def test_no_family_or_perturbation_is_named_outside_its_own_module() -> None:
    """Family and perturbation names (and the native imputation) appear as strings only in the
    modules that define them (a registered component of that name); everything else reads
    facts, capabilities and registries."""
    from mmbench.registry import REGISTRIES

    owners: dict[str, set[str]] = {"native": {"mmbench.perturb.dropout"}}
    for kind in ("families", "perturbations", "recipes", "corruptions"):
        for entry in REGISTRIES[kind].entries():
            module = getattr(entry.obj, "__module__", None) or type(entry.obj).__module__
            if kind == "corruptions":
                module = entry.obj.fn.__module__
            owners.setdefault(entry.name, set()).add(module)
            for family in entry.meta.get("families", ()):  # a perturbation serving several families
                owners.setdefault(family, set()).add(module)
    watched = {n for n in owners if n in {e.name for k in ("families", "perturbations")
                                          for e in REGISTRIES[k].entries()} or n == "native"}
    offenders = []
    for module, path in MODULES.items():
        if module.startswith("mmbench.testing") or module == "mmbench":
            continue
        offenders += [f"{module}: '{name}'" for name in _literals(path) & watched if module not in owners[name]]
    assert not offenders, offenders


def test_registries_load_their_builtins_from_packages_above_them() -> None:
    """Each registry imports every module of one package on first lookup: no hand-kept list of
    modules; those run-time edges point from the bottom layer up to a layer that registers."""
    from mmbench.registry import REGISTRIES, builtin_modules

    source = PACKAGE.parent / "mmbench" / "registry.py"
    assert not [s for s in _literals(source) if s.count(".") >= 2 and s.startswith("mmbench.")], \
        "registry.py names modules by hand"
    for kind, registry in REGISTRIES.items():
        modules = builtin_modules(registry.package)
        assert modules, kind
        assert all(layer(m) < layer("mmbench.registry") for m in modules), (kind, registry.package)
        assert {m for m in MODULES if m.rpartition(".")[0] == registry.package
                and not m.rpartition(".")[2].startswith("_")} == set(modules)


def test_report_names_no_family_and_no_score() -> None:
    """report/ reads families and scores generically (score roles, family terms and hooks): no
    string in its code is a registered family's or score's name, and it imports no family module."""
    from mmbench.families.scoring import families, score_specs

    names = {f.name for f in families()} | {s.name for s in score_specs()}
    report = {m: p for m, p in MODULES.items() if m.startswith("mmbench.report")}
    named = {m: sorted(_literals(p) & names) for m, p in report.items() if _literals(p) & names}
    assert not named, named
    family_modules = {m for m in MODULES if m.startswith("mmbench.families.")} - {
        "mmbench.families.base", "mmbench.families.scoring"}
    reached = {m: sorted(imports(m) & family_modules) for m in report if imports(m) & family_modules}
    assert not reached, reached
