"""Markdown leaderboards from tidy rows: one table per dataset, models ranked, mean ± std over
seeds (the ± part is omitted when there is a single seed)."""

from __future__ import annotations

import pandas as pd
from tabulate import tabulate

from mmbench.analysis.corruption import ACCURACY, severity_means
from mmbench.analysis.direction import ScoreMetric
from mmbench.registry import METRICS

SEED_COLUMNS = ["dataset", "model", "recipe", "metric"]


def summarise(frame: pd.DataFrame, family: str = "clean") -> pd.DataFrame:
    """Mean, std and seed count per (dataset, model, recipe, metric) for one family."""
    rows = frame[frame["family"] == family].assign(hw=(frame["ci_high"] - frame["ci_low"]) / 2)
    grouped = rows.groupby(SEED_COLUMNS, sort=True)
    out = grouped.agg(mean=("value", "mean"), std=("value", "std"), seeds=("value", "count"),
                      hw=("hw", "mean")).reset_index()
    out["std"] = out["std"].fillna(0.0)
    return out


def format_cell(mean: float, std: float, seeds: int, hw: float = float("nan")) -> str:
    """``mean ± half-width of the 95% bootstrap interval`` (mean over seeds), and the std
    across training seeds when there are several."""
    text = f"{mean:.4f}" if pd.isna(hw) else f"{mean:.4f} ± {hw:.4f}"
    return text if seeds < 2 else f"{text} (sd {std:.4f})"


def dataset_board(summary: pd.DataFrame, dataset: str, metrics: list[str]) -> str:
    """One dataset's table, ranked by the first metric (direction from the metric registry)."""
    part = summary[summary["dataset"] == dataset]
    table = part.pivot_table(index=["model", "recipe"], columns="metric",
                             values=["mean", "std", "seeds", "hw"], aggfunc="first", dropna=False)
    rank_metric = metrics[0]
    ascending = not METRICS.get(rank_metric).higher_is_better
    order = table[("mean", rank_metric)].sort_values(ascending=ascending, kind="stable")
    lines = []
    for rank, (model, recipe) in enumerate(order.index, start=1):
        row = table.loc[(model, recipe)]
        cells = [format_cell(row[("mean", m)], row[("std", m)], int(row[("seeds", m)]), row[("hw", m)])
                 for m in metrics]
        lines.append([rank, model, recipe, *cells, int(row[("seeds", rank_metric)])])
    headers = ["rank", "model", "recipe", *metrics, "seeds"]
    return tabulate(lines, headers=headers, tablefmt="github", disable_numparse=True)


MAIN_SCORES = ("clean_accuracy", "composite", "adv_robust_accuracy", "missing_mean_rate",
               "missing_worst_subset", "shift_mean_accuracy", "mce", "worst_group_accuracy",
               "effective_robustness")


def main_board(scores: pd.DataFrame, dataset: str, scorer: ScoreMetric = ACCURACY) -> str | None:
    """The main board: models ranked by the composite robustness score (clean accuracy when no
    robustness family ran), each score as ``value ± half-width`` of its 95% bootstrap interval."""
    part = scores[scores["dataset"] == dataset]
    if part.empty:
        return None
    columns = [c for c in MAIN_SCORES if c in set(part["score"])]
    if not columns:
        return None
    by = next(c for c in ("composite", "clean_accuracy", *columns) if c in columns)
    value = part.pivot_table(index=["model", "recipe"], columns="score", values="value", aggfunc="first")
    half = ((part["ci_high"] - part["ci_low"]) / 2).rename("hw")
    hw = part.assign(hw=half).pivot_table(index=["model", "recipe"], columns="score", values="hw",
                                          aggfunc="first", dropna=False)
    order = value[by].sort_values(ascending=scorer.ascending, kind="stable").index
    lines = [[rank, model, recipe, *(_pm(value.loc[(model, recipe)].get(c), hw.loc[(model, recipe)].get(c))
                                     for c in columns)]
             for rank, (model, recipe) in enumerate(order, start=1)]
    table = tabulate(lines, headers=["rank", "model", "recipe", *columns], tablefmt="github",
                     disable_numparse=True)
    read = "" if scorer.name == "accuracy" else f" Scores read {scorer.name} where they say accuracy."
    return f"{table}\n\nRanked by {by}; ± is the half-width of the 95% paired-bootstrap interval.{read}"


def _pm(value: float | None, hw: float | None) -> str:
    if value is None or pd.isna(value):
        return "-"
    return f"{value:.4f}" if hw is None or pd.isna(hw) else f"{value:.4f} ± {hw:.4f}"


def adversarial_board(frame: pd.DataFrame, dataset: str, scorer: ScoreMetric = ACCURACY) -> str | None:
    """Robust accuracy (or the score metric) per model: for each target@eps, the worst attack
    (mean over seeds), as ``value ± half-width`` of that attack's 95% bootstrap interval."""
    rows = frame[(frame["family"] == "adversarial") & (frame["metric"] == scorer.name)
                 & (frame["dataset"] == dataset)]
    if rows.empty:
        return None
    rows = rows.assign(hw=(rows["ci_high"] - rows["ci_low"]) / 2)
    per_attack = rows.groupby(["model", "recipe", "target", "severity", "perturbation"])[["value", "hw"]].mean()
    by_case = per_attack.groupby(level=["model", "recipe", "target", "severity"])["value"]
    worst = per_attack.loc[by_case.idxmin() if scorer.higher_is_better else by_case.idxmax()]
    worst = worst.reset_index()
    worst["column"] = worst["target"] + "@" + worst["severity"].map(lambda e: f"{e:g}")
    table = worst.pivot_table(index=["model", "recipe"], columns="column", values="value",
                              aggfunc="first", sort=False)
    half = worst.pivot_table(index=["model", "recipe"], columns="column", values="hw",
                             aggfunc="first", sort=False, dropna=False)
    order = table.mean(axis=1).sort_values(ascending=scorer.ascending, kind="stable").index
    lines = [[rank, model, recipe, *(_pm(table.loc[(model, recipe), c], half.loc[(model, recipe)].get(c))
                                     for c in table.columns)]
             for rank, (model, recipe) in enumerate(order, start=1)]
    return tabulate(lines, headers=["rank", "model", "recipe", *table.columns], tablefmt="github",
                    disable_numparse=True)


def reliance_board(shapley: pd.DataFrame, worst: pd.DataFrame, dataset: str) -> str | None:
    """Shapley value of each modality for accuracy (mean over seeds), per model and imputation,
    and the accuracy with the single most harmful modality missing."""
    part = shapley[(shapley["dataset"] == dataset) & (shapley["metric"] == "accuracy")]
    if part.empty:
        return None
    table = part.pivot_table(index=["model", "recipe", "imputation"], columns="modality",
                             values="shapley", aggfunc="mean", sort=False)
    w = worst[(worst["dataset"] == dataset) & (worst["metric"] == "accuracy")].copy()
    w["imputation"] = w["perturbation"].str.split("-", n=1).str[1]
    worst_acc = w.groupby(["model", "recipe", "imputation"])["value"].mean()
    worst_mod = w.groupby(["model", "recipe", "imputation"])["modality"].agg(lambda m: m.mode().iloc[0])
    lines = []
    for key in table.index:
        cells = [f"{v:+.4f}" for v in table.loc[key]]
        tail = [f"{worst_acc[key]:.4f} ({worst_mod[key]})"] if key in worst_acc.index else ["-"]
        lines.append([*key, *cells, *tail])
    headers = ["model", "recipe", "imputation", *table.columns, "worst single missing"]
    return tabulate(lines, headers=headers, tablefmt="github", disable_numparse=True)


