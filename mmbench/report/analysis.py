"""One analysis of a run, built once: every family's scores (with paired-bootstrap intervals),
the composite, the families' tables, boards and plots, and the sanity checks. The result
files, ``LEADERBOARD.md``, ``report.html``, ``mmbench report``, ``mmbench compare`` and
``--summary`` all read this object; nothing downstream re-derives what it holds."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmbench.config.suite import scoring_metric, serves
from mmbench.data.tasks import CLASSIFICATION
from mmbench.stats.direction import ScoreMetric
from mmbench.stats.sanity import CHECK_COLUMNS
from mmbench.stats.unread import masked, unread_rows
from mmbench.data.base import MultimodalDataset
from mmbench.families.base import Context, Family
from mmbench.families.scoring import (
    COMPOSITE,
    composite_parts,
    compute_scores,
    families,
    role,
    score_replicates,
    with_intervals,
)
from mmbench.render.plots import Plot, profile, rank_stability
from mmbench.render.tables import Board
from mmbench.report.marks import degenerate_models, mark_board

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetInfo:
    """What the analysis needs to know about a dataset (stored with the run)."""

    modalities: tuple[str, ...]
    n_classes: int
    continuous: bool
    #: model label -> the modalities it takes (a model not listed takes every modality)
    reads: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: split or group name -> a content hash of its inputs and labels (empty: an older store)
    splits: Mapping[str, str] = field(default_factory=dict)
    task: str = CLASSIFICATION

    @classmethod
    def of(cls, data: MultimodalDataset, reads: Mapping[str, tuple[str, ...]] | None = None) -> DatasetInfo:
        return cls(data.modality_names, data.n_classes, all(m.is_continuous for m in data.modalities),
                   {model: tuple(r) for model, r in (reads or {}).items()}, data.split_fingerprints(), data.task)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> DatasetInfo:
        reads = raw.get("reads") if isinstance(raw.get("reads"), dict) else {}
        splits = raw.get("splits") if isinstance(raw.get("splits"), dict) else {}
        return cls(tuple(raw["modalities"]), int(raw["n_classes"]), bool(raw["continuous"]),
                   {str(m): tuple(r) for m, r in reads.items()}, {str(k): str(v) for k, v in splits.items()},
                   str(raw.get("task") or CLASSIFICATION))


def infos(datasets: Mapping[str, MultimodalDataset],
          reads: Mapping[str, Mapping[str, tuple[str, ...]]] | None = None) -> dict[str, DatasetInfo]:
    """Each dataset's :class:`DatasetInfo` (``reads``: dataset -> model -> modalities taken)."""
    return {label: DatasetInfo.of(d, (reads or {}).get(label)) for label, d in datasets.items()}


@dataclass(frozen=True)
class Reading:
    """How a run's rows are read: its ``metrics`` in suite order (the first ranks the
    per-metric boards), the ``score_metric`` that scores and the composite read, the
    ``baseline`` model for corruption errors, and the training ``seeds``."""

    metrics: tuple[str, ...] = ("accuracy",)
    score_metric: str = "accuracy"
    baseline: str = ""
    seeds: tuple[int, ...] = (0,)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Reading:
        """From a suite's mapping (``Suite.to_dict()``, as stored with a run)."""
        return cls(tuple(config.get("metrics") or ("accuracy",)), config.get("score_metric") or "accuracy",
                   config.get("baseline") or "", tuple(config.get("seeds") or (0,)))

    @property
    def scorer(self) -> ScoreMetric:
        return ScoreMetric.of(self.score_metric)

    def score_metric_of(self, task: str) -> str:
        """The metric a dataset of ``task`` is scored by (the suite's score metric, or the first
        of its metrics defined for the task); the score metric when none is."""
        return scoring_metric(task, self.score_metric, self.metrics) or self.score_metric

    def for_task(self, task: str) -> Reading:
        """How the datasets of ``task`` are read: their score metric, the metrics defined for them."""
        metrics = tuple(m for m in self.metrics if serves(m, task)) or self.metrics
        return replace(self, metrics=metrics, score_metric=self.score_metric_of(task))


