"""From a suite to result files and a leaderboard: :func:`prepare` (load, check, plan: what
``validate`` does, and the first half of every run) and :func:`run_suite` (prepare, execute,
store, analyse, publish), shared by ``mmbench run``, ``mmbench.run`` and ``mmbench.evaluate``."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from mmbench.bounds import MAX_THREADS, check_size
from mmbench.config.checks import check_suite
from mmbench.config.datasets import load_datasets
from mmbench.config.options import RunOptions
from mmbench.config.suite import Suite, load_suite, parse_suite
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
from mmbench.plan.cells import Plan, make_plan, warn_unread
from mmbench.report.analysis import Analysis, Reading, infos
from mmbench.report.leaderboard import split_boards
from mmbench.report.publish import kept, publish_recorded, read_back, stored_frame
from mmbench.report.record import Publication, Stamp
from mmbench.store.database import CellStatus, Store
from mmbench.store.exports import git_hash, package_versions
from mmbench.store.folders import FolderLock, refuse_links, results_folder, writable_file, writable_folder
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


def run_suite(suite: Suite | str | Path | Mapping[str, Any], options: RunOptions | None = None) -> RunResult:
    """Prepare the suite (:func:`prepare`), then train or load, evaluate (resuming from the
    store), write results and the leaderboard, and append the leaderboard to ``options.summary``."""
    options = options or RunOptions()
    start = time.perf_counter()
    suite = as_suite(suite)
    summary = None if options.summary is None else writable_file(Path(options.summary), "--summary")
    prepared = prepare(suite, options)
    out_dir = writable_folder(Path(options.out_dir) if options.out_dir else
                              results_folder(DEFAULT_RESULTS, suite.name), "results folder")
    writable_folder(cache_folder(options.cache_dir), "checkpoint cache (--cache-dir)")
    refuse_links(out_dir)
    with FolderLock(out_dir, options.wait):
        result = _run_locked(prepared, options, out_dir, start)
    append_summary(summary, result.leaderboard)
    return result


def as_suite(suite: Suite | str | Path | Mapping[str, Any]) -> Suite:
    """A :class:`Suite` given as itself, as a suite file's path, or as a mapping with a suite
    file's keys (named ``suite`` unless it says)."""
    if isinstance(suite, Suite):
        return suite
    if isinstance(suite, Mapping):
        return parse_suite({"name": "suite", **dict(suite)}, "suite")
    return load_suite(suite)


@dataclass(frozen=True)
class Prepared:
    """A suite ready to execute, as :func:`prepare` leaves it: the suite (``seeds`` applied),
    its datasets (label -> data, on the CPU), the checked plan, the device, the executor, and
    the warnings of probing each model once."""

    suite: Suite
    datasets: dict[str, MultimodalDataset]
    plan: Plan
    device: torch.device
    executor: Executor
    warnings: tuple[str, ...] = ()


def prepare(suite: Suite | str | Path | Mapping[str, Any], options: RunOptions | None = None) -> Prepared:
    """Everything a run does before it executes, and all that validating does: the suite loaded
    and given ``options.seeds``, checked; the device and the executor resolved (``threads``
    bounded); the datasets loaded (``trust_pickle``, ``data_root``); the plan made (``amp`` is
    part of the cells' keys); each model probed once. A mistake is a one-line
    :class:`MMBenchError`; nothing is written, trained or evaluated."""
    options = options or RunOptions()
    suite = as_suite(suite)
    if options.seeds:
        suite = suite.with_seeds(options.seeds)
    check_suite(suite)
    device = resolve_device(options.device)
    executor = make_executor(options, device)
    datasets = load_datasets(suite, options.data.trust_pickle, options.data.data_root)
    plan = make_plan(suite, datasets, options.amp)
    warnings = probe_plan(plan, datasets)
    warn_unread(plan)
    return Prepared(suite, datasets, plan, device, executor, tuple(warnings))


def cache_folder(cache_dir: str | Path | None) -> Path:
    """The checkpoint cache: ``cache_dir`` (``--cache-dir``), else ``results/.cache/checkpoints``."""
    return Path(cache_dir or DEFAULT_RESULTS / ".cache" / "checkpoints")


def append_summary(path: Path | None, text: str) -> None:
    """Append ``text`` (Markdown boards) to the ``--summary`` file, when there is one."""
    if path is not None:
        with Path(path).open("a", encoding="utf-8") as handle:
            handle.write(text + "\n")


def _run_locked(prepared: Prepared, options: RunOptions, out_dir: Path, start: float) -> RunResult:
    """Execute, store and publish while holding the results folder's lock; when no cell ran
    and nothing publishing depends on changed, keep the published files."""
    suite, plan, datasets = prepared.suite, prepared.plan, prepared.datasets
    store = Store(out_dir)
    try:
        ctx, failed, ran = _execute(prepared, store, options)
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
            "git": git_hash(), "device": str(prepared.device), "timings": timings, "threads": options.threads,
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


def _execute(prepared: Prepared, store: Store, options: RunOptions) -> tuple[RunContext, list[CellStatus], bool]:
    """Record the plan, run the pending cells, and return the context, the failed cells and
    whether any cell ran."""
    plan, datasets, device, run = prepared.plan, prepared.datasets, prepared.device, options.execution
    cells = planned(plan)
    if run.force:
        store.forget(c.key for c in cells)
    store.begin_run(plan.suite.to_dict(), cells,
                    {label: asdict(info) for label, info in infos(datasets, plan.reads).items()})
    done = store.done()
    pending = {c.key for c in cells if c.key not in done}
    log.info("suite %s: %d models, %d evaluations, %d cells to run (%d already done), device %s",
             plan.suite.name, len(plan.train_cells), len(plan.eval_cells), len(pending),
             len(cells) - len(pending), device)
    cache = CheckpointCache(cache_folder(options.cache_dir))
    ctx = RunContext({k: v.to(device) for k, v in datasets.items()}, cache, device, run)
    ctx.reasons = training_reasons(plan, cache, store.train_info(), run.force)
    previous = torch.get_num_threads()
    torch.set_num_threads(run.threads)
    try:
        prepared.executor.run(plan, ctx, store, pending)
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

        return RayExecutor(options.address, options.workers, device, options.data)
    raise MMBenchError(f"unknown executor '{options.executor}'; use local or ray")
