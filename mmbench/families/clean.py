"""``clean``: the unperturbed evaluation split; its board lists every metric of the suite.

Every robust-vs-clean comparison must be on the same rows: for each row subset another family
evaluated (``max_rows``), the clean cell restricted to exactly those rows is derived from the
stored outcomes (nothing is rerun), so curves start from, and sanity checks compare against, the
clean value of the rows that were perturbed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import pandas as pd

from mmbench.stats.curves import KEY
from mmbench.data.tasks import CLASSIFICATION, MULTILABEL, REGRESSION, THRESHOLD
from mmbench.families.base import CLEAN, Context, Family, ScoreSpec
from mmbench.hashing import derive_seed
from mmbench.metrics.outcomes import Samples, SampleSet
from mmbench.registry import FAMILIES, METRICS
from mmbench.render.tables import Board, Column, Num, Table, half_width
from mmbench.store.rows import CellFacts


@FAMILIES.register(CLEAN)
class Clean(Family):
    """The unperturbed evaluation split; its board lists every metric of the suite."""

    name = CLEAN
    title = "clean"
    order = 0
    scores = (ScoreSpec("clean_accuracy", "the score metric on the clean evaluation split",
                        "clean-accuracy", main=True, reference=True),)

    def compute(self, ctx: Context) -> dict[str, pd.Series]:
        rows = ctx.clean_rows()
        return {"clean_accuracy": rows.groupby(KEY)["value"].mean()} if len(rows) else {}

    def derive(self, facts: Mapping[str, CellFacts],
               samples: Mapping[str, Samples]) -> dict[str, tuple[CellFacts, Samples]]:
        """The clean cell of each trained model on every row subset another cell evaluated."""
        subsets: dict[tuple[str, str], dict[SampleSet, Samples]] = {}
        for key, s in samples.items():
            if s.sample_set.rows and key in facts:
                subsets.setdefault((s.sample_set.dataset, s.sample_set.split), {})[s.sample_set] = s
        out = {}
        for key, f in facts.items():
            full = samples.get(key)
            if f.family != CLEAN or full is None or full.sample_set.rows:
                continue
            for sample_set, s in subsets.get((f.dataset, f.split), {}).items():
                if set(s.ids) <= set(full.ids):
                    out[f"{CLEAN}:{key}:{sample_set.rows}"] = (replace(f, rows=sample_set.rows),
                                                               full.restricted(sample_set, s.ids))
        return out

    def baselines(self, facts: Mapping[str, CellFacts], samples: Mapping[str, Samples],
                  classes: Mapping[str, int]) -> dict[str, tuple[CellFacts, Samples]]:
        return trivial_baselines(facts, samples, classes)

    def exported(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The trivial baselines are not a model's results (they go to baselines.csv), and the
        clean cells restricted to another family's row subset are the analysis's reference (its
        clean-on-the-same-rows scores, curves' level 0), not a second clean result."""
        own = (frame["family"] != BASELINE) & ~((frame["family"] == CLEAN) & (frame["rows"] != 0))
        return frame[own].drop(columns=[c for c in BASELINE_FACTS if c in frame])

    def checks(self, ctx: Context) -> pd.DataFrame | None:
        return degenerate_checks(ctx)

    def tables(self, ctx: Context) -> dict[str, pd.DataFrame]:
        """``baselines.csv``: the trivial baselines beside each model's clean cell."""
        rows = ctx.rows(BASELINE, any_metric=True)
        columns = ["dataset", "model", "recipe", "seed", "split", "perturbation", *BASELINE_FACTS, "metric",
                   "value", "n", "ci_low", "ci_high"]
        return {"baselines": rows[columns].reset_index(drop=True)} if len(rows) else {}

    def boards(self, ctx: Context, dataset: str) -> list[Board]:
        rows = ctx.clean_rows(any_metric=True, dataset=dataset)
        if rows.empty:
            return []
        present = set(rows["metric"])
        metrics = [m for m in dict.fromkeys((*ctx.metrics, *sorted(present))) if m in present]
        task = ctx.task(dataset)
        note = ("± is the half-width of the 95% bootstrap interval over test samples; sd the standard "
                f"deviation across training seeds. The last rows are trivial baselines on the same rows: "
                f"{CONSTANT[task]}, and {RANDOM[task]} (chance).")
        table = metric_board(rows, metrics)
        base = ctx.rows(BASELINE, dataset=dataset, any_metric=True)
        return [Board(f"{dataset} (clean, test split)", with_baselines(table, base, metrics, task), note)]


