"""Suites: YAML files validated into frozen dataclasses.

A suite names datasets, models, training recipes, perturbations, metrics and seeds. Components are
written either as a bare registry name or as ``{name, params, label}``. ``include:`` (a path or a
list of paths, relative to the including file) loads other suites first; the including file's
top-level keys replace theirs. Unknown keys, unknown names and wrongly typed values are one-line
:class:`~mmbench.errors.MMBenchError` s.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from mmbench.config.yamlfile import read_yaml
from mmbench.errors import MMBenchError, did_you_mean
from mmbench.text import LAYOUT, file_slug, refusal, slug_clash


def serves(metric: str, task: str) -> bool:
    """Whether registered ``metric`` is defined for ``task`` (a metric not registered: no)."""
    from mmbench.registry import METRICS

    return metric in METRICS and task in METRICS.get(metric).tasks


def scoring_metric(task: str, score_metric: str, metrics: Sequence[str]) -> str | None:
    """The metric a dataset of ``task`` is scored by: ``score_metric`` when it is defined for
    the task, else the first of ``metrics`` that is (None: no metric of the suite is)."""
    return next((m for m in (score_metric, *metrics) if serves(m, task)), None)


@dataclass(frozen=True)
class Component:
    """A registry name with its parameters and an optional display label."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    label: str | None = None
    #: perturbations only: the model names or labels it applies to (None: every model)
    models: tuple[str, ...] | None = None
    #: perturbations only: the dataset names or labels it applies to (None: every dataset)
    datasets: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"name": self.name, "params": dict(self.params), "label": self.label}
        for key in ("models", "datasets"):
            if getattr(self, key) is not None:
                out[key] = list(getattr(self, key))
        return out


@dataclass(frozen=True)
class EvalConfig:
    """How evaluation runs: ``batch_size`` rows per forward pass on the ``split``."""

    batch_size: int = 512
    split: str = "test"


def default_perturbations() -> tuple[Component, ...]:
    """The clean split only. Imported when needed: the perturbation modules import torch, and a
    suite's structure is checked without it, so that a mistake in the file is reported at once."""
    from mmbench.perturb.clean import CLEAN

    return (Component(CLEAN),)


@dataclass(frozen=True)
class Suite:
    name: str
    datasets: tuple[Component, ...]
    models: tuple[Component, ...]
    recipes: tuple[Component, ...] = (Component("standard"),)
    perturbations: tuple[Component, ...] = field(default_factory=default_perturbations)
    metrics: tuple[str, ...] = ("accuracy", "macro_f1")
    seeds: tuple[int, ...] = (0,)
    eval: EvalConfig = EvalConfig()
    description: str = ""
    #: the reference model (a model label) for corruption errors (mCE); empty: none
    baseline: str = ""
    #: the metric robustness scores, the composite and ``mmbench compare`` read; a dataset of
    #: another task is scored by the first of ``metrics`` defined for its task (:func:`scoring_metric`)
    score_metric: str = "accuracy"
    #: the folder of the suite file (relative data paths resolve against it); not a YAML key
    folder: str | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        comps = ("datasets", "models", "recipes", "perturbations")
        out: dict[str, Any] = {k: [c.to_dict() for c in getattr(self, k)] for k in comps}
        out.update(name=self.name, description=self.description, metrics=list(self.metrics),
                   seeds=list(self.seeds), eval=dict(self.eval.__dict__), baseline=self.baseline,
                   score_metric=self.score_metric)
        return out

    def with_seeds(self, seeds: tuple[int, ...]) -> Suite:
        """The suite with other training seeds (``--seeds``), checked like the suite's own."""
        return dataclasses.replace(self, seeds=_seeds(list(seeds), "--seeds"))


def label_of(component: Component) -> str:
    """What a component is called in results: its label, else its registry name."""
    return component.label or component.name


#: the most suite files one suite may read through ``include:`` (each inclusion counts)
MAX_INCLUDE_READS = 64
TOP_KEYS = tuple(f.name for f in fields(Suite) if f.name != "folder") + ("include",)
COMPONENT_KEYS = ("name", "params", "label", "models", "datasets")


