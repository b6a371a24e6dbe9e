"""report.html: a self-contained, escaped page that leads with the robustness profile and the
main board; in a real headless Chromium (driven over the DevTools protocol) its tables sort on a
header click, filter by model, fold wide grids, raise no console error, keep a hostile label as
text, and fit 1280 px without sideways scrolling."""

from __future__ import annotations

import json
import re
from io import BytesIO
from pathlib import Path

import pytest
from browser import Browser
from conftest import tiny_suite, write_suite

from mmbench.runner import RunOptions, run_suite

EVIL = "<img src=x onerror=alert(1)>"
EVIL_TEXT = "<script>alert('d')</script> & co"


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("html")
    suite = tiny_suite(models=["late_fusion", {"name": "seed_concat", "label": EVIL}, "early_fusion"],
                       description=EVIL_TEXT, perturbations=[
        "clean", {"name": "adversarial", "params": {"attacks": ["fgsm"], "eps": [0.05, 0.1, 0.2]}},
        {"name": "missing", "params": {"subsets": "all"}},
        {"name": "random_dropout", "params": {"rates": [0.0, 0.5]}},
        {"name": "shift", "params": {"corruptions": ["gaussian_noise"], "severities": [2, 4]}}])
    run_suite(write_suite(tmp, suite), RunOptions(out_dir=tmp / "o", cache_dir=tmp / "c", progress=False))
    return tmp / "o" / "report.html"


@pytest.fixture(scope="module")
def page(report: Path):
    with Browser(width=1280, height=900) as browser:
        browser.open(report.as_uri())
        yield browser


