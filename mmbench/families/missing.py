"""``missing``: every kept subset of modalities (the rest imputed), with Shapley values.

Rows carry ``kept`` (the present modalities, ``none`` when nothing is) and ``imputation``.
Scores: the worst value with exactly one modality missing (``missing_worst_single``, the
composite part: the realistic failure, which separates models) and the worst over every
non-empty kept subset (``missing_worst_subset``: with one modality left it sits at chance for
most models, so it is shown on the reliance board, not ranked). A full sweep also gives exact Shapley values per
modality (``shapley.csv``, bar plots) and the leave-one-out / only-one views
(``single_modality.csv``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mmbench.stats.curves import KEY, seed_mean
from mmbench.stats.shapley import NONE, kept_set, modality_shapley, single_modality_views, worst_single_missing
from mmbench.families.base import Context, Family, ScoreSpec
from mmbench.perturb.dropout import IMPUTATION_TERM
from mmbench.registry import FAMILIES
from mmbench.render.plots import Plot, grouped_bars
from mmbench.render.tables import Board, Column, Num, Table

NAME = "missing"
SWEEP = ["model", "recipe", "imputation"]


@FAMILIES.register(NAME)
class Missing(Family):
    """Every kept subset of modalities, imputed; Shapley values per modality."""

    name = NAME
    terms = {
        "imputation": IMPUTATION_TERM,
        "one modality left out": "Score with that modality missing (imputed) and every other kept.",
        "one modality alone": "Score with only that modality kept, every other imputed.",
        "shapley": "The modality's Shapley value: its average contribution to the score over every "
                   "order of adding modalities (the kept-subset sweep); higher means more reliance.",
        "worst single missing": "The score with the single most harmful modality missing (that "
                                "modality in brackets).",
    }
    title = "missing modalities"
    order = 20
    scores = (ScoreSpec("missing_worst_single", "worst value with exactly one modality missing, over the "
                        "modalities and imputations", "missing-modalities", main=True),
              ScoreSpec("missing_worst_subset", "worst value over the non-empty kept subsets and "
                        "imputations", "missing-modalities"))
    composite = "missing_worst_single"

    def compute(self, ctx: Context) -> dict[str, pd.Series]:
        rows = ctx.rows(NAME)
        subsets = seed_mean(rows[rows["kept"] != NONE], ["imputation", "kept"])
        if subsets.empty:
            return {}
        out = {"missing_worst_subset": ctx.scorer.worst(subsets.groupby(KEY)["value"])}
        counts = {d: len(ctx.players.get(d) or frozenset().union(*map(kept_set, g))) for d, g in
                  subsets.groupby("dataset")["kept"]}  # the dataset's modalities, else all the sweep kept
        missing = subsets["dataset"].map(counts) - subsets["kept"].map(lambda k: len(kept_set(k)))
        single = subsets[missing == 1]
        if len(single):
            out["missing_worst_single"] = ctx.scorer.worst(single.groupby(KEY)["value"])
        return out

    def shapley(self, ctx: Context) -> pd.DataFrame:
        return ctx.once((NAME, "shapley"), lambda: modality_shapley(ctx.unmasked_rows(NAME), ctx.players))

    def views(self, ctx: Context) -> pd.DataFrame:
        """Leave-one-out and only-one values; a modality its model does not read has no
        leave-one-out value (the board says "not read")."""
        rows = ctx.rows(NAME, any_metric=True)
        return ctx.once((NAME, "views"), lambda: single_modality_views(rows, ctx.players))

    def tables(self, ctx: Context) -> dict[str, pd.DataFrame]:
        tables = {"shapley": self.shapley(ctx), "single_modality": self.views(ctx)}
        return {name: t for name, t in tables.items() if not t.empty}

    def boards(self, ctx: Context, dataset: str) -> list[Board]:
        metric = ctx.scorer.name
        out = []
        table = reliance_board(self.shapley(ctx), ctx, dataset)
        if table:
            out.append(Board(f"{dataset}: modality reliance (Shapley values of {metric})", table))
        every = ctx.once((NAME, "all views"), lambda: single_modality_views(ctx.unmasked_rows(NAME), ctx.players))
        table = views_board(self.views(ctx), metric, dataset, ctx.scorer.higher_is_better, every)
        if table:
            out.append(Board(f"{dataset}: {metric} with one modality left out (-m) or alone (only m)", table))
        return out

    def reading(self, ctx: Context, dataset: str) -> str | None:
        """The modality the models rely on most: the one whose absence alone costs the most
        (mean over models and imputations)."""
        views = self.views(ctx)
        left_out = views[(views["dataset"] == dataset) & (views["metric"] == ctx.scorer.name)
                         & (views["view"] == "leave_one_out")]
        if left_out.empty:
            return None
        mean = left_out.groupby("modality")["value"].mean()
        modality = mean.idxmin() if ctx.scorer.higher_is_better else mean.idxmax()
        value, name = f"{mean[modality]:.3f}", ctx.scorer.name
        left = f"they keep {value} {name}" if ctx.scorer.higher_is_better else f"their {name} is {value}"
        return f"The models rely most on {modality}: without it {left} on average."

    def plots(self, ctx: Context, out_dir: Path) -> list[Plot]:
        metric = ctx.scorer.name
        part = self.shapley(ctx)
        part = part[part["metric"] == metric]
        return [Plot(grouped_bars(g.pivot_table(index="modality", columns="imputation", values="shapley",
                                                aggfunc="mean", sort=False),
                                  out_dir, ["shapley", dataset, model, recipe], "modality",
                                  f"Shapley value ({metric})", f"{model} ({recipe}) on {dataset}", "imputation"),
                     f"How much of {model}'s ({recipe}) {metric} each modality contributes (Shapley value over "
                     "the kept-subset sweep), per imputation of the missing ones.", dataset)
                for (dataset, model, recipe), g in part.groupby(["dataset", "model", "recipe"], sort=True)]


def reliance_board(shapley: pd.DataFrame, ctx: Context, dataset: str) -> Table | None:
    """Shapley value of each modality (mean over seeds), per model and imputation, and the value
    with the single most harmful modality missing."""
    metric = ctx.scorer.name
    part = shapley[(shapley["dataset"] == dataset) & (shapley["metric"] == metric)]
    if part.empty:
        return None
    table = part.pivot_table(index=SWEEP, columns="modality", values="shapley", aggfunc="mean", sort=False)
    rows = ctx.rows(NAME, dataset=dataset)
    worst = worst_single_missing(rows, ctx.players, ctx.scorer.higher_is_better)
    value = worst.groupby(SWEEP)["value"].mean()
    modality = worst.groupby(SWEEP)["modality"].agg(lambda m: m.mode().iloc[0])
    present = seed_mean(rows[rows["kept"] != NONE], ["imputation", "kept"])
    subset = ctx.scorer.worst(present.groupby(SWEEP)["value"]) if len(present) else pd.Series(dtype=float)
    lines = tuple((*key, *(Num(v, fmt="+.4f") for v in table.loc[key]),
                   Num(value[key], note=modality[key]) if key in value.index else Num(None),
                   Num(subset.get(key))) for key in table.index)
    better = ctx.scorer.higher_is_better
    columns = (*(Column(c, term=c) for c in SWEEP), *(Column(m, None, term="shapley") for m in table.columns),
               Column("worst single missing", better, term="worst single missing"),
               Column("worst kept subset", better, term="missing_worst_subset"))
    return Table(columns, lines)


def views_board(views: pd.DataFrame, metric: str, dataset: str, higher_is_better: bool = True,
                every: pd.DataFrame | None = None) -> Table | None:
    """The value with each modality left out (``-m``) and with it alone (``only m``), mean over
    seeds, per model, recipe and imputation (columns grouped by view; ``every``: the views of
    the whole sweep, whose columns are shown even where no model has a value, i.e. not read)."""
    part = _columned(views, metric, dataset)
    if part.empty:
        return None
    full = part if every is None else _columned(every, metric, dataset)
    table = part.pivot_table(index=SWEEP, columns="column", values="value", aggfunc="mean", sort=False)
    table = table.reindex(columns=list(dict.fromkeys([*full["column"], *table.columns])))
    modalities = list(dict.fromkeys(full["modality"]))
    order = [c for prefix in ("-", "only ") for m in modalities if (c := prefix + m) in table.columns]
    lines = tuple((*key, *(Num(v) for v in table.loc[key, order])) for key in table.index)
    better = higher_is_better
    groups = {"-": ("left out", "one modality left out"), "only ": ("alone", "one modality alone")}
    columns = [Column(c, term=c) for c in SWEEP]
    for c in order:
        prefix = "-" if c.startswith("-") else "only "
        kept = c[len(prefix):]
        removed = kept if prefix == "-" else "+".join(m for m in modalities if m != kept)
        columns.append(Column(c, better, group=groups[prefix][0], short=kept, term=groups[prefix][1],
                              target=removed))
    return Table(tuple(columns), lines, "view")


def _columned(views: pd.DataFrame, metric: str, dataset: str) -> pd.DataFrame:
    part = views[(views["dataset"] == dataset) & (views["metric"] == metric)]
    return part.assign(column=part["view"].map({"leave_one_out": "-", "only_one": "only "}) + part["modality"])