def load_suite(path: str | Path) -> Suite:
    """Read, merge includes, and validate the structure of a suite file."""
    path = Path(path)
    raw = _read_with_includes(path, ())
    raw.setdefault("name", path.stem)
    return dataclasses.replace(parse_suite(raw, str(path)), folder=str(path.resolve().parent))


def _read_yaml(path: Path) -> dict[str, Any]:
    if path.exists() and not path.is_file():
        raise MMBenchError(f"{path} is not a regular file (a folder, pipe or device); give a suite YAML file")
    if not path.is_file():
        raise MMBenchError(f"suite file not found: {path}; check the path (suites live in suites/)")
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise MMBenchError(f"{path}: a suite must be a YAML mapping (key: value lines)")
    return data


def _read_with_includes(path: Path, chain: tuple[Path, ...], reads: list[Path] | None = None) -> dict[str, Any]:
    """The suite at ``path`` merged over its includes; ``reads``: every file read so far for
    this suite (at most :data:`MAX_INCLUDE_READS`, so a small include graph cannot expand)."""
    resolved = path.resolve()
    if resolved in chain:
        raise MMBenchError(f"{path}: include cycle ({' -> '.join(p.name for p in chain + (resolved,))})")
    reads = [] if reads is None else reads
    reads.append(resolved)
    if len(reads) > MAX_INCLUDE_READS:
        raise MMBenchError(f"{chain[0] if chain else path}: its includes read more than {MAX_INCLUDE_READS} "
                           "files (a file included many times counts each time); include each file once")
    data = _read_yaml(path)
    includes = data.pop("include", [])
    includes = [includes] if isinstance(includes, str) else includes
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        raise MMBenchError(f"{path}: 'include' must be a path or a list of paths")
    merged: dict[str, Any] = {}
    for inc in includes:
        merged.update(_read_with_includes(path.parent / inc, chain + (resolved,), reads))
    merged.update(data)
    return merged


def parse_suite(raw: dict[str, Any], source: str = "suite") -> Suite:
    """Validate a suite mapping (after includes) into a :class:`Suite`."""
    _check_text(raw, source, "")
    for key in raw:
        if key not in TOP_KEYS:
            raise MMBenchError(
                f"{source}: unknown key '{key}'{did_you_mean(key, TOP_KEYS)}; "
                f"allowed keys: {', '.join(TOP_KEYS)}"
            )
    for required in ("datasets", "models"):
        if not raw.get(required):
            raise MMBenchError(f"{source}: '{required}' is missing or empty; list at least one")
    defaults = {f.name: f.default for f in fields(Suite)}
    given = {"perturbations": components(raw["perturbations"], "perturbations", source)} if (
        "perturbations" in raw) else {}  # else the default, looked up after every check (torch-free)
    suite = Suite(
        name=_typed(raw, "name", str, source),
        description=_typed(raw, "description", str, source, ""),
        datasets=components(raw["datasets"], "datasets", source),
        models=components(raw["models"], "models", source),
        recipes=components(raw.get("recipes", ["standard"]), "recipes", source),
        metrics=tuple(_str_list(raw.get("metrics", list(defaults["metrics"])), "metrics", source)),
        seeds=_seeds(raw.get("seeds", list(defaults["seeds"])), source),
        eval=_eval_config(raw.get("eval", {}), source),
        baseline=_typed(raw, "baseline", str, source, ""),
        score_metric=_typed(raw, "score_metric", str, source, "accuracy"),
        **given,
    )
    _check_file_names(suite, source)
    return suite


def _check_file_names(suite: Suite, source: str) -> None:
    """Dataset, model and recipe labels name plot files: two that map to one file name (``d 1``
    and ``d_1``) would show one's figures as the other's."""
    for key in ("datasets", "models", "recipes"):
        clash = slug_clash([label_of(c) for c in getattr(suite, key)])
        if clash:
            raise MMBenchError(f"{source}: {key} '{clash[0]}' and '{clash[1]}' map to the same file name "
                               f"'{file_slug(clash[0])}'; give one a label that differs in a letter or digit")