def views_board(views: pd.DataFrame, dataset: str) -> str | None:
    """Accuracy with each modality left out (``-m``) and with it alone (``only m``), mean over
    seeds, per model, recipe and imputation."""
    part = views[(views["dataset"] == dataset) & (views["metric"] == "accuracy")]
    if part.empty:
        return None
    part = part.assign(column=part["view"].map({"leave_one_out": "-", "only_one": "only "}) + part["modality"])
    table = part.pivot_table(index=["model", "recipe", "imputation"], columns="column",
                             values="value", aggfunc="mean", sort=False)
    modalities = list(dict.fromkeys(part["modality"]))
    order = [c for prefix in ("-", "only ") for m in modalities if (c := prefix + m) in table.columns]
    table = table[order]
    lines = [[*key, *(f"{v:.4f}" for v in table.loc[key])] for key in table.index]
    return tabulate(lines, headers=["model", "recipe", "imputation", *order],
                    tablefmt="github", disable_numparse=True)


def level_board(frame: pd.DataFrame, dataset: str, family: str, prefix: str) -> str | None:
    """Accuracy (mean over seeds) at each level (``severity``) of the ``family`` perturbations
    whose name starts with ``prefix``, per model, recipe, perturbation and target, with the mean
    over levels; rows sorted by that mean."""
    rows = frame[(frame["family"] == family) & (frame["metric"] == "accuracy")
                 & (frame["dataset"] == dataset) & frame["perturbation"].str.startswith(prefix)]
    if rows.empty:
        return None
    table = rows.pivot_table(index=["model", "recipe", "perturbation", "target"], columns="severity",
                             values="value", aggfunc="mean", sort=True)
    mean = table.mean(axis=1).sort_values(ascending=False, kind="stable")
    lines = [[*key, *(f"{v:.4f}" for v in table.loc[key]), f"{mean[key]:.4f}"] for key in mean.index]
    levels = [f"{c:g}" for c in table.columns]
    return tabulate(lines, headers=["model", "recipe", "perturbation", "target", *levels, "mean"],
                    tablefmt="github", disable_numparse=True)


def shift_board(summary: pd.DataFrame, dataset: str, baseline: str) -> str | None:
    """Corruptions: clean and mean corrupted accuracy, mean RA, and mCE / relative mCE against
    ``baseline`` (ranked by mCE when there is a baseline, else by mean corrupted accuracy)."""
    part = summary[summary["dataset"] == dataset]
    if part.empty:
        return None
    by, ascending = ("mce", True) if baseline else ("mean_acc", False)
    part = part.sort_values([by, "model"], ascending=[ascending, True], kind="stable")
    cols = ["clean", "mean_acc", "mean_ra"] + (["mce", "rel_mce"] if baseline else [])
    lines = [[rank, r.model, r.recipe, *(f"{getattr(r, c):.4f}" for c in cols), int(r.conditions)]
             for rank, r in enumerate(part.itertuples(), start=1)]
    names = {"clean": "clean acc", "mean_acc": "corrupted acc", "mean_ra": "mean RA",
             "mce": f"mCE (vs {baseline})", "rel_mce": "relative mCE"}
    return tabulate(lines, headers=["rank", "model", "recipe", *(names[c] for c in cols), "conditions"],
                    tablefmt="github", disable_numparse=True)


def natural_board(summary: pd.DataFrame, dataset: str) -> str | None:
    """Natural shift: accuracy in distribution, on each held-out group, and the worst group."""
    part = summary[summary["dataset"] == dataset].sort_values(["worst_group", "model"],
                                                               ascending=[False, True], kind="stable")
    if part.empty:
        return None
    cols = [c for c in part.columns if c not in ("dataset", "model", "recipe") and part[c].notna().any()]
    lines = [[r["model"], r["recipe"], *(f"{r[c]:.4f}" for c in cols)] for _, r in part.iterrows()]
    return tabulate(lines, headers=["model", "recipe", *cols], tablefmt="github", disable_numparse=True)