def metric_board(rows: pd.DataFrame, metrics: list[str]) -> Table:
    """Models ranked by the first of ``metrics`` (its declared direction); each cell the mean over
    seeds ± the mean half-width of the cells' intervals, and the sd across seeds."""
    summary = rows.assign(hw=half_width(rows)).groupby(["model", "recipe", "metric"]).agg(
        mean=("value", "mean"), std=("value", "std"), seeds=("value", "count"), hw=("hw", "mean"))
    first = metrics[0]
    order = summary.xs(first, level="metric")["mean"].sort_values(
        ascending=not METRICS.get(first).higher_is_better, kind="stable")
    lines = []
    for rank, (model, recipe) in enumerate(order.index, start=1):
        cells = []
        for m in metrics:
            s = summary.loc[(model, recipe, m)] if (model, recipe, m) in summary.index else None
            cells.append(Num(None) if s is None else Num(s["mean"], s["hw"], s["std"] if s["seeds"] >= 2 else None))
        lines.append((rank, model, recipe, *cells, int(summary.loc[(model, recipe, first), "seeds"])))
    columns = (Column("rank", term="rank"), Column("model"), Column("recipe", term="recipe"),
               *(Column(m, METRICS.get(m).higher_is_better, term=m) for m in metrics), Column("seeds", term="seeds"))
    return Table(columns, tuple(lines))


#: the family of the trivial baselines' rows: no model, only the labels of the evaluated rows
BASELINE = "baseline"
#: the constant predictor's and chance's rows (``majority_class`` whatever the task)
MAJORITY, CHANCE = "majority_class", "chance"
#: what the constant predictor and chance predict, by task
CONSTANT = {CLASSIFICATION: "always predicting the majority class", REGRESSION: "always predicting the mean target",
            MULTILABEL: "always predicting each label's share of positive rows"}
RANDOM = {CLASSIFICATION: "uniformly random predictions", REGRESSION: "the rows' targets shuffled",
          MULTILABEL: "the rows' label sets shuffled"}
#: how a degenerate model's predictions concentrate, by task (:func:`top_share`)
CONCENTRATED = {CLASSIFICATION: ("predicts one class for", "the labels' largest class is"),
                REGRESSION: ("predicts nearly one value for", "the targets' is"),
                MULTILABEL: ("predicts one label set for", "the labels' most frequent set is")}
#: the facts of a baseline row: how concentrated the model's and the labels' classes are
BASELINE_FACTS = ("model_top_share", "label_top_share")
#: draws of uniformly random predictions whose pooled metric is the chance level
CHANCE_DRAWS = 20
#: a model that predicts one class for at least this share of rows has collapsed (unless the
#: labels are that imbalanced too)
COLLAPSED = 0.95


def trivial_baselines(facts: Mapping[str, CellFacts], samples: Mapping[str, Samples],
                      classes: Mapping[str, int]) -> dict[str, tuple[CellFacts, Samples]]:
    """Beside each model's clean cell, on the same rows: a constant predictor (the most frequent
    label of those rows for every row; on a regression the rows' mean target, on a multilabel
    task each label's share of positive rows) and chance (uniformly random classes; the rows'
    own targets shuffled for the other tasks; :data:`CHANCE_DRAWS` seeded draws pooled). Their
    facts carry how concentrated the model's predictions (``model_top_share``) and the labels
    (``label_top_share``) are (:func:`top_share`)."""
    out = {}
    for key, f in facts.items():
        s = samples.get(key)
        if f.family != CLEAN or s is None or s.sample_set.rows or f.dataset not in classes:
            continue
        made = _constant_and_chance(s, classes[f.dataset])
        predicted, truth = (s.preds, s.labels) if s.outputs is None else (s.outputs, s.targets)
        shares = dict(zip(BASELINE_FACTS, (top_share(s.task, predicted[:s.rows], truth[:s.rows]),
                                           top_share(s.task, truth[:s.rows], truth[:s.rows])), strict=True))
        for name, cell_samples in zip((MAJORITY, CHANCE), made, strict=True):
            cell = replace(f, family=BASELINE, perturbation=name, target="none", facts=shares)
            out[f"{BASELINE}:{name}:{key}"] = (cell, cell_samples)
    return out


def top_share(task: str, predicted: np.ndarray, truth: np.ndarray) -> float:
    """The share of rows at the most frequent prediction: the most frequent class, or label set
    (multilabel, thresholded), or (regression) within :data:`NEAR` target standard deviations of
    the median prediction in every column; ``truth`` (the rows' targets) sets that scale."""
    if not len(predicted):
        return 0.0
    if task == CLASSIFICATION:
        return float(np.bincount(predicted.astype(np.int64)).max() / len(predicted))
    if task == MULTILABEL:
        _, counts = np.unique(predicted >= THRESHOLD, axis=0, return_counts=True)
        return float(counts.max() / len(predicted))
    scale = np.maximum(truth.std(axis=0), 1e-12)
    near = np.abs(predicted - np.median(predicted, axis=0)) <= NEAR * scale
    return float(near.all(axis=1).mean())


#: a regression prediction this many target standard deviations from the median prediction
#: counts as the same prediction (:func:`top_share`)
NEAR = 0.05


def _constant_and_chance(s: Samples, n_classes: int) -> tuple[Samples, Samples]:
    if s.task == CLASSIFICATION:
        labels = s.labels[:s.rows].astype(np.int64)
        return _majority(s, labels, n_classes), _chance(s, labels, n_classes)
    targets = s.targets[:s.rows].astype(np.float32)
    constant = np.broadcast_to(targets.mean(axis=0), targets.shape).astype(np.float32)
    rng = np.random.default_rng(derive_seed(s.sample_set.key, CHANCE))
    shuffled = np.concatenate([targets[rng.permutation(len(targets))] for _ in range(CHANCE_DRAWS)])
    return _of_task(s, constant, targets, 1), _of_task(s, shuffled, np.tile(targets, (CHANCE_DRAWS, 1)), CHANCE_DRAWS)


def _of_task(s: Samples, outputs: np.ndarray, targets: np.ndarray, draws: int) -> Samples:
    zeros = np.zeros(len(outputs), np.int16)
    return Samples(s.sample_set, zeros, zeros, zeros.astype(np.float32), None, draws, row_ids=s.ids,
                   task=s.task, outputs=outputs, targets=targets)


def _majority(s: Samples, labels: np.ndarray, n_classes: int) -> Samples:
    top = int(np.bincount(labels, minlength=n_classes).argmax())
    hit = (labels == top).astype(np.float32)
    full = None if s.full is None else np.eye(n_classes, dtype=np.float32)[np.full(len(labels), top)]
    return Samples(s.sample_set, np.full(len(labels), top, np.int16), labels.astype(np.int16), hit, full,
                   row_ids=s.ids)


def _chance(s: Samples, labels: np.ndarray, n_classes: int) -> Samples:
    rng = np.random.default_rng(derive_seed(s.sample_set.key, CHANCE))
    preds = rng.integers(0, n_classes, size=CHANCE_DRAWS * len(labels)).astype(np.int16)
    tiled = np.tile(labels, CHANCE_DRAWS).astype(np.int16)
    probs = np.full(len(preds), 1.0 / n_classes, np.float32)
    full = None if s.full is None else np.full((len(preds), n_classes), 1.0 / n_classes, np.float32)
    return Samples(s.sample_set, preds, tiled, probs, full, CHANCE_DRAWS, row_ids=s.ids)


