"""``compound``: perturbations applied in stages (missing then attacked, corrupted then attacked).

Rows carry ``stages`` and per stage i ``stage{i}_family``, ``stage{i}_perturbation``,
``stage{i}_target``, ``stage{i}_severity``, ``stage{i}_key`` and the stage's own facts. A
condition with ``stages: 1`` is one stage alone on the compound's rows, the reference a compound
is read against. Score (docs/metrics.md): the worst multi-stage condition's value
(``compound_worst``, the composite part). Sanity check ``compound_vs_stage``: a compound is not
better than the worse of its stages alone (one row of slack); it may legitimately be (an earlier
stage can take away what a later one attacks), so it is flagged, not corrected."""

from __future__ import annotations

import pandas as pd

from mmbench.stats.curves import KEY
from mmbench.stats.sanity import GROUP
from mmbench.families.base import Context, Family, ScoreSpec
from mmbench.registry import FAMILIES
from mmbench.render.tables import Board, Column, Num, Table, half_width

NAME = "compound"
STAGES = "stages"
CHECK = "compound_vs_stage"
#: what else identifies a condition besides its stage keys (the rows it was evaluated on too)
CONDITION = ["perturbation", "target", "severity", "split", "rows", STAGES]


@FAMILIES.register(NAME)
class Compound(Family):
    """Stages applied in order, each read against the same stages alone."""

    name = NAME
    terms = {
        "worst compound": "The worst condition of two or more perturbation stages applied in order (e.g. a "
                          "modality missing, then another attacked), mean over seeds; the condition in brackets.",
        "worst stage alone": "The worst of the same stages applied alone, on the same rows; the stage in brackets.",
        "compound extra drop": "How much more the worst compound costs than the worst stage alone (worst stage "
                               "alone minus worst compound for a higher-is-better metric); negative: no stage "
                               "combination is worse than its worst stage.",
    }
    title = "compound perturbations"
    order = 45
    scores = (ScoreSpec("compound_worst", "worst value over the compound conditions of two or more stages",
                        "compound", main=True),)
    composite = "compound_worst"

    def compute(self, ctx: Context) -> dict[str, pd.Series]:
        table = conditions(ctx.rows(NAME))
        multi = table[table[STAGES] > 1]
        return {"compound_worst": ctx.scorer.worst(multi.groupby(KEY)["value"])} if len(multi) else {}

    def checks(self, ctx: Context) -> pd.DataFrame | None:
        rows = ctx.rows(NAME)
        return stage_checks(rows, ctx.scorer.higher_is_better) if len(rows) else None

    def boards(self, ctx: Context, dataset: str) -> list[Board]:
        note = ("Worst over the compound conditions (stages applied in order, each to the previous one's output) "
                "and over the same stages alone on the same rows, mean over seeds ± the interval's half-width; "
                "extra drop: how much more the worst compound costs than the worst stage alone.")
        return self.board(ctx, dataset, lambda rows: worst_board(rows, ctx),
                          f"{dataset}: compound perturbations (worst condition, {ctx.scorer.name})", note)


def stage_keys(rows: pd.DataFrame) -> list[str]:
    """The ``stage{i}_key`` columns of ``rows``, in stage order."""
    found = [c for c in rows.columns if c.startswith("stage") and c.endswith("_key") and c[5:-4].isdigit()]
    return sorted(found, key=lambda c: int(c[5:-4]))


def label(row: pd.Series | dict) -> str:
    """A condition's stages as text: ``missing-mean on pix @1 → pgd-Linf on fac @0.05``."""
    parts = []
    for i in range(1, int(row[STAGES]) + 1):
        parts.append(f"{row[f'stage{i}_perturbation']} on {row[f'stage{i}_target']} "
                     f"@{float(row[f'stage{i}_severity']):g}")
    return " → ".join(parts)


