"""``smoothing``: certified L2 robustness per modality by randomized smoothing.

A stored ``smoothed`` cell holds, per row, the smoothed classifier's prediction and its certified
radius (:mod:`mmbench.perturb.smoothing`). From it this family derives one ``certified`` cell per
radius r of the cell's grid: a row counts as correct only if the prediction is right and
certified at radius >= r (CERTIFY did not abstain), so the cell's accuracy is the certified
accuracy at r, with paired-bootstrap intervals like any cell. The average certified radius
(the mean over rows of the radius of correct, certified predictions; 0 otherwise) is a fact of
the derived cells, with a normal-approximation interval. Formulas: docs/metrics.md, "Smoothing".

The certified cells, checks and board are built from a :class:`Grid` (what a certifying family's
cells carry), which the ``masking`` family (certified against changed tokens) shares.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
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


@dataclass(frozen=True)
class Grid:
    """How a certifying family's cells are read: its stored cells (``family``, perturbation
    ``decided``: the smoothed classifier's decisions and radii) list their levels in the fact
    ``grid``; each derived ``certified`` cell carries its level in the fact ``level``. On the
    board the severity is called ``severity``, a level column ``label=level`` (grouped as
    ``axis level``, glossary ``term``); ``integer``: whole-number levels; ``average``: the
    average certified radius (facts ``acr``, ``acr_hw``; an ACR column)."""

    family: str
    decided: str
    grid: str
    level: str
    severity: str
    label: str
    axis: str
    term: str
    integer: bool = False
    average: bool = False

    def levels(self, f: CellFacts) -> list[float]:
        """The levels of a stored cell's grid."""
        values = [float(r) for r in str(f.facts.get(self.grid, "0")).split(",") if r]
        return [int(v) for v in values] if self.integer else values


#: the smoothing family's cells: L2 radii
SMOOTHING_GRID = Grid(NAME, SMOOTHED, "radii", "radius", "sigma", "r", "radius", "certified radius", average=True)


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
        return None if rows.empty else certified_checks(rows, SMOOTHING_GRID)

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
        return self.board(ctx, dataset,
                          lambda rows: certified_table(rows, ctx.scorer.higher_is_better, SMOOTHING_GRID),
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


def certified_rows(ctx: Context, family: str = NAME) -> pd.DataFrame:
    """A certifying family's certified cells' rows (the score metric's), every level of every dataset."""
    rows = ctx.rows(family)
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


def certified_cells(key: str, f: CellFacts, s: Samples,
                    grid: Grid = SMOOTHING_GRID) -> dict[str, tuple[CellFacts, Samples]]:
    """The certified cell of each level of ``f``'s grid, from a stored cell's outcomes: a row is
    right only if its prediction is right and certified at that level or beyond."""
    assert s.radius is not None
    correct = s.preds == s.labels
    average = {}
    if grid.average:
        acr, acr_hw = average_radius(s.radius, correct)
        average = {"acr": acr, "acr_hw": acr_hw}
    out = {}
    for r in grid.levels(f):
        keep = correct & (s.radius >= r)  # NaN (abstained) compares False
        preds = np.where(keep, s.preds, ABSTAIN).astype(np.int16)
        probs = np.where(keep, s.probs, 0.0).astype(np.float32)
        full = None if s.full is None else np.where(keep[:, None], s.full, 0.0).astype(np.float32)
        cell = replace(f, perturbation=CERTIFIED, facts={**f.facts, grid.level: r, **average})
        out[f"{grid.family}:{key}:{r:g}"] = (cell, Samples(s.sample_set, preds, s.labels, probs, full, s.draws,
                                                           row_ids=s.ids))
    return out


def certified_table(rows: pd.DataFrame, higher_is_better: bool, grid: Grid) -> Table | None:
    """Per model, recipe, target and severity: the smoothed classifier's value, the certified
    value at each level of the grid (mean over seeds ± mean half-width) and, where ``grid`` has
    one, the ACR; by target and severity, then by ACR (else by the mean certified value)."""
    cert = rows[rows["perturbation"] == CERTIFIED]
    if cert.empty:
        return None
    index = ["model", "recipe", "target", "severity"]
    rows = rows.assign(hw=half_width(rows))
    decided = rows[rows["perturbation"] == grid.decided].groupby(index)[["value", "hw"]].mean()
    table = cert.assign(hw=half_width(cert)).pivot_table(index=index, columns=grid.level, values=["value", "hw"],
                                                          aggfunc="mean")
    levels = sorted({r for _, r in table.columns})
    order = _order(cert, index, grid, higher_is_better)
    lines = tuple((*key[:3], f"{key[3]:g}",
                   Num(*decided.loc[key]) if key in decided.index else Num(math.nan),
                   *(Num(table.loc[key, ("value", r)], table.loc[key, ("hw", r)]) for r in levels),
                   *((Num(order.loc[key, "acr"], order.loc[key, "acr_hw"]),) if grid.average else ()))
                  for key in order.index)
    columns = (Column("model"), Column("recipe", term="recipe"), Column("target"),
               Column(grid.severity, term=grid.severity), Column(grid.decided, higher_is_better, term=grid.decided),
               *(Column(f"{grid.label}={r:g}", higher_is_better, group=f"{grid.axis} {r:g}", short=f"{r:g}",
                        term=grid.term) for r in levels),
               *((Column("ACR", True, term="ACR"),) if grid.average else ()))
    return Table(columns, lines, grid.axis)


def _order(cert: pd.DataFrame, index: list[str], grid: Grid, higher_is_better: bool) -> pd.DataFrame:
    """The board's lines in order: by target and severity, then by ACR (``grid.average``, with
    its columns) or else by the mean certified value over the levels, best first."""
    if grid.average:
        by = cert.groupby(index)[["acr", "acr_hw"]].mean().reset_index()
        return by.sort_values(["target", "severity", "acr"], ascending=[True, True, False],
                              kind="stable").set_index(index)
    by = cert.groupby(index)[["value"]].mean().reset_index()
    return by.sort_values(["target", "severity", "value"], ascending=[True, True, not higher_is_better],
                          kind="stable").set_index(index)


def certified_checks(rows: pd.DataFrame, grid: Grid) -> pd.DataFrame:
    """Per (model, seed, target, severity): certified accuracy never above the smoothed
    classifier's accuracy, and never rising with the level (both hold by construction; a failure
    is a bug)."""
    out = []
    keys = ["dataset", "model", "recipe", "seed", "target", "severity"]
    for key, g in rows.groupby(keys, sort=True):
        decided = g.loc[g["perturbation"] == grid.decided, "value"]
        cert = g[g["perturbation"] == CERTIFIED].sort_values(grid.level)
        if decided.empty or cert.empty:
            continue
        top = float(decided.iloc[0])
        above = cert["value"] > top + 1e-12
        rises = cert["value"].diff().fillna(0) > 1e-12
        detail = "" if not (above.any() or rises.any()) else (
            f"certified accuracy {cert['value'].max():.3f} vs {grid.decided} {top:.3f}, rises with {grid.axis}: "
            f"{bool(rises.any())}")
        dataset, model, recipe, seed, target, severity = key
        out.append({"dataset": dataset, "model": model, "recipe": recipe, "seed": seed,
                    "check": f"certified_le_{grid.decided}",
                    "perturbation": f"{grid.decided}@{grid.severity}={severity:g}", "target": target,
                    "passed": not (above.any() or rises.any()), "detail": detail})
    columns = ["dataset", "model", "recipe", "seed", "check", "perturbation", "target", "passed", "detail"]
    return pd.DataFrame(out, columns=columns)
