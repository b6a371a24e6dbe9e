"""``LEADERBOARD.md``: per dataset the main board (models ranked by the composite), then every
family's boards in the families' order, then the sanity checks; all read from one
:class:`~mmbench.report.analysis.Analysis`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mmbench.stats.bootstrap import LEVEL
from mmbench.families.scoring import COMPOSITE, EFFECTIVE, composite_parts
from mmbench.render.tables import Board, Column, Num, Table, cell, half_width
from mmbench.report.analysis import Analysis
from mmbench.report.reading import reading


def main_board(analysis: Analysis, dataset: str) -> Board | None:
    """Models ranked by the composite robustness score (by clean accuracy when no robustness
    family ran), each main score as ``value ± half-width`` of its 95% bootstrap interval; the
    note says which scores the composite averages; the heading and the note name the score
    metric when it is not accuracy (score names say accuracy: they are identifiers)."""
    analysis = analysis.of(dataset)  # a run of several tasks: this dataset's task's part
    scores = analysis.scores
    part = scores[scores["dataset"] == dataset]
    present = set(part["score"])
    parts = composite_parts(analysis.families, present)
    if not parts:
        return None
    specs = {s.name: s for s in [*(s for f in analysis.families for s in f.scores), COMPOSITE, EFFECTIVE]}
    main = [name for name, s in specs.items() if s.main and name in present]
    first = [analysis.reference, COMPOSITE.name]
    columns = first + [c for c in main if c not in first]
    columns = [c for c in columns if c in present]
    value = part.pivot_table(index=["model", "recipe"], columns="score", values="value", aggfunc="first")
    half = part.assign(hw=half_width(part)).pivot_table(index=["model", "recipe"], columns="score",
                                                        values="hw", aggfunc="first", dropna=False)
    scorer = analysis.ctx.scorer
    order = value[COMPOSITE.name].sort_values(ascending=scorer.ascending, kind="stable").index
    bounds = part.set_index(["model", "recipe", "score"])[["ci_low", "ci_high"]]
    apart = separated(analysis.runs[analysis.runs["dataset"] == dataset] if len(analysis.runs) else analysis.runs,
                      part, {c: specs[c].higher_is_better(scorer) if c in specs else True for c in columns})

    def num(model: str, recipe: str, c: str) -> Num:
        lo, hi = bounds.loc[(model, recipe, c)] if (model, recipe, c) in bounds.index else (None, None)
        return Num(value.loc[(model, recipe)].get(c), half.loc[(model, recipe)].get(c), lo=lo, hi=hi,
                   separated=apart.get((model, recipe, c)))

    lines = tuple((rank, model, recipe, *(num(model, recipe, c) for c in columns))
                  for rank, (model, recipe) in enumerate(order, start=1))
    read = "" if scorer.name == "accuracy" else f" Scores read {scorer.name} where they say accuracy."
    unranked = value[COMPOSITE.name].isna().sum() if COMPOSITE.name in value else 0
    lacking = f" {unranked} model(s) lacking one of these parts have no composite (-), listed last." if unranked else ""
    note = (f"Ranked by composite = mean of {', '.join(parts)}; ± is the half-width of the 95% "
            f"paired-bootstrap interval ([lo, hi] where it is skewed).{lacking}{subset_note(analysis, dataset)}{read}")
    heads = (Column("rank", term="rank"), Column("model"), Column("recipe", term="recipe"),
             *(Column(c, specs[c].higher_is_better(scorer) if c in specs else None, term=c) for c in columns))
    return analysis.marked(Board(main_heading(dataset, scorer.name), Table(heads, lines), note), dataset)


def subset_note(analysis: Analysis, dataset: str) -> str:
    """A sentence naming the composite parts computed on a row subset (``max_rows``), which are
    paired with the others row by row; empty when every part used all rows."""
    frame = analysis.ctx.frame
    frame = frame[(frame["dataset"] == dataset) & (frame["rows"] > 0)]
    parts = [f"{f.composite} on {int(frame.loc[frame['family'] == f.name, 'rows'].max())} rows"
             for f in analysis.families if f.composite and (frame["family"] == f.name).any()]
    if not parts:
        return ""
    return (f" Parts on a seeded row subset ({', '.join(parts)}) are paired with the others on the rows they "
            "share (every replicate weights a row the same in every cell).")


def separated(runs: pd.DataFrame, part: pd.DataFrame, higher: dict[str, bool]) -> dict[tuple[str, str, str], bool]:
    """(model, recipe, score) -> whether the paired 95% interval of its difference to the score's
    best model (same bootstrap replicates) excludes 0; the best and those tied with it: False."""
    out: dict[tuple[str, str, str], bool] = {}
    for score, better in higher.items():
        own = part[(part["score"] == score) & part["value"].notna()]
        reps = runs[runs["score"] == score] if len(runs) else runs
        if own.empty or reps.empty:
            continue
        lead = own.loc[own["value"].idxmax() if better else own["value"].idxmin()]
        wide = reps.pivot_table(index="b", columns=["model", "recipe"], values="value")
        if (lead["model"], lead["recipe"]) not in wide.columns:
            continue
        diff = wide.sub(wide[(lead["model"], lead["recipe"])], axis=0)
        low, high = diff.quantile((1 - LEVEL) / 2), diff.quantile((1 + LEVEL) / 2)
        out.update({(m, r, score): bool(low[(m, r)] > 0 or high[(m, r)] < 0) for m, r in diff.columns})
    return out


def main_heading(dataset: str, metric: str) -> str:
    """``"mfeat: main board"``, naming the metric the scores are computed from unless accuracy."""
    return f"{dataset}: main board" + ("" if metric == "accuracy" else f", scores of {metric}")


def sanity_summary(sanity: pd.DataFrame) -> list[str]:
    """Markdown lines: how many sanity checks passed, and each one that did not."""
    if sanity.empty:
        return []
    failed = sanity[~sanity["passed"].astype(bool)]
    lines = [f"Sanity checks: {len(sanity) - len(failed)} of {len(sanity)} passed.", ""]
    for rec in failed.itertuples():
        lines.append(cell(f"- {rec.check}: {rec.dataset}/{rec.model}/{rec.recipe}/seed {rec.seed}, "
                          f"{rec.perturbation} on {rec.target}: {rec.detail}"))
    return lines + ([""] if len(failed) else [])


def render_leaderboard(analysis: Analysis, title: str) -> str:
    """The Markdown document."""
    parts = [f"# Leaderboard: {cell(title)}", ""]
    for dataset in analysis.ctx.datasets():
        parts += main_part(analysis, dataset, " (scores: docs/metrics.md)")
        for family_board in analysis.family_boards(dataset):
            parts += [f"## {cell(family_board.heading)}", "", family_board.markdown(), ""]
    parts += sanity_summary(analysis.sanity)
    return "\n".join(parts).rstrip() + "\n"


def render_summary(analysis: Analysis, title: str, folder: Path | None = None) -> str:
    """What a run prints: per dataset the main board (the clean board when no robustness
    family ran) and a one-paragraph reading of it, then where the other boards are."""
    parts = [f"# Leaderboard: {cell(title)}", ""]
    for dataset in analysis.ctx.datasets():
        parts += main_part(analysis, dataset) or [
            f"## {cell(b.heading)}\n\n{b.markdown()}\n" for b in analysis.family_boards(dataset)[:1]]
    if folder is not None:
        parts.append(f"Every board: {folder / 'LEADERBOARD.md'}; the report with plots: {folder / 'report.html'}")
    return "\n".join(parts).rstrip() + "\n"


def main_part(analysis: Analysis, dataset: str, suffix: str = "") -> list[str]:
    """Markdown lines of ``dataset``'s main board (heading + ``suffix``) and its reading; none
    without a composite."""
    analysis = analysis.of(dataset)  # a run of several tasks: this dataset's task's part
    board = main_board(analysis, dataset)
    if board is None:
        return []
    text = reading(analysis, dataset)
    return [f"## {cell(board.heading)}{suffix}", "", board.markdown(), "", *([cell(text), ""] if text else [])]


def split_boards(document: str) -> dict[str, str]:
    """The boards of a leaderboard document by their ``## `` heading (text up to the next)."""
    boards: dict[str, str] = {}
    heading = None
    for line in document.splitlines():
        if line.startswith("## "):
            heading = line[3:].strip()
            boards[heading] = ""
        elif heading is not None:
            boards[heading] += line + "\n"
    return {k: v.strip() + "\n" for k, v in boards.items()}
