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
    commit = next(s for s in steps if "git push" in s.get("run", ""))
    assert "refs/heads/main" in commit["if"] and "push" in commit["if"]


def _main_only(condition: str) -> bool:
    return "github.event_name == 'push'" in condition and "github.ref == 'refs/heads/main'" in condition


def test_workflow_deploys_the_smoke_report_to_pages_on_main_only() -> None:
    flow = yaml.safe_load((REPO / ".github" / "workflows" / "benchmark.yml").read_text())
    steps = flow["jobs"]["benchmark"]["steps"]
    names = [s.get("uses", s.get("run", "")) for s in steps]
    smoke = next(i for i, n in enumerate(names) if n.startswith("make smoke"))
    site = next(i for i, s in enumerate(steps) if "report.html" in s.get("run", "") and "index.html" in s["run"])
    upload = next(i for i, n in enumerate(names) if n.startswith("actions/upload-pages-artifact@"))
    assert smoke < site < upload
    assert "cp results/smoke/report.html _site/index.html" in steps[site]["run"]
    assert steps[upload]["with"]["path"] == "_site"
    assert _main_only(steps[site]["if"]) and _main_only(steps[upload]["if"])
    pages = flow["jobs"]["pages"]
    assert pages["needs"] == "benchmark" and _main_only(pages["if"])
    assert pages["permissions"] == {"pages": "write", "id-token": "write"}
    assert pages["environment"]["name"] == "github-pages"
    assert "steps.deployment.outputs.page_url" in pages["environment"]["url"]
    (deploy,) = pages["steps"]
    assert deploy["uses"].startswith("actions/deploy-pages@") and deploy["id"] == "deployment"
    assert "pages" not in flow["jobs"]["benchmark"].get("permissions", {})  # only the deploy job may