def _check_text(value: Any, source: str, where: str) -> None:
    """Every name, label and value of the suite is free of control characters (line breaks and
    tabs only in its description): they would reach terminals, tables and file names."""
    if isinstance(value, str):
        problem = refusal(f"{source}: {where or 'a key'}", value, LAYOUT if where == "description" else frozenset())
        if problem:
            raise MMBenchError(problem)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, source, f"{where}.{key}" if where else "a key")
            _check_text(item, source, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_text(item, source, f"{where}[{i}]")


def _typed(raw: dict[str, Any], key: str, kind: type, source: str, default: Any = None) -> Any:
    value = raw.get(key, default)
    if not isinstance(value, kind):
        raise MMBenchError(f"{source}: '{key}' must be {kind.__name__}, got {type(value).__name__}")
    return value


def _str_list(value: Any, key: str, source: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise MMBenchError(f"{source}: '{key}' must be a non-empty list of names")
    return value


def _seeds(value: Any, source: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    ok = isinstance(value, list) and value and all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value
    )
    if not ok or len(set(value)) != len(value):
        raise MMBenchError(f"{source}: 'seeds' must be a list of distinct non-negative integers, got "
                           f"{str(value)[:60]}")
    return tuple(value)


def _eval_config(value: Any, source: str) -> EvalConfig:
    from mmbench.config.params import build_config

    if not isinstance(value, dict):
        raise MMBenchError(f"{source}: 'eval' must be a mapping (batch_size, split)")
    cfg = build_config(EvalConfig, value, f"{source}: eval")
    if cfg.batch_size < 1 or cfg.split not in ("val", "test"):
        raise MMBenchError(f"{source}: eval needs batch_size >= 1 and split 'val' or 'test'")
    return cfg


def components(value: Any, key: str, source: str) -> tuple[Component, ...]:
    """Entries of a component list (names or ``{name, params, label, ...}`` mappings)."""
    if not isinstance(value, list) or not value:
        raise MMBenchError(f"{source}: '{key}' must be a non-empty list")
    return tuple(_component(item, key, source) for item in value)


def _component(item: Any, key: str, source: str) -> Component:
    if isinstance(item, str):
        return Component(item)
    if not isinstance(item, dict):
        raise MMBenchError(f"{source}: each entry of '{key}' must be a name or a mapping with 'name'")
    for k in item:
        if k not in COMPONENT_KEYS:
            raise MMBenchError(
                f"{source}: {key} entry {item.get('name', '?')!r}: unknown key '{k}'"
                f"{did_you_mean(k, COMPONENT_KEYS)}; allowed: {', '.join(COMPONENT_KEYS)}"
            )
    name, params, label = item.get("name"), item.get("params", {}) or {}, item.get("label")
    if not isinstance(name, str) or not isinstance(params, dict):
        raise MMBenchError(f"{source}: {key} entry needs a string 'name' and a mapping 'params'")
    if label is not None and not isinstance(label, str):
        raise MMBenchError(f"{source}: {key} entry '{name}': 'label' must be a string")
    only = {k: _restriction(item, k, key, name, source) for k in ("models", "datasets")}
    return Component(name, dict(params), label, **only)


#: which entries may be restricted to some models / datasets (a list of their names or labels)
RESTRICTABLE = {"models": ("perturbations",), "datasets": ("perturbations", "models")}


def _restriction(item: dict[str, Any], what: str, key: str, name: str, source: str) -> tuple[str, ...] | None:
    """A perturbation's ``models`` / ``datasets`` list, or a model's ``datasets`` list (names or
    labels it applies to)."""
    value = item.get(what)
    allowed = RESTRICTABLE[what]
    if value is not None and (key not in allowed or not isinstance(value, list)
                              or not all(isinstance(m, str) for m in value)):
        raise MMBenchError(f"{source}: {key} entry '{name}': '{what}' is a list of {what[:-1]} names, "
                           f"allowed on {' and '.join(allowed)} only")
    return tuple(value) if value is not None else None
