"""Executing a plan: train (or load) each model, then run its evaluation cells.

The local executor is serial and in-process. Every cell only reads the shared context and
returns rows, so other executors can run cells elsewhere and give identical tables.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from mmbench.data.base import MultimodalDataset
from mmbench.engine.evaluate import evaluate
from mmbench.engine.keys import derive_seed
from mmbench.engine.plan import Plan, TrainCell
from mmbench.engine.rows import TidyRow
from mmbench.models.base import FusionModel, create_model
from mmbench.registry import RECIPES
from mmbench.train.cache import CheckpointCache

log = logging.getLogger(__name__)


@dataclass
class RunContext:
    """What cells share: data already on the device, the checkpoint cache, bookkeeping."""

    datasets: dict[str, MultimodalDataset]
    cache: CheckpointCache
    device: torch.device
    progress: bool = True
    trained: int = 0
    cached: int = 0
    timings: dict[str, dict[str, float]] = field(default_factory=lambda: {"train": {}, "eval": {}})


def cell_name(cell: TrainCell) -> str:
    return f"{cell.dataset}/{cell.model}/{cell.recipe}/seed{cell.seed}"


def train_or_load(cell: TrainCell, ctx: RunContext) -> FusionModel:
    """The trained model of ``cell``: from the checkpoint cache, or trained and then cached."""
    data = ctx.datasets[cell.dataset]
    torch.manual_seed(derive_seed(cell.seed_key, "init"))
    model = create_model(cell.model_component.name, data.modalities, data.n_classes,
                         **cell.model_component.params)
    meta = ctx.cache.load(cell.key, model)
    if meta is not None:
        ctx.cached += 1
        log.info("cache hit: %s (key %s)", cell_name(cell), cell.key[:12])
        return model.to(ctx.device).eval()
    model.to(ctx.device)
    recipe = RECIPES.get(cell.recipe_component.name)()
    report = recipe.fit(model, data, cell.recipe_config, derive_seed(cell.seed_key, "train"),
                        progress=ctx.progress)
    ctx.trained += 1
    ctx.timings["train"][cell_name(cell)] = report.seconds
    ctx.cache.save(cell.key, model, {"cell": cell_name(cell), "report": report.to_dict()})
    log.info("trained %s: best val accuracy %.4f at epoch %d/%d (%.1fs)", cell_name(cell),
             report.best_val_accuracy, report.best_epoch, report.epochs_run, report.seconds)
    return model.eval()


class LocalExecutor:
    """Runs every cell in this process, one after another."""

    def run(self, plan: Plan, ctx: RunContext) -> list[TidyRow]:
        rows: list[TidyRow] = []
        suite = plan.suite
        cells = tqdm(plan.train_cells, desc="cells", unit="model", disable=not ctx.progress)
        for cell in cells:
            cells.set_postfix_str(cell_name(cell))
            model = train_or_load(cell, ctx)
            data = ctx.datasets[cell.dataset]
            shared: dict = {}  # reused work across this model's evaluations (see evaluate())
            for ev in plan.evals_for(cell):
                start = time.perf_counter()
                group = ev.perturbation.group
                split = data.groups[group] if group else getattr(data, suite.eval.split)
                rows += evaluate(model, split, ev, suite.metrics, data.n_classes,
                                 suite.eval.batch_size, derive_seed(ev.inputs_key, "eval"), suite.name,
                                 progress=ctx.progress, cache=shared)
                p = ev.perturbation
                ctx.timings["eval"][f"{cell_name(cell)}/{p.name}/{p.target}/{p.severity:g}"] = (
                    time.perf_counter() - start
                )
        return rows
