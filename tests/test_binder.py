"""Binder's path, as far as it runs here: the start script, and the Prefect UI and API through jupyter-server-proxy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from lessons_src import server
from lessons_src.paths import repo_root

PREFIX = "/user/test/"


@pytest.fixture(scope="module")
def binder_env(tmp_path_factory):
    """Environment of a Binder session: its own course home and a JupyterHub prefix."""
    home = tmp_path_factory.mktemp("binder_home")
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # `python` is the course's, as on Binder
    env = {**os.environ, "PATH": path, "COURSE_HOME": str(home), "JUPYTERHUB_SERVICE_PREFIX": PREFIX}
    yield env
    subprocess.run([sys.executable, "-m", "lessons_src", "server", "stop"], env=env, check=False)


@pytest.fixture(scope="module")
def started(binder_env):
    """Run the repository's `start` script the way Binder does, with a small command after it."""
    result = subprocess.run(
        ["bash", str(repo_root() / "start"), sys.executable, "-c", "print('command ran')"],
        env=binder_env,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=repo_root(),
    )
    assert result.returncode == 0, result.stderr
    return result


def test_start_script_starts_the_server_then_runs_its_command(started, binder_env):
    assert "command ran" in started.stdout
    assert f"{PREFIX}proxy/absolute/" in started.stdout  # the UI address a Binder learner can open
    state = Path(binder_env["COURSE_HOME"]) / "server.json"
    assert state.exists()


def test_ui_and_api_are_served_through_jupyter_server_proxy(started, binder_env, jupyter_lab):
    status = subprocess.run(
        [sys.executable, "-m", "lessons_src", "server", "status"], env=binder_env, capture_output=True, text=True
    )
    port = int(status.stdout.split("/proxy/absolute/")[1].split("/")[0])
    assert server.is_healthy(port)
    base = jupyter_lab(env=binder_env, base_url=PREFIX)
    headers = {"Authorization": f"token {jupyter_lab.token}"}
    api = httpx.get(f"{base}proxy/{port}/api/health", headers=headers, timeout=10)
    assert api.status_code == 200 and api.json() is True
    ui = httpx.get(f"{base}proxy/absolute/{port}/", headers=headers, timeout=10, follow_redirects=True)
    assert ui.status_code == 200 and "<html" in ui.text.lower()
    settings = httpx.get(f"{base}proxy/absolute/{port}/ui-settings", headers=headers, timeout=10)
    assert settings.status_code == 200
    assert settings.json()["api_url"] == f"{PREFIX}proxy/{port}/api"
