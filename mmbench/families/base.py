"""The family contract: what a perturbation family owns in the analysis of a run.

A family is registered in :data:`mmbench.registry.FAMILIES` (entry-point group
``mmbench.families``) under the name its perturbations put in the ``family`` column. It owns:

- which rows are its own (by default ``family == name``);
- its scores (:class:`ScoreSpec`: name, formula anchor in docs/metrics.md, direction), computed
  from the score metric's rows by :meth:`Family.compute`, and which of them joins the composite;
- rows derived from stored per-row outcomes (:meth:`Family.derive`, e.g. a per-row worst case);
- its tables (CSV files), boards (Markdown) and plots;
- sanity checks of its rows.

Everything is read from a :class:`Context` built once per run, so no family recomputes what
another already computed, and nothing outside a family's module names it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

import pandas as pd

from mmbench.stats.curves import KEY, seed_mean
from mmbench.stats.direction import ScoreMetric
from mmbench.metrics.outcomes import Samples
from mmbench.perturb.clean import CLEAN as CLEAN_PERTURBATION
from mmbench.render.plots import Plot, model_colours
from mmbench.render.tables import Board, Table
from mmbench.store.rows import CellFacts


@dataclass(frozen=True)
class ScoreSpec:
    """One leaderboard score: ``anchor`` is its section in docs/metrics.md; ``follows_metric``:
    better in the score metric's direction (an accuracy-like score), else lower is better (an
    error ratio such as mCE); ``main``: shown on the main board; ``rests_on``: the score that
    counts what this one averages (e.g. the conditions a relative mCE is defined on): a bootstrap
    replicate in which that count differs from the value's is undefined for this score.

    What the report reads generically (it names no score): ``reference`` marks the clean score
    every robustness score is read against (first on the main board, the clean side of effective
    robustness and of the reading's largest drop); a ``headline`` (the words the reading uses
    for it, e.g. "under attack") marks the score the reading calls robust, compared there with
    ``clean_on`` (the clean score on the same rows, when the family evaluates a row subset);
    ``against_baseline`` a score measured against the suite's baseline model (``mmbench
    compare`` leaves it out when the two runs' baselines differ)."""

    name: str
    description: str
    anchor: str
    follows_metric: bool = True
    main: bool = False
    rests_on: str = ""
    reference: bool = False
    headline: str = ""
    clean_on: str = ""
    against_baseline: bool = False

    def higher_is_better(self, scorer: ScoreMetric) -> bool:
        return scorer.higher_is_better if self.follows_metric else False


@dataclass
class Context:
    """A run's rows and what families need to read them, with a memo so that each derived
    table is computed once (:meth:`once`)."""

    frame: pd.DataFrame
    scorer: ScoreMetric = field(default_factory=ScoreMetric)
    baseline: str = ""
    metrics: tuple[str, ...] = ("accuracy",)
    #: dataset -> its modality names, class count and whether every modality is continuous
    players: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    n_classes: Mapping[str, int] = field(default_factory=dict)
    continuous: Mapping[str, bool] = field(default_factory=dict)
    memo: dict[Any, Any] = field(default_factory=dict)
    #: dataset -> model -> the modalities it takes (cells perturbing none of them: "not read")
    reads: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)
    #: (dataset, model, recipe) of degenerate models (at or below the majority-class baseline, or
    #: collapsed onto one class): marked on every board, never named by the reading
    degenerate: frozenset[tuple[str, str, str]] = frozenset()
    #: the frame before "not read" values were removed (for what needs a whole sweep, e.g.
    #: Shapley values, where an unread modality rightly contributes nothing)
    unmasked: pd.DataFrame | None = None
    #: dataset -> its task (classification when not given)
    tasks: Mapping[str, str] = field(default_factory=dict)

    def task(self, dataset: str) -> str:
        """The task of ``dataset`` (:mod:`mmbench.data.tasks`)."""
        return self.tasks.get(dataset, "classification")

    def once(self, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()``, once per context (later calls return the first result)."""
        if key not in self.memo:
            self.memo[key] = compute()
        return self.memo[key]

    def rows(self, family: str, metric: str | None = None, dataset: str | None = None,
             any_metric: bool = False) -> pd.DataFrame:
        """A family's rows of ``metric`` (default: the score metric; ``any_metric``: every metric),
        of one ``dataset`` when given."""
        frame = self.frame
        rows = frame[frame["family"] == family]
        rows = rows if any_metric else rows[rows["metric"] == (metric or self.scorer.name)]
        return rows if dataset is None else rows[rows["dataset"] == dataset]

    def unmasked_rows(self, family: str, dataset: str | None = None) -> pd.DataFrame:
        """A family's rows of every metric (of one ``dataset`` when given) before "not read"
        values were removed (:attr:`unmasked`, else the frame): a whole sweep."""
        frame = self.frame if self.unmasked is None else self.unmasked
        rows = frame[frame["family"] == family]
        return rows if dataset is None else rows[rows["dataset"] == dataset]

    def clean_rows(self, metric: str | None = None, any_metric: bool = False,
                   dataset: str | None = None) -> pd.DataFrame:
        """The clean family's rows of ``metric`` (default: the score metric; ``any_metric``:
        every metric) on all rows of the evaluation split, of one ``dataset`` when given."""
        clean = self.rows(CLEAN, metric, dataset, any_metric)
        return clean[clean["rows"] == 0]

    def clean_on(self, rows: pd.DataFrame, extra: tuple[str, ...] = (), metric: str | None = None) -> pd.DataFrame:
        """The clean value of ``metric`` (default: the score metric) on the same rows as each of
        ``rows``' cells (per dataset, model, recipe, seed, split and row subset), one row per
        distinct (those columns, ``extra``) of ``rows``; a perturbed cell on a row subset is
        compared with the clean cell restricted to exactly that subset (the clean family derives it)."""
        on = ["dataset", "model", "recipe", "seed", "split", "rows"]
        clean = self.rows(CLEAN, metric)[[*on, "value"]]
        return rows[[*on, *extra]].drop_duplicates().merge(clean, on=on)

    def clean(self) -> pd.Series:
        """The clean value of the score metric per (dataset, model, recipe), mean over seeds."""
        return seed_mean(self.clean_rows(), []).set_index(KEY)["value"]

    @property
    def palette(self) -> dict[str, str]:
        """Each model's colour (by sorted label), the same in every plot and in the report."""
        return self.once("palette", lambda: model_colours(sorted(self.frame["model"].unique())))

    def datasets(self) -> list[str]:
        return sorted(self.frame["dataset"].unique())


