"""``subset_vote``: certified robustness to whole corrupted modalities, derived from the stored
per-row predictions of the missing-modality sweep (no forward pass). For each model, seed and
imputation whose sweep holds every kept subset of size ``s``, the subset-vote classifier g_s
(:mod:`mmbench.stats.subset_vote`) becomes a cell, and for k = 1 and 2 changed modalities a
cell that is correct only on the rows g_s classifies correctly with a certificate; both are
read like any other cell (paired-bootstrap intervals)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from math import comb

import numpy as np
import pandas as pd

from mmbench.stats.curves import KEY, seed_mean
from mmbench.stats.shapley import NONE
from mmbench.stats.subset_vote import affected_votes, certified, complete_sizes, subsets_of, vote
from mmbench.families.base import Context, Family, ScoreSpec
from mmbench.families.clean import chance_note
from mmbench.families.missing import NAME as SOURCE  # the family whose stored cells this one reads
from mmbench.data.tasks import CLASSIFICATION
from mmbench.hashing import content_hash
from mmbench.metrics.outcomes import Samples
from mmbench.perturb.certify import ABSTAIN
from mmbench.registry import FAMILIES
from mmbench.render.tables import Board, Column, Num, Table, half_width
from mmbench.store.rows import CellFacts

NAME = "subset_vote"
#: changed-modality counts certified against
CHANGED = (1, 2)
#: cells of one sweep: same model, seed, rows and imputation
SWEEP_KEY = ("suite", "dataset", "model", "recipe", "seed", "split", "rows")


@FAMILIES.register(NAME)
class SubsetVote(Family):
    """The subset-vote classifier of every complete subset size, and its certificates."""

    name = NAME
    terms = {
        "subset vote": "g_s: the majority vote of the model's predictions on every kept subset of s modalities "
                       "(ties to the lower class); k=1, k=2: the share of rows it classifies correctly with a "
                       "vote margin no change of k whole modalities can overturn; g_s is its plain accuracy.",
    }
    title = "certified against corrupted modalities (subset vote)"
    order = 25
    source = SOURCE
    scores = (ScoreSpec("subset_vote_certified", "best over subset sizes s and imputations of the share of "
                        "rows the subset vote g_s classifies correctly with a certificate against any "
                        "change of one whole modality (a constant classifier scores the majority class's "
                        "share: the board gives that chance level)", "subset-vote"),)

    def compute(self, ctx: Context) -> dict[str, pd.Series]:
        rows = ctx.rows(NAME)
        one = rows[rows["target"] == "k=1"]
        if one.empty:
            return {}
        per = seed_mean(one, ["perturbation", "target", "severity", "imputation"])
        return {"subset_vote_certified": ctx.scorer.best(per.groupby(KEY)["value"])}

    def derive(self, facts: Mapping[str, CellFacts],
               samples: Mapping[str, Samples]) -> dict[str, tuple[CellFacts, Samples]]:
        sweeps: dict[tuple, dict[frozenset[str], str]] = {}
        for key, f in facts.items():
            # a vote of classes: defined for classification only (other tasks' sweeps are skipped)
            if f.family == SOURCE and key in samples and "kept" in f.facts and samples[key].task == CLASSIFICATION:
                group = tuple(getattr(f, k) for k in SWEEP_KEY) + (f.facts.get("imputation", ""),)
                kept = f.facts["kept"]
                sweeps.setdefault(group, {})[frozenset() if kept == NONE else frozenset(kept.split("+"))] = key
        out = {}
        for kept in sweeps.values():
            out.update(sweep_cells({k: v for k, v in kept.items() if k}, facts, samples))
        return out

    def boards(self, ctx: Context, dataset: str) -> list[Board]:
        note = ("g_s: majority vote of the predictions on every kept subset of s modalities (ties to the lower "
                "class); k=1, k=2: share of rows it classifies correctly with a margin that no change of k whole "
                "modalities can overturn; a cell where no row can be certified is left out (-).")
        return self.board(ctx, dataset, lambda rows: certificate_table(rows, ctx.scorer.higher_is_better),
                          f"{dataset}: certified against k corrupted modalities (subset vote g_s, {ctx.scorer.name})",
                          note + chance_note(ctx, dataset))


def sweep_cells(kept: Mapping[frozenset[str], str], facts: Mapping[str, CellFacts],
                samples: Mapping[str, Samples]) -> dict[str, tuple[CellFacts, Samples]]:
    """The g_s cell and its certified cells for every complete subset size of one sweep."""
    modalities, sizes = complete_sizes(kept)
    out = {}
    for s in sizes:
        voters = [kept[v] for v in subsets_of(modalities, s)]
        cells = [samples[k] for k in voters]
        if len({c.sample_set for c in cells}) != 1 or len({c.rows for c in cells}) != 1:
            continue
        lead, first = facts[voters[0]], cells[0]
        n = first.rows
        labels = first.labels[:n]
        classes = first.full.shape[1] if first.full is not None else int(max(
            max(int(c.preds[:n].max()) for c in cells), int(labels.max()))) + 1
        winner, margin, counts = vote(np.stack([c.preds[:n] for c in cells], axis=1), classes)
        share = (counts / len(voters)).astype(np.float32)
        base = {"imputation": lead.facts.get("imputation", ""), "s": s, "votes": comb(len(modalities), s),
                "modalities": "+".join(modalities)}
        tag = content_hash(voters)
        m = len(modalities)
        for k in (0, *(k for k in CHANGED if 2 * affected_votes(m, s, k) < comb(m, s))):  # else none can be
            keep = np.ones(n, bool) if k == 0 else certified(margin, len(modalities), s, k)
            preds = np.where(keep, winner, ABSTAIN).astype(np.int16)  # uncertified: no class's prediction
            probs = np.where(keep, share[np.arange(n), labels.astype(np.int64)], 0.0).astype(np.float32)
            full = None if first.full is None else np.where(keep[:, None], share, 0.0).astype(np.float32)
            cell = replace(lead, family=NAME, perturbation=f"subset_vote[s={s}]-{base['imputation']}",
                           target=f"k={k}", severity=float(s), facts={**base, "k": k})
            out[f"{NAME}:{tag}:{k}"] = (cell, Samples(first.sample_set, preds, labels, probs, full,
                                                             row_ids=first.ids[:n]))
    return out


def certificate_table(rows: pd.DataFrame, higher_is_better: bool) -> Table | None:
    """Per model, recipe and imputation: for each s, g_s's value and its certified values at
    k = 1, 2 (mean over seeds ± mean interval half-width); columns grouped by s."""
    if rows.empty:
        return None
    rows = rows.assign(hw=half_width(rows))
    index = ["model", "recipe", "imputation"]
    grid = rows.pivot_table(index=index, columns=["severity", "target"], values=["value", "hw"], aggfunc="mean")
    cases = sorted({(s, t) for _, s, t in grid.columns})
    lines = tuple((*key, *(Num(grid.loc[key, ("value", s, t)], grid.loc[key, ("hw", s, t)]) for s, t in cases))
                  for key in grid.index)
    columns = (*(Column(i, term=i) for i in index),
               *(Column(f"s={s:g} {'g_s' if t == 'k=0' else t}", higher_is_better, group=f"s {s:g}",
                        short="g_s" if t == "k=0" else t, term="subset vote") for s, t in cases))
    return Table(columns, lines, "subset size")