def conditions(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean value (and interval half-width) over seeds per (dataset, model, recipe, condition),
    with the columns that label it."""
    if rows.empty:
        return pd.DataFrame(columns=[*KEY, *CONDITION, "value", "hw"])
    keys = stage_keys(rows)
    names = [c for c in rows.columns if c.startswith("stage") and c not in keys and c != STAGES]
    rows = rows.assign(hw=half_width(rows) if "ci_high" in rows else float("nan"))
    grouped = rows.groupby(KEY + CONDITION + keys, dropna=False, sort=True)
    return grouped.agg(value=("value", "mean"), hw=("hw", "mean"),
                       **{c: (c, "first") for c in names}).reset_index()


def stage_checks(rows: pd.DataFrame, higher_is_better: bool) -> pd.DataFrame:
    """``compound_vs_stage`` per compound row (one seed): passed iff its value is not better than
    the worse of its stages alone on the same rows by more than one row (1/n)."""
    keys = stage_keys(rows)
    alone = rows[rows[STAGES] == 1].set_index([*GROUP, "split", "rows", "stage1_key"])["value"]
    alone = alone[~alone.index.duplicated()]
    flags = []
    for _, row in rows[rows[STAGES] > 1].iterrows():
        at = [(*row[GROUP], row["split"], row["rows"], row[k]) for k in keys[: int(row[STAGES])]]
        if not all(a in alone.index for a in at):
            continue
        values = [float(alone[a]) for a in at]
        worse = min(values) if higher_is_better else max(values)
        margin = (row["value"] - worse) if higher_is_better else (worse - row["value"])
        passed = margin <= 1.0 / row["n"] + 1e-9
        flags.append({**{k: row[k] for k in GROUP}, "check": CHECK, "perturbation": row["perturbation"],
                      "target": row["target"], "passed": bool(passed),
                      "detail": "" if passed else _detail(row, worse, higher_is_better)})
    columns = [*GROUP, "check", "perturbation", "target", "passed", "detail"]
    return pd.DataFrame(flags, columns=columns)


def _detail(row: pd.Series, worse: float, higher_is_better: bool) -> str:
    sign = ">" if higher_is_better else "<"
    return (f"compound {row['value']:.3f} {sign} worse stage alone {worse:.3f} ({label(row)}): an earlier "
            "stage can help a later one, e.g. imputation removing the signal the attack would use")


def worst_board(rows: pd.DataFrame, ctx: Context) -> Table | None:
    """Per model and recipe: the worst compound condition, the worst stage alone and the extra
    drop between them (positive: the compound costs more); ranked by the worst compound."""
    table = conditions(rows)
    multi, single = table[table[STAGES] > 1], table[table[STAGES] == 1]
    if multi.empty or single.empty:
        return None
    worst_multi, worst_single = _worst(multi, ctx), _worst(single, ctx)
    joined = worst_multi.merge(worst_single, left_index=True, right_index=True, suffixes=("_c", "_s"))
    sign = 1.0 if ctx.scorer.higher_is_better else -1.0
    joined["extra"] = sign * (joined["value_s"] - joined["value_c"])
    joined = joined.sort_values(["value_c"], ascending=ctx.scorer.ascending, kind="stable")
    lines = tuple((rank, model, recipe, Num(r["value_c"], r["hw_c"], note=r["label_c"]),
                   Num(r["value_s"], r["hw_s"], note=r["label_s"]), Num(r["extra"]))
                  for rank, ((model, recipe), r) in enumerate(joined.iterrows(), start=1))
    better = ctx.scorer.higher_is_better
    columns = (Column("rank", term="rank"), Column("model"), Column("recipe", term="recipe"),
               Column("worst compound", better, term="worst compound"),
               Column("worst stage alone", better, term="worst stage alone"),
               Column("extra drop", False, term="compound extra drop"))
    return Table(columns, lines)


def _worst(table: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    """Per (model, recipe): the worst condition's value, half-width and label."""
    by = table.groupby(["model", "recipe"])["value"]
    pick = table.loc[by.idxmin() if ctx.scorer.higher_is_better else by.idxmax()]
    return pick.assign(label=pick.apply(label, axis=1)).set_index(["model", "recipe"])[["value", "hw", "label"]]
