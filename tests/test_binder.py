"""Binder's path, as far as it runs here: the start script, and the Prefect UI and API through jupyter-server-proxy."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from lessons_src import server
from lessons_src.paths import repo_root

PREFIX = "/user/test/"
HAND_OVER_S = 5.0  # JupyterHub gives a new server ~30 s; the hand-over itself measured ~0.01 s here


@pytest.fixture(scope="module")
def binder_env(tmp_path_factory):
    """Environment of a Binder session: its own course home and a JupyterHub prefix."""
    home = tmp_path_factory.mktemp("binder_home")
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # `python` is the course's, as on Binder
    env = {**os.environ, "PATH": path, "COURSE_HOME": str(home), "JUPYTERHUB_SERVICE_PREFIX": PREFIX}
    yield env
    subprocess.run([sys.executable, "-m", "lessons_src", "server", "stop"], env=env, check=False)


def _run_start(env: dict[str, str], *command: str) -> tuple[subprocess.CompletedProcess, float]:
    """Run the repository's `start` script the way Binder does, with a small command after it; time the hand-over."""
    began = time.monotonic()
    result = subprocess.run(
        ["bash", str(repo_root() / "start"), *command], env=env, capture_output=True, text=True, timeout=60
    )
    return result, time.monotonic() - began


@pytest.fixture(scope="module")
def started(binder_env):
    """The start script's hand-over, then the server it started in the background once it answers."""
    result, seconds = _run_start(binder_env, sys.executable, "-c", "print('command ran')")
    start_log = Path(binder_env["COURSE_HOME"]) / "start.log"
    deadline = time.monotonic() + 30
    while "Starting the course's Prefect server" not in (start_log.read_text() if start_log.exists() else ""):
        assert time.monotonic() < deadline, f"the background start wrote nothing to {start_log} within 30 s"
        time.sleep(0.1)
    waited = subprocess.run(  # what the first notebook's setup() does: wait for the server being started
        [sys.executable, "-c", "from lessons_src import setup; setup()"],
        env=binder_env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    return result, seconds, waited


def test_start_hands_over_to_its_command_at_once_while_the_server_starts(started, binder_env):
    result, seconds, waited = started
    assert result.returncode == 0 and "command ran" in result.stdout, result.stderr
    assert seconds < HAND_OVER_S, f"start took {seconds:.1f} s to hand over; JupyterHub allows ~30 s in all"
    assert waited.returncode == 0, waited.stderr[-2000:]
    assert "Another process is starting the course server" in waited.stdout, waited.stdout
    assert f"{PREFIX}proxy/absolute/" in waited.stdout  # the UI address a Binder learner can open
    assert (Path(binder_env["COURSE_HOME"]) / "server.json").exists()


def test_a_failing_server_start_does_not_stop_the_command(tmp_path):
    not_a_folder = tmp_path / "course_home_is_a_file"
    not_a_folder.write_text("")
    env = {**os.environ, "COURSE_HOME": str(not_a_folder)}
    result, seconds = _run_start(env, sys.executable, "-c", "print('command ran')")
    assert result.returncode == 0 and "command ran" in result.stdout, result.stderr
    assert seconds < HAND_OVER_S


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
