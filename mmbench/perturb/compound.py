"""``compound``: perturbations applied in stages, each to the previous stage's output.

Each stage is any stageable registered perturbation (``missing``, ``adversarial``, ``shift``,
a plugin's), expanded by its own factory; a stage with several cases multiplies the compound's
cases. Stage i runs with the seed ``derive_seed(seed, "stage", i)`` and sees stage i-1's output,
so an attack after a ``missing`` stage attacks the imputed batch and its budget is measured from
that batch. A later stage never touches a modality an earlier ``missing`` stage removed: a target
named explicitly is an error, an ``all`` target is restricted to the remaining modalities
(relabelled ``a+b``), and an ``each`` case on a removed modality is skipped.

Rows: ``family: compound``, ``perturbation`` = the stage names joined by ``>``
(``missing-mean>pgd-Linf``), ``target`` = every modality a stage may touch (``a+b``, ``all``),
``severity`` = the last stage's; the columns ``stages`` and, per stage i, ``stage{i}_family``,
``stage{i}_perturbation``, ``stage{i}_target``, ``stage{i}_severity``, ``stage{i}_key`` (a hash of
the stage's full settings, for pairing) and the stage's own facts prefixed ``stage{i}_``
(``stage1_kept``, ``stage2_attack``, ...). Every factory here also emits each stage alone (a
one-stage compound on the same rows, ``stages: 1``), which the family compares the compound with.

``missing_then_attack`` and ``shift_then_attack`` are shorthand grids built from the same stages.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from torch import Tensor, nn

from mmbench.bounds import MAX_CASES, PositiveInt, check_distinct, check_size
from mmbench.data.base import Batch, ModalitySpec, Split
from mmbench.errors import MMBenchError, did_you_mean, first_line
from mmbench.hashing import content_hash, derive_seed
from mmbench.data.tasks import CLASSIFICATION
from mmbench.perturb.adversarial import ADVERSARIAL, EACH, Attack
from mmbench.perturb.base import ALL, Perturbation
from mmbench.perturb.corruptions import SEVERITIES
from mmbench.perturb.dropout import IMPUTATIONS, MISSING, NONE, Missing
from mmbench.perturb.shift import SHIFT, Shift
from mmbench.registry import CORRUPTIONS, PERTURBATIONS

COMPOUND = "compound"
KINDS = ("image", "sequence", "vector", "tokens")
#: what the harness passes to a stage's factory itself (never a stage parameter)
PROVIDED = frozenset({"modalities", "n_classes", "num_classes", "train", "groups", "task"})


@dataclass(frozen=True)
class Compound(Perturbation):
    """``stages`` applied in order, each to the previous one's output."""

    stages: tuple[Perturbation, ...] = ()

    stageable = False  # compounds do not nest: list the stages in one compound

    @property
    def needs_native_missing(self) -> bool:
        return any(s.needs_native_missing for s in self.stages)

    def facts(self) -> dict[str, Any]:
        """``stages`` and, per stage i, its family, name, target, severity, key and own facts
        (those with a value), each prefixed ``stage{i}_``."""
        out: dict[str, Any] = {"stages": len(self.stages)}
        for i, stage in enumerate(self.stages, start=1):
            own = {"family": stage.family, "perturbation": stage.name, "target": stage.target,
                   "severity": float(stage.severity), "key": stage_key(stage),
                   **{k: v for k, v in stage.facts().items() if v not in ("", None)}}
            out.update({f"stage{i}_{k}": v for k, v in own.items()})
        return out

    def apply(self, model: nn.Module, batch: Batch, labels: Tensor, seed: int) -> dict[str, Tensor]:
        out = dict(batch)
        for i, stage in enumerate(self.stages, start=1):
            out = stage.apply(model, out, labels, derive_seed(seed, "stage", i))
        return out


def stage_key(stage: Perturbation) -> str:
    """A short hash of everything that defines a stage (its settings, not its fill values)."""
    return content_hash(repr(stage))[:16]


def touched(case: Perturbation, names: Sequence[str]) -> tuple[str, ...]:
    """The modalities ``case`` may change, in dataset order."""
    if isinstance(case, (Attack, Shift)):
        own = {s.name for s in case.specs}
        return tuple(n for n in names if n in own)
    if case.target == ALL:
        return tuple(names)
    parts = set(case.target.split("+"))
    return tuple(n for n in names if n in parts)