#: the clean family: the reference every robustness score is read against
CLEAN = CLEAN_PERTURBATION


class Family:
    """A perturbation family's part of the analysis (see the module docstring). Subclasses set
    ``name`` (the ``family`` column of its rows), ``title`` and ``order`` (where its boards go
    on the leaderboard), ``scores`` and ``composite`` (the score that joins the composite)."""

    name: ClassVar[str]
    title: ClassVar[str] = ""
    order: ClassVar[int] = 100
    scores: ClassVar[tuple[ScoreSpec, ...]] = ()
    composite: ClassVar[str | None] = None
    #: the family whose stored cells :meth:`derive` reads, when its rows are all derived
    source: ClassVar[str | None] = None
    #: its boards' column headings (and other words the page shows) -> what they mean, for the
    #: glossary of report.html
    terms: ClassVar[Mapping[str, str]] = MappingProxyType({})

    def compute(self, ctx: Context) -> dict[str, pd.Series]:
        """Score name -> value per (dataset, model, recipe), from ``ctx.frame`` (which may be a
        stack of bootstrap replicates: compute from the rows, never cache across calls)."""
        return {}

    def derive(self, facts: Mapping[str, CellFacts],
               samples: Mapping[str, Samples]) -> dict[str, tuple[CellFacts, Samples]]:
        """Cells derived from stored outcomes (new key -> facts and outcomes); none by default."""
        return {}

    def baselines(self, facts: Mapping[str, CellFacts], samples: Mapping[str, Samples],
                  classes: Mapping[str, int]) -> dict[str, tuple[CellFacts, Samples]]:
        """Reference cells derived from stored outcomes that are no model's result (e.g. the
        majority-class predictor beside each clean cell; ``classes``: dataset -> class count)."""
        return {}

    def exported(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` without the rows of this family that are the analysis's references rather
        than results (they stay in the analysis, not in results.csv); all of them by default."""
        return frame

    def tables(self, ctx: Context) -> dict[str, pd.DataFrame]:
        """Tables written as ``<name>.csv`` in the results folder."""
        return {}

    def checks(self, ctx: Context) -> pd.DataFrame | None:
        """Sanity checks of its rows (columns as in :mod:`mmbench.stats.sanity`)."""
        return None

    def boards(self, ctx: Context, dataset: str) -> list[Board | tuple[str, Any]]:
        """Its boards for one dataset: :class:`~mmbench.render.tables.Board` (typed cells, so
        report.html can sort, colour and fold them), or ``(heading, Markdown text)`` pairs."""
        return []

    def board(self, ctx: Context, dataset: str, table: Callable[[pd.DataFrame], Table | None], heading: str,
              note: str = "") -> list[Board]:
        """The one board ``table`` makes of its rows of ``dataset`` (the score metric's), under
        ``heading`` with ``note``; none where ``table`` makes none (e.g. no rows)."""
        made = table(ctx.rows(self.name, dataset=dataset))
        return [] if made is None else [Board(heading, made, note)]

    def plots(self, ctx: Context, out_dir: Path) -> list[Plot | Path]:
        """The figures it draws under ``out_dir/plots``: :class:`~mmbench.render.plots.Plot`
        (a PNG with its caption and dataset) or bare PNG paths."""
        return []

    def reading(self, ctx: Context, dataset: str) -> str | None:
        """One sentence for the reading of the main board (e.g. the weakest modality)."""
        return None

    def present(self, ctx: Context) -> bool:
        return bool((ctx.frame["family"] == self.name).any())
