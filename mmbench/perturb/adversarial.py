"""``adversarial``: torchattacks attacks on one modality, a subset, or all modalities jointly.

Each attack sees only its target modalities, mapped to [0, 1] by their bounds; the other
modalities stay clean (bit-identical). After the attack the harness clamps to the bounds and
enforces the budget: a row whose perturbation exceeds ``eps`` in the attack's norm is put back to
clean. For minimum-norm attacks (CW, DeepFool, FAB, EAD, Pixle, SparseFool) this is the usual way
to read robust accuracy at ``eps`` off their output; for bounded attacks it never triggers (a
test checks their raw output). Accuracy is then computed by the harness on the returned batch.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mmbench.bounds import MAX_CASES, check_distinct, check_size
from mmbench.data.arrays import resolve_path
from mmbench.data.base import Batch, ModalitySpec
from mmbench.data.tasks import CLASSIFICATION, REGRESSION_LOSSES, loss_name
from mmbench.errors import MMBenchError, did_you_mean
from mmbench.perturb.attacks import (
    CATALOGUE,
    NORMS,
    AttackSpec,
    attack_spec,
    build_attack,
    perturbation_norm,
)
from mmbench.perturb.base import ALL, Perturbation
from mmbench.perturb.objective import TaskLossModel
from mmbench.perturb.embedding_pgd import EMBEDDING_PGD, embedding_cases
from mmbench.perturb.joint_attacks import JointAttack
from mmbench.perturb.token_attacks import (
    TokenSequence,
    neighbour_table,
    token_attacks,
    token_sequences,
)
from mmbench.perturb.packing import BatchModel, BroadcastModel, IndexedModel, Layout
from mmbench.registry import PERTURBATIONS

log = logging.getLogger(__name__)

EACH = "each"
TOLERANCE = 1e-6
ADVERSARIAL = "adversarial"
#: the family of token attacks' cells, joint text + continuous ones and the embedding diagnostic
TOKEN_FAMILY = "token_attacks"


@dataclass(frozen=True)
class Attack(Perturbation):
    """One attack at one budget against one target set (``target``: ``a``, ``a+b`` or ``all``)."""

    attack: str = ""
    norm: str = "Linf"
    specs: tuple[ModalitySpec, ...] = ()
    options: tuple[tuple[str, Any], ...] = ()
    #: the attacks of this (target, eps) whose per-row worst case is reported too (``ensemble:
    #: true``); the analysis derives it from their stored outcomes, nothing is rerun
    ensemble: tuple[str, ...] = ()
    #: the dataset's task: other than classification, the attack maximises the task's loss
    #: (``task_loss`` for a regression: l1 or mse) through :class:`TaskLossModel`
    task: str = CLASSIFICATION
    task_loss: str = "l1"

    def __repr__(self) -> str:
        """The dataclass repr, without ``task`` and ``task_loss`` on a classification: keys and
        seeds of classification attacks stay those of earlier versions."""
        hidden = ("task", "task_loss") if self.task == CLASSIFICATION else ()
        shown = [f for f in fields(self) if f.repr and f.name not in hidden]
        return f"{type(self).__qualname__}({', '.join(f'{f.name}={getattr(self, f.name)!r}' for f in shown)})"

    @property
    def spec(self) -> AttackSpec:
        return attack_spec(self.attack)

    def facts(self) -> dict[str, Any]:
        facts = {"attack": self.attack, "norm": self.norm, "ensemble": ",".join(self.ensemble)}
        if self.task != CLASSIFICATION:
            facts["loss"] = loss_name(self.task, self.task_loss)
        return facts

    def apply(self, model: nn.Module, batch: Batch, labels: Tensor, seed: int) -> dict[str, Tensor]:
        reads = getattr(model, "input_modalities", None)
        if reads is not None and not {s.name for s in self.specs} & set(reads):
            return dict(batch)  # the model ignores every target: no perturbation can change it
        adv = self.raw(model, batch, labels, seed)
        return self.enforce(batch, adv)

    def raw(self, model: nn.Module, batch: Batch, labels: Tensor, seed: int) -> dict[str, Tensor]:
        """The attack's own output for the target modalities (data units, unclamped)."""
        n_classes = 2 if self.task != CLASSIFICATION else int(getattr(model, "n_classes", 0)) or \
            _n_classes(model, batch)
        numpy_state = np.random.get_state()  # OnePixel and Pixle draw from numpy's global RNG
        try:
            with torch.random.fork_rng(devices=_cuda_devices(labels)):
                torch.manual_seed(seed)
                np.random.seed(seed)
                if self.spec.mode == "per_sample":
                    return self._per_sample(model, batch, labels, seed, n_classes)
                return self._batched(model, batch, labels, seed, n_classes)
        finally:
            np.random.set_state(numpy_state)

    def _batched(self, model: nn.Module, batch: Batch, labels: Tensor, seed: int,
                 n_classes: int) -> dict[str, Tensor]:
        indexed = self.spec.mode == "indexed"
        layout = Layout(self.specs, len(labels), code=indexed)
        rows = torch.arange(len(labels), device=labels.device)
        wrapper: nn.Module = (IndexedModel if indexed else BatchModel)(model, layout, batch)
        if self.task != CLASSIFICATION:  # planning admits only batch-mode attacks here
            wrapper = TaskLossModel(wrapper, self.task, labels, self.task_loss)
            labels = TaskLossModel.labels(labels)
        x = layout.pack(batch, rows)
        adv = self._run(wrapper, layout, x, labels, seed, n_classes)
        if indexed and not torch.equal(layout.decode_rows(adv), rows):
            raise MMBenchError(f"attack '{self.attack}' reordered rows; report this as a bug")
        return layout.unpack(adv)

    def _per_sample(self, model: nn.Module, batch: Batch, labels: Tensor, seed: int,
                    n_classes: int) -> dict[str, Tensor]:
        layout = Layout(self.specs)
        outs = []
        for i in range(len(labels)):
            row = {k: v[i:i + 1] for k, v in batch.items()}
            wrapper = BroadcastModel(model, layout, row)
            outs.append(self._run(wrapper, layout, layout.pack(row), labels[i:i + 1], seed + i, n_classes))
        return layout.unpack(torch.cat(outs)) if outs else {s.name: batch[s.name] for s in self.specs}

    def _run(self, wrapper: nn.Module, layout: Layout, x: Tensor, labels: Tensor, seed: int,
             n_classes: int) -> Tensor:
        attack = build_attack(self.spec, wrapper, self.severity, self.norm, n_classes, seed,
                              layout, dict(self.options))
        return attack(x, labels).detach()

    def enforce(self, batch: Batch, adv: dict[str, Tensor]) -> dict[str, Tensor]:
        """Clamp to bounds; rows over budget, or with non-finite values (a failed attack step),
        go back to clean. Non-target modalities are passed through untouched."""
        clamped = {s.name: adv[s.name].clamp(s.lo, s.hi).to(batch[s.name].dtype) for s in self.specs}
        within = self.distance(batch, clamped) <= self.severity * (1 + TOLERANCE) + TOLERANCE
        reject = ~within  # NaN distances compare False, so non-finite rows are rejected too
        if bool(reject.any()):
            level = logging.WARNING if self.spec.bounded else logging.DEBUG
            log.log(level, "%s: %d of %d rows exceed eps=%g (%s) or are not finite; they count "
                    "as not fooled", self.name, int(reject.sum()), len(reject), self.severity, self.norm)
        out = dict(batch)
        for s in self.specs:
            keep = reject.view(-1, *([1] * (batch[s.name].dim() - 1)))
            out[s.name] = torch.where(keep, batch[s.name], clamped[s.name])
        return out

    def distance(self, batch: Batch, adv: dict[str, Tensor]) -> Tensor:
        """Per-row perturbation size over all targets, in the attack's norm and unit space."""
        delta = torch.cat([
            (s.to_unit(adv[s.name].double()) - s.to_unit(batch[s.name].double())).flatten(1)
            for s in self.specs
        ], dim=1)
        return perturbation_norm(delta, self.norm)