def compose(stages: Sequence[Perturbation], names: Sequence[str], max_rows: int | None = None) -> Compound:
    """One compound of ``stages`` (``max_rows``: else the smallest of the stages')."""
    reach = {n for s in stages for n in touched(s, names)}
    target = ALL if reach == set(names) else "+".join(n for n in names if n in reach) or NONE
    limits = [s.max_rows for s in stages if s.max_rows is not None]
    rows = max_rows if max_rows is not None else min(limits, default=None)
    return Compound(family=COMPOUND, name=">".join(s.name for s in stages), target=target,
                    severity=float(stages[-1].severity), max_rows=rows, draws=max(s.draws for s in stages),
                    stages=tuple(replace(s, max_rows=None) for s in stages))


@dataclass(frozen=True)
class Harness:
    """What the harness gives a factory: the dataset's modalities, class count, training split,
    held-out groups and task; passed on to each stage's factory as it asks."""

    modalities: Sequence[ModalitySpec]
    n_classes: int
    train: Split | None = None
    groups: Sequence[str] = ()
    task: str = CLASSIFICATION

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.modalities]

    def call(self, factory: Any, params: dict[str, Any]) -> list[Perturbation]:
        wants = inspect.signature(factory).parameters
        given = {"modalities": self.modalities, "n_classes": self.n_classes}
        given.update({k: getattr(self, k) for k in ("train", "groups", "task") if k in wants})
        return list(factory(**given, **params))


def build(stages: Any, harness: Harness, max_rows: int | None, what: str) -> list[Compound]:
    """Every compound of the stages' cases (skipping the combinations where a stage would have
    nothing left to touch); an empty list when none is left."""
    if not isinstance(stages, list) or len(stages) < 2:
        raise MMBenchError(f"{what}: 'stages' must list at least two stages, each {{name, params}}, "
                           "e.g. [{name: missing, ...}, {name: adversarial, ...}]")
    combos: list[tuple[Perturbation, ...]] = [()]
    for i, stage in enumerate(stages, start=1):
        name, params = _entry(stage, i, what)
        cases = _expand(name, params, harness, i, what)
        named = {t for t in params.get("targets") or () if isinstance(t, str) and t not in (EACH, ALL)}
        check_size(len(combos) * len(cases), MAX_CASES, f"{what}: the product of stages 1-{i}'s cases",
                   "list fewer values in its stages")
        combos = [(*combo, fitted) for combo in combos for case in cases
                  if (fitted := _fit(case, _gone(combo, harness.names), named, harness.names, i, what)) is not None]
    return [compose(combo, harness.names, max_rows) for combo in combos]


def with_stages_alone(compounds: Sequence[Compound], names: Sequence[str]) -> list[Perturbation]:
    """The compounds, then each of their stages alone on the same rows; each case once."""
    alone = [compose((stage,), names, c.max_rows) for c in compounds for stage in c.stages]
    return list({repr(p): p for p in [*compounds, *alone]}.values())


def _entry(stage: Any, i: int, what: str) -> tuple[str, dict[str, Any]]:
    if not isinstance(stage, dict) or not isinstance(stage.get("name"), str) or set(stage) - {"name", "params"}:
        raise MMBenchError(f"{what}: stage {i} must be a mapping {{name, params}} naming a perturbation, "
                           f"got {str(stage)[:60]!r}")
    params = stage.get("params") or {}
    if not isinstance(params, dict):
        raise MMBenchError(f"{what}: stage {i} ({stage['name']}): 'params' must be a mapping of parameter: value")
    return stage["name"], params


def _expand(name: str, params: dict[str, Any], harness: Harness, i: int, what: str) -> list[Perturbation]:
    """The stage's cases from its own factory, each checked to be stageable."""
    where = f"{what}: stage {i} ({name})"
    try:
        factory = PERTURBATIONS.get(name)
    except MMBenchError as exc:
        raise MMBenchError(f"{what}: stage {i}: {exc}") from None
    _check_params(factory, params, where)
    try:
        cases = harness.call(factory, params)
    except MMBenchError as exc:
        raise MMBenchError(f"{where}: {exc}") from None
    except Exception as exc:  # plugin code: one line naming the stage
        raise MMBenchError(f"{where}: its factory raised {type(exc).__name__}: {first_line(exc)}") from None
    for case in cases:
        _check_stageable(case, where)
    return cases


