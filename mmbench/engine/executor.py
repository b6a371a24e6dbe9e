"""Executing a plan: train (or load) each model, then run its evaluation cells.

Cells form a DAG: each evaluation cell depends on its training cell. An executor runs the
*pending* cells (those the store has not finished) and records each one in the store as it
finishes, or as failed with its error; a failure does not stop the other cells unless
``fail_fast``. The local executor is serial and in-process; ``mmbench.engine.ray_executor``
runs the same cell functions as Ray tasks, so both give identical tables.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch
from tqdm.auto import tqdm

from mmbench.data.base import MultimodalDataset
from mmbench.engine.evaluate import evaluate
from mmbench.engine.keys import derive_seed
from mmbench.engine.options import RunOptions
from mmbench.engine.plan import EvalCell, Plan, TrainCell
from mmbench.engine.rows import TidyRow
from mmbench.engine.store import PlannedCell, Store
from mmbench.metrics.bootstrap import Collector, Samples
from mmbench.models.base import FusionModel, create_model
from mmbench.registry import RECIPES
from mmbench.train.cache import CheckpointCache

log = logging.getLogger(__name__)


@dataclass
class RunContext:
    """What cells share: data already on the device, the checkpoint cache, the run's options
    and bookkeeping."""

    datasets: dict[str, MultimodalDataset]
    cache: CheckpointCache
    device: torch.device
    options: RunOptions = field(default_factory=RunOptions)
    trained: int = 0
    cached: int = 0
    failed: int = 0
    timings: dict[str, dict[str, float]] = field(default_factory=lambda: {"train": {}, "eval": {}})


class Executor(Protocol):
    def run(self, plan: Plan, ctx: RunContext, store: Store, pending: set[str]) -> None:
        """Run the cells whose keys are in ``pending`` and record each in ``store``."""


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


def train_or_load(cell: TrainCell, ctx: RunContext) -> FusionModel:
    """The trained model of ``cell``: from the checkpoint cache, or trained and then cached."""
    data = ctx.datasets[cell.dataset]
    torch.manual_seed(derive_seed(cell.seed_key, "init"))
    model = create_model(cell.model_component.name, data.modalities, data.n_classes,
                         **cell.model_component.params)
    meta = None if ctx.options.force else ctx.cache.load(cell.key, model)
    if meta is not None:
        ctx.cached += 1
        log.info("cache hit: %s (key %s)", cell_name(cell), cell.key[:12])
        return model.to(ctx.device).eval()
    model.to(ctx.device)
    recipe = RECIPES.get(cell.recipe_component.name)()
    recipe.amp = ctx.options.amp and recipe.amp_safe
    report = recipe.fit(model, data, cell.recipe_config, derive_seed(cell.seed_key, "train"),
                        progress=ctx.options.verbose)
    ctx.trained += 1
    ctx.timings["train"][cell_name(cell)] = report.seconds
    ctx.cache.save(cell.key, model, {"cell": cell_name(cell), "report": report.to_dict()})
    log.info("trained %s: best val accuracy %.4f at epoch %d/%d (%.1fs)", cell_name(cell),
             report.best_val_accuracy, report.best_epoch, report.epochs_run, report.seconds)
    return model.eval()


def evaluate_cell(model: FusionModel, ev: EvalCell, plan: Plan, ctx: RunContext,
                  shared: dict) -> tuple[list[TidyRow], Samples]:
    """Rows and per-row outcomes of one evaluation cell (``shared``: reuse across one model's
    evaluations)."""
    suite, data = plan.suite, ctx.datasets[ev.train.dataset]
    group = ev.perturbation.group
    split = data.groups[group] if group else getattr(data, suite.eval.split)
    amp = ctx.options.amp and ev.perturbation.family == "clean"  # attacks and the rest in float32
    collector = Collector()
    with torch.autocast(ctx.device.type, dtype=torch.bfloat16, enabled=amp):
        rows = evaluate(model, split, ev, suite.metrics, data.n_classes, suite.eval.batch_size,
                        derive_seed(ev.inputs_key, "eval"), suite.name, progress=ctx.options.verbose,
                        cache=shared, collector=collector)
    return rows, collector.samples(sample_set(ev, suite.eval.split))


def sample_set(ev: EvalCell, split: str) -> str:
    """Which rows a cell evaluated: cells with the same name are paired in the bootstrap."""
    p = ev.perturbation
    return f"{ev.train.dataset}|{p.group or split}|{p.max_rows or 'all'}"


def attempt(work: Callable[[], object], cell: PlannedCell, store: Store, ctx: RunContext) -> object:
    """Run ``work``; record a failure in the store (re-raised under ``fail_fast``) and return
    None, else return its result. Recording success is the caller's job."""
    start = time.perf_counter()
    try:
        return work()
    except Exception as exc:  # a failing cell must not stop the others
        message = f"{type(exc).__name__}: {exc}".splitlines()[0]
        store.record(cell, error=message, seconds=time.perf_counter() - start)
        ctx.failed += 1
        log.warning("cell failed: %s: %s", cell.name, message)
        if ctx.options.fail_fast:
            raise
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
    def _train(cell: TrainCell, ctx: RunContext, store: Store, pending: set[str]) -> FusionModel | None:
        item = PlannedCell(cell.key, "train", cell_name(cell))
        start = time.perf_counter()
        model = attempt(lambda: train_or_load(cell, ctx), item, store, ctx)
        if model is not None and cell.key in pending:
            store.record(item, seconds=time.perf_counter() - start)
        return model  # type: ignore[return-value]

    @staticmethod
    def _evaluate(model: FusionModel | None, ev: EvalCell, plan: Plan, ctx: RunContext,
                  store: Store, shared: dict) -> None:
        item = PlannedCell(ev.key, "eval", eval_name(ev))
        if model is None:
            store.record(item, error="its model failed to train (see the training cell)")
            ctx.failed += 1
            return
        start = time.perf_counter()
        result = attempt(lambda: evaluate_cell(model, ev, plan, ctx, shared), item, store, ctx)
        if result is not None:
            rows, samples = result  # type: ignore[misc]
            seconds = time.perf_counter() - start
            store.record(item, rows, seconds=seconds, samples=samples)
            ctx.timings["eval"][item.name] = seconds

