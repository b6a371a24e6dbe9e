"""Running each model once before anything trains (``mmbench validate`` and ``mmbench run``).

Every model of a plan is built on every dataset it is trained on and does one forward and one
backward pass on two training rows, on the CPU. A signature, shape or dtype mistake thus becomes
a one-line error naming the model, the dataset and the inputs it was given, before any work.

A model with ``nn.Embedding`` layers is run a few more times (without gradients) to learn which
modality reaches which embedding: each modality's values are moved by 1 in turn and the
embeddings' inputs watched. A continuous modality that reaches one is declared with the wrong
kind; a token modality is run on the row holding its largest id over all rows (train, val, test
and held-out groups), so that an id beyond the embedding's size is refused here rather than in
every evaluation cell later. A model that a white-box token attack of the plan (``hotflip``,
``embedding_pgd``) will attack must have the embedding layer its modality reaches
(:func:`check_embedding_layers`). :func:`row_report` describes the rows each dataset gives, for
``mmbench validate``.

Before any model runs, :func:`check_rows` refuses a dataset (a plugin's too) that no recipe can
train on: an empty validation or test split, training rows of a single class, or continuous
bounds beyond :data:`~mmbench.data.base.SAFE_MAGNITUDE`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from mmbench.config.build import build_model
from mmbench.data.base import SAFE_MAGNITUDE, MultimodalDataset, Split
from mmbench.data.tasks import CLASSIFICATION, MULTILABEL, REGRESSION, as_2d, row_loss
from mmbench.errors import MMBenchError, first_line
from mmbench.perturb.natural import NATURAL_SHIFT
from mmbench.perturb.token_attacks import find_embedding, forward_watched
from mmbench.plan.cells import Plan, TrainCell

log = logging.getLogger(__name__)
ROWS = 2
EMBEDDINGS = (nn.Embedding, nn.EmbeddingBag)
#: one call of an embedding: its module name and the call's index in the forward pass
Call = tuple[str, int]


def probe_plan(plan: Plan, datasets: Mapping[str, MultimodalDataset]) -> list[str]:
    """Check each dataset's rows, then probe each (dataset, model) of the plan once; return
    warnings (also logged)."""
    check_rows(datasets)
    warnings: list[str] = []
    seen: set[tuple[str, str]] = set()
    for cell in plan.train_cells:
        if (cell.dataset, cell.model) not in seen:
            seen.add((cell.dataset, cell.model))
            warnings += probe_cell(cell, datasets[cell.dataset], needed_embeddings(plan, cell))
    for text in warnings:
        log.warning("%s", text)
    return warnings


def check_rows(datasets: Mapping[str, MultimodalDataset]) -> None:
    """One line for a dataset that cannot be trained on: an empty train, validation or test split
    (every recipe selects on or reports the validation rows), one class in the training rows, or
    bounds of a continuous modality beyond SAFE_MAGNITUDE (float32 arithmetic would overflow)."""
    for label, data in datasets.items():
        for part, fix in (("train", "the data"), ("val", "its val_fraction"), ("test", "its test_fraction")):
            if not len(getattr(data, part)):
                raise MMBenchError(f"dataset '{label}': the {part} split is empty, and training and "
                                   f"evaluation need {part} rows; give the dataset {part} rows (check {fix})")
        classes = torch.unique(data.train.labels) if data.task == CLASSIFICATION else torch.zeros(2)
        if len(classes) < 2:
            raise MMBenchError(f"dataset '{label}': the train split holds 1 class ({len(data.train)} rows); "
                               "training needs at least 2: give it rows of more classes")
        for spec in data.modalities:
            if spec.is_continuous and max(abs(spec.lo), abs(spec.hi)) > SAFE_MAGNITUDE:
                raise MMBenchError(f"dataset '{label}': modality '{spec.name}' has bounds [{spec.lo:.3g}, "
                                   f"{spec.hi:.3g}], beyond {SAFE_MAGNITUDE:.0e} in magnitude, where float32 "
                                   "arithmetic overflows to inf; scale the data (e.g. min-max to [0, 1])")


def needed_embeddings(plan: Plan, cell: TrainCell) -> dict[str, str]:
    """Token modality -> an attack of the cell's evaluations that needs its embedding layer."""
    out: dict[str, str] = {}
    for ev in plan.evals_for(cell):
        for name in ev.perturbation.embedding_of:
            out.setdefault(name, ev.perturbation.name)
    return out


