"""The wheel, installed as a user installs it (not editable, away from the repository), carries what its
commands need: the named profiles, strategies and targets, the server, the model."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh environment holding only the wheel; its dependencies are borrowed from ours through a
    path entry (a ``.pth`` line adds the folder, not the editable install's own ``.pth`` finder in it)."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"  # the tracked files only, as a clone has them: no build/ left over from before
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        if (ROOT / name).exists() or (ROOT / name).is_symlink():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name, follow_symlinks=False)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp / "dist"), str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp / "dist").glob("bulkbench-*.whl")
    env_dir = tmp / "env"
    venv.create(env_dir, with_pip=False)
    (purelib,) = (env_dir / "lib").glob("python3*/site-packages")
    (purelib / "borrowed-dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    python = env_dir / "bin" / "python"
    done = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "-q", str(wheel)],
                          capture_output=True, text=True, timeout=300, env=_clean_env())
    assert done.returncode == 0, done.stderr[-2000:]
    return env_dir


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "BULKBENCH_SCENARIOS")}


def test_the_wheels_bulkbench_is_its_own_and_carries_its_data(installed: Path, tmp_path: Path) -> None:
    code = ("import bulkbench, loadtests.imagecanvas as app; from bulkbench.config import scenarios_dir;"
            "print(bulkbench.__file__); print(scenarios_dir()); print(app.PRELOAD.is_file())")
    where = subprocess.run([str(installed / "bin" / "python"), "-c", code],
                           capture_output=True, text=True, cwd=tmp_path, env=_clean_env(), timeout=60)
    package, scenarios, preload = where.stdout.split()
    assert package.startswith(str(installed)) and scenarios.startswith(str(installed)) and preload == "True"


def test_the_wheels_sim_runs_a_named_profile(installed: Path, tmp_path: Path) -> None:
    done = subprocess.run([str(installed / "bin" / "bulkbench"), "sim", "--profile", "legacy", "--images", "20",
                           "--strategy", "individual:fc1316b", "--out", "out"],
                          capture_output=True, text=True, cwd=tmp_path, env=_clean_env(), timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    (summary,) = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["profile"] == "legacy" and summary["images_ok"] == 20


def test_the_wheels_server_serves(installed: Path, tmp_path: Path) -> None:
    server = subprocess.Popen([str(installed / "bin" / "bulkbench"), "serve", "--profile", "optimized", "--port", "0",
                               "--data-dir", "data"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              cwd=tmp_path, env=_clean_env())
    try:
        assert server.stdout is not None
        line = next(line for line in server.stdout if "http://" in line)  # it prints its URL once listening
        url = line.split("http://", 1)[1].split()[0]
        import httpx
        assert httpx.get(f"http://{url}/healthz", timeout=10).status_code == 200
    finally:
        server.terminate()
        server.wait(15)
