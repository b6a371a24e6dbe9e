"""Publishing a run: the store's cells become the tidy frame, one :class:`Analysis`, and the
result files, plots, ``LEADERBOARD.md`` and ``report.html``.

Everything here reads stored facts and per-row outcomes plus a little information about each
dataset (kept in the store), never the data or the models, so ``mmbench report`` re-renders
the same files from a results folder without recomputing anything. Each publish records what
it depended on and wrote in the store (:mod:`mmbench.report.record`), so that a rerun with
nothing changed keeps the files (:func:`kept`) and an edited metric is named in the log.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mmbench.stats.bootstrap import metric_values
from mmbench.errors import MMBenchError
from mmbench.families.scoring import families
from mmbench.metrics.outcomes import Samples
from mmbench.registry import METRICS
from mmbench.report.analysis import Analysis, DatasetInfo, Reading
from mmbench.report.html import render_html
from mmbench.report.leaderboard import render_leaderboard, render_summary
from mmbench.report.record import Publication, Stamp, log_metric_changes, record
from mmbench.store.database import FILENAME, Store, open_existing
from mmbench.store.exports import write_csv, write_results
from mmbench.store.folders import refuse_links, write_text_atomic
from mmbench.store.rows import CellFacts, rows_to_frame

log = logging.getLogger(__name__)


def stored_frame(store: Store, keys: list[str], datasets: Mapping[str, DatasetInfo],
                 reading: Reading) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Tidy rows of the done cells among ``keys`` and of the cells families derive from them:
    every metric computed from the per-row outcomes, with its 95% paired-bootstrap interval
    (and a ``cell`` column); plus each cell's score-metric replicates (for score intervals)."""
    facts, samples = store.facts(keys), store.samples(keys)
    samples = {k: v for k, v in samples.items() if k in facts}
    classes = {label: info.n_classes for label, info in datasets.items()}
    facts, samples = with_derived(facts, samples, classes)
    scored_by = {info.task: reading.score_metric_of(info.task) for info in datasets.values()}
    names = tuple(dict.fromkeys((*reading.metrics, reading.score_metric, *scored_by.values())))
    measured = metric_values(samples, {m: METRICS.get(m) for m in names if m in METRICS}, classes, scored_by)
    rows, cells = [], []
    for key in [*keys, *sorted(set(samples) - set(keys))]:
        if key not in samples:
            continue
        for metric in names:
            if (key, metric) not in measured.values:
                continue  # a metric of another task
            value, lo, hi = measured.values[(key, metric)]
            rows.append(facts[key].row(metric, value, samples[key].rows, lo, hi))
            cells.append(key)
    return rows_to_frame(rows, cells), measured.replicates


def with_derived(facts: dict[str, CellFacts], samples: dict[str, Samples],
                 classes: Mapping[str, int] | None = None) -> tuple[dict[str, CellFacts], dict[str, Samples]]:
    """The stored cells plus those every family derives from their outcomes, and the reference
    cells families put beside them (:meth:`Family.baselines`, e.g. the trivial baselines;
    ``classes``: dataset -> its class count)."""
    facts, samples = dict(facts), dict(samples)
    for family in families():
        for key, (f, s) in family.derive(facts, samples).items():
            facts[key], samples[key] = f, s
    for family in families():
        for key, (f, s) in family.baselines(facts, samples, classes or {}).items():
            facts[key], samples[key] = f, s
    return facts, samples


@dataclass(frozen=True)
class Published:
    """What publishing wrote: the files, the Markdown leaderboard and the analysis."""

    files: dict[str, Path]
    leaderboard: str
    analysis: Analysis
    #: what a run prints: the main boards with a reading of each (render_summary)
    summary: str = ""
    #: every figure written (under plots/)
    plots: tuple[Path, ...] = ()

    @property
    def scores(self) -> pd.DataFrame:
        return self.analysis.scores


def publish(out_dir: Path, title: str, analysis: Analysis, provenance: dict) -> Published:
    """Write every file of a results folder from the run's one analysis."""
    _log_sanity(analysis.sanity)
    files = write_results(out_dir, analysis.frame,
                          {**provenance, "sanity": analysis.sanity.to_dict(orient="records")})
    for name, table in analysis.tables().items():
        files[name] = write_csv(table, out_dir / f"{name}.csv")
    plots = analysis.plots(out_dir)
    board = render_leaderboard(analysis, title)
    files["leaderboard"] = out_dir / "LEADERBOARD.md"
    write_text_atomic(files["leaderboard"], board)
    files["html"] = out_dir / "report.html"
    description = (provenance.get("config") or {}).get("description", "")
    write_text_atomic(files["html"], render_html(analysis, plots, f"mmbench: {title}", description, provenance))
    return Published(files, board, analysis, render_summary(analysis, title, out_dir),
                     tuple(p.path for p in plots))


