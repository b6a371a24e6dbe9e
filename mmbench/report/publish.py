"""Publishing a run: the store's rows become result files, plots and the leaderboard.

Everything here reads stored rows and per-row outcomes plus a little information about each
dataset (kept in the store), never the data or the models, so ``mmbench report`` re-renders
the same files from a results folder without recomputing anything.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmbench.analysis.bootstrap import metric_values
from mmbench.analysis.corruption import corruption_errors, natural_summary, shift_summary
from mmbench.analysis.direction import ScoreMetric
from mmbench.analysis.sanity import DatasetFacts, sanity_checks
from mmbench.analysis.scores import score_intervals, score_replicates
from mmbench.analysis.shapley import modality_shapley, single_modality_views, worst_single_missing
from mmbench.data.base import MultimodalDataset
from mmbench.errors import MMBenchError
from mmbench.registry import METRICS
from mmbench.report.html import render_html
from mmbench.report.leaderboard import render_leaderboard
from mmbench.report.plots import level_curves, mean_level_curves, rank_stability, robust_curves, shapley_bars
from mmbench.store.database import Store
from mmbench.store.exports import write_results
from mmbench.store.rows import rows_to_frame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetInfo:
    """What publishing needs to know about a dataset (stored with the run)."""

    modalities: tuple[str, ...]
    n_classes: int
    continuous: bool

    @classmethod
    def of(cls, data: MultimodalDataset) -> DatasetInfo:
        return cls(data.modality_names, data.n_classes, all(m.is_continuous for m in data.modalities))

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> DatasetInfo:
        return cls(tuple(raw["modalities"]), int(raw["n_classes"]), bool(raw["continuous"]))


def infos(datasets: dict[str, MultimodalDataset]) -> dict[str, DatasetInfo]:
    return {label: DatasetInfo.of(d) for label, d in datasets.items()}


def stored_frame(store: Store, keys: list[str], datasets: dict[str, DatasetInfo],
                 metrics: tuple[str, ...], score_metric: str = "accuracy",
                 ) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Tidy rows of the done cells among ``keys``: every metric computed from the stored
    per-row outcomes, with its 95% paired-bootstrap interval (and a ``cell`` column); plus each
    cell's ``score_metric`` replicates (for score intervals)."""
    facts, samples = store.facts(keys), store.samples(keys)
    samples = {k: v for k, v in samples.items() if k in facts}
    classes = {s.sample_set: datasets[s.sample_set.split("|")[0]].n_classes for s in samples.values()}
    names = tuple(dict.fromkeys((*metrics, score_metric)))
    measured = metric_values(samples, {m: METRICS.get(m) for m in names}, classes, score_metric)
    rows, cells = [], []
    for key in keys:
        if key not in samples:
            continue
        n = len(samples[key].preds)
        for metric in names:
            value, lo, hi = measured.values[(key, metric)]
            rows.append(facts[key].row(metric, value, n, lo, hi))
            cells.append(key)
    return rows_to_frame(rows, cells), measured.replicates


@dataclass(frozen=True)
class Reading:
    """How a run's rows are read: its ``metrics`` in suite order (the first ranks the
    per-family boards), the ``score_metric`` that scores and the composite read, and the
    ``baseline`` model for corruption errors."""

    metrics: tuple[str, ...] = ("accuracy",)
    score_metric: str = "accuracy"
    baseline: str = ""

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Reading:
        """From a suite's mapping (``Suite.to_dict()``, as stored with a run)."""
        return cls(tuple(config.get("metrics") or ("accuracy",)), config.get("score_metric") or "accuracy",
                   config.get("baseline") or "")

    @property
    def scorer(self) -> ScoreMetric:
        return ScoreMetric.of(self.score_metric)


@dataclass(frozen=True)
class Published:
    """What publishing wrote: the files, the Markdown leaderboard and the scores table."""

    files: dict[str, Path]
    leaderboard: str
    scores: pd.DataFrame