def probe_cell(cell: TrainCell, data: MultimodalDataset, embeddings: Mapping[str, str] | None = None) -> list[str]:
    comp = cell.model_component
    what = f"model '{cell.model}' on dataset '{cell.dataset}'"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model(comp.name, data.modalities, data.n_classes, comp.params, cell.model,
                            f"dataset '{cell.dataset}'")
        warnings = probe_model(model, data, what)
    check_embedding_layers(model, data, embeddings or {}, what)
    return warnings


def check_embedding_layers(model: nn.Module, data: MultimodalDataset, needed: Mapping[str, str], what: str) -> None:
    """A white-box token attack needs the embedding layer its modality reaches: one line before
    anything trains where there is none."""
    if not needed:
        return
    batch, _ = data.train.to("cpu").rows(slice(0, ROWS))
    reads = set(getattr(model, "input_modalities", batch))
    for name, attack in needed.items():
        if name in reads and find_embedding(model.eval(), batch, name) is None:  # unread: "not read" cells
            raise MMBenchError(f"{what}: {attack} needs the embedding layer that modality '{name}' reaches, and "
                               "the model has none (or several); use greedy_substitution or random_substitution, "
                               "which only query the model, or declare it in mmbench_meta 'embeddings'")


def probe_model(model: nn.Module, data: MultimodalDataset, what: str) -> list[str]:
    """One forward and backward pass on two CPU training rows of ``data``; raises a one-line
    :class:`MMBenchError` on a mistake, returns warnings for what would make attacks vacuous."""
    model = model.cpu().train()
    batch, labels = data.train.to("cpu").rows(slice(0, ROWS))
    batch = {k: v.clone().requires_grad_(v.is_floating_point()) for k, v in batch.items()}
    reads = set(getattr(model, "input_modalities", batch))
    inputs = describe({k: v for k, v in batch.items() if k in reads})
    try:
        logits = model(batch)
    except MMBenchError:
        raise
    except Exception as exc:
        raise MMBenchError(f"{what}: a forward pass on {ROWS} rows failed: {type(exc).__name__}: "
                           f"{first_line(exc)} (inputs: {inputs})") from None
    check_logits(logits, len(labels), data.n_classes, what, data.task)
    try:
        row_loss(data.task, logits.float(), labels).mean().backward()
    except Exception as exc:
        raise MMBenchError(f"{what}: the backward pass failed: {type(exc).__name__}: "
                           f"{first_line(exc)}") from None
    check_trainable(model, what)
    check_embeddings(model, data, {k: v.detach() for k, v in batch.items()}, what)
    return _gradient_warnings(model, batch, what)


def check_logits(logits: Tensor, rows: int, n_classes: int, what: str, task: str = CLASSIFICATION) -> None:
    """Floating-point ``[rows, n_classes]`` outputs (``[rows]`` too for one regression target)."""
    shape = {CLASSIFICATION: f"logits [rows, {n_classes}]", MULTILABEL: f"one logit per label [rows, {n_classes}]",
             REGRESSION: f"one value per target [rows, {n_classes}]" + (" or [rows]" if n_classes == 1 else "")}[task]
    logits = as_2d(task, logits) if n_classes == 1 else logits
    if not logits.is_floating_point() or logits.dim() != 2:
        raise MMBenchError(f"{what}: forward returned {logits.dtype} {list(logits.shape)}; it must return "
                           f"floating-point {shape}")
    if tuple(logits.shape) != (rows, n_classes):
        size = {CLASSIFICATION: "classes", MULTILABEL: "labels", REGRESSION: "targets"}[task]
        raise MMBenchError(f"{what}: forward returned shape {list(logits.shape)} for {rows} rows; the "
                           f"{'' if task == CLASSIFICATION else task + ' '}dataset has {n_classes} {size}, so it must be [{rows}, {n_classes}]")
    if not bool(torch.isfinite(logits).all()):
        raise MMBenchError(f"{what}: forward returned NaN/Inf logits on {rows} clean rows")