def _n_classes(model: nn.Module, batch: Batch) -> int:
    with torch.no_grad():
        return int(model({k: v[:1] for k, v in batch.items()}).shape[1])


def _cuda_devices(t: Tensor) -> list[int]:
    return [t.device.index or 0] if t.is_cuda else []


def resolve_targets(targets: Sequence[str], modalities: Sequence[ModalitySpec], owner: str = ADVERSARIAL,
                    perturber: str = "gradient and score attacks") -> list[tuple[str, tuple[ModalitySpec, ...]]]:
    """(label, specs) for each target: ``each`` expands to every attackable modality, ``all`` is
    all of them jointly (labelled ``a+b+...`` when the dataset also has token modalities, which
    it leaves out), ``a+b`` a named subset. Errors name ``owner`` (the perturbation or
    recipe asking) and ``perturber`` (what cannot change token ids)."""
    attackable = {m.name: m for m in modalities if m.is_continuous}
    names = [m.name for m in modalities]
    out: list[tuple[str, tuple[ModalitySpec, ...]]] = []
    for target in targets:
        if target == EACH:
            out += [(n, (m,)) for n, m in attackable.items()]
        elif target == ALL:  # all continuous ones: named so where tokens are left out
            label = ALL if len(attackable) == len(names) else "+".join(attackable)
            out.append((label, tuple(attackable.values())))
        else:
            parts = target.split("+")
            for p in parts:
                if p not in names:
                    raise MMBenchError(
                        f"{owner}: unknown target modality '{p}'{did_you_mean(p, names + [EACH, ALL])}; "
                        f"the dataset has {', '.join(names)} (or use 'each' / 'all')"
                    )
                if p not in attackable:
                    raise MMBenchError(f"{owner}: modality '{p}' holds token ids, which {perturber} "
                                       "cannot perturb; choose a continuous modality")
            out.append((target, tuple(attackable[p] for p in parts)))
    if not attackable:
        raise MMBenchError(f"{owner}: the dataset has no continuous modality to perturb")
    return list(dict.fromkeys(out))


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _check_options(names: Sequence[str], options: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per-attack constructor options, each checked against the attack's signature."""
    out: dict[str, dict[str, Any]] = {}
    for key, opts in options.items():
        if key not in names:
            raise MMBenchError(f"adversarial: options given for '{key}', which is not in attacks "
                               f"{list(names)}{did_you_mean(key, names)}")
        if not isinstance(opts, dict):
            raise MMBenchError(f"adversarial: options of '{key}' must be a mapping of option: value")
        spec = attack_spec(key)
        defaults = spec.option_defaults()
        for opt, value in opts.items():
            if opt not in defaults:
                raise MMBenchError(f"adversarial: attack '{key}' has no option '{opt}'"
                                   f"{did_you_mean(str(opt), defaults)}; its options: {', '.join(defaults)}")
            _check_option_value(key, opt, value, defaults[opt])
        out[key] = {k: _freeze(v) for k, v in opts.items()}
    return out


def _check_option_value(attack: str, option: str, value: Any, default: Any) -> None:
    """An option's value must have its default's type (an int option takes an integer, a float
    one a finite number, a bool one true/false); options without a default take anything."""
    kinds = {bool: (bool,), int: (int,), float: (int, float), str: (str,)}.get(type(default))
    wrong = kinds is not None and (not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds))
    if wrong or (isinstance(value, float) and not math.isfinite(value)):
        expected = type(default).__name__
        raise MMBenchError(f"adversarial: option '{option}' of attack '{attack}' must be {expected} "
                           f"(its default is {default!r}), got {str(value)[:40]!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and isinstance(default, (int, float)) \
            and default > 0 and value <= 0 and option in POSITIVE_OPTIONS:
        raise MMBenchError(f"adversarial: option '{option}' of attack '{attack}' must be > 0, got {value}")


#: options that count something (steps, queries, restarts, ...) must be positive
POSITIVE_OPTIONS = frozenset({"steps", "n_queries", "n_restarts", "nb_iter", "nb_sample", "max_batch_size",
                              "popsize", "restarts", "max_iterations", "binary_search_steps",
                              "noise_batch_size", "eot_iter", "n_iter", "overshoot_steps"})


def _check_budgets(specs: Sequence[AttackSpec], eps: list[float] | None, norm: str) -> list[float]:
    if norm not in NORMS:
        raise MMBenchError(f"adversarial: norm must be one of {', '.join(NORMS)}, got '{norm}'")
    for spec in specs:
        if norm not in spec.norms:
            raise MMBenchError(f"adversarial: attack '{spec.name}' runs in {'/'.join(spec.norms)} "
                               f"only; put it in an entry with norm: {spec.norms[0]}")
    if not eps:
        raise MMBenchError(f"adversarial: attack '{specs[0].name}' needs 'eps', a list of budgets "
                           f"in normalised [0, 1] units (e.g. eps: [0.05, 0.1])")
    for e in eps:
        if isinstance(e, bool) or not isinstance(e, (int, float)) or not math.isfinite(e) or e < 0:
            raise MMBenchError(f"adversarial: eps must be finite numbers >= 0, got {str(e)[:40]!r}")
        if norm == "Linf" and e >= 0.5 and any(s.mode == "indexed" for s in specs):
            raise MMBenchError(f"adversarial: Linf eps {e} >= 0.5 is beyond the normalised range "
                               "that subset-calling attacks can be run at; use eps < 0.5")
        if norm == "L0" and not 0 < e <= 1:
            raise MMBenchError(f"adversarial: an L0 budget is a fraction of features in (0, 1], got {e}")
    check_distinct([float(e) for e in eps], "adversarial: eps")
    return [float(e) for e in eps]


@PERTURBATIONS.register(
    "adversarial", family=ADVERSARIAL, kinds=("image", "sequence", "vector", "tokens"),
    example={"attacks": ["fgsm", "apgd", "square"], "eps": [0.05], "ensemble": True,
             "options": {"apgd": {"steps": 2}, "square": {"n_queries": 10}}},
    # token attacks (alone, jointly with a continuous one) and the embedding diagnostic make the
    # rows of the token_attacks family; the contract tests run these examples too
    families=(ADVERSARIAL, TOKEN_FAMILY),
    more_examples=({"attacks": ["fgsm", "hotflip"], "eps": [0.05], "token_eps": [1], "targets": ["all"]},
                   {"attacks": ["embedding_pgd"], "eps": [0.5]}),
)
def adversarial(
    modalities: Sequence[ModalitySpec],
    n_classes: int,
    attacks: list[str] | None = None,
    eps: list[float] | None = None,
    norm: str = "Linf",
    targets: list[str] | None = None,
    options: dict[str, Any] | None = None,
    ensemble: bool = False,
    max_rows: int | None = None,
    regression_loss: str = "l1",
    task: str = CLASSIFICATION,
    token_eps: list[float] | None = None,
    neighbours: Any = None,
) -> list[Perturbation]:
    """torchattacks attacks per (attack, target, eps); targets default to [each, all]. On a
    regression or multilabel dataset (``task``, passed by the harness) the attacks maximise the
    task's loss (``regression_loss``: l1 or mse for a regression), and only attacks that do
    nothing but ascend the cross-entropy of the labels are admitted. Token attacks (``hotflip``,
    ``greedy_substitution``, ``random_substitution``; :mod:`mmbench.perturb.token_attacks`)
    take ``eps`` in positions, or ``token_eps`` beside continuous attacks, which then attack
    ``all`` and mixed subsets jointly (:mod:`mmbench.perturb.joint_attacks`); ``neighbours``
    restricts their replacements. ``embedding_pgd`` (a diagnostic) takes an entry of its own."""
    if max_rows is not None and max_rows < 1:
        raise MMBenchError(f"adversarial: max_rows must be a positive number of rows, got {max_rows}")
    if not attacks:
        raise MMBenchError("adversarial: 'attacks' must list at least one attack (e.g. [fgsm, pgd])")
    check_distinct(list(attacks), "adversarial: attacks")
    token_names = [a for a in attacks if a in TOKEN_OPTIONS]
    if token_names:
        others = [a for a in attacks if a not in token_names]
        opts = options or {}
        entry = _token_entry(modalities, token_names, token_eps if others else (eps or token_eps),
                             {k: v for k, v in opts.items() if k in token_names}, neighbours, task,
                             regression_loss, max_rows, "token_eps" if others else "eps")
        if not others:
            return _token_only_cases(modalities, entry, targets)
        check_distinct(list(targets or []), "adversarial: targets")
        wanted = targets or [EACH, ALL]
        continuous = adversarial(modalities, n_classes, others, eps, norm, _continuous_labels(modalities, wanted),
                                 {k: v for k, v in opts.items() if k not in token_names}, ensemble, max_rows,
                                 regression_loss, task)
        return _mixed_cases(modalities, continuous, entry, wanted)
    if token_eps is not None or neighbours is not None:
        raise MMBenchError("adversarial: token_eps and neighbours apply to token attacks (hotflip, "
                           "greedy_substitution, random_substitution); this entry has none")
    specs = [attack_spec(a) for a in attacks]
    _check_task(specs, task, regression_loss)
    for spec in specs:
        if task == CLASSIFICATION and n_classes < spec.min_classes:
            raise MMBenchError(f"adversarial: attack '{spec.name}' needs at least {spec.min_classes} "
                               f"classes (its targeted DLR loss ranks four logits); the dataset has "
                               f"{n_classes}")
    budgets = _check_budgets(specs, eps, norm)
    opts = _check_options([s.name for s in specs], options or {})
    cases: list[Perturbation] = []
    group = tuple(s.name for s in specs) if ensemble and len(specs) > 1 else ()
    check_distinct(list(targets or []), "adversarial: targets")
    resolved = resolve_targets(targets or [EACH, ALL], modalities)
    check_size(len(resolved) * len(budgets) * len(specs), MAX_CASES, "adversarial: attacks x eps x targets",
               "list fewer values, or split the grid over several suites")
    for label, target_specs in resolved:
        _check_targets(specs, label, target_specs)
        cases += [Attack(family=ADVERSARIAL, name=f"{s.name}-{norm}", target=label, severity=e,
                         max_rows=max_rows, attack=s.name, norm=norm, specs=target_specs,
                         options=tuple(sorted(opts.get(s.name, {}).items())), ensemble=group,
                         task=task, task_loss=regression_loss)
                  for e in budgets for s in specs]
    return cases


#: what each token attack's options may set, and their types
TOKEN_OPTIONS = {"hotflip": {"beam": int, "protected": list},
                 "greedy_substitution": {"candidates": int, "protected": list},
                 "random_substitution": {"protected": list},
                 EMBEDDING_PGD: {"steps": int, "protected": list}}


@dataclass(frozen=True)
class TokenEntry:
    """The token side of an ``adversarial`` entry: attacks, budgets (positions), options,
    neighbour tables per modality, and the harness's task and rows."""

    attacks: tuple[str, ...]
    budgets: tuple[float, ...]
    options: dict[str, dict[str, Any]]
    neighbours: dict[str, tuple[tuple[int, ...], ...]]
    task: str
    regression_loss: str
    max_rows: int | None
    family: str = TOKEN_FAMILY

    def cases(self, specs: Sequence[ModalitySpec]) -> list[Perturbation]:
        if EMBEDDING_PGD in self.attacks:
            return embedding_cases(self, specs)
        return token_attacks(self.family, self.attacks, self.budgets, specs, self.options, self.task,
                             self.regression_loss, self.max_rows, self.neighbours)

    def sequences(self, specs: Sequence[ModalitySpec]) -> list[Perturbation]:
        """Each attack at each budget on all of ``specs`` at once (target ``a+b``)."""
        if EMBEDDING_PGD in self.attacks:
            raise MMBenchError(f"adversarial: {EMBEDDING_PGD} attacks one tokens modality at a time; target "
                               "each of them")
        return token_sequences(self.cases(specs), "+".join(s.name for s in specs))


def _token_entry(modalities: Sequence[ModalitySpec], attacks: list[str], budgets: list[float] | None,
                 options: dict[str, Any], neighbours: Any, task: str, regression_loss: str,
                 max_rows: int | None, key: str = "eps") -> TokenEntry:
    """The checked token side of an entry (``key``: the name of its budget list)."""
    tokens = [m for m in modalities if not m.is_continuous]
    if not tokens:
        raise MMBenchError("adversarial: token attacks need a tokens modality, and the dataset has none")
    if not budgets:
        raise MMBenchError(f"adversarial: token attacks need '{key}': positions that may change per row "
                           "(e.g. [1, 2, 4]) or fractions of a row's positions (e.g. [0.1])")
    pgd = EMBEDDING_PGD in attacks
    if pgd and len(attacks) > 1:
        raise MMBenchError(f"adversarial: {EMBEDDING_PGD} is a diagnostic whose eps is an embedding radius, "
                           "not a number of positions; give it an entry of its own")
    for e in budgets:
        if isinstance(e, bool) or not isinstance(e, (int, float)) or not math.isfinite(e) or e <= 0 or \
                (not pgd and e >= 1 and e != int(e)):
            what = "radii > 0" if pgd else "whole numbers of positions >= 1 or fractions in (0, 1)"
            raise MMBenchError(f"adversarial: token budgets ({key}) are {what}, got {str(e)[:40]!r}")
    check_distinct([float(e) for e in budgets], f"adversarial: {key}")
    _check_token_options(attacks, options)
    tables = _neighbour_tables(neighbours, tokens)
    return TokenEntry(tuple(attacks), tuple(float(e) for e in budgets), options, tables, task,
                      regression_loss, max_rows)


def _check_token_options(attacks: list[str], options: dict[str, Any]) -> None:
    for key, opts in options.items():
        if key not in attacks or not isinstance(opts, dict):
            raise MMBenchError(f"adversarial: options given for '{key}', which is not in attacks {attacks}")
        allowed = TOKEN_OPTIONS[key]
        for opt, value in opts.items():
            kind = allowed.get(opt)
            if kind is None or not isinstance(value, kind) or isinstance(value, bool) or (kind is int and value < 1):
                raise MMBenchError(f"adversarial: option '{opt}' of '{key}' must be one of {', '.join(allowed)} "
                                   "(counts >= 1; protected a list of ids)")
            if kind is list and not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in value):
                raise MMBenchError(f"adversarial: option 'protected' of '{key}' must list token ids >= 0")


