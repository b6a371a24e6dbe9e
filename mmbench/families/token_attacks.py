"""``token_attacks``: attacks on token ids, alone and jointly with continuous modalities.

Rows (:mod:`mmbench.perturb.token_attacks`, :mod:`mmbench.perturb.joint_attacks`,
:mod:`mmbench.perturb.embedding_pgd`): ``severity`` is the budget in changed positions (the
radius for the ``embedding_pgd`` diagnostic); a joint cell also stores its continuous part's
``continuous_eps`` and its two parts (``parts``: continuous target | token target). The board
shows every attack at every budget with its interval, so hotflip, greedy and random substitution
can be compared directly; the score ``token_robust_accuracy`` averages, over (token target,
budget), the worst realisable token attack (the diagnostic and the joint cells take no part).
The checks: monotone in the budget, never better than clean on the same rows, and a joint cell
never weaker than either of its parts on the same rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import pandas as pd

from mmbench.families.adversarial import per_row_worst
from mmbench.families.base import Context, Family, ScoreSpec
from mmbench.metrics.outcomes import Samples
from mmbench.perturb.adversarial import ADVERSARIAL
from mmbench.perturb.adversarial import TOKEN_FAMILY as FAMILY
from mmbench.perturb.embedding_pgd import DIAGNOSTIC, EMBEDDING_PGD
from mmbench.perturb.joint_attacks import SEQUENCE
from mmbench.registry import FAMILIES
from mmbench.render.plots import Plot, curves
from mmbench.render.tables import Column, Num, Table, half_width
from mmbench.stats.curves import KEY, seed_mean
from mmbench.stats.sanity import CheckedMetric, sanity_checks
from mmbench.store.rows import CellFacts

#: how much a joint cell may trail a part before the check fails (float rounding only)
SLACK = 1e-9
#: the ``joint`` fact of a derived joint cell (the stored sequence's is :data:`SEQUENCE`)
WORST_OF_PARTS = "worst of parts"
#: what a stored cell shares with the cells of the same rows it is compared or combined with
SAME = ("suite", "dataset", "model", "recipe", "seed", "split", "rows")
CHECK_COLUMNS = ["dataset", "model", "recipe", "seed", "check", "perturbation", "target", "passed", "detail"]


def token_only(rows: pd.DataFrame) -> pd.DataFrame:
    """The realisable attacks on token ids alone (no joint cell, no diagnostic)."""
    joint = rows["continuous_eps"].notna() if "continuous_eps" in rows else False
    return rows[~joint & (rows["perturbation"] != DIAGNOSTIC)]


def shown(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` without the stored sequences of joint attacks (their derived cells stand in)."""
    return rows[rows["joint"] != SEQUENCE] if "joint" in rows else rows


def joint_cells(facts: Mapping[str, CellFacts], samples: Mapping[str, Samples]) -> dict[str, tuple[CellFacts, Samples]]:
    """Each stored joint sequence with its two parts alone (same rows): per row the worst of the
    three, a cell named ``<continuous>+<token>`` (parts missing: the worst of those present)."""
    index = {}
    for key, f in facts.items():
        if f.family in (ADVERSARIAL, FAMILY) and "joint" not in f.facts and key in samples:
            index[(f.family, *(getattr(f, k) for k in SAME), f.target, f.facts.get("attack"), f.severity)] = key
    out = {}
    for key, f in facts.items():
        if f.family != FAMILY or f.facts.get("joint") != SEQUENCE or key not in samples:
            continue
        cont_target, token_target = str(f.facts["parts"]).split("|", 1)
        cont_attack, token_attack = str(f.facts["attack"]).split("+", 1)
        same = tuple(getattr(f, k) for k in SAME)
        parts = [index.get((ADVERSARIAL, *same, cont_target, cont_attack, float(f.facts["continuous_eps"]))),
                 index.get((FAMILY, *same, token_target, token_attack, f.severity))]
        members = [key, *(p for p in parts if p is not None)]
        derived = replace(f, perturbation=f.perturbation.replace(">", "+"), facts={**f.facts, "joint": WORST_OF_PARTS})
        out[f"joint:{key}"] = (derived, per_row_worst(members, samples))
    return out


