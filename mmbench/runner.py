"""``run_suite``: the one entry point from a suite to result files and a leaderboard."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cached_property, partial
from pathlib import Path

import pandas as pd
import torch

from mmbench.bounds import MAX_THREADS, check_size
from mmbench.config.datasets import load_datasets
from mmbench.config.options import RunOptions
from mmbench.config.suite import Suite, load_suite
from mmbench.data.base import MultimodalDataset
from mmbench.errors import MMBenchError
from mmbench.execution.device import resolve_device
from mmbench.execution.executor import (
    Executor,
    LocalExecutor,
    RunContext,
    planned,
    summarise_training,
    training_reasons,
)
from mmbench.execution.probe import probe_plan
from mmbench.plan.cells import Plan, check_suite, make_plan, warn_unread
from mmbench.report.analysis import Analysis, Reading, infos
from mmbench.report.leaderboard import split_boards
from mmbench.report.publish import kept, publish_recorded, read_back, stored_frame
from mmbench.report.record import Publication, Stamp
from mmbench.store.database import CellStatus, Store
from mmbench.store.exports import git_hash, package_versions
from mmbench.store.folders import FolderLock, refuse_links, results_folder, writable_folder
from mmbench.train.cache import CheckpointCache

log = logging.getLogger(__name__)

DEFAULT_RESULTS = Path("results")


@dataclass(frozen=True)
class RunResult:
    """What a run produced: the tidy ``frame`` (one row per cell and metric, with intervals),
    the ``scores`` (one row per dataset, model, recipe and score, with intervals), the rendered
    ``leaderboard`` (Markdown), and where the files went (``kept``: nothing had changed since
    they were published, so they were left as they were)."""

    suite: Suite
    leaderboard: str
    out_dir: Path
    files: dict[str, Path]
    models_trained: int
    models_from_cache: int
    seconds: float
    #: returns (frame, scores): those just published, or read back on first use when ``kept``
    tables: Callable[[], tuple[pd.DataFrame, pd.DataFrame]] = field(repr=False, compare=False)
    timings: dict[str, dict[str, float]] = field(default_factory=dict)
    failed: tuple[CellStatus, ...] = ()
    training: tuple[dict[str, str], ...] = ()
    #: what the command line prints: the main boards with a one-paragraph reading of each
    summary: str = ""
    kept: bool = False

    @cached_property
    def _tables(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        return self.tables()

    @property
    def frame(self) -> pd.DataFrame:
        return self._tables[0]

    @property
    def scores(self) -> pd.DataFrame:
        return self._tables[1]

    @property
    def boards(self) -> dict[str, str]:
        """The leaderboard's boards by heading (``"mfeat: main board"``, ...)."""
        return split_boards(self.leaderboard)


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
    warn_unread(plan)
    out_dir = writable_folder(Path(options.out_dir) if options.out_dir else
                              results_folder(DEFAULT_RESULTS, suite.name), "results folder")
    writable_folder(cache_folder(options), "checkpoint cache (--cache-dir)")
    refuse_links(out_dir)
    with FolderLock(out_dir, options.wait):
        return _run_locked(suite, plan, executor, datasets, device, options, out_dir, start)


def cache_folder(options: RunOptions) -> Path:
    return Path(options.cache_dir or DEFAULT_RESULTS / ".cache" / "checkpoints")


def _run_locked(suite: Suite, plan: Plan, executor: Executor, datasets: dict[str, MultimodalDataset],
                device: torch.device, options: RunOptions, out_dir: Path, start: float) -> RunResult:
    """Execute, store and publish while holding the results folder's lock; when no cell ran
    and nothing publishing depends on changed, keep the published files."""
    store = Store(out_dir)
    try:
        ctx, failed, ran = _execute(plan, executor, store, datasets, device, options)
        reading = Reading(suite.metrics, suite.score_metric, suite.baseline, suite.seeds)
        keys, done = [ev.key for ev in plan.eval_cells], store.done()
        stamp = Stamp.of(store, [k for k in keys if k in done], out_dir)
        last = None if ran else kept(store, stamp)
        if last is not None:
            return _kept(suite, last, ctx, out_dir, partial(read_back, out_dir, keys, reading), start)
        frame, reps = stored_frame(store, keys, infos(datasets, plan.reads), reading)
        seconds = time.perf_counter() - start
        timings = {**ctx.timings, "total": {"seconds": seconds}}
        provenance = {
            "suite": suite.name, "config": suite.to_dict(), "versions": package_versions(),
            "git": git_hash(), "device": str(device), "timings": timings, "threads": options.threads,
            "amp": options.amp, "models_trained": ctx.trained, "models_from_cache": ctx.cached,
            "training": ctx.training,
            "failed_cells": [{"cell": f.name, "error": f.error} for f in failed],
        }
        analysis = Analysis.build(frame, reps, infos(datasets, plan.reads), reading)
        out = publish_recorded(store, stamp, out_dir, suite.name, analysis, provenance)
    finally:
        store.close()
    return RunResult(suite, out.leaderboard, out_dir, out.files, ctx.trained, ctx.cached, seconds,
                     partial(_given, out.analysis.frame, out.scores), timings, tuple(failed),
                     tuple(ctx.training), out.summary)


def _given(frame: pd.DataFrame, scores: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return frame, scores


def _kept(suite: Suite, last: Publication, ctx: RunContext, out_dir: Path,
          tables: Callable[[], tuple[pd.DataFrame, pd.DataFrame]], start: float) -> RunResult:
    """The result of a run that kept the files of the last publish: its summary and leaderboard
    as published; the frame and scores read back when asked for."""
    log.info("nothing changed since the last publish: kept the files in %s", out_dir)
    files = {name: Path(path) for name, path in last.files.items()}
    seconds = time.perf_counter() - start
    return RunResult(suite, files["leaderboard"].read_text(), out_dir, files, ctx.trained, ctx.cached, seconds,
                     tables, {**ctx.timings, "total": {"seconds": seconds}}, summary=last.summary, kept=True)


def _execute(plan: Plan, executor: Executor, store: Store, datasets: dict[str, MultimodalDataset],
             device: torch.device, options: RunOptions) -> tuple[RunContext, list[CellStatus], bool]:
    """Record the plan, run the pending cells, and return the context, the failed cells and
    whether any cell ran."""
    cells = planned(plan)
    if options.force:
        store.forget(c.key for c in cells)
    store.begin_run(plan.suite.to_dict(), cells,
                    {label: asdict(info) for label, info in infos(datasets, plan.reads).items()})
    done = store.done()
    pending = {c.key for c in cells if c.key not in done}
    log.info("suite %s: %d models, %d evaluations, %d cells to run (%d already done), device %s",
             plan.suite.name, len(plan.train_cells), len(plan.eval_cells), len(pending),
             len(cells) - len(pending), device)
    cache = CheckpointCache(cache_folder(options))
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
    return ctx, failed, bool(pending)


def make_executor(options: RunOptions, device: torch.device) -> Executor:
    """``local`` or ``ray`` (checked before anything runs)."""
    if options.threads < 1:
        raise MMBenchError(f"--threads must be at least 1, got {options.threads}")
    check_size(options.threads, MAX_THREADS, "--threads", f"this machine has {os.cpu_count()} cores")
    if options.executor == "local":
        return LocalExecutor()
    if options.executor == "ray":
        from mmbench.execution.ray_executor import RayExecutor

        return RayExecutor(options.address, options.workers, device)
    raise MMBenchError(f"unknown executor '{options.executor}'; use local or ray")
