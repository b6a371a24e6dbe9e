"""One generic, typed registry plus the registry instances mmbench plugs into.

Modelled on timm's model registry (a decorator on a tiny factory, wildcard listing) and
lm-evaluation-harness's ``Registry`` (did-you-mean errors, entry-point loading). Built-in entries
live in the modules of one package per registry (``mmbench.models``, ...), every one of which is
imported on the first lookup (no hand-kept list: a new module registers by existing), so
``import mmbench`` stays cheap and has no side effects; third-party entries come from Python
entry points.
"""

from __future__ import annotations

import fnmatch
import importlib
import logging
import pkgutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from mmbench.errors import MMBenchError, did_you_mean
from mmbench.plugins import SKIPPED, entry_points, load_plugin, plugin_timeout, plugins_enabled, warn_skipped

log = logging.getLogger(__name__)

T = TypeVar("T")

@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered object with its name, where it came from and free-form metadata."""

    name: str
    obj: T
    source: str = "builtin"
    meta: dict[str, Any] = field(default_factory=dict)


#: one lock for every registry's first load (re-entrant: loading one registry's built-ins may
#: look up another), so that two threads' first lookups never see a half-loaded registry
_LOADING = threading.RLock()


class Registry(Generic[T]):
    """A named collection of objects of one kind (models, datasets, ...)."""

    def __init__(
        self,
        kind: str,
        package: str = "",
        entry_point_group: str | None = None,
    ) -> None:
        self.kind = kind
        #: the package whose modules hold the built-in entries (all imported on first lookup)
        self.package = package
        self._group = entry_point_group
        self._entries: dict[str, Entry[T]] = {}
        self._loaded = False
        self._loading = False

    # -- registration -------------------------------------------------------------------------
    def register(
        self, name: str, obj: T | None = None, *, source: str = "builtin", **meta: Any
    ) -> Any:
        """Register ``obj`` under ``name``; without ``obj``, return a decorator."""
        if obj is None:
            def decorator(target: T) -> T:
                self._add(Entry(name, target, source, dict(meta)))
                return target
            return decorator
        self._add(Entry(name, obj, source, dict(meta)))
        return obj

    def _add(self, entry: Entry[T]) -> None:
        if not entry.name or not entry.name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"invalid {self.kind} name {entry.name!r}: use letters, digits, _ and -")
        existing = self._entries.get(entry.name)
        if existing is not None and existing.obj is not entry.obj:
            raise MMBenchError(
                f"{self.kind} '{entry.name}' is registered twice ({existing.source} and "
                f"{entry.source}); rename one of them"
            )
        self._entries[entry.name] = entry

    def unregister(self, name: str) -> None:
        """Remove ``name`` (used by tests and by plugin authors replacing an entry)."""
        self._entries.pop(name, None)

    # -- lookup -------------------------------------------------------------------------------
    def get(self, name: str) -> T:
        return self.entry(name).obj

    def entry(self, name: str) -> Entry[T]:
        self._ensure_loaded()
        try:
            return self._entries[name]
        except KeyError:
            hint = did_you_mean(name, self._entries)
            raise MMBenchError(
                f"unknown {self.kind} '{name}'{hint}; run 'mmbench ls {self.kind}s' to see them all"
            ) from None

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        return name in self._entries

    def names(self, pattern: str | None = None) -> list[str]:
        """Sorted names, optionally filtered by a shell-style wildcard such as ``'*fusion'``."""
        self._ensure_loaded()
        names = sorted(self._entries)
        return fnmatch.filter(names, pattern) if pattern else names

    def entries(self, pattern: str | None = None) -> Iterator[Entry[T]]:
        for name in self.names(pattern):
            yield self._entries[name]

    # -- loading ------------------------------------------------------------------------------
    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        with _LOADING:  # another thread's first lookup waits here until the entries are in
            if self._loaded or self._loading:  # _loading: this thread, importing a built-in
                return
            self._loading = True
            try:
                if self._group and plugins_enabled():
                    entry_points(self._group)  # before the built-ins import torch
                for module in builtin_modules(self.package):
                    importlib.import_module(module)
                if self._group and plugins_enabled():
                    self._load_entry_points()
                self._loaded = True
            finally:
                self._loading = False

    def _load_entry_points(self) -> None:
        assert self._group is not None
        limit = plugin_timeout()
        for ep in entry_points(self._group):
            obj = load_plugin(ep, self.kind, limit)
            if obj is SKIPPED:
                continue
            source = f"plugin {ep.value}"
            try:
                self._add(Entry(ep.name, obj, source, dict(getattr(obj, "mmbench_meta", {}))))
            except Exception as exc:  # a name taken twice, an invalid one: this plugin only
                warn_skipped(self.kind, ep, exc)




def builtin_modules(package: str) -> list[str]:
    """Every module of ``package`` (not its sub-packages, not ``_private`` ones), sorted."""
    if not package:
        return []
    found = importlib.import_module(package).__path__
    return sorted(f"{package}.{m.name}" for m in pkgutil.iter_modules(found)
                  if not m.ispkg and not m.name.startswith("_"))


# Factories have signatures that depend on the kind; they are documented where they are used.
ModelFactory = Callable[..., Any]

MODELS: Registry[ModelFactory] = Registry("model", "mmbench.models", "mmbench.models")
DATASETS: Registry[Any] = Registry("dataset", "mmbench.data", "mmbench.datasets")
PERTURBATIONS: Registry[Any] = Registry("perturbation", "mmbench.perturb", "mmbench.perturbations")
CORRUPTIONS: Registry[Any] = Registry("corruption", "mmbench.perturb", "mmbench.corruptions")
METRICS: Registry[Any] = Registry("metric", "mmbench.metrics", "mmbench.metrics")
RECIPES: Registry[Any] = Registry("recipe", "mmbench.train", "mmbench.recipes")
FAMILIES: Registry[Any] = Registry("family", "mmbench.families", "mmbench.families")

REGISTRIES: dict[str, Registry[Any]] = {
    "models": MODELS,
    "datasets": DATASETS,
    "perturbations": PERTURBATIONS,
    "corruptions": CORRUPTIONS,
    "metrics": METRICS,
    "recipes": RECIPES,
    "families": FAMILIES,
}