def _neighbour_tables(raw: Any, tokens: Sequence[ModalitySpec]) -> dict[str, tuple[tuple[int, ...], ...]]:
    """``neighbours``: a table (or .npy path) for the one tokens modality, or a mapping
    modality -> table."""
    if raw is None:
        return {}
    names = [m.name for m in tokens]
    if not isinstance(raw, dict):
        if len(tokens) != 1:
            raise MMBenchError(f"adversarial: the dataset has {len(tokens)} tokens modalities ({', '.join(names)}); "
                               "give neighbours as {modality: table}")
        raw = {tokens[0].name: raw}
    out = {}
    for name, table in raw.items():
        spec = next((m for m in tokens if m.name == name), None)
        if spec is None:
            raise MMBenchError(f"adversarial: neighbours given for '{name}', which is not a tokens modality "
                               f"of the dataset{did_you_mean(str(name), names)}; its tokens modalities: "
                               f"{', '.join(names)}")
        out[spec.name] = neighbour_table(str(resolve_path(table)) if isinstance(table, str) else table, spec)
    return out


def _token_specs(modalities: Sequence[ModalitySpec], target: str) -> list[ModalitySpec]:
    """The token modalities of ``target`` (``a`` or ``a+b``); one-line errors otherwise."""
    names = [m.name for m in modalities]
    out = []
    for part in target.split("+"):
        spec = next((m for m in modalities if m.name == part), None)
        if spec is None:
            raise MMBenchError(f"adversarial: unknown target modality '{part}'{did_you_mean(part, names)}; "
                               f"the dataset has {', '.join(names)}")
        if spec.is_continuous:
            raise MMBenchError(f"adversarial: token attacks change token ids, and modality '{part}' is "
                               f"{spec.kind.value}; target a tokens modality, or list a continuous attack "
                               "(fgsm, pgd, ...) beside them for a joint attack")
        out.append(spec)
    return out


