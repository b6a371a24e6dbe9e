"""An input mistake in a suite file is reported before anything heavy is imported: reading a
suite and checking its structure imports no torch (nor pandas), through the library and through
the CLI's ``validate`` and ``run`` (timings live in benchmarks/error_latency.py, not here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "pandas", "numpy", "matplotlib")

#: suites whose structure is wrong: (file name, text, what the one-line error says)
BAD_SUITES = {
    "unknown key": ("bad.yaml", "name: bad\ndatasets: [mfeat]\nmodels: [late_fusion]\nbogus: 1\n",
                    "unknown key 'bogus'"),
    "malformed YAML": ("broken.yaml", "name: [\n", "malformed YAML"),
    "wrong type": ("seeds.yaml", "datasets: [mfeat]\nmodels: [late_fusion]\nseeds: zero\n", "'seeds' must be"),
    "included file": ("top.yaml", "include: bad.yaml\n", "unknown key 'bogus'"),
}

LIBRARY = """
import json, sys
from mmbench.config.suite import load_suite
from mmbench.errors import MMBenchError
try:
    load_suite(sys.argv[1])
except MMBenchError as exc:
    error = str(exc)
print(json.dumps({"error": error, "heavy": sorted(m for m in sys.argv[2:] if m in sys.modules)}))
"""

CLI = """
import json, sys
from mmbench.cli import main
code = main(sys.argv[1:3] + ["--out", sys.argv[3]] * (sys.argv[1] == "run"))
print(json.dumps({"code": code, "heavy": sorted(m for m in sys.argv[4:] if m in sys.modules)}))
"""


def _write(folder: Path, case: str) -> Path:
    if case == "included file":
        _write(folder, "unknown key")
    name, text, _ = BAD_SUITES[case]
    (folder / name).write_text(text)
    return folder / name


def _python(script: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", script, *args], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "stderr": out.stderr}


@pytest.mark.parametrize("case", sorted(BAD_SUITES))
def test_a_structural_error_imports_no_torch(case: str, tmp_path: Path) -> None:
    found = _python(LIBRARY, str(_write(tmp_path, case)), *HEAVY)
    assert BAD_SUITES[case][2] in found["error"]
    assert found["heavy"] == []


@pytest.mark.parametrize("command", ["validate", "run"])
def test_the_cli_reports_it_before_importing_torch(command: str, tmp_path: Path) -> None:
    suite = _write(tmp_path, "unknown key")
    found = _python(CLI, command, str(suite), str(tmp_path / "out"), *HEAVY)
    assert found["code"] == 2 and found["heavy"] == []
    lines = found["stderr"].strip().splitlines()
    assert len(lines) == 1 and "unknown key 'bogus'" in lines[0]
    assert not (tmp_path / "out").exists()