def _shift_parts(frame: pd.DataFrame, shift: tuple[pd.DataFrame, pd.DataFrame, str] | None,
                 dataset: str) -> list[str]:
    if shift is None:
        return []
    corrupted, natural, baseline = shift
    parts = []
    board = shift_board(corrupted, dataset, baseline)
    if board is not None:
        parts += [f"## {dataset}: corruptions (severities 1-5, all conditions)", "", board, ""]
    curve = level_board(severity_means(frame), dataset, "shift", "mean")
    if curve is not None:
        parts += [f"## {dataset}: accuracy vs corruption severity (mean over conditions)", "", curve, ""]
    board = natural_board(natural, dataset)
    if board is not None:
        parts += [f"## {dataset}: natural shift (accuracy in distribution, per held-out group, worst group)",
                  "", board, ""]
    return parts


def sanity_summary(sanity: pd.DataFrame) -> list[str]:
    """Markdown lines: how many sanity checks passed, and each one that did not."""
    if sanity.empty:
        return []
    failed = sanity[~sanity["passed"]]
    lines = [f"Sanity checks: {len(sanity) - len(failed)} of {len(sanity)} passed.", ""]
    for rec in failed.itertuples():
        lines.append(f"- {rec.check}: {rec.dataset}/{rec.model}/{rec.recipe}/seed {rec.seed}, "
                     f"{rec.perturbation} on {rec.target}: {rec.detail}")
    return lines + ([""] if len(failed) else [])


def render_leaderboard(frame: pd.DataFrame, title: str, metrics: tuple[str, ...] = (),
                       sanity: pd.DataFrame | None = None,
                       reliance: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame] | None = None,
                       shift: tuple[pd.DataFrame, pd.DataFrame, str] | None = None,
                       scores: pd.DataFrame | None = None, scorer: ScoreMetric = ACCURACY) -> str:
    """The Markdown document: per dataset, the main board, the clean board (ranked by the first
    of ``metrics``, the suite's order), then (when the suite attacked the models) robust
    accuracy under the worst attack per target and eps, then the sanity checks."""
    summary = summarise(frame)
    present = set(frame.loc[frame["family"] == "clean", "metric"])
    metrics_list = [m for m in dict.fromkeys((*metrics, *sorted(present))) if m in present]
    parts = [f"# Leaderboard: {title}", ""]
    for dataset in sorted(frame["dataset"].unique()):
        board = main_board(scores, dataset, scorer) if scores is not None and not scores.empty else None
        if board is not None and (set(scores.loc[scores["dataset"] == dataset, "score"]) - {"clean_accuracy"}):
            parts += [f"## {dataset}: main board (scores: docs/metrics.md)", "", board, ""]
        if dataset in set(summary["dataset"]):
            parts += [f"## {dataset} (clean, test split)", "", dataset_board(summary, dataset, metrics_list), "",
                      "± is the half-width of the 95% bootstrap interval over test samples; sd the "
                      "standard deviation across training seeds.", ""]
        robust = adversarial_board(frame, dataset, scorer)
        if robust is not None:
            parts += [f"## {dataset}: robust accuracy (worst attack per target@eps)", "", robust, ""]
        board = reliance_board(*reliance[:2], dataset) if reliance is not None else None
        if board is not None:
            parts += [f"## {dataset}: modality reliance (Shapley values of accuracy)", "", board, ""]
        views = views_board(reliance[2], dataset) if reliance is not None else None
        if views is not None:
            parts += [f"## {dataset}: accuracy with one modality left out (-m) or alone (only m)",
                      "", views, ""]
        curve = level_board(frame, dataset, "dropout", "random-")
        if curve is not None:
            parts += [f"## {dataset}: accuracy vs random modality-dropout rate", "", curve, ""]
        parts += _shift_parts(frame, shift, dataset)
    if sanity is not None:
        parts += sanity_summary(sanity)
    return "\n".join(parts).rstrip() + "\n"


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
