"""Planning: a validated suite becomes training cells and the evaluation cells that need them.

Every cell carries a content-hash key of everything that determines its result (configs, seeds,
data fingerprint, source versions of the code involved); the checkpoint cache rests on it.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from mmbench.bounds import MAX_CELLS, check_size
from mmbench.config.build import build_model
from mmbench.config.params import build_config
from mmbench.config.suite import Component, Suite, label_of, scoring_metric, serves
from mmbench.data.base import MultimodalDataset
from mmbench.errors import MMBenchError, did_you_mean, first_line
from mmbench.hashing import content_hash
from mmbench.models import base as model_base
from mmbench.models import encoders
from mmbench.perturb.base import Perturbation
from mmbench.plan.sources import code_versions
from mmbench.registry import METRICS, MODELS, PERTURBATIONS, RECIPES
from mmbench.store.rows import BASE_COLUMNS, MEASURE_COLUMNS
from mmbench.text import escaped, refusal
from mmbench.version import __version__

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainCell:
    """Train one model on one dataset with one recipe and seed."""

    dataset: str
    model: str
    recipe: str
    seed: int
    model_component: Component
    recipe_component: Component
    recipe_config: Any
    key: str
    seed_key: str  # the key without code versions: seeds derive from it, so refactors keep results
    #: module -> source hash of the code the result depends on (see engine/sources.py)
    code: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class EvalCell:
    """Evaluate a trained model under one perturbation."""

    train: TrainCell
    perturbation: Perturbation
    key: str
    seed_key: str
    #: dataset + perturbation + evaluation settings, without the model: the evaluation seed
    #: derives from it, so every model of a suite sees the same perturbation noise
    inputs_key: str = ""


@dataclass(frozen=True)
class Plan:
    suite: Suite
    train_cells: tuple[TrainCell, ...]
    eval_cells: tuple[EvalCell, ...]
    #: dataset label -> model label -> the modalities the model takes (cells that perturb none
    #: of them are reported as "not read", never as robustness)
    reads: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)
    #: dataset label -> its modality names
    modalities: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def evals_for(self, cell: TrainCell) -> Iterator[EvalCell]:
        return (e for e in self.eval_cells if e.train.key == cell.key)


def expand_models(suite: Suite, data: MultimodalDataset, dataset: Component | None = None) -> list[Component]:
    """Models as trained on ``data`` (those whose ``datasets`` include ``dataset``, when given):
    per-modality models become one model per modality."""
    out = []
    for comp in suite.models:
        if dataset is not None and not applies_to_dataset(comp, dataset):
            continue
        entry = MODELS.entry(comp.name)
        if entry.meta.get("per_modality") and "modality" not in comp.params:
            for mod in data.modality_names:
                out.append(Component(comp.name, {**comp.params, "modality": mod},
                                     f"{label_of(comp)}[{mod}]"))
        else:
            out.append(Component(comp.name, dict(comp.params), label_of(comp)))
    return out


def train_keys(dataset: Component, fingerprint: str, model: Component, recipe: Component,
               recipe_config: Any, seed: int, amp: bool = False) -> tuple[str, str, dict[str, str]]:
    """(cache key, seed key, code versions): the cache key adds the source hashes of the code
    involved (the model's and the recipe's modules, a plugin's whole package, and what they
    import of mmbench; see engine/sources.py)."""
    factory, recipe_cls = MODELS.get(model.name), RECIPES.get(recipe.name)
    semantic = {
        "dataset": {"name": dataset.name, "params": dataset.params, "fingerprint": fingerprint},
        "model": {"name": model.name, "params": model.params},
        "recipe": {"name": recipe.name, "config": _keyed_config(recipe_config)},
        "seed": seed,
        **({"amp": True} if amp and recipe_cls.amp_safe else {}),  # absent: keys of float32 runs
    }
    code = code_versions(factory, recipe_cls, model_base.FusionModel, encoders.build_encoder,
                         exclude=metric_modules())
    return content_hash({**semantic, "code": code, "mmbench": __version__}), content_hash(semantic), code


def make_plan(suite: Suite, datasets: dict[str, MultimodalDataset], amp: bool = False) -> Plan:
    """Expand a checked ``suite`` (:func:`~mmbench.config.checks.check_suite`, which
    :func:`~mmbench.runner.prepare` runs before loading the data) over loaded ``datasets``
    (label -> data) into cells (``amp``: mixed precision for training and clean evaluation,
    part of the keys)."""
    train_cells: list[TrainCell] = []
    eval_cells: list[EvalCell] = []
    codes: dict[type, dict[str, str]] = {}  # perturbation type -> its code versions
    reads: dict[str, dict[str, tuple[str, ...]]] = {}
    planned = 0
    for ds_comp in suite.datasets:
        data = datasets[label_of(ds_comp)]
        scored_by = check_metrics_fit(suite, data, label_of(ds_comp))
        recipes = [(r, RECIPES.get(r.name), recipe_config(r, suite, scored_by)) for r in suite.recipes]
        fingerprint = data.fingerprint()
        expanded = [(comp, expand_perturbation(comp, data)) for comp in suite.perturbations
                    if applies_to_dataset(comp, ds_comp)]
        check_facts([p for _, ps in expanded for p in ps])
        for model in expand_models(suite, data, ds_comp):
            perturbations = [p for comp, ps in expanded if applies_to(comp, model) for p in ps]
            planned += len(perturbations) * len(recipes) * len(suite.seeds)
            check_size(planned, MAX_CELLS, "the suite's evaluation cells (datasets x models x recipes x seeds x "
                       "cases)", "split it into several suites or list fewer values")
            taken = check_model_fits(model, data, label_of(ds_comp))
            reads.setdefault(label_of(ds_comp), {})[label_of(model)] = taken
            check_model_supports(model, perturbations, recipes)
            for recipe, recipe_cls, config in recipes:
                recipe_cls().check(config, data)
                for seed in suite.seeds:
                    key, seed_key, code = train_keys(ds_comp, fingerprint, model, recipe, config, seed, amp)
                    cell = TrainCell(label_of(ds_comp), label_of(model), label_of(recipe), seed,
                                     model, recipe, config, key, seed_key, code)
                    train_cells.append(cell)
                    eval_cells.extend(_eval_cells(cell, perturbations, suite, fingerprint, amp, codes))
    _check_baseline(suite, train_cells)
    unique = {c.key: c for c in reversed(eval_cells)}  # two entries asking for one cell: once
    return Plan(suite, tuple(train_cells), tuple(c for c in eval_cells if unique.get(c.key) is c), reads,
                {label: d.modality_names for label, d in datasets.items()})


#: recipe settings added after keys were first computed: left out of a key at their default, so
#: the seeds (and results) of earlier suites stay what they were
LATER_DEFAULTS = {"regression_loss": "l1"}


def _keyed_config(config: Any) -> dict[str, Any]:
    """The recipe config as keys hash it (:data:`LATER_DEFAULTS` left out at their default)."""
    return {k: v for k, v in dataclasses.asdict(config).items() if LATER_DEFAULTS.get(k, object()) != v}


def check_metrics_fit(suite: Suite, data: MultimodalDataset, dataset: str) -> str:
    """The metric ``dataset`` is scored by (:func:`~mmbench.config.suite.scoring_metric`); a
    suite with no metric defined for the dataset's task is one line naming metrics that are.
    Metrics of other tasks are simply not computed on it."""
    chosen = scoring_metric(data.task, suite.score_metric, suite.metrics)
    if chosen is None:
        fit = [m for m in METRICS.names() if serves(m, data.task)]
        raise MMBenchError(f"no metric of the suite is defined for the {data.task} task of dataset '{dataset}' "
                           f"(metrics: {', '.join(suite.metrics)}); list some under 'metrics': {', '.join(fit)}")
    return chosen


def recipe_config(recipe: Component, suite: Suite, score_metric: str | None = None) -> Any:
    """The recipe's config; an ``early_stop`` left empty becomes the metric the dataset is
    scored by (``score_metric``, default the suite's), so training selects the epoch by the
    metric the boards rank."""
    config = build_config(RECIPES.get(recipe.name).config_type, recipe.params, f"recipe '{label_of(recipe)}'")
    if getattr(config, "early_stop", None) == "":
        config = dataclasses.replace(config, early_stop=score_metric or suite.score_metric)
    return config


def _check_baseline(suite: Suite, cells: list[TrainCell]) -> None:
    labels = list(dict.fromkeys(c.model for c in cells))
    if suite.baseline and suite.baseline not in labels:
        raise MMBenchError(f"baseline '{suite.baseline}' is not a model of this suite"
                           f"{did_you_mean(suite.baseline, labels)}; use one of {', '.join(labels)}")


def expand_perturbation(comp: Component, data: MultimodalDataset) -> list[Perturbation]:
    """Call the factory with what the harness provides (``train`` only if it asks for it)."""
    factory = PERTURBATIONS.get(comp.name)
    provided: dict[str, Any] = {"modalities": data.modalities, "n_classes": data.n_classes}
    wants = inspect.signature(factory).parameters
    if "train" in wants:
        provided["train"] = data.train
    if "groups" in wants:
        provided["groups"] = sorted(data.groups)
    if "task" in wants:
        provided["task"] = data.task
    try:
        return list(factory(**provided, **comp.params))
    except MMBenchError:
        raise
    except Exception as exc:  # plugin code: one line naming the perturbation
        raise MMBenchError(f"perturbation '{label_of(comp)}': its factory raised {type(exc).__name__}: "
                           f"{first_line(exc)}") from None


def applies_to(comp: Component, model: Component) -> bool:
    """Whether perturbation ``comp`` runs on ``model`` (its ``models`` list, by name or label)."""
    return comp.models is None or model.name in comp.models or label_of(model) in comp.models


def applies_to_dataset(comp: Component, dataset: Component) -> bool:
    """Whether perturbation or model ``comp`` runs on ``dataset`` (its ``datasets`` list holds
    labels; a dataset without a label is labelled by its name)."""
    return comp.datasets is None or label_of(dataset) in comp.datasets


def check_model_fits(model: Component, data: MultimodalDataset, dataset: str) -> tuple[str, ...]:
    """Build the model for ``data`` once (global RNG untouched): a model whose modality names,
    kinds or parameters do not fit the dataset is a one-line error naming both. Returns the
    modalities it takes (:func:`warn_unread` names the others)."""
    with torch.random.fork_rng(devices=[]):
        built = build_model(model.name, data.modalities, data.n_classes, model.params, label_of(model),
                            f"dataset '{dataset}'")
    return tuple(getattr(built, "input_modalities", data.modality_names))


def warn_unread(plan: Plan) -> list[str]:
    """One warning line per model and dataset naming the modalities the model does not take
    (a per-modality baseline such as ``unimodal`` reads one by design and is not named)."""
    lines = []
    suite_models = {label_of(m): m.name for m in plan.suite.models}
    for dataset, models in plan.reads.items():
        names = plan.modalities.get(dataset, ())
        for model, taken in models.items():
            unread = [m for m in names if m not in taken]
            base = suite_models.get(model, model.split("[")[0])
            if unread and not (base in MODELS and MODELS.entry(base).meta.get("per_modality")):
                lines.append(f"model '{model}' does not take modality {', '.join(repr(m) for m in unread)} of "
                             f"dataset '{dataset}': cells that perturb only {'it' if len(unread) == 1 else 'them'} "
                             "are reported as 'not read', not as robustness")
    for line in lines:
        log.warning("%s", line)
    return lines


def check_model_supports(model: Component, perturbations: list[Perturbation],
                         recipes: list[tuple[Component, Any, Any]]) -> None:
    """A perturbation or recipe that needs native missing-modality handling needs a model that
    handles missing inputs itself (registered ``handles_missing=True``)."""
    wants = [p.name for p in perturbations if p.needs_native_missing]
    wants += [f"recipe {label_of(r)}" for r, cls, config in recipes if cls().needs_native_missing(config)]
    if wants and not MODELS.entry(model.name).meta.get("handles_missing"):
        able = [e.name for e in MODELS.entries() if e.meta.get("handles_missing")]
        raise MMBenchError(
            f"'{wants[0]}' asks model '{label_of(model)}' to handle missing modalities natively, "
            f"which it does not; use zeros/mean/noise imputation for it (native: {', '.join(able)})"
        )


def metric_modules() -> frozenset[str]:
    """Modules that define plugin metrics: metrics are computed from stored outcomes, so
    editing one never retrains a model of the same package (unless the model imports it)."""
    return frozenset(e.obj.__module__ for e in METRICS.entries() if e.source != "builtin")


def keeps_full_probs(suite: Suite) -> bool:
    """Whether evaluation cells keep every class's probability (a metric of the suite needs
    them); metric values themselves are computed from stored outcomes, not in the cells."""
    return any(METRICS.get(name).needs_probs for name in suite.metrics)


def check_facts(perturbations: list[Perturbation]) -> None:
    """A perturbation's facts become columns beside the common ones, so they must not reuse a
    common column's name (a fact ``n`` would overwrite the row count)."""
    reserved = {*BASE_COLUMNS, *MEASURE_COLUMNS, "cell"}
    for p in perturbations:
        facts = p.facts()
        clash = sorted(reserved & set(facts))
        if clash:
            raise MMBenchError(f"perturbation '{p.name}' reports a fact named '{clash[0]}', which is a common "
                               f"column of every row; rename it in its facts()")
        texts = [("name", p.name), ("target", p.target), *((f"fact {k!r}", k) for k in facts),
                 *((f"fact {k!r}", v) for k, v in facts.items() if isinstance(v, str))]
        for what, text in texts:
            problem = refusal(f"perturbation '{escaped(p.name)}': its {what}", str(text))
            if problem:
                raise MMBenchError(problem)


def _eval_cells(cell: TrainCell, perturbations: list[Perturbation], suite: Suite,
                fingerprint: str, amp: bool, codes: dict[type, dict[str, str]]) -> list[EvalCell]:
    cells = []
    for p in perturbations:
        code = codes.setdefault(type(p), code_versions(type(p), exclude=metric_modules()))
        semantic = {"train": cell.seed_key, "perturbation": repr(p),
                    "outcomes": "full" if keeps_full_probs(suite) else "true_class",
                    "eval": dataclasses.asdict(suite.eval),
                    **({"amp": True} if amp and p.amp_safe else {})}
        key = content_hash({**semantic, "train": cell.key, "code": code})
        inputs = {"data": fingerprint, "perturbation": repr(p), "eval": dataclasses.asdict(suite.eval)}
        cells.append(EvalCell(cell, p, key, content_hash(semantic), content_hash(inputs)))
    return cells
