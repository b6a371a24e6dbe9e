"""``run_suite``: the one entry point from a suite to result files and a leaderboard."""

from __future__ import annotations

import inspect
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from mmbench.data.base import MultimodalDataset
from mmbench.engine.device import resolve_device
from mmbench.engine.executor import (
    Executor,
    LocalExecutor,
    RunContext,
    planned,
    summarise_training,
    training_reasons,
)
from mmbench.engine.options import RunOptions
from mmbench.engine.plan import Plan, check_suite, label_of, make_plan
from mmbench.engine.probe import probe_plan
from mmbench.engine.publish import Reading, infos, publish, stored_frame
from mmbench.engine.results import git_hash, package_versions
from mmbench.engine.store import CellStatus, Store
from mmbench.engine.suite import Component, Suite, load_suite
from mmbench.errors import MMBenchError, first_line
from mmbench.registry import DATASETS
from mmbench.report.leaderboard import split_boards
from mmbench.train.cache import CheckpointCache

log = logging.getLogger(__name__)

DEFAULT_RESULTS = Path("results")


@dataclass(frozen=True)
class RunResult:
    """What a run produced: the tidy ``frame`` (one row per cell and metric, with intervals),
    the ``scores`` (one row per dataset, model, recipe and score, with intervals), the rendered
    ``leaderboard`` (Markdown), and where the files went."""

    suite: Suite
    frame: pd.DataFrame
    leaderboard: str
    out_dir: Path
    files: dict[str, Path]
    models_trained: int
    models_from_cache: int
    seconds: float
    timings: dict[str, dict[str, float]] = field(default_factory=dict)
    failed: tuple[CellStatus, ...] = ()
    scores: pd.DataFrame = field(default_factory=pd.DataFrame)
    training: tuple[dict[str, str], ...] = ()

    @property
    def boards(self) -> dict[str, str]:
        """The leaderboard's boards by heading (``"mfeat: main board"``, ...)."""
        return split_boards(self.leaderboard)


def load_datasets(suite: Suite, trust_pickle: bool = False,
                  data_root: str | None = None) -> dict[str, MultimodalDataset]:
    """Load every dataset of the suite (label -> data), on the CPU; NaN/Inf in the data is a
    one-line error naming where. Loaders that declare ``trust_pickle`` / ``data_root`` /
    ``suite_dir`` get the user's ``--trust-pickle`` / ``--data-dir`` and the suite file's folder."""
    out = {}
    for comp in suite.datasets:
        loader = DATASETS.get(comp.name)
        wants = inspect.signature(loader).parameters
        given = {"trust_pickle": trust_pickle, "data_root": data_root, "suite_dir": suite.folder}
        extra = {k: v for k, v in given.items() if k in wants}
        out[label_of(comp)] = _load(loader, comp, extra)
        check_finite(out[label_of(comp)], label_of(comp))
    return out


def _load(loader: Any, comp: Component, extra: dict[str, Any]) -> MultimodalDataset:
    """Call a (possibly plugin) loader; whatever it raises becomes one line naming the dataset."""
    label = label_of(comp)
    try:
        data = loader(**comp.params, **extra)
    except MMBenchError:
        raise
    except ValueError as exc:
        raise MMBenchError(f"dataset '{label}': {first_line(exc)}") from None
    except Exception as exc:  # plugin code: a missing file, a bad format, ...
        raise MMBenchError(f"dataset '{label}': its loader raised {type(exc).__name__}: {first_line(exc)}; "
                           "check its parameters and files") from None
    if not isinstance(data, MultimodalDataset):
        raise MMBenchError(f"dataset '{label}': its loader returned {type(data).__name__}, not a "
                           "MultimodalDataset (build one with mmbench.make_dataset)")
    return data


def check_finite(data: MultimodalDataset, label: str) -> None:
    for part, split in data.splits():
        for name, x in split.inputs.items():
            bad = int((~torch.isfinite(x)).sum()) if x.is_floating_point() else 0
            if bad:
                raise MMBenchError(f"dataset '{label}': {bad} NaN/Inf values in modality '{name}' "
                                   f"of the {part} split; clean or impute the data first")