@dataclass
class Analysis:
    """Everything computed from a run's tidy frame (see the module docstring)."""

    ctx: Context
    families: list[Family]
    scores: pd.DataFrame
    runs: pd.DataFrame
    sanity: pd.DataFrame
    #: the tidy rows as exported (:func:`exported`: "not read" cells kept with ``read`` False);
    #: the context's frame has those cells removed so that no score or board uses them
    tidy: pd.DataFrame = field(default_factory=pd.DataFrame)

    #: a run whose datasets have several tasks: one analysis per task (each with its own score
    #: metric and direction), this one their union; empty for a run of one task
    parts: Mapping[str, Analysis] = field(default_factory=dict)

    @classmethod
    def build(cls, frame: pd.DataFrame, reps: dict[str, np.ndarray], datasets: Mapping[str, DatasetInfo],
              reading: Reading) -> Analysis:
        """The analysis of a run; datasets of different tasks are read apart (:meth:`of`), each
        by the score metric of its task (:meth:`Reading.for_task`)."""
        tasks = sorted({d.task for d in datasets.values()}) or [CLASSIFICATION]
        if len(tasks) == 1:
            return cls.of_task(frame, reps, datasets, reading.for_task(tasks[0]))
        parts = {}
        for task in tasks:
            names = {k: d for k, d in datasets.items() if d.task == task}
            rows = frame[frame["dataset"].isin(list(names))]
            keys = set(rows["cell"]) if "cell" in rows else set(reps)
            parts[task] = cls.of_task(rows, {k: v for k, v in reps.items() if k in keys}, names, reading.for_task(task))
        return cls.joined(parts, reading)

    @classmethod
    def joined(cls, parts: dict[str, Analysis], reading: Reading) -> Analysis:
        """The union of per-task analyses: their rows, scores and checks side by side; what is
        read per dataset comes from its own part (:meth:`of`)."""
        first = next(iter(parts.values()))
        ctxs = [a.ctx for a in parts.values()]
        frame = pd.concat([c.frame for c in ctxs], ignore_index=True)
        ctx = Context(frame, first.ctx.scorer, first.ctx.baseline, reading.metrics,
                      {k: v for c in ctxs for k, v in c.players.items()},
                      {k: v for c in ctxs for k, v in c.n_classes.items()},
                      {k: v for c in ctxs for k, v in c.continuous.items()},
                      reads={k: v for c in ctxs for k, v in c.reads.items()},
                      degenerate=frozenset().union(*(c.degenerate for c in ctxs)),
                      tasks={k: v for c in ctxs for k, v in c.tasks.items()})
        for part in ctxs:  # one colour per model on the whole page
            part.memo["palette"] = ctx.palette
        families = list({f.name: f for a in parts.values() for f in a.families}.values())

        def stacked(name: str) -> pd.DataFrame:
            return pd.concat([getattr(a, name) for a in parts.values()], ignore_index=True)

        return cls(ctx, families, stacked("scores"), stacked("runs"), stacked("sanity"), stacked("frame"), parts)

    def of(self, dataset: str) -> Analysis:
        """The analysis that reads ``dataset``: its task's part, or this one."""
        return next((a for a in self.parts.values() if dataset in a.ctx.datasets()), self)

    @classmethod
    def of_task(cls, frame: pd.DataFrame, reps: dict[str, np.ndarray], datasets: Mapping[str, DatasetInfo],
                reading: Reading) -> Analysis:
        """The analysis of a run whose datasets have one task, read by ``reading``."""
        modalities = {k: d.modalities for k, d in datasets.items()}
        reads = {k: d.reads for k, d in datasets.items()}
        unread = unread_rows(frame, modalities, reads)
        if "cell" in frame and unread.any():
            left_out = set(frame.loc[unread, "cell"])
            reps = {k: v for k, v in reps.items() if k not in left_out}
        ctx = Context(masked(frame, unread), reading.scorer, reading.baseline, reading.metrics, modalities,
                      {k: d.n_classes for k, d in datasets.items()},
                      {k: d.continuous for k, d in datasets.items()}, reads=reads, unmasked=frame,
                      tasks={k: d.task for k, d in datasets.items()})
        present = [f for f in families() if f.present(ctx)]
        runs = score_replicates(ctx, reps, present)
        rests_on = {spec.name: spec.rests_on for f in present for spec in f.scores if spec.rests_on}
        replicates = len(next(iter(reps.values()))) if reps else 0
        scores = with_intervals(compute_scores(ctx, present), runs, replicates, rests_on)
        checks = [c for f in present if (c := f.checks(ctx)) is not None]
        sanity = pd.concat(checks, ignore_index=True) if checks else pd.DataFrame(columns=CHECK_COLUMNS)
        ctx.degenerate = degenerate_models(sanity)
        _warn_degenerate(sanity)
        return cls(ctx, present, scores, runs, sanity, exported(frame, unread, present))

    @property
    def reference(self) -> str:
        """The clean score every robustness score is read against (empty without one)."""
        spec = role(self.families, "reference")
        return spec.name if spec is not None else ""

    @property
    def frame(self) -> pd.DataFrame:
        """The tidy rows as exported to results.csv (see :attr:`tidy`)."""
        return self.tidy if len(self.tidy.columns) else self.ctx.frame

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every CSV table: ``scores`` and the families' own (of every part, stacked)."""
        if self.parts:
            tables = [a.tables() for a in self.parts.values()]
            names = dict.fromkeys(n for t in tables for n in t)
            return {n: pd.concat([t[n] for t in tables if n in t], ignore_index=True) for n in names}
        out = {"scores": self.scores}
        for family in self.families:
            out.update(family.tables(self.ctx))
        return out

    def family_boards(self, dataset: str) -> list[Board]:
        return [board for _, boards in self.sections(dataset) for board in boards]

    def sections(self, dataset: str) -> list[tuple[Family, list[Board]]]:
        """Each family present with its boards for ``dataset`` (families without one left out),
        "not read" cells and degenerate models marked."""
        if self.parts:
            return self.of(dataset).sections(dataset)
        found = [(f, [self.marked(Board.of(b), dataset) for b in f.boards(self.ctx, dataset)])
                 for f in self.families]
        return [(f, boards) for f, boards in found if boards]

    def marked(self, board: Board, dataset: str) -> Board:
        """``board`` with its degenerate models' rows and its "not read" cells marked."""
        ctx = self.of(dataset).ctx
        return mark_board(board, {(m, r) for d, m, r in ctx.degenerate if d == dataset},
                          ctx.players.get(dataset, ()), ctx.reads.get(dataset, {}))

    def plots(self, out_dir: Path) -> list[Plot]:
        """Every figure: the families' (``section``: the family's name), each dataset's
        robustness profile (``profile``) and the rank stability of the ranking score."""
        if self.parts:
            return sorted({p for a in self.parts.values() for p in a.plots(out_dir)},
                          key=lambda p: (p.section, str(p.path)))
        files = [as_plot(p, family.name) for family in self.families for p in family.plots(self.ctx, out_dir)]
        ranking = next((s for s in (COMPOSITE.name, self.reference) if (self.scores["score"] == s).any()), None)
        if ranking is not None:
            files += rank_stability(self.runs, out_dir, ranking, ascending=self.ctx.scorer.ascending)
        files += self.profiles(out_dir)
        return sorted(set(files), key=lambda p: (p.section, str(p.path)))

    def profile_scores(self, dataset: str) -> list[str]:
        """The scores of the robustness profile: clean, composite and the composite's parts."""
        present = set(self.scores.loc[self.scores["dataset"] == dataset, "score"])
        parts = composite_parts(self.families, present)
        return [s for s in (self.reference, COMPOSITE.name, *parts) if s in present] if parts else []

    def profiles(self, out_dir: Path) -> list[Plot]:
        """Per dataset, every model's profile scores as grouped bars (models in composite order)."""
        out = []
        scorer = self.ctx.scorer
        for dataset in self.ctx.datasets():
            order = self.profile_scores(dataset)
            if not order:
                continue
            part = self.scores[self.scores["dataset"] == dataset]
            ranked = part[part["score"] == COMPOSITE.name].sort_values("value", ascending=scorer.ascending,
                                                                       kind="stable")
            entries = list(zip(ranked["model"], ranked["recipe"], strict=True))
            direction = "higher" if scorer.higher_is_better else "lower"
            path = profile(part, order, entries, out_dir, dataset, self.ctx.palette,
                           f"score ({scorer.name}, {direction} is better)")
            out.append(Plot(path, f"Robustness profile on {dataset}: each model's clean score, composite and "
                                  "the family scores the composite averages, with 95% intervals; models in "
                                  "composite order, one colour per model throughout the page.", dataset, "profile"))
        return out


def exported(frame: pd.DataFrame, unread: pd.Series, present: list[Family]) -> pd.DataFrame:
    """The rows results.csv holds: each family leaves out its rows that are the analysis's
    references rather than results (:meth:`Family.exported`); a ``read`` column says which cells
    perturbed nothing their model takes (present when any did)."""
    tidy = frame
    for family in present:
        tidy = family.exported(tidy)
    return tidy.assign(read=~unread[tidy.index]) if unread.any() else tidy


def _warn_degenerate(sanity: pd.DataFrame) -> None:
    flagged = sanity[(sanity["check"] == "degenerate") & ~sanity["passed"].astype(bool)]
    for rec in flagged.itertuples():
        log.warning("degenerate model %s/%s/%s/seed %s: %s", rec.dataset, rec.model, rec.recipe, rec.seed,
                    rec.detail)


def as_plot(plot: Plot | Path, section: str) -> Plot:
    """A family's figure as a :class:`Plot` of its ``section`` (a bare path gets its file name
    as caption)."""
    if isinstance(plot, Plot):
        return replace(plot, section=plot.section or section)
    return Plot(Path(plot), Path(plot).stem.replace("_", " "), "", section)
