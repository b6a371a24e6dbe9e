"""The glossary of ``report.html``: what every score and column means, in the page itself (a
published page has no docs/ folder). Scores come from the families present (their
:class:`~mmbench.families.base.ScoreSpec`), metrics from the metric registry, the rest are the
boards' own column names."""

from __future__ import annotations

from mmbench.families.scoring import COMPOSITE, EFFECTIVE
from mmbench.registry import METRICS
from mmbench.report.analysis import Analysis

#: the boards' columns that are not scores
TERMS = {
    "rank": "Position on the board by its ranking score (the main board: the composite).",
    "recipe": "The training recipe the model was trained with (standard, modality dropout, ...).",
    "seeds": "Training seeds the numbers average over; ± always comes from the test rows.",
    "imputation": "How a missing modality is filled in before the model sees it (zeros, the "
                  "training mean, ...).",
    "target@eps": "Worst attack on the target modality (or all jointly) at perturbation budget eps, "
                  "in the data's normalised units.",
    "eps": "The attack budget: the largest perturbation norm allowed, in normalised units.",
    "severity": "Corruption strength, 1 (mild) to 5 (strong); 0 is the clean data.",
    "dropout rate": "Probability that each modality of a test row is dropped (then imputed).",
    "level": "The perturbation's strength on the family's own scale.",
    "one modality left out": "Score with that modality missing (imputed) and every other kept.",
    "one modality alone": "Score with only that modality kept, every other imputed.",
    "shapley": "The modality's Shapley value: its average contribution to the score over every "
               "order of adding modalities (the kept-subset sweep); higher means more reliance.",
    "worst single missing": "The score with the single most harmful modality missing (that "
                            "modality in brackets).",
    "mean": "Mean over the columns of the grid (without level 0 where it is the clean reference).",
    "mean RA": "Mean relative accuracy: corrupted over clean score, averaged over conditions.",
    "conditions": "Number of (corruption, severity, target) conditions averaged.",
    "group": "Score on one group of the natural split: id is the in-distribution test rows, the "
             "others are held-out groups.",
    "subset vote": "g_s: the majority vote of the model's predictions on every kept subset of s modalities "
                   "(ties to the lower class); k=1, k=2: the share of rows it classifies correctly with a "
                   "vote margin no change of k whole modalities can overturn; g_s is its plain accuracy.",
    "sigma": "Scale of the Gaussian noise randomized smoothing adds to the target modality, in "
             "normalised units (the same units as eps).",
    "smoothed": "The smoothed classifier's score: its prediction is the class the model returns most "
                "often under the noise (no abstention, no certificate).",
    "certified radius": "Certified score at L2 radius r: a row counts only if the smoothed prediction is right "
                        "and certified (Cohen et al.'s CERTIFY, 1 - alpha confidence) against every change of "
                        "the target of L2 norm up to r, in normalised units over its features.",
    "ACR": "Average certified radius: the mean over test rows of the certified radius of correct "
           "predictions (0 for wrong or abstained ones); ± from a normal approximation.",
    "worst compound": "The worst condition of two or more perturbation stages applied in order (e.g. a "
                      "modality missing, then another attacked), mean over seeds; the condition in brackets.",
    "worst stage alone": "The worst of the same stages applied alone, on the same rows; the stage in brackets.",
    "compound extra drop": "How much more the worst compound costs than the worst stage alone (worst stage "
                           "alone minus worst compound for a higher-is-better metric); negative: no stage "
                           "combination is worse than its worst stage.",
    "interval": "± is the half-width of the 95% paired-bootstrap interval over test rows (paired: "
                "every model is resampled on the same rows).",
}


def glossary(analysis: Analysis) -> dict[str, str]:
    """Term -> definition for everything the page's boards show."""
    scorer = analysis.ctx.scorer
    out: dict[str, str] = {}
    for family in analysis.families:
        for spec in family.scores:
            direction = "higher" if spec.higher_is_better(scorer) else "lower"
            part = "; it joins the composite" if family.composite == spec.name else ""
            out[spec.name] = (f"{family.title or family.name} family: {spec.description}, of {scorer.name}. "
                              f"{direction.capitalize()} is better{part}.")
    out[COMPOSITE.name] = ("The ranking score: the mean of each present family's composite part "
                           f"({scorer.name}-like, {'higher' if scorer.higher_is_better else 'lower'} is better).")
    out[EFFECTIVE.name] = (f"{EFFECTIVE.description[0].upper()}{EFFECTIVE.description[1:]}: robustness beyond "
                           "what the clean score predicts (0: the baseline's trade-off).")
    for name in analysis.ctx.metrics:
        if name not in METRICS:
            continue
        entry = METRICS.entry(name)
        doc = entry.meta.get("description") or (entry.obj.__doc__ or "").strip().split("\n\n")[0]
        direction = "higher" if entry.obj.higher_is_better else "lower"
        out.setdefault(name, f"Per-cell metric: {' '.join(doc.split()) or name} ({direction} is better).")
    return {**out, **TERMS}