def check_trainable(model: nn.Module, what: str) -> None:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise MMBenchError(f"{what}: the model has no trainable parameters; the training recipes need some")
    if all(p.grad is None for p in params):
        raise MMBenchError(f"{what}: the loss does not reach any parameter (is the output detached?)")


def _gradient_warnings(model: nn.Module, batch: dict[str, Tensor], what: str) -> list[str]:
    reads = set(getattr(model, "input_modalities", batch))
    blocked = [k for k, v in batch.items() if v.is_floating_point() and k in reads and v.grad is None]
    return [f"{what}: no gradient reaches modality '{k}' from the loss, so gradient attacks on "
            "it cannot move the prediction" for k in blocked]


def describe(batch: Mapping[str, Tensor]) -> str:
    """``name [shape] dtype`` of each input, e.g. ``vision [2, 1, 8, 8] float32``."""
    return ", ".join(f"{k} {list(v.shape)} {str(v.dtype).replace('torch.', '')}" for k, v in batch.items())


# -- embeddings ---------------------------------------------------------------------------------

def check_embeddings(model: nn.Module, data: MultimodalDataset, batch: dict[str, Tensor], what: str) -> None:
    """Refuse a continuous modality that reaches an ``nn.Embedding`` and a token id (of any row)
    beyond the size of an embedding its modality reaches; nothing to do without embeddings."""
    embeddings = {name or type(m).__name__: m for name, m in model.named_modules() if isinstance(m, EMBEDDINGS)}
    if not embeddings:
        return
    was_training = model.training
    model.eval()
    try:
        reach = _reach(model, embeddings, batch)
        _check_kinds(reach, data, what)
        for spec in data.modalities:
            calls = [call for call, names in reach.items() if spec.name in names]
            if calls and not spec.is_continuous:
                _check_vocabulary(model, embeddings, calls, data, spec.name, what)
    finally:
        model.train(was_training)


def _record(model: nn.Module, embeddings: dict[str, nn.Module], batch: dict[str, Tensor]) -> dict[Call, Tensor]:
    """The input of every embedding call of a forward pass on ``batch`` (ids beyond an embedding
    are recorded, then clamped so that the pass goes on)."""
    seen: dict[Call, Tensor] = {}

    def hook(name: str, size: int):
        def pre(module: nn.Module, args: tuple) -> tuple | None:
            ids = args[0].detach() if args and isinstance(args[0], Tensor) else None
            if ids is None:
                return None
            seen[(name, sum(1 for n, _ in seen if n == name))] = ids.clone()
            return None if ids.is_floating_point() else (ids.clamp(0, size - 1), *args[1:])
        return pre

    forward_watched(model, batch, {m: hook(n, m.num_embeddings) for n, m in embeddings.items()})
    return seen


def _reach(model: nn.Module, embeddings: dict[str, nn.Module], batch: dict[str, Tensor]) -> dict[Call, set[str]]:
    """Embedding call -> the modalities whose values change its input (each moved by 1 in turn)."""
    try:
        base = _record(model, embeddings, batch)
    except Exception as exc:  # the training-mode pass worked; an eval-mode failure is not ours to judge
        log.debug("no embedding check: an eval-mode pass failed (%s)", first_line(exc))
        return {}
    reach: dict[Call, set[str]] = {call: set() for call in base}
    for name in sorted(set(getattr(model, "input_modalities", batch)) & set(batch)):
        try:
            moved = _record(model, embeddings, {**batch, name: batch[name] + 1})
        except Exception as exc:
            log.debug("modality '%s' moved by 1 fails a forward pass (%s)", name, first_line(exc))
            continue
        for call, ids in base.items():
            other = moved.get(call)
            if other is not None and (other.shape != ids.shape or not torch.equal(other, ids)):
                reach[call].add(name)
    return reach


