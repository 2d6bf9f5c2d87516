"""GitHub Codespaces: the dev container installs the course with the README's command, and the UI finds its API."""

import json
import re

from lessons_src import server
from lessons_src.course import SUPPORTED_PYTHONS
from lessons_src.paths import repo_root

CONFIG = json.loads((repo_root() / ".devcontainer" / "devcontainer.json").read_text())


def test_the_container_installs_with_the_bootstrap_and_starts_the_course_server():
    assert CONFIG["postCreateCommand"] == "python course.py install"  # what .ci/run's clean-clone install runs
    assert CONFIG["postStartCommand"] == ".venv/bin/python -m lessons_src server start"
    major, minor = map(int, re.search(r"python:(\d+)\.(\d+)", CONFIG["image"]).groups())
    assert (major, minor) in SUPPORTED_PYTHONS, CONFIG["image"]


def test_the_prefect_ui_port_is_forwarded_with_a_label_and_the_notebooks_open():
    port = str(server.DEFAULT_PORT)
    assert server.DEFAULT_PORT in CONFIG["forwardPorts"]
    assert "Prefect UI" in CONFIG["portsAttributes"][port]["label"]
    for path in CONFIG["customizations"]["codespaces"]["openFiles"]:
        assert (repo_root() / path).exists(), path


def test_in_a_codespace_the_ui_calls_the_api_at_the_forwarded_address(monkeypatch):
    monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX", raising=False)
    monkeypatch.setenv("CODESPACE_NAME", "ada-course-x7")
    monkeypatch.setenv("GITHUB_CODESPACES_PORT_FORWARDING_DOMAIN", "app.github.dev")
    forwarded = "https://ada-course-x7-4201.app.github.dev"
    assert server._server_env(4201)["PREFECT_UI_API_URL"] == f"{forwarded}/api"
    info = server.ServerInfo(pid=1, port=4201, home="/tmp")
    assert server.ui_address(info) == forwarded


def test_outside_binder_and_codespaces_the_ui_uses_the_local_address(monkeypatch):
    for name in ("JUPYTERHUB_SERVICE_PREFIX", "CODESPACE_NAME", "GITHUB_CODESPACES_PORT_FORWARDING_DOMAIN"):
        monkeypatch.delenv(name, raising=False)
    assert "PREFECT_UI_API_URL" not in server._server_env(4201)
    assert server.ui_address(server.ServerInfo(pid=1, port=4201, home="/tmp")) == "http://127.0.0.1:4201"