def _token_only_cases(modalities: Sequence[ModalitySpec], entry: TokenEntry,
                      targets: list[str] | None) -> list[Perturbation]:
    """A token-only entry: ``each`` and ``all`` attack every token modality on its own, ``a``
    one, and ``a+b`` several at once (each given the budget)."""
    out: list[Perturbation] = []
    for target in targets or [EACH]:
        if target in (EACH, ALL):
            out += entry.cases([m for m in modalities if not m.is_continuous])
            continue
        specs = _token_specs(modalities, target)
        out += entry.cases(specs) if len(specs) == 1 else entry.sequences(specs)
    return list(dict.fromkeys(out))


def _mixed_cases(modalities: Sequence[ModalitySpec], continuous: list[Perturbation], tokens: TokenEntry,
                 targets: list[str]) -> list[Perturbation]:
    """An entry with continuous and token attacks: ``each`` attacks every modality on its own with
    the attacks of its kind; ``all`` and subsets mixing kinds are attacked jointly
    (:class:`JointAttack`), with both parts also run alone (the cells the joint one is checked
    against)."""
    by_name = {m.name: m for m in modalities}
    out: list[Perturbation] = []
    for target in targets:
        if target == EACH:
            out += [c for c in continuous if c.target != ALL and "+" not in c.target]
            out += tokens.cases([m for m in modalities if not m.is_continuous])
            continue
        specs = list(modalities) if target == ALL else [by_name[n] for n in target.split("+")]
        text = [m for m in specs if not m.is_continuous]
        label = "+".join(m.name for m in specs if m.is_continuous)
        parts = [c for c in continuous if c.target == label]
        out += parts
        if not text:
            continue
        token_parts = tokens.cases(text) if len(text) == 1 else tokens.sequences(text)
        out += token_parts
        out += [JointAttack(family=TOKEN_FAMILY, name=f"{c.name}>{t.name}", target=target, severity=t.severity,
                            max_rows=tokens.max_rows, continuous=c,
                            tokens=t.tokens if isinstance(t, TokenSequence) else (t,))
                for c in parts for t in token_parts]
    return list(dict.fromkeys(out))