@FAMILIES.register(FAMILY)
class TokenAttacks(Family):
    """Token attacks per attack and budget, joint text + continuous attacks, the diagnostic."""

    name = FAMILY
    terms = {
        "attack@k": "The attack on the token target changing at most k positions per row (or that share of "
                    "its positions when k < 1); joint columns add the continuous attack at its eps.",
        "embedding_pgd (diagnostic)": "PGD on the embedding vectors, not on ids: no real input reaches it, and it "
                                      "bounds no token attack either way (one changed id can move further than "
                                      "its radius); how sensitive the model is near its inputs, never in a score.",
    }
    title = "token attacks"
    order = 11
    scores = (
        ScoreSpec("token_robust_accuracy", "mean over (token target, budget in positions) of the worst "
                  "realisable token attack's value (hotflip, greedy or random substitution)", "token-attacks",
                  main=True),
    )
    composite = "token_robust_accuracy"

    def compute(self, ctx: Context) -> dict[str, pd.Series]:
        rows = token_only(ctx.rows(FAMILY))
        if rows.empty:
            return {}
        per = seed_mean(rows, ["perturbation", "target", "severity", "rows"])
        worst = ctx.scorer.worst(per.groupby(KEY + ["target", "severity", "rows"], as_index=False)["value"])
        return {"token_robust_accuracy": worst.groupby(KEY)["value"].mean()}

    def derive(self, facts: Mapping[str, CellFacts],
               samples: Mapping[str, Samples]) -> dict[str, tuple[CellFacts, Samples]]:
        return joint_cells(facts, samples)

    def checks(self, ctx: Context) -> pd.DataFrame | None:
        """Carlini et al.'s checks that apply to a budget in positions (monotone in the budget,
        never better than clean on the same rows), on accuracy or else the score metric, and
        every joint cell against its parts."""
        reading = CheckedMetric()
        rows = shown(ctx.rows(FAMILY, "accuracy"))
        if rows.empty:
            reading = CheckedMetric(ctx.scorer.name, ctx.scorer.higher_is_better)
            rows = shown(ctx.rows(FAMILY, reading.metric))
        if rows.empty:
            return None
        found = [sanity_checks(rows, {}, ctx.clean_on(rows, metric=reading.metric), reading)]
        if "continuous_eps" in rows and rows["continuous_eps"].notna().any():
            found.append(joint_checks(rows, ctx.rows(ADVERSARIAL, reading.metric), reading.higher_is_better))
        return pd.concat(found, ignore_index=True)

    def boards(self, ctx: Context, dataset: str) -> list:
        note = ("Each column: one attack on the target at a budget of k changed positions (k < 1: that share of "
                "the row's positions), value ± 95% half-width; joint columns attack the continuous "
                "modalities at eps and the tokens at k together (never weaker than either part alone). "
                "embedding_pgd is a diagnostic, not a realisable input. Ranked by token_robust_accuracy.")
        return self.board(ctx, dataset, lambda rows: token_board(shown(rows), ctx.scorer.higher_is_better),
                          f"{dataset}: token attacks ({ctx.scorer.name} per attack and budget)", note)

    def reading(self, ctx: Context, dataset: str) -> str | None:
        """The strongest realisable token attack at the largest budget, mean over models."""
        rows = token_only(ctx.rows(FAMILY, dataset=dataset))
        if rows.empty:
            return None
        top = rows[rows["severity"] == rows["severity"].max()]
        per = top.groupby(["target", "attack", "model", "recipe"])["value"].mean().groupby(["target", "attack"]).mean()
        (target, attack) = per.idxmin() if ctx.scorer.higher_is_better else per.idxmax()
        k = float(top["severity"].iloc[0])
        changed = f"{k:g} positions" if k >= 1 else f"{k:.0%} of the positions"
        value, name = f"{per[(target, attack)]:.3f}", ctx.scorer.name
        effect = f"leaves {value} {name}" if ctx.scorer.higher_is_better else f"raises {name} to {value}"
        return (f"Changing {changed} of {target} ({attack}, the strongest token attack there) {effect} on "
                "average over the models.")

    def plots(self, ctx: Context, out_dir: Path) -> list[Plot]:
        rows = token_only(ctx.rows(FAMILY))
        if rows.empty:
            return []
        per_seed = ["dataset", "model", "recipe", "seed", "target", "severity"]
        worst = ctx.scorer.worst(rows.groupby(per_seed, as_index=False)["value"]).rename(columns={"severity": "level"})
        metric = ctx.scorer.name
        return [Plot(curves(g, out_dir, [FAMILY, dataset, target], "changed positions", metric,
                            f"worst token attack on {target}, {dataset}", colours=ctx.palette),
                     f"{metric} under the strongest token attack on {target} as more positions may change, mean "
                     "over seeds; one line per model.", dataset)
                for (dataset, target), g in worst.groupby(["dataset", "target"], sort=True)]


