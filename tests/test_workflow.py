"""The CI workflow that publishes the leaderboard is valid and runs the README's commands."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def test_workflow_runs_the_readme_commands_and_publishes() -> None:
    flow = yaml.safe_load((REPO / ".github" / "workflows" / "benchmark.yml").read_text())
    triggers = flow.get("on", flow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert {"push", "pull_request"} <= set(triggers)
    steps = flow["jobs"]["benchmark"]["steps"]
    runs = [s.get("run", "") for s in steps]
    readme = (REPO / "README.md").read_text()
    assert "make test" in runs and "make test" in readme
    smoke = next(r for r in runs if r.startswith("make smoke"))
    assert "make smoke" in readme and "$GITHUB_STEP_SUMMARY" in smoke
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert "results/" in upload["with"]["path"]
    commit = steps[-1]
    assert "refs/heads/main" in commit["if"] and "push" in commit["if"] and "git push" in commit["run"]