def baseline_rows(ctx: Context, metric: str | None = None, dataset: str | None = None) -> pd.DataFrame:
    """The trivial baselines' rows of ``metric`` (default: the score metric), of one ``dataset``
    when given."""
    return ctx.rows(BASELINE, metric, dataset)


def chance_note(ctx: Context, dataset: str) -> str:
    """A board note giving what a constant classifier scores on ``dataset``'s clean rows (the
    majority-class baseline, mean over models and seeds), so a certified value at that level is
    recognisable as certifying nothing; empty without clean cells."""
    rows = baseline_rows(ctx, dataset=dataset)
    rows = rows[rows["perturbation"] == MAJORITY]
    if rows.empty:
        return ""
    side = "at or below" if ctx.scorer.higher_is_better else "at or above"
    return (f" Chance level: {CONSTANT[ctx.task(dataset)]} scores {rows['value'].mean():.4f} "
            f"{ctx.scorer.name} on the clean rows, and a constant classifier is certified everywhere: "
            f"a certified value {side} it shows no robustness.")


def degenerate_checks(ctx: Context) -> pd.DataFrame | None:
    """``degenerate``: per trained model, whether its clean score is above the majority-class
    baseline on the same rows by more than its interval's half-width, and it does not predict
    one class for nearly all rows (:data:`COLLAPSED`) while the labels are more balanced."""
    clean, base = ctx.clean_rows(), baseline_rows(ctx)
    if clean.empty or base.empty:
        return None
    on = ["dataset", "model", "recipe", "seed"]
    wide = base.pivot_table(index=on, columns="perturbation", values="value", aggfunc="first")
    shares = base.groupby(on)[["model_top_share", "label_top_share"]].first()
    rows = clean.assign(hw=half_width(clean))[[*on, "value", "hw"]].set_index(on).join(wide).join(shares)
    rows = rows.dropna(subset=[MAJORITY]).reset_index()
    flags = [_degenerate(r, ctx.scorer.higher_is_better, ctx.scorer.name, ctx.task(r.dataset))
             for r in rows.itertuples()]
    return pd.DataFrame(flags, columns=["dataset", "model", "recipe", "seed", "check", "perturbation",
                                        "target", "passed", "detail"])


def _degenerate(r: object, higher: bool, metric: str, task: str) -> dict:
    value, hw, majority = float(r.value), float(np.nan_to_num(r.hw)), float(getattr(r, MAJORITY))
    margin = value - majority if higher else majority - value
    top, label_top = float(r.model_top_share), float(r.label_top_share)
    collapsed = top >= COLLAPSED and label_top < COLLAPSED
    ok = margin > hw and not collapsed
    detail = "" if ok else (
        f"clean {metric} {value:.4f} ± {hw:.4f} vs {majority:.4f} for {CONSTANT[task]} "
        f"(chance {float(getattr(r, CHANCE)):.4f}); it {CONCENTRATED[task][0]} {top:.0%} of rows "
        f"({CONCENTRATED[task][1]} {label_top:.0%}): a degenerate model, whose robustness means nothing")
    return {"dataset": r.dataset, "model": r.model, "recipe": r.recipe, "seed": r.seed, "check": "degenerate",
            "perturbation": CLEAN, "target": "all", "passed": bool(ok), "detail": detail}


def with_baselines(table: Table, base: pd.DataFrame, metrics: list[str], task: str = CLASSIFICATION) -> Table:
    """``table`` (a :func:`metric_board`) with a line per trivial baseline (its value per metric,
    the same for every model evaluated on those rows)."""
    if base.empty:
        return table
    lines = []
    for name, label in ((MAJORITY, "(majority class)" if task == CLASSIFICATION else "(constant)"),
                        (CHANCE, "(chance)")):
        rows = base[base["perturbation"] == name]
        values = rows.assign(hw=half_width(rows)).groupby("metric")[["value", "hw"]].first()
        cells = [Num(values.loc[m, "value"], values.loc[m, "hw"]) if m in values.index else Num(None) for m in metrics]
        lines.append(("-", label, "baseline", *cells, "-"))
    return Table(table.columns, (*table.rows, *lines), table.axis)
