"""The suite reference documents every built-in component and each of its parameters."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mmbench.config.params import DATASET_HARNESS_ARGS, HARNESS_ARGS, param_defaults
from mmbench.registry import REGISTRIES

DOC = (Path(__file__).resolve().parents[1] / "docs" / "suites.md").read_text()

BUILTINS = [(kind, e) for kind, reg in sorted(REGISTRIES.items()) for e in reg.entries()
            if e.source == "builtin"]


@pytest.mark.parametrize("kind,entry", BUILTINS, ids=[f"{k}:{e.name}" for k, e in BUILTINS])
def test_reference_names_every_builtin_and_parameter(kind: str, entry) -> None:
    assert f"`{entry.name}`" in DOC, f"docs/suites.md does not mention {kind} '{entry.name}'"
    if kind in ("metrics", "corruptions"):  # no suite parameters (corruptions: severity only)
        return
    target = entry.obj.config_type if kind == "recipes" else entry.obj
    reserved = DATASET_HARNESS_ARGS if kind == "datasets" else HARNESS_ARGS
    for param in param_defaults(target, reserved):
        assert re.search(rf"`{param}`", DOC), f"docs/suites.md lacks {entry.name}'s parameter '{param}'"


def _blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of every fenced block, in order."""
    return [(m[1], m[2]) for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M)]


def test_the_plugin_tutorial_runs_as_written(tmp_path: Path) -> None:
    """Every block of docs/plugins.md, in order: files are written where their ``# file:``
    line says, Python and shell blocks run in the tutorial's folder, ``text`` is output."""
    import os
    import subprocess
    import sys

    site = tmp_path / "site"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PIP_TARGET": str(site), "PIP_NO_BUILD_ISOLATION": "0", "PIP_NO_INDEX": "1",
           # an editable install's .pth is not read from a --target folder: the package is found
           # in the tutorial folder, its entry points in the installed metadata under site/
           "PYTHONPATH": f"{site}{os.pathsep}{tmp_path}", "PYTHONDONTWRITEBYTECODE": "1"}
    text = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
    ran = []
    for lang, code in _blocks(text):
        first = code.splitlines()[0] if code else ""
        if first.startswith("# file: "):
            path = tmp_path / first.removeprefix("# file: ").strip()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(code)
        elif lang == "python":
            ran.append(_check(subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                                             capture_output=True, text=True, timeout=600), code))
        elif lang == "bash":
            for line in (x for x in code.splitlines() if x.strip()):
                ran.append(_check(subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env,
                                                 capture_output=True, text=True, timeout=900), line))
        else:
            assert lang in ("text", "toml", "yaml"), f"a {lang!r} block that the test does not run"
    assert len(ran) >= 7
    assert "my_fusion" in ran[2]  # mmbench ls models 'my_*'
    board = (tmp_path / "results" / "mine" / "LEADERBOARD.md").read_text()
    assert "my_fusion" in board and "error_rate" in board
    assert "passed" in ran[-1] and "failed" not in ran[-1]


def _check(done, what: str) -> str:
    assert done.returncode == 0, f"{what}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout
