"""Executing a plan: train (or load) each model, then run its evaluation cells.

Cells form a DAG: each evaluation cell depends on its training cell. An executor runs the
*pending* cells (those the store has not finished) and records each one in the store as it
finishes, or as failed with its error; a failure does not stop the other cells unless
``fail_fast``. The local executor is serial and in-process; ``mmbench.execution.ray_executor``
runs the same cell functions as Ray tasks, so both give identical tables.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import nn
from tqdm.auto import tqdm

from mmbench.config.build import build_model
from mmbench.config.options import ExecOptions
from mmbench.data.base import MultimodalDataset
from mmbench.execution.evaluate import EvalSettings, evaluate
from mmbench.hashing import derive_seed
from mmbench.metrics.outcomes import Samples, SampleSet
from mmbench.plan.cells import EvalCell, Plan, TrainCell, keeps_full_probs
from mmbench.plan.sources import changed_modules
from mmbench.registry import RECIPES
from mmbench.store.database import PlannedCell, Store
from mmbench.store.rows import CellFacts
from mmbench.train.cache import CheckpointCache

log = logging.getLogger(__name__)


@dataclass
class RunContext:
    """What cells share: data already on the device, the checkpoint cache, how cells execute
    (``options``: threads, amp, force, fail_fast, progress bars) and bookkeeping."""

    datasets: dict[str, MultimodalDataset]
    cache: CheckpointCache
    device: torch.device
    options: ExecOptions = field(default_factory=ExecOptions)
    trained: int = 0
    cached: int = 0
    failed: int = 0
    timings: dict[str, dict[str, float]] = field(default_factory=lambda: {"train": {}, "eval": {}})
    #: train cell key -> why it would be trained (see training_reasons); models trained, with why
    reasons: dict[str, str] = field(default_factory=dict)
    training: list[dict[str, str]] = field(default_factory=list)

    def count_training(self, cell: TrainCell) -> None:
        self.trained += 1
        self.training.append({"cell": cell_name(cell), "reason": self.reasons.get(cell.key, UNREADABLE)})


class Executor(Protocol):
    def run(self, plan: Plan, ctx: RunContext, store: Store, pending: set[str]) -> None:
        """Run the cells whose keys are in ``pending`` and record each in ``store``."""


NEW, FORCED, UNREADABLE = "new", "forced (--force)", "checkpoint unreadable"


def training_reasons(plan: Plan, cache: CheckpointCache, previous: dict[str, dict], force: bool) -> dict[str, str]:
    """Train cell key -> why it would be trained: ``forced``, ``code changed: <modules>`` (the
    store saw the same model, data, recipe and seed under other code), or ``new``; cells with a
    checkpoint in the cache are left out (they are loaded)."""
    by_seed_key = {info.get("seed_key"): info for info in previous.values()}
    out = {}
    for cell in plan.train_cells:
        if force:
            out[cell.key] = FORCED
        elif not cache.path(cell.key).is_file():
            before = by_seed_key.get(cell.seed_key)
            changed = changed_modules(before.get("code", {}), cell.code) if before else []
            out[cell.key] = f"code changed: {', '.join(changed)}" if changed else NEW
    return out


def summarise_training(training: list[dict[str, str]]) -> str:
    """``2 new, 1 code changed: pkg.helper`` (counts by reason)."""
    counts: dict[str, int] = {}
    for item in training:
        counts[item["reason"]] = counts.get(item["reason"], 0) + 1
    return "; ".join(f"{n} {reason}" for reason, n in counts.items())


def cell_name(cell: TrainCell) -> str:
    return f"{cell.dataset}/{cell.model}/{cell.recipe}/seed{cell.seed}"


def eval_name(ev: EvalCell) -> str:
    p = ev.perturbation
    return f"{cell_name(ev.train)}/{p.name}/{p.target}/{p.severity:g}"


def planned(plan: Plan) -> list[PlannedCell]:
    """Every cell of the plan in execution order: each training cell, then its evaluations."""
    out = []
    for cell in plan.train_cells:
        out.append(PlannedCell(cell.key, "train", cell_name(cell)))
        out += [PlannedCell(ev.key, "eval", eval_name(ev)) for ev in plan.evals_for(cell)]
    return out


def train_or_load(cell: TrainCell, ctx: RunContext) -> nn.Module:
    """The trained model of ``cell``: from the checkpoint cache, or trained and then cached."""
    data = ctx.datasets[cell.dataset]
    torch.manual_seed(derive_seed(cell.seed_key, "init"))
    model = build_model(cell.model_component.name, data.modalities, data.n_classes,
                        cell.model_component.params, cell.model, f"dataset '{cell.dataset}'")
    meta = None if ctx.options.force else ctx.cache.load(cell.key, model)
    if meta is not None:
        ctx.cached += 1
        log.info("cache hit: %s (key %s)", cell_name(cell), cell.key[:12])
        return model.to(ctx.device).eval()
    model.to(ctx.device)
    ctx.count_training(cell)
    recipe = RECIPES.get(cell.recipe_component.name)()
    recipe.amp = ctx.options.amp and recipe.amp_safe
    report = recipe.fit(model, data, cell.recipe_config, derive_seed(cell.seed_key, "train"),
                        progress=ctx.options.verbose)
    ctx.timings["train"][cell_name(cell)] = report.seconds
    ctx.cache.save(cell.key, model, {"cell": cell_name(cell), "report": report.to_dict()})
    log.info("trained %s: best val %s %.4f at epoch %d/%d (%.1fs)", cell_name(cell), report.val_metric,
             report.best_val_accuracy, report.best_epoch, report.epochs_run, report.seconds)
    return model.eval()


def evaluate_cell(model: nn.Module, ev: EvalCell, plan: Plan, ctx: RunContext,
                  shared: dict) -> tuple[CellFacts, Samples]:
    """What one evaluation cell measured and its per-row outcomes (``shared``: reuse across
    one model's evaluations)."""
    suite, data = plan.suite, ctx.datasets[ev.train.dataset]
    group = ev.perturbation.group
    split = data.groups[group] if group else getattr(data, suite.eval.split)
    amp = ctx.options.amp and ev.perturbation.amp_safe  # attacks and the rest in float32
    settings = EvalSettings(suite.eval.batch_size, derive_seed(ev.inputs_key, "eval"),
                            ctx.options.verbose, keeps_full_probs(suite), data.task)
    with torch.autocast(ctx.device.type, dtype=torch.bfloat16, enabled=amp):
        collector = evaluate(model, split, ev.perturbation, settings, shared)
    rows = sample_set(ev, suite.eval.split, len(split))
    return cell_facts(ev, suite.name, rows), collector.samples(rows)


def cell_facts(ev: EvalCell, suite: str, rows: SampleSet) -> CellFacts:
    tc, p = ev.train, ev.perturbation
    return CellFacts(suite=suite, dataset=tc.dataset, model=tc.model, recipe=tc.recipe, seed=tc.seed,
                     family=p.family, perturbation=p.name, target=p.target, severity=float(p.severity),
                     split=rows.split, rows=rows.rows or 0, facts=p.facts())


def sample_set(ev: EvalCell, split: str, n: int) -> SampleSet:
    """Which rows a cell evaluated (of the ``n`` rows of its split or group): cells of the same
    sample set are paired in the bootstrap; a ``max_rows`` of at least ``n`` means all rows."""
    p = ev.perturbation
    subset = p.max_rows if p.max_rows is not None and p.max_rows < n else None
    return SampleSet(ev.train.dataset, p.group or split, subset)


def train_info(cell: TrainCell) -> dict:
    """What the store keeps of a finished training cell (to say later why it retrains)."""
    return {"seed_key": cell.seed_key, "code": cell.code}


@dataclass(frozen=True)
class Outcome:
    """What running one cell's work gave: its value, or the failure (a one-line message and
    the exception), and how long it took. Both executors run cells through :func:`guarded`."""

    value: object = None
    error: str | None = None
    seconds: float = 0.0
    exception: BaseException | None = field(default=None, compare=False)


def guarded(work: Callable[[], object]) -> Outcome:
    """Run ``work``; a failure is caught (a failing cell must not stop the others)."""
    start = time.perf_counter()
    try:
        value = work()
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}".splitlines()[0]
        return Outcome(None, message, time.perf_counter() - start, exc)
    return Outcome(value, None, time.perf_counter() - start)


