"""Escaped output (issue 22, point 7): a control character in a name never reaches a terminal,
a board, results.csv or a file name raw: suites and datasets refuse such names in one line;
what still comes from elsewhere is shown escaped; names that map to one file name are refused."""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_suite, write_suite

from mmbench.cli import EscapingFormatter, main
from mmbench.render.tables import cell

ESC = "\x1b"


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def refused(result: tuple[int, str, str], *needles: str) -> str:
    code, out, err = result
    lines = [line for line in err.strip().splitlines() if line.startswith("mmbench: error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert ESC not in out + err and "\x07" not in out + err and "\x9b" not in out + err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("suite,needle", [
    ({**tiny_suite(), "name": f"x{ESC}]0;pwned\x07"}, "name 'x\\x1b]0;pwned\\x07'"),
    (tiny_suite(models=[{"name": "late_fusion", "label": f"a{ESC}[2Jb"}]), "models[0].label"),
    (tiny_suite(models=["late_fusion"], recipes=[{"name": "standard", "label": "r\nforged line"}]),
     "recipes[0].label"),
    ({**tiny_suite(), "description": "two\nlines\tare fine", "name": "c1\x9bcontrol"}, "\\x9b"),
], ids=["osc-name", "csi-label", "newline-label", "c1-control"])
def test_control_characters_in_a_suite_are_refused_escaped(suite: dict, needle: str, tmp_path: Path) -> None:
    refused(cli("validate", str(write_suite(tmp_path, suite))), needle, "control characters")


def test_a_description_may_hold_line_breaks(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, {**tiny_suite(models=["late_fusion"]), "description": "two\nlines"})
    code, _, err = cli("validate", str(suite))
    assert code == 0, err


def sites(folder: Path, names: list[str]) -> Path:
    rng = np.random.default_rng(0)
    site = np.repeat(names, 60)
    labels = rng.integers(0, 2, len(site))
    feats = rng.normal(size=(len(site), 4)).astype(np.float32) + labels[:, None]
    np.savez(folder / "sites.npz", a=feats, b=feats[:, :2].copy(), labels=labels, site=site)
    dataset = {"name": "arrays", "params": {"path": str(folder / "sites.npz"), "groups": "site",
                                            "in_distribution": names[0], "modalities": {"a": "vector", "b": "vector"}}}
    return write_suite(folder, {**tiny_suite(models=["late_fusion"]), "datasets": [dataset],
                                "perturbations": ["clean", "natural_shift"]})


@pytest.mark.parametrize("names,needle", [
    (["A", f"B{ESC}[2J"], "group 'B\\x1b[2J'"),
    (["A", "B\nC"], "group 'B\\nC'"),
    (["A", "site 1", "site_1"], "'site 1' and 'site_1' map to the same file name"),
], ids=["escape", "newline", "file-name-clash"])
def test_group_names_from_the_data_are_checked_at_load(names: list[str], needle: str, tmp_path: Path) -> None:
    refused(cli("validate", str(sites(tmp_path, names))), needle)


def test_labels_that_map_to_one_file_name_are_refused(tmp_path: Path) -> None:
    data = tiny_suite()["datasets"][0]
    suite = {**tiny_suite(models=["late_fusion"]),
             "datasets": [{**data, "label": "d 1"}, {**data, "label": "d_1"}]}
    refused(cli("validate", str(write_suite(tmp_path, suite))), "'d 1' and 'd_1' map to the same file name")


def test_text_from_elsewhere_is_shown_escaped() -> None:
    record = logging.LogRecord("mmbench", logging.WARNING, __file__, 1, f"plugin said {ESC}]0;title\x07\nnext", (),
                               None)
    shown = EscapingFormatter("mmbench: %(message)s").format(record)
    assert ESC not in shown and "\x07" not in shown and "\\x1b]0;title\\x07" in shown and "\nnext" in shown
    assert cell(f"m{ESC}[31m|x\ny") == "m\\x1b[31m\\|x y"
