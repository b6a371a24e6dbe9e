"""A one-paragraph reading of a run's main board, per dataset: which model is most robust (and
whether its interval separates it from the runner-up), what each family present has to say
(the weakest modality under attack, the one the models rely on most), and the largest drop
from clean to robust."""

from __future__ import annotations

import dataclasses

import pandas as pd

from mmbench.families.base import Context
from mmbench.families.scoring import COMPOSITE, role
from mmbench.render.tables import half_width
from mmbench.report.analysis import Analysis


def reading(analysis: Analysis, dataset: str) -> str | None:
    """The paragraph for ``dataset`` (None without a composite score). Degenerate models are
    never named: the reading is of the others, and says which were left out."""
    analysis = analysis.of(dataset)  # a run of several tasks: this dataset's task's part
    scores = analysis.scores[analysis.scores["dataset"] == dataset]
    if not (scores["score"] == COMPOSITE.name).any():
        return None
    bad = sorted((m, r) for d, m, r in analysis.ctx.degenerate if d == dataset)
    pairs = pd.Series(list(zip(scores["model"], scores["recipe"], strict=True)), index=scores.index)
    scores = scores[~pairs.isin(bad)]
    left_out = (f"{', '.join(_name(k) for k in bad)} {'is' if len(bad) == 1 else 'are'} degenerate (not above "
                "the majority-class baseline, or collapsed onto one class) and left out of this reading.")
    if not (scores["score"] == COMPOSITE.name).any():
        return f"Every model here is degenerate, so no conclusion about robustness can be drawn: {left_out}"
    table = scores.assign(hw=half_width(scores)).pivot_table(
        index=["model", "recipe"], columns="score", values=["value", "hw"], aggfunc="first")
    ctx = without_models(analysis.ctx, dataset, bad)
    families = [f.reading(ctx, dataset) for f in analysis.families]
    sentences = [_most_robust(table, analysis), *families, _largest_drop(table, analysis), left_out if bad else None]
    return " ".join(s for s in sentences if s)


def without_models(ctx: Context, dataset: str, models: list[tuple[str, str]]) -> Context:
    """``ctx`` without the rows of ``models`` ((model, recipe) pairs) on ``dataset``."""
    if not models:
        return ctx

    def keep(frame: pd.DataFrame) -> pd.DataFrame:
        pairs = pd.Series(list(zip(frame["model"], frame["recipe"], strict=True)), index=frame.index)
        return frame[~((frame["dataset"] == dataset) & pairs.isin(models))]

    unmasked = None if ctx.unmasked is None else keep(ctx.unmasked)
    return dataclasses.replace(ctx, frame=keep(ctx.frame), memo={}, unmasked=unmasked)


def _name(key: tuple[str, str]) -> str:
    model, recipe = key
    return model if recipe == "standard" else f"{model} ({recipe})"


def _most_robust(table: pd.DataFrame, analysis: Analysis) -> str:
    composite = table[("value", COMPOSITE.name)].sort_values(ascending=analysis.ctx.scorer.ascending)
    best = composite.index[0]
    text = (f"{_name(best)} is the most robust model here (composite {composite.iloc[0]:.3f} ± "
            f"{table.loc[best, ('hw', COMPOSITE.name)]:.3f}).")
    if len(composite) < 2:
        return text
    second = composite.index[1]
    gap = abs(composite.iloc[0] - composite.iloc[1])
    overlap = gap <= table.loc[best, ("hw", COMPOSITE.name)] + table.loc[second, ("hw", COMPOSITE.name)]
    verdict = "within the intervals, so the two are not separated" if overlap else "clearly ahead"
    return text[:-1] + f"; the runner-up {_name(second)} ({composite.iloc[1]:.3f}) is {gap:.3f} behind, {verdict}."


def _largest_drop(table: pd.DataFrame, analysis: Analysis) -> str | None:
    """From clean to the headline score (a family's :attr:`ScoreSpec.headline`, compared with
    clean on its own rows), or to the composite when no headline score is present."""
    reference, headline = role(analysis.families, "reference"), role(analysis.families, "headline")
    if reference is None or ("value", reference.name) not in table.columns:
        return None
    found = headline is not None and ("value", headline.name) in table.columns
    robust = headline.name if found else COMPOSITE.name
    before = headline.clean_on if found and ("value", headline.clean_on) in table.columns else reference.name
    drop = (table[("value", before)] - table[("value", robust)]).dropna()
    if drop.empty:
        return None
    key = drop.abs().idxmax()
    what = f"{headline.headline}, on the same rows" if found and headline else "on the composite"
    scorer = analysis.ctx.scorer
    change = "drop" if scorer.higher_is_better else f"rise in {scorer.name}"
    return (f"The largest {change} from clean to robust is {_name(key)}'s: {table.loc[key, ('value', before)]:.3f} "
            f"clean vs {table.loc[key, ('value', robust)]:.3f} {what}.")
