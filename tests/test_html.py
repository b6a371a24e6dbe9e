"""report.html: self-contained, escaped, and it renders in headless Chromium without console
errors, showing the main board and the plots (Chromium is installed by `make test`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import tiny_suite, write_suite

from mmbench.runner import RunOptions, run_suite

EVIL = "<script>alert('x')</script>"


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("html")
    suite = tiny_suite(models=["late_fusion", {"name": "seed_concat", "label": EVIL}], perturbations=[
        "clean", {"name": "missing", "params": {"subsets": "all"}},
        {"name": "random_dropout", "params": {"rates": [0.0, 0.5]}},
        {"name": "shift", "params": {"corruptions": ["gaussian_noise"], "severities": [2, 4]}}])
    run_suite(write_suite(tmp, suite), RunOptions(out_dir=tmp / "o", cache_dir=tmp / "c", progress=False))
    return tmp / "o" / "report.html"


def _chromium() -> str:
    found = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    assert found, "headless Chromium is needed: `make test` installs it (apt-get install chromium)"
    return found


def test_page_is_self_contained_and_escaped(report: Path) -> None:
    page = report.read_text()
    assert "<script" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "src=\"data:image/png;base64," in page and "http" not in page.split("<body>")[1]
    assert "main board" in page


def test_chromium_renders_the_page_without_console_errors(report: Path, tmp_path: Path) -> None:
    from matplotlib.image import imread

    shot = tmp_path / "shot.png"
    run = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                          "--window-size=1280,1600", f"--screenshot={shot}", "--enable-logging=stderr",
                          "--v=0", report.as_uri()], capture_output=True, text=True, timeout=120)
    console = [line for line in run.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert shot.is_file() and not console, run.stderr[-2000:]
    pixels = imread(shot)
    assert pixels.std() > 0.05 and (pixels[..., :3] < 0.5).mean() > 0.002  # text and plots, not blank
    dom = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                          report.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert "main board" in dom and dom.count("<table>") >= 3 and dom.count("<img") >= 3
    assert "<script>" not in dom  # the evil model name stayed text