def _check_kinds(reach: dict[Call, set[str]], data: MultimodalDataset, what: str) -> None:
    for (embedding, _), names in sorted(reach.items()):
        for name in sorted(names):
            spec = data.spec(name)
            if spec.is_continuous:
                raise MMBenchError(f"{what}: modality '{name}' is declared {spec.kind.value} but the model "
                                   f"embeds it (it reaches nn.Embedding '{embedding}' as ids); if it holds "
                                   f"token ids, declare it tokens ({name}: tokens)")


def _check_vocabulary(model: nn.Module, embeddings: dict[str, nn.Module], calls: list[Call],
                      data: MultimodalDataset, name: str, what: str) -> None:
    """Run the row holding the modality's largest id; every embedding it reaches must hold it."""
    part, split, row, largest = _largest_id(data, name)
    batch = {k: v.detach().cpu() for k, v in split.rows(slice(row, row + 1))[0].items()}
    try:
        seen = _record(model, embeddings, batch)
    except Exception as exc:
        raise MMBenchError(f"{what}: a forward pass on the {_row_where(part)} holding the largest id of "
                           f"modality '{name}' ({largest}) failed: {type(exc).__name__}: {first_line(exc)}") from None
    for call in calls:
        size = embeddings[call[0]].num_embeddings
        ids = seen.get(call)
        if ids is not None and ids.numel() and int(ids.max()) >= size:
            raise MMBenchError(f"{what}: modality '{name}' holds token id {largest} (in a {_row_where(part)}) but "
                               f"nn.Embedding '{call[0]}' has {size} entries; size the embedding from the "
                               f"dataset's vocabulary ({largest + 1} or more) or map the ids below {size}")


def _largest_id(data: MultimodalDataset, name: str) -> tuple[str, Split, int, int]:
    """(split name, split, row, id) of the largest id of a token modality over every row."""
    best: tuple[str, Split, int, int] = ("train", data.train, 0, -1)
    for part, split in data.splits():
        ids = split.inputs[name]
        if len(ids):
            per_row = ids.reshape(len(ids), -1).max(dim=1).values
            row = int(per_row.argmax())
            if int(per_row[row]) > best[3]:
                best = (part, split, row, int(per_row[row]))
    return best


def _row_where(part: str) -> str:
    """'test row', or "row of group 'B'" for a held-out group (``part`` as ``splits()`` names it)."""
    return f"row of group '{part[6:]}'" if part.startswith("group ") else f"{part} row"


# -- what validate prints -------------------------------------------------------------------------

def row_report(plan: Plan, datasets: Mapping[str, MultimodalDataset]) -> list[str]:
    """Per dataset: its split sizes and held-out groups, the loader's notes, and the rows each
    ``natural_shift`` evaluation uses."""
    lines = []
    for label, data in datasets.items():
        lines += [_sizes(label, data), *(f"  {note}" for note in data.notes)]
        lines += _natural_rows(plan, label, data)
    return lines


def _sizes(label: str, data: MultimodalDataset) -> str:
    text = f"dataset '{label}': {len(data.train)} train, {len(data.val)} val, {len(data.test)} test rows"
    if data.in_distribution is not None:
        text += f" (group '{data.in_distribution}')"
    if data.groups:
        groups = ", ".join(f"'{g}' {len(s)}" for g, s in sorted(data.groups.items()))
        text += f"; {len(data.groups)} held-out group(s): {groups} rows"
    return text


def _natural_rows(plan: Plan, label: str, data: MultimodalDataset) -> list[str]:
    """One line per natural_shift evaluation of the dataset: in-distribution and held-out rows."""
    cases = {repr(e.perturbation): e.perturbation for e in plan.eval_cells
             if e.train.dataset == label and e.perturbation.family == NATURAL_SHIFT}
    if not cases:
        return []
    split_name = plan.suite.eval.split
    inside = f"group '{data.in_distribution}', " if data.in_distribution is not None else ""
    parts = []
    for case in sorted(cases.values(), key=lambda c: (c.group is not None, c.group or "")):
        split = getattr(data, split_name) if case.group is None else data.groups[case.group]
        used = len(split) if case.max_rows is None else min(case.max_rows, len(split))
        parts.append(f"in-distribution ({inside}{used} {split_name} rows)" if case.group is None
                     else f"held-out '{case.group}' ({used} rows)")
    return [f"  natural_shift: {'; '.join(parts)}"]