def column_label(row: pd.Series) -> str:
    """``target attack@k`` (joint: ``target cont@eps+tokens@k``; the diagnostic says so)."""
    attack, k = str(row["attack"]), f"{float(row['severity']):g}"
    if attack == EMBEDDING_PGD:
        return f"{row['target']} {EMBEDDING_PGD} (diagnostic)@{k}"
    eps = row.get("continuous_eps")
    if eps is not None and pd.notna(eps):
        cont, tokens = attack.split("+", 1)
        return f"{row['target']} {cont}@{float(eps):g}+{tokens}@{k}"
    return f"{row['target']} {attack}@{k}"


def token_board(rows: pd.DataFrame, higher_is_better: bool) -> Table | None:
    """Per model and recipe, the value ± half-width of every (target, attack, budget), models
    ranked by their mean over the realisable token-only columns' worst attack per budget."""
    if rows.empty:
        return None
    rows = rows.assign(hw=half_width(rows), column=rows.apply(column_label, axis=1))
    joint = rows["continuous_eps"].notna() if "continuous_eps" in rows else False
    rows = rows.assign(order=joint * 1 + (rows["perturbation"] == DIAGNOSTIC) * 2)
    means = rows.groupby(["model", "recipe", "column"])[["value", "hw"]].mean()
    layout = rows.drop_duplicates("column").sort_values(["order", "target", "severity", "column"], kind="stable")
    alone = token_only(rows)
    per = alone.groupby(["model", "recipe", "target", "severity", "column"])["value"].mean()
    worst = per.groupby(level=["model", "recipe", "target", "severity"])
    worst = worst.max() if not higher_is_better else worst.min()
    score = worst.groupby(level=["model", "recipe"]).mean()
    sign = -1.0 if higher_is_better else 1.0
    models = sorted(dict.fromkeys((m, r) for m, r, _ in means.index),
                    key=lambda k: (k not in score.index, sign * float(score.get(k, 0.0)), k))
    lines = tuple((rank, model, recipe, *(Num(*means.loc[(model, recipe, c)]) if (model, recipe, c) in means.index
                                          else Num(None) for c in layout["column"]))
                  for rank, (model, recipe) in enumerate(models, start=1))
    columns = (Column("rank", term="rank"), Column("model"), Column("recipe", term="recipe"),
               *(Column(c, higher_is_better, group=f"k {float(k):g}", short=c.split(" ", 1)[1], target=t,
                        term="embedding_pgd (diagnostic)" if EMBEDDING_PGD in c else "attack@k")
                 for c, k, t in zip(layout["column"], layout["severity"], layout["target"], strict=True)))
    return Table(columns, lines, "k")


def joint_checks(rows: pd.DataFrame, continuous: pd.DataFrame, higher_is_better: bool) -> pd.DataFrame:
    """Per joint cell and seed: its value is no better than each part's alone on the same rows
    (the continuous part's cell of the adversarial family, the token part's of this family)."""
    on = ["dataset", "model", "recipe", "seed", "rows"]
    joint, alone = rows[rows["continuous_eps"].notna()], token_only(rows)
    out = []
    for _, cell in joint.iterrows():
        cont_target, token_target = str(cell["parts"]).split("|", 1)
        cont_attack, token_attack = str(cell["attack"]).split("+", 1)
        parts = [(continuous, cont_target, cont_attack, float(cell["continuous_eps"])),
                 (alone, token_target, token_attack, float(cell["severity"]))]
        values = []
        for frame, target, attack, level in parts:
            same = frame[(frame["target"] == target) & (frame["attack"] == attack) & (frame["severity"] == level)]
            same = same.merge(cell[on].to_frame().T.astype(same[on].dtypes.to_dict()), on=on)
            values += [float(v) for v in same["value"]]
        if not values:
            continue
        best = min(values) if higher_is_better else max(values)
        weaker = cell["value"] > best + SLACK if higher_is_better else cell["value"] < best - SLACK
        out.append({**{k: cell[k] for k in ("dataset", "model", "recipe", "seed", "target")},
                    "check": "joint_not_weaker", "perturbation": column_label(cell), "passed": not weaker,
                    "detail": f"joint {cell['value']:.4f} vs its strongest part alone {best:.4f}" if weaker else ""})
    return pd.DataFrame(out, columns=CHECK_COLUMNS)