def run_suite(suite: Suite | str | Path, options: RunOptions | None = None) -> RunResult:
    """Validate, plan, train or load, evaluate (resuming from the store), and write results
    and the leaderboard."""
    options = options or RunOptions()
    start = time.perf_counter()
    suite = suite if isinstance(suite, Suite) else load_suite(suite)
    if options.seeds:
        suite = suite.with_seeds(tuple(options.seeds))
    check_suite(suite)
    device = resolve_device(options.device)
    executor = make_executor(options, device)
    datasets = load_datasets(suite, options.trust_pickle, options.data_root)
    plan = make_plan(suite, datasets, options.amp)
    probe_plan(plan, datasets)
    out_dir = Path(options.out_dir or DEFAULT_RESULTS / suite.name)  # str or Path
    store = Store(out_dir)
    try:
        ctx, failed = _execute(plan, executor, store, datasets, device, options)
        reading = Reading(suite.metrics, suite.score_metric, suite.baseline)
        frame, reps = stored_frame(store, [ev.key for ev in plan.eval_cells], infos(datasets),
                                   reading.metrics, reading.score_metric)
    finally:
        store.close()
    seconds = time.perf_counter() - start
    timings = {**ctx.timings, "total": {"seconds": seconds}}
    provenance = {
        "suite": suite.name, "config": suite.to_dict(), "versions": package_versions(),
        "git": git_hash(), "device": str(device), "timings": timings, "threads": options.threads,
        "amp": options.amp, "models_trained": ctx.trained, "models_from_cache": ctx.cached,
        "training": ctx.training,
        "failed_cells": [{"cell": f.name, "error": f.error} for f in failed],
    }
    out = publish(out_dir, suite.name, frame, infos(datasets), provenance, reading, reps)
    return RunResult(suite, frame, out.leaderboard, out_dir, out.files, ctx.trained, ctx.cached, seconds,
                     timings, tuple(failed), out.scores, tuple(ctx.training))


def _execute(plan: Plan, executor: Executor, store: Store, datasets: dict[str, MultimodalDataset],
             device: torch.device, options: RunOptions) -> tuple[RunContext, list[CellStatus]]:
    """Record the plan, run the pending cells, and return the context and the failed cells."""
    cells = planned(plan)
    if options.force:
        store.forget(c.key for c in cells)
    store.begin_run(plan.suite.to_dict(), cells,
                    {label: asdict(info) for label, info in infos(datasets).items()})
    done = store.done()
    pending = {c.key for c in cells if c.key not in done}
    log.info("suite %s: %d models, %d evaluations, %d cells to run (%d already done), device %s",
             plan.suite.name, len(plan.train_cells), len(plan.eval_cells), len(pending),
             len(cells) - len(pending), device)
    cache = CheckpointCache(Path(options.cache_dir or DEFAULT_RESULTS / ".cache" / "checkpoints"))
    ctx = RunContext({k: v.to(device) for k, v in datasets.items()}, cache, device, options)
    ctx.reasons = training_reasons(plan, cache, store.train_info(), options.force)
    previous = torch.get_num_threads()
    torch.set_num_threads(options.threads)
    try:
        executor.run(plan, ctx, store, pending)
    finally:
        torch.set_num_threads(previous)
    failed = [s for s in store.statuses() if s.status == "failed"]
    if ctx.training:
        log.info("trained %d models (%s)", len(ctx.training), summarise_training(ctx.training))
    if failed:
        log.warning("%d cells failed (their errors: mmbench status %s)", len(failed), store.path.parent)
    return ctx, failed


def make_executor(options: RunOptions, device: torch.device) -> Executor:
    """``local`` or ``ray`` (checked before anything runs)."""
    if options.threads < 1:
        raise MMBenchError(f"--threads must be at least 1, got {options.threads}")
    if options.executor == "local":
        return LocalExecutor()
    if options.executor == "ray":
        from mmbench.engine.ray_executor import RayExecutor

        return RayExecutor(options.address, options.workers, device)
    raise MMBenchError(f"unknown executor '{options.executor}'; use local or ray")
