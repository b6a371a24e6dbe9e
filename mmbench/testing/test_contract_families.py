"""Every registered family honours the analysis contract on a real run: the perturbations
registered under its name produce its rows; its scores are the ones it declares; its boards are
:class:`~mmbench.render.tables.Board`s (or ``(heading, Markdown)`` pairs) whose rows fit their
columns; its plots are captioned PNGs; and report.html shows every board it makes."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd
import pytest

import mmbench
from mmbench.data.base import MultimodalDataset
from mmbench.registry import FAMILIES, PERTURBATIONS
from mmbench.render.plots import Plot
from mmbench.render.tables import Board, Num
from mmbench.report.analysis import Analysis
from mmbench.report.publish import load_run
from mmbench.testing.fitting import plain_model


def _perturbations() -> list[dict]:
    """Every registered perturbation with its registration's ``example`` parameters, and each of
    its ``more_examples`` (under a label of its own)."""
    out = []
    for e in PERTURBATIONS.entries():
        out.append({"name": e.name, "params": dict(e.meta.get("example", {}))})
        out += [{"name": e.name, "label": f"{e.name}_{i}", "params": dict(more)}
                for i, more in enumerate(e.meta.get("more_examples", ()), start=1)]
    return out


@pytest.fixture(scope="module")
def analysed(synth: MultimodalDataset, tmp_path_factory) -> tuple[Analysis, Path]:
    out = tmp_path_factory.mktemp("families") / "run"
    mmbench.evaluate(plain_model(synth), synth, perturbations=_perturbations(), label="plain", out_dir=out)
    return load_run(out).analysis(), out


@pytest.mark.parametrize("name", FAMILIES.names())
def test_family_contract(name: str, analysed: tuple[Analysis, Path], tmp_path: Path) -> None:
    analysis, out = analysed
    family = FAMILIES.get(name)()
    origin = family.source or name  # a derived family's rows come from its source family's cells
    producers = [e.name for e in PERTURBATIONS.entries()
                 if origin in e.meta.get("families", (e.meta.get("family", e.name),))]
    assert producers, f"family {name}: no registered perturbation carries family '{origin}'"
    ctx = analysis.ctx
    assert family.present(ctx), f"family {name}: {producers} produced no rows of family '{name}'"
    declared = {s.name for s in family.scores}
    scores = family.compute(ctx)
    assert set(scores) <= declared and (family.composite is None or family.composite in declared)
    assert all(isinstance(v, pd.Series) for v in scores.values())
    boards = [Board.of(b) for d in ctx.datasets() for b in family.boards(ctx, d)]
    assert boards, f"family {name}: no board for any dataset"
    page = (out / "report.html").read_text()
    for board in boards:
        assert board.heading and board.markdown().startswith("|")
        assert html.escape(board.heading, quote=True) in page, f"{board.heading!r} not in report.html"
        if board.table is not None:
            width = len(board.table.columns)
            assert all(len(row) == width for row in board.table.rows) and board.table.rows
            assert any(isinstance(c, Num) for row in board.table.rows for c in row)
    for plot in family.plots(ctx, tmp_path):
        path = plot.path if isinstance(plot, Plot) else Path(plot)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert not isinstance(plot, Plot) or (plot.caption and plot.dataset in ctx.datasets())