def _continuous_labels(modalities: Sequence[ModalitySpec], targets: list[str]) -> list[str]:
    """The continuous targets a mixed entry runs: ``each``, and the continuous part of ``all``
    and of every subset (as ``a+b``), checked against the dataset's modalities."""
    names = [m.name for m in modalities]
    kinds = {m.name: m.is_continuous for m in modalities}
    out = []
    for target in targets:
        if target == EACH:
            out.append(EACH)
            continue
        parts = names if target == ALL else target.split("+")
        for p in parts:
            if p not in kinds:
                raise MMBenchError(f"adversarial: unknown target modality '{p}'{did_you_mean(p, names + [EACH, ALL])}; "
                                   f"the dataset has {', '.join(names)} (or use 'each' / 'all')")
        cont = [p for p in parts if kinds[p]]
        if cont:
            out.append("+".join(cont))
    return list(dict.fromkeys(out))


def _check_task(specs: Sequence[AttackSpec], task: str, regression_loss: str) -> None:
    """Attacks that read class decisions are refused for a regression or multilabel task."""
    if regression_loss not in REGRESSION_LOSSES:
        raise MMBenchError(f"adversarial: regression_loss must be one of {', '.join(REGRESSION_LOSSES)}, "
                           f"got {str(regression_loss)[:40]!r}")
    if task == CLASSIFICATION:
        return
    for spec in specs:
        if not spec.any_task:
            able = ", ".join(n for n, s in CATALOGUE.items() if s.any_task)
            raise MMBenchError(f"adversarial: attack '{spec.name}' works on class decisions (margins, target "
                               f"classes or misclassified rows) and cannot attack a {task} task; use one "
                               f"that ascends the task's loss: {able}")


def _check_targets(specs: Sequence[AttackSpec], label: str, targets: tuple[ModalitySpec, ...]) -> None:
    for spec in specs:
        reason = spec.target_check(targets) if spec.target_check else None
        if reason:
            raise MMBenchError(f"adversarial: attack '{spec.name}' cannot attack target '{label}': {reason}")
