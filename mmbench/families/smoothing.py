"""``smoothing``: certified L2 robustness per modality by randomized smoothing.

A stored ``smoothed`` cell holds, per row, the smoothed classifier's prediction and its certified
radius (:mod:`mmbench.perturb.smoothing`). From it this family derives one ``certified`` cell per
radius r of the cell's grid: a row counts as correct only if the prediction is right and
certified at radius >= r (CERTIFY did not abstain), so the cell's accuracy is the certified
accuracy at r, with paired-bootstrap intervals like any cell. The average certified radius
(the mean over rows of the radius of correct, certified predictions; 0 otherwise) is a fact of
the derived cells, with a normal-approximation interval. Formulas: docs/metrics.md, "Smoothing".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm

from mmbench.stats.curves import KEY, seed_mean
from mmbench.families.base import Context, Family, ScoreSpec
from mmbench.families.clean import chance_note
from mmbench.metrics.outcomes import Samples
from mmbench.perturb.certify import ABSTAIN
from mmbench.perturb.smoothing import SMOOTHED, SMOOTHING
from mmbench.registry import FAMILIES
from mmbench.render.plots import Plot, curves
from mmbench.render.tables import Board, Column, Num, Table, half_width
from mmbench.store.rows import CellFacts

NAME = SMOOTHING
CERTIFIED = "certified"
Z95 = 1.959963984540054


@FAMILIES.register(NAME)
class Smoothing(Family):
    """Certified accuracy at a radius grid and the average certified radius, per target."""

    name = NAME
    terms = {
        "sigma": "Scale of the Gaussian noise randomized smoothing adds to the target modality, in "
                 "normalised units (the same units as eps).",
        "smoothed": "The smoothed classifier's score: its prediction is the class the model returns most "
                    "often under the noise (no abstention, no certificate).",
        "certified radius": "Certified score at L2 radius r: a row counts only if the smoothed prediction is "
                            "right and certified (Cohen et al.'s CERTIFY, 1 - alpha confidence) against every "
                            "change of the target of L2 norm up to r, in normalised units over its features.",
        "ACR": "Average certified radius: the mean over test rows of the certified radius of correct "
               "predictions (0 for wrong or abstained ones); ± from a normal approximation.",
    }
    title = "certified by randomized smoothing"
    order = 27
    scores = (
        ScoreSpec("smoothing_certified", "best over sigma of the mean over targets and the radius grid of "
                  "the certified value of the smoothed classifier (a constant classifier is certified "
                  "everywhere and scores the majority class's share: the board gives that chance level)",
                  "smoothing"),
    )

    def compute(self, ctx: Context) -> dict[str, pd.Series]:
        cert = certified_rows(ctx)
        if cert.empty:
            return {}
        per = seed_mean(cert, ["target", "severity", "radius"]).groupby(KEY + ["severity"])["value"].mean()
        return {"smoothing_certified": ctx.scorer.best(per.groupby(level=KEY))}

    def derive(self, facts: Mapping[str, CellFacts],
               samples: Mapping[str, Samples]) -> dict[str, tuple[CellFacts, Samples]]:
        out = {}
        for key, f in facts.items():
            s = samples.get(key)
            if f.family == NAME and f.perturbation == SMOOTHED and s is not None and s.radius is not None:
                out.update(certified_cells(key, f, s))
        return out

    def checks(self, ctx: Context) -> pd.DataFrame | None:
        rows = ctx.rows(NAME, "accuracy")
        return None if rows.empty else certified_checks(rows)

    def tables(self, ctx: Context) -> dict[str, pd.DataFrame]:
        cert = certified_rows(ctx)
        if cert.empty:
            return {}
        keys = ["dataset", "model", "recipe", "seed", "target", "severity"]
        acr = cert.groupby(keys, as_index=False)[["acr", "acr_hw"]].first()
        return {"certified_radius": acr.rename(columns={"severity": "sigma"})}

    def boards(self, ctx: Context, dataset: str) -> list[Board]:
        note = ("smoothed: the smoothed classifier's value (its prediction under the noise, no abstention); "
                "r=...: certified value at that L2 radius (normalised units over the target's features), "
                "rows where CERTIFY abstains or certifies less count as wrong; ACR: average certified radius.")
        top = ceilings(ctx.rows(NAME, dataset=dataset))
        note += f" The largest radius the draws can certify: {top}." if top else ""
        return self.board(ctx, dataset, lambda rows: smoothing_table(rows, ctx.scorer.higher_is_better),
                          f"{dataset}: certified by randomized smoothing ({ctx.scorer.name})",
                          note + chance_note(ctx, dataset))

    def plots(self, ctx: Context, out_dir: Path) -> list[Plot]:
        cert = certified_rows(ctx)
        metric = ctx.scorer.name
        return [Plot(curves(g.assign(level=g["radius"]), out_dir, [NAME, dataset, target, f"sigma{sigma:g}"],
                            "L2 radius (normalised units)", f"certified {metric}",
                            f"certified {metric}, noise on {target} (sigma {sigma:g}), {dataset}", colours=ctx.palette),
                     f"Certified {metric} of the smoothed classifier against any L2 change of {target} up to each "
                     f"radius (noise sigma {sigma:g}), mean over seeds; one line per model.", dataset)
                for (dataset, target, sigma), g in cert.groupby(["dataset", "target", "severity"], sort=True)]


def certified_rows(ctx: Context) -> pd.DataFrame:
    """The family's certified cells' rows (the score metric's), every radius of every dataset."""
    rows = ctx.rows(NAME)
    return rows[rows["perturbation"] == CERTIFIED]


def ceilings(rows: pd.DataFrame) -> str:
    """The largest certifiable radius sigma * Phi^-1(alpha^(1/n)) (all n draws on c_A) of each
    (sigma, n, alpha) of ``rows``, as text."""
    columns = ["severity", "estimate_draws", "alpha"]
    if not set(columns) <= set(rows.columns):
        return ""
    cases = rows[columns].dropna().drop_duplicates().sort_values("severity")
    return "; ".join(f"{float(sigma) * norm.ppf(float(alpha) ** (1 / float(n))):.3g} at sigma {float(sigma):g} "
                     f"with n={int(n)}, alpha={float(alpha):g}" for sigma, n, alpha in cases.itertuples(index=False))


def average_radius(radius: np.ndarray, correct: np.ndarray) -> tuple[float, float]:
    """Mean over rows of the certified radius of correct, certified predictions (0 for the
    others) and the half-width of its 95% normal-approximation interval."""
    per_row = np.where(correct & ~np.isnan(radius), np.nan_to_num(radius), 0.0).astype(np.float64)
    n = len(per_row)
    spread = float(per_row.std(ddof=1)) if n > 1 else 0.0
    return float(per_row.mean()) if n else math.nan, Z95 * spread / math.sqrt(max(n, 1))


def certified_cells(key: str, f: CellFacts, s: Samples) -> dict[str, tuple[CellFacts, Samples]]:
    """The certified cell of each radius of ``f``'s grid, from a smoothed cell's outcomes."""
    assert s.radius is not None
    correct = s.preds == s.labels
    acr, acr_hw = average_radius(s.radius, correct)
    grid = [float(r) for r in str(f.facts.get("radii", "0")).split(",") if r]
    out = {}
    for r in grid:
        keep = correct & (s.radius >= r)  # NaN (abstained) compares False
        preds = np.where(keep, s.preds, ABSTAIN).astype(np.int16)
        probs = np.where(keep, s.probs, 0.0).astype(np.float32)
        full = None if s.full is None else np.where(keep[:, None], s.full, 0.0).astype(np.float32)
        cell = replace(f, perturbation=CERTIFIED, facts={**f.facts, "radius": r, "acr": acr, "acr_hw": acr_hw})
        out[f"{NAME}:{key}:{r:g}"] = (cell, Samples(s.sample_set, preds, s.labels, probs, full, s.draws,
                                                         row_ids=s.ids))
    return out


def smoothing_table(rows: pd.DataFrame, higher_is_better: bool) -> Table | None:
    """Per model, recipe, target and sigma: the smoothed classifier's value, the certified value
    at each radius of the grid (mean over seeds ± mean half-width) and the ACR; by target and sigma,
    then by ACR."""
    cert = rows[rows["perturbation"] == CERTIFIED]
    if cert.empty:
        return None
    index = ["model", "recipe", "target", "severity"]
    rows = rows.assign(hw=half_width(rows))
    smoothed = rows[rows["perturbation"] == SMOOTHED].groupby(index)[["value", "hw"]].mean()
    grid = cert.assign(hw=half_width(cert)).pivot_table(index=index, columns="radius", values=["value", "hw"],
                                                         aggfunc="mean")
    acr = cert.groupby(index)[["acr", "acr_hw"]].mean().reset_index()
    acr = acr.sort_values(["target", "severity", "acr"], ascending=[True, True, False], kind="stable").set_index(index)
    radii = sorted({r for _, r in grid.columns})
    lines = tuple((*key[:3], f"{key[3]:g}",
                   Num(*smoothed.loc[key]) if key in smoothed.index else Num(math.nan),
                   *(Num(grid.loc[key, ("value", r)], grid.loc[key, ("hw", r)]) for r in radii),
                   Num(acr.loc[key, "acr"], acr.loc[key, "acr_hw"]))
                  for key in acr.index)
    columns = (Column("model"), Column("recipe", term="recipe"), Column("target"),
               Column("sigma", term="sigma"), Column("smoothed", higher_is_better, term="smoothed"),
               *(Column(f"r={r:g}", higher_is_better, group=f"radius {r:g}", short=f"{r:g}", term="certified radius")
                 for r in radii),
               Column("ACR", True, term="ACR"))
    return Table(columns, lines, "radius")


def certified_checks(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (model, seed, target, sigma): certified accuracy never above the smoothed classifier's
    accuracy, and never rising with the radius (both hold by construction; a failure is a bug)."""
    out = []
    keys = ["dataset", "model", "recipe", "seed", "target", "severity"]
    for key, g in rows.groupby(keys, sort=True):
        smoothed = g.loc[g["perturbation"] == SMOOTHED, "value"]
        cert = g[g["perturbation"] == CERTIFIED].sort_values("radius")
        if smoothed.empty or cert.empty:
            continue
        top = float(smoothed.iloc[0])
        above = cert["value"] > top + 1e-12
        rises = cert["value"].diff().fillna(0) > 1e-12
        detail = "" if not (above.any() or rises.any()) else (
            f"certified accuracy {cert['value'].max():.3f} vs smoothed {top:.3f}, rises with radius: {bool(rises.any())}")
        dataset, model, recipe, seed, target, sigma = key
        out.append({"dataset": dataset, "model": model, "recipe": recipe, "seed": seed, "check": "certified_le_smoothed",
                    "perturbation": f"{SMOOTHED}@sigma={sigma:g}", "target": target,
                    "passed": not (above.any() or rises.any()), "detail": detail})
    columns = ["dataset", "model", "recipe", "seed", "check", "perturbation", "target", "passed", "detail"]
    return pd.DataFrame(out, columns=columns)
