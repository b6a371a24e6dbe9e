"""Checking a suite against the code, before any data is loaded: every component name against its
registry, every parameter against its factory's signature or recipe's config dataclass, metrics,
unique labels, and the ``datasets``/``models`` restrictions of perturbations. (What needs the
data, e.g. whether a model fits a dataset's modalities, is checked while planning, and each
model's first forward pass by the probe.)"""

from __future__ import annotations

from mmbench.bounds import check_distinct
from mmbench.config.params import DATASET_HARNESS_ARGS, HARNESS_ARGS, build_config, check_params
from mmbench.config.suite import Component, Suite, label_of
from mmbench.errors import MMBenchError, did_you_mean
from mmbench.hashing import content_hash
from mmbench.registry import DATASETS, METRICS, MODELS, PERTURBATIONS, RECIPES


def check_suite(suite: Suite) -> None:
    """Check every name against its registry and every parameter against its target."""
    for kind, registry, items, reserved in (
        ("dataset", DATASETS, suite.datasets, DATASET_HARNESS_ARGS),
        ("model", MODELS, suite.models, HARNESS_ARGS),
        ("perturbation", PERTURBATIONS, suite.perturbations, HARNESS_ARGS),
    ):
        for comp in items:
            check_params(registry.get(comp.name), comp.params, f"{kind} '{label_of(comp)}'", reserved)
    for comp in suite.recipes:
        build_config(RECIPES.get(comp.name).config_type, comp.params, f"recipe '{label_of(comp)}'")
    for name in (*suite.metrics, suite.score_metric):
        METRICS.get(name)
    check_distinct(list(suite.metrics), f"{suite.name}: 'metrics'")
    for kind in ("datasets", "models", "recipes", "perturbations"):
        _check_unique(getattr(suite, kind), kind, suite.name)
    _check_restrictions(suite)


def _check_unique(components: tuple[Component, ...], kind: str, suite: str) -> None:
    """Labels are unique, and no component appears twice under two labels (it would be the same
    cells twice). Linear in the number of components."""
    labels: dict[str, Component] = {}
    same: dict[str, str] = {}
    for comp in components:
        label = label_of(comp)
        if label in labels:
            raise MMBenchError(f"{suite}: {kind} '{label[:40]}' appears twice; give each a distinct 'label'")
        labels[label] = comp
        identity = content_hash([comp.name, comp.params, comp.models, comp.datasets])
        if identity in same:
            raise MMBenchError(f"{suite}: {kind} '{same[identity][:40]}' and '{label[:40]}' are the same "
                               f"{comp.name} with the same parameters; keep one")
        same[identity] = label


def _check_restrictions(suite: Suite) -> None:
    """A model's or perturbation's ``datasets`` must name datasets of the suite and a
    perturbation's ``models`` models of the suite (by name or label)."""
    labels = [label_of(d) for d in suite.datasets]
    models = {name for m in suite.models for name in (m.name, label_of(m))}
    for comp in suite.models:
        for name in comp.datasets or ():
            if name not in labels:
                raise MMBenchError(f"model '{label_of(comp)}': unknown dataset '{name[:40]}' in 'datasets'"
                                   f"{did_you_mean(name, labels)}; the suite's datasets are {', '.join(labels)}")
    for comp in suite.perturbations:
        for name in comp.datasets or ():
            if name not in labels:
                raise MMBenchError(f"perturbation '{label_of(comp)}': unknown dataset '{name[:40]}' in 'datasets'"
                                   f"{did_you_mean(name, labels)}; the suite's datasets are {', '.join(labels)}")
        for name in comp.models or ():
            if name not in models and not _expanded(name, suite):
                raise MMBenchError(f"perturbation '{label_of(comp)}': unknown model '{name[:40]}' in 'models'"
                                   f"{did_you_mean(name, sorted(models))}; the suite's models are "
                                   f"{', '.join(sorted(models))}")


def _expanded(name: str, suite: Suite) -> bool:
    """A per-modality model's expanded label, e.g. ``unimodal[pix]``."""
    base = name.split("[", 1)[0]
    return name.endswith("]") and any(label_of(m) == base for m in suite.models)
