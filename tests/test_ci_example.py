"""The example CI workflow works: its steps' commands, run locally in order, as GitHub would run them.

``uses:`` steps are GitHub's own (checkout, Python, cache, artifacts): here the folder stays between the
two runs, as the cache keeps ``results/baseline``. The install step is skipped: this environment has
bulkbench already (``tests/test_wheel.py`` checks that installing it works)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / "examples" / "github-actions-bulkbench.yml"


def _runs(step: dict, ref: str) -> bool:
    condition = step.get("if", "")
    return not condition or condition == "always()" or condition == f"github.ref == '{ref}'"


def run_workflow(folder: Path, env: dict[str, str], ref: str) -> list[tuple[str, int]]:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    job = workflow["jobs"]["bulkbench"]
    ran = []
    for step in job["steps"]:
        if "run" not in step or step.get("name") == "install bulkbench" or not _runs(step, ref):
            continue
        done = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=folder, env=env, capture_output=True,
                              text=True, timeout=600)
        ran.append((step["name"], done.returncode))
        if done.returncode != 0:
            break  # as a job stops at a failed step
    return ran


def test_the_example_workflow_gates_a_run_and_keeps_a_baseline(tmp_path: Path) -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    (tmp_path / "scenarios").symlink_to(ROOT / "scenarios")
    env = {**os.environ, **workflow["env"], "IMAGES": "12", "WORKLOAD": "scenarios/workload-light.toml",
           "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}
    first = run_workflow(tmp_path, env, "refs/heads/main")
    assert [name for name, _ in first] == [
        "real run (batch protocol)", "gate (exit 99 fails the job; JUnit in results/pr/gate.xml)", "job summary",
        "keep these results as the next baseline (main branch only)"]
    assert all(code == 0 for _, code in first), first
    assert (tmp_path / "results" / "pr" / "gate.xml").exists() and (tmp_path / "results" / "baseline").is_dir()
    assert "bulkbench gate: passed" in (tmp_path / "summary.md").read_text()
    second = run_workflow(tmp_path, env, "refs/pull/1/merge")  # a pull request, held to main's baseline
    assert [name for name, _ in second][:2] == [name for name, _ in first][:2]
    assert second[1][1] in (0, 99)  # passed, or a regression beyond 20 % on this shared machine: both are gating
    assert "regression <= 20%" in (tmp_path / "results" / "pr" / "gate.md").read_text()