def attempt(work: Callable[[], object], cell: PlannedCell, store: Store, ctx: RunContext) -> object:
    """Run ``work``; record a failure in the store (re-raised under ``fail_fast``) and return
    None, else return its result. Recording success is the caller's job."""
    outcome = guarded(work)
    if outcome.error is None:
        return outcome.value
    store.record(cell, error=outcome.error, seconds=outcome.seconds)
    ctx.failed += 1
    log.warning("cell failed: %s: %s", cell.name, outcome.error)
    if ctx.options.fail_fast and outcome.exception is not None:
        raise outcome.exception
    return None


class LocalExecutor:
    """Runs every pending cell in this process, one after another."""

    def run(self, plan: Plan, ctx: RunContext, store: Store, pending: set[str]) -> None:
        bar = tqdm(total=len(pending), desc="cells", unit="cell", disable=not ctx.options.progress)
        for cell in plan.train_cells:
            evs = [ev for ev in plan.evals_for(cell) if ev.key in pending]
            if not evs and cell.key not in pending:
                continue
            bar.set_postfix_str(cell_name(cell))
            model = self._train(cell, ctx, store, pending)
            bar.update(cell.key in pending)
            shared: dict = {}  # reused work across this model's evaluations (see evaluate())
            for ev in evs:
                self._evaluate(model, ev, plan, ctx, store, shared)
                bar.update()
        bar.close()

    @staticmethod
    def _train(cell: TrainCell, ctx: RunContext, store: Store, pending: set[str]) -> nn.Module | None:
        item = PlannedCell(cell.key, "train", cell_name(cell))
        start = time.perf_counter()
        model = attempt(lambda: train_or_load(cell, ctx), item, store, ctx)
        if model is not None and cell.key in pending:
            store.record(item, seconds=time.perf_counter() - start, info=train_info(cell))
        return model  # type: ignore[return-value]

    @staticmethod
    def _evaluate(model: nn.Module | None, ev: EvalCell, plan: Plan, ctx: RunContext,
                  store: Store, shared: dict) -> None:
        item = PlannedCell(ev.key, "eval", eval_name(ev))
        if model is None:
            store.record(item, error="its model failed to train (see the training cell)")
            ctx.failed += 1
            return
        start = time.perf_counter()
        result = attempt(lambda: evaluate_cell(model, ev, plan, ctx, shared), item, store, ctx)
        if result is not None:
            facts, samples = result  # type: ignore[misc]
            seconds = time.perf_counter() - start
            store.record(item, facts, seconds=seconds, samples=samples)
            ctx.timings["eval"][item.name] = seconds

