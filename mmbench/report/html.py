"""``report.html``: one self-contained page (no external file, opens offline) that leads with
each dataset's robustness profile and main board, then every family's boards and figures, the
sanity checks and a glossary of every score.

Tables are sortable by any column, filterable by model and fold wide grids behind a selector
(``assets/report.js``, inlined); cells are coloured by their value within their column and say
on hover what they are. Every piece of user text (model labels, suite name and description) is
HTML-escaped, and the only data the script reads is a JSON block it parses (with ``<``, ``>``
and ``&`` escaped so it cannot close its element)."""

from __future__ import annotations

import base64
import json
from importlib import resources

import pandas as pd

from mmbench.render.plots import Plot
from mmbench.report.analysis import Analysis
from mmbench.report.glossary import glossary
from mmbench.report.html_tables import board_html, esc, term_id
from mmbench.report.leaderboard import main_board
from mmbench.report.reading import reading


def render_html(analysis: Analysis, plots: list[Plot], title: str, description: str = "",
                provenance: dict | None = None) -> str:
    """The page (see the module docstring)."""
    terms = glossary(analysis)
    datasets = analysis.ctx.datasets()
    body = [_header(analysis, title, description, provenance or {}, datasets)]
    for dataset in datasets:
        body.append(_dataset(analysis, dataset, [p for p in plots if p.dataset == dataset], terms))
    loose = [p for p in plots if p.dataset not in datasets]
    if loose:
        body += ['<section id="figures"><h2>Figures of the whole run</h2>', _figures(loose), "</section>"]
    body += [_sanity(analysis.sanity), _glossary(terms)]
    data = json.dumps({"models": analysis.ctx.palette}, sort_keys=True)
    data = data.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{esc(title)}</title>\n<style>{_asset('report.css')}</style>\n</head>\n<body>\n<main>\n"
            + "\n".join(body)
            + f'\n</main>\n<script type="application/json" id="mmbench-data">{data}</script>\n'
            f"<script>{_asset('report.js')}</script>\n</body>\n</html>\n")


def _asset(name: str) -> str:
    return resources.files("mmbench.report").joinpath("assets", name).read_text(encoding="utf-8")


def _header(analysis: Analysis, title: str, description: str, provenance: dict, datasets: list[str]) -> str:
    models = analysis.frame[["model", "recipe"]].drop_duplicates()
    seeds = sorted({int(s) for s in analysis.frame["seed"].unique()}) if "seed" in analysis.frame else []
    versions = provenance.get("versions") or {}
    meta = (f"{len(models)} model entries on {len(datasets)} dataset(s); seeds {', '.join(map(str, seeds))}; "
            f"mmbench {versions.get('mmbench', '')} on {provenance.get('device', 'cpu')}.")
    toc = " ".join(f'<a href="#{esc(_section_id(d))}">{esc(d)}</a>' for d in datasets)
    return "\n".join([
        '<header class="top">', f"<h1>{esc(title)}</h1>",
        f'<p class="meta">{esc(description)}</p>' if description else "", f'<p class="meta">{esc(meta)}</p>',
        f'<nav class="toc">{toc} <a href="#sanity">sanity checks</a> <a href="#glossary">glossary</a></nav>',
        '<div class="controls"><label>Filter models <input type="search" id="filter" '
        'placeholder="model name" aria-label="filter the tables by model name"></label>'
        '<div class="chips" id="chips"></div></div>',
        '<p class="hint">Click a column header to sort; hover a number to see what it is; ? links to '
        "its definition.</p>", "</header>"])


def _section_id(dataset: str) -> str:
    return "dataset-" + term_id(dataset)[len("term-"):]


def _dataset(analysis: Analysis, dataset: str, plots: list[Plot], terms: dict[str, str]) -> str:
    analysis = analysis.of(dataset)  # a run of several tasks: this dataset's task's part
    sid = _section_id(dataset)
    parts = [f'<section id="{esc(sid)}">', f"<h2>{esc(dataset)}</h2>"]
    parts += [_figure(p, headline=True) for p in plots if p.section == "profile"]
    board = main_board(analysis, dataset)
    if board is not None:
        parts.append(board_html(board, f"{sid}-main", terms, level=3))
        text = reading(analysis, dataset)
        parts += [f'<p class="reading">{esc(text)}</p>'] if text else []
    ranking = [p for p in plots if p.section == "ranking"]
    parts += [_figures(ranking)] if ranking else []
    for f_index, (family, boards) in enumerate(analysis.sections(dataset)):
        parts.append(f"<h3>{esc((family.title or family.name).capitalize())}</h3>")
        parts += [board_html(b, f"{sid}-f{f_index}-b{i}", terms) for i, b in enumerate(boards)]
        mine = [p for p in plots if p.section == family.name]
        parts += [_figures(mine)] if mine else []
    return "\n".join([*parts, "</section>"])


def _figures(plots: list[Plot]) -> str:
    return '<div class="figures">' + "".join(_figure(p) for p in plots) + "</div>"


def _figure(plot: Plot, headline: bool = False) -> str:
    data = base64.b64encode(plot.path.read_bytes()).decode("ascii")
    cls = ' class="headline"' if headline else ""
    return (f'<figure{cls}><img alt="{esc(plot.caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{esc(plot.caption)}</figcaption></figure>")


def _sanity(sanity: pd.DataFrame) -> str:
    if sanity.empty:
        return '<section id="sanity"><h2>Sanity checks</h2><p class="note">No sanity checks ran.</p></section>'
    failed = sanity[~sanity["passed"].astype(bool)]
    lines = (f"{r.check}: {r.dataset}/{r.model}/{r.recipe}/seed {r.seed}, {r.perturbation} on {r.target}: "
             f"{r.detail}" for r in failed.itertuples())
    items = "".join(f"<li>{esc(line)}</li>" for line in lines)
    return (f'<section id="sanity"><h2>Sanity checks</h2><p>{len(sanity) - len(failed)} of {len(sanity)} '
            f"passed.</p>{f'<ul>{items}</ul>' if items else ''}</section>")


def _glossary(terms: dict[str, str]) -> str:
    entries = "".join(f'<dt id="{term_id(t)}">{esc(t)}</dt><dd>{esc(d)}</dd>' for t, d in terms.items())
    return f'<section id="glossary"><h2>Glossary</h2><dl class="glossary">{entries}</dl></section>'
