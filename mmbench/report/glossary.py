"""The glossary of ``report.html``: what every score and column means, in the page itself (a
published page has no docs/ folder). Scores come from the families present (their
:class:`~mmbench.families.base.ScoreSpec`), metrics from the metric registry, the rest are the
boards' own column names (the families' :attr:`~mmbench.families.base.Family.terms`, then the
few every board shares)."""

from __future__ import annotations

from mmbench.families.scoring import COMPOSITE, EFFECTIVE
from mmbench.registry import METRICS
from mmbench.report.analysis import Analysis

#: the columns every board may show (families add their own: :attr:`Family.terms`)
TERMS = {
    "rank": "Position on the board by its ranking score (the main board: the composite).",
    "recipe": "The training recipe the model was trained with (standard, modality dropout, ...).",
    "seeds": "Training seeds the numbers average over; ± always comes from the test rows.",
    "level": "The perturbation's strength on the family's own scale.",
    "mean": "Mean over the columns of the grid (without level 0 where it is the clean reference).",
    "interval": "± is the half-width of the 95% paired-bootstrap interval over test rows (paired: "
                "every model is resampled on the same rows).",
}


def glossary(analysis: Analysis) -> dict[str, str]:
    """Term -> definition for everything the page's boards show (a run of several tasks: each
    score of its task's score metric)."""
    scorer = analysis.ctx.scorer
    metric = scorer.name if not analysis.parts else " or ".join(
        f"{a.ctx.scorer.name} ({task})" for task, a in analysis.parts.items())
    out: dict[str, str] = {}
    for family in analysis.families:
        for spec in family.scores:
            direction = "higher" if spec.higher_is_better(scorer) else "lower"
            sentence = ("Better in its task's metric's direction" if analysis.parts and spec.follows_metric
                        else f"{direction.capitalize()} is better")
            part = "; it joins the composite" if family.composite == spec.name else ""
            out[spec.name] = (f"{family.title or family.name} family: {spec.description}, of {metric}. "
                              f"{sentence}{part}.")
    sense = "in its direction" if analysis.parts else f"{'higher' if scorer.higher_is_better else 'lower'} is better"
    out[COMPOSITE.name] = ("The ranking score: the mean of each present family's composite part "
                           f"({metric}-like, {sense}).")
    out[EFFECTIVE.name] = (f"{EFFECTIVE.description[0].upper()}{EFFECTIVE.description[1:]}: robustness beyond "
                           "what the clean score predicts (0: the baseline's trade-off).")
    for name in analysis.ctx.metrics:
        if name not in METRICS:
            continue
        entry = METRICS.entry(name)
        doc = entry.meta.get("description") or (entry.obj.__doc__ or "").strip().split("\n\n")[0]
        direction = "higher" if entry.obj.higher_is_better else "lower"
        out.setdefault(name, f"Per-cell metric: {' '.join(doc.split()) or name} ({direction} is better).")
    for family in analysis.families:
        out.update(family.terms)
    return {**out, **TERMS}