def test_page_is_self_contained_and_user_text_is_escaped(report: Path) -> None:
    page = report.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page) and "<link" not in page
    assert page.count("<script") == 2 and "<script src" not in page  # the JSON data and our own script
    assert EVIL not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<script>alert(" not in page and "&lt;script&gt;alert(&#x27;d&#x27;)&lt;/script&gt; &amp; co" in page
    data = re.search(r'<script type="application/json" id="mmbench-data">(.*?)</script>', page, re.S).group(1)
    assert "<" not in data and json.loads(data)["models"][EVIL].startswith("#")


def test_headline_profile_comes_before_the_main_board_and_terms_resolve(report: Path) -> None:
    page = report.read_text()
    section = page[page.index('<section id="dataset-synthetic">'):]
    assert section.index('<figure class="headline">') < section.index("synthetic: main board")
    ids = set(re.findall(r'id="([^"]+)"', page))
    links = set(re.findall(r'href="#([^"]+)"', page))
    assert links and links <= ids, links - ids
    for score in ("composite", "clean_accuracy", "adv_robust_accuracy", "missing_worst_subset"):
        assert f'id="term-{score.replace("_", "-")}"' in page
    assert "docs/metrics.md" not in page.split("<body>")[1]
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", page)
    assert len(captions) >= 5 and all(" " in c and not c.endswith(".png") for c in captions)


def test_cells_are_coloured_within_their_column_by_direction(report: Path) -> None:
    page = report.read_text()
    table = re.search(r'<table class="board" id="dataset-synthetic-main">(.*?)</table>', page, re.S).group(1)
    heads = re.findall(r"<th [^>]*>(.*?)</th>", table)
    col = next(i for i, h in enumerate(heads) if ">composite<" in h)
    cells = [re.findall(r"<td [^>]*?>", row)[col] for row in re.findall(r"<tr data-model.*?</tr>", table)]
    values = [float(re.search(r'data-v="([^"]+)"', c).group(1)) for c in cells]
    hues = [int(re.search(r"hsl\((\d+)", c).group(1)) for c in cells]
    assert hues[values.index(max(values))] > hues[values.index(min(values))]  # green best, red worst
    assert all('title="composite of ' in c for c in cells)


def test_clicking_a_header_sorts_the_rows(page: Browser) -> None:
    table = "#dataset-synthetic-main"
    heads = page.eval(f"[...document.querySelectorAll('{table} thead th')].map(t => t.textContent)")
    col = next(i for i, h in enumerate(heads) if h.startswith("clean_accuracy"))
    read = (f"[...document.querySelectorAll('{table} tbody tr')].map(r => Number(r.cells[{col}]"
            ".getAttribute('data-v')))")
    before = page.eval(read)
    page.click(f"{table} thead th:nth-child({col + 1}) button")
    first = page.eval(read)
    page.click(f"{table} thead th:nth-child({col + 1}) button")
    second = page.eval(read)
    assert sorted(first, reverse=True) == first and sorted(second) == second and sorted(before) == sorted(first)
    assert page.eval(f"document.querySelector('{table} thead th:nth-child({col + 1})')"
                     ".getAttribute('aria-sort')") == "ascending"
    model = next(i for i, h in enumerate(heads) if h.startswith("model"))
    page.click(f"{table} thead th:nth-child({model + 1}) button")
    names = page.eval(f"[...document.querySelectorAll('{table} tbody tr')].map(r => r.cells[{model}].textContent)")
    assert names == sorted(names, key=str.lower)


def test_the_filter_hides_rows_of_other_models(page: Browser) -> None:
    page.type("#filter", "late")
    visible = page.eval("[...document.querySelectorAll('tr[data-model]')].filter(r => r.offsetParent !== null)"
                        ".map(r => r.getAttribute('data-model'))")
    hidden = page.eval("[...document.querySelectorAll('tr[data-model]')].filter(r => r.offsetParent === null)"
                       ".map(r => r.getAttribute('data-model'))")
    assert visible and set(visible) == {"late_fusion"} and EVIL in hidden and "early_fusion" in hidden
    page.eval("(() => { const f = document.getElementById('filter'); f.value = '';"
              "f.dispatchEvent(new Event('input')); })()")
    assert page.eval("document.querySelectorAll('tr.filtered').length") == 0


def test_a_wide_eps_grid_folds_behind_a_selector(page: Browser) -> None:
    select = "select.fold-select"
    options = page.eval(f"[...document.querySelector('{select}').options].map(o => o.value)")
    assert options[:3] == ["eps 0.05", "eps 0.1", "eps 0.2"]
    shown = ("(() => { const t = document.getElementById(document.querySelector('" + select
             + "').dataset.table); return [...t.querySelectorAll('thead th')].filter(h => h.offsetParent !== null)"
             ".map(h => h.getAttribute('data-group')).filter(g => g); })()")
    assert set(page.eval(shown)) == {"eps 0.05"} and len(page.eval(shown)) == 4  # img, aud, tab, all
    page.eval(f"(() => {{ const s = document.querySelector('{select}'); s.value = 'eps 0.2';"
              "s.dispatchEvent(new Event('change')); })()")
    assert set(page.eval(shown)) == {"eps 0.2"}


def test_the_hostile_label_stays_text_and_nothing_errs(page: Browser) -> None:
    assert page.eval("document.querySelectorAll('img[src=\"x\"]').length") == 0
    assert page.eval(f"[...document.querySelectorAll('td')].some(td => td.textContent === {json.dumps(EVIL)})")
    assert page.eval(f"[...document.querySelectorAll('.chip')].some(c => c.textContent === {json.dumps(EVIL)})")
    assert page.eval(f"document.querySelector('p.meta').textContent === {json.dumps(EVIL_TEXT)}")
    assert page.eval("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
    assert page.problems() == []


def test_at_1280_px_the_headline_and_main_board_fit_without_sideways_scrolling(page: Browser) -> None:
    from matplotlib.image import imread

    page.eval("window.scrollTo(0, 0)")
    assert page.eval("document.documentElement.scrollWidth") <= 1280
    boxes = page.eval("['figure.headline img', '#dataset-synthetic-main'].map(s => { const r = "
                      "document.querySelector(s).getBoundingClientRect(); return [r.left, r.right, r.bottom]; })")
    (fig_left, fig_right, fig_bottom), (board_left, board_right, board_bottom) = boxes
    assert 0 <= fig_left and fig_right <= 1280 and 0 <= board_left and board_right <= 1280
    assert fig_bottom < board_bottom
    wrap = page.eval("(() => { const w = document.querySelector('#dataset-synthetic-main').parentElement;"
                     "return [w.scrollWidth, w.clientWidth]; })()")
    assert wrap[0] <= wrap[1]  # the main board's own box does not scroll either
    pixels = imread(BytesIO(page.screenshot(int(board_bottom) + 10)), format="png")
    assert pixels.shape[1] == 1280 and pixels.shape[0] > 600
    assert pixels.std() > 0.05 and (pixels[..., :3] < 0.5).mean() > 0.002  # text and a plot, not blank
