"""``report.html``: one self-contained page with the leaderboard's boards and every plot.

The page is rendered from the Markdown leaderboard (so the two never disagree) and the PNG
files of the run, embedded as data URIs: no scripts, no external files, no network. Every piece
of text, model and dataset names included, is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 80em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f0f0f0; }
img { max-width: 100%; margin: 0.5em 0; border: 1px solid #eee; }
figure { margin: 0 0 1.5em; }
"""


def render_html(leaderboard: str, plots: list[Path], title: str) -> str:
    """The page: the leaderboard's headings, tables and paragraphs, then every plot."""
    body = _markdown_blocks(leaderboard)
    if plots:
        body.append("<h2>Plots</h2>")
        body += [_figure(p) for p in plots]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


def _markdown_blocks(text: str) -> list[str]:
    """The subset of Markdown the leaderboard uses: ``#`` headings, GitHub tables, lines."""
    out: list[str] = []
    table: list[str] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            table.append(line)
            continue
        if table:
            out.append(_table(table))
            table = []
        if line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")), 6)
            out.append(f"<h{level}>{_text(line.lstrip('#').strip())}</h{level}>")
        elif line.strip():
            out.append(f"<p>{_text(line.lstrip('- ').strip())}</p>")
    return out


def _cells(line: str) -> list[str]:
    """The cells of a Markdown table row: split on unescaped ``|``, escapes undone, then
    HTML-escaped."""
    inner = line.strip()[1:-1] if line.strip().endswith("|") else line.strip()[1:]
    parts = re.split(r"(?<!\\)((?:\\\\)*)\|", inner)
    cells = ["".join(parts[i:i + 2]) for i in range(0, len(parts), 2)]
    return [_text(re.sub(r"\\(.)", r"\1", c).strip()) for c in cells]


def _text(markdown: str) -> str:
    """Markdown text (entities allowed) as escaped HTML text."""
    return html.escape(html.unescape(markdown))


def _table(lines: list[str]) -> str:
    head, rows = _cells(lines[0]), [_cells(r) for r in lines[2:]]  # lines[1] is the rule
    parts = ["<table>", "<tr>" + "".join(f"<th>{c}</th>" for c in head) + "</tr>"]
    parts += ["<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows]
    return "\n".join([*parts, "</table>"])


def _figure(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    name = html.escape(path.stem)
    return (f'<figure><img alt="{name}" src="data:image/png;base64,{data}">'
            f"<figcaption>{name}</figcaption></figure>")
