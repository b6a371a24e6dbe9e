"""The Ray executor: the same cells as the local executor, as Ray tasks (``--executor ray``).

The DAG is explicit: one task per training cell, and one task per trained model evaluating its
pending evaluation cells, which takes the training task's result as an argument, so Ray starts
it only after the model is trained (and the encoder-output reuse of a sweep stays within one
task). Tasks ask for ``num_gpus=1`` when the device is CUDA. Workers load the datasets once per
process and run cells with the same seeds and thread count as the local executor, so the
tables are identical. The checkpoint cache must be on storage every node sees (a local Ray
instance always does). The driver records each finished cell in the store as results arrive.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import torch
from tqdm.auto import tqdm

from mmbench.config.options import DataOptions, ExecOptions
from mmbench.config.suite import Suite
from mmbench.errors import MMBenchError
from mmbench.execution.executor import (
    RunContext,
    cell_name,
    eval_name,
    evaluate_cell,
    guarded,
    train_info,
    train_or_load,
)
from mmbench.metrics.outcomes import Samples
from mmbench.plan.cells import EvalCell, Plan, TrainCell
from mmbench.store.database import PlannedCell, Store
from mmbench.store.rows import CellFacts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker needs to rebuild the run context (shipped once, shared by all tasks): how
    cells execute and how the datasets are loaded."""

    suite: Suite
    device: str
    cache_dir: str
    options: ExecOptions
    data: DataOptions


@dataclass(frozen=True)
class CellResult:
    key: str
    facts: CellFacts | None = None
    error: str | None = None
    seconds: float = 0.0
    trained: int = 0
    cached: int = 0
    samples: Samples | None = None


_CONTEXTS: dict[int, RunContext] = {}


def worker_context(settings: WorkerSettings) -> RunContext:
    """This worker process's context for ``settings`` (datasets loaded once per process)."""
    from mmbench.config.datasets import load_datasets
    from mmbench.train.cache import CheckpointCache

    key = hash(repr(settings))
    if key not in _CONTEXTS:
        device = torch.device(settings.device)
        options = replace(settings.options, progress=False, verbose=False)
        loaded = load_datasets(settings.suite, settings.data.trust_pickle, settings.data.data_root)
        datasets = {k: v.to(device) for k, v in loaded.items()}
        _CONTEXTS.clear()
        _CONTEXTS[key] = RunContext(datasets, CheckpointCache(settings.cache_dir), device, options)
    torch.set_num_threads(settings.options.threads)
    ctx = _CONTEXTS[key]
    ctx.trained = ctx.cached = 0
    ctx.training.clear()
    return ctx


def train_task(settings: WorkerSettings, cell: TrainCell) -> CellResult:
    """Train (or load) one model; the checkpoint goes to the shared cache."""
    ctx = worker_context(settings)
    outcome = guarded(lambda: train_or_load(cell, ctx))  # a failure is reported to the driver
    if outcome.error is not None:
        return CellResult(cell.key, error=outcome.error, seconds=outcome.seconds)
    return CellResult(cell.key, seconds=outcome.seconds,
                      trained=ctx.trained, cached=ctx.cached)


def eval_task(settings: WorkerSettings, plan: Plan, cell: TrainCell, evs: list[EvalCell],
              trained: CellResult) -> list[CellResult]:
    """Evaluate one trained model under its pending cells (after its training task)."""
    if trained.error is not None:
        return [CellResult(ev.key, error="its model failed to train (see the training cell)") for ev in evs]
    ctx = worker_context(settings)
    model, shared, out = train_or_load(cell, ctx), {}, []
    for ev in evs:  # one failing cell does not stop the others
        outcome = guarded(lambda ev=ev: evaluate_cell(model, ev, plan, ctx, shared))
        if outcome.error is not None:
            out.append(CellResult(ev.key, error=outcome.error, seconds=outcome.seconds))
        else:
            facts, samples = outcome.value  # type: ignore[misc]
            out.append(CellResult(ev.key, facts=facts, seconds=outcome.seconds, samples=samples))
    return out


class RayExecutor:
    """Runs the plan's pending cells as Ray tasks on a cluster or a local instance."""

    def __init__(self, address: str | None, workers: int | None, device: torch.device,
                 data: DataOptions) -> None:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise MMBenchError("--executor ray needs Ray: pip install 'mmbench[ray]' (or "
                               "'ray>=2.9') into this environment") from None
        if workers is not None and workers < 1:
            raise MMBenchError(f"--workers must be at least 1, got {workers}")
        self.address, self.workers, self.device, self.data = address, workers, device, data

    def run(self, plan: Plan, ctx: RunContext, store: Store, pending: set[str]) -> None:
        import ray

        started = not ray.is_initialized()
        if started:
            ray.init(address=self.address, num_cpus=None if self.address else self.workers,
                     include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
        try:
            self._run(ray, plan, ctx, store, pending)
        finally:
            if started:
                ray.shutdown()

    def _run(self, ray: Any, plan: Plan, ctx: RunContext, store: Store, pending: set[str]) -> None:
        settings = WorkerSettings(plan.suite, str(self.device), str(ctx.cache.root), ctx.options, self.data)
        resources = {"num_cpus": 1, "num_gpus": 1 if self.device.type == "cuda" else 0}
        train, evaluate = (ray.remote(**resources)(f) for f in (train_task, eval_task))
        plan_ref, settings_ref = ray.put(plan), ray.put(settings)  # shipped once, not per task
        names, futures, cells = {}, [], {}
        for cell in plan.train_cells:
            evs = [ev for ev in plan.evals_for(cell) if ev.key in pending]
            if not evs and cell.key not in pending:
                continue
            names[cell.key] = PlannedCell(cell.key, "train", cell_name(cell))
            names.update({ev.key: PlannedCell(ev.key, "eval", eval_name(ev)) for ev in evs})
            trained = train.remote(settings_ref, cell)
            cells[cell.key] = cell
            futures.append(trained)
            if evs:
                futures.append(evaluate.remote(settings_ref, plan_ref, cell, evs, trained))
        self._collect(ray, futures, names, cells, ctx, store, pending)

    @staticmethod
    def _collect(ray: Any, futures: list, names: dict[str, PlannedCell], cells: dict[str, TrainCell],
                 ctx: RunContext, store: Store, pending: set[str]) -> None:
        """Record results as tasks finish; under ``fail_fast`` cancel the rest on a failure."""
        bar = tqdm(total=len(pending), desc="cells", unit="cell", disable=not ctx.options.progress)
        waiting = list(futures)
        while waiting:
            (done,), waiting = ray.wait(waiting, num_returns=1)
            results = ray.get(done)
            for result in results if isinstance(results, list) else [results]:
                ctx.cached += result.cached
                if result.trained:
                    ctx.count_training(cells[result.key])
                if result.key in pending or result.error:
                    info = train_info(cells[result.key]) if result.key in cells and not result.error else None
                    store.record(names[result.key], result.facts, result.error, result.seconds,
                                 result.samples, info)
                ctx.failed += result.error is not None
                bar.update(result.key in pending)
                if result.error and ctx.options.fail_fast:
                    for future in waiting:
                        ray.cancel(future)
                    raise MMBenchError(f"cell {names[result.key].name} failed: {result.error}")
        bar.close()
