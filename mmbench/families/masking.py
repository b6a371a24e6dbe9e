"""``masking``: certified robustness of token modalities to changed tokens by randomized masking.

A stored ``masked`` cell holds, per row, the masked classifier's prediction and its certified
number of changed tokens (:mod:`mmbench.perturb.masking`). From it this family derives one
``certified`` cell per k of the cell's grid (``changes``), exactly as the smoothing family does
per radius (:func:`~mmbench.families.smoothing.certified_cells` with :data:`TOKENS`): a row counts
as correct only if the prediction is right and certified against every change of k tokens, so
the cell's accuracy is the certified accuracy at k, with paired-bootstrap intervals like any
cell. Formulas: docs/metrics.md, "Masking certificate".
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from mmbench.stats.curves import KEY, seed_mean
from mmbench.families.base import Context, Family, ScoreSpec
from mmbench.families.clean import chance_note
from mmbench.families.smoothing import Grid, certified_cells, certified_checks, certified_rows, certified_table
from mmbench.metrics.outcomes import Samples
from mmbench.perturb.masking import MASKED, MASKING
from mmbench.registry import FAMILIES
from mmbench.render.plots import Plot, curves
from mmbench.render.tables import Board
from mmbench.store.rows import CellFacts

NAME = MASKING
#: the masking family's cells: counts k of changed tokens (fact ``k`` of a certified cell)
TOKENS = Grid(NAME, MASKED, "changes", "k", "keep", "k", "k", "certified k", integer=True)


@FAMILIES.register(NAME)
class Masking(Family):
    """Certified accuracy against k changed tokens at a grid of k, per token target and keep."""

    name = NAME
    terms = {
        "keep": "Positions of the token row randomized masking keeps per draw: a count, or a fraction of the "
                "row's non-padding positions rounded up; the others are replaced by the mask id.",
        "masked": "The masked classifier's score: its prediction is the class the model returns most often "
                  "when random positions of the token row are masked (no abstention, no certificate).",
        "certified k": "Certified score against k changed tokens: a row counts only if the masked prediction is "
                       "right and certified (Levine and Feizi's randomized ablation, 1 - alpha confidence) "
                       "against every change of up to k non-padding tokens of the target.",
    }
    title = "certified against changed tokens (randomized masking)"
    order = 28
    scores = (
        ScoreSpec("masking_certified", "best over keep of the mean over token targets and the k grid of the "
                  "certified value of the masked classifier (a constant classifier is certified everywhere "
                  "and scores the majority class's share: the board gives that chance level)",
                  "masking-certificate"),
    )

    def compute(self, ctx: Context) -> dict[str, pd.Series]:
        cert = certified_rows(ctx, NAME)
        if cert.empty:
            return {}
        per = seed_mean(cert, ["target", "severity", "k"]).groupby(KEY + ["severity"])["value"].mean()
        return {"masking_certified": ctx.scorer.best(per.groupby(level=KEY))}

    def derive(self, facts: Mapping[str, CellFacts],
               samples: Mapping[str, Samples]) -> dict[str, tuple[CellFacts, Samples]]:
        out = {}
        for key, f in facts.items():
            s = samples.get(key)
            if f.family == NAME and f.perturbation == MASKED and s is not None and s.radius is not None:
                out.update(certified_cells(key, f, s, TOKENS))
        return out

    def checks(self, ctx: Context) -> pd.DataFrame | None:
        rows = ctx.rows(NAME, "accuracy")
        return None if rows.empty else certified_checks(rows, TOKENS)

    def boards(self, ctx: Context, dataset: str) -> list[Board]:
        note = ("keep: positions kept per draw (a count, or a fraction of the non-padding positions); masked: the "
                "masked classifier's value (its prediction under random masking, no abstention); k=...: "
                "certified value against any change of up to k non-padding tokens of the target, rows where the "
                "certificate abstains or holds for fewer changes count as wrong.")
        return self.board(ctx, dataset, lambda rows: certified_table(rows, ctx.scorer.higher_is_better, TOKENS),
                          f"{dataset}: certified against k changed tokens (randomized masking, {ctx.scorer.name})",
                          note + chance_note(ctx, dataset))

    def plots(self, ctx: Context, out_dir: Path) -> list[Plot]:
        cert = certified_rows(ctx, NAME)
        metric = ctx.scorer.name
        return [Plot(curves(g.assign(level=g["k"]), out_dir, [NAME, dataset, target, f"keep{keep:g}"],
                            "changed tokens k", f"certified {metric}",
                            f"certified {metric}, masking {target} (keep {keep:g}), {dataset}",
                            integer_levels=True, colours=ctx.palette),
                     f"Certified {metric} of the masked classifier against any change of up to k tokens of "
                     f"{target} (keep {keep:g} per draw), mean over seeds; one line per model.", dataset)
                for (dataset, target, keep), g in cert.groupby(["dataset", "target", "severity"], sort=True)]