def publish_recorded(store: Store, stamp: Stamp, out_dir: Path, title: str, analysis: Analysis,
                     provenance: dict) -> Published:
    """:func:`publish`, first naming each metric whose rows an edit recomputed, then recording
    in ``store`` what this publish depended on (``stamp``) and wrote."""
    log_metric_changes(Publication.read(store), stamp, analysis.frame)
    out = publish(out_dir, title, analysis, provenance)
    record(store, stamp, out.files, out.plots, out.summary)
    return out


def kept(store: Store, stamp: Stamp) -> Publication | None:
    """The last publish recorded in ``store`` when it had this ``stamp`` and its files are still
    as it wrote them (a rerun with nothing changed keeps them), else None."""
    last = Publication.read(store)
    return last if last is not None and last.unchanged(stamp) else None


def read_back(folder: Path, keys: list[str], reading: Reading) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The tidy frame and the scores of a run that kept its files, computed again from its
    store (as a run that publishes has them)."""
    store = open_existing(folder)
    try:
        datasets = {k: DatasetInfo.from_dict(v) for k, v in (store.meta("datasets") or {}).items()}
        frame, reps = stored_frame(store, keys, datasets, reading)
    finally:
        store.close()
    analysis = Analysis.build(frame, reps, datasets, reading)
    return analysis.frame, analysis.scores


def _log_sanity(sanity: pd.DataFrame) -> None:
    failed = sanity[~sanity["passed"].astype(bool)] if not sanity.empty else sanity
    if len(failed):
        log.warning("%d of %d sanity checks flagged (see LEADERBOARD.md and "
                    "results.json 'sanity')", len(failed), len(sanity))


@dataclass(frozen=True)
class StoredRun:
    """A finished run read back from its store: its config, how to read it, and its frame."""

    config: dict
    reading: Reading
    datasets: dict[str, DatasetInfo]
    frame: pd.DataFrame
    reps: dict[str, np.ndarray]
    #: labels of every sample set (``SampleSet.key`` -> labels), to check two runs share rows
    labels: dict[str, np.ndarray]
    #: its store was written by a newer mmbench (read, never written)
    newer: bool = False
    #: (dataset, split or group) of every sample set its cells evaluated
    evaluated: frozenset[tuple[str, str]] = frozenset()

    def analysis(self) -> Analysis:
        return Analysis.build(self.frame, self.reps, self.datasets, self.reading)


def load_run(folder: Path) -> StoredRun:
    """The latest run of a results folder, from its store (``mmbench report`` / ``compare``)."""
    store = open_existing(folder)
    try:
        config = store.config() or {}
        datasets = {k: DatasetInfo.from_dict(v) for k, v in (store.meta("datasets") or {}).items()}
        if not datasets:
            raise MMBenchError(f"{folder}'s store was written by an older mmbench; rerun its suite "
                               "once (finished cells are kept) to re-render it")
        keys = [c.key for c in store.statuses() if c.kind == "eval"]
        reading = Reading.from_config(config)
        frame, reps = stored_frame(store, keys, datasets, reading)
        samples = store.samples(keys).values()
        labels = {s.sample_set.key: s.labels[:s.rows] for s in samples}
        evaluated = frozenset((s.sample_set.dataset, s.sample_set.split) for s in samples)
        newer = store.newer
    finally:
        store.close()
    return StoredRun(config, reading, datasets, frame, reps, labels, newer, evaluated)


def republish(folder: Path) -> Published:
    """Re-render every file of a results folder from its store, recomputing nothing
    (``mmbench report``); the provenance of ``results.json`` is kept. A read-only folder is
    read all the same: its boards are rendered in a temporary folder and nothing is written."""
    refuse_links(folder)
    run = load_run(folder)
    old = folder / "results.json"
    config = run.config
    provenance = json.loads(old.read_text()) if old.is_file() else {"suite": config.get("name"), "config": config}
    for generated in ("schema_version", "rows", "sanity"):
        provenance.pop(generated, None)
    title = config.get("name", folder.name)
    if os.access(folder, os.W_OK) and os.access(folder / FILENAME, os.W_OK) and not run.newer:
        return _republish_recorded(folder, title, run, provenance)
    if os.access(folder, os.W_OK):
        return publish(folder, title, run.analysis(), provenance)
    log.warning("%s is read-only: its files were not rewritten (the boards below are rendered from its "
                "store)", folder)
    with tempfile.TemporaryDirectory() as scratch:
        out = publish(Path(scratch), title, run.analysis(), provenance)
    return Published({}, out.leaderboard, out.analysis, render_summary(out.analysis, title))


def _republish_recorded(folder: Path, title: str, run: StoredRun, provenance: dict) -> Published:
    store = Store(folder)
    try:
        keys = [c.key for c in store.statuses() if c.kind == "eval" and c.status == "done"]
        return publish_recorded(store, Stamp.of(store, keys, folder), folder, title, run.analysis(), provenance)
    finally:
        store.close()
