"""The source code a component's results depend on, as content hashes (part of cell keys).

A component (a model factory, a recipe, a perturbation) depends on more than the module that
defines it: a plugin's factory imports its helpers, a built-in model imports encoders and base
classes. :func:`code_versions` returns a hash of every such module:

- a plugin (anything outside mmbench): every Python module of the distribution that provides
  its top-level package, or of that package's folder when the distribution lists no sources
  (an editable or unpackaged install), so editing any file of a plugin retrains its models;
- and, for every component, the modules reachable by ``import`` statements (read from the
  source, function-level imports included) that belong to mmbench or to that same origin.

Nothing else is followed: the standard library and other third-party packages are versioned
in ``results.json``, not hashed. Hashes are cached per (file, size, modification time), so a
long-lived process sees edits.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

OWN = "mmbench"


def code_versions(*objects: Any, exclude: frozenset[str] = frozenset()) -> dict[str, str]:
    """Module name -> short source hash of every module the ``objects`` depend on.
    ``exclude``: modules of the origin that cannot affect them (a plugin's metric modules
    for a model) unless they are imported."""
    modules: set[str] = set()
    for obj in objects:
        name = getattr(obj, "__module__", None) or type(obj).__module__
        modules |= set(dependencies(name, exclude))
    return {m: file_hash(path) for m in sorted(modules) if (path := source_file(m)) is not None}


def dependencies(module: str, exclude: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """``module``, its origin's modules (a plugin's whole distribution or package, less
    ``exclude``) and what they import of mmbench or of that origin, transitively."""
    top = module.split(".")[0]
    origin = set(origin_modules(top)) - set(exclude) if top != OWN else set()
    todo, seen = [module, *sorted(origin)], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = source_file(name)
        if path is None:
            continue
        for base, names in imports_of(str(path), name):
            if _followed(base, top, origin):
                todo += [base, *(m for n in names if source_file(m := f"{base}.{n}") is not None)]
    return tuple(sorted(seen))


def _followed(module: str, top: str, origin: set[str]) -> bool:
    first = module.split(".")[0]
    return first == OWN or first == top or module in origin


@lru_cache(maxsize=None)
def origin_modules(top: str) -> tuple[str, ...]:
    """Every module of the distribution that provides top-level name ``top`` (all its
    top-level names), else of the package folder of ``top``."""
    names: set[str] = set()
    for dist_name in metadata.packages_distributions().get(top, []):
        try:
            files = metadata.distribution(dist_name).files or []
        except metadata.PackageNotFoundError:
            continue
        names |= {_module_name(Path(str(f))) for f in files if str(f).endswith(".py")}
    names.discard("")
    return tuple(sorted(names | set(_package_modules(top))))


def _module_name(relative: Path) -> str:
    """``pkg/sub/mod.py`` -> ``pkg.sub.mod`` (``__init__`` -> the package); '' for files
    outside importable locations (scripts, ``..`` paths)."""
    parts = list(relative.with_suffix("").parts)
    if not parts or any(p in ("..", "") or "-" in p or "." in p for p in parts):
        return ""
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _package_modules(top: str) -> tuple[str, ...]:
    path = source_file(top)
    if path is None or path.name != "__init__.py":
        return (top,) if path is not None else ()
    root = path.parent
    return tuple(sorted(
        ".".join((top, *p.relative_to(root).with_suffix("").parts)).removesuffix(".__init__")
        for p in root.rglob("*.py")
    ))


def source_file(module: str) -> Path | None:
    """The ``.py`` file of ``module`` (None for builtins, extensions, namespaces, unknowns)."""
    loaded = sys.modules.get(module)
    path = getattr(loaded, "__file__", None)
    if path is None:
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError, AttributeError):
            return None
        path = spec.origin if spec is not None else None
    return Path(path) if path and str(path).endswith(".py") and Path(path).is_file() else None


def imports_of(path: str, module: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(module, names) of the file's import statements, relative imports resolved:
    ``import a.b`` gives ``("a.b", ())``, ``from a import b, c`` gives ``("a", ("b", "c"))``
    (``a.b`` is a dependency too where it is a module)."""
    stat = Path(path).stat()
    return _imports(path, module, stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=None)
def _imports(path: str, module: str, size: int, mtime: int) -> tuple[tuple[str, tuple[str, ...]], ...]:
    try:
        tree = ast.parse(Path(path).read_bytes(), filename=path)
    except (SyntaxError, ValueError):
        return ()
    package = module if Path(path).name == "__init__.py" else module.rpartition(".")[0]
    found: set[tuple[str, tuple[str, ...]]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {(alias.name, ()) for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = _from_base(node, package)
            if base:
                found.add((base, tuple(alias.name for alias in node.names)))
    return tuple(sorted(found))


def _from_base(node: ast.ImportFrom, package: str) -> str:
    """The module of ``from A import ...``, relative levels resolved against ``package``."""
    if not node.level:
        return node.module or ""
    parts = package.split(".") if package else []
    parts = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
    return ".".join([*parts, *([node.module] if node.module else [])])


def file_hash(path: Path) -> str:
    stat = path.stat()
    return _file_hash(str(path), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=None)
def _file_hash(path: str, size: int, mtime: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def changed_modules(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Modules whose source differs between two :func:`code_versions` (added/removed too)."""
    return sorted(m for m in set(before) | set(after) if before.get(m) != after.get(m))