def _check_params(factory: Any, params: dict[str, Any], where: str) -> None:
    declared = [n for n, p in inspect.signature(factory).parameters.items()
                if n not in PROVIDED and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    for key in params:
        if key not in declared:
            raise MMBenchError(f"{where}: unknown parameter '{str(key)[:40]}'{did_you_mean(str(key), declared)}; "
                               f"allowed: {', '.join(declared) or 'none'}")


def _check_stageable(case: Perturbation, where: str) -> None:
    if isinstance(case, Compound):
        raise MMBenchError(f"{where}: compounds do not nest; list its stages in this compound instead")
    if not case.stageable:
        raise MMBenchError(f"{where}: '{case.name}' cannot be a stage (it is not stageable); "
                           "evaluate it as its own perturbation entry")
    if case.group is not None:
        raise MMBenchError(f"{where}: '{case.name}' evaluates the held-out group '{case.group}', not the "
                           "suite's rows; evaluate it as its own perturbation entry")
    if isinstance(case, Attack) and case.ensemble:
        raise MMBenchError(f"{where}: 'ensemble' is not supported in a stage; drop it (the compound board "
                           "already reports the worst condition)")


def _gone(stages: Sequence[Perturbation], names: Sequence[str]) -> set[str]:
    """The modalities an earlier ``missing`` stage removed."""
    return {n for s in stages if isinstance(s, Missing) for n in names if n not in s.keep}


def _fit(case: Perturbation, gone: set[str], named: set[str], names: Sequence[str], i: int,
         what: str) -> Perturbation | None:
    """``case`` kept off the removed modalities: an explicit target on one is an error, an attack
    or corruption of ``each`` / ``all`` is restricted to the rest (None when nothing is left),
    anything else touching one is skipped (None)."""
    hit = [n for n in touched(case, names) if n in gone]
    if not hit:
        return case
    if case.target in named:
        raise MMBenchError(f"{what}: stage {i} targets '{case.target}', but {', '.join(hit)} is missing after "
                           "an earlier stage; target the remaining modalities, or 'all' for all of them")
    if isinstance(case, (Attack, Shift)):  # 'each' or 'all' (a joint attack's label may list its modalities)
        specs = tuple(s for s in case.specs if s.name not in gone)
        return replace(case, specs=specs, target="+".join(s.name for s in specs)) if specs else None
    return None


def _max_rows(max_rows: int | None, what: str) -> None:
    if max_rows is not None and (isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1):
        raise MMBenchError(f"{what}: max_rows must be a positive number of rows, got {str(max_rows)[:40]!r}")


@PERTURBATIONS.register(
    COMPOUND, family=COMPOUND, kinds=KINDS,
    example={"stages": [
        {"name": SHIFT, "params": {"corruptions": ["gaussian_noise"], "severities": [3], "targets": [ALL],
                                   "draws": 1}},
        {"name": ADVERSARIAL, "params": {"attacks": ["fgsm"], "eps": [0.05], "targets": [ALL]}}]},
)
def compound(modalities: Sequence[ModalitySpec], n_classes: int, train: Split, groups: Sequence[str] = (),
             stages: list[dict[str, Any]] | None = None, max_rows: PositiveInt | None = None,
             task: str = CLASSIFICATION) -> list[Perturbation]:
    """Stages applied in order, each to the previous one's output; plus each stage alone.

    Each stage is a perturbation with its params; several cases per stage give their product."""
    _max_rows(max_rows, COMPOUND)
    harness = Harness(modalities, n_classes, train, groups, task)
    found = build(stages, harness, max_rows, COMPOUND)
    if not found:
        raise MMBenchError("compound: every combination of the stages' cases leaves a stage nothing to touch "
                           "(its targets are all missing after an earlier stage); target remaining modalities")
    return with_stages_alone(found, harness.names)


def _attack_params(attacks: list[str] | None, eps: list[float] | None, norm: str, targets: list[str],
                   options: dict[str, Any] | None) -> dict[str, Any]:
    return {"attacks": attacks, "eps": eps, "norm": norm, "targets": targets, "options": options or {}}


def _chosen(names: Sequence[str], chosen: list[str] | None, what: str) -> list[str]:
    if chosen is None:
        return list(names)
    check_distinct(list(chosen), f"{what}: missing")
    for name in chosen:
        if name not in names:
            raise MMBenchError(f"{what}: unknown modality '{str(name)[:40]}' in 'missing'"
                               f"{did_you_mean(str(name), names)}; the dataset has {', '.join(names)}")
    return [n for n in names if n in chosen]


@PERTURBATIONS.register("missing_then_attack", family=COMPOUND, kinds=KINDS,
                        example={"attacks": ["fgsm"], "eps": [0.05]})
def missing_then_attack(modalities: Sequence[ModalitySpec], n_classes: int, train: Split,
                        attacks: list[str] | None = None, eps: list[float] | None = None, norm: str = "Linf",
                        imputation: str = "mean", options: dict[str, Any] | None = None, joint: bool = True,
                        missing: list[str] | None = None,
                        max_rows: PositiveInt | None = None, task: str = CLASSIFICATION) -> list[Perturbation]:
    """Each modality missing in turn, then each remaining one attacked, and all jointly.

    The missing modality is imputed; the attack targets each remaining continuous modality and
    (``joint``) all of them jointly; each stage is also evaluated alone."""
    what = "missing_then_attack"
    _max_rows(max_rows, what)
    if imputation not in IMPUTATIONS:
        raise MMBenchError(f"{what}: unknown imputation '{str(imputation)[:40]}'"
                           f"{did_you_mean(str(imputation), IMPUTATIONS)}; use one of {', '.join(IMPUTATIONS)}")
    harness = Harness(modalities, n_classes, train, task=task)
    attack = _attack_params(attacks, eps, norm, [EACH, ALL] if joint else [EACH], options)
    found: list[Compound] = []
    for gone in _chosen(harness.names, missing, what):
        kept = [n for n in harness.names if n != gone]
        stages = [{"name": MISSING, "params": {"subsets": [kept], "imputation": [imputation]}},
                  {"name": ADVERSARIAL, "params": attack}]
        found += build(stages, harness, max_rows, what)
    if not found:
        raise MMBenchError(f"{what}: no continuous modality is left to attack when one goes missing; "
                           "it needs a dataset with at least two modalities, one of them continuous")
    return with_stages_alone(found, harness.names)


def _corruption_names(corruptions: str | list[str] | None, what: str) -> list[str]:
    if corruptions == "all":
        return CORRUPTIONS.names()
    if not isinstance(corruptions, list) or not corruptions:
        raise MMBenchError(f"{what}: 'corruptions' must be 'all' or a list of names, e.g. [gaussian_noise] "
                           "(see 'mmbench ls corruptions')")
    check_distinct(list(corruptions), f"{what}: corruptions")
    for name in corruptions:
        CORRUPTIONS.get(name)  # unknown names: one line with a did-you-mean
    return list(corruptions)


@PERTURBATIONS.register("shift_then_attack", family=COMPOUND, kinds=KINDS,
                        example={"corruptions": ["gaussian_noise"], "severity": 3, "attacks": ["fgsm"],
                                 "eps": [0.05], "draws": 1})
def shift_then_attack(modalities: Sequence[ModalitySpec], n_classes: int,
                      corruptions: str | list[str] | None = None, severity: int = 3,
                      attacks: list[str] | None = None, eps: list[float] | None = None, norm: str = "Linf",
                      options: dict[str, Any] | None = None, draws: int = 3,
                      max_rows: PositiveInt | None = None, task: str = CLASSIFICATION) -> list[Perturbation]:
    """Each corruption on one modality, then each other modality attacked.

    The corruption runs at ``severity`` on each modality it supports, the attack on each other
    continuous modality; each stage is also evaluated alone."""
    what = "shift_then_attack"
    _max_rows(max_rows, what)
    if isinstance(severity, bool) or not isinstance(severity, int) or severity not in SEVERITIES or severity < 1:
        raise MMBenchError(f"{what}: severity must be one integer from 1 to 5, got {str(severity)[:40]!r}")
    names = _corruption_names(corruptions, what)
    harness = Harness(modalities, n_classes, task=task)
    continuous = [m.name for m in modalities if m.is_continuous]
    found: list[Compound] = []
    for name in names:
        able = [m.name for m in modalities if CORRUPTIONS.get(name).unsupported(m) is None]
        if not able and corruptions != "all":
            raise MMBenchError(f"{what}: corruption '{name}' applies to {'/'.join(CORRUPTIONS.get(name).kinds)} "
                               f"modalities; this dataset has {', '.join(sorted({m.kind.value for m in modalities}))}")
        for corrupted in able:
            others = [n for n in continuous if n != corrupted]
            if not others:
                continue
            stages = [{"name": SHIFT, "params": {"corruptions": [name], "severities": [severity],
                                                 "targets": [corrupted], "draws": draws}},
                      {"name": ADVERSARIAL, "params": _attack_params(attacks, eps, norm, others, options)}]
            found += build(stages, harness, max_rows, what)
    if not found:
        raise MMBenchError(f"{what}: no (corrupted, attacked) pair of distinct modalities: it needs two "
                           "continuous modalities, or a corrupted one and a continuous one")
    return with_stages_alone(found, harness.names)
