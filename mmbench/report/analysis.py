"""One analysis of a run, built once: every family's scores (with paired-bootstrap intervals),
the composite, the families' tables, boards and plots, and the sanity checks. The result
files, ``LEADERBOARD.md``, ``report.html``, ``mmbench report``, ``mmbench compare`` and
``--summary`` all read this object; nothing downstream re-derives what it holds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmbench.analysis.direction import ScoreMetric
from mmbench.data.base import MultimodalDataset
from mmbench.families.base import Context, Family
from mmbench.families.scoring import (
    COMPOSITE,
    composite_parts,
    compute_scores,
    families,
    score_replicates,
    with_intervals,
)
from mmbench.render.plots import Plot, profile, rank_stability
from mmbench.render.tables import Board


@dataclass(frozen=True)
class DatasetInfo:
    """What the analysis needs to know about a dataset (stored with the run)."""

    modalities: tuple[str, ...]
    n_classes: int
    continuous: bool

    @classmethod
    def of(cls, data: MultimodalDataset) -> DatasetInfo:
        return cls(data.modality_names, data.n_classes, all(m.is_continuous for m in data.modalities))

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> DatasetInfo:
        return cls(tuple(raw["modalities"]), int(raw["n_classes"]), bool(raw["continuous"]))


def infos(datasets: Mapping[str, MultimodalDataset]) -> dict[str, DatasetInfo]:
    return {label: DatasetInfo.of(d) for label, d in datasets.items()}


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


@dataclass
class Analysis:
    """Everything computed from a run's tidy frame (see the module docstring)."""

    ctx: Context
    families: list[Family]
    scores: pd.DataFrame
    runs: pd.DataFrame
    sanity: pd.DataFrame

    @classmethod
    def build(cls, frame: pd.DataFrame, reps: dict[str, np.ndarray], datasets: Mapping[str, DatasetInfo],
              reading: Reading) -> Analysis:
        ctx = Context(frame, reading.scorer, reading.baseline, reading.metrics,
                      {k: d.modalities for k, d in datasets.items()},
                      {k: d.n_classes for k, d in datasets.items()},
                      {k: d.continuous for k, d in datasets.items()})
        present = [f for f in families() if f.present(ctx)]
        runs = score_replicates(ctx, reps, present)
        scores = with_intervals(compute_scores(ctx, present), runs)
        checks = [c for f in present if (c := f.checks(ctx)) is not None]
        sanity = pd.concat(checks, ignore_index=True) if checks else pd.DataFrame(
            columns=["dataset", "model", "recipe", "seed", "check", "perturbation", "target", "passed", "detail"])
        return cls(ctx, present, scores, runs, sanity)

    @property
    def frame(self) -> pd.DataFrame:
        return self.ctx.frame

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every CSV table: ``scores`` and the families' own."""
        out = {"scores": self.scores}
        for family in self.families:
            out.update(family.tables(self.ctx))
        return out

    def family_boards(self, dataset: str) -> list[Board]:
        return [board for _, boards in self.sections(dataset) for board in boards]

    def sections(self, dataset: str) -> list[tuple[Family, list[Board]]]:
        """Each family present with its boards for ``dataset`` (families without one left out)."""
        found = [(f, [Board.of(b) for b in f.boards(self.ctx, dataset)]) for f in self.families]
        return [(f, boards) for f, boards in found if boards]

    def plots(self, out_dir: Path) -> list[Plot]:
        """Every figure: the families' (``section``: the family's name), each dataset's
        robustness profile (``profile``) and the rank stability of the ranking score."""
        files = [as_plot(p, family.name) for family in self.families for p in family.plots(self.ctx, out_dir)]
        ranking = next((s for s in ("composite", "clean_accuracy") if (self.scores["score"] == s).any()), None)
        if ranking is not None:
            files += rank_stability(self.runs, out_dir, ranking, ascending=self.ctx.scorer.ascending)
        files += self.profiles(out_dir)
        return sorted(set(files), key=lambda p: (p.section, str(p.path)))

    def profile_scores(self, dataset: str) -> list[str]:
        """The scores of the robustness profile: clean, composite and the composite's parts."""
        present = set(self.scores.loc[self.scores["dataset"] == dataset, "score"])
        parts = composite_parts(self.families, present)
        return [s for s in ("clean_accuracy", COMPOSITE.name, *parts) if s in present] if parts else []

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


def as_plot(plot: Plot | Path, section: str) -> Plot:
    """A family's figure as a :class:`Plot` of its ``section`` (a bare path gets its file name
    as caption)."""
    if isinstance(plot, Plot):
        return replace(plot, section=plot.section or section)
    return Plot(Path(plot), Path(plot).stem.replace("_", " "), "", section)
