"""The source of a small perturbation family, misaligned pairs (one modality of some rows comes
from another row), written into a plugin package by tests/test_plugin_family.py and into a copy
of mmbench as two built-in files by tests/test_two_file_family.py."""

PERTURBATION = '''
"""``misalignment``: one modality of some rows comes from another row (misaligned pairs)."""

from dataclasses import dataclass

import torch

from mmbench.perturb.base import Perturbation

NAME = "misalignment"


@dataclass(frozen=True)
class Shuffle(Perturbation):
    """A fraction ``severity`` of the rows get another row's ``target`` modality."""

    def facts(self):
        return {"shuffled": self.target}

    def apply(self, model, batch, labels, seed):
        g = torch.Generator().manual_seed(seed)
        n = len(labels)
        moved = torch.rand(n, generator=g) < self.severity
        index = torch.where(moved, torch.randperm(n, generator=g), torch.arange(n)).to(labels.device)
        return {**batch, self.target: batch[self.target][index]}


def misalignment(modalities, n_classes, rates=None):
    """Misaligned pairs: one modality of some rows comes from another row."""
    return [Shuffle(family=NAME, name="shuffle", target=m.name, severity=float(r))
            for m in modalities for r in (rates or [0.5])]
'''

FAMILY = '''
"""``misalignment``'s scores, board, plot and reading."""

from mmbench.stats.curves import KEY, seed_mean
from mmbench.families.base import Family, ScoreSpec
from mmbench.render.plots import curves
from mmbench.render.tables import level_table

NAME = "misalignment"


class Misalignment(Family):
    name = NAME
    title = "misaligned modalities"
    order = 60
    scores = (ScoreSpec("misaligned_accuracy", "mean value over shuffled modalities and rates",
                        "misalignment", main=True),)
    composite = "misaligned_accuracy"
    terms = {"shuffled": "The modality taken from another row (misaligned pairs)."}

    def compute(self, ctx):
        rows = seed_mean(ctx.rows(NAME), ["target", "severity"])
        return {"misaligned_accuracy": rows.groupby(KEY)["value"].mean()}

    def boards(self, ctx, dataset):
        rows = ctx.rows(NAME)
        board = level_table(rows[rows["dataset"] == dataset], ["model", "recipe", "shuffled"])
        return [(f"{dataset}: misaligned modalities ({ctx.scorer.name} vs share of rows shuffled)", board)]

    def plots(self, ctx, out_dir):
        rows = ctx.rows(NAME).rename(columns={"severity": "level"})
        return [curves(g, out_dir, [NAME, dataset], "share of rows shuffled", ctx.scorer.name,
                       f"misaligned modalities, {dataset}") for dataset, g in rows.groupby("dataset")]

    def reading(self, ctx, dataset):
        rows = ctx.rows(NAME)
        worst = rows[rows["dataset"] == dataset].groupby("target")["value"].mean().idxmin()
        return f"Misaligning {worst} hurts most."
'''

#: what makes them built-ins: each registers itself in its module (the registries import every
#: module of mmbench/perturb/ and mmbench/families/)
REGISTER_PERTURBATION = ('\nfrom mmbench.registry import PERTURBATIONS\n\n'
                         'PERTURBATIONS.register(NAME, family=NAME, kinds=("image", "sequence", "vector", "tokens"))'
                         '(misalignment)\n')
REGISTER_FAMILY = "\nfrom mmbench.registry import FAMILIES\n\nFAMILIES.register(NAME)(Misalignment)\n"