def publish(out_dir: Path, title: str, frame: pd.DataFrame, datasets: dict[str, DatasetInfo],
            provenance: dict, reading: Reading, reps: dict[str, np.ndarray] | None = None) -> Published:
    """Analyses computed from the rows (sanity checks, Shapley values, corruption errors,
    scores), the result files, the plots, ``LEADERBOARD.md`` and ``report.html``."""
    sanity = sanity_checks(frame, dataset_facts(datasets))
    _log_sanity(sanity)
    files = write_results(out_dir, frame, {**provenance, "sanity": sanity.to_dict(orient="records")})
    plots: list[Path] = []
    reliance = _dropout_outputs(out_dir, frame, datasets, files, plots)
    shift = _shift_outputs(out_dir, frame, reading, files, plots)
    scores = _score_outputs(out_dir, frame, reps or {}, reading, files, plots)
    plots += robust_curves(frame, out_dir)
    board = render_leaderboard(frame, title, reading.metrics, sanity, reliance, shift, scores, reading.scorer)
    files["leaderboard"] = out_dir / "LEADERBOARD.md"
    files["leaderboard"].write_text(board)
    files["html"] = out_dir / "report.html"
    files["html"].write_text(render_html(board, sorted(set(plots)), f"mmbench: {title}"))
    return Published(files, board, scores)


def _score_outputs(out_dir: Path, frame: pd.DataFrame, reps: dict[str, np.ndarray], reading: Reading,
                   files: dict[str, Path], plots: list[Path]) -> pd.DataFrame:
    """``scores.csv`` with intervals, and the rank-stability figure of the ranking score."""
    runs = score_replicates(frame, reps, reading.baseline, reading.scorer)
    scores = score_intervals(frame, reps, reading.baseline, runs=runs, metric=reading.scorer)
    files["scores"] = out_dir / "scores.csv"
    scores.to_csv(files["scores"], index=False)
    ranking = next((s for s in ("composite", "clean_accuracy") if (scores["score"] == s).any()), None)
    if ranking is not None:
        plots += rank_stability(runs, out_dir, ranking)
    return scores


def _dropout_outputs(out_dir: Path, frame: pd.DataFrame, datasets: dict[str, DatasetInfo],
                     files: dict[str, Path], plots: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Shapley values, single-modality views and rate curves of the dropout family."""
    players = {k: d.modalities for k, d in datasets.items()}
    shapley, views = modality_shapley(frame, players), single_modality_views(frame, players)
    for name, table in (("shapley", shapley), ("single_modality", views)):
        if not table.empty:
            files[name] = out_dir / f"{name}.csv"
            table.to_csv(files[name], index=False)
    if not shapley.empty:
        plots += shapley_bars(shapley, out_dir)
    plots += level_curves(frame, out_dir, "dropout", "random-", "dropout rate per modality")
    return shapley, worst_single_missing(frame), views


def _shift_outputs(out_dir: Path, frame: pd.DataFrame, reading: Reading, files: dict[str, Path],
                   plots: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Corruption errors (``corruptions.csv``), severity curves and natural-shift summaries."""
    baseline, scorer = reading.baseline, reading.scorer
    errors = corruption_errors(frame, baseline, scorer)
    if not errors.empty:
        files["corruptions"] = out_dir / "corruptions.csv"
        errors.to_csv(files["corruptions"], index=False)
        plots += mean_level_curves(frame, out_dir, "shift", "corruption severity")
    return shift_summary(frame, baseline, scorer), natural_summary(frame, scorer), baseline


def dataset_facts(datasets: dict[str, DatasetInfo]) -> dict[str, DatasetFacts]:
    return {label: DatasetFacts(d.n_classes, d.continuous) for label, d in datasets.items()}


def _log_sanity(sanity: pd.DataFrame) -> None:
    failed = sanity[~sanity["passed"]] if not sanity.empty else sanity
    if len(failed):
        log.warning("%d of %d adversarial sanity checks flagged (see LEADERBOARD.md and "
                    "results.json 'sanity')", len(failed), len(sanity))


def republish(folder: Path) -> Published:
    """Re-render every file of a results folder from its store, recomputing nothing
    (``mmbench report``); the provenance of ``results.json`` is kept."""
    import json

    from mmbench.store.database import open_existing

    store = open_existing(folder)
    try:
        config = store.config() or {}
        datasets = {k: DatasetInfo.from_dict(v) for k, v in (store.meta("datasets") or {}).items()}
        if not datasets:
            raise MMBenchError(f"{folder}'s store was written by an older mmbench; rerun its suite "
                               "once (finished cells are kept) to re-render it")
        keys = [c.key for c in store.statuses() if c.kind == "eval"]
        reading = Reading.from_config(config)
        frame, reps = stored_frame(store, keys, datasets, reading.metrics, reading.score_metric)
    finally:
        store.close()
    old = folder / "results.json"
    provenance = json.loads(old.read_text()) if old.is_file() else {"suite": config.get("name"), "config": config}
    for generated in ("schema_version", "rows", "sanity"):
        provenance.pop(generated, None)
    return publish(folder, config.get("name", folder.name), frame, datasets, provenance, reading, reps)
